//! The rewrite of a statement before DataFusion plans it.

use std::ops::ControlFlow;

use datafusion::common::Result;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, Ident, ObjectName, TableFactor, VisitMut,
    VisitorMut,
};

use super::args::relation_query;
use crate::segment_window::SEGMENT_WINDOW;

/// Rewrites what DataFusion cannot plan as written, in a statement: a table name argument of
/// a table form, `predict('m', customers)`, becomes `predict('m', (SELECT * FROM
/// customers))` (DataFusion resolves a statement's tables before planning it and does not
/// look inside table function arguments); and `segment(k, ...) OVER (...)` calls the window
/// function `segment_window` (DataFusion plans a name with a scalar function as that
/// function even with OVER). Call it on statements (or queries) before planning them.
pub fn rewrite_cohort_forms<N: VisitMut>(statement: &mut N) -> Result<()> {
    struct Rewrite(Option<datafusion::common::DataFusionError>);
    impl VisitorMut for Rewrite {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<()> {
            if let SqlExpr::Function(f) = expr
                && f.over.is_some()
                && f.name.to_string().eq_ignore_ascii_case("segment")
            {
                f.name = ObjectName::from(vec![Ident::new(SEGMENT_WINDOW)]);
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let TableFactor::Table {
                name,
                args: Some(args),
                ..
            } = factor
            else {
                return ControlFlow::Continue(());
            };
            if super::form(&name.to_string().to_lowercase()).is_none() {
                return ControlFlow::Continue(());
            }
            for arg in &mut args.args {
                if !matches!(
                    arg,
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(
                        SqlExpr::Identifier(_) | SqlExpr::CompoundIdentifier(_)
                    ))
                ) {
                    continue;
                }
                match relation_query(arg) {
                    Ok(Some(query)) => {
                        *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Subquery(query)))
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.0 = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut rewrite = Rewrite(None);
    let _ = statement.visit(&mut rewrite);
    rewrite.0.map_or(Ok(()), Err)
}
