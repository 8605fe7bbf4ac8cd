//! Adaptive chunking: a job asks for a task duration instead of a chunk size; it starts with
//! small chunks, and as its frames render the still-queued frames are regrouped so each task
//! takes about that long. Pure rules: when to regroup and how; the re-chunker
//! (`monitor/rechunker.rs`) reads the inputs, asks the job type for the new tasks and the store
//! swaps them in one transaction.
//!
//! The estimate of a frame's time comes from the finished chunk nearest to it in frame number
//! (frame times drift along a shot: a close-up here, a crowd there), as seconds per frame of
//! that chunk. Chunks shrink towards the end of the queue (at most the work left over the slots), so the last tasks end together instead of one long chunk finishing alone.

/// A finished chunk: its frames and how long its run took.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameSample {
    pub first: i64,
    pub last: i64,
    pub frames: u64,
    pub seconds: f64,
}

impl FrameSample {
    fn centre(&self) -> f64 {
        (self.first + self.last) as f64 / 2.0
    }

    /// Seconds per frame once the task's start-up is taken off.
    fn per_frame(&self, start_up: f64) -> f64 {
        (self.seconds - start_up).max(0.0) / self.frames.max(1) as f64
    }
}

/// Whether the chunks should be planned again: at the first finished chunk, then each time the
/// number of finished chunks doubled (so a job of many chunks is regrouped a few times, not
/// after every task).
pub fn should_rechunk(samples_now: usize, samples_at_last_plan: usize) -> bool {
    samples_now >= 1 && samples_now >= samples_at_last_plan.saturating_mul(2).max(1)
}

/// The seconds every task spends before its first frame (Blender starting, loading the scene),
/// estimated from finished chunks of different sizes: the start-up that makes neighbouring
/// chunks' per-frame times agree best (frame times drift slowly along a shot, the start-up
/// does not depend on the chunk). 0 while all finished chunks have the same size: nothing
/// tells the two apart yet.
pub fn start_up_seconds(samples: &[FrameSample]) -> f64 {
    let sizes: std::collections::BTreeSet<u64> = samples.iter().map(|s| s.frames).collect();
    if sizes.len() < 2 {
        return 0.0;
    }
    let mut sorted: Vec<&FrameSample> = samples.iter().collect();
    sorted.sort_by(|a, b| a.centre().total_cmp(&b.centre()));
    let shortest = samples
        .iter()
        .map(|s| s.seconds)
        .fold(f64::MAX, f64::min)
        .max(0.0);
    let disagreement = |start_up: f64| -> f64 {
        sorted
            .windows(2)
            .filter(|pair| pair[0].frames != pair[1].frames)
            .map(|pair| {
                let (a, b) = (pair[0].per_frame(start_up), pair[1].per_frame(start_up));
                // Relative, so heavy and light parts of the shot weigh alike.
                ((a - b) / (a + b).max(1e-9)).powi(2)
            })
            .sum()
    };
    const STEPS: u32 = 100;
    (0..=STEPS)
        .map(|step| shortest * f64::from(step) / f64::from(STEPS))
        .min_by(|a, b| disagreement(*a).total_cmp(&disagreement(*b)))
        .unwrap_or(0.0)
}

/// Estimated seconds of frame `frame` without the start-up: the seconds per frame of the
/// finished chunk whose centre is nearest (the mean of the two when equally near). None
/// without samples.
pub fn frame_seconds(samples: &[FrameSample], frame: i64, start_up: f64) -> Option<f64> {
    let mut best: Option<(f64, f64, u32)> = None; // (distance, sum of per-frame, count)
    for sample in samples {
        let distance = (sample.centre() - frame as f64).abs();
        best = match best {
            Some((d, sum, n)) if (distance - d).abs() < 1e-9 => {
                Some((d, sum + sample.per_frame(start_up), n + 1))
            }
            Some((d, ..)) if d < distance => best,
            _ => Some((distance, sample.per_frame(start_up), 1)),
        };
    }
    best.map(|(_, sum, n)| sum / f64::from(n))
}

