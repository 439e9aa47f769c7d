//! What a Flight SQL client may do: the statements its [`Role`] allows, and the server's
//! files only for admins, only inside the folders given with `--allow-files`.
//!
//! Every statement is checked here before it is planned, since planning a query over
//! `'file.csv'` already reads the file. The session's lookup of files by path is confined
//! the same way ([`Access::confine`]), so a refused statement neither reads nor creates
//! anything. The shell and scripts do not come through here: they keep full access.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{TableProvider, UrlTableFactory};
use datafusion::common::TableReference;
use datafusion::sql::parser::{ResetStatement, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    Expr, FromTable, ObjectName, ObjectType, Set, Statement as SqlStatement, TableFactor,
    TableObject, Value,
};
use tonic::Status;

use super::Role;
use crate::Engine;
use crate::engine::{ModelStatement, Statement, parse_statement};

/// The rule every refused use of a file names, with its fix.
const FILE_RULE: &str = "this server lets clients use files only inside the folders given \
                         with --allow-files, and only for admins";

/// The folders whose files admins may use, resolved once when the server starts.
#[derive(Debug, Default)]
pub struct AllowedFiles {
    /// Canonical: symlinks and `..` resolved.
    folders: Vec<PathBuf>,
}

impl AllowedFiles {
    /// Resolves each folder; refuses one that does not exist or is not a folder.
    pub fn new(folders: &[PathBuf]) -> Result<Self, String> {
        let folders = folders
            .iter()
            .map(|folder| {
                let canonical = folder
                    .canonicalize()
                    .map_err(|e| format!("--allow-files {}: {e}", folder.display()))?;
                if !canonical.is_dir() {
                    return Err(format!("--allow-files {}: not a folder", folder.display()));
                }
                Ok(canonical)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { folders })
    }

    /// The folders, resolved.
    pub fn folders(&self) -> &[PathBuf] {
        &self.folders
    }

    /// Why `location` may not be used; `None` when it lies inside an allowed folder.
    fn refusal(&self, location: &str) -> Option<String> {
        if self.folders.is_empty() {
            return Some("the server was started without --allow-files".to_string());
        }
        match resolve(location) {
            Ok(path) if self.folders.iter().any(|f| path.starts_with(f)) => None,
            Ok(path) => {
                let folders: Vec<String> = self
                    .folders
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect();
                Some(format!(
                    "{} is not inside {}",
                    path.display(),
                    folders.join(" or ")
                ))
            }
            Err(why) => Some(why),
        }
    }
}

/// The local path `location` would use, as DataFusion reads it (a path, a glob, or a
/// `file://` URL), with `..` and symlinks resolved; an error for other URLs.
fn resolve(location: &str) -> Result<PathBuf, String> {
    // DataFusion reads a backslash in a file URL as a slash; in a path it would be a
    // name's character. Neither is worth the ambiguity.
    if location.contains('\\') {
        return Err("paths with backslashes are not accepted".to_string());
    }
    let path = match url_scheme(location) {
        None => glob_prefix(location),
        Some(scheme) if scheme.eq_ignore_ascii_case("file") => file_url_path(location)?,
        Some(scheme) => return Err(format!("{scheme}: URLs name no local file")),
    };
    let absolute = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map_err(|e| format!("the server's folder is unknown: {e}"))?
            .join(path)
    };
    canonical(&lexical(&absolute))
}

/// The scheme of a URL (`s3`, `file`, ...), as DataFusion tells URLs from paths: an
/// absolute path first, then anything that starts `scheme:`.
fn url_scheme(location: &str) -> Option<&str> {
    if Path::new(location).is_absolute() {
        return None;
    }
    let (scheme, _) = location.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then_some(scheme)
}

/// The path of `file:///path` or `file://localhost/path`. Escapes, queries and fragments
/// are refused rather than decoded: a plain path says the same.
fn file_url_path(url: &str) -> Result<PathBuf, String> {
    let rest = &url["file:".len()..];
    let path = rest
        .strip_prefix("//localhost")
        .or_else(|| rest.strip_prefix("//"))
        .filter(|p| p.starts_with('/') && !p.contains(['%', '?', '#']));
    match path {
        Some(p) => Ok(PathBuf::from(p)),
        None => Err(format!(
            "only file URLs of the form file:///path are accepted, not {url}"
        )),
    }
}

