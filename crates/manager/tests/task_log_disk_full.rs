//! A task log on a disk that fills up (issue 19, part 3). A full disk cuts an append short;
//! the worker then sends the whole chunk again, so the part that was written must be taken
//! back, or the log gets a torn line and that text twice. The manager's own lines waiting
//! for the log's first write must not be lost with a failed write either. The disk is a
//! small tmpfs (root only); elsewhere the test says so and passes.
mod tmpfs;

use castanet_manager::logs::TaskLogs;
use tmpfs::Tmpfs;

#[tokio::test]
async fn a_chunk_cut_short_by_a_full_disk_is_taken_back_and_stored_once_when_retried() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmpfs) = Tmpfs::mount(dir.path(), "1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let logs = TaskLogs::new(dir.path());
    logs.defer_manager_line("t1", "Task assigned to worker w");
    // The first write leaves the log's last page mostly free.
    let first = "line 0000\n";
    assert!(
        logs.append_chunk("job1", "t1", 1, Some(0), first)
            .await
            .is_ok()
    );
    logs.defer_manager_line("t1", "Task re-checked by the manager");
    let log = logs.path("job1", "t1");
    let stored = std::fs::metadata(&log).expect("log").len();
    assert!(
        stored < 4096 - 100,
        "the first page has room for the manager's line"
    );

    let filler = tmpfs.fill();
    // More than the page's free part: only its beginning fits.
    let chunk: String = (1..=800).map(|i| format!("line {i:04}\n")).collect();
    let offset = Some(first.len() as u64);
    let refused = logs.append_chunk("job1", "t1", 1, offset, &chunk).await;
    assert!(
        refused.is_err(),
        "a write that did not fit was acknowledged"
    );
    assert_eq!(
        std::fs::metadata(&log).expect("log").len(),
        stored,
        "the part of the refused chunk that fit is still in the log"
    );
    // Reading works while the disk is full (the manager's short line still fits).
    let read = logs.read("job1", "t1").await.expect("read").expect("log");
    assert!(
        read.contains(first) && !read.contains("line 0001"),
        "{read}"
    );

    std::fs::remove_file(filler).expect("remove filler");
    logs.append_chunk("job1", "t1", 1, offset, &chunk)
        .await
        .expect("stored once there is room");
    let read = logs.read("job1", "t1").await.expect("read").expect("log");
    let lines: Vec<&str> = read.lines().collect();
    assert!(lines[0].ends_with(" Task assigned to worker w"), "{read}");
    assert_eq!(lines[1], "line 0000");
    assert!(
        lines[2].ends_with(" Task re-checked by the manager"),
        "{read}"
    );
    let output: Vec<&str> = lines[3..].to_vec();
    let expected: Vec<String> = (1..=800).map(|i| format!("line {i:04}")).collect();
    assert_eq!(output, expected, "every line once, in order");
}

#[tokio::test]
async fn a_refused_write_check_leaves_no_probe_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmpfs) = Tmpfs::mount(dir.path(), "1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let logs = TaskLogs::new(dir.path());
    std::fs::create_dir_all(logs.jobs_root()).expect("jobs root");
    let _filler = tmpfs.fill();
    // A full tmpfs still has inodes: the probe is created, its write fails.
    let refused = logs
        .check_writable()
        .await
        .expect_err("a full disk takes no probe");
    assert_eq!(refused.kind(), std::io::ErrorKind::StorageFull, "{refused}");
    let probes: Vec<String> = std::fs::read_dir(logs.jobs_root())
        .expect("jobs root")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".write-check-"))
        .collect();
    assert!(probes.is_empty(), "probe files left behind: {probes:?}");
}
