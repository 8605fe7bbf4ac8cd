//! Adaptive chunking's script API: `job.targetTaskSeconds`, `task.setFrames` and
//! `compileChunk(job, frames)`, with the errors a script author sees.

use serde_json::json;

use super::*;

fn render_settings() -> serde_json::Value {
    json!({
        "frames": "1-10", "chunk_size": 3, "render_output_root": "/render",
        "add_path_components": 0, "render_output_path": "/render/shot/{timestamp}/######",
        "blendfile": "/projects/shot.blend", "fps": 24.0, "format": "PNG",
        "image_file_extension": ".png", "has_previews": false, "scene": "Scene",
    })
}

#[test]
fn a_target_duration_starts_the_render_from_single_frames_with_their_frames_declared() {
    let mut asked = input("simple-blender-render", render_settings());
    asked.target_task_seconds = Some(300.0);
    let job = built_ins().compile(asked).expect("compiles");
    let renders: Vec<&AuthoredTask> = job
        .tasks
        .iter()
        .filter(|t| t.task_type == "blender")
        .collect();
    assert_eq!(renders.len(), 10);
    assert_eq!(renders[3].frames.as_deref(), Some("4"));
    // Without a target: the chunk size, frames declared all the same.
    let plain = built_ins()
        .compile(input("simple-blender-render", render_settings()))
        .expect("compiles");
    assert_eq!(plain.tasks[0].frames.as_deref(), Some("1-3"));
    assert_eq!(
        plain.tasks.last().and_then(|t| t.frames.clone()),
        None,
        "the video has none"
    );
}

#[test]
fn compile_chunk_authors_the_render_task_of_a_regrouped_range() {
    let job = built_ins()
        .compile(input("simple-blender-render", render_settings()))
        .expect("compiles");
    let stored = input("simple-blender-render", render_settings());
    let chunks = ["1-4".to_string(), "5,6".to_string(), "8-10".to_string()];
    let tasks = built_ins()
        .compile_chunks(&stored, job.settings.clone(), &chunks)
        .expect("chunks compile");
    assert_eq!(tasks.len(), 3);
    assert_eq!(tasks[1].name, "render-5,6");
    assert_eq!(tasks[1].frames.as_deref(), Some("5,6"));
    assert_eq!(tasks[2].steps_total, 3);
    let args = &commands(&tasks[0])[0].parameters["args"];
    assert_eq!(args.as_array().and_then(|a| a.last()), Some(&json!("1..4")));
    // The output path is the one the job's compile fixed (timestamp filled in).
    let output = args
        .as_array()
        .and_then(|a| a.iter().position(|v| v == "--render-output"));
    let output = output
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.as_str())
        .unwrap_or("");
    assert!(
        !output.contains("{timestamp}") && output.starts_with("/render/shot/"),
        "{output}"
    );
}

#[test]
fn a_job_type_without_compile_chunk_or_frames_is_refused_a_target_naming_what_is_missing() {
    let mut asked = input(
        "echo-sleep-test",
        json!({ "message": "hi", "sleep_duration_seconds": 0, "sleep_repeats": 0 }),
    );
    asked.target_task_seconds = Some(60.0);
    let err = built_ins().compile(asked).unwrap_err().to_string();
    assert!(err.contains("compileChunk"), "{err}");

    let dir = temp_dir();
    let script = "const JOB_TYPE = { label: \"T\", settings: [] };\n\
        function compileJob(job) { job.addTask(author.Task(\"a\", \"misc\")); }\n\
        function compileChunk(job, frames) { return 42; }\n";
    write_script(dir.path(), "chunky.js", script);
    let registry = registry_in(dir.path(), SandboxLimits::default());
    let mut asked = input("chunky", json!({}));
    asked.target_task_seconds = Some(60.0);
    let err = registry.compile(asked.clone()).unwrap_err().to_string();
    assert!(err.contains("setFrames"), "{err}");
    let err = registry
        .compile_chunks(&asked, serde_json::Map::new(), &["1-2".to_string()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("must return a task"), "{err}");
}

#[test]
fn set_frames_refuses_a_bad_range() {
    let err = compile_custom(
        "const t = author.Task(\"a\", \"misc\"); t.setFrames(\"5-1\"); job.addTask(t);",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("ends before it starts"), "{err}");
}
