//! What CLI verbs print: tables whose columns fit their longest value, written so that a
//! reader that stops early (`castanet logs X | head`) ends the verb quietly instead of the
//! panic `print!` gives on a broken pipe.
use std::io::{ErrorKind, Write};

use anyhow::Context;

/// Writes `text` to standard output. A closed pipe means nobody reads on: the process ends
/// with success at once, as with the default SIGPIPE action other tools rely on.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        result => result.context("cannot write to standard output"),
    }
}

/// How a column lines up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table as text: each column as wide as its widest cell (the last one unpadded), two
/// spaces between columns. Widths count characters, not bytes, so names in any script align.
pub fn table(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (index, cell) in cells.into_iter().enumerate() {
            if index > 0 {
                text.push_str("  ");
            }
            let pad = " ".repeat(widths[index].saturating_sub(cell.chars().count()));
            match headers[index].1 {
                Align::Right => {
                    text.push_str(&pad);
                    text.push_str(cell);
                }
                Align::Left if index == last => text.push_str(cell),
                Align::Left => {
                    text.push_str(cell);
                    text.push_str(&pad);
                }
            }
        }
        text.push('\n');
        text
    };
    let mut text = line(headers.iter().map(|(h, _)| *h).collect());
    for row in rows {
        let cells = (0..headers.len())
            .map(|i| row.get(i).map_or("", String::as_str))
            .collect();
        text.push_str(&line(cells));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_longest_value() {
        let rows = vec![
            vec![
                "a very long job name indeed".to_string(),
                "7".into(),
                "x".into(),
            ],
            vec!["ünï".to_string(), "1234".into(), "y".into()],
        ];
        let text = table(
            &[
                ("NAME", Align::Left),
                ("N", Align::Right),
                ("LAST", Align::Left),
            ],
            &rows,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME                            N  LAST");
        assert_eq!(lines[1], "a very long job name indeed     7  x");
        assert_eq!(lines[2], "ünï                          1234  y");
    }
}
