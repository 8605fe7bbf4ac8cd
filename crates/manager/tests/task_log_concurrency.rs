//! Writers of one task log at the same time: a worker's chunks, the same chunks again from
//! a retried upload whose old stream still writes, and the manager's own lines. Each line
//! must be stored exactly once (the ledger's check and record, and a write's length, are
//! held under the log's lock).
use std::sync::Arc;

use castanet_manager::logs::TaskLogs;

const CHUNKS: usize = 200;
const LINES_PER_CHUNK: usize = 3;
const MANAGER_LINES: usize = 100;

/// The worker output of one lease, in chunks, each with its offset in the lease's output.
fn chunks() -> Vec<(u64, String)> {
    let mut offset = 0u64;
    (0..CHUNKS)
        .map(|c| {
            let text: String = (0..LINES_PER_CHUNK)
                .map(|l| format!("output {c:04}.{l}\n"))
                .collect();
            let at = offset;
            offset += text.len() as u64;
            (at, text)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_chunks_and_manager_lines_store_every_line_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = Arc::new(TaskLogs::new(dir.path()));
    let mut writers = tokio::task::JoinSet::new();
    // Four streams send the same lease's chunks: an upload and its retries.
    for _ in 0..4 {
        let logs = logs.clone();
        writers.spawn(async move {
            for (offset, text) in chunks() {
                logs.append_chunk("job1", "t1", 1, Some(offset), &text)
                    .await
                    .expect("chunk stored");
                tokio::task::yield_now().await;
            }
        });
    }
    for writer in 0..4 {
        let logs = logs.clone();
        writers.spawn(async move {
            for n in 0..MANAGER_LINES / 4 {
                logs.append_manager_line("job1", "t1", &format!("manager {writer}.{n}"))
                    .await
                    .expect("manager line stored");
                tokio::task::yield_now().await;
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer finished");
    }

    let log = logs.read("job1", "t1").await.expect("read").expect("log");
    let lines: Vec<&str> = log.lines().collect();
    let output: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| line.starts_with("output "))
        .collect();
    let expected: Vec<String> = (0..CHUNKS)
        .flat_map(|c| (0..LINES_PER_CHUNK).map(move |l| format!("output {c:04}.{l}")))
        .collect();
    assert_eq!(output, expected, "every output line once, in order");
    for writer in 0..4 {
        for n in 0..MANAGER_LINES / 4 {
            let line = format!(" manager {writer}.{n}");
            let count = lines.iter().filter(|l| l.ends_with(&line)).count();
            assert_eq!(count, 1, "{line:?} stored {count} times");
        }
    }
    assert_eq!(
        lines.len(),
        expected.len() + MANAGER_LINES,
        "no other lines"
    );
}
