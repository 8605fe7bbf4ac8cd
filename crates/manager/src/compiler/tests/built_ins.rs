//! The built-in job types compile to the task graphs docs/job-types.md describes; for
//! `simple-blender-render` that is Flamenco's graph, written down here as data.

use std::time::Instant;

use serde_json::{Value, json};

use super::*;

const RENDER_OVERRIDES: &str = "import bpy; render = bpy.context.scene.render; \
    render.use_file_extension = True; render.use_overwrite = False; render.use_placeholder = False";

/// The timestamp `{timestamp}` becomes for the test jobs' creation time.
fn created_timestamp() -> String {
    let created = input("echo-sleep-test", json!({})).created;
    created
        .with_timezone(&chrono::Local)
        .format("%Y-%m-%d_%H%M%S")
        .to_string()
}

fn blender_render_settings(overrides: Value) -> Value {
    let mut settings = json!({
        "frames": "1-10",
        "chunk_size": 3,
        "render_output_root": "/render",
        "add_path_components": 0,
        "render_output_path": "/render/shot/{timestamp}/######",
        "blendfile": "/projects/shot.flamenco.blend",
        "fps": 24.0,
        "format": "PNG",
        "image_file_extension": ".png",
        "has_previews": false,
        "scene": "Scene",
    });
    if let (Some(settings), Value::Object(overrides)) = (settings.as_object_mut(), overrides) {
        settings.extend(overrides);
    }
    settings
}

