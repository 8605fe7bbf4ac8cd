//! What every property-fuzz file (`tests/fuzz_*.rs`) shares: a bounded number of cases by
//! default, more through `PROPTEST_CASES`, and no failure files written into the source tree
//! (each defect found keeps a plain `#[test]` with its minimal input instead).
#![allow(dead_code)]
use proptest::test_runner::Config;

/// `default_cases` random cases, or `PROPTEST_CASES` when set (e.g. `PROPTEST_CASES=5000`
/// for a long run).
pub fn cases(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
