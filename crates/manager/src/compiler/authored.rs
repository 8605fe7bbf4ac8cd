//! Turns the tasks a script authored into [`AuthoredTask`]s, a batch at a time, so they can be
//! stored while the rest are still being exported: dependencies become uuids of tasks in the same
//! job, and a job whose tasks could never all run (a task added twice, a dependency on a task that
//! was never added, or a dependency cycle) is refused when the last batch is in.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{AuthoredCommand, AuthoredTask, CompileError};

/// A task as the prelude's `exportTasks` writes it (a JSON array in this order), its commands
/// kept as the JSON text to be stored. Tasks are identified by a number unique in the sandbox,
/// counted from 0 in creation order.
#[derive(Debug, Deserialize)]
struct ExportedTask<'a> {
    number: u64,
    name: String,
    task_type: String,
    priority: i32,
    steps_total: u64,
    #[serde(borrow)]
    commands: &'a RawValue,
    /// The frames it renders, when the script declared them (`task.setFrames`).
    frames: Option<String>,
}

/// How many blocked task names a cycle error lists before "…".
const MAX_NAMED_TASKS: usize = 5;

/// Commands JSON with more brackets than this (or holding `\u` escapes, which may be lone
/// surrogates) is parsed in full before it is handed out, so every stored text reads back.
const MAX_UNCHECKED_BRACKETS: usize = 64;

/// The most command text (JSON) one task may hold: half of what a worker decodes in one
/// instruction, leaving the rest for variables expanded at hand-out. Larger data belongs in files.
pub(crate) const MAX_TASK_COMMANDS_BYTES: usize = castanet_protocol::MAX_INSTRUCTION_BYTES / 2;

/// Which task depends on which, as the prelude's `exportGraph` read it.
struct TaskGraph {
    /// Task number per index in job.tasks.
    numbers: Vec<u64>,
    index_by_number: HashMap<u64, usize>,
    /// (index, distinct numbers of the tasks it depends on), for tasks with dependencies.
    dependencies: Vec<(usize, Vec<u64>)>,
    /// The first index whose task was added before.
    duplicate: Option<usize>,
}

impl TaskGraph {
    fn read(json: &str) -> Result<Self, serde_json::Error> {
        let (numbers, mut dependencies): (Vec<u64>, Vec<(usize, Vec<u64>)>) =
            serde_json::from_str(json)?;
        let mut index_by_number = HashMap::with_capacity(numbers.len());
        let mut duplicate = None;
        for (index, &number) in numbers.iter().enumerate() {
            if index_by_number.insert(number, index).is_some() && duplicate.is_none() {
                duplicate = Some(index);
            }
        }
        // Depending twice on one task means nothing more than depending once.
        dependencies.retain_mut(|(_, numbers)| {
            if numbers.len() > 1 {
                let mut seen = HashSet::with_capacity(numbers.len());
                numbers.retain(|number| seen.insert(*number));
            }
            !numbers.is_empty()
        });
        Ok(TaskGraph {
            numbers,
            index_by_number,
            dependencies,
            duplicate,
        })
    }

    /// The first dependency on a task that is not in job.tasks: (index of the task, number).
    fn first_missing(&self) -> Option<(usize, u64)> {
        self.dependencies.iter().find_map(|(index, numbers)| {
            numbers
                .iter()
                .find(|number| !self.index_by_number.contains_key(number))
                .map(|&number| (*index, number))
        })
    }
}

/// A job's tasks while they are exported, and the checks that need all of them.
pub(crate) struct TaskExport {
    /// The task numbers the graph mentions, ascending, and a fresh uuid for each at the same
    /// position, also ascending: storing a big job appends to the task-id index instead of
    /// touching random pages of it. Only numbers in the graph get one: a count of created tasks
    /// could be huge (throw-away tasks, or a script that forged the prelude's export) and would
    /// cost memory outside the script's limit.
    numbered: Vec<u64>,
    fresh_uuids: Vec<uuid::Uuid>,
    /// Uuids the script read (`task.uuid`), by task number.
    read_uuids: HashMap<u64, String>,
    /// `None` when the graph could not be read: exporting the tasks then fails.
    graph: Option<TaskGraph>,
    /// Names of the tasks exported so far, for error messages.
    names: Vec<String>,
}

