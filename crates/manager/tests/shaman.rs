//! Shaman, as the Blender add-on drives it: requirements, uploads (known, deferred,
//! corrupt), checkouts with relative symlinks, uniquified names, and refused traversal.
mod common;

use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct TestFile {
    sha: String,
    size: u64,
    path: String,
    content: Vec<u8>,
}

fn test_file(i: usize) -> TestFile {
    let content = format!("file number {i}\n").repeat(i + 1).into_bytes();
    TestFile {
        sha: hex::encode(Sha256::digest(&content)),
        size: content.len() as u64,
        path: format!("textures/set-{}/file-{i}.png", i % 3),
        content,
    }
}

fn spec(f: &TestFile) -> Value {
    json!({ "sha": f.sha, "size": f.size, "path": f.path })
}

async fn upload(m: &common::TestManager, f: &TestFile, content: Vec<u8>, defer: &str) -> u16 {
    m.http
        .post(format!(
            "{}/api/v3/shaman/files/{}/{}",
            m.url, f.sha, f.size
        ))
        .header("X-Shaman-Can-Defer-Upload", defer)
        .header("X-Shaman-Original-Filename", "=?utf-8?q?file=2Epng?=")
        .body(content)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_scripted_shaman_session_stores_and_checks_out_exactly_the_right_files() {
    let m = common::start().await;
    let files: Vec<TestFile> = (0..50).map(test_file).collect();
    let specs: Vec<Value> = files.iter().map(spec).collect();

    // 20 files are on the manager already.
    for f in &files[..20] {
        assert_eq!(upload(&m, f, f.content.clone(), "False").await, 204);
    }
    let (status, needed) = m
        .post(
            "/api/v3/shaman/checkout/requirements",
            &json!({ "files": specs }),
        )
        .await;
    assert_eq!(status, 200, "{needed}");
    let needed = needed["files"].as_array().unwrap().clone();
    assert_eq!(needed.len(), 30, "stored files are not asked for");
    assert!(needed.iter().all(|f| f["status"] == "unknown"));

    // A known file is acknowledged without storing it again.
    assert_eq!(
        upload(&m, &files[0], files[0].content.clone(), "True").await,
        208
    );

    // One upload arrives corrupted: refused, nothing stored.
    let mut corrupt = files[20].content.clone();
    corrupt[0] ^= 0xff;
    assert_eq!(upload(&m, &files[20], corrupt, "False").await, 417);
    let (_, status) = m
        .get(&format!(
            "/api/v3/shaman/files/{}/{}",
            files[20].sha, files[20].size
        ))
        .await;
    assert_eq!(status["status"], "unknown");

    // One file is being uploaded by someone else: a client that may defer is told to.
    let slow = &files[21];
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    let first = m
        .http
        .post(format!(
            "{}/api/v3/shaman/files/{}/{}",
            m.url, slow.sha, slow.size
        ))
        .header("X-Shaman-Can-Defer-Upload", "False")
        .body(body)
        .send();
    let first = tokio::spawn(first);
    sender.send(Ok(slow.content[..3].to_vec())).await.unwrap();
    // Poll with a deadline until the manager reports the file as being uploaded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, status) = m
            .get(&format!("/api/v3/shaman/files/{}/{}", slow.sha, slow.size))
            .await;
        if status["status"] == "uploading" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "upload never showed as in progress"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(upload(&m, slow, slow.content.clone(), "True").await, 425);
    sender.send(Ok(slow.content[3..].to_vec())).await.unwrap();
    drop(sender);
    assert_eq!(first.await.unwrap().unwrap().status().as_u16(), 204);

    // Everything else arrives.
    for f in &files[20..] {
        if f.sha != slow.sha {
            assert_eq!(upload(&m, f, f.content.clone(), "True").await, 204);
        }
    }
    let (_, needed) = m
        .post(
            "/api/v3/shaman/checkout/requirements",
            &json!({ "files": specs }),
        )
        .await;
    assert_eq!(needed["files"], json!([]));

    let (status, made) = m
        .post(
            "/api/v3/shaman/checkout/create",
            &json!({ "files": specs, "checkoutPath": "sprite/shot-010" }),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["checkoutPath"], "sprite/shot-010");
    let checkout_root = m.dir.path().join("castanet-shared/jobs");
    let checkout = checkout_root.join("sprite/shot-010");
    for f in &files {
        let link = checkout.join(&f.path);
        let target = std::fs::read_link(&link).unwrap();
        assert!(target.is_relative(), "{} links relatively", f.path);
        assert_eq!(
            std::fs::read(&link).unwrap(),
            f.content,
            "{} has the right content",
            f.path
        );
    }
    assert_eq!(
        entries(&checkout.join("textures")),
        ["set-0", "set-1", "set-2"]
    );

    // The same name again is uniquified; the first checkout is untouched.
    let (status, again) = m
        .post(
            "/api/v3/shaman/checkout/create",
            &json!({ "files": specs[..2], "checkoutPath": "sprite/shot-010" }),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    let unique = again["checkoutPath"].as_str().unwrap();
    assert!(
        unique.starts_with("sprite/shot-010-") && unique.len() == "sprite/shot-010-".len() + 4,
        "{unique}"
    );
    assert_eq!(
        std::fs::read_dir(checkout.join("textures/set-0"))
            .unwrap()
            .count(),
        17
    );

    // Escapes are refused and write nothing.
    let escapes = [
        json!({ "files": [ {"sha": files[0].sha, "size": files[0].size, "path": "../../etc/passwd"} ], "checkoutPath": "evil" }),
        json!({ "files": [ {"sha": files[0].sha, "size": files[0].size, "path": "/etc/passwd"} ], "checkoutPath": "evil" }),
        json!({ "files": [ spec(&files[0]) ], "checkoutPath": "../outside" }),
        json!({ "files": [ spec(&files[0]) ], "checkoutPath": "/tmp/outside" }),
        json!({ "files": [ spec(&files[0]) ], "checkoutPath": "a/../../outside" }),
    ];
    for body in escapes {
        let (status, answer) = m.post("/api/v3/shaman/checkout/create", &body).await;
        assert_eq!(status, 400, "{body} -> {answer}");
    }
    assert_eq!(entries(&checkout_root), ["sprite"]);
    assert_eq!(entries(&checkout_root.join("sprite")).len(), 2);

    // Files nobody uploaded cannot be checked out.
    let ghost = json!({ "files": [ {"sha": "ab".repeat(32), "size": 3, "path": "ghost.blend"} ], "checkoutPath": "ghost" });
    let (status, answer) = m.post("/api/v3/shaman/checkout/create", &ghost).await;
    assert_eq!(status, 424, "{answer}");
    assert!(!checkout_root.join("ghost").exists());

    // Garbage collection keeps everything a checkout uses.
    let shaman = m.manager.state.shaman.clone().unwrap();
    let report = shaman
        .collect_garbage(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.deleted_files, 0);
    std::fs::remove_dir_all(&checkout_root).unwrap();
    let report = shaman
        .collect_garbage(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.deleted_files, 50, "unused files are collected");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_add_on_connect_calls_answer_with_the_shapes_it_needs() {
    let m = common::start().await;
    let (status, storage) = m
        .get("/api/v3/configuration/shared-storage/users/windows")
        .await;
    assert_eq!(status, 200);
    assert_eq!(storage["audience"], "users");
    assert_eq!(storage["platform"], "windows");
    assert_eq!(storage["shamanEnabled"], true);
    assert!(
        storage["location"]
            .as_str()
            .unwrap()
            .ends_with("castanet-shared/jobs"),
        "the checkout folder, where {{jobs}} points: {storage}"
    );
    let (status, _) = m
        .get("/api/v3/configuration/shared-storage/artists/linux")
        .await;
    assert_eq!(status, 400);

    let (status, variables) = m
        .get("/api/v3/configuration/variables/workers/windows")
        .await;
    assert_eq!(status, 200, "{variables}");
    assert_eq!(variables["blender"]["name"], "blender");
    assert!(variables["blender"]["value"].is_string());
    assert!(
        variables["jobs"]["value"]
            .as_str()
            .unwrap()
            .ends_with("jobs"),
        "{variables}"
    );

    let (status, tags) = m.get("/api/v3/worker-mgt/tags").await;
    assert_eq!((status, tags), (200, json!({ "tags": [] })));
    let (status, tag) = m
        .post(
            "/api/v3/worker-mgt/tags",
            &json!({ "name": "gpu", "description": "GPU nodes" }),
        )
        .await;
    assert_eq!(status, 200, "{tag}");
    let (status, _) = m
        .post("/api/v3/worker-mgt/tags", &json!({ "name": "gpu" }))
        .await;
    assert_eq!(status, 409, "duplicate names are refused");
    let (_, tags) = m.get("/api/v3/worker-mgt/tags").await;
    assert_eq!(tags["tags"], json!([tag]));
    let id = tag["id"].as_str().unwrap();
    let renamed = m
        .http
        .put(format!("{}/api/v3/worker-mgt/tag/{id}", m.url))
        .json(&json!({ "name": "gpu-farm" }))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status().as_u16(), 204);
    let (_, fetched) = m.get(&format!("/api/v3/worker-mgt/tag/{id}")).await;
    assert_eq!(fetched, json!({ "id": id, "name": "gpu-farm" }));
    let deleted = m
        .http
        .delete(format!("{}/api/v3/worker-mgt/tag/{id}", m.url))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let (status, _) = m.get(&format!("/api/v3/worker-mgt/tag/{id}")).await;
    assert_eq!(status, 404);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_second_manager_on_the_same_shaman_storage_refuses_to_start_and_touches_nothing() {
    let first = common::start_configured(tempfile::tempdir().unwrap(), |config| {
        config.shaman.enabled = true;
    })
    .await;
    let shared = first
        .manager
        .state
        .config
        .shaman
        .shared_storage_path(first.dir.path());
    // The first manager's work in progress: an upload's temporary file and a checkout
    // still being made (its note and its half tree).
    let file_store = shared.join("file-store");
    std::fs::create_dir_all(file_store.join("uploading")).unwrap();
    let upload = file_store.join("uploading").join("in-flight.tmp");
    std::fs::write(&upload, b"half a file").unwrap();
    let notes = file_store.join("checkouts-in-progress");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("note"), "shot-1").unwrap();
    let checkout = shared.join("jobs").join("shot-1");
    std::fs::create_dir_all(&checkout).unwrap();

    let second_dir = tempfile::tempdir().unwrap();
    let mut config = castanet_manager::ManagerConfig::new_default(second_dir.path());
    config.listen = "127.0.0.1:0".into();
    config.registration_secret = "test-secret".into();
    config.shaman.enabled = true;
    config.shaman.shared_storage = shared.clone();
    let refused = castanet_manager::start(config).await;
    let message = match refused {
        Ok(_) => panic!("a second manager started on the same Shaman storage"),
        Err(e) => e.to_string(),
    };
    let lock = file_store.join(".lock");
    assert!(
        message.contains("another manager") && message.contains(&lock.display().to_string()),
        "{message}"
    );
    assert_eq!(std::fs::read(&upload).unwrap(), b"half a file");
    assert!(notes.join("note").exists() && checkout.exists());
    // The first one still serves.
    assert_eq!(first.get("/api/v3/version").await.0, 200);

    // Once the first manager stops, the store is free: a start cleans up what it left.
    first.manager.shutdown().await.unwrap();
    let mut config = castanet_manager::ManagerConfig::new_default(second_dir.path());
    config.listen = "127.0.0.1:0".into();
    config.shaman.enabled = true;
    config.shaman.shared_storage = shared.clone();
    let second = castanet_manager::start(config).await.expect("starts");
    assert!(!upload.exists() && !checkout.exists() && !notes.join("note").exists());
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_start_removes_every_interrupted_checkout_and_upload_it_can_despite_a_bad_note() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("castanet-shared");
    let file_store = shared.join("file-store");
    let notes = file_store.join("checkouts-in-progress");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::create_dir_all(file_store.join("uploading")).unwrap();
    // A note that cannot be read as text, one that names an escaping path, and a good one.
    std::fs::write(notes.join("a-unreadable"), [0xff, 0xfe, 0x00]).unwrap();
    std::fs::write(notes.join("b-escaping"), "../../outside").unwrap();
    std::fs::write(notes.join("c-good"), "shot-2").unwrap();
    let checkout = shared.join("jobs").join("shot-2");
    std::fs::create_dir_all(checkout.join("t")).unwrap();
    let upload = file_store.join("uploading").join("left.tmp");
    std::fs::write(&upload, b"half").unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();

    let m = common::start_configured(dir, |config| config.shaman.enabled = true).await;
    assert!(!checkout.exists(), "the good note's checkout is removed");
    assert!(!upload.exists(), "the upload is removed");
    assert!(outside.exists(), "an escaping note removes nothing");
    assert!(
        notes.join("a-unreadable").exists(),
        "an unreadable note stays"
    );
    assert!(!notes.join("c-good").exists());
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_config_whose_task_logs_live_in_the_checkout_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = castanet_manager::ManagerConfig::new_default(dir.path());
    config.listen = "127.0.0.1:0".into();
    config.shaman.enabled = true;
    // storage_root/jobs is then shared storage/jobs, where checkouts are made.
    config.storage_root = config.shaman.shared_storage.clone();
    let message = match castanet_manager::start(config).await {
        Ok(_) => panic!("started with task logs in the checkout root"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("is the Shaman checkout root"), "{message}");
}
