//! FFmpeg's `-progress pipe:1` output: `key=value` lines in blocks that end with
//! `progress=continue` (or `progress=end` for the last one).

/// What one finished progress block tells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FfmpegProgress {
    /// Frames written so far.
    pub frame: Option<u64>,
    /// Output time written so far, in seconds.
    pub out_seconds: Option<f64>,
    /// `progress=end`: the last block.
    pub ended: bool,
}

impl FfmpegProgress {
    /// Percent done against a known total duration (seconds) or frame count.
    pub fn percent(&self, total: Total) -> Option<u32> {
        let fraction = match total {
            Total::Seconds(total) if total > 0.0 => self.out_seconds? / total,
            Total::Frames(total) if total > 0 => self.frame? as f64 / total as f64,
            _ => return None,
        };
        if self.ended {
            return Some(100);
        }
        Some((fraction * 100.0).clamp(0.0, 100.0).floor() as u32)
    }
}

/// What progress is measured against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Total {
    Seconds(f64),
    Frames(u64),
}

/// Collects `key=value` lines; yields a [`FfmpegProgress`] at the end of every block.
#[derive(Debug, Default)]
pub struct ProgressParser {
    frame: Option<u64>,
    out_seconds: Option<f64>,
}

impl ProgressParser {
    /// Feeds one output line; returns the block's progress when the line ends a block.
    /// Lines that are not `key=value` (FFmpeg's own messages on stderr) are ignored.
    pub fn push(&mut self, line: &str) -> Option<FfmpegProgress> {
        let (key, value) = line.trim().split_once('=')?;
        let value = value.trim();
        match key {
            "frame" => self.frame = value.parse().ok().or(self.frame),
            // `out_time_ms` is microseconds too (an FFmpeg quirk), so `out_time_us` is enough.
            "out_time_us" => {
                if let Ok(us) = value.parse::<i64>() {
                    self.out_seconds = Some(us.max(0) as f64 / 1_000_000.0);
                }
            }
            "progress" => {
                return Some(FfmpegProgress {
                    frame: self.frame,
                    out_seconds: self.out_seconds,
                    ended: value == "end",
                });
            }
            _ => {}
        }
        None
    }
}

/// The duration ffprobe printed with `-show_entries format=duration -of csv=p=0`.
pub fn parse_probe_seconds(output: &str) -> Option<f64> {
    let seconds: f64 = output.lines().next()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds > 0.0).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real FFmpeg 5.1 `-progress pipe:1` output, from toolchain-notes §4 (plus a first block).
    const BLOCKS: &str = "\
frame=2
fps=0.00
out_time_us=20000
out_time_ms=20000
progress=continue
[libx264 @ 0x5581] frame I:1 Avg QP:22.27 size: 1108
frame=4
fps=0.00
stream_0_0_q=28.0
bitrate= 368.9kbits/s
total_size=1925
out_time_us=41748
out_time_ms=41748
out_time=00:00:00.041748
dup_frames=0
drop_frames=0
speed=6.05x
progress=end
";

    #[test]
    fn blocks_end_at_progress_lines() {
        let mut parser = ProgressParser::default();
        let blocks: Vec<_> = BLOCKS.lines().filter_map(|l| parser.push(l)).collect();
        assert_eq!(
            blocks,
            [
                FfmpegProgress {
                    frame: Some(2),
                    out_seconds: Some(0.02),
                    ended: false
                },
                FfmpegProgress {
                    frame: Some(4),
                    out_seconds: Some(0.041748),
                    ended: true
                },
            ]
        );
        assert_eq!(blocks[0].percent(Total::Frames(4)), Some(50));
        assert_eq!(blocks[0].percent(Total::Seconds(0.08)), Some(25));
        assert_eq!(blocks[1].percent(Total::Seconds(10.0)), Some(100));
        assert_eq!(blocks[0].percent(Total::Frames(0)), None);
    }

    #[test]
    fn percent_never_passes_100_before_the_end() {
        let p = FfmpegProgress {
            frame: Some(9),
            out_seconds: Some(3.0),
            ended: false,
        };
        assert_eq!(p.percent(Total::Seconds(2.0)), Some(100));
        assert_eq!(p.percent(Total::Frames(10)), Some(90));
    }

    #[test]
    fn probe_output() {
        assert_eq!(parse_probe_seconds("2.000000\n"), Some(2.0));
        assert_eq!(parse_probe_seconds("N/A\n"), None);
        assert_eq!(parse_probe_seconds(""), None);
    }
}
