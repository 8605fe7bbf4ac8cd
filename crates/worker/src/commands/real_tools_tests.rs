//! The Blender and FFmpeg commands against the real Debian `blender`, `ffmpeg` and
//! `ffprobe`: clips and scenes are generated here, rendered and checked.

use std::path::Path;
use std::process::Command;

use castanet_protocol::v1::FaultClass;
use serde_json::json;

use super::CommandError;
use super::testing::{run_collecting, run_collecting_progress};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A `seconds` long 64×48 test clip.
fn make_clip(path: &Path, seconds: u32) -> TestResult {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size=64x48:rate=24:duration={seconds}"))
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(path)
        .status()?;
    assert!(status.success(), "ffmpeg made no test clip");
    Ok(())
}

#[tokio::test]
async fn ffmpeg_transcodes_with_rising_progress() -> TestResult {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("clip.mp4");
    make_clip(&input, 2)?;
    let output = dir.path().join("clip-small.mkv");
    let params = json!({
        "exe": "ffmpeg", "exeArgs": "-hide_banner",
        "args": ["-i", input, "-c:v", "libx264", "-preset", "ultrafast", "-y", output],
    });
    let (result, lines, progress) = run_collecting_progress("ffmpeg", &params.to_string()).await;
    assert_eq!(result, Ok(()), "{lines:#?}");
    let percents: Vec<u32> = progress.iter().filter_map(|p| p.percent).collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    assert_eq!(percents.last(), Some(&100), "{progress:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("verified ") && l.ends_with(": 48 video frame(s)")),
        "{lines:#?}"
    );
    Ok(())
}

