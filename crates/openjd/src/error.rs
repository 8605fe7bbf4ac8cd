//! What can be wrong with a template or its parameter values. Every message names the
//! place in the template (`steps[1].script.actions.onRun.command`) or the parameter.

/// Why a template, or a job made from it, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Neither YAML nor JSON, or not a mapping at the top.
    #[error("the template is not valid YAML or JSON: {0}")]
    Syntax(String),
    /// A feature of the specification that Castanet does not run.
    #[error("{0}")]
    Unsupported(String),
    /// The template breaks a rule of the specification.
    #[error("{0}")]
    Invalid(String),
    /// A submitted (or default) parameter value breaks its definition.
    #[error("{0}")]
    Parameter(String),
    /// The job would have more tasks than Castanet takes from one template.
    #[error("{0}")]
    TooBig(String),
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

pub(crate) fn unsupported(message: impl Into<String>) -> Error {
    Error::Unsupported(message.into())
}
