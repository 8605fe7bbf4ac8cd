//! Contract tests for what the Flamenco Blender add-on calls: every response must satisfy
//! the add-on's strict generated client — required fields present, right JSON types, valid
//! enum values, parseable date-times. The schemas below are our own fixtures, written from
//! the OpenAPI contract the add-on speaks.
mod common;

use std::path::Path;

use castanet_manager::variables::VariableConfig;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A minimal schema language: enough for the shapes the add-on reads.
enum Schema {
    Str,
    Enum(&'static [&'static str]),
    Int,
    Bool,
    DateTime,
    Any,
    Array(&'static Schema),
    Object {
        required: &'static [(&'static str, Schema)],
        optional: &'static [(&'static str, Schema)],
    },
}

use Schema::*;

fn check(value: &Value, schema: &Schema, at: &str) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{at}: expected {what}, got {value}"));
    match schema {
        Str => value
            .as_str()
            .map(|_| ())
            .map_or_else(|| fail("a string"), Ok),
        Enum(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => Ok(()),
            _ => fail(&format!("one of {allowed:?}")),
        },
        Int => value
            .as_i64()
            .map(|_| ())
            .map_or_else(|| fail("an integer"), Ok),
        Bool => value
            .as_bool()
            .map(|_| ())
            .map_or_else(|| fail("a boolean"), Ok),
        DateTime => match value.as_str().map(chrono::DateTime::parse_from_rfc3339) {
            Some(Ok(_)) => Ok(()),
            _ => fail("an RFC 3339 date-time"),
        },
        Any => Ok(()),
        Array(items) => {
            let Some(array) = value.as_array() else {
                return fail("an array");
            };
            array
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| check(item, items, &format!("{at}[{i}]")))
        }
        Object { required, optional } => {
            let Some(object) = value.as_object() else {
                return fail("an object");
            };
            for (key, schema) in *required {
                let field = object
                    .get(*key)
                    .ok_or_else(|| format!("{at}: required field {key} missing in {value}"))?;
                check(field, schema, &format!("{at}.{key}"))?;
            }
            for (key, schema) in *optional {
                if let Some(field) = object.get(*key) {
                    check(field, schema, &format!("{at}.{key}"))?;
                }
            }
            Ok(())
        }
    }
}

const FLAMENCO_VERSION: Schema = Object {
    required: &[
        ("version", Str),
        ("shortversion", Str),
        ("name", Str),
        ("git", Str),
    ],
    optional: &[],
};

const SHARED_STORAGE: Schema = Object {
    required: &[
        ("location", Str),
        ("audience", Enum(&["users", "workers"])),
        ("platform", Str),
        ("shamanEnabled", Bool),
    ],
    optional: &[],
};

const SETTING: Schema = Object {
    required: &[
        ("key", Str),
        ("type", Enum(&["string", "int32", "float", "bool"])),
    ],
    optional: &[
        (
            "subtype",
            Enum(&["file_path", "dir_path", "file_name", "hashed_file_path"]),
        ),
        ("choices", Array(&Str)),
        (
            "propargs",
            Object {
                required: &[],
                optional: &[],
            },
        ),
        ("description", Any),
        ("label", Any),
        ("default", Any),
        ("eval", Str),
        (
            "evalInfo",
            Object {
                required: &[("showLinkButton", Bool), ("description", Str)],
                optional: &[],
            },
        ),
        ("visible", Enum(&["visible", "hidden", "submission", "web"])),
        ("required", Bool),
        ("editable", Bool),
    ],
};

const JOB_TYPES: Schema = Object {
    required: &[(
        "job_types",
        Array(&Object {
            required: &[
                ("name", Str),
                ("label", Str),
                ("settings", Array(&SETTING)),
                ("etag", Str),
            ],
            optional: &[("description", Str)],
        }),
    )],
    optional: &[],
};

const TAGS: Schema = Object {
    required: &[(
        "tags",
        Array(&Object {
            required: &[("name", Str)],
            optional: &[("id", Str), ("description", Str)],
        }),
    )],
    optional: &[],
};

const JOB_STATUSES: &[&str] = &[
    "active",
    "canceled",
    "completed",
    "failed",
    "paused",
    "pause-requested",
    "queued",
    "cancel-requested",
    "requeueing",
    "under-construction",
];

const JOB: Schema = Object {
    required: &[
        ("name", Str),
        ("type", Str),
        ("priority", Int),
        ("submitter_platform", Str),
        ("id", Str),
        ("created", DateTime),
        ("updated", DateTime),
        ("status", Enum(JOB_STATUSES)),
        ("activity", Str),
        ("steps_completed", Int),
        ("steps_total", Int),
    ],
    optional: &[
        ("type_etag", Str),
        (
            "settings",
            Object {
                required: &[],
                optional: &[],
            },
        ),
        (
            "metadata",
            Object {
                required: &[],
                optional: &[],
            },
        ),
        (
            "storage",
            Object {
                required: &[],
                optional: &[("shaman_checkout_id", Str)],
            },
        ),
        ("worker_tag", Str),
        ("delete_requested_at", DateTime),
        ("initial_status", Enum(JOB_STATUSES)),
    ],
};

