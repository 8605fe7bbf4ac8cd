//! Variable replacement and expansion, table-driven for Linux, Windows and macOS.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn two_way(linux: &str, windows: &str, darwin: &str) -> VariableConfig {
    VariableConfig {
        is_twoway: true,
        all: None,
        linux: Some(linux.to_owned()),
        windows: Some(windows.to_owned()),
        darwin: Some(darwin.to_owned()),
    }
}

/// A farm with a Linux manager: a project share on a drive letter on Windows, a render share
/// on UNC, a one-way `{hey}`.
fn farm() -> Variables {
    let configured = BTreeMap::from([
        (
            "project".to_owned(),
            two_way("/mnt/projects", "P:\\", "/Volumes/projects/"),
        ),
        (
            "render".to_owned(),
            two_way("/mnt/render", "\\\\nas\\render", "/Volumes/render"),
        ),
        (
            "shared".to_owned(),
            two_way("/srv/castanet-shared", "S:", "/Volumes/shared"),
        ),
        (
            "greeting".to_owned(),
            VariableConfig {
                all: Some("hello".to_owned()),
                windows: Some("hallo".to_owned()),
                ..VariableConfig::default()
            },
        ),
    ]);
    Variables::new(&configured, Some("/srv/castanet-shared/jobs"), LINUX)
}

#[test]
fn expansion_per_worker_platform() {
    let variables = farm();
    // (input, linux worker, windows worker, darwin worker)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("{blender}", "blender", "blender.exe", "blender"),
        ("{blenderArgs}", "-b -y", "-b -y", "-b -y"),
        ("{ffmpeg}", "ffmpeg", "ffmpeg.exe", "ffmpeg"),
        (
            "{greeting}, {greeting}!",
            "hello, hello!",
            "hallo, hallo!",
            "hello, hello!",
        ),
        // Two-way variables become paths in the worker's notation.
        (
            "{project}/shot/a.blend",
            "/mnt/projects/shot/a.blend",
            "P:\\shot\\a.blend",
            "/Volumes/projects/shot/a.blend",
        ),
        (
            "{render}/shot/######",
            "/mnt/render/shot/######",
            "\\\\nas\\render\\shot\\######",
            "/Volumes/render/shot/######",
        ),
        // The implicit {jobs} is in the manager's notation; the two-way `shared` maps it.
        (
            "{jobs}/job-1/a.blend",
            "/srv/castanet-shared/jobs/job-1/a.blend",
            "S:\\jobs\\job-1\\a.blend",
            "/Volumes/shared/jobs/job-1/a.blend",
        ),
        // A drive letter alone gets its root.
        (
            "{shared}",
            "/srv/castanet-shared",
            "S:\\",
            "/Volumes/shared",
        ),
        // Plain manager-notation paths are mapped too.
        (
            "/mnt/projects/x.blend",
            "/mnt/projects/x.blend",
            "P:\\x.blend",
            "/Volumes/projects/x.blend",
        ),
        // Not a path component boundary: untouched.
        (
            "/mnt/projectsX/a",
            "/mnt/projectsX/a",
            "/mnt/projectsX/a",
            "/mnt/projectsX/a",
        ),
        // Unknown variables stay; strings nothing matched keep their slashes.
        ("{hey}/haha", "{hey}/haha", "{hey}/haha", "{hey}/haha"),
        (
            "pad=ceil(iw/2)*2",
            "pad=ceil(iw/2)*2",
            "pad=ceil(iw/2)*2",
            "pad=ceil(iw/2)*2",
        ),
        (
            "{blender} a\\b",
            "blender a\\b",
            "blender.exe a\\b",
            "blender a\\b",
        ),
    ];
    for (input, linux, windows, darwin) in cases {
        for (platform, expected) in [(LINUX, linux), (WINDOWS, windows), (DARWIN, darwin)] {
            assert_eq!(
                &variables.expand(platform, input),
                expected,
                "{input:?} for {platform}"
            );
        }
    }
}

#[test]
fn macos_and_unknown_worker_platforms() {
    let variables = farm();
    assert_eq!(
        variables.expand("macos", "{project}/a"),
        "/Volumes/projects/a"
    );
    assert_eq!(
        variables.expand("plan9", "{greeting} {blenderArgs} {blender}"),
        "hello -b -y {blender}"
    );
}

#[test]
fn command_parameters_strings_and_string_arrays_expand() {
    let variables = farm();
    let mut parameters = json!({
        "exe": "{blender}",
        "exeArgs": "{blenderArgs}",
        "blendfile": "{project}/a.blend",
        "args": ["--render-output", "{render}/shot/######", "--threads", 4],
        "fps": 24.0,
        "nested": {"path": "{project}/x"},
        "{project}": "key untouched",
    });
    variables.expand_parameters(WINDOWS, &mut parameters);
    assert_eq!(
        parameters,
        json!({
            "exe": "blender.exe",
            "exeArgs": "-b -y",
            "blendfile": "P:\\a.blend",
            "args": ["--render-output", "\\\\nas\\render\\shot\\######", "--threads", 4],
            "fps": 24.0,
            "nested": {"path": "{project}/x"},
            "{project}": "key untouched",
        })
    );
}

