//! Where job types come from: built-in scripts embedded in the binary, and custom `*.js` files in
//! the scripts folder, looked up on every request so edits apply without a restart. A custom
//! script overrides a built-in of the same name. Evaluating a script to describe it is the
//! expensive part, so that result is cached per file version (path, modification time, size).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde_json::{Map, Value};

use super::engine::{self, ApprovedPass, JobFields, ScriptEvent, ScriptSource};
use super::gate::{self, ScriptGate};
use super::settings::{self, JobTypeInfo};
use super::{
    AuthoredTask, CompileError, CompileInput, CompileSink, CompiledJob, CompiledJobFields,
    SandboxLimits,
};

/// Script evaluations at once unless the manager says otherwise (see `with_concurrency`).
const DEFAULT_CONCURRENT_SCRIPTS: usize = 2;

/// Files shorter than this cannot hold a job type (Flamenco skips them too).
const MIN_SCRIPT_BYTES: u64 = 8;

/// Room reserved up front for a compiled job's tasks; more grows as they arrive.
const PREALLOCATED_TASKS: usize = 4096;

struct BuiltInScript {
    name: &'static str,
    file_name: &'static str,
    code: &'static str,
}

/// A built-in script: its job type name, file name and embedded code.
macro_rules! built_in {
    ($name:literal, $file:literal) => {
        BuiltInScript {
            name: $name,
            file_name: $file,
            code: include_str!(concat!("scripts/", $file)),
        }
    };
}

const BUILT_IN_SCRIPTS: &[BuiltInScript] = &[
    built_in!("echo-sleep-test", "echo_sleep_test.js"),
    built_in!("simple-blender-render", "simple_blender_render.js"),
    built_in!("ffmpeg-transcode", "ffmpeg_transcode.js"),
    built_in!("frames-to-video", "frames_to_video.js"),
    built_in!("single-image-tiled-render", "single_image_tiled_render.js"),
    built_in!(
        "blender-render-with-approval",
        "blender_render_with_approval.js"
    ),
];

/// The job types this manager offers. Cheap to clone; all clones share one cache.
#[derive(Clone)]
pub struct JobTypeRegistry {
    inner: Arc<RegistryInner>,
}

struct RegistryInner {
    scripts_dir: Option<PathBuf>,
    limits: SandboxLimits,
    gate: ScriptGate,
    described: Mutex<HashMap<ScriptKey, CachedDescription>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum ScriptKey {
    BuiltIn(&'static str),
    File(PathBuf),
}

struct CachedDescription {
    version: Option<FileVersion>,
    result: Result<JobTypeInfo, CompileError>,
}

/// Identifies one version of a script file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileVersion {
    modified: Option<SystemTime>,
    size: u64,
}

/// One place a job type's script can come from.
#[derive(Clone)]
enum ScriptOrigin {
    BuiltIn(&'static BuiltInScript),
    File {
        path: PathBuf,
        file_name: String,
        version: FileVersion,
    },
}

impl ScriptOrigin {
    fn key(&self) -> ScriptKey {
        match self {
            ScriptOrigin::BuiltIn(script) => ScriptKey::BuiltIn(script.name),
            ScriptOrigin::File { path, .. } => ScriptKey::File(path.clone()),
        }
    }

    fn version(&self) -> Option<FileVersion> {
        match self {
            ScriptOrigin::BuiltIn(_) => None,
            ScriptOrigin::File { version, .. } => Some(*version),
        }
    }

    fn file_name(&self) -> &str {
        match self {
            ScriptOrigin::BuiltIn(script) => script.file_name,
            ScriptOrigin::File { file_name, .. } => file_name,
        }
    }

    fn read_code(&self) -> Result<Cow<'static, str>, CompileError> {
        match self {
            ScriptOrigin::BuiltIn(script) => Ok(Cow::Borrowed(script.code)),
            ScriptOrigin::File { path, .. } => {
                fs::read_to_string(path).map(Cow::Owned).map_err(|error| {
                    CompileError::Internal(format!(
                        "cannot read job type script {}: {error}",
                        path.display()
                    ))
                })
            }
        }
    }
}

impl JobTypeRegistry {
    /// `scripts_dir`: optional folder of custom `*.js` job types (name = file stem with `_`
    /// replaced by `-`); a custom script overrides a built-in of the same name.
    pub fn new(scripts_dir: Option<PathBuf>, limits: SandboxLimits) -> Self {
        Self::with_concurrency(scripts_dir, limits, DEFAULT_CONCURRENT_SCRIPTS)
    }

