//! What a session knows about: tables, columns and functions with their documentation.
//! The shell's `\d`, `\df` and tab completion read it from here.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::Result;
use datafusion::logical_expr::Documentation;
use datafusion::prelude::SessionContext;

/// One SQL function and its documentation, where it has some.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub name: String,
    /// `scalar`, `aggregate`, `window` or `table`.
    pub kind: &'static str,
    pub doc: Option<Documentation>,
}

impl FunctionInfo {
    /// The first sentence of the description, for one-line listings.
    pub fn summary(&self) -> String {
        let Some(doc) = &self.doc else {
            return String::new();
        };
        let text = doc
            .description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match text.find(". ") {
            Some(end) => text[..=end].to_string(),
            None => text,
        }
    }

    /// The full documentation as text: description, syntax, arguments and example.
    pub fn describe(&self) -> String {
        let mut text = format!("{} ({} function)\n", self.name, self.kind);
        let Some(doc) = &self.doc else {
            text += "\nNo documentation.\n";
            return text;
        };
        text += &format!(
            "\n{}\n\nSyntax:\n  {}\n",
            doc.description.trim(),
            doc.syntax_example
        );
        if let Some(args) = &doc.arguments {
            text += "\nArguments:\n";
            for (name, what) in args {
                text += &format!("  {name}: {}\n", what.trim());
            }
        }
        if let Some(alternatives) = &doc.alternative_syntax {
            text += "\nAlternative syntax:\n";
            for alt in alternatives {
                text += &format!("  {alt}\n");
            }
        }
        if let Some(example) = &doc.sql_example {
            text += &format!("\nExample:\n{}\n", example.trim_end());
        }
        text
    }
}

/// Every function the session can call, sorted by name.
pub fn functions(ctx: &SessionContext) -> Vec<FunctionInfo> {
    let state = ctx.state();
    let mut all: Vec<FunctionInfo> = Vec::new();
    all.extend(state.scalar_functions().values().map(|f| FunctionInfo {
        name: f.name().to_string(),
        kind: "scalar",
        doc: f.documentation().cloned(),
    }));
    all.extend(state.aggregate_functions().values().map(|f| FunctionInfo {
        name: f.name().to_string(),
        kind: "aggregate",
        doc: f.documentation().cloned(),
    }));
    all.extend(state.window_functions().values().map(|f| FunctionInfo {
        name: f.name().to_string(),
        kind: "window",
        doc: f.documentation().cloned(),
    }));
    // Table functions: those registered, and the forms a relation planner handles, which
    // only the documentation list knows.
    let table_docs = cohort_udfs::table_function_docs();
    let mut table_names: Vec<String> = state.table_functions().keys().cloned().collect();
    table_names.extend(table_docs.iter().map(|(n, _)| n.to_string()));
    all.extend(table_names.into_iter().map(|name| {
        let doc = table_docs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| (*d).clone());
        FunctionInfo {
            name,
            kind: "table",
            doc,
        }
    }));
    all.sort_by(|a, b| a.name.cmp(&b.name).then(a.kind.cmp(b.kind)));
    all.dedup_by(|a, b| a.name == b.name && a.kind == b.kind);
    all
}

/// A table of the session, where it is found.
pub struct TableEntry {
    pub catalog: String,
    pub schema: String,
    pub name: String,
    pub provider: Arc<dyn TableProvider>,
}

/// Every table of every schema of every catalog in the session.
pub async fn tables(ctx: &SessionContext) -> Result<Vec<TableEntry>> {
    let mut out = Vec::new();
    for catalog_name in ctx.catalog_names() {
        let Some(catalog) = ctx.catalog(&catalog_name) else {
            continue;
        };
        for schema_name in catalog.schema_names() {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            for name in schema.table_names() {
                if let Some(provider) = schema.table(&name).await? {
                    out.push(TableEntry {
                        catalog: catalog_name.clone(),
                        schema: schema_name.clone(),
                        name,
                        provider,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Table names and their columns, for completion.
pub async fn tables_and_columns(ctx: &SessionContext) -> Result<Vec<(String, Vec<String>)>> {
    Ok(tables(ctx)
        .await?
        .into_iter()
        .map(|t| {
            let columns = t
                .provider
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            (t.name, columns)
        })
        .collect())
}
