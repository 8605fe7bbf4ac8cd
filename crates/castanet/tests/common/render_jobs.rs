//! Blender scenes and render jobs for the end-to-end tests that drive the real Blender.
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::Api;

/// Writes a 64×48 Cycles scene with frames 1–4 (denoising off: Debian's Blender has no
/// OpenImageDenoise). `samples` sets how long a frame takes.
pub fn make_scene(path: &Path, samples: u32, size: (u32, u32)) {
    let script = format!(
        "import bpy\n\
         s = bpy.context.scene\n\
         s.render.engine = 'CYCLES'\n\
         s.cycles.samples = {samples}\n\
         s.cycles.use_denoising = False\n\
         s.cycles.use_adaptive_sampling = False\n\
         s.render.resolution_x = {}\n\
         s.render.resolution_y = {}\n\
         s.render.resolution_percentage = 100\n\
         s.frame_start = 1\n\
         s.frame_end = 4\n\
         bpy.ops.wm.save_as_mainfile(filepath={:?})\n",
        size.0,
        size.1,
        path.display().to_string()
    );
    run_blender_python(&script, &[path]);
}

/// Runs a Python script in a factory-fresh background Blender; it must succeed and leave
/// every file of `writes` behind.
pub fn run_blender_python(script: &str, writes: &[&Path]) {
    let output = Command::new("blender")
        .args([
            "-b",
            "--factory-startup",
            "--python-exit-code",
            "1",
            "--python-expr",
        ])
        .arg(script)
        .output()
        .expect("blender runs");
    assert!(
        output.status.success() && writes.iter().all(|path| path.is_file()),
        "the Blender script failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Submits a job and returns its id.
pub async fn submit(api: &Api, body: Value) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v3/jobs", api.url))
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = response.status();
    let job: Value = response.json().await.expect("JSON");
    assert_eq!(status.as_u16(), 200, "{job}");
    job["id"].as_str().expect("id").to_string()
}

pub fn render_job(blend: &Path, out_root: &Path, frames: &str) -> Value {
    json!({
        "name": "tiny", "type": "simple-blender-render", "priority": 50, "submitter_platform": "linux",
        "settings": {
            "frames": frames, "chunk_size": 1,
            "render_output_root": out_root, "add_path_components": 0,
            "render_output_path": format!("{}/tiny/######", out_root.display()),
            "blendfile": blend, "fps": 24.0, "format": "PNG", "image_file_extension": ".png",
            "has_previews": false, "scene": "Scene",
        },
    })
}
