//! Property fuzzing of the progress parsers: any output a program prints (Blender's lines,
//! FFmpeg's `key=value` blocks, garbage, NUL bytes, huge numbers) is read without a panic, and
//! every percent that reaches the task stays within 0..=100. The parsers are crate-private, so
//! this lives beside them rather than in `tests/`; `PROPTEST_CASES` runs more cases.
use proptest::prelude::*;
use proptest::test_runner::Config;

use super::ProgressSink;
use super::blender::{BlenderEvent, parse_line, strip_render_prefix};
use super::ffmpeg::{FfmpegProgress, ProgressParser, Total, parse_probe_seconds};

/// `default_cases`, or `PROPTEST_CASES`; failures are not written into the source tree (a defect
/// found keeps a plain `#[test]` with its minimal input instead).
pub(crate) fn cases(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Lines shaped like Blender's, with hostile numbers and separators mixed in.
fn blender_like_line() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "([0-9:.]{0,8} render \\| )?Fra:-?[0-9]{0,25}[ |a-zA-Z:.]{0,20}",
        "Fra:[0-9]{1,4} .{0,10}\\| (Sample -?[0-9]{0,12}/-?[0-9]{0,12}|Rendering [0-9]{0,12} / [0-9]{0,12} samples)",
        "(Saved: .{0,12}|  ?Time: .{0,8}|Skipping existing frame.{0,8})",
        "[|/ \u{0}\u{fffd}0-9]{0,12}",
    ]
}

/// FFmpeg's progress keys with any value, FFmpeg's own messages, and anything else.
fn ffmpeg_like_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "(frame|out_time_us|out_time_ms|progress|fps) ?= ?-?[0-9]{0,25}",
        "progress=(continue|end)",
        "[a-z_]{0,10}=.{0,10}",
        any::<String>(),
    ]
}

fn any_total() -> impl Strategy<Value = Total> {
    prop_oneof![
        any::<f64>().prop_map(Total::Seconds),
        prop_oneof![
            Just(0.0),
            Just(f64::MIN_POSITIVE),
            Just(1e-300),
            Just(1e300)
        ]
        .prop_map(Total::Seconds),
        any::<u64>().prop_map(Total::Frames),
        (0u64..3).prop_map(Total::Frames),
    ]
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn blender_lines_never_panic_and_samples_are_sane(line in blender_like_line()) {
        let _ = strip_render_prefix(&line);
        match parse_line(&line) {
            Some(BlenderEvent::Rendering { samples: Some((_, total)), .. }) => prop_assert!(total > 0),
            Some(BlenderEvent::Saved(path)) => prop_assert!(!path.ends_with(['\n', '\r'])),
            _ => {}
        }
    }

    #[test]
    fn ffmpeg_blocks_never_panic_and_percent_stays_within_100(
        lines in prop::collection::vec(ffmpeg_like_line(), 0..30),
        total in any_total(),
    ) {
        let mut parser = ProgressParser::default();
        for line in &lines {
            if let Some(block) = parser.push(line) {
                if let Some(seconds) = block.out_seconds {
                    prop_assert!(seconds >= 0.0 && seconds.is_finite());
                }
                if let Some(percent) = block.percent(total) {
                    prop_assert!(percent <= 100, "{percent} from {block:?} of {total:?}");
                }
            }
        }
    }

    #[test]
    fn any_block_against_any_total_is_at_most_100_percent(
        frame in prop::option::of(any::<u64>()),
        out_seconds in prop::option::of(any::<f64>()),
        ended in any::<bool>(),
        total in any_total(),
    ) {
        let block = FfmpegProgress { frame, out_seconds, ended };
        if let Some(percent) = block.percent(total) {
            prop_assert!(percent <= 100, "{percent}");
        }
    }

    #[test]
    fn probe_output_is_a_positive_finite_duration_or_nothing(output in any::<String>()) {
        if let Some(seconds) = parse_probe_seconds(&output) {
            prop_assert!(seconds.is_finite() && seconds > 0.0);
        }
    }

    #[test]
    fn shared_sinks_map_any_percent_into_0_to_100(
        outer in (1usize..20).prop_flat_map(|count| (0..count, Just(count))),
        inner in (1usize..20).prop_flat_map(|count| (0..count, Just(count))),
        percent in any::<u32>(),
        steps in (any::<u32>(), any::<u32>(), any::<u32>()),
    ) {
        let (sink, receiver) = ProgressSink::channel();
        let command = sink.share(outer.0, outer.1).share(inner.0, inner.1);
        command.set(Some(percent), "working");
        let published = receiver.borrow().percent;
        prop_assert!(published.is_some_and(|published| published <= 100), "{published:?}");
        let (base, count, done) = steps;
        command.counting_steps(base, count).set_with_steps(Some(percent), "frame", done);
        let published = receiver.borrow().clone();
        prop_assert!(published.percent.is_some_and(|published| published <= 100));
        prop_assert_eq!(published.steps_completed, Some(base.saturating_add(done.min(count))));
    }
}