#[test]
fn submission_replaces_prefixes_case_and_slash_insensitively() {
    let variables = farm();
    // (submitter platform, setting, after replacement)
    let cases: &[(&str, &str, &str)] = &[
        ("windows", "P:\\Shot\\a.blend", "{project}\\Shot\\a.blend"),
        ("windows", "p:/shot/a.blend", "{project}/shot/a.blend"),
        ("windows", "\\\\NAS\\Render\\shot", "{render}\\shot"),
        ("windows", "//nas/render/shot", "{render}/shot"),
        ("windows", "S:", "{shared}"),
        ("windows", "S:\\jobs\\x", "{shared}\\jobs\\x"),
        ("windows", "Q:\\other", "Q:\\other"),
        ("linux", "/mnt/render/shot", "{render}/shot"),
        ("linux", "/mnt/renderfarm/shot", "/mnt/renderfarm/shot"),
        ("linux", "/MNT/Projects", "{project}"),
        ("linux", "relative/mnt/render", "relative/mnt/render"),
        ("darwin", "/Volumes/projects/a", "{project}/a"),
        ("macos", "/Volumes/render/a", "{render}/a"),
        // `manager` means the manager's own platform (Linux here).
        ("manager", "/srv/castanet-shared/jobs/1", "{shared}/jobs/1"),
        // Values of other platforms do not match.
        ("linux", "P:\\shot", "P:\\shot"),
    ];
    for (platform, setting, expected) in cases {
        let mut settings = serde_json::Map::from_iter([
            ("path".to_owned(), json!(setting)),
            ("count".to_owned(), json!(3)),
        ]);
        let mut metadata = BTreeMap::from([("project".to_owned(), setting.to_string())]);
        variables.replace_two_way(platform, &mut settings, &mut metadata);
        assert_eq!(
            settings["path"],
            json!(expected),
            "{setting:?} from {platform}"
        );
        assert_eq!(settings["count"], json!(3));
        assert_eq!(metadata["project"], *expected, "metadata {setting:?}");
    }
}

#[test]
fn the_longest_matching_value_wins() {
    let configured = BTreeMap::from([
        ("storage".to_owned(), two_way("/mnt/storage", "S:", "/s")),
        (
            "renders".to_owned(),
            two_way("/mnt/storage/renders", "R:", "/r"),
        ),
    ]);
    let variables = Variables::new(&configured, None, LINUX);
    let mut settings =
        serde_json::Map::from_iter([("out".to_owned(), json!("/mnt/storage/renders/shot"))]);
    variables.replace_two_way(LINUX, &mut settings, &mut BTreeMap::new());
    assert_eq!(settings["out"], json!("{renders}/shot"));
    assert_eq!(variables.expand(WINDOWS, "{renders}/shot"), "R:\\shot");
}

