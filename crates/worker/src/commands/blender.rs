//! `blender-render {exe, exeArgs, argsBefore[], blendfile, args[]}`: runs Blender, turns its
//! output into progress and activity, and afterwards checks that every frame it was to
//! render was written and is not empty.

use std::collections::BTreeSet;
use std::path::Path;

use castanet_protocol::v1::FaultClass;

use super::exec::{run_watched, shell_split};
use super::unwritable::BlenderWrites;
use super::{CommandContext, CommandError, Params};
use crate::progress::blender::{BlenderEvent, parse_line};

/// `blender-render`.
pub async fn blender_render(ctx: &CommandContext, params: &Params) -> Result<(), CommandError> {
    let exe = params.non_empty_string("exe")?;
    let mut argv = shell_split(params.optional_string("exeArgs")?)?;
    argv.extend(params.string_list("argsBefore")?);
    let blendfile = params.string("blendfile")?;
    let args = params.string_list("args")?;
    if !blendfile.is_empty() {
        if !Path::new(blendfile).is_file() {
            return Err(CommandError::new(
                FaultClass::MissingInput,
                format!("blend file not found: {blendfile}"),
            ));
        }
        argv.push(blendfile.to_string());
    }
    let frames = frames_to_render(&args)?;
    let render_output = render_output(&args);
    argv.extend(args);
    if let Some(pin) = &ctx.slot_pin {
        crate::slot_gpus::add_cycles_device(&mut argv, pin.cycles_device);
    }

    let mut render = RenderProgress::new(frames.len());
    let mut writes = BlenderWrites::default();
    ctx.progress.set(Some(0), "Starting Blender");
    let mut on_line = |line: &str| {
        writes.note(line);
        let Some(event) = parse_line(line) else {
            return;
        };
        if let BlenderEvent::Saved(path) = &event {
            ctx.preview.offer(path, render.saving_frame(&frames));
        }
        if let Some((percent, activity)) = render.apply(event) {
            // Each finished (or skipped) frame is one of the command's steps.
            ctx.progress
                .set_with_steps(Some(percent), activity, render.done as u32);
        }
    };
    let result = match run_watched(ctx, exe, &argv, &mut on_line).await {
        Ok(()) => verify_frames(ctx, &frames, &render).await,
        Err(error) => Err(error),
    };
    // A file Blender could not save explains a failed exit or missing frames better than the
    // generic output classification ("No such file or directory" read as a missing input).
    writes.explain(result, render_output.as_deref())
}

/// The `-o`/`--render-output` argument, if any.
pub(super) fn render_output(args: &[String]) -> Option<String> {
    let at = args
        .iter()
        .rposition(|arg| arg == "-o" || arg == "--render-output")?;
    args.get(at + 1).cloned()
}

/// The most frames one command may name; more is a broken task, not a render, and would only
/// cost the worker memory.
const MAX_FRAMES: usize = 1_000_000;

/// Frame numbers from `-f`/`--render-frame` (e.g. `1..4`, `7`, `1,3,5..6`); empty when the
/// arguments render otherwise (`-a` with the scene's range) and the frames are not known.
fn frames_to_render(args: &[String]) -> Result<Vec<i64>, CommandError> {
    let mut frames = BTreeSet::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg != "-f" && arg != "--render-frame" {
            continue;
        }
        let Some(spec) = iter.next() else {
            return Err(CommandError::invalid(format!(
                "{arg} without a frame number"
            )));
        };
        for part in spec.split(',') {
            let bad =
                || CommandError::invalid(format!("cannot read frame range {spec:?} after {arg}"));
            let (first, last) = match part.split_once("..") {
                Some((a, b)) => (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                ),
                None => {
                    let n: i64 = part.trim().parse().map_err(|_| bad())?;
                    (n, n)
                }
            };
            // Checked: `i64::MIN..i64::MAX` must not wrap into a small span.
            let span = last
                .checked_sub(first)
                .and_then(|span| usize::try_from(span).ok());
            if span.is_none_or(|span| span >= MAX_FRAMES) {
                return Err(bad());
            }
            frames.extend(first..=last);
            if frames.len() > MAX_FRAMES {
                return Err(CommandError::invalid(format!(
                    "{arg} {spec:?} names more than {MAX_FRAMES} frames"
                )));
            }
        }
    }
    Ok(frames.into_iter().collect())
}

