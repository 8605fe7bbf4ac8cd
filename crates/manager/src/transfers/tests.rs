//! Transfers on real files in a temporary farm: what may be read and written, resumed and
//! verified uploads, and a checkout's files listed by their blobs' hashes.
use castanet_protocol::{mirror, v1};
use sha2::{Digest, Sha256};

use super::{TransferError, Transfers};
use crate::config::ManagerConfig;

fn farm() -> (tempfile::TempDir, Transfers, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = ManagerConfig::new_default(dir.path());
    let shared = config.shaman.shared_storage_path(&config.base_dir);
    std::fs::create_dir_all(&shared).expect("shared storage");
    let shared = std::fs::canonicalize(&shared).expect("canonical");
    (dir, Transfers::new(&config), shared)
}

fn as_mirror(path: &std::path::Path) -> String {
    mirror::from_farm_path(&path.to_string_lossy()).expect("absolute")
}

fn output(path: &std::path::Path, data: &[u8]) -> v1::OutputFile {
    v1::OutputFile {
        task_id: String::new(),
        lease_epoch: 0,
        path: as_mirror(path),
        sha256: hex::encode(Sha256::digest(data)),
        size: data.len() as u64,
    }
}

#[tokio::test]
async fn a_cut_upload_resumes_and_is_stored_once_verified() {
    let (_dir, transfers, shared) = farm();
    let target = shared.join("renders/shot/0001.png");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let file = output(&target, &data);

    let mut first = transfers
        .begin_upload(file.clone(), 0)
        .await
        .expect("begins");
    first.write(&data[..40_000]).await.expect("writes");
    let state = first.finish().await.expect("short stream ends");
    assert_eq!((state.received, state.stored), (40_000, false));
    assert!(
        !target.exists(),
        "nothing at the path before the file is whole"
    );

    let status = transfers.upload_status(&file).await.expect("status");
    assert_eq!(status.received, 40_000);
    let mut second = transfers
        .begin_upload(file.clone(), status.received)
        .await
        .expect("continues");
    second
        .write(&data[40_000..])
        .await
        .expect("writes the rest");
    let state = second.finish().await.expect("stored");
    assert!(state.stored);
    assert_eq!(std::fs::read(&target).expect("stored file"), data);
    let again = transfers.upload_status(&file).await.expect("status");
    assert!(
        again.stored,
        "a retry after a lost answer learns it is stored"
    );
}

#[tokio::test]
async fn bytes_that_do_not_match_the_hash_are_thrown_away() {
    let (_dir, transfers, shared) = farm();
    let target = shared.join("renders/bad.png");
    let mut file = output(&target, b"promised bytes");
    file.size = 5;
    let mut upload = transfers
        .begin_upload(file.clone(), 0)
        .await
        .expect("begins");
    upload.write(b"other").await.expect("writes");
    let err = upload.finish().await.expect_err("hash differs");
    assert!(matches!(err, TransferError::HashMismatch { .. }), "{err}");
    assert!(!target.exists());
    assert_eq!(
        transfers
            .upload_status(&file)
            .await
            .expect("status")
            .received,
        0
    );
}

#[tokio::test]
async fn a_newer_stream_takes_over_and_the_older_writes_nothing_more() {
    let (_dir, transfers, shared) = farm();
    let file = output(&shared.join("out/a.bin"), b"0123456789");
    let mut old = transfers
        .begin_upload(file.clone(), 0)
        .await
        .expect("begins");
    old.write(b"0123").await.expect("writes");
    let mut new = transfers
        .begin_upload(file.clone(), 4)
        .await
        .expect("takes over");
    let err = old.write(b"4567").await.expect_err("superseded");
    assert!(matches!(err, TransferError::Superseded(_)), "{err}");
    new.write(b"456789").await.expect("writes");
    assert!(new.finish().await.expect("stored").stored);
}

#[tokio::test]
async fn paths_outside_the_farm_storage_and_the_file_store_are_refused() {
    let (dir, transfers, shared) = farm();
    let outside = dir.path().join("elsewhere/x.png");
    std::fs::create_dir_all(outside.parent().expect("parent")).expect("dir");
    let err = transfers
        .upload_status(&output(&outside, b"x"))
        .await
        .expect_err("outside");
    assert!(matches!(err, TransferError::OutsideStorage { .. }), "{err}");
    let store = shared.join("file-store/stored/x.blob");
    std::fs::create_dir_all(store.parent().expect("parent")).expect("dir");
    let err = transfers
        .upload_status(&output(&store, b"x"))
        .await
        .expect_err("file store");
    assert!(matches!(err, TransferError::FileStore(_)), "{err}");
    let request = v1::FetchFileRequest {
        path: as_mirror(&outside),
        ..Default::default()
    };
    std::fs::write(&outside, b"secret").expect("file");
    let err = transfers
        .open_download(&request)
        .await
        .expect_err("outside");
    assert!(matches!(err, TransferError::OutsideStorage { .. }), "{err}");
    // Not even whether a file exists out there is told.
    for asked in [as_mirror(&outside), as_mirror(&dir.path().join("nothing"))] {
        let err = transfers
            .list_inputs(None, &[asked])
            .await
            .expect_err("outside");
        assert!(matches!(err, TransferError::OutsideStorage { .. }), "{err}");
    }
}

