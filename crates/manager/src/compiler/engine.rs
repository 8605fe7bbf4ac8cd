//! One QuickJS sandbox per script evaluation: the memory and time limits, the Flamenco JS API
//! (Rust helpers + `prelude.js`), and reading `JOB_TYPE` and the compiled job back out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rquickjs::context::EvalOptions;
use rquickjs::function::IntoArgs;
use rquickjs::{CaughtError, Context, Ctx, Exception, FromJs, Function, Object, Runtime, Value};
use serde::Deserialize;
use serde_json::{Map, Value as JsonValue};

use super::AuthoredTask;
use super::authored::TaskExport;
use super::settings::{self, JobTypeInfo};
use super::{CompileError, SandboxLimits, frames, paths, shell};

const PRELUDE: &str = include_str!("prelude.js");
const PRELUDE_FILE_NAME: &str = "castanet-prelude.js";
/// Tasks exported per call: few calls, yet a small JSON text at a time.
const EXPORT_BATCH_SIZE: u32 = 1024;

// The approval gate's final pass: a run of the script after the job was stored.
mod approved;
// The time limit's interrupt handler.
mod time_limit;
pub use approved::ApprovedPass;
pub(crate) use approved::compile_approved;

/// A job-type script and the name it is known by.
pub(crate) struct ScriptSource<'a> {
    pub job_type: &'a str,
    /// Shown in error locations, e.g. `echo_sleep_test.js:12`.
    pub file_name: &'a str,
    pub code: &'a str,
}

/// What a compile hands out while it runs.
pub(crate) enum ScriptEvent {
    /// Once, after `compileJob` ran: the job as the script left it.
    Job {
        etag: String,
        settings: Map<String, JsonValue>,
        metadata: Map<String, JsonValue>,
        task_count: usize,
        /// The script defines `compileApproved`: the job waits for approval after its tasks.
        approval_gate: bool,
        /// The command line the script gave `job.onComplete()`.
        on_complete: Option<String>,
    },
    /// Then every dependency (task uuid, uuids it waits for), unless there are none or the task
    /// graph is unsound (the compile then fails).
    Dependencies(Vec<(String, Vec<String>)>),
    /// Then the tasks, in job order and in batches, without their dependencies.
    Tasks(Vec<AuthoredTask>),
}

/// The `job` object handed to `compileJob`, minus `created`, as JSON.
pub(crate) struct JobFields {
    pub json: String,
    pub created_millis: f64,
}

/// Evaluates the script and reads its `JOB_TYPE`.
pub(crate) fn load_job_type(
    source: &ScriptSource<'_>,
    limits: SandboxLimits,
) -> Result<JobTypeInfo, CompileError> {
    Sandbox::new(source, limits)?.run(|session| session.job_type())
}

/// Evaluates the script, lets `prepare` check the submission against its `JOB_TYPE`, then runs
/// `compileJob` — all in one sandbox, so the job type checked is the one that compiles. The job and
/// its tasks go to `on_event` as they are exported; `Ok` means every task was handed out and the
/// task graph passed its checks (an error may come after some tasks were handed out).
pub(crate) fn compile_job(
    source: &ScriptSource<'_>,
    limits: SandboxLimits,
    prepare: impl FnOnce(&JobTypeInfo) -> Result<JobFields, CompileError>,
    mut on_event: impl FnMut(ScriptEvent) -> Result<(), CompileError>,
) -> Result<(), CompileError> {
    Sandbox::new(source, limits)?.run(|session| {
        let info = session.job_type()?;
        let job = prepare(&info).map_err(Failure::Compile)?;
        session.compile(job, &info.etag, &mut on_event)
    })
}