/// [`frame_seconds`] for many frames: the samples sorted by centre once, each frame's nearest
/// found by binary search (a long shot has tens of thousands of frames and finished chunks).
struct NearestSample {
    /// (centre, seconds per frame without the start-up), by centre.
    by_centre: Vec<(f64, f64)>,
}

impl NearestSample {
    fn new(samples: &[FrameSample], start_up: f64) -> Self {
        let mut by_centre: Vec<(f64, f64)> = samples
            .iter()
            .map(|s| (s.centre(), s.per_frame(start_up)))
            .collect();
        by_centre.sort_by(|a, b| a.0.total_cmp(&b.0));
        NearestSample { by_centre }
    }

    /// Seconds per frame of the nearest samples (the mean of those equally near); 0 without any.
    fn per_frame(&self, frame: i64) -> f64 {
        let at = frame as f64;
        let list = &self.by_centre;
        let split = list.partition_point(|(centre, _)| *centre < at);
        let mut best = f64::MAX;
        for &(centre, _) in list[split.saturating_sub(1)..(split + 1).min(list.len())].iter() {
            best = best.min((centre - at).abs());
        }
        if best == f64::MAX {
            return 0.0;
        }
        // Every sample at the best distance, on either side (several chunks may share a centre).
        let near = |&&(centre, _): &&(f64, f64)| ((centre - at).abs() - best).abs() < 1e-9;
        let low = list.partition_point(|(centre, _)| *centre < at - best - 1e-9);
        let high = list.partition_point(|(centre, _)| *centre <= at + best + 1e-9);
        let chosen: Vec<&(f64, f64)> = list[low..high].iter().filter(near).collect();
        chosen.iter().map(|(_, rate)| rate).sum::<f64>() / chosen.len().max(1) as f64
    }
}

