//! Progress: pure parsers for Blender's and FFmpeg's output, and the sink through which a
//! command publishes its latest progress and activity (the runner forwards it, throttled).

pub mod blender;
pub mod ffmpeg;

use tokio::sync::watch;

/// The latest progress of the running command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// 0–100 for the task, when known.
    pub percent: Option<u32>,
    /// What is happening, e.g. "Rendering frame 3 (sample 8/16)".
    pub activity: Option<String>,
}

/// Where a command publishes progress; only the newest value matters. A sink made with
/// [`ProgressSink::share`] maps its command's 0–100 % onto that command's part of the task.
#[derive(Debug, Clone)]
pub struct ProgressSink {
    tx: watch::Sender<Progress>,
    /// Task percent at this command's 0 %.
    start: f64,
    /// Task percent this command's 100 % is worth.
    size: f64,
}

impl ProgressSink {
    /// A sink and the receiver the runner watches.
    pub fn channel() -> (Self, watch::Receiver<Progress>) {
        let (tx, rx) = watch::channel(Progress::default());
        let sink = Self {
            tx,
            start: 0.0,
            size: 100.0,
        };
        (sink, rx)
    }

    /// The sink for command `index` (0-based) of `count` equal parts.
    pub fn share(&self, index: usize, count: usize) -> Self {
        let count = count.max(1) as f64;
        Self {
            tx: self.tx.clone(),
            start: self.start + self.size * index as f64 / count,
            size: self.size / count,
        }
    }

    /// Publishes the command's new percent and activity (unchanged values wake nobody).
    pub fn set(&self, percent: Option<u32>, activity: impl Into<String>) {
        let next = Progress {
            percent: percent
                .map(|p| (self.start + self.size * f64::from(p.min(100)) / 100.0).floor() as u32),
            activity: Some(activity.into()),
        };
        self.tx.send_if_modified(|current| {
            if *current == next {
                false
            } else {
                *current = next;
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_scale_into_the_task() {
        let (sink, rx) = ProgressSink::channel();
        let second_of_four = sink.share(1, 4);
        second_of_four.set(Some(50), "half");
        assert_eq!(rx.borrow().percent, Some(37));
        second_of_four.set(Some(100), "done");
        assert_eq!(rx.borrow().percent, Some(50));
        sink.set(Some(250), "clamped");
        assert_eq!(rx.borrow().percent, Some(100));
    }
}
