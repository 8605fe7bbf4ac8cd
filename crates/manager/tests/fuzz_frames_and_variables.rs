//! Property fuzzing of the frame-range parser (`frameChunker`, `frameCount`) and of variable
//! expansion: any input is answered without a panic, accepted ranges come back sorted, once
//! each and within bounds, and expansion stays bounded in size.
mod fuzz_support;

use std::collections::{BTreeMap, BTreeSet};

use castanet_manager::compiler::frames::{
    FrameRangeError, MAX_FRAME_CHUNKS, chunk_frames, chunk_size_from_number, count_frames,
};
use castanet_manager::variables::{VariableConfig, Variables, matched_prefix_len};
use proptest::prelude::*;

const I32_MAX: u64 = i32::MAX as u64;

/// Frames of a chunk written in Flamenco's notation (`1-4,6,8,9`), read back.
fn frames_of_chunk(chunk: &str) -> Vec<u64> {
    let mut frames = Vec::new();
    for part in chunk.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (first, last),
            None => (part, part),
        };
        let first: u64 = first.parse().expect("chunk frame");
        let last: u64 = last.parse().expect("chunk frame");
        frames.extend(first..=last);
    }
    frames
}

/// One comma-separated part of a range with the frames it stands for, in any of the notations
/// the parser accepts (`a`, `a-b`, `a..b`, spaces around numbers).
fn range_part() -> impl Strategy<Value = (String, Vec<u64>)> {
    (0u64..300, 0u64..40, 0usize..3, any::<bool>()).prop_map(|(first, extra, style, spaced)| {
        let last = first + extra;
        let space = if spaced { " " } else { "" };
        let text = match style {
            0 => format!("{space}{first}{space}"),
            1 => format!("{first}{space}-{space}{last}"),
            _ => format!("{space}{first}..{last}{space}"),
        };
        let frames = if style == 0 {
            vec![first]
        } else {
            (first..=last).collect()
        };
        (text, frames)
    })
}

/// Text that looks like a frame range but often is not one.
fn range_like_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9,.\\- +]{0,24}",
        "[0-9]{1,30}(-|\\.\\.)[0-9]{1,30}",
        "[-0-9,.\u{0}\u{3000}٣ ]{0,16}",
    ]
}

proptest! {
    #![proptest_config(fuzz_support::cases(256))]

    #[test]
    fn the_frame_parser_never_panics(range in range_like_text(), chunk_size in 1u64..u64::MAX) {
        let counted = count_frames(&range);
        // Only chunk what is small enough to be cheap; larger ones are covered below.
        if counted.as_ref().is_ok_and(|count| count / chunk_size <= 10_000) {
            let chunks = chunk_frames(&range, chunk_size).expect("a counted range chunks");
            prop_assert!(!chunks.is_empty());
        } else if let Err(error) = counted {
            // Every refusal quotes what it refused or says what was expected.
            let message = error.to_string();
            prop_assert!(message.contains("frame range"), "{message}");
        }
    }

    #[test]
    fn accepted_ranges_chunk_sorted_once_each_and_in_size(
        parts in prop::collection::vec(range_part(), 1..8),
        chunk_size in 1u64..60,
    ) {
        let range: Vec<&str> = parts.iter().map(|(text, _)| text.as_str()).collect();
        let range = range.join(",");
        let expected: BTreeSet<u64> = parts.iter().flat_map(|(_, frames)| frames.clone()).collect();
        prop_assert_eq!(count_frames(&range), Ok(expected.len() as u64));

        let chunks = chunk_frames(&range, chunk_size).expect("a valid range chunks");
        prop_assert_eq!(chunks.len() as u64, (expected.len() as u64).div_ceil(chunk_size));
        let mut all = Vec::new();
        for (index, chunk) in chunks.iter().enumerate() {
            let frames = frames_of_chunk(chunk);
            prop_assert!(frames.len() as u64 <= chunk_size, "{chunk} is over {chunk_size}");
            if index + 1 < chunks.len() {
                prop_assert_eq!(frames.len() as u64, chunk_size, "only the last chunk is short");
            }
            // A chunk is itself a range with the same frames (the round trip).
            prop_assert_eq!(count_frames(chunk), Ok(frames.len() as u64));
            all.extend(frames);
        }
        prop_assert_eq!(all, expected.into_iter().collect::<Vec<_>>(), "sorted, once each");
    }

    #[test]
    fn huge_ranges_are_counted_but_refused_as_too_many_chunks(
        first in 0u64..=I32_MAX,
        length in 1_000_001u64..=I32_MAX,
    ) {
        let last = (first + length - 1).min(I32_MAX);
        let range = format!("{first}-{last}");
        let count = last - first + 1;
        prop_assert_eq!(count_frames(&range), Ok(count));
        if count > MAX_FRAME_CHUNKS {
            let refused = chunk_frames(&range, 1);
            let is_too_many = matches!(refused, Err(FrameRangeError::TooManyChunks { .. }));
            prop_assert!(is_too_many, "{refused:?}");
        }
    }

    #[test]
    fn frame_numbers_beyond_32_bits_are_too_large(frame in (I32_MAX + 1)..u64::MAX, digits in "[1-9][0-9]{20,39}") {
        for range in [frame.to_string(), format!("1-{frame}"), digits] {
            let refused = count_frames(&range);
            let is_too_large = matches!(refused, Err(FrameRangeError::TooLarge { .. }));
            prop_assert!(is_too_large, "{range}: {refused:?}");
        }
    }

    #[test]
    fn chunk_sizes_from_script_numbers_are_whole_and_positive(number in any::<f64>()) {
        match chunk_size_from_number(number) {
            Ok(size) => prop_assert!(size >= 1 && size as f64 == number),
            Err(error) => prop_assert!(error.to_string().contains("chunk size")),
        }
    }
}