/// What Blender has said so far.
struct RenderProgress {
    total_frames: usize,
    done: usize,
    current_frame: Option<i64>,
    /// (frame being rendered when it was saved, path).
    saved: Vec<(Option<i64>, String)>,
    skipped: usize,
}

impl RenderProgress {
    fn new(total_frames: usize) -> Self {
        Self {
            total_frames,
            done: 0,
            current_frame: None,
            saved: Vec::new(),
            skipped: 0,
        }
    }

    /// Takes in one event; returns the new percent and activity when they changed.
    fn apply(&mut self, event: BlenderEvent) -> Option<(u32, String)> {
        match event {
            BlenderEvent::Rendering { frame, samples } => {
                self.current_frame = Some(frame);
                let (fraction, detail) = match samples {
                    Some((done, total)) => (
                        f64::from(done.min(total)) / f64::from(total),
                        format!(" (sample {done}/{total})"),
                    ),
                    None => (0.0, String::new()),
                };
                let activity = format!("Rendering frame {frame}{detail}");
                Some((self.percent(fraction), activity))
            }
            BlenderEvent::Saved(path) => {
                self.saved.push((self.current_frame, path));
                None
            }
            BlenderEvent::FrameDone | BlenderEvent::Skipped => {
                if matches!(event, BlenderEvent::Skipped) {
                    self.skipped += 1;
                }
                self.done += 1;
                let activity = match self.current_frame {
                    Some(frame) => format!("Finished frame {frame}"),
                    None => "Skipped an existing frame".to_string(),
                };
                Some((self.percent(0.0), activity))
            }
        }
    }

    /// The frame a `Saved:` line is about: the one Blender said it renders (`Fra:N`), else
    /// the only frame the command renders. `None` when neither is known (Workbench prints no
    /// `Fra:` lines; with several frames its saves stay unnumbered).
    fn saving_frame(&self, expected: &[i64]) -> Option<i64> {
        match (self.current_frame, expected) {
            (Some(frame), _) => Some(frame),
            (None, [only]) => Some(*only),
            (None, _) => None,
        }
    }

    /// Whole-command percent with the current frame `fraction` done; unknown totals give 0
    /// until the end (the runner reports 100 on completion).
    fn percent(&self, fraction: f64) -> u32 {
        if self.total_frames == 0 {
            return 0;
        }
        let done = (self.done as f64 + fraction).min(self.total_frames as f64);
        (done * 100.0 / self.total_frames as f64).floor() as u32
    }
}

/// Every saved file exists and is not empty, and every expected frame was saved (or
/// skipped because it existed).
async fn verify_frames(
    ctx: &CommandContext,
    expected: &[i64],
    render: &RenderProgress,
) -> Result<(), CommandError> {
    let mut empty_or_absent = Vec::new();
    for (_, path) in &render.saved {
        match tokio::fs::metadata(path).await {
            Ok(meta) if meta.len() > 0 => {}
            _ => empty_or_absent.push(path.as_str()),
        }
    }
    if !empty_or_absent.is_empty() {
        return Err(CommandError::new(
            FaultClass::MissingOutput,
            format!(
                "Blender reported saving files that are missing or empty: {}",
                empty_or_absent.join(", ")
            ),
        ));
    }
    let saved_frames: BTreeSet<i64> = render.saved.iter().filter_map(|(f, _)| *f).collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|f| !saved_frames.contains(f))
        .map(i64::to_string)
        .collect();
    // Skipped frames are not numbered in Blender's output; they cover as many missing ones.
    if missing.len() > render.skipped {
        return Err(CommandError::new(
            FaultClass::MissingOutput,
            format!(
                "Blender exited normally but did not write frame(s) {}",
                missing.join(", ")
            ),
        ));
    }
    ctx.log
        .line(format!(
            "verified: {} frame(s) written, {} skipped as existing",
            render.saved.len(),
            render.skipped
        ))
        .await;
    Ok(())
}

