//! Readers of the arguments of cohort's table forms and table functions, with the messages
//! a user sees when one is wrong.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{Expr, ScalarFunctionArgs};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, ObjectName, Query, Value,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// The relation argument of a table form as a query: a `(subquery)` as it is, a table name
/// as `SELECT * FROM name`; `None` for anything else.
pub(crate) fn relation_query(arg: &FunctionArg) -> Result<Option<Box<Query>>> {
    let FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) = arg else {
        return Ok(None);
    };
    let table = match expr {
        SqlExpr::Subquery(query) => return Ok(Some(query.clone())),
        SqlExpr::Identifier(id) => id.to_string(),
        SqlExpr::CompoundIdentifier(ids) => ObjectName::from(ids.clone()).to_string(),
        _ => return Ok(None),
    };
    let query = Parser::new(&GenericDialect {})
        .try_with_sql(&format!("SELECT * FROM {table}"))
        .and_then(|mut p| p.parse_query())?;
    Ok(Some(query))
}

/// A named argument, `name => value`: the name in lower case and the value.
pub(crate) fn named_argument(arg: &FunctionArg) -> Option<(String, SqlExpr)> {
    match arg {
        FunctionArg::Named {
            name,
            arg: FunctionArgExpr::Expr(e),
            ..
        }
        | FunctionArg::ExprNamed {
            name: SqlExpr::Identifier(name),
            arg: FunctionArgExpr::Expr(e),
            ..
        } => Some((name.value.to_lowercase(), e.clone())),
        _ => None,
    }
}

/// A string literal argument's text.
pub(crate) fn string_argument(arg: &FunctionArg) -> Option<String> {
    match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Value(v))) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A scalar function's arguments as arrays of its rows, scalars repeated (unlike
/// `ColumnarValue::values_to_arrays`, which makes all-scalar arguments one row long).
pub(crate) fn argument_arrays(args: &ScalarFunctionArgs) -> Result<Vec<ArrayRef>> {
    args.args
        .iter()
        .map(|a| a.to_array(args.number_rows))
        .collect()
}

/// The text of a string literal (of any string type), such as a model's name.
pub(crate) fn string_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Literal(value, _) => value.try_as_str().flatten(),
        _ => None,
    }
}

/// A model name argument of a table function: a string literal.
pub(crate) fn model_name(function: &str, name: &Expr) -> Result<String> {
    match string_literal(name) {
        Some(s) => Ok(s.to_string()),
        None => plan_err!("{function} needs the model name as a string literal first"),
    }
}

/// The only argument of a table function that takes just a model name.
pub(crate) fn model_name_argument(function: &str, args: &[Expr]) -> Result<String> {
    match args {
        [name] => model_name(function, name)
            .or_else(|_| plan_err!("{function} takes one argument, the model name as a string")),
        _ => plan_err!("{function} takes one argument, the model name as a string"),
    }
}

/// A positive integer literal argument, `what` (such as `k`) of `function`.
pub(crate) fn count_argument(function: &str, what: &str, k: &Expr) -> Result<usize> {
    match k {
        Expr::Literal(v, _) if v.data_type().is_integer() => match v.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(k)) if k >= 1 => Ok(k as usize),
            other => plan_err!("{function}'s {what} must be at least 1, got {other}"),
        },
        _ => plan_err!("{function}'s {what} must be an integer literal, got {k}"),
    }
}

/// The model name and the table or subquery of a form called as `form('model',
/// relation)`.
pub(crate) fn model_and_input(form: &str, args: &[FunctionArg]) -> Result<(String, Box<Query>)> {
    match args {
        [model, input] => model_and_relation(form, model, input),
        _ => model_and_input_usage(form),
    }
}

/// The model name and relation arguments of a form.
pub(crate) fn model_and_relation(
    form: &str,
    model: &FunctionArg,
    input: &FunctionArg,
) -> Result<(String, Box<Query>)> {
    match (string_argument(model), relation_query(input)?) {
        (Some(name), Some(query)) => Ok((name, query)),
        _ => model_and_input_usage(form),
    }
}

/// How a form that takes a model and a relation is called.
pub(crate) fn model_and_input_usage<T>(form: &str) -> Result<T> {
    plan_err!(
        "{form} in FROM takes the model name and a table or a (subquery), e.g. SELECT * FROM \
         {form}('churn', customers)"
    )
}