impl TaskExport {
    /// `graph_json`: what `exportGraph` returned.
    pub(crate) fn new(
        read_uuids: HashMap<u64, String>,
        graph_json: Option<&str>,
    ) -> Result<Self, String> {
        let graph = graph_json
            .map(TaskGraph::read)
            .transpose()
            .map_err(|error| format!("the job's task graph could not be read: {error}"))?;
        let mut numbered: Vec<u64> = graph
            .iter()
            .flat_map(|graph| {
                let depended = graph.dependencies.iter().flat_map(|(_, numbers)| numbers);
                graph.numbers.iter().chain(depended).copied()
            })
            .collect();
        numbered.sort_unstable();
        numbered.dedup();
        let mut random = rand::rng();
        let mut fresh_uuids: Vec<uuid::Uuid> =
            numbered.iter().map(|_| random_uuid(&mut random)).collect();
        fresh_uuids.sort_unstable();
        Ok(TaskExport {
            numbered,
            fresh_uuids,
            read_uuids,
            names: Vec::with_capacity(graph.as_ref().map_or(0, |graph| graph.numbers.len())),
            graph,
        })
    }

    /// Every dependency as uuids — (task, tasks it waits for) — when the graph is sound (no task
    /// added twice, none depending on a task that is not in the job). When it is not, the compile
    /// fails anyway.
    pub(crate) fn dependencies(&self) -> Option<Vec<(String, Vec<String>)>> {
        let graph = self.graph.as_ref()?;
        if graph.duplicate.is_some() || graph.first_missing().is_some() {
            return None;
        }
        Some(
            graph
                .dependencies
                .iter()
                .map(|(index, numbers)| {
                    (
                        self.uuid(graph.numbers[*index]),
                        numbers.iter().map(|&number| self.uuid(number)).collect(),
                    )
                })
                .collect(),
        )
    }

    /// Reads one batch of `exportTasks` (a JSON array of tasks). Returns the tasks to hand out,
    /// without their dependencies (see [`TaskExport::dependencies`]); none from the first task
    /// added twice on (it has the same uuid), none when the graph could not be read.
    pub(crate) fn read_batch(&mut self, batch: &str) -> Result<Vec<AuthoredTask>, String> {
        let start = self.names.len();
        let unreadable = |index: usize, error: &dyn std::fmt::Display| {
            format!("job.tasks[{index}] could not be read: {error}")
        };
        let exported: Vec<ExportedTask<'_>> =
            serde_json::from_str(batch).map_err(|error| unreadable(start, &error))?;
        let mut tasks = Vec::with_capacity(exported.len());
        for task in exported {
            let index = self.names.len();
            // Without a graph, exporting fails at some task yet to come: nothing to hand out.
            let hand_out = match &self.graph {
                Some(graph) if graph.numbers.get(index) != Some(&task.number) => {
                    return Err(unreadable(index, &"job.tasks changed while it was read"));
                }
                Some(graph) => graph.duplicate.is_none_or(|duplicate| index < duplicate),
                None => false,
            };
            let commands_json = task.commands.get();
            if commands_json.len() > MAX_TASK_COMMANDS_BYTES {
                return Err(format!(
                    "job.tasks[{index}] (\"{}\") has {} bytes of command parameters; a task may \
                     hold at most {MAX_TASK_COMMANDS_BYTES} (pass large data in a file instead)",
                    task.name,
                    commands_json.len()
                ));
            }
            if needs_full_check(commands_json) {
                serde_json::from_str::<Vec<AuthoredCommand>>(commands_json)
                    .map_err(|error| unreadable(index, &error))?;
            }
            if hand_out {
                tasks.push(AuthoredTask {
                    uuid: self.uuid(task.number),
                    name: task.name.clone(),
                    task_type: task.task_type,
                    priority: task.priority,
                    commands_json: commands_json.to_owned(),
                    steps_total: task.steps_total,
                    dependencies: Vec::new(),
                    frames: task.frames,
                });
            }
            self.names.push(task.name);
        }
        Ok(tasks)
    }

