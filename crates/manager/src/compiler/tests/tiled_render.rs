//! `single-image-tiled-render` run for real: its commands, executed with Blender and FFmpeg the
//! way docs/job-types.md tells workers to, merge into the same image as an untiled render.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use super::*;

/// The argv a worker builds for `blender-render` and `ffmpeg` (exe, split exeArgs, argsBefore,
/// blendfile unless empty, args), with the default variables of a Linux worker.
fn argv(command: &AuthoredCommand) -> Vec<String> {
    let parameters = &command.parameters;
    let text = |key: &str| parameters[key].as_str().unwrap_or_default().to_owned();
    let list = |key: &str| -> Vec<String> {
        parameters[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map_or_else(|| item.to_string(), str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let expand = |value: String| {
        value
            .replace("{blender}", "blender")
            .replace("{blenderArgs}", "-b -y")
            .replace("{ffmpeg}", "ffmpeg")
    };
    let mut argv = vec![expand(text("exe"))];
    argv.extend(shell::shell_split(&expand(text("exeArgs"))).expect("exeArgs split"));
    argv.extend(list("argsBefore"));
    if command.name == "blender-render" && !text("blendfile").is_empty() {
        argv.push(text("blendfile"));
    }
    argv.extend(list("args"));
    argv
}

fn run(argv: &[String]) {
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", argv[0]));
    assert!(
        output.status.success(),
        "{argv:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn blender_python(script: &str) -> Vec<String> {
    [
        "blender",
        "-b",
        "--factory-startup",
        "--python-expr",
        script,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// RGB pixels of an image, decoded by FFmpeg.
fn pixels(image: &Path) -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(image)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(output.status.success(), "cannot decode {}", image.display());
    output.stdout
}

#[test]
fn tiles_merge_into_the_untiled_image() {
    let dir = temp_dir();
    let root = dir.path().to_string_lossy().into_owned();
    let blendfile = format!("{root}/still.blend");
    // A small Workbench scene: renders in a fraction of a second without a GPU.
    run(&blender_python(&format!(
        "import bpy; s = bpy.context.scene; s.render.engine = 'BLENDER_WORKBENCH'; \
         s.render.resolution_x = 64; s.render.resolution_y = 48; s.render.resolution_percentage = 100; \
         bpy.ops.wm.save_as_mainfile(filepath={blendfile:?})"
    )));

    let job = built_ins()
        .compile(input(
            "single-image-tiled-render",
            json!({
                "frame": 1, "tiles_x": 2, "tiles_y": 2,
                "render_output_root": root, "add_path_components": 0,
                "render_output_path": format!("{root}/out"),
                "blendfile": blendfile, "scene": "Scene",
            }),
        ))
        .expect("compiles");
    assert_eq!(job.tasks.len(), 5);
    for task in &job.tasks {
        for command in &commands(task) {
            run(&argv(command));
        }
    }

    let full = format!("{root}/full-");
    run(&[
        "blender", "-b", "-y", &blendfile, "--python-expr",
        "import bpy; r = bpy.context.scene.render; r.image_settings.file_format = 'PNG'; r.image_settings.color_mode = 'RGBA'",
        "--render-output", &full, "--render-frame", "1",
    ]
    .map(str::to_owned));

    let merged = pixels(&dir.path().join("out/still-0001.png"));
    let untiled = pixels(&dir.path().join("full-0001.png"));
    assert_eq!(merged.len(), 64 * 48 * 3);
    assert!(
        merged == untiled,
        "the merged tiles differ from the untiled render"
    );
}
