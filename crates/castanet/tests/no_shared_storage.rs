//! A farm without shared storage, through the real binaries: the manager in one network
//! namespace, a `--no-shared-storage` worker in another whose file system view hides the
//! manager's directory (a tmpfs mounted over it in the worker's mount namespace), so every
//! file the worker reads or writes crosses the network.
//!
//! - A Blender job sent through the Shaman API (a .blend plus a texture it uses) renders on
//!   the worker; the frames and the job's video land in the manager's storage, and the
//!   texture really was there (the frame is not Blender's missing-texture magenta).
//! - A second job with the same texture downloads only its new .blend (bytes counted).
//! - The worker's link is cut for 20 s in the middle of an output upload (the link slowed
//!   with `tc` so the upload takes half a minute): the upload resumes from what the manager
//!   holds, the task completes once, and the stored file has the source's hash.
//! - A job whose output is no farm path is declined by the worker (blocklist with reason).
//!
//! Needs root (`ip netns`, `mount`, `tc`); without it the test says so and skips.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::farm_net::FarmNet;
use common::render_jobs::{run_blender_python, submit};
use common::{Api, ManagerProcess, WorkerProcess, completed};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PORT: u16 = 18_481;
const SECRET: &str = "no-shared-storage";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A 64×48 Cycles scene whose cube uses the image `//tex/wood.png` (written beside it);
/// `samples` makes two scenes differ.
fn make_textured_scene(dir: &Path, samples: u32) -> PathBuf {
    std::fs::create_dir_all(dir.join("tex")).expect("scene dir");
    let blend = dir.join("scene.blend");
    let texture = dir.join("tex").join("wood.png");
    let script = format!(
        "import bpy\n\
         s = bpy.context.scene\n\
         s.render.engine = 'CYCLES'\n\
         s.cycles.samples = {samples}\n\
         s.cycles.use_denoising = False\n\
         s.render.resolution_x = 64\n\
         s.render.resolution_y = 48\n\
         s.render.resolution_percentage = 100\n\
         s.frame_start = 1\n\
         s.frame_end = 2\n\
         img = bpy.data.images.new('wood', 16, 16)\n\
         img.pixels = [0.9, 0.45, 0.05, 1.0] * 256\n\
         img.filepath_raw = {texture:?}\n\
         img.file_format = 'PNG'\n\
         img.save()\n\
         mat = bpy.data.materials.new('wood')\n\
         mat.use_nodes = True\n\
         node = mat.node_tree.nodes.new('ShaderNodeTexImage')\n\
         node.image = img\n\
         bsdf = mat.node_tree.nodes['Principled BSDF']\n\
         mat.node_tree.links.new(node.outputs['Color'], bsdf.inputs['Base Color'])\n\
         mat.node_tree.links.new(node.outputs['Color'], bsdf.inputs['Emission'])\n\
         bsdf.inputs['Emission Strength'].default_value = 2.0\n\
         cube = bpy.data.objects['Cube']\n\
         cube.data.materials.clear()\n\
         cube.data.materials.append(mat)\n\
         img.filepath = '//tex/wood.png'\n\
         bpy.ops.wm.save_as_mainfile(filepath={blend:?})\n",
        texture = texture.display().to_string(),
        blend = blend.display().to_string(),
    );
    run_blender_python(&script, &[&blend, &texture]);
    blend
}

