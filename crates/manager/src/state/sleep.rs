//! Sleep schedules: whether a worker should be `asleep` or `awake` at a given local time.
//! Unlike upstream (which swaps a reversed start/end and so cannot sleep overnight), a
//! range whose end is before its start wraps past midnight: 22:00–06:00 sleeps at night,
//! and the night belongs to the day it started on.
use chrono::{Datelike, NaiveDateTime, NaiveTime, Weekday};

use super::WorkerStatus;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SleepSchedule {
    pub is_active: bool,
    /// Days the sleep range starts on; empty means every day.
    pub days: Vec<Weekday>,
    /// Start of sleep (inclusive); `None` means from midnight.
    pub start: Option<NaiveTime>,
    /// End of sleep (exclusive); `None` means until midnight.
    pub end: Option<NaiveTime>,
}

/// Parses Flamenco's day list ("mo tu we", any case, space or comma separated).
pub fn parse_days(text: &str) -> Result<Vec<Weekday>, String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|token| match token.to_ascii_lowercase().as_str() {
            "mo" => Ok(Weekday::Mon),
            "tu" => Ok(Weekday::Tue),
            "we" => Ok(Weekday::Wed),
            "th" => Ok(Weekday::Thu),
            "fr" => Ok(Weekday::Fri),
            "sa" => Ok(Weekday::Sat),
            "su" => Ok(Weekday::Sun),
            other => Err(format!(
                "unknown day \"{other}\"; use two-letter days: mo tu we th fr sa su"
            )),
        })
        .collect()
}

impl SleepSchedule {
    fn starts_on(&self, day: Weekday) -> bool {
        self.days.is_empty() || self.days.contains(&day)
    }

    /// The status the schedule asks for at local time `now`.
    pub fn status_at(&self, now: NaiveDateTime) -> WorkerStatus {
        if !self.is_active {
            return WorkerStatus::Awake;
        }
        let time = now.time();
        let today = now.weekday();
        let yesterday = today.pred();
        let asleep = match (self.start, self.end) {
            (Some(start), Some(end)) if end < start => {
                // Overnight: the evening part belongs to today, the morning part to the
                // day before.
                (time >= start && self.starts_on(today))
                    || (time < end && self.starts_on(yesterday))
            }
            (start, end) => {
                self.starts_on(today)
                    && start.is_none_or(|s| time >= s)
                    && end.is_none_or(|e| time < e)
            }
        };
        if asleep {
            WorkerStatus::Asleep
        } else {
            WorkerStatus::Awake
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: u32, hh: u32, mm: u32) -> NaiveDateTime {
        // 2026-11-23 is a Monday.
        chrono::NaiveDate::from_ymd_opt(2026, 11, day)
            .and_then(|d| d.and_hms_opt(hh, mm, 0))
            .expect("valid time")
    }

    fn schedule(days: &str, start: &str, end: &str) -> SleepSchedule {
        let time =
            |t: &str| (!t.is_empty()).then(|| NaiveTime::parse_from_str(t, "%H:%M").unwrap());
        SleepSchedule {
            is_active: true,
            days: parse_days(days).unwrap(),
            start: time(start),
            end: time(end),
        }
    }

    #[test]
    fn schedules_decide_asleep_or_awake_including_overnight() {
        use WorkerStatus::{Asleep, Awake};
        let cases = [
            // (days, start, end, when, expected)
            ("", "09:00", "17:00", at(23, 12, 0), Asleep),
            ("", "09:00", "17:00", at(23, 17, 0), Awake), // end is exclusive
            ("", "09:00", "17:00", at(23, 8, 59), Awake),
            ("sa su", "", "", at(28, 3, 0), Asleep),
            ("sa su", "", "", at(23, 3, 0), Awake),
            // Overnight 22:00–06:00 (upstream would swap it into 06:00–22:00).
            ("", "22:00", "06:00", at(23, 23, 30), Asleep),
            ("", "22:00", "06:00", at(24, 5, 59), Asleep),
            ("", "22:00", "06:00", at(24, 6, 0), Awake),
            ("", "22:00", "06:00", at(24, 12, 0), Awake),
            // Friday night only: asleep Friday 23:00 and Saturday 03:00, not Thursday night.
            ("fr", "22:00", "06:00", at(27, 23, 0), Asleep),
            ("fr", "22:00", "06:00", at(28, 3, 0), Asleep),
            ("fr", "22:00", "06:00", at(27, 3, 0), Awake),
        ];
        for (days, start, end, when, want) in cases {
            assert_eq!(
                schedule(days, start, end).status_at(when),
                want,
                "{days:?} {start}-{end} at {when}"
            );
        }
    }

    #[test]
    fn an_inactive_schedule_keeps_the_worker_awake_and_bad_days_are_named() {
        let mut s = schedule("", "00:00", "23:59");
        s.is_active = false;
        assert_eq!(s.status_at(at(23, 12, 0)), WorkerStatus::Awake);
        let err = parse_days("mo funday").unwrap_err();
        assert!(err.contains("funday"), "{err}");
    }
}