#[tokio::test]
async fn ffmpeg_failures_are_classified() -> TestResult {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("clip.mp4");
    make_clip(&input, 1)?;
    let out = dir.path().join("out.mp4");
    let params =
        json!({"exe": "ffmpeg", "args": ["-i", input, "-c:v", "no-such-codec", "-y", out]});
    let (result, _) = run_collecting("ffmpeg", &params.to_string()).await;
    assert!(
        matches!(
            &result,
            Err(CommandError::Failed {
                fault: FaultClass::CodecError,
                ..
            })
        ),
        "{result:?}"
    );

    let garbage = dir.path().join("garbage.mov");
    std::fs::write(&garbage, b"this is not a movie")?;
    let params = json!({"exe": "ffmpeg", "args": ["-i", garbage, "-y", out]});
    let (result, _) = run_collecting("ffmpeg", &params.to_string()).await;
    assert!(
        matches!(
            &result,
            Err(CommandError::Failed {
                fault: FaultClass::CodecError,
                ..
            })
        ),
        "{result:?}"
    );

    let params = json!({"exe": "ffmpeg", "args": ["-i", dir.path().join("absent.mov"), "-y", out]});
    let (result, lines) = run_collecting("ffmpeg", &params.to_string()).await;
    assert!(
        matches!(
            &result,
            Err(CommandError::Failed {
                fault: FaultClass::MissingInput,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(lines.is_empty(), "checked before starting: {lines:?}");

    // An output under a regular file cannot be opened (ENOTDIR stops root too).
    std::fs::write(dir.path().join("file"), b"not a directory")?;
    let unwritable = dir.path().join("file").join("out.mp4");
    let params = json!({"exe": "ffmpeg", "args": ["-i", input, "-y", unwritable]});
    let (result, lines) = run_collecting("ffmpeg", &params.to_string()).await;
    let expected = format!(
        "FFmpeg cannot write its output {}: Not a directory",
        unwritable.display()
    );
    assert_eq!(
        result,
        Err(CommandError::new(FaultClass::OutputUnwritable, expected)),
        "{lines:#?}"
    );

    let params = json!({"exe": "/nonexistent/ffmpeg", "args": ["-i", input, "-y", out]});
    let (result, _) = run_collecting("ffmpeg", &params.to_string()).await;
    assert!(
        matches!(
            &result,
            Err(CommandError::Failed {
                fault: FaultClass::MissingExecutable,
                ..
            })
        ),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn frames_to_video_counts_its_frames() -> TestResult {
    let dir = tempfile::tempdir()?;
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x48:rate=24",
            "-frames:v",
            "5",
        ])
        .arg(dir.path().join("frame_%04d.png"))
        .status()?;
    assert!(status.success());
    let output = dir.path().join("preview.mp4");
    let params = json!({
        "exe": "ffmpeg", "fps": 24, "inputGlob": format!("{}/*.png", dir.path().display()),
        "outputFile": output, "args": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-y"],
    });
    let (result, lines, progress) =
        run_collecting_progress("frames-to-video", &params.to_string()).await;
    assert_eq!(result, Ok(()), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.ends_with(": 5 video frame(s)")),
        "{lines:#?}"
    );
    assert_eq!(progress.last().and_then(|p| p.percent), Some(100));

    let params = json!({
        "exe": "ffmpeg", "fps": 24, "inputGlob": format!("{}/*.exr", dir.path().display()),
        "outputFile": output,
    });
    let (result, _) = run_collecting("frames-to-video", &params.to_string()).await;
    assert!(
        matches!(&result, Err(CommandError::Failed { fault: FaultClass::MissingInput, message }) if message.contains("*.exr")),
        "{result:?}"
    );
    Ok(())
}

#[tokio::test]
async fn ffmpeg_each_transcodes_every_match() -> TestResult {
    let dir = tempfile::tempdir()?;
    for name in ["a.mp4", "b.mp4"] {
        make_clip(&dir.path().join(name), 1)?;
    }
    let out = dir.path().join("out");
    std::fs::create_dir(&out)?;
    let params = json!({
        "exe": "ffmpeg", "inputGlob": format!("{}/*.mp4", dir.path().display()),
        "outputArgs": ["-c:v", "libx264", "-preset", "ultrafast", "-y"],
        "outputPattern": format!("{}/{{stem}}-small.mkv", out.display()),
    });
    let (result, lines, progress) =
        run_collecting_progress("ffmpeg-each", &params.to_string()).await;
    assert_eq!(result, Ok(()), "{lines:#?}");
    assert!(out.join("a-small.mkv").is_file() && out.join("b-small.mkv").is_file());
    let percents: Vec<u32> = progress.iter().filter_map(|p| p.percent).collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    assert_eq!(percents.last(), Some(&100));
    Ok(())
}

/// Writes a tiny Cycles scene (denoising off: Debian's Blender has no OpenImageDenoise).
pub fn make_scene(path: &Path) -> TestResult {
    let script = format!(
        "{}\
         s.frame_start = 1\n\
         s.frame_end = 4\n\
         bpy.ops.wm.save_as_mainfile(filepath={:?})\n",
        crate::self_check::TINY_SCENE_SCRIPT,
        path.display().to_string()
    );
    let output = Command::new("blender")
        .args([
            "-b",
            "--factory-startup",
            "--python-exit-code",
            "1",
            "--python-expr",
            &script,
        ])
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(path.is_file());
    Ok(())
}

#[tokio::test]
async fn blender_renders_and_verifies_frames() -> TestResult {
    let dir = tempfile::tempdir()?;
    let blend = dir.path().join("scene.blend");
    make_scene(&blend)?;
    let out = dir.path().join("out");
    let params = json!({
        "exe": "blender", "exeArgs": "-b -y --factory-startup", "blendfile": blend,
        "args": ["--render-output", format!("{}/frame_####", out.display()),
                 "--render-format", "PNG", "--render-frame", "1..2"],
    });
    let (result, lines, progress) =
        run_collecting_progress("blender-render", &params.to_string()).await;
    assert_eq!(result, Ok(()), "{lines:#?}");
    for frame in ["frame_0001.png", "frame_0002.png"] {
        assert!(std::fs::metadata(out.join(frame))?.len() > 0);
    }
    assert!(
        lines
            .iter()
            .any(|l| l == "verified: 2 frame(s) written, 0 skipped as existing")
    );
    // Only the newest value is kept, so the last one is deterministic.
    let last = progress.last().cloned().unwrap_or_default();
    assert_eq!(last.percent, Some(100), "{progress:#?}");
    assert_eq!(last.activity.as_deref(), Some("Finished frame 2"));
    // One step per frame, counted as Blender finishes them.
    assert_eq!(last.steps_completed, Some(2), "{progress:#?}");
    let steps: Vec<u32> = progress.iter().filter_map(|p| p.steps_completed).collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");
    Ok(())
}

#[tokio::test]
async fn blender_exiting_normally_without_the_frame_is_missing_output() -> TestResult {
    let dir = tempfile::tempdir()?;
    let blend = dir.path().join("scene.blend");
    make_scene(&blend)?;
    let out = dir.path().join("out");
    // Blender leaves with exit code 0 before it gets to render the frame.
    let params = json!({
        "exe": "blender", "exeArgs": "-b -y --factory-startup", "blendfile": blend,
        "args": ["--render-output", format!("{}/frame_####", out.display()),
                 "--python-expr", "import sys; sys.exit(0)", "--render-frame", "1"],
    });
    let (result, lines) = run_collecting("blender-render", &params.to_string()).await;
    assert_eq!(
        result,
        Err(CommandError::new(
            FaultClass::MissingOutput,
            "Blender exited normally but did not write frame(s) 1"
        )),
        "{lines:#?}"
    );
    assert!(!out.join("frame_0001.png").exists());
    Ok(())
}

#[tokio::test]
async fn blender_that_cannot_save_its_frame_fails_as_output_unwritable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let blend = dir.path().join("scene.blend");
    make_scene(&blend)?;
    // A regular file where the output directory should be: ENOTDIR, which stops root too.
    std::fs::write(dir.path().join("file"), b"not a directory")?;
    let out = dir.path().join("file").join("out");
    let params = json!({
        "exe": "blender", "exeArgs": "-b -y --factory-startup", "blendfile": blend,
        "args": ["--render-output", format!("{}/frame_####", out.display()),
                 "--render-format", "PNG", "--render-frame", "1"],
    });
    let (result, lines) = run_collecting("blender-render", &params.to_string()).await;
    let expected = format!(
        "Blender cannot write its output {}/frame_0001.png: Not a directory",
        out.display()
    );
    assert_eq!(
        result,
        Err(CommandError::new(FaultClass::OutputUnwritable, expected)),
        "{lines:#?}"
    );
    Ok(())
}

/// Whether this process may make a mount namespace with a read-only bind mount (root, or
/// CAP_SYS_ADMIN, and `unshare` installed); probed by writing through one.
fn read_only_mounts_work(dir: &Path) -> bool {
    let probe = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind -o ro "$0" "$0" && ! touch "$0/probe" 2>/dev/null"#)
        .arg(dir)
        .output();
    probe.is_ok_and(|output| output.status.success()) && !dir.join("probe").exists()
}

/// The case users met: the output directory on a read-only mount does not exist yet, Blender
/// cannot make it, and its "No such file or directory" used to be taken for a missing input.
#[tokio::test]
async fn blender_on_a_read_only_mount_fails_as_output_unwritable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let readonly = dir.path().join("readonly");
    std::fs::create_dir(&readonly)?;
    if !read_only_mounts_work(&readonly) {
        // Needs a private mount namespace; containers and non-root users may have none.
        eprintln!("skipped: cannot make a read-only bind mount in a private mount namespace");
        return Ok(());
    }
    let blend = dir.path().join("scene.blend");
    make_scene(&blend)?;
    let out = readonly.join("shot");
    // Blender runs in its own mount namespace, where `readonly` is mounted read-only.
    let params = json!({
        "exe": "unshare",
        "argsBefore": ["-m", "--propagation", "private", "sh", "-c",
                       r#"mount --bind -o ro "$0" "$0" && exec blender -b -y --factory-startup "$@""#,
                       readonly],
        "blendfile": blend,
        "args": ["--render-output", format!("{}/frame_####", out.display()),
                 "--render-format", "PNG", "--render-frame", "1"],
    });
    let (result, lines) = run_collecting("blender-render", &params.to_string()).await;
    let expected = format!(
        "Blender cannot write its output {}/frame_0001.png: No such file or directory \
         (its directory is missing)",
        out.display()
    );
    assert_eq!(
        result,
        Err(CommandError::new(FaultClass::OutputUnwritable, expected)),
        "{lines:#?}"
    );
    assert!(!out.exists());
    Ok(())
}

/// Cycles with a million samples and adaptive sampling off (on, a simple scene converges
/// in well under a second and the render would finish).
const ENDLESS_CYCLES_RENDER: &str = "import bpy; s = bpy.context.scene; \
    s.render.engine = 'CYCLES'; s.cycles.samples = 1000000; \
    s.cycles.use_adaptive_sampling = False; s.cycles.time_limit = 0; \
    s.cycles.use_denoising = False";

#[tokio::test]
async fn a_blender_render_over_its_time_limit_fails_as_timeout() -> TestResult {
    let dir = tempfile::tempdir()?;
    let blend = dir.path().join("scene.blend");
    make_scene(&blend)?;
    let out = dir.path().join("out");
    // Far more samples than a second allows.
    let params = json!({
        "exe": "blender", "exeArgs": "-b -y --factory-startup", "blendfile": blend,
        "args": ["--render-output", format!("{}/frame_####", out.display()),
                 "--python-expr", ENDLESS_CYCLES_RENDER,
                 "--render-frame", "1"],
        "timeout_seconds": 3,
    });
    let started = std::time::Instant::now();
    let (result, lines) = run_collecting("blender-render", &params.to_string()).await;
    assert_eq!(
        result,
        Err(CommandError::new(
            FaultClass::Timeout,
            "did not finish within its time limit of 3 s"
        )),
        "{lines:#?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(lines.iter().any(|l| l.starts_with("going to run: blender")));
    // The kill took the whole process group: nothing renders this scene any more.
    let needle = blend.display().to_string();
    let still_running = std::fs::read_dir("/proc")?.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
    });
    assert!(!still_running, "Blender outlived the time limit");
    Ok(())
}