#[tokio::test]
async fn a_checkout_lists_its_files_by_their_blobs_hashes_and_requested_directories_by_content() {
    let (_dir, transfers, shared) = farm();
    let sha = hex::encode(Sha256::digest(b"texture"));
    let blob = shared
        .join("file-store/stored")
        .join(&sha[..2])
        .join(&sha[2..])
        .join("7.blob");
    std::fs::create_dir_all(blob.parent().expect("parent")).expect("dir");
    std::fs::write(&blob, b"texture").expect("blob");
    let checkout = shared.join("jobs/shot-1");
    std::fs::create_dir_all(checkout.join("tex")).expect("dir");
    std::os::unix::fs::symlink(&blob, checkout.join("tex/wood.png")).expect("link");
    let frames = shared.join("renders/shot-1");
    std::fs::create_dir_all(&frames).expect("dir");
    std::fs::write(frames.join("0001.png"), b"frame one").expect("frame");

    let listed = transfers
        .list_inputs(
            Some(checkout.clone()),
            &[as_mirror(&frames), as_mirror(&shared.join("renders/none"))],
        )
        .await
        .expect("listed");
    assert_eq!(listed.files.len(), 2);
    assert_eq!(
        listed.files[0].path,
        as_mirror(&checkout.join("tex/wood.png"))
    );
    assert_eq!(
        (listed.files[0].sha256.as_str(), listed.files[0].size),
        (sha.as_str(), 7)
    );
    assert_eq!(
        listed.files[1].path,
        format!("{}/0001.png", as_mirror(&frames))
    );
    assert_eq!(
        listed.files[1].sha256,
        hex::encode(Sha256::digest(b"frame one"))
    );
    assert_eq!(listed.missing, [as_mirror(&shared.join("renders/none"))]);

    let request = v1::FetchFileRequest {
        path: listed.files[0].path.clone(),
        sha256: sha.clone(),
        size: 7,
        offset: 3,
    };
    let mut download = transfers.open_download(&request).await.expect("opens");
    assert_eq!(download.next_chunk(1024).await.expect("reads"), b"ture");
    assert!(download.next_chunk(1024).await.expect("end").is_empty());
}

#[tokio::test]
async fn a_render_share_that_does_not_exist_yet_is_made_by_the_first_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ManagerConfig::new_default(dir.path());
    let render = dir.path().join("render");
    config.variables.insert(
        "render".to_owned(),
        crate::variables::VariableConfig {
            is_twoway: true,
            all: Some(render.display().to_string()),
            ..Default::default()
        },
    );
    let transfers = Transfers::new(&config);
    let target = render.join("shot/0001.png");
    let file = output(&target, b"frame");
    let mut upload = transfers.begin_upload(file, 0).await.expect("begins");
    upload.write(b"frame").await.expect("writes");
    assert!(upload.finish().await.expect("stored").stored);
    assert_eq!(std::fs::read(&target).expect("stored"), b"frame");
    // A symlink inside the share may not lead out of it.
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("dir");
    std::os::unix::fs::symlink(&outside, render.join("escape")).expect("link");
    let err = transfers
        .upload_status(&output(&render.join("escape/x.png"), b"x"))
        .await
        .expect_err("leads out");
    assert!(matches!(err, TransferError::OutsideStorage { .. }), "{err}");
}

#[tokio::test]
async fn partial_uploads_nobody_continued_are_removed_at_start() {
    let (_dir, transfers, shared) = farm();
    let file = output(&shared.join("out/old.bin"), b"0123456789");
    let mut upload = transfers
        .begin_upload(file.clone(), 0)
        .await
        .expect("begins");
    upload.write(b"0123").await.expect("writes");
    upload.finish().await.expect("short");
    assert_eq!(
        transfers.remove_stale_uploads(std::time::Duration::from_secs(3600)),
        0
    );
    assert_eq!(transfers.remove_stale_uploads(std::time::Duration::ZERO), 1);
    assert_eq!(
        transfers
            .upload_status(&file)
            .await
            .expect("status")
            .received,
        0
    );
}