/// A task as data: name, type, commands (name, parameters, steps), names of its dependencies.
fn graph(job: &CompiledJob) -> Value {
    let names: std::collections::HashMap<&str, &str> = job
        .tasks
        .iter()
        .map(|task| (task.uuid.as_str(), task.name.as_str()))
        .collect();
    job.tasks
        .iter()
        .map(|task| {
            json!({
                "name": task.name,
                "type": task.task_type,
                "commands": commands(task).iter().map(|command| json!({
                    "name": command.name,
                    "parameters": command.parameters,
                    "steps": command.total_step_count,
                })).collect::<Vec<_>>(),
                "depends_on": task.dependencies.iter()
                    .map(|uuid| names.get(uuid.as_str()).copied().unwrap_or("?"))
                    .collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn compile(job_type: &str, settings: Value) -> Result<CompiledJob, CompileError> {
    built_ins().compile(input(job_type, settings))
}

fn render_task(chunk: &str, blender_frames: &str, steps: u32, dir: &str) -> Value {
    json!({
        "name": format!("render-{chunk}"),
        "type": "blender",
        "commands": [{
            "name": "blender-render",
            "parameters": {
                "exe": "{blender}",
                "exeArgs": "{blenderArgs}",
                "argsBefore": [],
                "blendfile": "/projects/shot.flamenco.blend",
                "args": [
                    "--scene", "Scene",
                    "--python-expr", RENDER_OVERRIDES,
                    "--render-output", format!("{dir}/######"),
                    "--render-format", "PNG",
                    "--render-frame", blender_frames,
                ],
            },
            "steps": steps,
        }],
        "depends_on": [],
    })
}

#[test]
fn simple_blender_render_compiles_to_flamencos_graph() {
    let job =
        compile("simple-blender-render", blender_render_settings(json!({}))).expect("compiles");
    let dir = format!("/render/shot/{}", created_timestamp());

    let expected = json!([
        render_task("1-3", "1..3", 3, &dir),
        render_task("4-6", "4..6", 3, &dir),
        render_task("7-9", "7..9", 3, &dir),
        render_task("10", "10", 1, &dir),
        {
            "name": "preview-video",
            "type": "ffmpeg",
            "commands": [{
                "name": "frames-to-video",
                "parameters": {
                    "exe": "ffmpeg",
                    "fps": 24,
                    "inputGlob": format!("{dir}/*.png"),
                    "outputFile": format!("{dir}/shot-1-10.mp4"),
                    "args": [
                        "-c:v", "h264", "-crf", "20", "-g", "18",
                        "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                        "-pix_fmt", "yuv420p", "-r", "24", "-y",
                    ],
                },
                "steps": 0,
            }],
            "depends_on": ["render-1-3", "render-4-6", "render-7-9", "render-10"],
        },
    ]);
    assert_eq!(graph(&job), expected);
    assert_eq!(
        job.settings["render_output_path"],
        json!(format!("{dir}/######")),
        "the used output path is written back into the settings"
    );
}

#[test]
fn simple_blender_render_handles_sparse_frames_and_no_scene() {
    let job = compile(
        "simple-blender-render",
        blender_render_settings(
            json!({"frames": "3, 5-10, 47-327", "chunk_size": 100, "scene": ""}),
        ),
    )
    .expect("compiles");
    let names: Vec<&str> = job.tasks.iter().map(|task| task.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "render-3,5-10,47-139",
            "render-140-239",
            "render-240-327",
            "preview-video"
        ]
    );
    let first_commands = commands(&job.tasks[0]);
    let first = &first_commands[0];
    assert_eq!(first.total_step_count, 100);
    assert_eq!(first.parameters["args"][0], "--python-expr");
    assert_eq!(
        first.parameters["args"][7], "3,5..10,47..139",
        "Blender's range notation"
    );
    assert_eq!(
        commands(&job.tasks[3])[0].parameters["outputFile"]
            .as_str()
            .map(|file| file.ends_with("/shot-3-327.mp4")),
        Some(true)
    );
}

#[test]
fn simple_blender_render_skips_the_video_like_flamenco() {
    let task_names = |overrides: Value| -> Vec<String> {
        compile("simple-blender-render", blender_render_settings(overrides))
            .expect("compiles")
            .tasks
            .into_iter()
            .map(|task| task.name)
            .collect()
    };
    let has_video = |names: &[String]| names.iter().any(|name| name == "preview-video");

    assert!(!has_video(&task_names(
        json!({"format": "OPEN_EXR", "image_file_extension": ".exr"})
    )));
    assert!(!has_video(&task_names(json!({"format": "EXR"}))));
    assert!(!has_video(&task_names(json!({"fps": 0.0}))));

    let exr_with_previews = compile(
        "simple-blender-render",
        blender_render_settings(json!({
            "format": "OPEN_EXR_MULTILAYER", "image_file_extension": ".exr", "has_previews": true
        })),
    )
    .expect("compiles");
    let video = exr_with_previews.tasks.last().expect("tasks");
    assert_eq!(video.name, "preview-video");
    let video_commands = commands(video);
    let glob = video_commands[0].parameters["inputGlob"]
        .as_str()
        .unwrap_or("");
    assert!(glob.ends_with("/*.jpg"), "previews are encoded: {glob}");

    for format in ["FFMPEG", "AVI_RAW", "AVI_JPEG"] {
        let error = compile(
            "simple-blender-render",
            blender_render_settings(json!({ "format": format })),
        )
        .expect_err("video formats are refused");
        assert!(
            error
                .to_string()
                .contains(&format!("only renders images, and not \"{format}\"")),
            "{error}"
        );
    }
}

#[test]
fn simple_blender_render_check_with_the_add_ons_dummy_blendfile_compiles() {
    let job = compile(
        "simple-blender-render",
        blender_render_settings(json!({"blendfile": "dummy-for-job-check.blend"})),
    )
    .expect("compiles without touching any file");
    assert_eq!(job.tasks.len(), 5);
}

/// The default memory limit holds a 100,000-frame job in chunks of one. The time limit is raised:
/// it is wall-clock time, and a parallel test run on two cores (with Blender rendering next door)
/// says nothing about speed; `castanet bench --scenario compile` measures that (compile and
/// store of this job, docs/benchmarks.md).
#[test]
fn hundred_thousand_frames_in_chunks_of_one_fit_the_default_memory_limit() {
    let limits = SandboxLimits {
        time: SandboxLimits::default().time * 4,
        ..SandboxLimits::default()
    };
    let started = Instant::now();
    let job = JobTypeRegistry::new(None, limits)
        .compile(input(
            "simple-blender-render",
            blender_render_settings(json!({"frames": "1-100000", "chunk_size": 1})),
        ))
        .expect("compiles within the default memory limit");
    eprintln!(
        "100,000-frame simple-blender-render compiled in {:?}",
        started.elapsed()
    );
    assert_eq!(job.tasks.len(), 100_001);
    assert_eq!(job.tasks[99_999].name, "render-100000");
    assert_eq!(
        commands(&job.tasks[99_999])[0].parameters["args"][9],
        "100000"
    );
    assert_eq!(job.tasks[100_000].dependencies.len(), 100_000);
}

#[test]
fn ffmpeg_transcode_single_file_is_one_ffmpeg_task() {
    let job = compile(
        "ffmpeg-transcode",
        json!({
            "input": "/footage/day1/take 3.mov",
            "output_pattern": "/out/{stem}.{ext}.mp4",
            "input_args": "-ss 10",
        }),
    )
    .expect("compiles");
    assert_eq!(
        graph(&job),
        json!([{
            "name": "transcode-take 3.mov",
            "type": "ffmpeg",
            "commands": [{
                "name": "ffmpeg",
                "parameters": {
                    "exe": "{ffmpeg}",
                    "exeArgs": "",
                    "args": [
                        "-ss", "10", "-i", "/footage/day1/take 3.mov",
                        "-c:v", "libx264", "-crf", "20", "-pix_fmt", "yuv420p", "-c:a", "aac",
                        "-y", "/out/take 3.mov.mp4",
                    ],
                },
                "steps": 0,
            }],
            "depends_on": [],
        }])
    );
}

#[test]
fn ffmpeg_transcode_glob_is_one_ffmpeg_each_task() {
    let job = compile(
        "ffmpeg-transcode",
        json!({
            "input": "/footage/day1/*.mov",
            "output_pattern": "/out/{stem}.mkv",
            "output_args": "-c copy -n",
        }),
    )
    .expect("compiles");
    assert_eq!(
        graph(&job),
        json!([{
            "name": "transcode",
            "type": "ffmpeg",
            "commands": [{
                "name": "ffmpeg-each",
                "parameters": {
                    "exe": "{ffmpeg}",
                    "exeArgs": "",
                    "inputGlob": "/footage/day1/*.mov",
                    "inputArgs": [],
                    "outputArgs": ["-c", "copy", "-n"],
                    "outputPattern": "/out/{stem}.mkv",
                },
                "steps": 0,
            }],
            "depends_on": [],
        }])
    );

    let error = compile(
        "ffmpeg-transcode",
        json!({"input": "/footage/*.mov", "output_pattern": "/out/all.mkv"}),
    )
    .expect_err("one output for many inputs");
    assert!(error.to_string().contains("must contain {stem}"), "{error}");
}

#[test]
fn frames_to_video_is_one_encode_task() {
    let job = compile(
        "frames-to-video",
        json!({"input_glob": "/render/shot/*.png", "output_file": "/render/shot.mp4", "fps": 25.0}),
    )
    .expect("compiles");
    assert_eq!(
        graph(&job),
        json!([{
            "name": "encode-video",
            "type": "ffmpeg",
            "commands": [{
                "name": "frames-to-video",
                "parameters": {
                    "exe": "{ffmpeg}",
                    "exeArgs": "",
                    "fps": 25,
                    "inputGlob": "/render/shot/*.png",
                    "outputFile": "/render/shot.mp4",
                    "argsBefore": [],
                    "args": [
                        "-c:v", "h264", "-crf", "20", "-g", "18",
                        "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                        "-pix_fmt", "yuv420p", "-y",
                    ],
                },
                "steps": 0,
            }],
            "depends_on": [],
        }])
    );
}

#[test]
fn single_image_tiled_render_makes_tiles_and_a_merge() {
    let job = compile(
        "single-image-tiled-render",
        json!({
            "frame": 7,
            "tiles_x": 2,
            "tiles_y": 1,
            "render_output_root": "/render",
            "add_path_components": 0,
            "render_output_path": "/render/still",
            "blendfile": "/projects/still.blend",
            "scene": "Scene",
        }),
    )
    .expect("compiles");
    let tile = |column: u32, min_x: &str, max_x: &str| {
        json!({
            "name": format!("render-tile-{column}-1"),
            "type": "blender",
            "commands": [{
                "name": "blender-render",
                "parameters": {
                    "exe": "{blender}",
                    "exeArgs": "{blenderArgs}",
                    "argsBefore": [],
                    "blendfile": "/projects/still.blend",
                    "args": [
                        "--scene", "Scene",
                        "--python-expr", format!(
                            "import bpy; render = bpy.context.scene.render; render.use_border = True; \
                             render.use_crop_to_border = False; render.border_min_x = {min_x}; \
                             render.border_max_x = {max_x}; render.border_min_y = 0; render.border_max_y = 1; \
                             render.image_settings.file_format = 'PNG'; render.image_settings.color_mode = 'RGBA'; \
                             render.use_file_extension = True; render.use_overwrite = True; render.use_placeholder = False"
                        ),
                        "--render-output", format!("/render/still/tiles/tile-{column}-1-"),
                        "--render-frame", "7",
                    ],
                },
                "steps": 1,
            }],
            "depends_on": [],
        })
    };
    let expected = json!([
        tile(1, "0", "0.5"),
        tile(2, "0.5", "1"),
        {
            "name": "merge",
            "type": "ffmpeg",
            "commands": [{
                "name": "ffmpeg",
                "parameters": {
                    "exe": "{ffmpeg}",
                    "exeArgs": "",
                    "args": [
                        "-i", "/render/still/tiles/tile-1-1-0007.png",
                        "-i", "/render/still/tiles/tile-2-1-0007.png",
                        "-filter_complex", "[0:v][1:v]overlay=format=rgb[merged]",
                        "-map", "[merged]", "-frames:v", "1", "-update", "1",
                        "-y", "/render/still/still-0007.png",
                    ],
                },
                "steps": 0,
            }],
            "depends_on": ["render-tile-1-1", "render-tile-2-1"],
        },
    ]);
    assert_eq!(graph(&job), expected);
}

#[test]
fn single_image_tiled_render_refuses_too_many_tiles() {
    let error = compile(
        "single-image-tiled-render",
        json!({
            "frame": 1, "tiles_x": 17, "render_output_root": "/r", "render_output_path": "/r/x",
            "blendfile": "/p/a.blend", "scene": "Scene",
        }),
    )
    .expect_err("17 columns");
    // The setting's own `max` refuses it before the script runs.
    assert!(
        error
            .to_string()
            .contains("setting \"tiles_x\" must be at most 16, got 17"),
        "{error}"
    );
}
