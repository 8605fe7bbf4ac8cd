//! The `[preview_video]` table of the manager's config.
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewVideoConfig {
    /// Whether render jobs get a live preview video.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The FFmpeg program on the manager's host (a name on PATH or a path).
    #[serde(default = "default_ffmpeg")]
    pub ffmpeg: String,
    /// A job's video is rebuilt at most this often while its frames land.
    #[serde(default = "default_min_interval_seconds")]
    pub min_interval_seconds: f64,
}

fn default_enabled() -> bool {
    true
}
fn default_ffmpeg() -> String {
    "ffmpeg".into()
}
fn default_min_interval_seconds() -> f64 {
    10.0
}

impl Default for PreviewVideoConfig {
    fn default() -> Self {
        Self {
            enabled: default_enabled(),
            ffmpeg: default_ffmpeg(),
            min_interval_seconds: default_min_interval_seconds(),
        }
    }
}

impl PreviewVideoConfig {
    /// The throttle; a negative or non-number setting counts as none.
    pub fn min_interval(&self) -> Duration {
        Duration::try_from_secs_f64(self.min_interval_seconds).unwrap_or(Duration::ZERO)
    }

    /// This table as commented TOML, for the config file written on first start.
    pub fn commented_toml(&self) -> String {
        format!(
            "\n# Live preview video of render jobs (H.264, made with FFmpeg on this host): every\n\
             # frame a worker uploads is encoded once; the video, with frames not yet rendered\n\
             # black, is rebuilt at most every min_interval_seconds while frames land.\n\
             [preview_video]\n\
             enabled = {enabled}\n\
             ffmpeg = {ffmpeg}\n\
             min_interval_seconds = {interval:?}\n",
            enabled = self.enabled,
            ffmpeg = toml::Value::String(self.ffmpeg.clone()),
            interval = self.min_interval_seconds,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commented_table_reads_back() {
        let config = PreviewVideoConfig {
            enabled: false,
            ffmpeg: "/opt/ffmpeg \"7\"/bin/ffmpeg".into(),
            min_interval_seconds: 2.5,
        };
        #[derive(Deserialize)]
        struct File {
            preview_video: PreviewVideoConfig,
        }
        let file: File = toml::from_str(&config.commented_toml()).expect("parses");
        assert!(!file.preview_video.enabled);
        assert_eq!(file.preview_video.ffmpeg, config.ffmpeg);
        assert_eq!(
            file.preview_video.min_interval(),
            Duration::from_millis(2500)
        );
        let odd = PreviewVideoConfig {
            min_interval_seconds: -1.0,
            ..PreviewVideoConfig::default()
        };
        assert_eq!(odd.min_interval(), Duration::ZERO);
    }
}
