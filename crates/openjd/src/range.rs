//! Integer range expressions of INT task parameters: `"1-10"`, `"1-10:2"`, `"1,3,5-9"`,
//! negative numbers (`"-1 - 1"`) and negative steps (`"10-1:-3"`). The values come out in
//! increasing order; two parts that share a value are an error.

/// The values of `expr`, refusing more than `cap` of them before making any.
pub(crate) fn parse(expr: &str, cap: u64) -> Result<Vec<i64>, String> {
    let mut parts = Vec::new();
    let mut total: u64 = 0;
    for element in expr.split(',') {
        let part = parse_element(element.trim())?;
        total = total.saturating_add(part.len());
        if total > cap {
            return Err(format!("\"{expr}\" has more than {cap} values"));
        }
        parts.push(part);
    }
    // Parts may not overlap as written: "1-10:4,10-15" is refused though 10 is not a value of
    // its first part.
    let mut spans: Vec<(i64, i64)> = parts
        .iter()
        .map(|p| (p.start.min(p.end), p.start.max(p.end)))
        .collect();
    spans.sort_unstable();
    if let Some(pair) = spans.windows(2).find(|w| w[1].0 <= w[0].1) {
        return Err(format!(
            "the parts of \"{expr}\" overlap ({}-{} and {}-{})",
            pair[0].0, pair[0].1, pair[1].0, pair[1].1
        ));
    }
    let mut values: Vec<i64> = parts.iter().flat_map(Part::values).collect();
    values.sort_unstable();
    Ok(values)
}

struct Part {
    start: i64,
    end: i64,
    step: i64,
}

impl Part {
    /// How many values; `step` moves from `start` towards `end` (else just `start`).
    fn len(&self) -> u64 {
        let span = i128::from(self.end) - i128::from(self.start);
        let step = i128::from(self.step);
        if span == 0 || (span > 0) != (step > 0) {
            return 1;
        }
        u64::try_from(span / step + 1).unwrap_or(u64::MAX)
    }

    fn values(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(move |i| {
            // In range by construction: every value lies between start and end.
            (i128::from(self.start) + i128::from(i) * i128::from(self.step)) as i64
        })
    }
}

fn parse_element(element: &str) -> Result<Part, String> {
    if element.is_empty() {
        return Err("an empty part between commas".to_owned());
    }
    let (range, step) = match element.split_once(':') {
        Some((range, step)) => {
            let step = parse_int(step.trim())?;
            if step == 0 {
                return Err(format!("\"{element}\": the step must not be 0"));
            }
            (range.trim(), Some(step))
        }
        None => (element, None),
    };
    // The first '-' after the first character separates start and end ("-3--1").
    let split = range
        .char_indices()
        .skip(1)
        .find(|&(i, c)| {
            c == '-' && !range[..i].trim().is_empty() && !range[..i].trim().ends_with('-')
        })
        .map(|(i, _)| i);
    let (start, end) = match split {
        Some(i) => (
            parse_int(range[..i].trim())?,
            parse_int(range[i + 1..].trim())?,
        ),
        None => {
            if step.is_some() {
                return Err(format!(
                    "\"{element}\": a step needs a range (start-end:step)"
                ));
            }
            let n = parse_int(range.trim())?;
            (n, n)
        }
    };
    Ok(Part {
        start,
        end,
        step: step.unwrap_or(1),
    })
}

fn parse_int(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("\"{text}\" is not a whole number"));
    }
    text.parse::<i64>()
        .map_err(|_| format!("\"{text}\" is out of range"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn ok(expr: &str) -> Vec<i64> {
        parse(expr, 10_000).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    #[test]
    fn reads_the_forms_of_the_specification() {
        assert_eq!(ok("1 - 5"), [1, 2, 3, 4, 5]);
        assert_eq!(ok("1 - -1"), [1]);
        assert_eq!(ok("-1 - 1"), [-1, 0, 1]);
        assert_eq!(ok("1-5:2"), [1, 3, 5]);
        assert_eq!(ok("10-15:2,1-5"), [1, 2, 3, 4, 5, 10, 12, 14]);
        assert_eq!(ok("1-10:4"), [1, 5, 9]);
        assert_eq!(ok("1,3,5-9"), [1, 3, 5, 6, 7, 8, 9]);
        assert_eq!(ok("7"), [7]);
        assert_eq!(ok("-3--1"), [-3, -2, -1]);
        assert_eq!(ok("10-1:-3"), [1, 4, 7, 10]);
        assert_eq!(ok(" 0 - 2 "), [0, 1, 2]);
    }

    #[test]
    fn refuses_overlaps_and_nonsense() {
        assert!(parse("1-10:4,10-15", 100).unwrap_err().contains("overlap"));
        assert!(parse("1-5:0", 100).unwrap_err().contains("must not be 0"));
        assert!(parse("a-b", 100).is_err());
        assert!(parse("1,,2", 100).is_err());
        assert!(parse("", 100).is_err());
        assert!(parse("1.5", 100).is_err());
        assert!(parse("3:2", 100).is_err());
    }

    #[test]
    fn refuses_huge_ranges_without_making_them() {
        let e = parse("1-9000000000000000000", 100_000).unwrap_err();
        assert!(e.contains("more than 100000 values"), "{e}");
    }
}
