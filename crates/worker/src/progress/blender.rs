//! Blender's render output, one line at a time: which frame is rendering, how far its
//! samples are, which files were saved, and which frames are done (`Time:`) or skipped.
//! Blender ≤ 4.5 prints these at the start of the line; Blender 5 prefixes `<time> render | `.

/// What one output line tells.
#[derive(Debug, Clone, PartialEq)]
pub enum BlenderEvent {
    /// `Fra:N …`: frame N is rendering; `samples` = (done, total) when the line says so.
    Rendering {
        frame: i64,
        samples: Option<(u32, u32)>,
    },
    /// `Saved: '<path>'`: a freshly written image.
    Saved(String),
    /// ` Time: …` after a frame: that frame is done.
    FrameDone,
    /// `Skipping existing frame "<path>"`: counts as done.
    Skipped,
}

/// Parses one line of Blender's output; `None` for lines that say nothing about progress.
pub fn parse_line(line: &str) -> Option<BlenderEvent> {
    let line = strip_render_prefix(line.trim_end());
    if let Some(rest) = line.strip_prefix("Fra:") {
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        let frame = digits.parse().ok()?;
        return Some(BlenderEvent::Rendering {
            frame,
            samples: samples_in(rest),
        });
    }
    if let Some(rest) = line.strip_prefix("Saved: ") {
        let path = rest.trim();
        let path = path
            .strip_prefix('\'')
            .and_then(|p| p.strip_suffix('\''))
            .unwrap_or(path);
        return Some(BlenderEvent::Saved(path.to_string()));
    }
    if line.trim_start().starts_with("Time: ") {
        return Some(BlenderEvent::FrameDone);
    }
    if line.starts_with("Skipping existing frame") {
        return Some(BlenderEvent::Skipped);
    }
    None
}

/// Drops Blender 5's `<time> render | ` prefix, if there is one.
pub(crate) fn strip_render_prefix(line: &str) -> &str {
    match line.split_once(" render | ") {
        Some((time, rest))
            if !time.is_empty() && time.chars().all(|c| c.is_ascii_digit() || ":.".contains(c)) =>
        {
            rest
        }
        _ => line,
    }
}

/// Cycles' `| Sample i/N` or EEVEE's `| Rendering i / N samples`, in the last `|` field.
fn samples_in(fra_line: &str) -> Option<(u32, u32)> {
    let last = fra_line.rsplit('|').next()?.trim();
    let (done, total) = if let Some(rest) = last.strip_prefix("Sample ") {
        rest.split_once('/')?
    } else if let Some(rest) = last.strip_prefix("Rendering ") {
        rest.strip_suffix(" samples")?.split_once(" / ")?
    } else {
        return None;
    };
    let done = done.trim().parse().ok()?;
    let total: u32 = total.trim().parse().ok()?;
    (total > 0).then_some((done, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real Blender 3.4.1 output (Cycles and EEVEE), from toolchain-notes §4.
    const CYCLES: &str = "\
Blender 3.4.1
Read blend: /tmp/feas/scene.blend
Fra:1 Mem:8.48M (Peak 10.20M) | Time:00:00.00 | Mem:0.00M, Peak:0.00M | Scene, ViewLayer | Synchronizing object | Cube
Fra:1 Mem:9.39M (Peak 10.20M) | Time:00:00.04 | Mem:0.76M, Peak:0.76M | Scene, ViewLayer | Sample 0/16
Fra:1 Mem:9.50M (Peak 10.20M) | Time:00:00.05 | Remaining:00:00.04 | Mem:0.86M, Peak:0.86M | Scene, ViewLayer | Sample 1/16
Fra:1 Mem:9.55M (Peak 10.20M) | Time:00:00.05 | Mem:0.86M, Peak:0.86M | Scene, ViewLayer | Sample 16/16
Fra:1 Mem:9.55M (Peak 10.20M) | Time:00:00.05 | Mem:0.86M, Peak:0.86M | Scene, ViewLayer | Finished
Saved: '/tmp/feas/out/cycles/frame_0001.png'
 Time: 00:00.27 (Saving: 00:00.21)

Fra:10 Mem:10.23M (Peak 11.34M) | Time:00:03.90 | Rendering 26 / 64 samples
Skipping existing frame \"/tmp/out/frame_0011.png\"
Blender quit";

    #[test]
    fn cycles_and_eevee_lines() {
        let events: Vec<_> = CYCLES.lines().filter_map(parse_line).collect();
        assert_eq!(
            events,
            [
                BlenderEvent::Rendering {
                    frame: 1,
                    samples: None
                },
                BlenderEvent::Rendering {
                    frame: 1,
                    samples: Some((0, 16))
                },
                BlenderEvent::Rendering {
                    frame: 1,
                    samples: Some((1, 16))
                },
                BlenderEvent::Rendering {
                    frame: 1,
                    samples: Some((16, 16))
                },
                BlenderEvent::Rendering {
                    frame: 1,
                    samples: None
                },
                BlenderEvent::Saved("/tmp/feas/out/cycles/frame_0001.png".into()),
                BlenderEvent::FrameDone,
                BlenderEvent::Rendering {
                    frame: 10,
                    samples: Some((26, 64))
                },
                BlenderEvent::Skipped,
            ]
        );
    }

    #[test]
    fn blender_5_render_prefix() {
        assert_eq!(
            parse_line("12:01.345 render | Saved: '/out/f_0002.png'"),
            Some(BlenderEvent::Saved("/out/f_0002.png".into()))
        );
        assert_eq!(
            parse_line("00:02.100 render | Fra:2 Mem:9M | Scene, ViewLayer | Sample 8/32"),
            Some(BlenderEvent::Rendering {
                frame: 2,
                samples: Some((8, 32))
            })
        );
        assert_eq!(
            parse_line("00:02.500 render |  Time: 00:00.27"),
            Some(BlenderEvent::FrameDone)
        );
        assert_eq!(
            parse_line("00:02.500 render | Skipping existing frame \"/x.png\""),
            Some(BlenderEvent::Skipped)
        );
        // Not a prefix: text that merely contains the words.
        assert_eq!(parse_line("my render | Saved: 'x'"), None);
    }

    #[test]
    fn unrelated_lines_are_ignored() {
        for line in [
            "",
            "Blender quit",
            "Error: Build without OpenImageDenoiser",
            "Fra:x",
        ] {
            assert_eq!(parse_line(line), None, "{line}");
        }
    }
}
