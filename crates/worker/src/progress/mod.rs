//! Progress: pure parsers for Blender's and FFmpeg's output, and the sink through which a
//! command publishes its latest progress and activity (the runner forwards it, throttled).

pub mod blender;
pub mod ffmpeg;
#[cfg(test)]
pub(crate) mod fuzz_tests;

use tokio::sync::watch;

/// The latest progress of the running command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// 0–100 for the task, when known.
    pub percent: Option<u32>,
    /// What is happening, e.g. "Rendering frame 3 (sample 8/16)".
    pub activity: Option<String>,
    /// Steps of the task done, when the running command counts its own (Blender: frames).
    pub steps_completed: Option<u32>,
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
    /// Task steps done before this command.
    step_base: u32,
    /// Steps this command is worth (its reported steps are capped at this).
    step_count: u32,
}

impl ProgressSink {
    /// A sink and the receiver the runner watches.
    pub fn channel() -> (Self, watch::Receiver<Progress>) {
        let (tx, rx) = watch::channel(Progress::default());
        let sink = Self {
            tx,
            start: 0.0,
            size: 100.0,
            step_base: 0,
            step_count: u32::MAX,
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
            step_base: self.step_base,
            step_count: self.step_count,
        }
    }

    /// This sink with the command's steps placed after `base` task steps, `count` of them.
    pub fn counting_steps(mut self, base: u32, count: u32) -> Self {
        self.step_base = base;
        self.step_count = count;
        self
    }

    /// Publishes percent and activity together with `done` of the command's own steps.
    pub fn set_with_steps(&self, percent: Option<u32>, activity: impl Into<String>, done: u32) {
        let steps = self.step_base.saturating_add(done.min(self.step_count));
        self.publish(percent, activity.into(), Some(steps));
    }

    /// Publishes the command's new percent and activity (unchanged values wake nobody).
    pub fn set(&self, percent: Option<u32>, activity: impl Into<String>) {
        self.publish(percent, activity.into(), None);
    }

    /// `steps`: None keeps the steps published before.
    fn publish(&self, percent: Option<u32>, activity: String, steps: Option<u32>) {
        let percent = percent
            .map(|p| (self.start + self.size * f64::from(p.min(100)) / 100.0).floor() as u32);
        self.tx.send_if_modified(|current| {
            let next = Progress {
                percent,
                activity: Some(activity),
                steps_completed: steps.or(current.steps_completed),
            };
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

    #[test]
    fn steps_follow_the_command_and_stay_within_it() {
        let (sink, rx) = ProgressSink::channel();
        let render = sink.share(1, 2).counting_steps(1, 4);
        render.set_with_steps(Some(25), "Finished frame 1", 1);
        assert_eq!(rx.borrow().steps_completed, Some(2));
        // An activity without steps keeps the count.
        render.set(Some(30), "Rendering frame 2");
        assert_eq!(rx.borrow().steps_completed, Some(2));
        render.set_with_steps(Some(100), "Finished frame 9", 9);
        assert_eq!(rx.borrow().steps_completed, Some(5));
    }
}
