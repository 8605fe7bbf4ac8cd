//! The template's structure, read and checked: everything that does not depend on the
//! parameter values. Format strings are kept as written; [`crate::expand`] resolves them.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::doc::{Keys, Obj, check_display_name, check_identifier, parse_text, scalar_text};
use crate::error::{Result, invalid, unsupported};
use crate::params::{ParamDefinition, ParamType};

/// The only specification version Castanet reads.
pub const SPECIFICATION_VERSION: &str = "jobtemplate-2023-09";

/// A checked job template.
#[derive(Debug, Clone)]
pub struct Template {
    /// A format string over the job parameters.
    pub(crate) name: String,
    pub description: Option<String>,
    pub parameters: Vec<ParamDefinition>,
    pub(crate) steps: Vec<StepTemplate>,
}

#[derive(Debug, Clone)]
pub(crate) struct StepTemplate {
    pub name: String,
    pub path: String,
    pub dependencies: Vec<String>,
    pub task_parameters: Vec<TaskParamDefinition>,
    /// Absent: the product of all task parameters.
    pub combination: Option<crate::combination::Expr>,
    pub action: ActionTemplate,
    pub files: Vec<FileTemplate>,
}

#[derive(Debug, Clone)]
pub(crate) struct TaskParamDefinition {
    pub name: String,
    pub kind: ParamType,
    pub path: String,
    pub range: RangeTemplate,
}

#[derive(Debug, Clone)]
pub(crate) enum RangeTemplate {
    /// Each element a format string (numbers kept as written).
    List(Vec<String>),
    /// An INT range expression such as `1-{{Param.End}}`, a format string.
    Expr(String),
}

