//! Open Job Description job templates (specification version `jobtemplate-2023-09`) for
//! Castanet: read a template (YAML or JSON), check it, take parameter values, and expand it
//! into steps of tasks the manager stores and workers run with the `openjd-run` command.
//! No I/O here: text in, a plain [`Job`] (or an [`Error`] naming the problem) out.
//!
//! Supported: job parameters (INT, FLOAT, STRING, PATH with their constraints), steps with
//! dependencies, parameter spaces (lists, INT range expressions, combination expressions),
//! `onRun` actions with a timeout, TEXT embedded files and format strings. Refused with a
//! message naming them: environments, host requirements, extensions, other embedded-file
//! types, `NOTIFY_THEN_TERMINATE` cancelation, other specification versions.

mod combination;
mod doc;
mod error;
mod expand;
mod format;
mod params;
mod range;
mod template;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

pub use error::{Error, Result};
pub use expand::DEFAULT_MAX_TASKS;
pub use format::{SESSION_DIR_MARKER, file_marker};
pub use params::{ParamDefinition, ParamType};
pub use template::{SPECIFICATION_VERSION, Template};

/// A job made from a template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// The template's `name`, resolved.
    pub name: String,
    /// Every job parameter's value (submitted or default), in definition order.
    pub parameters: Vec<ParameterValue>,
    /// In template order.
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParameterValue {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamType,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub name: String,
    /// Names of the steps whose tasks must all complete first.
    pub dependencies: Vec<String>,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    /// The step name, then each task parameter as `Name=value` (`Render Frame=3 Layer=bg`).
    pub name: String,
    /// Task parameter values, in the step's definition order.
    pub parameters: Vec<(String, String)>,
    pub action: Action,
    pub files: Vec<EmbeddedFile>,
}

/// The `onRun` action, resolved except for the worker-side markers
/// ([`file_marker`], [`SESSION_DIR_MARKER`]). Cancelation is always by killing the
/// process tree (`TERMINATE`), the only mode accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub command: String,
    pub args: Vec<String>,
    pub timeout_seconds: Option<u64>,
}

/// A TEXT embedded file; `data` may hold worker-side markers too.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmbeddedFile {
    pub name: String,
    /// The file's name in the session directory; the worker picks one when absent.
    pub filename: Option<String>,
    pub data: String,
    pub runnable: bool,
}

/// Reads `text` and makes the job for `parameters` (values as JSON; text for numbers is
/// fine), with at most [`DEFAULT_MAX_TASKS`] tasks.
pub fn expand(text: &str, parameters: &BTreeMap<String, serde_json::Value>) -> Result<Job> {
    Template::parse(text)?.instantiate(parameters, DEFAULT_MAX_TASKS)
}

impl Job {
    pub fn task_count(&self) -> usize {
        self.steps.iter().map(|s| s.tasks.len()).sum()
    }
}
