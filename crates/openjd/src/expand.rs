//! A template plus parameter values → a job: the job's name, the value of every parameter,
//! and each step's tasks with their resolved action and embedded files.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result, invalid};
use crate::format::{Scope, resolve};
use crate::params::{ParamType, resolve_values};
use crate::template::{RangeTemplate, StepTemplate, Template};
use crate::{Action, EmbeddedFile, Job, ParameterValue, Step, Task};

/// Most tasks one job may have, over all its steps, unless the caller says otherwise.
pub const DEFAULT_MAX_TASKS: u64 = 100_000;

/// The longest job name, after its format string is resolved.
const MAX_JOB_NAME: usize = 128;

impl Template {
    /// Makes the job for these parameter values (missing ones take their defaults).
    pub fn instantiate(&self, submitted: &BTreeMap<String, Value>, max_tasks: u64) -> Result<Job> {
        let values = resolve_values(&self.parameters, submitted)?;
        let job_scope = Scope {
            params: Some(&values),
            ..Scope::default()
        };
        let name = resolve(&self.name, "name", &job_scope)?;
        crate::doc::check_display_name(&name, "name (resolved)", MAX_JOB_NAME)?;
        let mut steps = Vec::with_capacity(self.steps.len());
        let mut total: u64 = 0;
        for step in &self.steps {
            let step = expand_step(step, &values, &name, max_tasks.saturating_sub(total))?;
            total += step.tasks.len() as u64;
            steps.push(step);
        }
        let parameters = self
            .parameters
            .iter()
            .map(|d| ParameterValue {
                name: d.name.clone(),
                kind: d.kind,
                value: values.get(&d.name).cloned().unwrap_or_default(),
            })
            .collect();
        Ok(Job {
            name,
            parameters,
            steps,
        })
    }
}

fn expand_step(
    step: &StepTemplate,
    values: &BTreeMap<String, String>,
    job_name: &str,
    room: u64,
) -> Result<Step> {
    let param_scope = Scope {
        params: Some(values),
        ..Scope::default()
    };
    // Each task parameter's values, resolved and checked against its type.
    let mut ranges: Vec<Vec<String>> = Vec::with_capacity(step.task_parameters.len());
    for definition in &step.task_parameters {
        let p = &definition.path;
        let list = match &definition.range {
            RangeTemplate::Expr(expr) => {
                let text = resolve(expr, &format!("{p}.range"), &param_scope)?;
                crate::range::parse(&text, room.max(1))
                    .map_err(|e| too_big_or_invalid(format!("{p}.range: {e}")))?
                    .into_iter()
                    .map(|n| n.to_string())
                    .collect()
            }
            RangeTemplate::List(items) => {
                let mut list = Vec::with_capacity(items.len());
                for (j, item) in items.iter().enumerate() {
                    let at = format!("{p}.range[{j}]");
                    let text = resolve(item, &at, &param_scope)?;
                    list.push(check_task_value(definition.kind, text, &at)?);
                }
                list
            }
        };
        ranges.push(list);
    }
    let lens: Vec<usize> = ranges.iter().map(Vec::len).collect();
    let expr = step
        .combination
        .clone()
        .unwrap_or_else(|| crate::combination::default_for(lens.len()));
    let size = expr
        .size(&lens)
        .map_err(|e| invalid(format!("{}.parameterSpace.combination: {e}", step.path)))?;
    if size > u128::from(room) {
        return Err(Error::TooBig(format!(
            "{} (\"{}\") would make {size} tasks, more than the {room} left of this job's limit",
            step.path, step.name
        )));
    }
    let file_names: Vec<String> = step.files.iter().map(|f| f.name.clone()).collect();
    let rows = if step.task_parameters.is_empty() {
        vec![Vec::new()]
    } else {
        expr.rows(&lens)
    };
    let mut tasks = Vec::with_capacity(rows.len());
    for row in rows {
        let parameters: Vec<(String, String)> = step
            .task_parameters
            .iter()
            .zip(&row)
            .enumerate()
            .map(|(i, (d, v))| (d.name.clone(), ranges[i][v.unwrap_or(0)].clone()))
            .collect();
        let scope = Scope {
            params: Some(values),
            task: Some(&parameters),
            files: Some(&file_names),
            session: true,
            job_name: Some(job_name),
            step_name: Some(&step.name),
        };
        tasks.push(make_task(step, parameters.clone(), &scope)?);
    }
    Ok(Step {
        name: step.name.clone(),
        dependencies: step.dependencies.clone(),
        tasks,
    })
}

fn make_task(
    step: &StepTemplate,
    parameters: Vec<(String, String)>,
    scope: &Scope<'_>,
) -> Result<Task> {
    let a = &step.action;
    let command = resolve(&a.command, &format!("{}.command", a.path), scope)?;
    if command.trim().is_empty() {
        return Err(invalid(format!("{}.command resolves to nothing", a.path)));
    }
    let args = a
        .args
        .iter()
        .enumerate()
        .map(|(i, arg)| resolve(arg, &format!("{}.args[{i}]", a.path), scope))
        .collect::<Result<Vec<_>>>()?;
    let files = step
        .files
        .iter()
        .map(|f| {
            Ok(EmbeddedFile {
                name: f.name.clone(),
                filename: f.filename.clone(),
                data: resolve(&f.data, &format!("{}.data", f.path), scope)?,
                runnable: f.runnable,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let name = if parameters.is_empty() {
        step.name.clone()
    } else {
        let shown: Vec<String> = parameters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{} {}", step.name, shown.join(" "))
    };
    Ok(Task {
        name,
        parameters,
        action: Action {
            command,
            args,
            timeout_seconds: a.timeout_seconds,
        },
        files,
    })
}

/// A task parameter value must read as its type (INT ranges are whole numbers, …).
fn check_task_value(kind: ParamType, text: String, at: &str) -> Result<String> {
    match kind {
        ParamType::Int => text
            .trim()
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| invalid(format!("{at}: \"{text}\" is not a whole number"))),
        ParamType::Float => match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(text.trim().to_owned()),
            _ => Err(invalid(format!("{at}: \"{text}\" is not a number"))),
        },
        ParamType::String | ParamType::Path => {
            let length = text.chars().count();
            if length == 0 || length > 1024 {
                return Err(invalid(format!(
                    "{at}: a value must be 1 to 1024 characters long, not {length}"
                )));
            }
            Ok(text)
        }
    }
}

fn too_big_or_invalid(message: String) -> Error {
    if message.contains("more than") {
        Error::TooBig(message)
    } else {
        Error::Invalid(message)
    }
}