/// The folder DataFusion lists for a glob (`data/*.csv` lists `data/`); the path itself
/// when there is no glob.
fn glob_prefix(path: &str) -> PathBuf {
    match path.find(['?', '*', '[']) {
        Some(glob) => match path[..glob].rfind('/') {
            Some(separator) => PathBuf::from(&path[..=separator]),
            None => PathBuf::from("."),
        },
        None => PathBuf::from(path),
    }
}

/// `path` with `.` and `..` resolved by name, as DataFusion resolves them before it opens
/// anything.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `path` with its symlinks resolved: the deepest part that exists, canonicalized, and the
/// names below it that do not exist yet (a COPY target). A link to nothing is refused, as
/// writing through it would create its target wherever it points.
fn canonical(path: &Path) -> Result<PathBuf, String> {
    let mut existing = path.to_path_buf();
    let mut missing = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(found) => return Ok(missing.iter().rev().fold(found, |p, name| p.join(name))),
            Err(e) if existing.symlink_metadata().is_ok() => {
                return Err(format!("{} cannot be resolved ({e})", existing.display()));
            }
            Err(e) => match (existing.file_name(), existing.parent()) {
                (Some(name), Some(parent)) => {
                    missing.push(name.to_os_string());
                    existing = parent.to_path_buf();
                }
                _ => return Err(format!("{} cannot be resolved ({e})", path.display())),
            },
        }
    }
}

/// Whether a table name that is no table would be read as a file's path or URL.
fn names_file(table: &TableReference) -> bool {
    table.table().contains(['/', '\\', '.', ':', '*', '?', '['])
}

/// What one session's user may do: its role, and the folders admins may use.
#[derive(Debug, Clone)]
pub struct Access {
    role: Role,
    files: Arc<AllowedFiles>,
}

