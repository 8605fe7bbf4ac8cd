//! `LogSink`: where commands write task log lines; it also remembers the last lines for a
//! failure report.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use crate::process::MAX_LINE_BYTES;

/// How many of the newest lines a failure report carries.
pub const TAIL_LINES: usize = 20;

/// A cloneable writer of task log lines.
#[derive(Clone)]
pub struct LogSink {
    tx: mpsc::Sender<String>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl LogSink {
    /// A sink and the receiving end of its lines (without line endings).
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        (Self { tx, tail }, rx)
    }

    /// Logs `text`; embedded newlines start new lines, and over-long lines are split.
    /// Lines are dropped silently once the receiving end is gone.
    pub async fn line(&self, text: impl AsRef<str>) {
        for line in text.as_ref().split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            for part in split_long(line, MAX_LINE_BYTES) {
                self.remember(part);
                let _ = self.tx.send(part.to_string()).await;
            }
        }
    }

    /// The newest lines logged so far (at most `TAIL_LINES`), oldest first.
    pub fn last_lines(&self) -> Vec<String> {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.iter().cloned().collect()
    }

    fn remember(&self, line: &str) {
        let mut tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_string());
    }
}

/// Splits `line` into parts of at most `max` bytes on character boundaries (one part if short).
fn split_long(mut line: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    while line.len() > max {
        let mut cut = max;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, rest) = line.split_at(cut);
        parts.push(head);
        line = rest;
    }
    parts.push(line);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_and_the_tail_is_kept() {
        let (sink, mut rx) = LogSink::channel(100);
        sink.line("one\r\ntwo").await;
        for i in 0..25 {
            sink.line(format!("line {i}")).await;
        }
        assert_eq!(rx.recv().await.as_deref(), Some("one"));
        assert_eq!(rx.recv().await.as_deref(), Some("two"));
        let tail = sink.last_lines();
        assert_eq!(tail.len(), TAIL_LINES);
        assert_eq!(tail.first().map(String::as_str), Some("line 5"));
        assert_eq!(tail.last().map(String::as_str), Some("line 24"));
    }

    #[test]
    fn long_lines_split_on_character_boundaries() {
        assert_eq!(split_long("abcdef", 4), ["abcd", "ef"]);
        assert_eq!(split_long("ééé", 3), ["é", "é", "é"]);
        assert_eq!(split_long("", 3), [""]);
    }

    #[tokio::test]
    async fn a_closed_receiver_is_not_an_error() {
        let (sink, rx) = LogSink::channel(1);
        drop(rx);
        sink.line("nobody listens").await;
        assert_eq!(sink.last_lines(), ["nobody listens"]);
    }
}
