//! cohort's errors, in the kinds a user or a client acts on.
//!
//! Functions return them inside DataFusion's `Result` as [`DataFusionError::External`], so
//! they pass through DataFusion unchanged and a front end finds them again with
//! [`Error::find`]: the Flight server picks gRPC codes by variant, and [`describe`] gives
//! every front end the same text.

use datafusion::common::DataFusionError;

/// What went wrong; each message names the model, column or option and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No model has this name; the message lists close names.
    #[error("{message}")]
    ModelNotFound { name: String, message: String },
    /// A statement names a table that does not exist.
    #[error("{message}")]
    TableNotFound { table: String, message: String },
    /// The model exists but the function or statement needs another type of model.
    #[error("{0}")]
    WrongModelType(String),
    /// A CREATE MODEL option is missing, unknown or out of range.
    #[error("{0}")]
    InvalidOption(String),
    /// A function got the wrong number, type or value of arguments.
    #[error("{0}")]
    InvalidArgument(String),
    /// The data cannot train or be scored as given: no rows, a NULL or constant column, a
    /// label with one class, a gap in a series, ...
    #[error("{0}")]
    BadInput(String),
    /// A model of this name already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The model store could not be read or written, or holds a damaged or newer model.
    #[error("{0}")]
    Store(String),
    /// CREATE MODEL failed; `source` says why.
    #[error("CREATE MODEL {model}: {source}")]
    CreateModel { model: String, source: Box<Error> },
    /// A statement of DataFusion's own failed inside one of cohort's (the training query of
    /// CREATE MODEL); kept whole so its kind is not lost.
    #[error("{context}: {}", describe(.source))]
    Query {
        context: String,
        source: Box<DataFusionError>,
    },
}

/// `Result` with cohort's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

impl Error {
    /// cohort's error inside `e`, however DataFusion wrapped it.
    pub fn find(e: &DataFusionError) -> Option<&Error> {
        let mut current: &(dyn std::error::Error + 'static) = e;
        loop {
            if let Some(found) = current.downcast_ref::<Error>() {
                return Some(found);
            }
            current = current.source()?;
        }
    }

    /// The error that decides what kind this is: the cause of a failed CREATE MODEL.
    pub fn root(&self) -> &Error {
        match self {
            Error::CreateModel { source, .. } => source.root(),
            other => other,
        }
    }

    /// `self` as the cause of CREATE MODEL `model` failing.
    pub fn in_create_model(self, model: &str) -> Error {
        Error::CreateModel {
            model: model.to_string(),
            source: Box::new(self),
        }
    }
}

/// The text a user sees for `e`. cohort's errors read like DataFusion's own: a mistake in
/// the statement or its data like a planning error, a store that cannot be read or written
/// like an execution error; anything else is written as DataFusion writes it.
pub fn describe(e: &DataFusionError) -> String {
    match Error::find(e) {
        Some(found @ Error::Store(_)) => format!("Execution error: {found}"),
        Some(found) => format!("Error during planning: {found}"),
        None => e.strip_backtrace(),
    }
}

/// An [`Error::InvalidArgument`] with this message.
pub fn invalid_argument(message: impl Into<String>) -> DataFusionError {
    Error::InvalidArgument(message.into()).into()
}

/// An [`Error::BadInput`] with this message.
pub fn bad_input(message: impl Into<String>) -> DataFusionError {
    Error::BadInput(message.into()).into()
}

/// An [`Error::WrongModelType`] with this message.
pub fn wrong_model_type(message: impl Into<String>) -> DataFusionError {
    Error::WrongModelType(message.into()).into()
}

/// `Err` of an [`Error::BadInput`] with a formatted message, as `plan_err!` makes a
/// planning error.
macro_rules! bad_input_err {
    ($($arg:tt)*) => { Err($crate::error::bad_input(format!($($arg)*))) };
}

/// `Err` of an [`Error::InvalidArgument`] with a formatted message.
macro_rules! invalid_argument_err {
    ($($arg:tt)*) => { Err($crate::error::invalid_argument(format!($($arg)*))) };
}

/// `Err` of an [`Error::Store`] with a formatted message.
macro_rules! store_err {
    ($($arg:tt)*) => { Err($crate::error::Error::Store(format!($($arg)*)).into()) };
}

pub(crate) use {bad_input_err, invalid_argument_err, store_err};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_through_wrappers_and_described_as_before() {
        let e: DataFusionError = Error::ModelNotFound {
            name: "dai".into(),
            message: "no model named dai; did you mean dia?".into(),
        }
        .into();
        let wrapped = DataFusionError::Context("scoring".into(), Box::new(e));
        assert!(matches!(
            Error::find(&wrapped),
            Some(Error::ModelNotFound { name, .. }) if name == "dai"
        ));
        assert_eq!(
            describe(&DataFusionError::Shared(std::sync::Arc::new(wrapped))),
            "Error during planning: no model named dai; did you mean dia?"
        );
        let plain = DataFusionError::Plan("syntax error".into());
        assert_eq!(describe(&plain), "Error during planning: syntax error");
    }

    #[test]
    fn create_model_names_the_model_and_keeps_the_cause() {
        let e = Error::InvalidOption("l2_reg must be a number >= 0, got -1".into())
            .in_create_model("m");
        assert_eq!(
            e.to_string(),
            "CREATE MODEL m: l2_reg must be a number >= 0, got -1"
        );
        assert!(matches!(e.root(), Error::InvalidOption(_)));
    }
}