impl Access {
    pub fn new(role: Role, files: Arc<AllowedFiles>) -> Self {
        Self { role, files }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Refuses `sql` with PermissionDenied when the role may not run it or it uses a file
    /// the session may not use. Run it before planning: nothing is read or created here
    /// except to resolve paths. A statement that does not parse passes, to fail as it would
    /// anywhere.
    pub fn check(&self, engine: &Engine, sql: &str) -> Result<(), Status> {
        match parse_statement(sql) {
            Ok(Statement::Model(ModelStatement::Create(c))) => {
                self.need(Role::Analyst, "create models", "CREATE MODEL")?;
                self.check_sql(engine, &c.query)
            }
            Ok(Statement::Model(ModelStatement::Drop { .. })) => {
                self.need(Role::Analyst, "drop models", "DROP MODEL")
            }
            Ok(Statement::Model(ModelStatement::Show | ModelStatement::Describe { .. })) => Ok(()),
            Ok(Statement::Sql(sql)) => self.check_sql(engine, &sql),
            Err(_) => Ok(()),
        }
    }

    /// Refuses `verb` (reading, writing, using) `location` unless the user is an admin and
    /// it lies inside an allowed folder.
    pub fn check_file(&self, location: &str, verb: &str) -> Result<(), Status> {
        let why = if self.role < Role::Admin {
            format!("role {} may not use the server's files", self.role)
        } else {
            match self.files.refusal(location) {
                None => return Ok(()),
                Some(why) => why,
            }
        };
        Err(Status::permission_denied(format!(
            "{verb} '{location}' is refused: {why}; {FILE_RULE}"
        )))
    }

    /// `urls` (the lookup of files by path) for this user: a path it may not read is no
    /// table, so planning stops at "not found" without opening it.
    pub fn confine(&self, urls: Arc<dyn UrlTableFactory>) -> Arc<dyn UrlTableFactory> {
        Arc::new(ConfinedUrls {
            access: self.clone(),
            urls,
        })
    }

    /// One DataFusion statement, then every table it names that would be read as a file.
    fn check_sql(&self, engine: &Engine, sql: &str) -> Result<(), Status> {
        let Ok(statement) = engine.parse_sql(sql) else {
            return Ok(());
        };
        self.check_statement(engine, &statement)?;
        let Ok(tables) = engine.table_references(&statement) else {
            return Ok(());
        };
        for table in tables {
            if !engine.has_table(&table) && names_file(&table) {
                self.check_file(table.table(), "reading")?;
            }
        }
        Ok(())
    }

    fn check_statement(&self, engine: &Engine, statement: &DFStatement) -> Result<(), Status> {
        match statement {
            DFStatement::Statement(s) => self.check_sql_statement(engine, s),
            DFStatement::CreateExternalTable(t) => {
                for location in &t.locations {
                    self.check_file(location, "reading")?;
                }
                self.need(
                    Role::Admin,
                    "create external tables",
                    "CREATE EXTERNAL TABLE",
                )
            }
            DFStatement::CopyTo(copy) => self.check_file(&copy.target, "writing"),
            DFStatement::Explain(explain) => self.check_statement(engine, &explain.statement),
            DFStatement::Reset(ResetStatement::Variable(name)) => {
                self.check_setting("RESET", &name.to_string(), None)
            }
        }
    }

    fn check_sql_statement(&self, engine: &Engine, statement: &SqlStatement) -> Result<(), Status> {
        use SqlStatement as S;
        match statement {
            S::Query(_)
            | S::ExplainTable { .. }
            | S::ShowFunctions { .. }
            | S::ShowVariable { .. }
            | S::ShowStatus { .. }
            | S::ShowVariables { .. }
            | S::ShowCreate { .. }
            | S::ShowColumns { .. }
            | S::ShowTables { .. }
            | S::ShowViews { .. }
            | S::ShowSchemas { .. }
            | S::ShowDatabases { .. }
            | S::ShowCatalogs { .. }
            | S::StartTransaction { .. }
            | S::Commit { .. }
            | S::Rollback { .. }
            // A prepared statement was checked when it was prepared.
            | S::Execute { .. }
            | S::Deallocate { .. } => Ok(()),
            S::Explain { statement, .. } | S::Prepare { statement, .. } => {
                self.check_sql_statement(engine, statement)
            }
            S::Set(set) => self.check_set(set),
            S::Insert(insert) => match &insert.table {
                TableObject::TableName(name) => self.change_table(engine, name, "INSERT"),
                _ => self.need(Role::Admin, "insert into table functions", "INSERT"),
            },
            S::Update(update) => match &update.table.relation {
                TableFactor::Table { name, .. } => self.change_table(engine, name, "UPDATE"),
                _ => self.need(Role::Admin, "update this", "UPDATE"),
            },
            S::Delete(delete) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) =
                    &delete.from;
                let mut names: Vec<&ObjectName> = delete.tables.iter().collect();
                for t in from {
                    match &t.relation {
                        TableFactor::Table { name, .. } => names.push(name),
                        _ => self.need(Role::Admin, "delete from this", "DELETE")?,
                    }
                }
                names
                    .into_iter()
                    .try_for_each(|name| self.change_table(engine, name, "DELETE"))
            }
            S::Truncate(truncate) => truncate
                .table_names
                .iter()
                .try_for_each(|t| self.change_table(engine, &t.name, "TRUNCATE")),
            S::CreateTable(create) => {
                self.need(Role::Analyst, "create tables", "CREATE TABLE")?;
                if let Some(location) = &create.location {
                    self.check_file(location, "using")?;
                }
                if create.or_replace {
                    self.own_or_new(engine, &create.name, "replace")?;
                }
                Ok(())
            }
            S::CreateView(create) => {
                self.need(Role::Analyst, "create views", "CREATE VIEW")?;
                if create.or_replace {
                    self.own_or_new(engine, &create.name, "replace")?;
                }
                Ok(())
            }
            S::Drop {
                object_type: object_type @ (ObjectType::Table | ObjectType::View),
                names,
                ..
            } => {
                let kind = object_type.to_string().to_lowercase();
                self.need(
                    Role::Analyst,
                    &format!("drop {kind}s"),
                    &format!("DROP {object_type}"),
                )?;
                names
                    .iter()
                    .try_for_each(|name| self.own_or_new(engine, name, "drop"))
            }
            other => {
                let kind = statement_kind(other);
                self.need(Role::Admin, &format!("run {kind}"), &kind)
            }
        }
    }

    /// SET: settings of the runtime (the session's memory limit among them) and of the
    /// catalog are the admins'; the rest are each session's own business.
    fn check_set(&self, set: &Set) -> Result<(), Status> {
        match set {
            Set::SingleAssignment {
                variable, values, ..
            } => self.check_setting("SET", &variable.to_string(), values.first()),
            Set::ParenthesizedAssignments { variables, values } => variables
                .iter()
                .zip(values.iter().map(Some).chain(std::iter::repeat(None)))
                .try_for_each(|(v, value)| self.check_setting("SET", &v.to_string(), value)),
            Set::MultipleAssignments { assignments } => assignments
                .iter()
                .try_for_each(|a| self.check_setting("SET", &a.name.to_string(), Some(&a.value))),
            Set::SetTimeZone { .. } => Ok(()),
            _ => self.need(Role::Admin, "run this SET", "this SET"),
        }
    }

    fn check_setting(&self, verb: &str, name: &str, value: Option<&Expr>) -> Result<(), Status> {
        let key = name.to_ascii_lowercase();
        let Some(group) = ["datafusion.runtime.", "datafusion.catalog."]
            .into_iter()
            .find(|g| key.starts_with(g))
        else {
            return Ok(());
        };
        self.need(
            Role::Admin,
            &format!("change {key}"),
            &format!("{verb} {group}*"),
        )?;
        match value {
            Some(value) if key.ends_with("directory") || key.ends_with("location") => {
                self.check_file(&setting_text(value), "using")
            }
            _ => Ok(()),
        }
    }

    /// INSERT, UPDATE, DELETE or TRUNCATE of the table `name`.
    fn change_table(
        &self,
        engine: &Engine,
        name: &ObjectName,
        statement: &str,
    ) -> Result<(), Status> {
        self.need(Role::Analyst, "change tables", statement)?;
        if let Ok(table) = engine.table_reference(name)
            && !engine.has_table(&table)
            && names_file(&table)
        {
            self.check_file(table.table(), "writing")?;
        }
        self.own_or_new(engine, name, "change")
    }

    /// Refuses an analyst's `doing` (drop, replace, change) a table or view shared with
    /// every session; its own, and names that exist nowhere, pass.
    fn own_or_new(&self, engine: &Engine, name: &ObjectName, doing: &str) -> Result<(), Status> {
        if self.role >= Role::Admin {
            return Ok(());
        }
        let Ok(table) = engine.table_reference(name) else {
            return Ok(());
        };
        if engine.owns_table(&table) || !engine.has_table(&table) {
            return Ok(());
        }
        Err(Status::permission_denied(format!(
            "role {} may not {doing} {table}: it is shared with every session, and changing \
             shared tables and views needs role admin; an {} may change the tables and views \
             made in its own session",
            self.role, self.role
        )))
    }

    /// Refuses what needs role `least` or above.
    fn need(&self, least: Role, what: &str, statement: &str) -> Result<(), Status> {
        if self.role >= least {
            return Ok(());
        }
        let roles = match least {
            Role::Reader => "any role",
            Role::Analyst => "role analyst or admin",
            Role::Admin => "role admin",
        };
        Err(Status::permission_denied(format!(
            "role {} may not {what}: {statement} needs {roles}",
            self.role
        )))
    }
}