const ERROR: Schema = Object {
    required: &[("code", Int), ("message", Str)],
    optional: &[],
};

const SHAMAN_REQUIREMENTS: Schema = Object {
    required: &[(
        "files",
        Array(&Object {
            required: &[
                ("sha", Str),
                ("size", Int),
                ("path", Str),
                ("status", Enum(&["unknown", "uploading", "stored"])),
            ],
            optional: &[],
        }),
    )],
    optional: &[],
};

fn assert_valid(value: &Value, schema: &Schema, what: &str) {
    if let Err(problem) = check(value, schema, what) {
        panic!("{problem}");
    }
}

#[tokio::test]
async fn every_add_on_call_answers_in_the_shape_its_client_requires() {
    let m = common::start().await;
    let (status, version) = m.get("/api/v3/version").await;
    assert_eq!(status, 200);
    assert_valid(&version, &FLAMENCO_VERSION, "version");

    for platform in ["linux", "windows", "darwin"] {
        let (status, storage) = m
            .get(&format!(
                "/api/v3/configuration/shared-storage/users/{platform}"
            ))
            .await;
        assert_eq!(status, 200);
        assert_valid(&storage, &SHARED_STORAGE, "shared-storage");
    }

    let (status, types) = m.get("/api/v3/jobs/types").await;
    assert_eq!(status, 200);
    assert_valid(&types, &JOB_TYPES, "job_types");

    m.post("/api/v3/worker-mgt/tags", &json!({ "name": "gpu" }))
        .await;
    let (status, tags) = m.get("/api/v3/worker-mgt/tags").await;
    assert_eq!(status, 200);
    assert_valid(&tags, &TAGS, "tags");

    // The job check with the add-on's dummy blend file, then the submission.
    let etag = types["job_types"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["name"] == "echo-sleep-test"))
        .map(|t| t["etag"].clone())
        .expect("echo-sleep-test listed");
    let mut submission = common::echo_sleep_job(2, 0);
    submission["type_etag"] = etag;
    submission["initial_status"] = json!("paused");
    submission["settings"]["blendfile"] = json!("dummy-for-job-check.blend");
    let (status, body) = m.post("/api/v3/jobs/check", &submission).await;
    assert_eq!(status, 204, "{body}");
    let (status, job) = m.post("/api/v3/jobs", &submission).await;
    assert_eq!(status, 200);
    assert_valid(&job, &JOB, "job");
    assert_eq!(job["status"], "paused");

    // Errors the add-on parses as `Error`.
    submission["type_etag"] = json!("stale");
    let (status, error) = m.post("/api/v3/jobs/check", &submission).await;
    assert_eq!(status, 412);
    assert_valid(&error, &ERROR, "412 error");
    let (status, error) = m.post_raw("/api/v3/jobs", "{not json").await;
    assert_eq!(status, 400);
    assert_valid(&error, &ERROR, "400 error");

    let (status, needed) = m
        .post(
            "/api/v3/shaman/checkout/requirements",
            &json!({ "files": [ { "sha": "ab".repeat(32), "size": 3, "path": "scene.blend" } ] }),
        )
        .await;
    assert_eq!(status, 200);
    assert_valid(&needed, &SHAMAN_REQUIREMENTS, "requirements");
    m.manager.shutdown().await.unwrap();
}

/// The add-on's "is the .blend already inside job storage?" check (BAT v2 packer, Blender
/// 5.1+): both paths resolved, then one must lie under the other. A file inside is submitted
/// as it is; anything else is uploaded through Shaman.
fn add_on_sees_inside(blendfile: &Path, location: &str) -> bool {
    let resolve = |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    resolve(blendfile).starts_with(resolve(Path::new(location)))
}

async fn storage_location(m: &common::TestManager, platform: &str) -> String {
    let (status, storage) = m
        .get(&format!(
            "/api/v3/configuration/shared-storage/users/{platform}"
        ))
        .await;
    assert_eq!(status, 200, "{storage}");
    assert_valid(&storage, &SHARED_STORAGE, "shared-storage");
    storage["location"].as_str().expect("location").to_string()
}