#[test]
fn hostile_frame_ranges_are_refused_with_a_reason() {
    let cases: &[(&str, &str)] = &[
        ("5-1", "ends before it starts"),
        (",,,", "empty part"),
        ("\0", "not a frame number"),
        ("1-\u{0}", "not a frame number"),
        ("٣", "not a frame number"),
        ("1-99999999999999999999999", "too large"),
        ("2147483648", "too large"),
    ];
    for (range, reason) in cases {
        let error = count_frames(range).expect_err(range).to_string();
        assert!(error.contains(reason), "{range:?}: {error}");
    }
    let error = chunk_frames("1-999999999", 1).expect_err("too many chunks");
    assert!(
        error.to_string().contains("at most 1000000"),
        "the refusal names the limit: {error}"
    );
}

// ---- variables ---------------------------------------------------------------------------

const PLATFORMS: &[&str] = &[
    "linux", "windows", "darwin", "macos", "plan9", "", "WINDOWS",
];

/// Variable values: paths in every notation, braces, drive letters, and arbitrary text.
fn variable_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9/\\\\:{} .]{0,12}",
        "[A-Z]:[\\\\/]?[a-z]{0,4}",
        "(/|\\\\\\\\)[a-z]{1,5}(/[a-z]{1,3})?",
        "\\{[a-d]\\}{1,3}",
        any::<String>(),
    ]
}

fn variable_config() -> impl Strategy<Value = VariableConfig> {
    (
        any::<bool>(),
        prop::option::of(variable_value()),
        prop::option::of(variable_value()),
        prop::option::of(variable_value()),
        prop::option::of(variable_value()),
    )
        .prop_map(|(is_twoway, all, linux, windows, darwin)| VariableConfig {
            is_twoway,
            all,
            linux,
            windows,
            darwin,
        })
}

/// Names include ones that collide with the built-ins and ones with braces in them.
fn variables_config() -> impl Strategy<Value = BTreeMap<String, VariableConfig>> {
    prop::collection::btree_map(
        prop_oneof![
            "[a-d]",
            "blender|ffmpeg|jobs",
            "[a-z{}]{1,4}",
            any::<String>()
        ],
        variable_config(),
        0..6,
    )
}

/// Text to expand: placeholders of the generated names, paths and anything else.
fn text_to_expand() -> impl Strategy<Value = String> {
    prop_oneof![
        "(\\{[a-d]\\}|\\{blender\\}|\\{jobs\\}|[/\\\\a-z:{} ]){0,12}",
        variable_value(),
        any::<String>(),
    ]
}

