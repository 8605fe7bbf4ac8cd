//! The FFmpeg family: `ffmpeg {exe, exeArgs, args[]}` (free-form), `frames-to-video` and
//! `ffmpeg-each`. FFmpeg runs with `-progress pipe:1 -nostats`; its progress is measured
//! against the input's ffprobe duration (or the frame count for image sequences), and every
//! output is checked with ffprobe before the command succeeds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use castanet_protocol::v1::FaultClass;

use super::exec::{run_watched, shell_split};
use super::glob::expand;
use super::unwritable::FfmpegWrites;
use super::{CommandContext, CommandError, Params};
use crate::progress::ffmpeg::{ProgressParser, Total, parse_probe_seconds};

/// How long one ffprobe call may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// `ffmpeg {exe, exeArgs, args[]}`: `args` is the complete argument list.
pub async fn ffmpeg(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let exe = params.non_empty_string("exe")?;
    let exe_args = shell_split(params.optional_string("exeArgs")?)?;
    let args = params.string_list("args")?;
    if args.is_empty() {
        return Err(CommandError::invalid("parameter \"args\" is empty"));
    }
    let inputs = file_inputs(&args);
    for input in &inputs {
        if !Path::new(input).exists() {
            return Err(CommandError::new(
                FaultClass::MissingInput,
                format!("input file not found: {input}"),
            ));
        }
    }
    let total = match inputs.first() {
        Some(input) => probe_duration(exe, input).await.map(Total::Seconds),
        None => None,
    };
    let output = args.last().cloned().unwrap_or_default();
    let mut argv = exe_args;
    argv.extend(args);
    run_ffmpeg(ctx, exe, argv, total, (0.0, 1.0), &output).await?;
    verify_output(ctx, exe, &output, None).await
}

/// `frames-to-video {exe, exeArgs, fps, inputGlob, outputFile, argsBefore[], args[]}`.
pub async fn frames_to_video(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let exe = params.non_empty_string("exe")?;
    let mut argv = shell_split(params.optional_string("exeArgs")?)?;
    let fps = params.positive_number("fps")?;
    let glob = params.non_empty_string("inputGlob")?;
    let output = params.non_empty_string("outputFile")?;
    argv.extend(params.string_list("argsBefore")?);
    let frames = expand(glob)?;
    if frames.is_empty() {
        return Err(CommandError::new(
            FaultClass::MissingInput,
            format!("no files match {glob}"),
        ));
    }
    let fps = format_fps(fps);
    argv.extend(["-r", &fps, "-pattern_type", "glob", "-i"].map(String::from));
    argv.push(glob.replace('\\', "/"));
    argv.extend(params.string_list("args")?);
    argv.extend(["-r".to_string(), fps, output.to_string()]);
    let count = frames.len() as u64;
    run_ffmpeg(
        ctx,
        exe,
        argv,
        Some(Total::Frames(count)),
        (0.0, 1.0),
        output,
    )
    .await?;
    verify_output(ctx, exe, output, Some(count)).await
}

/// `ffmpeg-each {exe, exeArgs, inputGlob, inputArgs[], outputArgs[], outputPattern}`: one
/// FFmpeg run per matched file, in path order.
pub async fn ffmpeg_each(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let exe = params.non_empty_string("exe")?;
    let exe_args = shell_split(params.optional_string("exeArgs")?)?;
    let glob = params.non_empty_string("inputGlob")?;
    let input_args = params.string_list("inputArgs")?;
    let output_args = params.string_list("outputArgs")?;
    let pattern = params.non_empty_string("outputPattern")?;
    let files: Vec<PathBuf> = expand(glob)?.into_iter().filter(|p| p.is_file()).collect();
    if files.is_empty() {
        return Err(CommandError::new(
            FaultClass::MissingInput,
            format!("no files match {glob}"),
        ));
    }
    let count = files.len() as f64;
    for (index, file) in files.iter().enumerate() {
        let input = file.to_string_lossy().to_string();
        let output = output_for(file, pattern);
        let mut argv = exe_args.clone();
        argv.extend(input_args.iter().cloned());
        argv.extend(["-i".to_string(), input.clone()]);
        argv.extend(output_args.iter().cloned());
        argv.push(output.clone());
        let total = probe_duration(exe, &input).await.map(Total::Seconds);
        let share = (index as f64 / count, 1.0 / count);
        run_ffmpeg(ctx, exe, argv, total, share, &output).await?;
        verify_output(ctx, exe, &output, None).await?;
    }
    Ok(())
}

