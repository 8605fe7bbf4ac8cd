//! `docs/architecture.md` names every source module of every crate in its module index, so a
//! newcomer finds each file explained; a module added without its line fails here, with the
//! list of what is missing.
use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`, as paths relative to `base`, sorted.
fn modules(base: &Path, dir: &Path, found: &mut Vec<String>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            modules(base, &path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path.strip_prefix(base).expect("under the crate's src");
            found.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The text of the index section of crate `name`: from its `### Crate `crates/name`` heading
/// to the next heading.
fn section<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let heading = format!("### Crate `crates/{name}`");
    let start = doc.find(&heading)? + heading.len();
    let rest = &doc[start..];
    let end = rest
        .match_indices("\n#")
        .map(|(at, _)| at)
        .next()
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

#[test]
fn every_module_of_every_crate_is_in_the_architecture_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc_path = root.join("docs/architecture.md");
    let doc = std::fs::read_to_string(&doc_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", doc_path.display()));
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("cannot list crates/")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.join("src").is_dir())
        .collect();
    crates.sort();
    assert!(crates.len() >= 5, "crates found: {crates:?}");
    let mut missing = Vec::new();
    for krate in crates {
        let name = krate
            .file_name()
            .expect("a crate directory name")
            .to_string_lossy()
            .into_owned();
        let Some(section) = section(&doc, &name) else {
            missing.push(format!("the section \"### Crate `crates/{name}`\""));
            continue;
        };
        let src = krate.join("src");
        let mut found = Vec::new();
        modules(&src, &src, &mut found);
        for module in found {
            // A row of its own: a mention in another module's line does not explain it.
            if !section.contains(&format!("\n| `{module}` |")) {
                missing.push(format!("crates/{name}/src/{module}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/architecture.md's module index lacks (add a line saying what each is for):\n  {}",
        missing.join("\n  ")
    );
}
