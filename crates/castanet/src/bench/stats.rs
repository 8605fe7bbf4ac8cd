//! Whether two sets of latencies differ measurably: the difference of their p50 and p99 with
//! a bootstrap 95% confidence interval. A difference whose interval includes zero is not
//! measurable with these samples on this machine. Samples come in rounds (one round of
//! each set after the other) and whole rounds are resampled, in pairs: samples of one round
//! are not independent (the machine drifts), and the interval must show that.
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Resamples per confidence interval; more only narrows the interval's own noise.
const RESAMPLES: usize = 1_000;

/// Where the `q` quantile (0..=1) of `len` sorted samples is (nearest rank).
pub fn quantile_index(len: usize, q: f64) -> usize {
    ((len as f64 - 1.0) * q).round() as usize
}

/// The `q` quantile of `samples`, reordering them.
fn quantile(samples: &mut [f64], q: f64) -> f64 {
    let at = quantile_index(samples.len(), q);
    *samples.select_nth_unstable_by(at, f64::total_cmp).1
}

fn millis(samples: &[Duration]) -> Vec<f64> {
    samples.iter().map(|d| d.as_secs_f64() * 1e3).collect()
}

fn round(ms: f64) -> f64 {
    (ms * 1e3).round() / 1e3
}

/// How much slower `after` is than `before` at the median and at p99 (negative: faster),
/// each with its bootstrap 95% interval, and whether a slowdown is measurable (the whole
/// interval above zero). Round `i` of `before` was measured right before round `i` of
/// `after`.
pub fn difference(before: &[Vec<Duration>], after: &[Vec<Duration>]) -> Value {
    let rounds = before.len().min(after.len());
    if rounds == 0 || before.iter().chain(after).any(Vec::is_empty) {
        return Value::Null;
    }
    let before: Vec<Vec<f64>> = before.iter().map(|round| millis(round)).collect();
    let after: Vec<Vec<f64>> = after.iter().map(|round| millis(round)).collect();
    let pooled = |sets: &[Vec<f64>], picks: &[usize], into: &mut Vec<f64>| {
        into.clear();
        for &pick in picks {
            into.extend_from_slice(&sets[pick]);
        }
    };
    let all: Vec<usize> = (0..rounds).collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    pooled(&before, &all, &mut a);
    pooled(&after, &all, &mut b);
    let observed_p50 = quantile(&mut b, 0.5) - quantile(&mut a, 0.5);
    let observed_p99 = quantile(&mut b, 0.99) - quantile(&mut a, 0.99);
    // Fixed seed: the same samples always give the same interval.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut picks = vec![0; rounds];
    let mut p50s = Vec::with_capacity(RESAMPLES);
    let mut p99s = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        picks.fill_with(|| rng.random_range(0..rounds));
        pooled(&before, &picks, &mut a);
        pooled(&after, &picks, &mut b);
        p50s.push(quantile(&mut b, 0.5) - quantile(&mut a, 0.5));
        p99s.push(quantile(&mut b, 0.99) - quantile(&mut a, 0.99));
    }
    let interval = |differences: &mut Vec<f64>| {
        [
            round(quantile(differences, 0.025)),
            round(quantile(differences, 0.975)),
        ]
    };
    let (p50_interval, p99_interval) = (interval(&mut p50s), interval(&mut p99s));
    json!({
        "rounds": rounds,
        "p50_ms": round(observed_p50),
        "p50_ci95_ms": p50_interval,
        "p99_ms": round(observed_p99),
        "p99_ci95_ms": p99_interval,
        "measurable_slowdown": p50_interval[0] > 0.0 || p99_interval[0] > 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten rounds of 200 samples spread over a millisecond from `base_us`.
    fn spread(base_us: u64) -> Vec<Vec<Duration>> {
        (0..10)
            .map(|round| {
                (0..200)
                    .map(|i| Duration::from_micros(base_us + (round * 31 + i * 7919) % 1000))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_same_distribution_shows_no_measurable_slowdown() {
        let result = difference(&spread(1_000), &spread(1_000));
        assert_eq!(result["measurable_slowdown"], false);
        assert_eq!(result["p50_ms"], 0.0);
        let [low, high] = [&result["p99_ci95_ms"][0], &result["p99_ci95_ms"][1]];
        assert!(low.as_f64().unwrap() <= 0.0 && high.as_f64().unwrap() >= 0.0);
    }

    #[test]
    fn a_shift_of_a_millisecond_is_measurable() {
        let result = difference(&spread(1_000), &spread(2_000));
        assert_eq!(result["measurable_slowdown"], true);
        assert_eq!(result["p50_ms"], 1.0);
        assert!(result["p99_ci95_ms"][0].as_f64().unwrap() > 0.9);
    }
}
