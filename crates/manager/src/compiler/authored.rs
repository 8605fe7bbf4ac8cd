//! Turns the tasks a script authored into [`AuthoredTask`]s: dependencies become uuids of tasks
//! in the same job, and a job whose tasks could never all run (a dependency on a task that was
//! never added, or a dependency cycle) is refused at compile time instead of getting stuck later.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use super::{AuthoredCommand, AuthoredTask, CompileError};

/// A task as the prelude's `exportTask` writes it (a JSON array in field order). Tasks are
/// identified by a number unique in the sandbox; `uuid` is set only when the script read it
/// (the others get theirs here).
#[derive(Debug, Deserialize)]
pub(crate) struct ExportedTask {
    number: u64,
    uuid: Option<String>,
    name: String,
    #[serde(rename = "type")]
    task_type: String,
    priority: i32,
    commands: Vec<ExportedCommand>,
    dependencies: Vec<ExportedDependency>,
}

#[derive(Debug, Deserialize)]
struct ExportedCommand {
    name: String,
    parameters: serde_json::Value,
    total_step_count: u32,
}

#[derive(Debug, Deserialize)]
struct ExportedDependency {
    number: u64,
    name: String,
}

/// How many blocked task names a cycle error lists before "…".
const MAX_NAMED_TASKS: usize = 5;

pub(crate) fn finish_tasks(
    job_type: &str,
    exported: Vec<ExportedTask>,
) -> Result<Vec<AuthoredTask>, CompileError> {
    let script_error = |message: String| CompileError::Script {
        job_type: job_type.to_owned(),
        message,
        location: None,
    };

    let mut index_by_number: HashMap<u64, usize> = HashMap::with_capacity(exported.len());
    for (index, task) in exported.iter().enumerate() {
        if index_by_number.insert(task.number, index).is_some() {
            return Err(script_error(format!(
                "task \"{}\" appears in job.tasks more than once",
                task.name
            )));
        }
    }
    for task in &exported {
        if let Some(missing) = task
            .dependencies
            .iter()
            .find(|dependency| !index_by_number.contains_key(&dependency.number))
        {
            return Err(script_error(format!(
                "task \"{}\" depends on task \"{}\", which was never added to the job (use job.addTask)",
                task.name, missing.name
            )));
        }
    }
    if let Some(blocked) = tasks_blocked_by_cycles(&exported, &index_by_number) {
        return Err(script_error(format!(
            "tasks depend on each other in a cycle, so these could never run: {blocked}"
        )));
    }

    let mut random = rand::rng();
    let uuids: Vec<String> = exported
        .iter()
        .map(|task| {
            task.uuid
                .clone()
                .unwrap_or_else(|| random_uuid(&mut random))
        })
        .collect();
    Ok(exported
        .into_iter()
        .enumerate()
        .map(|(index, task)| {
            // Depending twice on one task means nothing more than depending once.
            let mut seen: HashSet<usize> = HashSet::with_capacity(task.dependencies.len());
            let dependencies = task
                .dependencies
                .iter()
                .filter_map(|dependency| index_by_number.get(&dependency.number).copied())
                .filter(|&dependency| seen.insert(dependency))
                .map(|dependency| uuids[dependency].clone())
                .collect();
            into_authored(task, uuids[index].clone(), dependencies)
        })
        .collect())
}

/// A version 4 uuid from a fast CSPRNG (one system call per uuid adds up over 100k tasks).
fn random_uuid(random: &mut impl rand::RngCore) -> String {
    let mut bytes = [0u8; 16];
    random.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn into_authored(task: ExportedTask, uuid: String, dependencies: Vec<String>) -> AuthoredTask {
    AuthoredTask {
        uuid,
        name: task.name,
        task_type: task.task_type,
        priority: task.priority,
        commands: task
            .commands
            .into_iter()
            .map(|command| AuthoredCommand {
                name: command.name,
                parameters: command.parameters,
                total_step_count: command.total_step_count,
            })
            .collect(),
        dependencies,
    }
}

/// Kahn's algorithm: tasks never reaching zero unmet dependencies sit in or behind a cycle.
/// Returns their names (a few of them) when there are any.
fn tasks_blocked_by_cycles(
    tasks: &[ExportedTask],
    index_by_number: &HashMap<u64, usize>,
) -> Option<String> {
    let mut unmet: Vec<usize> = vec![0; tasks.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for (index, task) in tasks.iter().enumerate() {
        let distinct: HashSet<usize> = task
            .dependencies
            .iter()
            .filter_map(|dependency| index_by_number.get(&dependency.number).copied())
            .collect();
        unmet[index] = distinct.len();
        for dependency in distinct {
            dependents[dependency].push(index);
        }
    }
    let mut ready: Vec<usize> = (0..tasks.len())
        .filter(|&index| unmet[index] == 0)
        .collect();
    let mut runnable = 0;
    while let Some(index) = ready.pop() {
        runnable += 1;
        for &dependent in &dependents[index] {
            unmet[dependent] -= 1;
            if unmet[dependent] == 0 {
                ready.push(dependent);
            }
        }
    }
    if runnable == tasks.len() {
        return None;
    }
    let blocked: Vec<String> = (0..tasks.len())
        .filter(|&index| unmet[index] > 0)
        .map(|index| format!("\"{}\"", tasks[index].name))
        .collect();
    let mut listed = blocked[..blocked.len().min(MAX_NAMED_TASKS)].join(", ");
    if blocked.len() > MAX_NAMED_TASKS {
        listed.push_str(", …");
    }
    Some(listed)
}
