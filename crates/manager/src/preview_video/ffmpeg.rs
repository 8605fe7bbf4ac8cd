//! The FFmpeg runs of the preview video: one-frame H.264 segments (a rendered frame, or
//! black) of one size and rate, and the join of segments into the video without
//! re-encoding. Every segment comes from the same encoder settings, so their stream
//! parameters match and a plain join of them plays.
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::plan::Fps;

/// One FFmpeg run may take this long; a hung one is killed.
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// How much of FFmpeg's error output goes into an error.
const STDERR_TAIL: usize = 600;

#[derive(Debug, thiserror::Error)]
pub enum FfmpegError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} did not finish {what} within {RUN_LIMIT:?}")]
    Hung { program: String, what: String },
    #[error("{program} failed {what} ({status}): {stderr}")]
    Failed {
        program: String,
        what: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// Runs FFmpeg (`program`) once; `what` names the run in errors.
async fn run(program: &str, args: &[String], what: &str) -> Result<(), FfmpegError> {
    let child = Command::new(program)
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| FfmpegError::Spawn {
            program: program.to_string(),
            source,
        })?;
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .map_err(|_| FfmpegError::Hung {
            program: program.to_string(),
            what: what.to_string(),
        })?
        .map_err(|source| FfmpegError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    let tail_start = stderr
        .char_indices()
        .rev()
        .nth(STDERR_TAIL)
        .map_or(0, |(at, _)| at);
    Err(FfmpegError::Failed {
        program: program.to_string(),
        what: what.to_string(),
        status: output.status,
        stderr: stderr[tail_start..].to_string(),
    })
}

/// Whether `program` runs as FFmpeg with an H.264 encoder.
pub async fn check(program: &str) -> Result<(), FfmpegError> {
    let args = [
        "-f",
        "lavfi",
        "-i",
        "color=black:s=16x16:r=1",
        "-frames:v",
        "1",
    ]
    .into_iter()
    .chain(["-c:v", "libx264", "-f", "null", "-"])
    .map(String::from)
    .collect::<Vec<_>>();
    run(program, &args, "a trial H.264 encode").await
}

/// The encoder settings every segment shares.
fn encode_args(size: (u32, u32), fps: Fps, output: &Path) -> Vec<String> {
    vec![
        "-frames:v".into(),
        "1".into(),
        "-c:v".into(),
        "libx264".into(),
        "-preset".into(),
        "veryfast".into(),
        "-crf".into(),
        "23".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
        "-color_range".into(),
        "tv".into(),
        "-r".into(),
        format!("{}/{}", fps.num, fps.den),
        "-s".into(),
        format!("{}x{}", size.0, size.1),
        "-f".into(),
        "mp4".into(),
        output.display().to_string(),
    ]
}

/// Encodes the picture `input` into a one-frame segment: scaled to fit `size`, centred on
/// black.
pub async fn encode_frame(
    program: &str,
    input: &Path,
    output: &Path,
    size: (u32, u32),
    fps: Fps,
) -> Result<(), FfmpegError> {
    let (w, h) = size;
    let mut args = vec![
        "-i".to_string(),
        input.display().to_string(),
        "-vf".into(),
        format!(
            "scale={w}:{h}:force_original_aspect_ratio=decrease:out_range=tv,\
             pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:black,setsar=1,format=yuv420p"
        ),
    ];
    args.extend(encode_args(size, fps, output));
    run(program, &args, &format!("encoding {}", input.display())).await
}

/// Encodes the one black segment of a video.
pub async fn encode_black(
    program: &str,
    output: &Path,
    size: (u32, u32),
    fps: Fps,
) -> Result<(), FfmpegError> {
    let mut args = vec![
        "-f".to_string(),
        "lavfi".into(),
        "-i".into(),
        format!(
            "color=black:s={}x{}:r={}/{}",
            size.0, size.1, fps.num, fps.den
        ),
        "-vf".into(),
        "setsar=1,format=yuv420p".into(),
    ];
    args.extend(encode_args(size, fps, output));
    run(program, &args, "encoding the black frame").await
}

/// Joins the segments named by the concat list `list` into `output` (MP4, index first so
/// a browser can play it while loading), one frame per 1/fps.
pub async fn join(program: &str, list: &Path, output: &Path, fps: Fps) -> Result<(), FfmpegError> {
    let args: Vec<String> = vec![
        "-f".into(),
        "concat".into(),
        "-i".into(),
        list.display().to_string(),
        "-c".into(),
        "copy".into(),
        // Each segment's own timing is approximate; frame N is shown at N/fps exactly.
        "-bsf:v".into(),
        format!(
            "setts=pts=N:dts=N:duration=1:time_base={}/{}",
            fps.den, fps.num
        ),
        "-video_track_timescale".into(),
        fps.num.to_string(),
        "-movflags".into(),
        "+faststart".into(),
        "-f".into(),
        "mp4".into(),
        output.display().to_string(),
    ];
    run(program, &args, "joining the preview video").await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames counted by ffprobe, and the mean brightness of each (0–255).
    fn probe(video: &Path) -> (u64, Vec<f64>) {
        let count = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
            .arg(video)
            .output()
            .expect("ffprobe runs");
        let count = String::from_utf8_lossy(&count.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        let gray = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(video)
            .args(["-vf", "scale=8:8,format=gray", "-f", "rawvideo", "-"])
            .output()
            .expect("ffmpeg runs");
        let means = gray
            .stdout
            .chunks(64)
            .map(|c| c.iter().map(|&b| f64::from(b)).sum::<f64>() / 64.0)
            .collect();
        (count, means)
    }

    /// Real FFmpeg: two frames and the black segment joined into five frames at 25 fps.
    #[tokio::test]
    async fn segments_join_into_a_video_with_black_gaps() {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = dir.path().join("frame.jpg");
        let made = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i", "testsrc=s=70x50:r=1"])
            .args(["-frames:v", "1"])
            .arg(&source)
            .status()
            .expect("ffmpeg runs");
        assert!(made.success());
        check("ffmpeg").await.expect("ffmpeg encodes H.264");
        let fps = Fps { num: 25, den: 1 };
        let size = (64, 48);
        std::fs::create_dir(dir.path().join("segments")).expect("mkdir");
        for frame in [2, 4] {
            let out = dir.path().join(super::super::plan::segment_name(frame));
            encode_frame("ffmpeg", &source, &out, size, fps)
                .await
                .expect("segment");
        }
        encode_black("ffmpeg", &dir.path().join("black.mp4"), size, fps)
            .await
            .expect("black");
        let list = dir.path().join("list.txt");
        let rendered = std::collections::HashSet::from([2, 4]);
        std::fs::write(
            &list,
            super::super::plan::concat_list(&[1, 2, 3, 4, 5], &rendered),
        )
        .expect("list");
        let video = dir.path().join("out.mp4");
        join("ffmpeg", &list, &video, fps).await.expect("joined");
        let (count, means) = probe(&video);
        assert_eq!(count, 5);
        let black: Vec<bool> = means.iter().map(|m| *m < 8.0).collect();
        assert_eq!(black, [true, false, true, false, true], "{means:?}");
    }

    #[tokio::test]
    async fn a_missing_program_and_a_failed_run_are_errors() {
        let missing = check("/nonexistent/castanet/ffmpeg").await;
        assert!(
            matches!(missing, Err(FfmpegError::Spawn { .. })),
            "{missing:?}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let failed = encode_frame(
            "ffmpeg",
            &dir.path().join("absent.jpg"),
            &dir.path().join("out.mp4"),
            (64, 48),
            Fps { num: 24, den: 1 },
        )
        .await;
        match failed {
            Err(FfmpegError::Failed { stderr, .. }) => {
                assert!(stderr.contains("absent.jpg"), "{stderr}")
            }
            other => panic!("expected a failed run, got {other:?}"),
        }
    }
}