/// `outputPattern` with `{stem}` and `{ext}` of `file` filled in.
fn output_for(file: &Path, pattern: &str) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let ext = file
        .extension()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    pattern.replace("{stem}", &stem).replace("{ext}", &ext)
}

/// "24" for whole numbers, else the shortest decimal.
fn format_fps(fps: f64) -> String {
    if fps.fract() == 0.0 && fps < 1e9 {
        format!("{}", fps as u64)
    } else {
        format!("{fps}")
    }
}

/// Runs FFmpeg with progress on stdout; `share` = (start, size) of this run within the
/// command's 0–100 %. A failure to open `output` is OUTPUT_UNWRITABLE.
async fn run_ffmpeg(
    ctx: &CommandContext,
    exe: &str,
    args: Vec<String>,
    total: Option<Total>,
    share: (f64, f64),
    output: &str,
) -> Result<(), CommandError> {
    let mut argv = vec![
        "-progress".to_string(),
        "pipe:1".to_string(),
        "-nostats".to_string(),
    ];
    argv.extend(args);
    let scaled = |fraction: f64| ((share.0 + share.1 * fraction) * 100.0).floor() as u32;
    ctx.progress.set(Some(scaled(0.0)), "Starting FFmpeg");
    let mut parser = ProgressParser::default();
    let mut writes = FfmpegWrites::new(output);
    let mut on_line = |line: &str| {
        writes.note(line);
        let Some(block) = parser.push(line) else {
            return;
        };
        let percent = total.and_then(|t| block.percent(t));
        let activity = match (block.frame, block.out_seconds) {
            (Some(frame), Some(secs)) => format!("Encoding: frame {frame}, {secs:.1} s written"),
            (Some(frame), None) => format!("Encoding: frame {frame}"),
            _ => "Encoding".to_string(),
        };
        let percent = percent.map(|p| scaled(f64::from(p) / 100.0));
        ctx.progress.set(percent, activity);
    };
    let result = run_watched(ctx, exe, &argv, &mut on_line).await;
    writes.explain(result)
}

/// The files FFmpeg reads: every `-i` value that is not a device, URL, pattern or filter
/// graph (`-f lavfi`).
fn file_inputs(args: &[String]) -> Vec<String> {
    let mut inputs = Vec::new();
    let mut format: Option<&str> = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "-f" => format = iter.next().map(String::as_str),
            "-i" => {
                if let Some(input) = iter.next() {
                    let special = format.is_some_and(|f| f != "image2")
                        || input.contains("://")
                        || input.contains('%')
                        || input == "-"
                        || input.starts_with("pipe:");
                    if !special {
                        inputs.push(input.clone());
                    }
                }
                format = None;
            }
            _ => {}
        }
    }
    inputs
}

/// ffprobe next to the given ffmpeg (same directory, or PATH for a bare name).
fn ffprobe_for(ffmpeg: &str) -> PathBuf {
    let path = Path::new(ffmpeg);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().replacen("ffmpeg", "ffprobe", 1))
        .unwrap_or_else(|| "ffprobe".to_string());
    let name = if name.contains("ffprobe") {
        name
    } else {
        "ffprobe".to_string()
    };
    path.with_file_name(name)
}