/// Evaluates the script and has its `compileChunk(job, frames)` author one task per frame range
/// of `chunks` (adaptive chunking), exported and checked like `compileJob`'s tasks.
pub(crate) fn compile_chunks(
    source: &ScriptSource<'_>,
    limits: SandboxLimits,
    job: JobFields,
    chunks: &[String],
) -> Result<Vec<AuthoredTask>, CompileError> {
    let chunks = serde_json::to_string(chunks)
        .map_err(|error| CompileError::Internal(format!("cannot write the chunks: {error}")))?;
    Sandbox::new(source, limits)?.run(|session| {
        let task_count: u32 =
            session.call("runCompileChunks", (job.json, job.created_millis, chunks))?;
        let mut tasks = Vec::new();
        session.export(task_count, "", &mut |event| {
            if let ScriptEvent::Tasks(batch) = event {
                tasks.extend(batch);
            }
            Ok(())
        })?;
        Ok(tasks)
    })
}

/// Why a sandbox run stopped.
enum Failure {
    /// Not a JavaScript problem (bad JOB_TYPE, invalid settings …): reported as is.
    Compile(CompileError),
    Thrown {
        message: String,
        location: Option<String>,
    },
    OutOfMemory,
    Engine(String),
}

struct Sandbox<'a> {
    /// Keeps its runtime (and with it the limits) alive.
    context: Context,
    source: &'a ScriptSource<'a>,
    limits: SandboxLimits,
    timed_out: Arc<AtomicBool>,
}

impl<'a> Sandbox<'a> {
    fn new(source: &'a ScriptSource<'a>, limits: SandboxLimits) -> Result<Self, CompileError> {
        let runtime = Runtime::new()
            .map_err(|error| CompileError::Internal(format!("cannot start QuickJS: {error}")))?;
        runtime.set_memory_limit(limits.memory_bytes);
        if limits.memory_bytes > 0 {
            // QuickJS starts collecting cycles at 256 KiB and then at every 1.5x growth; each pass
            // walks every object (~0.1 s on a 100k-task job, whose objects take ~130 MB).
            // Reference counting frees everything that is not cyclic anyway, so the first pass
            // comes at half the limit (a second one at three quarters).
            runtime.set_gc_threshold(limits.memory_bytes / 2);
        }
        let context = Context::full(&runtime).map_err(|error| {
            CompileError::Internal(format!("cannot create a JavaScript context: {error}"))
        })?;
        let timed_out = time_limit::install(&runtime, &context, limits);
        Ok(Sandbox {
            context,
            source,
            limits,
            timed_out,
        })
    }

    fn run<T>(
        &self,
        work: impl for<'js> FnOnce(&Session<'js, '_>) -> Result<T, Failure>,
    ) -> Result<T, CompileError> {
        let outcome = self.context.with(|ctx| {
            let session = Session::start(ctx, self.source)?;
            work(&session)
        });
        outcome.map_err(|failure| shortened(self.classify(failure)))
    }

    fn classify(&self, failure: Failure) -> CompileError {
        let job_type = self.source.job_type.to_owned();
        let time_limit = || CompileError::Limit {
            job_type: job_type.clone(),
            message: format!(
                "it ran longer than its time limit of {}",
                describe_duration(self.limits.time)
            ),
        };
        let memory_limit = || CompileError::Limit {
            job_type: job_type.clone(),
            message: format!(
                "it used more than its memory limit of {}",
                describe_bytes(self.limits.memory_bytes)
            ),
        };
        match failure {
            Failure::Compile(error) => error,
            // The uncatchable "interrupted" error may surface as any kind of failure.
            _ if self.timed_out.load(Ordering::Relaxed) => time_limit(),
            Failure::OutOfMemory => memory_limit(),
            Failure::Thrown { message, location } => CompileError::Script {
                job_type,
                message,
                location,
            },
            Failure::Engine(message) => CompileError::Internal(format!(
                "job type \"{job_type}\": unexpected JavaScript engine error: {message}"
            )),
        }
    }
}

/// A context with the prelude and the script evaluated, ready to be asked things.
struct Session<'js, 'a> {
    ctx: Ctx<'js>,
    internals: Object<'js>,
    source: &'a ScriptSource<'a>,
}

