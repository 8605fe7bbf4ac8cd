//! No import cycles between the manager's modules: at every level of the module tree
//! (the crate's top-level modules, the store's submodules, …) the modules that share a
//! parent depend on each other in one direction only, so each can be read, tested and
//! changed with what it depends on and nothing that depends on it.
//!
//! The check reads the source: every `crate::…`, `super::…` and `self::…` path outside
//! comments, strings and `#[cfg(test)]` modules is one dependency of the module it is in.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModulePath = Vec<String>;

/// One dependency between two sibling modules, with where it was found.
#[derive(Clone, Debug)]
struct Edge {
    from: String,
    to: String,
    example: String,
}

#[test]
fn no_import_cycles_between_manager_modules() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = module_files(&source);
    assert!(files.len() > 50, "the manager's modules were found");
    let modules: BTreeSet<ModulePath> = files.iter().map(|(m, _)| m.clone()).collect();
    // Edges grouped by the parent module of the two siblings they join.
    let mut levels: BTreeMap<ModulePath, Vec<Edge>> = BTreeMap::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(file).expect("source file is readable");
        for reference in references(&code_only(&text)) {
            let Some(target) = resolve(module, &reference, &modules) else {
                continue;
            };
            let shared = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if shared >= module.len() || shared >= target.len() {
                continue; // a module using its own parent or children is no sibling edge
            }
            levels
                .entry(module[..shared].to_vec())
                .or_default()
                .push(Edge {
                    from: module[shared].clone(),
                    to: target[shared].clone(),
                    example: format!(
                        "{} uses {}",
                        file.strip_prefix(&source).unwrap_or(file).display(),
                        reference.join("::")
                    ),
                });
        }
    }
    let mut cycles = Vec::new();
    for (parent, edges) in &levels {
        for cycle in find_cycles(edges) {
            let place = if parent.is_empty() {
                "crate".to_string()
            } else {
                parent.join("::")
            };
            cycles.push(format!("in {place}: {}", cycle.join("; ")));
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles between manager modules:\n{}",
        cycles.join("\n")
    );
}

/// The cycle checker itself finds a loop of three and passes a chain.
#[test]
fn the_checker_finds_loops_and_passes_chains() {
    let edge = |from: &str, to: &str| Edge {
        from: from.into(),
        to: to.into(),
        example: format!("{from} uses {to}"),
    };
    let chain = [edge("a", "b"), edge("b", "c"), edge("a", "c")];
    assert!(find_cycles(&chain).is_empty());
    let looped = [
        edge("a", "b"),
        edge("b", "c"),
        edge("c", "a"),
        edge("d", "a"),
    ];
    let cycles = find_cycles(&looped);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(cycles[0].len(), 3, "{cycles:?}");
    let paths = references(
        "use crate::{store::{self, Store}, events::Event};\nlet x = super::super::a::b(1);",
    );
    let paths: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "crate::store",
            "crate::store::Store",
            "crate::events::Event",
            "super::super::a::b"
        ]
    );
    assert_eq!(
        code_only(
            "// crate::a\nlet s = \"crate::b\"; /* crate::c */ crate::d\n#[cfg(test)]\nmod tests { crate::e }\nf()"
        ),
        "\nlet s = \"\";  crate::d\n\nf()"
    );
}

/// (module path, file) of every source file; `mod.rs` and `lib.rs` name their directory's
/// module; files of `#[cfg(test)]` modules (`tests.rs`, `tests/`) are left out.
fn module_files(source: &Path) -> Vec<(ModulePath, PathBuf)> {
    let mut found = Vec::new();
    let mut pending = vec![source.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let entries = std::fs::read_dir(&directory).expect("source directory is readable");
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name == "tests" || name == "tests.rs" {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let Some(stem) = name.strip_suffix(".rs") else {
                continue;
            };
            let relative = path.strip_prefix(source).expect("below the source root");
            let mut module: ModulePath = relative
                .parent()
                .into_iter()
                .flat_map(|p| p.components())
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if !matches!(stem, "mod" | "lib" | "main") {
                module.push(stem.to_string());
            }
            found.push((module, path));
        }
    }
    found.sort();
    found
}