#[cfg(test)]
#[path = "blender_fuzz_tests.rs"]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::{run_collecting, run_collecting_progress};

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn frame_specs() {
        assert_eq!(
            frames_to_render(&strings(&["-f", "1..4"])),
            Ok(vec![1, 2, 3, 4])
        );
        assert_eq!(
            frames_to_render(&strings(&["--render-frame", "7,1..2", "-x"])),
            Ok(vec![1, 2, 7])
        );
        assert_eq!(frames_to_render(&strings(&["-a"])), Ok(vec![]));
        assert!(frames_to_render(&strings(&["-f", "4..1"])).is_err());
        assert!(frames_to_render(&strings(&["-f"])).is_err());
    }

    #[test]
    fn progress_follows_frames_and_samples() {
        let mut render = RenderProgress::new(2);
        let r = render.apply(BlenderEvent::Rendering {
            frame: 1,
            samples: Some((8, 16)),
        });
        assert_eq!(r, Some((25, "Rendering frame 1 (sample 8/16)".to_string())));
        render.apply(BlenderEvent::Saved("/x/1.png".into()));
        assert_eq!(
            render.apply(BlenderEvent::FrameDone),
            Some((50, "Finished frame 1".into()))
        );
        assert_eq!(render.apply(BlenderEvent::Skipped).map(|r| r.0), Some(100));
        assert_eq!(render.saved, [(Some(1), "/x/1.png".to_string())]);
    }

    #[test]
    fn saves_are_numbered_by_the_rendering_frame_or_the_only_one() {
        let mut render = RenderProgress::new(2);
        assert_eq!(render.saving_frame(&[4, 5]), None);
        assert_eq!(render.saving_frame(&[7]), Some(7));
        assert_eq!(render.saving_frame(&[]), None);
        render.apply(BlenderEvent::Rendering {
            frame: 5,
            samples: None,
        });
        assert_eq!(render.saving_frame(&[4, 5]), Some(5));
    }

    #[tokio::test]
    async fn a_missing_blend_file_is_missing_input() {
        let (result, lines) = run_collecting(
            "blender-render",
            r#"{"exe": "blender", "blendfile": "/nonexistent/castanet/shot.blend", "args": []}"#,
        )
        .await;
        assert_eq!(
            result,
            Err(CommandError::new(
                FaultClass::MissingInput,
                "blend file not found: /nonexistent/castanet/shot.blend"
            ))
        );
        assert!(lines.is_empty(), "nothing was started: {lines:?}");
    }

    #[tokio::test]
    async fn blendfile_key_is_required() {
        let (result, _) = run_collecting("blender-render", r#"{"exe": "blender"}"#).await;
        assert!(matches!(
            result,
            Err(CommandError::Failed {
                fault: FaultClass::InvalidCommand,
                ..
            })
        ));
    }

    /// A stand-in for Blender (a shell script printing Blender's lines) checks argv order,
    /// progress parsing and the frame verification without rendering.
    #[tokio::test]
    async fn fake_blender_output_is_parsed_and_verified() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("frame_0001.png");
        let script = format!(
            "echo \"argv: $*\"; echo 'Fra:1 Mem:1M | Scene | Sample 8/16'; printf x > {out}; \
             echo \"Saved: '{out}'\"; echo ' Time: 00:00.27 (Saving: 00:00.21)'",
            out = out.display()
        );
        let params = serde_json::json!({
            "exe": "sh", "exeArgs": "-c", "argsBefore": [script, "sh"], "blendfile": "",
            "args": ["-f", "1"],
        });
        let (result, lines, progress) =
            run_collecting_progress("blender-render", &params.to_string()).await;
        assert_eq!(result, Ok(()), "{lines:?}");
        assert!(lines.iter().any(|l| l.ends_with("argv: -f 1")), "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("verified: 1 frame(s) written"))
        );
        let percents: Vec<_> = progress.iter().filter_map(|p| p.percent).collect();
        assert_eq!(percents.last(), Some(&100), "{progress:?}");

        // Frame 2 is asked for but never written.
        let params = serde_json::json!({
            "exe": "sh", "exeArgs": "-c", "argsBefore": ["echo 'Fra:1 x'; echo ' Time: 1'", "sh"],
            "blendfile": "", "args": ["-f", "1..2"],
        });
        let (result, _) = run_collecting("blender-render", &params.to_string()).await;
        assert_eq!(
            result,
            Err(CommandError::new(
                FaultClass::MissingOutput,
                "Blender exited normally but did not write frame(s) 1, 2"
            ))
        );
    }
}
