//! Frame ranges as Blender and Flamenco write them (`"1-10,20..25,40"`): parsing, counting and
//! splitting into chunks, for the `frameChunker` and `frameCount` script functions.
//!
//! Frames are kept as sorted, merged runs rather than one entry per frame, so a range such as
//! `1-2000000000` costs nothing until it is chunked (and chunking is capped).

/// The most chunks one call may produce; beyond this a job would be unmanageable anyway.
pub const MAX_FRAME_CHUNKS: u64 = 1_000_000;

/// Frame numbers must fit Blender's own (32-bit signed) frame numbers.
const MAX_FRAME_NUMBER: u64 = i32::MAX as u64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameRangeError {
    #[error("the frame range is empty; expected something like \"1-10\" or \"1..10,20\"")]
    Empty,
    #[error("frame range \"{range}\" has an empty part between commas")]
    EmptyPart { range: String },
    #[error(
        "frame range \"{range}\": \"{part}\" is not a frame number or a range like \"1-10\" or \"1..10\""
    )]
    NotAFrame { range: String, part: String },
    #[error("frame range \"{range}\": negative frame numbers are not supported (\"{part}\")")]
    Negative { range: String, part: String },
    #[error(
        "frame range \"{range}\": frame number \"{part}\" is too large (at most {MAX_FRAME_NUMBER})"
    )]
    TooLarge { range: String, part: String },
    #[error("frame range \"{range}\": \"{part}\" ends before it starts")]
    Reversed { range: String, part: String },
    #[error("the chunk size must be a whole number of at least 1, got {0}")]
    ChunkSize(String),
    #[error(
        "frame range \"{range}\" in chunks of {chunk_size} frames makes {chunks} chunks; at most {MAX_FRAME_CHUNKS} are allowed"
    )]
    TooManyChunks {
        range: String,
        chunk_size: u64,
        chunks: u64,
    },
}

/// An inclusive run of consecutive frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameRun {
    first: u64,
    last: u64,
}

impl FrameRun {
    fn len(self) -> u64 {
        self.last - self.first + 1
    }
}

/// Number of distinct frames in `range`.
pub fn count_frames(range: &str) -> Result<u64, FrameRangeError> {
    Ok(parse_frame_runs(range)?.iter().map(|run| run.len()).sum())
}

/// Splits the frames of `range` into chunks of at most `chunk_size` frames, each written in
/// Flamenco's notation: runs of three or more as `a-b`, pairs as `a,b`, single frames as `a`.
pub fn chunk_frames(range: &str, chunk_size: u64) -> Result<Vec<String>, FrameRangeError> {
    if chunk_size == 0 {
        return Err(FrameRangeError::ChunkSize("0".to_owned()));
    }
    let runs = parse_frame_runs(range)?;
    let frame_count: u64 = runs.iter().map(|run| run.len()).sum();
    let chunk_count = frame_count.div_ceil(chunk_size);
    if chunk_count > MAX_FRAME_CHUNKS {
        return Err(FrameRangeError::TooManyChunks {
            range: range.to_owned(),
            chunk_size,
            chunks: chunk_count,
        });
    }

    let mut chunks = Vec::with_capacity(chunk_count as usize);
    let mut current: Vec<FrameRun> = Vec::new();
    let mut room = chunk_size;
    for run in runs {
        let mut next_frame = run.first;
        while next_frame <= run.last {
            let taken = room.min(run.last - next_frame + 1);
            current.push(FrameRun {
                first: next_frame,
                last: next_frame + taken - 1,
            });
            next_frame += taken;
            room -= taken;
            if room == 0 {
                chunks.push(format_runs(&current));
                current.clear();
                room = chunk_size;
            }
        }
    }
    if !current.is_empty() {
        chunks.push(format_runs(&current));
    }
    Ok(chunks)
}

/// Every frame of `range`, in order; at most [`MAX_FRAME_CHUNKS`] of them.
pub fn frame_list(range: &str) -> Result<Vec<u64>, FrameRangeError> {
    let runs = parse_frame_runs(range)?;
    let count: u64 = runs.iter().map(|run| run.len()).sum();
    if count > MAX_FRAME_CHUNKS {
        return Err(FrameRangeError::TooManyChunks {
            range: range.to_owned(),
            chunk_size: 1,
            chunks: count,
        });
    }
    Ok(runs.iter().flat_map(|run| run.first..=run.last).collect())
}

/// Converts a script's chunk size (a JS number) to a frame count, rejecting fractions and zero.
pub fn chunk_size_from_number(number: f64) -> Result<u64, FrameRangeError> {
    if number.is_finite() && number >= 1.0 && number.fract() == 0.0 && number <= u64::MAX as f64 {
        Ok(number as u64)
    } else {
        Err(FrameRangeError::ChunkSize(number.to_string()))
    }
}

/// Runs of a chunk never touch each other (they come from distinct merged runs), so each is
/// written on its own.
fn format_runs(runs: &[FrameRun]) -> String {
    let parts: Vec<String> = runs
        .iter()
        .map(|run| match run.len() {
            1 => run.first.to_string(),
            2 => format!("{},{}", run.first, run.last),
            _ => format!("{}-{}", run.first, run.last),
        })
        .collect();
    parts.join(",")
}