/// Uploads `files` (path in the checkout, local file) through the Shaman API and checks them
/// out at `checkout`; returns the checkout path the manager chose.
async fn shaman_checkout(api: &Api, checkout: &str, files: &[(&str, &Path)]) -> String {
    let http = reqwest::Client::new();
    let mut specs = Vec::new();
    for (path, local) in files {
        let bytes = std::fs::read(local).expect("file to upload");
        let (sha, size) = (sha256(&bytes), bytes.len());
        specs.push(json!({ "sha": sha, "size": size, "path": path }));
        // As the add-on does: a stored file is not sent again.
        if api.get(&format!("/api/v3/shaman/files/{sha}/{size}")).await["status"] == "stored" {
            continue;
        }
        let answer = http
            .post(format!("{}/api/v3/shaman/files/{sha}/{size}", api.url))
            .body(bytes)
            .send()
            .await
            .expect("upload");
        assert!(answer.status().is_success(), "upload of {path}: {answer:?}");
    }
    let answer: Value = http
        .post(format!("{}/api/v3/shaman/checkout/create", api.url))
        .json(&json!({ "checkoutPath": checkout, "files": specs }))
        .send()
        .await
        .expect("checkout")
        .json()
        .await
        .expect("JSON");
    answer["checkoutPath"]
        .as_str()
        .unwrap_or_else(|| panic!("no checkout path: {answer}"))
        .to_owned()
}

/// A render of `{jobs}/<checkout>/scene.blend`, as the add-on sends it (naming its checkout).
fn render_job(name: &str, checkout: &str, output_dir: &Path) -> Value {
    let blendfile = format!("{{jobs}}/{checkout}/scene.blend");
    json!({
        "name": name, "type": "simple-blender-render", "priority": 50,
        "submitter_platform": "linux",
        "storage": { "shaman_checkout_id": checkout },
        "settings": {
            "frames": "1-2", "chunk_size": 1,
            "render_output_root": output_dir, "add_path_components": 0,
            "render_output_path": format!("{}/######", output_dir.display()),
            "blendfile": blendfile, "fps": 24.0, "format": "PNG",
            "image_file_extension": ".png", "has_previews": false, "scene": "Scene",
        },
    })
}

/// The worker's transfer totals as the manager shows them.
async fn transfers(api: &Api) -> Value {
    let workers = api.get("/api/v3/worker-mgt/workers").await;
    let id = workers["workers"][0]["id"]
        .as_str()
        .expect("a worker")
        .to_owned();
    let worker = api.get(&format!("/api/v3/worker-mgt/workers/{id}")).await;
    assert!(worker["storage_mirror"].is_string(), "{worker}");
    worker["transfers"].clone()
}