/// The queued frames regrouped into chunks of about `target_seconds` each (in their order; a
/// chunk holds at least one frame), smaller towards the end so `slots` workers finish
/// together. None when there is nothing to estimate from, when the grouping would not change,
/// or when it would need more tasks than are queued (the re-chunker reuses the queued tasks'
/// places in the scheduling order, of which there are only that many).
pub fn plan_chunks(
    target_seconds: f64,
    slots: u64,
    samples: &[FrameSample],
    queued: &[Vec<i64>],
) -> Option<Vec<Vec<i64>>> {
    if samples.is_empty() || queued.is_empty() || target_seconds.is_nan() || target_seconds <= 0.0 {
        return None;
    }
    let frames: Vec<i64> = queued.iter().flatten().copied().collect();
    let start_up = start_up_seconds(samples);
    let nearest = NearestSample::new(samples, start_up);
    let cost: Vec<f64> = frames.iter().map(|&f| nearest.per_frame(f)).collect();
    // Frame work left; a chunk holds at most its share per slot (the tail), and with its
    // start-up at most the target.
    let mut left: f64 = cost.iter().sum();
    let share = slots.max(1) as f64;
    let mut chunks: Vec<Vec<i64>> = Vec::new();
    let mut current: Vec<i64> = Vec::new();
    let mut work = 0.0;
    for (&frame, &seconds) in frames.iter().zip(&cost) {
        let too_long = start_up + work + seconds > target_seconds;
        if !current.is_empty() && (too_long || work + seconds > left / share) {
            left -= work;
            chunks.push(std::mem::take(&mut current));
            work = 0.0;
        }
        current.push(frame);
        work += seconds;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    (chunks.as_slice() != queued && chunks.len() <= queued.len()).then_some(chunks)
}

/// A chunk's frames in frame-range notation as `frameChunker` writes it ("1-4,7,9,10": runs of
/// three or more as a range), as job-type scripts read them.
pub fn frames_notation(frames: &[i64]) -> String {
    let mut sorted = frames.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(match end - start {
            0 => start.to_string(),
            1 => format!("{start},{end}"),
            _ => format!("{start}-{end}"),
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
#[path = "chunking_sim.rs"]
mod sim;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(first: i64, last: i64, seconds: f64) -> FrameSample {
        FrameSample {
            first,
            last,
            frames: (last - first + 1) as u64,
            seconds,
        }
    }

    #[test]
    fn plans_are_made_at_the_first_sample_then_when_the_samples_doubled() {
        assert!(!should_rechunk(0, 0));
        assert!(should_rechunk(1, 0));
        assert!(!should_rechunk(1, 1));
        assert!(should_rechunk(2, 1));
        assert!(!should_rechunk(3, 2));
        assert!(should_rechunk(4, 2));
    }

    #[test]
    fn a_frame_costs_what_the_nearest_finished_chunk_cost_per_frame() {
        let samples = [sample(1, 2, 20.0), sample(10, 11, 60.0)];
        assert_eq!(frame_seconds(&samples, 1, 0.0), Some(10.0));
        assert_eq!(frame_seconds(&samples, 11, 0.0), Some(30.0));
        assert_eq!(frame_seconds(&samples, 6, 0.0), Some(20.0)); // equally near: the mean
        assert_eq!(frame_seconds(&samples, 1, 10.0), Some(5.0));
        assert_eq!(frame_seconds(&[], 6, 0.0), None);
    }

    #[test]
    fn the_nearest_sample_lookup_agrees_with_the_plain_one() {
        let samples = [
            sample(1, 2, 20.0),
            sample(10, 11, 60.0),
            sample(3, 4, 8.0),
            sample(3, 4, 12.0),
            sample(30, 30, 7.0),
        ];
        let nearest = NearestSample::new(&samples, 1.0);
        for frame in -5..40 {
            let plain = frame_seconds(&samples, frame, 1.0).unwrap_or(0.0);
            assert!(
                (nearest.per_frame(frame) - plain).abs() < 1e-9,
                "frame {frame}"
            );
        }
        assert_eq!(NearestSample::new(&[], 0.0).per_frame(3), 0.0);
    }

    #[test]
    fn the_start_up_is_told_apart_once_chunks_of_different_sizes_finished() {
        // 8 s start-up, 2 s a frame.
        let same_size = [sample(1, 1, 10.0), sample(2, 2, 10.0)];
        assert_eq!(start_up_seconds(&same_size), 0.0);
        let mixed = [sample(1, 1, 10.0), sample(2, 6, 18.0), sample(7, 7, 10.0)];
        assert!(
            (start_up_seconds(&mixed) - 8.0).abs() < 0.2,
            "{}",
            start_up_seconds(&mixed)
        );
    }

    #[test]
    fn queued_frames_are_grouped_towards_the_target_and_shrink_at_the_end() {
        // 10 s a frame, target 60 s, plenty of work per slot: chunks of 6 frames, then smaller.
        let queued: Vec<Vec<i64>> = (1..=100).map(|f| vec![f]).collect();
        let plan = plan_chunks(60.0, 2, &[sample(1, 1, 10.0)], &queued).expect("a new plan");
        assert_eq!(plan[0], (1..=6).collect::<Vec<_>>());
        let sizes: Vec<usize> = plan.iter().map(Vec::len).collect();
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
        assert_eq!(*sizes.last().expect("chunks"), 1);
        assert_eq!(plan.iter().flatten().count(), 100, "every frame kept");
        // Planning again from the same facts changes nothing.
        assert_eq!(plan_chunks(60.0, 2, &[sample(1, 1, 10.0)], &plan), None);
        // No samples, no plan; more chunks than queued tasks, no plan.
        assert_eq!(plan_chunks(60.0, 2, &[], &queued), None);
        let one_task = vec![(1..=100).collect::<Vec<_>>()];
        assert_eq!(plan_chunks(60.0, 2, &[sample(1, 1, 10.0)], &one_task), None);
    }

    #[test]
    fn frames_are_written_as_ranges() {
        assert_eq!(frames_notation(&[3, 1, 2, 7, 9, 10]), "1-3,7,9,10");
        assert_eq!(frames_notation(&[5]), "5");
    }
}