/// A statement's leading keywords (`ALTER TABLE`, `GRANT`), to name it in a refusal.
fn statement_kind(statement: &SqlStatement) -> String {
    let text = statement.to_string();
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default().to_uppercase();
    match words.next() {
        Some(second) if matches!(first.as_str(), "CREATE" | "DROP" | "ALTER" | "SHOW") => {
            format!("{first} {}", second.to_uppercase())
        }
        _ => first,
    }
}

/// A setting's value as DataFusion takes it: a string's text, an identifier's name.
fn setting_text(value: &Expr) -> String {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

/// The lookup of files by path, for one session's user.
#[derive(Debug)]
struct ConfinedUrls {
    access: Access,
    urls: Arc<dyn UrlTableFactory>,
}

#[async_trait]
impl UrlTableFactory for ConfinedUrls {
    async fn try_new(
        &self,
        url: &str,
    ) -> datafusion::common::Result<Option<Arc<dyn TableProvider>>> {
        if self.access.check_file(url, "reading").is_err() {
            return Ok(None);
        }
        self.urls.try_new(url).await
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use tempfile::TempDir;
    use tonic::Code;

    use super::*;
    use crate::store::ModelStore;

    /// A server's files: `allowed/` (given with --allow-files) holding `data.csv`, a link
    /// to a file outside, a link to the outside folder and a link to nothing outside;
    /// `outside/` holding `secret.csv`.
    struct Files {
        root: TempDir,
        allowed: Arc<AllowedFiles>,
    }

    impl Files {
        fn new() -> Self {
            let root = tempfile::tempdir().unwrap();
            let (allowed, outside) = (root.path().join("allowed"), root.path().join("outside"));
            std::fs::create_dir_all(allowed.join("sub")).unwrap();
            std::fs::create_dir(&outside).unwrap();
            std::fs::write(allowed.join("data.csv"), "a\n1\n").unwrap();
            std::fs::write(outside.join("secret.csv"), "s\n42\n").unwrap();
            symlink(outside.join("secret.csv"), allowed.join("link.csv")).unwrap();
            symlink(&outside, allowed.join("dirlink")).unwrap();
            symlink(outside.join("new.csv"), allowed.join("dangling.csv")).unwrap();
            let allowed = Arc::new(AllowedFiles::new(&[allowed]).unwrap());
            Self { root, allowed }
        }

        fn path(&self, name: &str) -> String {
            self.root.path().join(name).display().to_string()
        }

        fn access(&self, role: Role) -> Access {
            Access::new(role, self.allowed.clone())
        }
    }

    /// An engine with the shared table `shared`, and its store's folder.
    async fn engine() -> (Engine, TempDir) {
        let store = tempfile::tempdir().unwrap();
        let engine = Engine::new(ModelStore::open(store.path()).unwrap()).unwrap();
        engine
            .execute("CREATE TABLE shared AS SELECT 1 AS a")
            .await
            .unwrap();
        (engine, store)
    }

    fn refused(access: &Access, engine: &Engine, sql: &str) -> String {
        let e = access
            .check(engine, sql)
            .expect_err(&format!("{sql} passed for {}", access.role()));
        assert_eq!(e.code(), Code::PermissionDenied, "{sql}: {e}");
        e.message().to_string()
    }

    #[tokio::test]
    async fn each_role_runs_what_it_may() {
        let files = Files::new();
        let (base, _store) = engine().await;
        let inside = files.path("allowed/data.csv");
        let out = files.path("allowed/out.csv");
        let model = "CREATE MODEL m OPTIONS (model_type = 'linear_reg', label = 'a') AS \
                     SELECT * FROM shared";
        let statements: Vec<(String, Role)> = [
            (
                "SELECT * FROM shared WHERE a IN (SELECT a FROM shared)",
                Role::Reader,
            ),
            ("WITH x AS (SELECT 1 AS a) SELECT * FROM x", Role::Reader),
            ("SELECT * FROM predict('m', shared)", Role::Reader),
            ("SELECT * FROM explain_model('m')", Role::Reader),
            ("SHOW MODELS", Role::Reader),
            ("DESCRIBE MODEL m", Role::Reader),
            ("EXPLAIN SELECT * FROM shared", Role::Reader),
            ("SHOW TABLES", Role::Reader),
            ("DESCRIBE shared", Role::Reader),
            ("SET datafusion.execution.batch_size = 100", Role::Reader),
            ("SHOW datafusion.execution.batch_size", Role::Reader),
            (
                "PREPARE q AS SELECT * FROM shared WHERE a = $1",
                Role::Reader,
            ),
            (model, Role::Analyst),
            ("CREATE OR REPLACE MODEL m AS SELECT 1 AS a", Role::Analyst),
            ("DROP MODEL IF EXISTS m", Role::Analyst),
            ("CREATE VIEW v AS SELECT * FROM shared", Role::Analyst),
            ("CREATE TABLE t AS SELECT * FROM shared", Role::Analyst),
            ("CREATE TABLE t (a INT)", Role::Analyst),
            ("INSERT INTO t VALUES (1)", Role::Analyst),
            ("DROP VIEW IF EXISTS v", Role::Analyst),
            ("DROP TABLE IF EXISTS t", Role::Analyst),
            ("PREPARE p AS INSERT INTO t VALUES ($1)", Role::Analyst),
            ("INSERT INTO shared VALUES (2)", Role::Admin),
            ("DELETE FROM shared", Role::Admin),
            ("DROP TABLE shared", Role::Admin),
            (
                "CREATE OR REPLACE TABLE shared AS SELECT 2 AS a",
                Role::Admin,
            ),
            (
                "CREATE OR REPLACE VIEW shared AS SELECT 2 AS a",
                Role::Admin,
            ),
            ("PREPARE p AS INSERT INTO shared VALUES ($1)", Role::Admin),
            ("CREATE SCHEMA s", Role::Admin),
            ("DROP SCHEMA s", Role::Admin),
            ("SET datafusion.runtime.memory_limit = '100G'", Role::Admin),
            ("RESET datafusion.runtime.memory_limit", Role::Admin),
            (
                "SET datafusion.catalog.default_schema = 'other'",
                Role::Admin,
            ),
            (&format!("SELECT * FROM '{inside}'"), Role::Admin),
            (&format!("COPY shared TO '{out}'"), Role::Admin),
            (
                &format!("COPY (SELECT * FROM shared) TO '{out}'"),
                Role::Admin,
            ),
            (
                &format!("CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '{inside}'"),
                Role::Admin,
            ),
        ]
        .into_iter()
        .map(|(sql, role)| (sql.to_string(), role))
        .collect();
        for role in Role::ALL {
            let access = files.access(role);
            let session = base.session_for(&access);
            for (sql, least) in &statements {
                if role >= *least {
                    assert!(
                        access.check(&session, sql).is_ok(),
                        "{sql} refused for {role}"
                    );
                } else {
                    refused(&access, &session, sql);
                }
            }
        }
    }

    #[tokio::test]
    async fn refusals_name_the_role_and_what_it_lacks() {
        let files = Files::new();
        let (base, _store) = engine().await;
        let reader = files.access(Role::Reader);
        let session = base.session_for(&reader);
        assert_eq!(
            refused(&reader, &session, "CREATE MODEL m AS SELECT 1 AS a"),
            "role reader may not create models: CREATE MODEL needs role analyst or admin"
        );
        assert_eq!(
            refused(&reader, &session, "create view v as select 1"),
            "role reader may not create views: CREATE VIEW needs role analyst or admin"
        );
        let analyst = files.access(Role::Analyst);
        let session = base.session_for(&analyst);
        assert_eq!(
            refused(&analyst, &session, "SELECT * FROM '/etc/passwd'"),
            "reading '/etc/passwd' is refused: role analyst may not use the server's files; \
             this server lets clients use files only inside the folders given with \
             --allow-files, and only for admins"
        );
        assert_eq!(
            refused(
                &analyst,
                &session,
                "SET datafusion.runtime.memory_limit = '1T'"
            ),
            "role analyst may not change datafusion.runtime.memory_limit: \
             SET datafusion.runtime.* needs role admin"
        );
        assert!(
            refused(&analyst, &session, "DROP TABLE shared")
                .starts_with("role analyst may not drop shared: it is shared with every session")
        );
        assert_eq!(
            refused(&analyst, &session, "CREATE SCHEMA s"),
            "role analyst may not run CREATE SCHEMA: CREATE SCHEMA needs role admin"
        );
        let admin = Access::new(Role::Admin, Arc::new(AllowedFiles::default()));
        let session = base.session_for(&admin);
        assert!(
            refused(&admin, &session, "COPY shared TO '/tmp/x.csv'").starts_with(
                "writing '/tmp/x.csv' is refused: the server was started without --allow-files"
            ),
        );
    }

    #[tokio::test]
    async fn files_anywhere_in_a_statement_are_checked() {
        let files = Files::new();
        let (base, _store) = engine().await;
        let secret = files.path("outside/secret.csv");
        let statements = [
            format!("SELECT * FROM '{secret}'"),
            format!("SELECT * FROM \"{secret}\""),
            format!("SELECT * FROM shared WHERE a IN (SELECT s FROM '{secret}')"),
            format!("WITH x AS (SELECT * FROM '{secret}') SELECT * FROM x"),
            format!("EXPLAIN SELECT * FROM '{secret}'"),
            format!("EXPLAIN ANALYZE SELECT * FROM '{secret}'"),
            format!("CREATE MODEL m OPTIONS (model_type = 'kmeans') AS SELECT * FROM '{secret}'"),
            format!("CREATE VIEW v AS SELECT * FROM '{secret}'"),
            format!("CREATE TABLE t AS SELECT * FROM '{secret}'"),
            format!("PREPARE p AS SELECT * FROM '{secret}'"),
            format!("SELECT * FROM predict('m', (SELECT * FROM '{secret}'))"),
            format!("INSERT INTO '{}' VALUES (1)", files.path("outside/new.csv")),
            format!("COPY (SELECT 1) TO '{}'", files.path("outside/new.csv")),
            format!("COPY (SELECT 1) TO '{}'", files.path("outside/dir/")),
            format!(
                "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '{}'",
                files.path("outside/")
            ),
            "SELECT * FROM 'Cargo.toml'".to_string(),
            "SELECT * FROM 's3://bucket/data.parquet'".to_string(),
            "SET datafusion.runtime.temp_directory = '/tmp'".to_string(),
        ];
        for role in Role::ALL {
            let access = files.access(role);
            let session = base.session_for(&access);
            for sql in &statements {
                refused(&access, &session, sql);
            }
        }
    }

    #[test]
    fn admins_use_files_only_inside_the_allowed_folders() {
        let files = Files::new();
        let admin = files.access(Role::Admin);
        let allowed = files.path("allowed");
        for inside in [
            format!("{allowed}/data.csv"),
            format!("{allowed}/"),
            allowed.clone(),
            format!("{allowed}/*.csv"),
            format!("{allowed}/sub/../data.csv"),
            format!("{allowed}/new/deeper/out.parquet"),
            format!("{allowed}/sub/"),
            // DataFusion lists the folder before the glob; the pattern only filters.
            format!("{allowed}/*/../../outside/x"),
            format!("file://{allowed}/data.csv"),
        ] {
            assert!(admin.check_file(&inside, "using").is_ok(), "{inside}");
        }
        for outside in [
            files.path("outside/secret.csv"),
            format!("{allowed}/../outside/secret.csv"),
            format!("{allowed}/sub/../../outside/new.csv"),
            format!("{allowed}/link.csv"),
            format!("{allowed}/dirlink/secret.csv"),
            format!("{allowed}/dirlink/new.csv"),
            format!("{allowed}/dirlink/*.csv"),
            format!("{allowed}/dangling.csv"),
            format!("{allowed}/..\\outside\\secret.csv"),
            format!("file://{}", files.path("outside/secret.csv")),
            format!("file://{allowed}/%2E%2E/outside/secret.csv"),
            "s3://bucket/data.parquet".to_string(),
            "http://example.com/data.csv".to_string(),
            "Cargo.toml".to_string(),
            "*.csv".to_string(),
            "/".to_string(),
        ] {
            let e = admin.check_file(&outside, "reading").expect_err(&outside);
            assert_eq!(e.code(), Code::PermissionDenied, "{outside}");
            assert!(e.message().contains(FILE_RULE), "{}", e.message());
        }
    }

    #[test]
    fn allowed_folders_must_exist_and_be_folders() {
        let files = Files::new();
        let missing = files.root.path().join("missing");
        let e = AllowedFiles::new(std::slice::from_ref(&missing)).unwrap_err();
        assert!(
            e.starts_with(&format!("--allow-files {}: ", missing.display())),
            "{e}"
        );
        let file = files.root.path().join("allowed/data.csv");
        assert_eq!(
            AllowedFiles::new(std::slice::from_ref(&file)).unwrap_err(),
            format!("--allow-files {}: not a folder", file.display())
        );
        let linked = AllowedFiles::new(&[files.root.path().join("allowed/dirlink")]).unwrap();
        assert_eq!(
            linked.folders(),
            [files.root.path().join("outside").canonicalize().unwrap()]
        );
    }

    #[tokio::test]
    async fn analysts_keep_their_tables_and_admins_share_theirs() {
        let files = Files::new();
        let (base, _store) = engine().await;
        let analyst = files.access(Role::Analyst);
        let (mine, other) = (base.session_for(&analyst), base.session_for(&analyst));
        mine.execute("CREATE TABLE t AS SELECT 1 AS a")
            .await
            .unwrap();
        assert!(analyst.check(&mine, "INSERT INTO t VALUES (2)").is_ok());
        mine.execute("INSERT INTO t VALUES (2)").await.unwrap();
        assert_eq!(mine.execute("SELECT * FROM t").await.unwrap().num_rows(), 2);
        assert!(other.execute("SELECT * FROM t").await.is_err());
        assert!(!base.has_table(&TableReference::bare("t")));
        // Another analyst's session sees t as no table, so may make its own.
        assert!(analyst.check(&other, "DROP TABLE IF EXISTS t").is_ok());
        assert!(analyst.check(&mine, "DROP TABLE t").is_ok());
        // Even unchecked, an analyst's session cannot drop or replace a shared table.
        assert_eq!(
            mine.execute("SELECT * FROM shared")
                .await
                .unwrap()
                .num_rows(),
            1
        );
        assert!(mine.execute("DROP TABLE shared").await.is_err());
        assert!(
            mine.execute("CREATE TABLE shared AS SELECT 2 AS a")
                .await
                .is_err()
        );
        assert!(base.has_table(&TableReference::bare("shared")));
        mine.execute("DROP TABLE t").await.unwrap();
        assert!(!mine.has_table(&TableReference::bare("t")));

        let admin = base.session_for(&files.access(Role::Admin));
        admin
            .execute("CREATE TABLE u AS SELECT 1 AS a")
            .await
            .unwrap();
        assert_eq!(
            other.execute("SELECT * FROM u").await.unwrap().num_rows(),
            1
        );
    }

    #[tokio::test]
    async fn a_session_reads_by_path_only_what_its_user_may() {
        let files = Files::new();
        let (base, _store) = engine().await;
        let inside = files.path("allowed/data.csv");
        let secret = files.path("outside/secret.csv");
        // Planned without the statement check: the lookup by path is confined itself.
        let analyst = base.session_for(&files.access(Role::Analyst));
        let e = analyst
            .execute(&format!("SELECT * FROM '{inside}'"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
        let admin = base.session_for(&files.access(Role::Admin));
        let read = admin.execute(&format!("SELECT * FROM '{inside}'")).await;
        assert_eq!(read.unwrap().num_rows(), 1);
        let e = admin
            .execute(&format!("SELECT * FROM '{secret}'"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
        // The shell's engine reads any file.
        let read = base.execute(&format!("SELECT * FROM '{secret}'")).await;
        assert_eq!(read.unwrap().num_rows(), 1);
    }
}
