//! What a job's preview video holds, decided from its settings and stored frames: the frame
//! list, the frame rate, the picture size and the join list of segments. Pure functions.
use std::collections::HashSet;

use serde_json::Value;

use crate::compiler::frames::{count_frames, frame_list};

/// Longest video made: beyond this many frames a job gets none (the join list and the
/// segments would cost more than a preview is worth).
pub const MAX_VIDEO_FRAMES: u64 = 20_000;
/// Widest video made; frame thumbnails are at most this wide already.
const MAX_WIDTH: u32 = 1280;
/// Frame rate when the job names none.
const DEFAULT_FPS: f64 = 24.0;

/// The frames of the job's `frames` setting, in order; `None` when it has none, or too
/// many for a video.
pub fn video_frames(settings: &Value) -> Option<Vec<i64>> {
    let range = settings.get("frames")?.as_str()?;
    if count_frames(range).ok()? > MAX_VIDEO_FRAMES {
        return None;
    }
    let frames = frame_list(range).ok()?;
    // Frame numbers are at most i32::MAX (frames.rs), so they fit.
    Some(frames.into_iter().map(|f| f as i64).collect())
}

/// A frame rate as a fraction, as FFmpeg's time bases need it (23.976 is 24000/1001).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fps {
    pub num: u32,
    pub den: u32,
}

impl Fps {
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }
}

/// The job's `fps` setting (a positive number up to 1000), else 24.
pub fn video_fps(settings: &Value) -> Fps {
    let fps = settings
        .get("fps")
        .and_then(Value::as_f64)
        .filter(|fps| fps.is_finite() && *fps >= 0.01 && *fps <= 1000.0)
        .unwrap_or(DEFAULT_FPS);
    // NTSC rates (23.976, 29.97, 59.94) are whole numbers × 1000/1001.
    let ntsc = fps * 1001.0 / 1000.0;
    if fps.fract() != 0.0 && (ntsc - ntsc.round()).abs() < 0.005 {
        return Fps {
            num: ntsc.round() as u32 * 1000,
            den: 1001,
        };
    }
    let num = (fps * 1000.0).round() as u32;
    let divisor = gcd(num, 1000);
    Fps {
        num: num / divisor,
        den: 1000 / divisor,
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The video's picture size for a first frame of `width`×`height`: at most [`MAX_WIDTH`]
/// wide, aspect kept, both even (H.264 in 4:2:0 needs even sizes).
pub fn video_size(width: u32, height: u32) -> (u32, u32) {
    let (width, height) = if width > MAX_WIDTH {
        let scaled = u64::from(height) * u64::from(MAX_WIDTH) / u64::from(width.max(1));
        (MAX_WIDTH, u32::try_from(scaled).unwrap_or(u32::MAX))
    } else {
        (width, height)
    };
    ((width & !1).max(2), (height & !1).max(2))
}

/// A segment's file name in the work folder.
pub fn segment_name(frame: i64) -> String {
    format!("segments/{frame:06}.mp4")
}

/// The black segment's file name in the work folder.
pub const BLACK_SEGMENT: &str = "black.mp4";

/// FFmpeg's concat list: for each frame of the video, its segment when it is rendered,
/// else the black one. Names are relative to the list's folder and plain (concat's safe
/// mode accepts them).
pub fn concat_list(frames: &[i64], rendered: &HashSet<i64>) -> String {
    let mut list = String::from("ffconcat version 1.0\n");
    for frame in frames {
        let name = if rendered.contains(frame) {
            segment_name(*frame)
        } else {
            BLACK_SEGMENT.to_string()
        };
        list.push_str(&format!("file '{name}'\n"));
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_come_from_the_frames_setting() {
        assert_eq!(
            video_frames(&json!({"frames": "1-3,7"})),
            Some(vec![1, 2, 3, 7])
        );
        assert_eq!(
            video_frames(&json!({"frames": "10..12"})),
            Some(vec![10, 11, 12])
        );
        assert_eq!(video_frames(&json!({})), None);
        assert_eq!(video_frames(&json!({"frames": 12})), None);
        assert_eq!(video_frames(&json!({"frames": "x"})), None);
        assert_eq!(video_frames(&json!({"frames": "1-100000"})), None);
    }

    #[test]
    fn frame_rates_become_fractions() {
        let fps = |v: Value| video_fps(&json!({ "fps": v }));
        assert_eq!(fps(json!(24.0)), Fps { num: 24, den: 1 });
        assert_eq!(fps(json!(25)), Fps { num: 25, den: 1 });
        assert_eq!(
            fps(json!(23.976)),
            Fps {
                num: 24000,
                den: 1001
            }
        );
        assert_eq!(
            fps(json!(29.97)),
            Fps {
                num: 30000,
                den: 1001
            }
        );
        assert_eq!(fps(json!(12.5)), Fps { num: 25, den: 2 });
        assert_eq!(fps(json!(-3)), Fps { num: 24, den: 1 });
        assert_eq!(fps(json!("fast")), Fps { num: 24, den: 1 });
        assert_eq!(video_fps(&json!({})).as_f64(), 24.0);
    }

    #[test]
    fn sizes_are_even_and_at_most_1280_wide() {
        assert_eq!(video_size(64, 48), (64, 48));
        assert_eq!(video_size(65, 49), (64, 48));
        assert_eq!(video_size(1920, 1080), (1280, 720));
        assert_eq!(video_size(2560, 1), (1280, 2));
        assert_eq!(video_size(1, 1), (2, 2));
    }

    #[test]
    fn unrendered_frames_use_the_black_segment() {
        let rendered = HashSet::from([2, 3]);
        assert_eq!(
            concat_list(&[1, 2, 3, 4], &rendered),
            "ffconcat version 1.0\nfile 'black.mp4'\nfile 'segments/000002.mp4'\n\
             file 'segments/000003.mp4'\nfile 'black.mp4'\n"
        );
    }
}