#[test]
fn submission_then_hand_out_round_trips_across_platforms() {
    let variables = farm();
    let mut settings =
        serde_json::Map::from_iter([("blendfile".to_owned(), json!("P:\\Shots\\010\\anim.blend"))]);
    variables.replace_two_way(WINDOWS, &mut settings, &mut BTreeMap::new());
    let stored = settings["blendfile"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(stored, "{project}\\Shots\\010\\anim.blend");
    assert_eq!(
        variables.expand(LINUX, &stored),
        "/mnt/projects/Shots/010/anim.blend"
    );
    assert_eq!(
        variables.expand(WINDOWS, &stored),
        "P:\\Shots\\010\\anim.blend"
    );
}

#[test]
fn configured_values_override_defaults_and_jobs_is_reserved() {
    let configured = BTreeMap::from([
        (
            "blender".to_owned(),
            VariableConfig {
                linux: Some("/opt/blender/blender".to_owned()),
                ..VariableConfig::default()
            },
        ),
        (
            "jobs".to_owned(),
            VariableConfig {
                all: Some("/elsewhere".to_owned()),
                ..VariableConfig::default()
            },
        ),
    ]);
    let variables = Variables::new(&configured, Some("/srv/jobs"), LINUX);
    assert_eq!(variables.expand(LINUX, "{blender}"), "/opt/blender/blender");
    assert_eq!(
        variables.expand(WINDOWS, "{blender}"),
        "{blender}",
        "no value for windows"
    );
    assert_eq!(variables.expand(WINDOWS, "{jobs}/a"), "/srv/jobs/a");
    assert_eq!(
        variables.expand(LINUX, "{ffmpeg}"),
        "ffmpeg",
        "defaults stay"
    );
}

#[test]
fn prefix_matching_rules() {
    let cases: &[(&str, &str, Option<usize>)] = &[
        ("/a/b", "/a", Some(2)),
        ("/a", "/a", Some(2)),
        ("/ab", "/a", None),
        ("\\\\srv\\share\\x", "//SRV/share", Some(11)),
        ("C:\\x", "c:", Some(2)),
        ("C:\\x", "C:\\", Some(3)),
        ("/x", "", None),
        ("/ä/x", "/Ä", Some(3)),
        ("/a", "/a/b", None),
    ];
    for (text, prefix, expected) in cases {
        assert_eq!(
            matched_prefix_len(text, prefix),
            *expected,
            "{text:?} / {prefix:?}"
        );
    }
    assert_eq!(prefix::trim_trailing_separators("S:\\"), "S:");
    assert_eq!(prefix::trim_trailing_separators("/"), "/");
    assert_eq!(prefix::ensure_drive_absolute("S:"), "S:\\");
    assert_eq!(prefix::ensure_drive_absolute("S:jobs"), "S:\\jobs");
    assert_eq!(prefix::ensure_drive_absolute("S:\\jobs"), "S:\\jobs");
    assert_eq!(prefix::ensure_drive_absolute("\\\\srv"), "\\\\srv");
}

#[test]
fn config_tables_parse_from_toml() {
    #[derive(serde::Deserialize)]
    struct Holder {
        variables: BTreeMap<String, VariableConfig>,
    }
    let holder: Result<Holder, _> = toml::from_str(
        "[variables.project]\nis_twoway = true\nlinux = \"/mnt/p\"\nwindows = 'P:\\'\n",
    );
    let holder = holder.expect("parses");
    assert_eq!(
        holder.variables["project"],
        VariableConfig {
            is_twoway: true,
            linux: Some("/mnt/p".to_owned()),
            windows: Some("P:\\".to_owned()),
            ..VariableConfig::default()
        }
    );
    let typo: Result<Holder, _> = toml::from_str("[variables.x]\nlinx = \"/a\"\n");
    assert!(
        typo.err()
            .is_some_and(|error| error.to_string().contains("linx"))
    );
}

#[test]
fn the_default_config_file_documents_variables_and_round_trips_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("castanet-manager.toml");
    let mut config = crate::config::ManagerConfig::new_default(dir.path());
    config.variables.insert(
        "render".to_owned(),
        two_way("/mnt/render", "\\\\nas\\render", "/Volumes/render"),
    );
    config.write_commented(&path).expect("written");
    let text = std::fs::read_to_string(&path).expect("readable");
    assert!(text.contains("# [variables.blender]"), "{text}");
    let (loaded, created) =
        crate::config::ManagerConfig::load_or_create(&path).expect("loads back");
    assert!(!created);
    assert_eq!(loaded.variables, config.variables);
    let variables = Variables::from_config(&loaded);
    assert_eq!(
        variables.expand(WINDOWS, "{render}/a"),
        "\\\\nas\\render\\a"
    );
    let jobs = variables.expand(LINUX, "{jobs}");
    assert!(
        jobs.starts_with('/') && jobs.ends_with("castanet-shared/jobs"),
        "{{jobs}} is the absolute checkout directory: {jobs}"
    );
}

#[test]
fn a_worker_without_shared_storage_gets_the_managers_paths_inside_its_mirror() {
    let variables = farm();
    let mirrored = WorkerVariables::for_storage(&variables, LINUX, Some("/var/castanet/mirror/"));
    let expand = |text: &str| {
        let mut parameters = json!({ "value": text });
        mirrored.expand_parameters(&mut parameters);
        parameters["value"].as_str().map(str::to_owned)
    };
    let cases = [
        (
            "{jobs}/shot/a.blend",
            "/var/castanet/mirror/srv/castanet-shared/jobs/shot/a.blend",
        ),
        (
            "{render}/shot/######",
            "/var/castanet/mirror/mnt/render/shot/######",
        ),
        // A farm path already in the manager's notation is mirrored too.
        (
            "/mnt/projects/a.blend",
            "/var/castanet/mirror/mnt/projects/a.blend",
        ),
        (
            "/srv/castanet-shared/jobs/shot/a.blend",
            "/var/castanet/mirror/srv/castanet-shared/jobs/shot/a.blend",
        ),
        ("{blender}", "blender"),
        ("/tmp/elsewhere", "/tmp/elsewhere"),
    ];
    for (input, expected) in cases {
        assert_eq!(expand(input).as_deref(), Some(expected), "{input}");
    }
    let on_windows = WorkerVariables::for_storage(&variables, WINDOWS, Some("D:\\mirror"));
    let mut parameters = json!({ "exe": "{blender}", "file": "{project}\\a.blend" });
    on_windows.expand_parameters(&mut parameters);
    assert_eq!(parameters["exe"], "blender.exe");
    assert_eq!(parameters["file"], "D:\\mirror\\mnt\\projects\\a.blend");
    let shared = WorkerVariables::for_storage(&variables, LINUX, None);
    let mut parameters = json!({ "file": "{render}/x" });
    shared.expand_parameters(&mut parameters);
    assert_eq!(parameters["file"], "/mnt/render/x");
}