#[derive(Debug, Clone)]
pub(crate) struct ActionTemplate {
    pub path: String,
    pub command: String,
    pub args: Vec<String>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct FileTemplate {
    pub path: String,
    pub name: String,
    pub filename: Option<String>,
    pub data: String,
    pub runnable: bool,
}

/// Most job parameters a template may define, and task parameters a step may define.
const MAX_JOB_PARAMETERS: usize = 50;
const MAX_TASK_PARAMETERS: usize = 16;
/// Most values in a task parameter's range list.
const MAX_RANGE_LIST: usize = 1024;

impl Template {
    /// Reads a template from YAML or JSON text and checks its structure.
    pub fn parse(text: &str) -> Result<Self> {
        let root = parse_text(text)?;
        let obj = Obj::new(&root, "", "a job template")?;
        match obj.get("specificationVersion") {
            Some(Value::String(v)) if v == SPECIFICATION_VERSION => {}
            Some(Value::String(v)) if v.starts_with("environment-") => {
                return Err(unsupported(format!(
                    "environment templates ({v}) are not supported; Castanet reads job templates \
                     ({SPECIFICATION_VERSION})"
                )));
            }
            Some(Value::String(v)) => {
                return Err(unsupported(format!(
                    "specificationVersion \"{v}\" is not supported; Castanet reads \
                     {SPECIFICATION_VERSION}"
                )));
            }
            Some(_) => return Err(invalid("specificationVersion must be a string")),
            None => return Err(invalid("specificationVersion is required")),
        }
        obj.check_keys(
            &Keys {
                known: &[
                    "specificationVersion",
                    "name",
                    "description",
                    "parameterDefinitions",
                    "steps",
                ],
                unsupported: &["jobEnvironments", "extensions"],
                ignored: &["$schema"],
            },
            "a job template",
        )?;
        let name = obj.required_string("name")?.to_owned();
        let mut parameters = Vec::new();
        for (i, value) in obj
            .list("parameterDefinitions")?
            .into_iter()
            .flatten()
            .enumerate()
        {
            let definition = ParamDefinition::parse(value, &format!("parameterDefinitions[{i}]"))?;
            if parameters
                .iter()
                .any(|p: &ParamDefinition| p.name == definition.name)
            {
                return Err(invalid(format!(
                    "parameterDefinitions[{i}].name: {} is defined twice",
                    definition.name
                )));
            }
            parameters.push(definition);
        }
        if parameters.len() > MAX_JOB_PARAMETERS {
            return Err(invalid(format!(
                "parameterDefinitions has {} entries; at most {MAX_JOB_PARAMETERS} are allowed",
                parameters.len()
            )));
        }
        let steps_value = obj
            .list("steps")?
            .ok_or_else(|| invalid("steps is required"))?;
        let mut steps: Vec<StepTemplate> = Vec::new();
        for (i, value) in steps_value.iter().enumerate() {
            let step = parse_step(value, &format!("steps[{i}]"))?;
            if steps.iter().any(|s| s.name == step.name) {
                return Err(invalid(format!(
                    "steps[{i}].name: two steps are named \"{}\"",
                    step.name
                )));
            }
            steps.push(step);
        }
        check_dependencies(&steps)?;
        Ok(Self {
            name,
            description: obj.string("description")?.map(str::to_owned),
            parameters,
            steps,
        })
    }
}

fn parse_step(value: &Value, path: &str) -> Result<StepTemplate> {
    let obj = Obj::new(value, path, "a step")?;
    obj.check_keys(
        &Keys {
            known: &[
                "name",
                "description",
                "dependencies",
                "parameterSpace",
                "script",
            ],
            unsupported: &["stepEnvironments", "hostRequirements"],
            ignored: &[],
        },
        "a step",
    )?;
    let name = obj.required_string("name")?.to_owned();
    check_display_name(&name, &obj.child("name"), 64)?;
    let mut dependencies = Vec::new();
    for (i, dep) in obj.list("dependencies")?.into_iter().flatten().enumerate() {
        let dep = Obj::new(
            dep,
            format!("{path}.dependencies[{i}]"),
            "a step dependency",
        )?;
        dep.check_keys(
            &Keys {
                known: &["dependsOn"],
                unsupported: &[],
                ignored: &[],
            },
            "a step dependency",
        )?;
        let on = dep.required_string("dependsOn")?.to_owned();
        if !dependencies.contains(&on) {
            dependencies.push(on);
        }
    }
    let (task_parameters, combination) = match obj.get("parameterSpace") {
        None => (Vec::new(), None),
        Some(space) => parse_space(space, &obj.child("parameterSpace"))?,
    };
    let script = Obj::new(
        obj.required("script")?,
        obj.child("script"),
        "a step script",
    )?;
    script.check_keys(
        &Keys {
            known: &["actions", "embeddedFiles"],
            unsupported: &[],
            ignored: &[],
        },
        "a step script",
    )?;
    let actions = Obj::new(
        script.required("actions")?,
        script.child("actions"),
        "the step actions",
    )?;
    actions.check_keys(
        &Keys {
            known: &["onRun"],
            unsupported: &[],
            ignored: &[],
        },
        "the step actions",
    )?;
    let action = parse_action(actions.required("onRun")?, &actions.child("onRun"))?;
    let mut files: Vec<FileTemplate> = Vec::new();
    for (i, file) in script
        .list("embeddedFiles")?
        .into_iter()
        .flatten()
        .enumerate()
    {
        let file = parse_file(file, &format!("{}.embeddedFiles[{i}]", script.path))?;
        if files.iter().any(|f| f.name == file.name) {
            return Err(invalid(format!(
                "{}.name: two embedded files are named {}",
                file.path, file.name
            )));
        }
        if file.filename.is_some() && files.iter().any(|f| f.filename == file.filename) {
            return Err(invalid(format!(
                "{}.filename: two embedded files have this filename",
                file.path
            )));
        }
        files.push(file);
    }
    Ok(StepTemplate {
        name,
        path: path.to_owned(),
        dependencies,
        task_parameters,
        combination,
        action,
        files,
    })
}

fn parse_space(
    value: &Value,
    path: &str,
) -> Result<(Vec<TaskParamDefinition>, Option<crate::combination::Expr>)> {
    let obj = Obj::new(value, path, "a parameter space")?;
    obj.check_keys(
        &Keys {
            known: &["taskParameterDefinitions", "combination"],
            unsupported: &[],
            ignored: &[],
        },
        "a parameter space",
    )?;
    let list = obj
        .list("taskParameterDefinitions")?
        .ok_or_else(|| invalid(format!("{path}.taskParameterDefinitions is required")))?;
    if list.len() > MAX_TASK_PARAMETERS {
        return Err(invalid(format!(
            "{path}.taskParameterDefinitions has {} entries; at most {MAX_TASK_PARAMETERS} are allowed",
            list.len()
        )));
    }
    let mut definitions: Vec<TaskParamDefinition> = Vec::new();
    for (i, value) in list.iter().enumerate() {
        let p = format!("{path}.taskParameterDefinitions[{i}]");
        let d = Obj::new(value, p.clone(), "a task parameter definition")?;
        d.check_keys(
            &Keys {
                known: &["name", "type", "range"],
                unsupported: &["chunks"],
                ignored: &[],
            },
            "a task parameter definition",
        )?;
        let name = d.required_string("name")?.to_owned();
        check_identifier(&name, &d.child("name"))?;
        if definitions.iter().any(|t| t.name == name) {
            return Err(invalid(format!("{p}.name: {name} is defined twice")));
        }
        let kind = ParamType::parse(d.required_string("type")?, &d.child("type"))?;
        let range = match d.required("range")? {
            Value::String(expr) if kind == ParamType::Int => RangeTemplate::Expr(expr.clone()),
            Value::Array(items) if !items.is_empty() && items.len() <= MAX_RANGE_LIST => {
                let texts = items
                    .iter()
                    .enumerate()
                    .map(|(j, item)| match (kind, item) {
                        (ParamType::Int | ParamType::Float, Value::Number(_))
                        | (_, Value::String(_)) => Ok(scalar_text(item).unwrap_or_default()),
                        _ => Err(invalid(format!(
                            "{p}.range[{j}] must be a {} value",
                            kind.as_str()
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                RangeTemplate::List(texts)
            }
            Value::Array(items) => {
                return Err(invalid(format!(
                    "{p}.range must have 1 to {MAX_RANGE_LIST} values, not {}",
                    items.len()
                )));
            }
            _ if kind == ParamType::Int => {
                return Err(invalid(format!(
                    "{p}.range must be a list or a range expression such as \"1-10\""
                )));
            }
            _ => return Err(invalid(format!("{p}.range must be a list"))),
        };
        definitions.push(TaskParamDefinition {
            name,
            kind,
            path: p,
            range,
        });
    }
    let names: Vec<String> = definitions.iter().map(|d| d.name.clone()).collect();
    let combination = match obj.string("combination")? {
        None => None,
        Some(text) => Some(
            crate::combination::parse(text, &names)
                .map_err(|e| invalid(format!("{path}.combination \"{text}\": {e}")))?,
        ),
    };
    Ok((definitions, combination))
}

fn parse_action(value: &Value, path: &str) -> Result<ActionTemplate> {
    let obj = Obj::new(value, path, "an action")?;
    obj.check_keys(
        &Keys {
            known: &["command", "args", "timeout", "cancelation"],
            unsupported: &[],
            ignored: &[],
        },
        "an action",
    )?;
    let command = obj.required_string("command")?.to_owned();
    if command.is_empty() {
        return Err(invalid(format!("{path}.command must not be empty")));
    }
    let args = obj
        .list("args")?
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, a)| {
            scalar_text(a).ok_or_else(|| invalid(format!("{path}.args[{i}] must be a string")))
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(cancelation) = obj.get("cancelation") {
        let c = Obj::new(
            cancelation,
            obj.child("cancelation"),
            "a cancelation method",
        )?;
        c.check_keys(
            &Keys {
                known: &["mode", "notifyPeriodInSeconds"],
                unsupported: &[],
                ignored: &[],
            },
            "a cancelation method",
        )?;
        match c.required_string("mode")? {
            // What Castanet does on abort: the whole process tree is killed.
            "TERMINATE" => {}
            "NOTIFY_THEN_TERMINATE" => {
                return Err(unsupported(format!(
                    "{path}.cancelation mode NOTIFY_THEN_TERMINATE is not supported (Castanet \
                     stops a task by killing its processes: use TERMINATE or leave it out)"
                )));
            }
            other => {
                return Err(invalid(format!(
                    "{path}.cancelation.mode \"{other}\" is not a cancelation mode"
                )));
            }
        }
    }
    Ok(ActionTemplate {
        path: path.to_owned(),
        command,
        args,
        timeout_seconds: obj.positive_int("timeout")?,
    })
}

fn parse_file(value: &Value, path: &str) -> Result<FileTemplate> {
    let obj = Obj::new(value, path, "an embedded file")?;
    obj.check_keys(
        &Keys {
            known: &["name", "type", "filename", "runnable", "data"],
            unsupported: &[],
            ignored: &[],
        },
        "an embedded file",
    )?;
    let name = obj.required_string("name")?.to_owned();
    check_identifier(&name, &obj.child("name"))?;
    match obj.required_string("type")? {
        "TEXT" => {}
        other => {
            return Err(unsupported(format!(
                "{path}.type {other} is not supported (only TEXT embedded files are)"
            )));
        }
    }
    let filename = obj.string("filename")?.map(str::to_owned);
    if let Some(f) = &filename {
        let plain = !f.is_empty()
            && f.chars().count() <= 64
            && !f.contains(['/', '\\'])
            && f != "."
            && f != ".."
            && !f.chars().any(char::is_control);
        if !plain {
            return Err(invalid(format!(
                "{path}.filename \"{f}\" must be a plain file name of 1 to 64 characters, without directories"
            )));
        }
    }
    let data = obj.required_string("data")?.to_owned();
    Ok(FileTemplate {
        path: path.to_owned(),
        name,
        filename,
        data,
        runnable: obj.bool("runnable")?.unwrap_or(false),
    })
}

/// Every dependency names another step, and they form no cycle.
fn check_dependencies(steps: &[StepTemplate]) -> Result<()> {
    for step in steps {
        for (i, dep) in step.dependencies.iter().enumerate() {
            if dep == &step.name {
                return Err(invalid(format!(
                    "{}.dependencies[{i}]: a step cannot depend on itself",
                    step.path
                )));
            }
            if !steps.iter().any(|s| &s.name == dep) {
                return Err(invalid(format!(
                    "{}.dependencies[{i}]: there is no step named \"{dep}\"",
                    step.path
                )));
            }
        }
    }
    // Kahn's algorithm: whatever is never freed lies on a cycle.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    loop {
        let ready: Vec<&str> = steps
            .iter()
            .filter(|s| !done.contains(s.name.as_str()))
            .filter(|s| s.dependencies.iter().all(|d| done.contains(d.as_str())))
            .map(|s| s.name.as_str())
            .collect();
        if ready.is_empty() {
            break;
        }
        done.extend(ready);
    }
    match steps.iter().find(|s| !done.contains(s.name.as_str())) {
        None => Ok(()),
        Some(step) => Err(invalid(format!(
            "{}.dependencies: step \"{}\" is part of a dependency cycle",
            step.path, step.name
        ))),
    }
}