/// The source without comments, string contents and `#[cfg(test)] mod … { … }` blocks.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if at(&chars, i, "//") {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if at(&chars, i, "/*") {
            i += 2;
            while i < chars.len() && !at(&chars, i, "*/") {
                i += 1;
            }
            i += 2;
        } else if chars[i] == 'r' && matches!(chars.get(i + 1), Some('#') | Some('"')) {
            // A raw string: r"…", r#"…"#, …
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(chars[i]);
                i += 1;
                continue;
            }
            let end: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            i += 2 + hashes;
            while i < chars.len() && !at(&chars, i, &end) {
                i += 1;
            }
            i += end.len();
            out.push_str("\"\"");
        } else if chars[i] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if chars[i] == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3; // a char literal such as '"' or '{'
        } else if chars[i] == '\'' && chars.get(i + 1) == Some(&'\\') {
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if at(&chars, i, "#[cfg(test)]") {
            i += 12;
            // Skip the test module: up to its `;` or its matching closing brace.
            while i < chars.len() && chars[i] != '{' && chars[i] != ';' {
                i += 1;
            }
            if chars.get(i) == Some(&'{') {
                let mut depth = 0;
                while i < chars.len() {
                    match chars[i] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            i += 1;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Every path starting at `crate`, `super` or `self`, with `use` groups spelt out.
fn references(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':';
        if starts_word && is_ident(chars[i]) {
            let start = i;
            let word = ident_at(&chars, &mut i);
            if matches!(word.as_str(), "crate" | "super" | "self") && at(&chars, i, "::") {
                i = start;
                found.extend(path_tree(&chars, &mut i, Vec::new()));
            }
        } else {
            i += 1;
        }
    }
    found
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn at(chars: &[char], i: usize, text: &str) -> bool {
    text.chars()
        .enumerate()
        .all(|(k, c)| chars.get(i + k) == Some(&c))
}

fn skip_space(chars: &[char], i: &mut usize) {
    while *i < chars.len() && chars[*i].is_whitespace() {
        *i += 1;
    }
}

fn ident_at(chars: &[char], i: &mut usize) -> String {
    let mut word = String::new();
    while *i < chars.len() && is_ident(chars[*i]) {
        word.push(chars[*i]);
        *i += 1;
    }
    word
}

/// One path (segments joined by `::`) after `prefix`, each `{a, b::c}` group spelt out.
fn path_tree(chars: &[char], i: &mut usize, prefix: Vec<String>) -> Vec<Vec<String>> {
    let mut path = prefix;
    loop {
        skip_space(chars, i);
        if chars.get(*i) == Some(&'{') {
            *i += 1;
            let mut all = Vec::new();
            loop {
                skip_space(chars, i);
                match chars.get(*i) {
                    Some('}') | None => {
                        *i += 1;
                        return all;
                    }
                    Some(',') => *i += 1,
                    Some('*') => *i += 1,
                    _ => {
                        let before = *i;
                        all.extend(path_tree(chars, i, path.clone()));
                        if *i == before {
                            *i += 1; // not a path (e.g. `as` rename residue): move on
                        }
                    }
                }
            }
        }
        let word = ident_at(chars, i);
        if word.is_empty() {
            return if path.is_empty() {
                Vec::new()
            } else {
                vec![path]
            };
        }
        if word != "self" || path.is_empty() {
            path.push(word);
        }
        skip_space(chars, i);
        if at(chars, *i, "::") {
            *i += 2;
            continue;
        }
        // `a as b`: the rename is not a module.
        if at(chars, *i, "as ") {
            *i += 3;
            skip_space(chars, i);
            ident_at(chars, i);
        }
        return vec![path];
    }
}

/// The module a reference made in `module` lands in: the longest known module its
/// absolute path starts with.
fn resolve(
    module: &ModulePath,
    reference: &[String],
    modules: &BTreeSet<ModulePath>,
) -> Option<ModulePath> {
    let mut absolute: ModulePath = match reference.first()?.as_str() {
        "crate" => Vec::new(),
        "self" => module.clone(),
        "super" => module.clone(),
        _ => return None,
    };
    let mut rest = &reference[1..];
    if reference[0] == "super" {
        absolute.pop();
        while rest.first().is_some_and(|s| s == "super") {
            absolute.pop();
            rest = &rest[1..];
        }
    }
    absolute.extend(rest.iter().cloned());
    (1..=absolute.len())
        .rev()
        .map(|n| absolute[..n].to_vec())
        .find(|candidate| modules.contains(candidate))
}

/// Each strongly connected group of two or more modules, as its edges' examples.
fn find_cycles(edges: &[Edge]) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for edge in edges {
        next.entry(&edge.from).or_default().insert(&edge.to);
        next.entry(&edge.to).or_default();
    }
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut pending = vec![from];
        while let Some(node) = pending.pop() {
            if node == to {
                return true;
            }
            if seen.insert(node) {
                pending.extend(next[node].iter().copied());
            }
        }
        false
    };
    let mut groups: Vec<BTreeSet<&str>> = Vec::new();
    for &node in next.keys() {
        if groups.iter().any(|g| g.contains(node)) {
            continue;
        }
        let group: BTreeSet<&str> = next
            .keys()
            .copied()
            .filter(|&other| reaches(node, other) && reaches(other, node))
            .collect();
        if group.len() > 1 {
            groups.push(group);
        }
    }
    groups
        .iter()
        .map(|group| {
            let mut shown = BTreeMap::new();
            for edge in edges {
                if group.contains(edge.from.as_str()) && group.contains(edge.to.as_str()) {
                    shown
                        .entry((edge.from.clone(), edge.to.clone()))
                        .or_insert_with(|| edge.example.clone());
                }
            }
            shown.into_values().collect()
        })
        .collect()
}
