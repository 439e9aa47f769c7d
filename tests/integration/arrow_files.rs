//! Arrow IPC files by every route SQL reads them: by path, as external tables over a file
//! or a folder, from a server session confined to its allowed files. Valid files read;
//! files declaring more than they hold are refused by name before a reader allocates it.

use std::path::Path;
use std::sync::Arc;

use cohort::Engine;
use cohort::server::{Access, AllowedFiles, Role};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;

use crate::common::{engines, oversized_arrow_files};

/// Writes a valid Arrow IPC file of three rows at `path`.
async fn write_valid(engine: &Engine, path: &Path) {
    engine
        .execute(&format!(
            "COPY (SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c')) AS v(id, name)) \
             TO '{}' STORED AS ARROW",
            path.display()
        ))
        .await
        .unwrap();
}

/// The statements that read the file or folder `path`, one per route.
fn routes(path: &Path) -> Vec<String> {
    let path = path.display();
    vec![
        format!("SELECT * FROM '{path}'"),
        format!("CREATE OR REPLACE EXTERNAL TABLE t STORED AS ARROW LOCATION '{path}'"),
    ]
}

async fn refused(engine: &Engine, sql: &str, path: &Path, why: &str) {
    let e = engine.execute(sql).await.unwrap_err().to_string();
    let expected = format!(
        "cannot read {}: not a readable Arrow IPC file: {why}",
        path.display()
    );
    assert!(e.contains(&expected), "{sql}: {e}");
}

#[tokio::test]
async fn valid_arrow_files_read_by_every_route() {
    let (engine, _store) = engines::engine().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("valid.arrow");
    write_valid(&engine, &file).await;
    let renamed = dir.path().join("valid.bin");
    std::fs::copy(&file, &renamed).unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(&file, folder.join("valid.arrow")).unwrap();
    let mut statements = routes(&file);
    statements.push(routes(&renamed).remove(1));
    statements.push(routes(&folder).remove(1));
    for sql in statements {
        engine.execute(&sql).await.unwrap();
        let table = if sql.starts_with("SELECT") {
            format!("'{}'", file.display())
        } else {
            "t".to_string()
        };
        let rows = engine
            .execute(&format!("SELECT sum(id) FROM {table}"))
            .await
            .unwrap();
        let sum = rows.batches[0].column(0).as_primitive::<Int64Type>();
        assert_eq!(sum.value(0), 6, "{sql}");
    }
}

#[tokio::test]
async fn oversized_arrow_files_are_refused_by_every_route() {
    let (engine, _store) = engines::engine().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (path, why) in oversized_arrow_files(dir.path()) {
        let renamed = path.with_extension("ipc");
        std::fs::copy(&path, &renamed).unwrap();
        for sql in routes(&path) {
            refused(&engine, &sql, &path, why).await;
        }
        refused(&engine, &routes(&renamed)[1], &renamed, why).await;
        std::fs::remove_file(&renamed).unwrap();
    }
}

/// A file of a folder's table that turns into such a file after the table was created:
/// refused when the table is scanned, then read again once it is valid.
#[tokio::test]
async fn a_file_turned_oversized_is_refused_when_scanned() {
    let (engine, _store) = engines::engine().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let valid = dir.path().join("valid.arrow");
    write_valid(&engine, &valid).await;
    let inside = folder.join("data.arrow");
    std::fs::copy(&valid, &inside).unwrap();
    engine.execute(&routes(&folder)[1]).await.unwrap();
    for (path, why) in oversized_arrow_files(dir.path()) {
        std::fs::copy(&path, &inside).unwrap();
        refused(&engine, "SELECT * FROM t", &inside, why).await;
    }
    std::fs::copy(&valid, &inside).unwrap();
    let rows = engine.execute("SELECT * FROM t").await.unwrap();
    assert_eq!(rows.num_rows(), 3);
}

/// A server session checks the file once its user may read it, and never opens one it
/// may not: that stays "not found".
#[tokio::test]
async fn a_server_session_checks_only_files_it_may_read() {
    let (base, _store) = engines::engine().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (allowed, outside) = (dir.path().join("allowed"), dir.path().join("outside"));
    std::fs::create_dir(&allowed).unwrap();
    std::fs::create_dir(&outside).unwrap();
    write_valid(&base, &allowed.join("valid.arrow")).await;
    let files = Arc::new(AllowedFiles::new(std::slice::from_ref(&allowed)).unwrap());
    let admin = base.session_for(&Access::new(Role::Admin, files));
    let rows = admin
        .execute(&routes(&allowed.join("valid.arrow"))[0])
        .await;
    assert_eq!(rows.unwrap().num_rows(), 3);
    for (path, why) in oversized_arrow_files(&allowed) {
        refused(&admin, &routes(&path)[0], &path, why).await;
    }
    for (path, _) in oversized_arrow_files(&outside) {
        let sql = &routes(&path)[0];
        let e = admin.execute(sql).await.unwrap_err().to_string();
        assert!(e.contains("not found"), "{sql}: {e}");
    }
}