fn longest_value(configured: &BTreeMap<String, VariableConfig>, jobs_dir: &str) -> usize {
    configured
        .values()
        .flat_map(|config| [&config.all, &config.linux, &config.windows, &config.darwin])
        .flatten()
        .map(String::len)
        .chain([jobs_dir.len(), "blender.exe".len()])
        .max()
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(fuzz_support::cases(256))]

    #[test]
    fn expansion_never_panics_and_stays_bounded(
        configured in variables_config(),
        manager in prop::sample::select(PLATFORMS),
        worker in prop::sample::select(PLATFORMS),
        jobs_dir in variable_value(),
        text in text_to_expand(),
    ) {
        let variables = Variables::new(&configured, Some(&jobs_dir), manager);
        let expanded = variables.expand(worker, &text);
        // One pass for one-way placeholders, one for two-way ones, one prefix swap and a drive
        // root: never more than that, however the values refer to each other.
        let longest = longest_value(&configured, &jobs_dir);
        let bound = (text.len() + 1) * (longest + 1) * (longest + 1) + longest + 2;
        prop_assert!(expanded.len() <= bound, "{} bytes from {text:?}", expanded.len());

        let mut parameters = serde_json::json!({ "a": text, "list": [text, 1], "n": 3 });
        variables.expand_parameters(worker, &mut parameters);
        prop_assert_eq!(parameters["a"].as_str(), Some(expanded.as_str()));
        prop_assert_eq!(parameters["n"].clone(), serde_json::json!(3));

        let mut settings = serde_json::Map::from_iter([("s".to_owned(), serde_json::json!(text))]);
        let mut metadata = BTreeMap::from([("m".to_owned(), text.clone())]);
        variables.replace_two_way(worker, &mut settings, &mut metadata);
    }

    #[test]
    fn a_one_way_value_is_inserted_as_it_is(
        values in prop::collection::vec("([a-z/ ]|\\{v[0-5]\\}){0,6}", 1..6),
        pick in any::<prop::sample::Index>(),
    ) {
        // v0…vN refer to each other (and to themselves) in any order.
        let configured: BTreeMap<String, VariableConfig> = values
            .iter()
            .enumerate()
            .map(|(index, value)| {
                (format!("v{index}"), VariableConfig { all: Some(value.clone()), ..VariableConfig::default() })
            })
            .collect();
        let variables = Variables::new(&configured, None, "linux");
        let index = pick.index(values.len());
        prop_assert_eq!(variables.expand("linux", &format!("{{v{index}}}")), values[index].clone());
    }

    #[test]
    fn expansion_on_the_managers_own_platform_is_idempotent(
        configured in prop::collection::btree_map("[a-d]", (any::<bool>(), "[a-z/]{1,8}"), 0..5),
        text in "(\\{[a-e]\\}|[a-z/ ]){0,10}",
    ) {
        // Values without braces: once expanded, nothing is left to expand.
        let configured: BTreeMap<String, VariableConfig> = configured
            .into_iter()
            .map(|(name, (is_twoway, value))| {
                (name, VariableConfig { is_twoway, linux: Some(value), ..VariableConfig::default() })
            })
            .collect();
        let variables = Variables::new(&configured, Some("/srv/jobs"), "linux");
        let once = variables.expand("linux", &text);
        prop_assert_eq!(variables.expand("linux", &once), once.clone());
        // Unknown `{e}` (never configured) is left as it is.
        prop_assert_eq!(once.matches("{e}").count(), text.matches("{e}").count());
    }

    #[test]
    fn prefix_matches_end_inside_the_text(text in any::<String>(), prefix in any::<String>()) {
        if let Some(length) = matched_prefix_len(&text, &prefix) {
            prop_assert!(text.is_char_boundary(length) && length <= text.len());
        }
    }
}

/// Found by `a_one_way_value_is_inserted_as_it_is`: one-way values were expanded again by the
/// placeholders that came after them in name order, so `v0 = "{v1}"` gave v1's value.
#[test]
fn a_value_naming_another_variable_is_not_expanded_again() {
    let one_way = |value: &str| VariableConfig {
        all: Some(value.to_owned()),
        ..VariableConfig::default()
    };
    let configured = BTreeMap::from([
        ("v0".to_owned(), one_way("{v1}")),
        ("v1".to_owned(), one_way("")),
    ]);
    let variables = Variables::new(&configured, None, "linux");
    assert_eq!(variables.expand("linux", "{v0}"), "{v1}");
}

/// The size blow-up that re-expansion allowed: 16 variables, each doubling the next, made
/// `{a00}` 32,768 (2^15) times `x` (41 would have asked for a terabyte per command).
#[test]
fn chained_variables_do_not_multiply_a_string() {
    let configured: BTreeMap<String, VariableConfig> = (0..16)
        .map(|level| {
            let value = if level == 15 {
                "x".to_owned()
            } else {
                format!("{{a{:02}}}{{a{:02}}}", level + 1, level + 1)
            };
            (
                format!("a{level:02}"),
                VariableConfig {
                    all: Some(value),
                    ..VariableConfig::default()
                },
            )
        })
        .collect();
    let variables = Variables::new(&configured, None, "linux");
    assert_eq!(variables.expand("linux", "{a00}"), "{a01}{a01}");
}

/// A self-referential value is inserted once, not again and again.
#[test]
fn a_self_referential_variable_expands_once() {
    let configured = BTreeMap::from([(
        "loop".to_owned(),
        VariableConfig {
            all: Some("{loop}{loop}".to_owned()),
            ..VariableConfig::default()
        },
    )]);
    let variables = Variables::new(&configured, None, "linux");
    assert_eq!(variables.expand("linux", "{loop}/x"), "{loop}{loop}/x");
}