    fn uuid(&self, number: u64) -> String {
        if let Some(uuid) = self.read_uuids.get(&number) {
            return uuid.clone();
        }
        let fresh = self
            .numbered
            .binary_search(&number)
            .ok()
            .and_then(|position| self.fresh_uuids.get(position).copied())
            // Only a number the prelude never handed out; such a task fails the checks anyway.
            .unwrap_or_else(|| random_uuid(&mut rand::rng()));
        fresh
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .to_owned()
    }

    /// The checks that need every task: no task added twice, no dependency on a task that was
    /// never added, no cycle. `dependency_name(index, number)` names a dependency of task `index`
    /// that was never added (asked only for that error).
    pub(crate) fn finish(
        self,
        job_type: &str,
        mut dependency_name: impl FnMut(usize, u64) -> String,
    ) -> Result<(), CompileError> {
        let script_error = |message: String| CompileError::Script {
            job_type: job_type.to_owned(),
            message,
            location: None,
        };
        let name = |index: usize| self.names.get(index).map_or("?", String::as_str);
        let Some(graph) = &self.graph else {
            return Err(CompileError::Internal(format!(
                "job type \"{job_type}\": its task graph could not be read, yet every task was"
            )));
        };
        if let Some(index) = graph.duplicate {
            return Err(script_error(format!(
                "task \"{}\" appears in job.tasks more than once",
                name(index)
            )));
        }
        if let Some((index, number)) = graph.first_missing() {
            return Err(script_error(format!(
                "task \"{}\" depends on task \"{}\", which was never added to the job (use job.addTask)",
                name(index),
                dependency_name(index, number)
            )));
        }
        if let Some(blocked) = tasks_blocked_by_cycles(graph, &self.names) {
            return Err(script_error(format!(
                "tasks depend on each other in a cycle, so these could never run: {blocked}"
            )));
        }
        Ok(())
    }
}

/// Kahn's algorithm: tasks never reaching zero unmet dependencies sit in or behind a cycle.
/// Returns their names (a few of them) when there are any. Dependencies are known to exist and to
/// be distinct.
fn tasks_blocked_by_cycles(graph: &TaskGraph, names: &[String]) -> Option<String> {
    let count = graph.numbers.len();
    let mut unmet: Vec<usize> = vec![0; count];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (index, numbers) in &graph.dependencies {
        unmet[*index] = numbers.len();
        for number in numbers {
            if let Some(&dependency) = graph.index_by_number.get(number) {
                dependents[dependency].push(*index);
            }
        }
    }
    let mut ready: Vec<usize> = (0..count).filter(|&index| unmet[index] == 0).collect();
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
    if runnable == count {
        return None;
    }
    let blocked: Vec<String> = (0..count)
        .filter(|&index| unmet[index] > 0)
        .map(|index| format!("\"{}\"", names.get(index).map_or("?", String::as_str)))
        .collect();
    let mut listed = blocked[..blocked.len().min(MAX_NAMED_TASKS)].join(", ");
    if blocked.len() > MAX_NAMED_TASKS {
        listed.push_str(", …");
    }
    Some(listed)
}

/// `JSON.stringify` always writes valid JSON, yet two things in it would not read back with
/// serde: lone surrogates (written as `\udXXX` escapes) and nesting beyond serde's limit. Both are
/// rare, so only texts that could hold them are parsed in full.
fn needs_full_check(json: &str) -> bool {
    json.contains("\\u")
        || json
            .bytes()
            .filter(|&byte| byte == b'[' || byte == b'{')
            .count()
            > MAX_UNCHECKED_BRACKETS
}

/// A version 4 uuid from a fast CSPRNG (one system call per uuid adds up over 100k tasks).
fn random_uuid(random: &mut impl rand::RngCore) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    random.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
