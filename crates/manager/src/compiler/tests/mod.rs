//! Compiler tests through the public API: built-in and custom scripts, settings validation,
//! errors and limits. Shared helpers live here.

mod approval;
mod built_ins;
mod chunks;
mod export;
mod job_types;
mod scripts;
mod tiled_render;

use std::path::Path;

use serde_json::{Value, json};

use super::*;

/// Every built-in job type, sorted by name.
const BUILT_IN_NAMES: [&str; 6] = [
    "blender-render-with-approval",
    "echo-sleep-test",
    "ffmpeg-transcode",
    "frames-to-video",
    "simple-blender-render",
    "single-image-tiled-render",
];

fn input(job_type: &str, settings: Value) -> CompileInput {
    let Value::Object(settings) = settings else {
        panic!("settings must be a JSON object");
    };
    CompileInput {
        job_id: "2f0c8f5e-0000-4000-8000-000000000001".to_owned(),
        name: "test job".to_owned(),
        job_type: job_type.to_owned(),
        priority: 50,
        settings,
        metadata: BTreeMap::from([("user.name".to_owned(), "Ada".to_owned())]),
        worker_tag: None,
        shaman_checkout_id: None,
        created: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("valid time"),
        type_etag: None,
        target_task_seconds: None,
    }
}

fn built_ins() -> JobTypeRegistry {
    JobTypeRegistry::new(None, SandboxLimits::default())
}

fn registry_in(dir: &Path, limits: SandboxLimits) -> JobTypeRegistry {
    JobTypeRegistry::new(Some(dir.to_path_buf()), limits)
}

fn write_script(dir: &Path, file_name: &str, code: &str) {
    std::fs::write(dir.join(file_name), code).expect("write script");
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// A custom job type whose compileJob body is `body`.
fn script_with_body(body: &str) -> String {
    format!(
        "const JOB_TYPE = {{ label: \"Test\", settings: [] }};\nfunction compileJob(job) {{\n{body}\n}}\n"
    )
}

/// A compiled task's commands, read back from the JSON that gets stored.
fn commands(task: &AuthoredTask) -> Vec<AuthoredCommand> {
    task.commands().expect("the stored commands read back")
}

fn compile_custom(body: &str) -> Result<CompiledJob, CompileError> {
    let dir = temp_dir();
    write_script(dir.path(), "custom_type.js", &script_with_body(body));
    registry_in(dir.path(), SandboxLimits::default()).compile(input("custom-type", json!({})))
}