    /// Like [`new`](Self::new), with at most `concurrent` script evaluations at once; more
    /// wait in line (for up to a minute).
    pub fn with_concurrency(
        scripts_dir: Option<PathBuf>,
        limits: SandboxLimits,
        concurrent: usize,
    ) -> Self {
        Self::with_gate(
            scripts_dir,
            limits,
            ScriptGate::new(concurrent, gate::MAX_QUEUE_WAIT),
        )
    }

    pub(crate) fn with_gate(
        scripts_dir: Option<PathBuf>,
        limits: SandboxLimits,
        gate: ScriptGate,
    ) -> Self {
        JobTypeRegistry {
            inner: Arc::new(RegistryInner {
                scripts_dir,
                limits,
                gate,
                described: Mutex::new(HashMap::new()),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn gate(&self) -> &ScriptGate {
        &self.inner.gate
    }

    /// All job types, sorted by name. Scripts that fail to load are logged and skipped.
    pub fn list(&self) -> Result<Vec<JobTypeInfo>, CompileError> {
        let candidates = self.candidates();
        self.forget_deleted_files(&candidates);
        Ok(candidates
            .iter()
            .filter_map(|(name, origins)| {
                origins
                    .iter()
                    .find_map(|origin| self.describe(name, origin).ok())
            })
            .collect())
    }

    pub fn get(&self, name: &str) -> Result<JobTypeInfo, CompileError> {
        self.resolve(name).map(|(_, info)| info)
    }

    /// Validates and fills the settings, then runs the script's `compileJob(job)`.
    /// Blocking (runs QuickJS): call it from `spawn_blocking`.
    pub fn compile(&self, input: CompileInput) -> Result<CompiledJob, CompileError> {
        let mut collected = CollectedJob {
            job: None,
            dependencies: HashMap::new(),
        };
        self.compile_streaming(input, &mut collected)?;
        collected.job.ok_or_else(|| {
            CompileError::Internal("the job type script handed out no job".to_owned())
        })
    }

    /// The tasks the job type's `compileChunk(job, frames)` authors for each frame range of
    /// `chunks`, for a job stored with `settings` (as its compile left them): adaptive chunking
    /// regrouping a job's queued frames.
    pub fn compile_chunks(
        &self,
        input: &CompileInput,
        settings: Map<String, Value>,
        chunks: &[String],
    ) -> Result<Vec<AuthoredTask>, CompileError> {
        self.with_script(&input.job_type, |source, limits| {
            engine::compile_chunks(source, limits, job_fields(input, settings), chunks)
        })
    }

    /// The final pass the job type's `compileApproved(job)` authors for a job stored with
    /// `settings` whose preview pass was approved (the approval gate).
    pub fn compile_approved(
        &self,
        input: &CompileInput,
        settings: Map<String, Value>,
    ) -> Result<ApprovedPass, CompileError> {
        self.with_script(&input.job_type, |source, limits| {
            engine::compile_approved(source, limits, job_fields(input, settings))
        })
    }

    /// Runs `work` on the job type's script, in its turn at the script gate.
    fn with_script<T>(
        &self,
        job_type: &str,
        work: impl FnOnce(&ScriptSource<'_>, SandboxLimits) -> Result<T, CompileError>,
    ) -> Result<T, CompileError> {
        let (origin, _) = self.resolve(job_type)?;
        let code = origin.read_code()?;
        let source = ScriptSource {
            job_type,
            file_name: origin.file_name(),
            code: &code,
        };
        let _turn = self.inner.gate.enter()?;
        work(&source, self.inner.limits)
    }

    /// [`JobTypeRegistry::compile`], handing the job and its tasks to `sink` as they are
    /// exported. `Ok` means every task was handed out and the task graph passed its checks; on an
    /// error, whatever the sink received must be thrown away.
    pub fn compile_streaming(
        &self,
        input: CompileInput,
        sink: &mut dyn CompileSink,
    ) -> Result<(), CompileError> {
        self.with_script(&input.job_type, |source, limits| {
            Self::compile_source(source, limits, &input, sink)
        })
    }

    fn compile_source(
        source: &ScriptSource<'_>,
        limits: SandboxLimits,
        input: &CompileInput,
        sink: &mut dyn CompileSink,
    ) -> Result<(), CompileError> {
        engine::compile_job(
            source,
            limits,
            |info| {
                settings::check_etag(info, input.type_etag.as_deref())?;
                let settings = settings::validate_settings(&info.settings, &input.settings)
                    .map_err(CompileError::InvalidSettings)?;
                Ok(job_fields(input, settings))
            },
            |event| match event {
                ScriptEvent::Job {
                    etag,
                    settings,
                    metadata,
                    task_count,
                    approval_gate,
                    on_complete,
                } => sink.job(CompiledJobFields {
                    settings,
                    metadata: metadata_strings(metadata),
                    etag,
                    task_count,
                    approval_gate,
                    on_complete,
                }),
                ScriptEvent::Dependencies(dependencies) => sink.dependencies(dependencies),
                ScriptEvent::Tasks(tasks) => sink.tasks(tasks),
            },
        )
    }

    /// The first origin of `name` whose script loads, with its description.
    fn resolve(&self, name: &str) -> Result<(ScriptOrigin, JobTypeInfo), CompileError> {
        let candidates = self.candidates();
        let Some(origins) = candidates.get(name) else {
            return Err(CompileError::UnknownJobType {
                name: name.to_owned(),
                known: candidates.keys().cloned().collect(),
            });
        };
        let mut first_error = None;
        for origin in origins {
            match self.describe(name, origin) {
                Ok(info) => return Ok((origin.clone(), info)),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| {
            CompileError::Internal(format!("job type \"{name}\" has no script"))
        }))
    }

    /// Every job type name with its possible origins, custom files before built-ins.
    fn candidates(&self) -> BTreeMap<String, Vec<ScriptOrigin>> {
        let mut candidates: BTreeMap<String, Vec<ScriptOrigin>> = BTreeMap::new();
        if let Some(dir) = &self.inner.scripts_dir {
            for (name, origin) in scan_scripts_dir(dir) {
                candidates.entry(name).or_default().push(origin);
            }
        }
        for script in BUILT_IN_SCRIPTS {
            candidates
                .entry(script.name.to_owned())
                .or_default()
                .push(ScriptOrigin::BuiltIn(script));
        }
        candidates
    }

    /// The job type's description, from the cache when this version was evaluated before.
    fn describe(&self, name: &str, origin: &ScriptOrigin) -> Result<JobTypeInfo, CompileError> {
        let key = origin.key();
        if let Some(cached) = self.cache().get(&key)
            && cached.version == origin.version()
        {
            return cached.result.clone();
        }

        // Evaluated without holding the lock: a slow script must not block other requests.
        // Waiting for a turn comes first: a busy manager is no fault of the script to cache.
        let turn = self.inner.gate.enter()?;
        let result = origin.read_code().and_then(|code| {
            let source = ScriptSource {
                job_type: name,
                file_name: origin.file_name(),
                code: &code,
            };
            engine::load_job_type(&source, self.inner.limits)
        });
        drop(turn);
        if let Err(error) = &result {
            tracing::warn!(
                job_type = name,
                script = origin.file_name(),
                "skipping job type script: {error}"
            );
        }
        // A built-in that failed can only have failed for a passing reason (its code is ours),
        // while a broken file stays broken until it is edited.
        if result.is_ok() || matches!(origin, ScriptOrigin::File { .. }) {
            self.cache().insert(
                key,
                CachedDescription {
                    version: origin.version(),
                    result: result.clone(),
                },
            );
        }
        result
    }

    fn forget_deleted_files(&self, candidates: &BTreeMap<String, Vec<ScriptOrigin>>) {
        let present: HashSet<ScriptKey> = candidates
            .values()
            .flatten()
            .map(ScriptOrigin::key)
            .collect();
        self.cache().retain(|key, _| present.contains(key));
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<ScriptKey, CachedDescription>> {
        // The cache holds plain data; a panic elsewhere cannot leave it half-updated.
        self.inner
            .described
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Custom scripts: regular `*.js` files of at least [`MIN_SCRIPT_BYTES`] in the folder itself,
/// sorted by file name. A missing folder simply has no scripts.
fn scan_scripts_dir(dir: &Path) -> Vec<(String, ScriptOrigin)> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(dir = %dir.display(), "no job type scripts folder");
            return Vec::new();
        }
        Err(error) => {
            tracing::warn!(dir = %dir.display(), "cannot read the job type scripts folder: {error}");
            return Vec::new();
        }
    };
    let mut scripts: Vec<(String, ScriptOrigin)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(file_name) = path
            .file_name()
            .and_then(|name| name.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        let Some(stem) = file_name.strip_suffix(".js") else {
            continue;
        };
        // Hidden files are editor leftovers, not job types.
        if stem.is_empty() || stem.starts_with('.') {
            continue;
        }
        let Ok(metadata) = fs::metadata(&path) else {
            continue;
        };
        if !metadata.is_file() || metadata.len() < MIN_SCRIPT_BYTES {
            continue;
        }
        let name = stem.replace('_', "-");
        let version = FileVersion {
            modified: metadata.modified().ok(),
            size: metadata.len(),
        };
        scripts.push((
            name,
            ScriptOrigin::File {
                path,
                file_name,
                version,
            },
        ));
    }
    scripts.sort_by(|(_, a), (_, b)| a.file_name().cmp(b.file_name()));
    scripts
}

/// The `job` object given to `compileJob`, with Flamenco's field names.
fn job_fields(input: &CompileInput, settings: Map<String, Value>) -> JobFields {
    let fields = serde_json::json!({
        "jobID": input.job_id,
        "name": input.name,
        "jobType": input.job_type,
        "priority": input.priority,
        "settings": settings,
        "metadata": input.metadata,
        "workerTagUUID": input.worker_tag.clone().unwrap_or_default(),
        "storage": { "shamanCheckoutID": input.shaman_checkout_id.clone().unwrap_or_default() },
        "targetTaskSeconds": input.target_task_seconds,
    });
    JobFields {
        json: fields.to_string(),
        created_millis: input.created.timestamp_millis() as f64,
    }
}

/// Metadata is text; values a script set to something else are kept as their JSON.
fn metadata_strings(metadata: Map<String, Value>) -> BTreeMap<String, String> {
    metadata
        .into_iter()
        .filter_map(|(key, value)| match value {
            Value::Null => None,
            Value::String(text) => Some((key, text)),
            other => Some((key, other.to_string())),
        })
        .collect()
}

/// Gathers a streamed compile into one [`CompiledJob`], each task with its dependencies.
struct CollectedJob {
    job: Option<CompiledJob>,
    dependencies: HashMap<String, Vec<String>>,
}

impl CompileSink for CollectedJob {
    fn job(&mut self, job: CompiledJobFields) -> Result<(), CompileError> {
        self.job = Some(CompiledJob {
            settings: job.settings,
            metadata: job.metadata,
            etag: job.etag,
            // The count is the script's `job.tasks.length`, which a sparse array makes 2^32-1;
            // reserving for it before a task is read could abort the manager.
            tasks: Vec::with_capacity(job.task_count.min(PREALLOCATED_TASKS)),
        });
        Ok(())
    }

    fn dependencies(
        &mut self,
        dependencies: Vec<(String, Vec<String>)>,
    ) -> Result<(), CompileError> {
        self.dependencies.extend(dependencies);
        Ok(())
    }

    fn tasks(&mut self, mut tasks: Vec<AuthoredTask>) -> Result<(), CompileError> {
        let job = self.job.as_mut().ok_or_else(|| {
            CompileError::Internal("tasks were handed out before their job".to_owned())
        })?;
        for task in &mut tasks {
            if let Some(dependencies) = self.dependencies.remove(&task.uuid) {
                task.dependencies = dependencies;
            }
        }
        job.tasks.extend(tasks);
        Ok(())
    }
}
