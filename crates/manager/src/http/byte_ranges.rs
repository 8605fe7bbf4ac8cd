//! Single byte ranges (`Range: bytes=…`, RFC 9110 §14), so a browser can seek in a video
//! served by `/job-files/…`. Several ranges in one request are answered with the whole file
//! (allowed: a server may ignore Range).

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable single range: send everything (200).
    Whole,
    /// Bytes `start..=end` (206).
    Part { start: u64, end: u64 },
    /// A range that lies outside the file (416).
    Unsatisfiable,
}

pub fn range_request(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // `bytes=-N`: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(n) if len > 0 => RangeRequest::Part {
                start: len.saturating_sub(n),
                end: len - 1,
            },
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Whole,
        },
        // `bytes=N-` and `bytes=N-M`.
        (false, _) => {
            let Some(start) = parse(first) else {
                return RangeRequest::Whole;
            };
            let end = if last.is_empty() {
                len.saturating_sub(1)
            } else {
                match parse(last) {
                    Some(end) if end >= start => end.min(len.saturating_sub(1)),
                    _ => return RangeRequest::Whole,
                }
            };
            if start >= len {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Part { start, end }
            }
        }
        (true, true) => RangeRequest::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn single_ranges_are_read_and_others_mean_the_whole_file() {
        let r = |h: &str| range_request(Some(h), 1000);
        assert_eq!(range_request(None, 1000), Whole);
        assert_eq!(r("bytes=0-"), Part { start: 0, end: 999 });
        assert_eq!(r("bytes=10-19"), Part { start: 10, end: 19 });
        assert_eq!(
            r("bytes=990-5000"),
            Part {
                start: 990,
                end: 999
            }
        );
        assert_eq!(
            r("bytes=-100"),
            Part {
                start: 900,
                end: 999
            }
        );
        assert_eq!(r("bytes=-5000"), Part { start: 0, end: 999 });
        assert_eq!(r("bytes=1000-"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), Whole);
        assert_eq!(r("bytes=5-1"), Whole);
        assert_eq!(r("items=0-1"), Whole);
        assert_eq!(r("bytes=x-"), Whole);
        assert_eq!(range_request(Some("bytes=0-"), 0), Unsatisfiable);
    }
}
