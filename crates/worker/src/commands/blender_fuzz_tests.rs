//! Property fuzzing of `blender-render`'s own parsing: the `-f` frame specs a task hands it and
//! the progress it makes of Blender's events. Any spec is answered without a panic and within
//! a bounded number of frames; the percent never leaves 0..=100.
use proptest::prelude::*;

use super::{MAX_FRAMES, RenderProgress, frames_to_render};
use crate::progress::blender::BlenderEvent;
use crate::progress::fuzz_tests::cases;

fn frame_spec() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "-?[0-9]{1,20}(\\.\\.-?[0-9]{1,20})?(,-?[0-9]{1,20}(\\.\\.-?[0-9]{1,20})?){0,3}",
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1i64), Just(0)]
            .prop_flat_map(|edge| (Just(edge), any::<i64>()))
            .prop_map(|(edge, other)| format!("{other}..{edge},{edge}..{other}")),
        "[0-9., \u{0}-]{0,16}",
    ]
}

fn event() -> impl Strategy<Value = BlenderEvent> {
    prop_oneof![
        (any::<i64>(), prop::option::of((any::<u32>(), 1u32..)))
            .prop_map(|(frame, samples)| { BlenderEvent::Rendering { frame, samples } }),
        ".{0,8}".prop_map(BlenderEvent::Saved),
        Just(BlenderEvent::FrameDone),
        Just(BlenderEvent::Skipped),
    ]
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn frame_specs_never_panic_and_stay_bounded(
        flag in prop::sample::select(&["-f", "--render-frame"][..]),
        specs in prop::collection::vec(frame_spec(), 1..4),
    ) {
        let mut args = Vec::new();
        for spec in specs {
            args.push(flag.to_owned());
            args.push(spec);
        }
        if let Ok(frames) = frames_to_render(&args) {
            prop_assert!(frames.len() <= MAX_FRAMES);
            prop_assert!(frames.windows(2).all(|pair| pair[0] < pair[1]), "sorted, once each");
        }
    }

    #[test]
    fn render_percent_stays_within_100(
        total_frames in 0usize..50,
        events in prop::collection::vec(event(), 0..60),
    ) {
        let mut render = RenderProgress::new(total_frames);
        for event in events {
            if let Some((percent, _)) = render.apply(event) {
                prop_assert!(percent <= 100, "{percent}");
            }
        }
    }
}

fn args(spec: &str) -> Vec<String> {
    vec!["-f".to_owned(), spec.to_owned()]
}

/// Found by `frame_specs_never_panic_and_stay_bounded`: `last - first` overflowed (a panic in
/// debug builds; in release the wrapped span passed the size check and the worker tried to
/// collect 2^63 frames).
#[test]
fn a_range_spanning_all_of_i64_is_refused() {
    for spec in [
        "-1..9223372036854775807",
        "-9223372036854775808..9223372036854775807",
        "-9223372036854775808..0",
    ] {
        let refused = frames_to_render(&args(spec));
        assert!(refused.is_err(), "{spec}: {refused:?}");
    }
}

/// Many parts each under the per-part limit together asked for unbounded memory.
#[test]
fn many_parts_together_are_bounded() {
    let spec: Vec<String> = (0..3)
        .map(|part| format!("{}..{}", part * 1_000_000, part * 1_000_000 + 999_999))
        .collect();
    let refused = frames_to_render(&args(&spec.join(",")));
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        frames_to_render(&args("1..1000000")).map(|frames| frames.len()),
        Ok(1_000_000)
    );
}