impl<'js, 'a> Session<'js, 'a> {
    fn start(ctx: Ctx<'js>, source: &'a ScriptSource<'a>) -> Result<Self, Failure> {
        let fail = |error| js_failure(&ctx, error, source.file_name);
        let native = native_helpers(&ctx, source.job_type).map_err(fail)?;
        let factory: Function = ctx
            .eval_with_options(PRELUDE, eval_options(PRELUDE_FILE_NAME, true))
            .map_err(fail)?;
        let internals: Object = factory.call((native,)).map_err(fail)?;
        // Flamenco runs scripts in sloppy mode; some rely on it.
        ctx.eval_with_options::<(), _>(source.code, eval_options(source.file_name, false))
            .map_err(fail)?;
        Ok(Session {
            ctx,
            internals,
            source,
        })
    }

    fn call<R: FromJs<'js>>(&self, name: &str, args: impl IntoArgs<'js>) -> Result<R, Failure> {
        let fail = |error| js_failure(&self.ctx, error, self.source.file_name);
        let function: Function = self.internals.get(name).map_err(fail)?;
        function.call(args).map_err(fail)
    }

    fn script_error(&self, message: String) -> Failure {
        Failure::Compile(CompileError::Script {
            job_type: self.source.job_type.to_owned(),
            message,
            location: None,
        })
    }

    fn job_type(&self) -> Result<JobTypeInfo, Failure> {
        let json: Option<String> = self.call("jobTypeJson", ())?;
        let json = json.ok_or_else(|| {
            self.script_error("the script does not define a JOB_TYPE object".to_owned())
        })?;
        settings::parse_job_type(self.source.job_type, &json)
            .map_err(|message| self.script_error(message))
    }

    fn compile(
        &self,
        job: JobFields,
        etag: &str,
        on_event: &mut dyn FnMut(ScriptEvent) -> Result<(), CompileError>,
    ) -> Result<(), Failure> {
        let task_count: u32 = self.call("runCompileJob", (job.json, job.created_millis))?;
        self.export(task_count, etag, on_event)
    }

    /// Hands out the job the script left (settings, metadata), then its task graph and its
    /// tasks in batches, and checks the graph.
    fn export(
        &self,
        task_count: u32,
        etag: &str,
        on_event: &mut dyn FnMut(ScriptEvent) -> Result<(), CompileError>,
    ) -> Result<(), Failure> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct JobState {
            settings: Map<String, JsonValue>,
            metadata: Map<String, JsonValue>,
            read_uuids: Vec<(u64, String)>,
            #[serde(default)]
            approval_gate: bool,
            #[serde(default)]
            on_complete: Option<String>,
        }
        let state_json: String = self.call("exportJob", ())?;
        let state: JobState = serde_json::from_str(&state_json).map_err(|error| {
            self.script_error(format!("job settings or metadata are malformed: {error}"))
        })?;
        on_event(ScriptEvent::Job {
            etag: etag.to_owned(),
            settings: state.settings,
            metadata: state.metadata,
            task_count: task_count as usize,
            approval_gate: state.approval_gate,
            on_complete: state.on_complete,
        })
        .map_err(Failure::Compile)?;

        let graph: Option<String> = self.call("exportGraph", ())?;
        let mut export = TaskExport::new(state.read_uuids.into_iter().collect(), graph.as_deref())
            .map_err(|message| self.script_error(message))?;
        // Known before the tasks are: they can be stored while the tasks are exported.
        if let Some(dependencies) = export.dependencies().filter(|list| !list.is_empty()) {
            on_event(ScriptEvent::Dependencies(dependencies)).map_err(Failure::Compile)?;
        }
        for start in (0..task_count).step_by(EXPORT_BATCH_SIZE as usize) {
            let batch: String = self.call("exportTasks", (start, EXPORT_BATCH_SIZE))?;
            let tasks = export
                .read_batch(&batch)
                .map_err(|message| self.script_error(message))?;
            if !tasks.is_empty() {
                on_event(ScriptEvent::Tasks(tasks)).map_err(Failure::Compile)?;
            }
        }
        // Checked while the sandbox lives: a dependency that was never added is named by asking
        // the script's own task object.
        export
            .finish(self.source.job_type, |index, number| {
                self.call("dependencyName", (index as f64, number as f64))
                    .unwrap_or_else(|_| "?".to_owned())
            })
            .map_err(Failure::Compile)?;
        Ok(())
    }
}