/// One counter of the manager's `/metrics`.
async fn metric(api: &Api, name: &str) -> u64 {
    let text = api.text("/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

/// The centre pixel of an image (R, G, B), read with FFmpeg.
fn centre_pixel(image: &Path) -> [u8; 3] {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(image)
        .args([
            "-vf",
            "crop=1:1:32:24",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    let pixel: [u8; 3] = output
        .stdout
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("no pixel: {}", String::from_utf8_lossy(&output.stderr)));
    pixel
}

fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.retain(|path| path.extension().is_some_and(|e| e == extension));
    found.sort();
    found
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_farm_without_shared_storage_moves_inputs_by_hash_and_outputs_back() {
    let net = match FarmNet::create(1) {
        Ok(net) => net,
        Err(e) => {
            eprintln!(
                "SKIPPING the no-shared-storage test: network namespaces cannot be made ({e})"
            );
            return;
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let manager_dir = dir.path().join("manager");
    let render_root = manager_dir.join("render");
    std::fs::create_dir_all(manager_dir.join("scripts")).expect("scripts dir");
    std::fs::write(
        manager_dir.join("castanet-manager.toml"),
        format!(
            "registration_secret = \"{SECRET}\"\n\
             worker_timeout_seconds = 180\n\
             [variables.render]\nis_twoway = true\nlinux = \"{}\"\n",
            render_root.display()
        ),
    )
    .expect("config");
    // A job type that copies one file: an output as big as we like, for the cut.
    std::fs::write(
        manager_dir.join("scripts").join("copy_out.js"),
        "const JOB_TYPE = { label: 'Copy Out', settings: [\n\
           { key: 'src', type: 'string', required: true },\n\
           { key: 'dest', type: 'string', required: true }] };\n\
         function compileJob(job) {\n\
           const task = author.Task('copy', 'file-management');\n\
           task.addCommand(author.Command('copy-file', { src: job.settings.src, dest: job.settings.dest }));\n\
           job.addTask(task);\n\
         }\n",
    )
    .expect("job type");
    let manager = ManagerProcess::start_wrapped(
        &manager_dir,
        &format!("0.0.0.0:{PORT}"),
        &["ip", "netns", "exec", &net.manager_ns()],
    );
    let api = Api::new(&format!("http://10.214.0.2:{PORT}"));

    // The worker's mount namespace (made by `ip netns exec`) hides the manager's directory.
    let hide = format!(
        "mount -t tmpfs castanet-hidden '{}' && exec \"$0\" \"$@\"",
        manager_dir.display()
    );
    let worker_ns = net.worker_ns(1);
    let worker_dir = dir.path().join("worker");
    let worker = WorkerProcess::start_wrapped_with_args(
        &format!("http://10.214.1.1:{PORT}"),
        SECRET,
        &worker_dir,
        "no-shared-storage",
        1,
        &["ip", "netns", "exec", &worker_ns, "sh", "-c", &hide],
        &["--no-shared-storage"],
    );
    api.wait_connected(1, Duration::from_secs(60)).await;

    // Job A: a .blend and its texture, through Shaman.
    let scene_a = make_textured_scene(&dir.path().join("scene-a"), 1);
    let texture = scene_a.with_file_name("tex").join("wood.png");
    let checkout_a = shaman_checkout(
        &api,
        "shot-a",
        &[("scene.blend", &scene_a), ("tex/wood.png", &texture)],
    )
    .await;
    let out_a = render_root.join("a");
    let job_a = submit(&api, render_job("no-shared-a", &checkout_a, &out_a)).await;
    api.wait_for_job(&job_a, Duration::from_secs(240), completed)
        .await;
    let frames = files_with_extension(&out_a, "png");
    assert_eq!(frames.len(), 2, "frames on the manager: {frames:?}");
    let [r, g, b] = centre_pixel(&frames[0]);
    assert!(
        r > b.saturating_add(40) && r > g,
        "the frame shows {r},{g},{b}: the texture (orange) did not reach Blender"
    );
    let videos = files_with_extension(&out_a, "mp4");
    assert_eq!(
        videos.len(),
        1,
        "the job's video on the manager: {videos:?}"
    );
    let preview = api
        .get(&format!("/api/v3/jobs/{job_a}/preview-video"))
        .await;
    assert!(preview.is_object(), "{preview}");
    let after_a = transfers(&api).await;
    let first_bytes = std::fs::metadata(&scene_a).expect("scene").len()
        + std::fs::metadata(&texture).expect("texture").len();
    assert_eq!(after_a["cache_misses"], 2, "{after_a}");
    assert_eq!(after_a["bytes_downloaded"], first_bytes, "{after_a}");
    assert!(after_a["files_uploaded"].as_u64() >= Some(3), "{after_a}");

    // Job B: a new .blend, the same texture: only the .blend is downloaded.
    let scene_b = make_textured_scene(&dir.path().join("scene-b"), 2);
    let checkout_b = shaman_checkout(
        &api,
        "shot-b",
        &[("scene.blend", &scene_b), ("tex/wood.png", &texture)],
    )
    .await;
    let out_b = render_root.join("b");
    let job_b = submit(&api, render_job("no-shared-b", &checkout_b, &out_b)).await;
    api.wait_for_job(&job_b, Duration::from_secs(240), completed)
        .await;
    assert_eq!(files_with_extension(&out_b, "png").len(), 2);
    let after_b = transfers(&api).await;
    let scene_b_bytes = std::fs::metadata(&scene_b).expect("scene").len();
    assert_eq!(after_b["cache_misses"], 3, "only the new .blend: {after_b}");
    assert_eq!(
        after_b["bytes_downloaded"].as_u64(),
        Some(first_bytes + scene_b_bytes),
        "{after_b}"
    );

    let (ok, listed, err) = common::cli(&api.url, &["workers"]);
    assert!(ok, "{err}");
    let line = listed
        .lines()
        .find(|line| line.contains("no-shared-storage"))
        .unwrap_or_else(|| panic!("no worker row: {listed}"));
    let cache_hits = after_b["cache_hits"].as_u64().expect("hits");
    assert!(
        line.contains("mirror ") && line.contains(&format!("{cache_hits}/{}", cache_hits + 3)),
        "{listed}"
    );

    cut_in_the_middle_of_an_upload(&net, &api, dir.path(), &render_root).await;
    an_output_outside_the_farm_is_declined(&api, &checkout_a).await;

    worker.stop();
    manager.stop();
}

/// Job C copies a 12 MB file to the render share with the worker's uplink slowed to 4 Mbit/s
/// (about 25 s); the link goes down for 20 s once a few megabytes have arrived.
async fn cut_in_the_middle_of_an_upload(net: &FarmNet, api: &Api, dir: &Path, render_root: &Path) {
    let big = dir.join("big.bin");
    let content: Vec<u8> = (0..12_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &content).expect("big file");
    let checkout = shaman_checkout(api, "shot-c", &[("big.bin", &big)]).await;
    net.limit_rate(1, Some("4mbit"));
    let received_before = metric(api, "castanet_transfer_received_bytes_total").await;
    let dest = render_root.join("copy").join("big.bin");
    let job = submit(
        api,
        json!({
            "name": "no-shared-cut", "type": "copy-out", "priority": 50,
            "submitter_platform": "linux",
            "storage": { "shaman_checkout_id": checkout },
            "settings": { "src": format!("{{jobs}}/{checkout}/big.bin"), "dest": dest },
        }),
    )
    .await;
    wait_until(
        Duration::from_secs(120),
        "3 MB of the upload arriving",
        || async {
            metric(api, "castanet_transfer_received_bytes_total").await
                >= received_before + 3_000_000
        },
    )
    .await;
    net.set_link(1, false);
    let at_cut = metric(api, "castanet_transfer_received_bytes_total").await - received_before;
    assert!(
        at_cut < content.len() as u64,
        "the upload was over before the cut"
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    net.set_link(1, true);
    let job_row = api
        .wait_for_job(&job, Duration::from_secs(300), completed)
        .await;
    let stored = std::fs::read(&dest).expect("the copy on the manager");
    assert_eq!(sha256(&stored), sha256(&content), "the stored file's hash");
    let received = metric(api, "castanet_transfer_received_bytes_total").await - received_before;
    assert!(
        received < 2 * content.len() as u64,
        "the upload started over instead of resuming: {received} bytes received for {}",
        content.len()
    );
    let tasks = api.tasks(&job).await;
    assert_eq!(tasks.len(), 1);
    let log = api
        .task_log(tasks[0]["id"].as_str().expect("task id"))
        .await;
    assert_eq!(
        log.matches("Outputs to the manager").count(),
        1,
        "the task ran more than once: {job_row}\n{log}"
    );
    net.limit_rate(1, None);
}

/// A render to a path that is no farm path (not under a variable or the job storage): the
/// worker cannot bring its frames to the manager, declines, and is blocklisted with why.
async fn an_output_outside_the_farm_is_declined(api: &Api, checkout: &str) {
    let job = submit(
        api,
        render_job(
            "no-shared-elsewhere",
            checkout,
            Path::new("/var/tmp/castanet-not-a-farm-path"),
        ),
    )
    .await;
    let failed = api
        .wait_for_job(&job, Duration::from_secs(120), |job| {
            job["status"] == "failed"
        })
        .await;
    let blocklist = api.get(&format!("/api/v3/jobs/{job}/blocklist")).await;
    let text = blocklist.to_string();
    assert!(
        text.contains("no shared storage") && text.contains("castanet-not-a-farm-path"),
        "{failed}\n{blocklist}"
    );
}