/// With Shaman on, Flamenco reports its effective storage path: the checkout folder, which
/// is what `{jobs}` expands to. A .blend saved elsewhere on the share must not look "inside",
/// or the add-on would submit it unpacked instead of uploading it.
#[tokio::test]
async fn with_shaman_the_storage_location_is_the_checkout_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let farm = std::path::absolute(dir.path()).unwrap();
    let m = common::start_configured(dir, |config| {
        config
            .shaman
            .locations
            .insert("windows".into(), r"S:\render".into());
        // The share's parent as a two-way path, mounted elsewhere on macOS.
        let on_macs = VariableConfig {
            is_twoway: true,
            all: Some(farm.to_string_lossy().into_owned()),
            darwin: Some("/Volumes/farm".into()),
            ..VariableConfig::default()
        };
        config.variables.insert("farm".into(), on_macs);
    })
    .await;
    let platform = castanet_manager::variables::manager_platform();
    let location = storage_location(&m, &platform).await;
    let (_, variables) = m
        .get(&format!("/api/v3/configuration/variables/users/{platform}"))
        .await;
    assert_eq!(variables["jobs"]["value"], location.as_str(), "{{jobs}}");
    let (_, configuration) = m.get("/api/v3/configuration").await;
    assert_eq!(configuration["storageLocation"], location.as_str());
    assert_eq!(configuration["shamanEnabled"], true);
    let share = m.dir.path().join("castanet-shared");
    assert_eq!(
        Path::new(&location),
        std::path::absolute(share.join("jobs")).unwrap()
    );

    // A .blend saved on the share but outside the checkout folder gets uploaded.
    let project = share.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("scene.blend"), b"BLENDER").unwrap();
    assert!(!add_on_sees_inside(&project.join("scene.blend"), &location));

    // Shaman's checkouts are made inside: `{jobs}/<checkoutPath>/scene.blend` is the job's file
    // (a symlink into the file store, so the folder is what lies inside).
    let content = b"BLENDER-v304".to_vec();
    let sha = hex::encode(Sha256::digest(&content));
    let size = content.len();
    let uploaded = m
        .http
        .post(format!("{}/api/v3/shaman/files/{sha}/{size}", m.url))
        .header("X-Shaman-Can-Defer-Upload", "false")
        .body(content)
        .send()
        .await
        .unwrap();
    assert!(uploaded.status().is_success(), "{}", uploaded.status());
    let files = json!([{ "sha": sha, "size": size, "path": "scene.blend" }]);
    let (status, checkout) = m
        .post(
            "/api/v3/shaman/checkout/create",
            &json!({ "files": files, "checkoutPath": "shot-010" }),
        )
        .await;
    assert_eq!(status, 200, "{checkout}");
    let checkout_path = checkout["checkoutPath"].as_str().expect("checkoutPath");
    let checkout_dir = Path::new(&location).join(checkout_path);
    assert!(
        checkout_dir.join("scene.blend").is_file(),
        "{checkout_dir:?}"
    );
    assert!(add_on_sees_inside(&checkout_dir, &location));

    // `[shaman.locations]` names the share on other platforms; the checkout folder is under it.
    assert_eq!(storage_location(&m, "windows").await, r"S:\render\jobs");
    // Without an entry, the two-way variables map it, as they map `{jobs}` for workers.
    assert_eq!(
        storage_location(&m, "darwin").await,
        "/Volumes/farm/castanet-shared/jobs"
    );
    // `{jobs}` in the variables a client on another platform reads is that same place, not
    // the manager's own path.
    for (platform, jobs) in [
        ("windows", r"S:\render\jobs"),
        ("darwin", "/Volumes/farm/castanet-shared/jobs"),
    ] {
        let (_, variables) = m
            .get(&format!("/api/v3/configuration/variables/users/{platform}"))
            .await;
        assert_eq!(variables["jobs"]["value"], jobs, "{platform}: {variables}");
    }
    m.manager.shutdown().await.unwrap();
}

/// Without Shaman the add-on copies files to the share itself: the location is the share.
#[tokio::test]
async fn without_shaman_the_storage_location_is_the_share() {
    let dir = tempfile::tempdir().expect("temp dir");
    let m = common::start_configured(dir, |config| {
        config.shaman.enabled = false;
        config
            .shaman
            .locations
            .insert("windows".into(), r"S:\render".into());
    })
    .await;
    let platform = castanet_manager::variables::manager_platform();
    let location = storage_location(&m, &platform).await;
    let share = std::path::absolute(m.dir.path().join("castanet-shared")).unwrap();
    assert_eq!(Path::new(&location), share);
    let (_, variables) = m
        .get(&format!("/api/v3/configuration/variables/users/{platform}"))
        .await;
    assert_eq!(variables["jobs"]["value"], location.as_str(), "{{jobs}}");
    let (_, configuration) = m.get("/api/v3/configuration").await;
    assert_eq!(configuration["storageLocation"], location.as_str());
    assert_eq!(configuration["shamanEnabled"], false);
    assert_eq!(storage_location(&m, "windows").await, r"S:\render");
    m.manager.shutdown().await.unwrap();
}

#[test]
fn the_checker_itself_catches_missing_fields_wrong_types_and_bad_enums() {
    assert!(
        check(
            &json!({ "version": "1", "shortversion": "1", "name": "x" }),
            &FLAMENCO_VERSION,
            "v"
        )
        .is_err()
    );
    assert!(check(&json!({ "code": "400", "message": "m" }), &ERROR, "e").is_err());
    let bad_enum = json!({ "location": "/x", "audience": "artists", "platform": "linux", "shamanEnabled": true });
    assert!(check(&bad_enum, &SHARED_STORAGE, "s").is_err());
    let bad_time = json!({
        "name": "n", "type": "t", "priority": 1, "submitter_platform": "", "id": "i", "created": "yesterday",
        "updated": "2026-01-01T00:00:00Z", "status": "queued", "activity": "", "steps_completed": 0, "steps_total": 0,
    });
    assert!(check(&bad_time, &JOB, "j").is_err());
}