fn eval_options(file_name: &str, strict: bool) -> EvalOptions {
    let mut options = EvalOptions::default();
    options.filename = Some(file_name.to_owned());
    options.strict = strict;
    options
}

/// The Rust side of the prelude. Closures capture only owned Rust data: a captured JS value
/// would keep the runtime from being freed cleanly.
fn native_helpers<'js>(ctx: &Ctx<'js>, job_type: &str) -> rquickjs::Result<Object<'js>> {
    let native = Object::new(ctx.clone())?;
    let print_job_type = job_type.to_owned();
    native.set(
        "print",
        Function::new(ctx.clone(), move |line: String| {
            tracing::info!(job_type = %print_job_type, "{line}");
        })?,
    )?;
    let alert_job_type = job_type.to_owned();
    native.set(
        "alert",
        Function::new(ctx.clone(), move |line: String| {
            tracing::warn!(job_type = %alert_job_type, "{line}");
        })?,
    )?;
    native.set(
        "newUuid",
        Function::new(ctx.clone(), || uuid::Uuid::new_v4().to_string())?,
    )?;
    native.set(
        "frameChunker",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, range: String, chunk_size: f64| {
                frames::chunk_size_from_number(chunk_size)
                    .and_then(|chunk_size| frames::chunk_frames(&range, chunk_size))
                    .map_err(|error| Exception::throw_message(&ctx, &error.to_string()))
            },
        )?,
    )?;
    native.set(
        "frameCount",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, range: String| {
            // JS numbers are doubles; frame counts stay far below 2^53.
            frames::count_frames(&range)
                .map(|count| count as f64)
                .map_err(|error| Exception::throw_message(&ctx, &error.to_string()))
        })?,
    )?;
    native.set(
        "formatTimestampLocal",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, millis: f64| {
            format_timestamp_local(millis).ok_or_else(|| {
                Exception::throw_range(
                    &ctx,
                    &format!("formatTimestampLocal(): {millis} is not a valid time"),
                )
            })
        })?,
    )?;
    native.set(
        "shellSplit",
        Function::new(ctx.clone(), |ctx: Ctx<'js>, text: String| {
            shell::shell_split(&text)
                .map_err(|error| Exception::throw_message(&ctx, &error.to_string()))
        })?,
    )?;
    native.set(
        "pathJoin",
        Function::new(ctx.clone(), |parts: Vec<String>| paths::join(&parts))?,
    )?;
    native.set(
        "pathDirname",
        Function::new(ctx.clone(), |path: String| paths::dirname(&path))?,
    )?;
    native.set(
        "pathBasename",
        Function::new(ctx.clone(), |path: String| paths::basename(&path))?,
    )?;
    native.set(
        "pathStem",
        Function::new(ctx.clone(), |path: String| paths::stem(&path))?,
    )?;
    native.set(
        "cwd",
        Function::new(ctx.clone(), || {
            std::env::current_dir()
                .map(|dir| dir.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default()
        })?,
    )?;
    native.set("platform", go_platform_name())?;
    Ok(native)
}

/// `process.platform` as Flamenco reports it (Go's GOOS names).
fn go_platform_name() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// Local time as `YYYY-MM-DD_HHMMSS`, the form Flamenco puts into render output paths.
fn format_timestamp_local(millis: f64) -> Option<String> {
    if !millis.is_finite() {
        return None;
    }
    let utc = chrono::DateTime::from_timestamp_millis(millis as i64)?;
    Some(
        utc.with_timezone(&chrono::Local)
            .format("%Y-%m-%d_%H%M%S")
            .to_string(),
    )
}