/// Runs ffprobe and returns its stdout, or why it failed.
async fn ffprobe(ffmpeg: &str, args: &[&str]) -> Result<String, String> {
    let exe = ffprobe_for(ffmpeg);
    let mut command = tokio::process::Command::new(&exe);
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    crate::platform::die_with_worker(&mut command);
    let run = command.output();
    match tokio::time::timeout(PROBE_TIMEOUT, run).await {
        Err(_) => Err(format!(
            "{} took longer than {} s",
            exe.display(),
            PROBE_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(format!("cannot run {}: {e}", exe.display())),
        Ok(Ok(out)) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Ok(Ok(out)) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

/// The input's duration in seconds, when ffprobe can tell.
async fn probe_duration(ffmpeg: &str, input: &str) -> Option<f64> {
    let args = [
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "csv=p=0",
        input,
    ];
    ffprobe(ffmpeg, &args)
        .await
        .ok()
        .as_deref()
        .and_then(parse_probe_seconds)
}

/// The output exists, is not empty, and ffprobe reads a video or audio stream from it
/// (with `frames` video frames, when given). Outputs that are not files are not checked.
async fn verify_output(
    ctx: &CommandContext,
    ffmpeg: &str,
    output: &str,
    frames: Option<u64>,
) -> Result<(), CommandError> {
    if output.starts_with("/dev/")
        || output.starts_with('-')
        || output.contains("://")
        || output.contains('%')
        || output.starts_with("pipe:")
    {
        return Ok(());
    }
    let bad =
        |why: String| CommandError::new(FaultClass::CodecError, format!("output {output}: {why}"));
    match tokio::fs::metadata(output).await {
        Ok(meta) if meta.len() > 0 => {}
        Ok(_) => return Err(bad("FFmpeg wrote an empty file".into())),
        Err(e) => return Err(bad(format!("not written ({e})"))),
    }
    let args = [
        "-v",
        "error",
        "-count_packets",
        "-show_entries",
        "stream=codec_type,nb_read_packets",
        "-of",
        "csv=p=0",
        output,
    ];
    let probed = ffprobe(ffmpeg, &args)
        .await
        .map_err(|e| bad(format!("ffprobe cannot read it: {e}")))?;
    let streams: Vec<(&str, u64)> = probed
        .lines()
        .filter_map(|l| {
            let (kind, packets) = l.trim().split_once(',')?;
            Some((kind, packets.trim().trim_end_matches(',').parse().ok()?))
        })
        .collect();
    let video_frames: u64 = streams
        .iter()
        .filter(|(k, _)| *k == "video")
        .map(|(_, n)| n)
        .sum();
    if streams.iter().all(|(_, n)| *n == 0) {
        return Err(bad("ffprobe finds no audio or video in it".into()));
    }
    if let Some(expected) = frames
        && video_frames != expected
    {
        return Err(bad(format!(
            "{video_frames} video frame(s), expected {expected}"
        )));
    }
    ctx.log
        .line(format!("verified {output}: {video_frames} video frame(s)"))
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn inputs_skip_filters_urls_and_patterns() {
        let args = strings(&[
            "-ss",
            "1",
            "-i",
            "/a.mov",
            "-f",
            "lavfi",
            "-i",
            "testsrc",
            "-i",
            "http://x/y",
            "-i",
            "/seq/f_%04d.png",
            "-i",
            "/b.wav",
            "-y",
            "/out.mp4",
        ]);
        assert_eq!(file_inputs(&args), ["/a.mov", "/b.wav"]);
    }

    #[test]
    fn helpers() {
        assert_eq!(format_fps(24.0), "24");
        assert_eq!(format_fps(23.976), "23.976");
        assert_eq!(
            output_for(Path::new("/in/clip.final.mov"), "/out/{stem}.{ext}.mp4"),
            "/out/clip.final.mov.mp4"
        );
        assert_eq!(ffprobe_for("ffmpeg"), PathBuf::from("ffprobe"));
        assert_eq!(
            ffprobe_for("/opt/ff/bin/ffmpeg"),
            PathBuf::from("/opt/ff/bin/ffprobe")
        );
    }
}