/// Parses a comma-separated list of frames and ranges into sorted runs, merging overlapping
/// and adjacent ones so every frame appears once.
fn parse_frame_runs(range: &str) -> Result<Vec<FrameRun>, FrameRangeError> {
    if range.trim().is_empty() {
        return Err(FrameRangeError::Empty);
    }
    let mut runs = Vec::new();
    for part in range.split(',') {
        if part.trim().is_empty() {
            return Err(FrameRangeError::EmptyPart {
                range: range.to_owned(),
            });
        }
        runs.push(parse_part(range, part.trim())?);
    }
    runs.sort_by_key(|run| run.first);

    let mut merged: Vec<FrameRun> = Vec::with_capacity(runs.len());
    for run in runs {
        match merged.last_mut() {
            Some(previous) if run.first <= previous.last + 1 => {
                previous.last = previous.last.max(run.last);
            }
            _ => merged.push(run),
        }
    }
    Ok(merged)
}

/// One comma-separated part: `N`, `A-B` or Blender's `A..B`.
fn parse_part(range: &str, part: &str) -> Result<FrameRun, FrameRangeError> {
    let bounds = part
        .split_once("..")
        .or_else(|| match part.strip_prefix('-') {
            // A leading '-' is a sign, not a range separator; let the number parser report it.
            Some(_) => None,
            None => part.split_once('-'),
        });
    let Some((first_text, last_text)) = bounds else {
        let frame = parse_frame_number(range, part, part)?;
        return Ok(FrameRun {
            first: frame,
            last: frame,
        });
    };
    let first = parse_frame_number(range, part, first_text)?;
    let last = parse_frame_number(range, part, last_text)?;
    if last < first {
        return Err(FrameRangeError::Reversed {
            range: range.to_owned(),
            part: part.to_owned(),
        });
    }
    Ok(FrameRun { first, last })
}

fn parse_frame_number(range: &str, part: &str, text: &str) -> Result<u64, FrameRangeError> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(FrameRangeError::Negative {
            range: range.to_owned(),
            part: part.to_owned(),
        });
    }
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(FrameRangeError::NotAFrame {
            range: range.to_owned(),
            part: part.to_owned(),
        });
    }
    match text.parse::<u64>() {
        Ok(frame) if frame <= MAX_FRAME_NUMBER => Ok(frame),
        _ => Err(FrameRangeError::TooLarge {
            range: range.to_owned(),
            part: text.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_written_in_flamenco_notation() {
        let cases: &[(&str, u64, &[&str])] = &[
            ("1-10", 4, &["1-4", "5-8", "9,10"]),
            (
                "1..10,20-25,40",
                3,
                &["1-3", "4-6", "7-9", "10,20,21", "22-24", "25,40"],
            ),
            ("1-3", 10, &["1-3"]),
            ("1,2", 5, &["1,2"]),
            ("5", 1, &["5"]),
            ("3,1,2,2", 10, &["1-3"]),
            (" 1 - 3 , 7 .. 9 ", 100, &["1-3,7-9"]),
            ("1-4", 1, &["1", "2", "3", "4"]),
            ("1,3,5", 2, &["1,3", "5"]),
            ("1-4,6", 10, &["1-4,6"]),
            ("1,2,4,5", 10, &["1,2,4,5"]),
            ("0-2", 2, &["0,1", "2"]),
            ("1-5,3-8", 100, &["1-8"]),
            ("1-3,4-6", 100, &["1-6"]),
            ("10..12,1", 2, &["1,10", "11,12"]),
            ("1-100", 100, &["1-100"]),
        ];
        for (range, chunk_size, expected) in cases {
            let chunks = chunk_frames(range, *chunk_size)
                .unwrap_or_else(|error| panic!("{range:?} / {chunk_size}: {error}"));
            assert_eq!(chunks, *expected, "{range:?} in chunks of {chunk_size}");
        }
    }

    #[test]
    fn bad_ranges_are_rejected_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("abc", "not a frame number"),
            ("1 10", "not a frame number"),
            ("1.5", "not a frame number"),
            ("-5", "negative"),
            ("1--5", "negative"),
            ("-3..5", "negative"),
            ("1-", "not a frame number"),
            ("1,,2", "empty part"),
            ("1-3,", "empty part"),
            ("5-1", "ends before it starts"),
            ("+5", "not a frame number"),
            ("99999999999", "too large"),
        ];
        for (range, reason) in cases {
            let error = chunk_frames(range, 1).expect_err(range).to_string();
            assert!(
                error.contains(reason),
                "{range:?}: {error:?} should mention {reason:?}"
            );
        }
    }

    #[test]
    fn chunk_size_must_be_a_positive_whole_number() {
        assert!(matches!(
            chunk_frames("1-3", 0),
            Err(FrameRangeError::ChunkSize(_))
        ));
        for bad in [0.0, -1.0, 2.5, f64::NAN, f64::INFINITY] {
            assert!(chunk_size_from_number(bad).is_err(), "{bad}");
        }
        assert_eq!(chunk_size_from_number(3.0), Ok(3));
    }

    #[test]
    fn too_many_chunks_are_refused_without_allocating_them() {
        let error = chunk_frames("1-2000000000", 1).expect_err("too many chunks");
        assert!(matches!(
            error,
            FrameRangeError::TooManyChunks {
                chunks: 2_000_000_000,
                ..
            }
        ));
        assert_eq!(count_frames("1-2000000000"), Ok(2_000_000_000));
    }

    #[test]
    fn frames_are_counted_once() {
        let cases: &[(&str, u64)] = &[
            ("1-10", 10),
            ("1-10,5-15", 15),
            ("1..3,3", 3),
            ("7", 1),
            ("1,3,5", 3),
        ];
        for (range, expected) in cases {
            assert_eq!(count_frames(range), Ok(*expected), "{range:?}");
        }
        assert!(count_frames("x").is_err());
    }
}