/// Takes the pending exception (if any) out of the context and describes it.
fn js_failure(ctx: &Ctx<'_>, error: rquickjs::Error, file_name: &str) -> Failure {
    match CaughtError::from_error(ctx, error) {
        CaughtError::Exception(exception) => {
            let message = exception.message().unwrap_or_default();
            let kind: Option<String> = exception.as_object().get("name").ok();
            if kind.as_deref() == Some("InternalError") && message == "out of memory" {
                return Failure::OutOfMemory;
            }
            let location = exception
                .stack()
                .and_then(|stack| location_in_stack(&stack, file_name));
            let message = match kind {
                Some(kind) if !kind.is_empty() && kind != "Error" => format!("{kind}: {message}"),
                _ => message,
            };
            Failure::Thrown { message, location }
        }
        // QuickJS throws `null` when it cannot even allocate the error object. Memory is
        // usually freed again by the time we look, so usage cannot tell; a script throwing
        // `null` on purpose is rare enough to be reported the same way.
        CaughtError::Value(value) if value.is_null() => Failure::OutOfMemory,
        CaughtError::Value(value) => Failure::Thrown {
            message: describe_thrown(ctx, value),
            location: None,
        },
        CaughtError::Error(rquickjs::Error::Allocation) => Failure::OutOfMemory,
        CaughtError::Error(error) => Failure::Engine(error.to_string()),
    }
}

/// A thrown non-Error: strings verbatim, objects with a `message` by it, others as JSON.
fn describe_thrown<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    if let Some(text) = value.as_string().and_then(|text| text.to_string().ok()) {
        return text;
    }
    if let Some(message) = value
        .as_object()
        .and_then(|object| object.get::<_, Option<String>>("message").ok().flatten())
    {
        return message;
    }
    let json = ctx
        .json_stringify(value)
        .ok()
        .flatten()
        .and_then(|json| json.to_string().ok());
    format!(
        "the script threw {}",
        json.unwrap_or_else(|| "a value that is not an Error".to_owned())
    )
}

/// The first stack frame in the script itself, as `file.js:line` (frames in the prelude are
/// skipped so a bad `author.Task()` call points at the script line that made it).
fn location_in_stack(stack: &str, file_name: &str) -> Option<String> {
    let marker = format!("{file_name}:");
    stack.lines().find_map(|line| {
        let start = line.find(&marker)?;
        let before = line[..start].chars().last();
        if !matches!(before, None | Some(' ' | '(')) {
            return None;
        }
        let digits: String = line[start + marker.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (!digits.is_empty()).then(|| format!("{file_name}:{digits}"))
    })
}

/// The most characters of one message an error keeps: it goes back to the submitter as is, and
/// it may quote what a script made (a thrown string, a task name, a setting key) of any size.
const MAX_MESSAGE_CHARS: usize = 4096;

fn shortened(error: CompileError) -> CompileError {
    match error {
        CompileError::Script {
            job_type,
            message,
            location,
        } => CompileError::Script {
            job_type,
            message: shortened_text(message),
            location,
        },
        CompileError::InvalidSettings(problems) => {
            CompileError::InvalidSettings(problems.into_iter().map(shortened_text).collect())
        }
        other => other,
    }
}

fn shortened_text(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => {
            let left_out = message[cut..].chars().count();
            format!("{}… ({left_out} more characters)", &message[..cut])
        }
        None => message,
    }
}

fn describe_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

fn describe_bytes(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_come_from_the_script_not_the_prelude() {
        let stack =
            "    at Task (castanet-prelude.js:120:7)\n    at compileJob (my_type.js:12:5)\n";
        assert_eq!(
            location_in_stack(stack, "my_type.js").as_deref(),
            Some("my_type.js:12")
        );
        assert_eq!(
            location_in_stack("    at my_type.js:3:9\n", "my_type.js").as_deref(),
            Some("my_type.js:3")
        );
        assert_eq!(
            location_in_stack("    at f (other_my_type.js:3:9)\n", "my_type.js"),
            None
        );
    }

    #[test]
    fn timestamps_are_local_time_in_flamenco_format() {
        let formatted = format_timestamp_local(1_700_000_000_000.0).expect("valid time");
        assert_eq!(formatted.len(), "2023-11-14_221320".len(), "{formatted}");
        assert_eq!(&formatted[10..11], "_");
        assert_eq!(format_timestamp_local(f64::NAN), None);
    }
}
