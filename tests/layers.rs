//! The crate's modules import each other without cycles, so each layer reads on its own:
//! `cli` > `server` > `config` > `gateway` > `delivery` > `upstream` > leaves (docs/design.md).
//!
//! Two graphs are checked, both read from the `crate::` and `super::` paths in `src/` (unit-test
//! modules left out: a test may build its fixtures with a higher layer):
//! - the top-level modules (`gateway` -> `store` when a file under `src/gateway/` names
//!   `crate::store`);
//! - within each directory module, its files (`gateway/deliver.rs` -> `gateway/dedup.rs`), with
//!   names that `mod.rs` re-exports resolved to the file that defines them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's text without its `#[cfg(test)]` modules and without comments.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = String::new();
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if skip_depth.is_none() {
            if trimmed.starts_with("#[cfg(test)]") {
                pending_cfg_test = true;
                continue;
            }
            if pending_cfg_test && trimmed.starts_with("mod ") && trimmed.ends_with('{') {
                skip_depth = Some(depth);
            }
            pending_cfg_test = false;
        }
        let code_part = line.split("//").next().unwrap_or("");
        let opens = code_part.matches('{').count();
        let closes = code_part.matches('}').count();
        if skip_depth.is_none() {
            out.push_str(code_part);
            out.push('\n');
        }
        depth = (depth + opens).saturating_sub(closes);
        if skip_depth.is_some_and(|d| depth <= d) && closes > 0 {
            skip_depth = None;
        }
    }
    out
}

/// The first identifiers of every path after `prefix` (`prefix::a`, `prefix::{a, b::c}`).
fn heads(code: &str, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

/// A cycle in `graph`, if there is one, as the list of its nodes.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut c = stack[start..].to_vec();
                c.push(node.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// The module a file under `src/` belongs to at `level` (0: top level).
fn module_at(rel: &Path, level: usize) -> Option<String> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    parts.get(level).cloned()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files() -> Vec<(PathBuf, String)> {
    let mut paths = Vec::new();
    sources(&src(), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = code(&p);
            (p.strip_prefix(src()).unwrap().to_path_buf(), text)
        })
        .collect()
}

fn top_level_graph(files: &[(PathBuf, String)]) -> Graph {
    let modules: BTreeSet<String> = files.iter().filter_map(|(p, _)| module_at(p, 0)).collect();
    let mut graph = Graph::new();
    for (path, text) in files {
        let Some(from) = module_at(path, 0) else {
            continue;
        };
        let edges = graph.entry(from.clone()).or_default();
        for to in heads(text, "crate::") {
            if to != from && modules.contains(&to) {
                edges.insert(to);
            }
        }
    }
    graph
}

/// Per directory module: its files (not `mod.rs`) and the edges between them.
fn sibling_graphs(files: &[(PathBuf, String)]) -> BTreeMap<PathBuf, Graph> {
    let mut graphs = BTreeMap::new();
    for (path, text) in files {
        if path.file_name().is_some_and(|n| n == "mod.rs") {
            let dir = path.parent().unwrap().to_path_buf();
            // Names mod.rs re-exports, by the sibling that defines them.
            let mut owner: BTreeMap<String, String> = BTreeMap::new();
            for line in text.lines() {
                let Some(rest) = line.trim().strip_prefix("pub use self::") else {
                    continue;
                };
                let file: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                for name in heads(rest, &format!("{file}::")) {
                    owner.insert(name, file.clone());
                }
                if let Some(alias) = rest.split(" as ").nth(1) {
                    owner.insert(alias.trim_end_matches(';').trim().to_string(), file.clone());
                }
            }
            let siblings: BTreeSet<String> = files
                .iter()
                .filter(|(p, _)| {
                    p.parent() == Some(dir.as_path())
                        || p.parent().and_then(Path::parent) == Some(dir.as_path())
                })
                .filter_map(|(p, _)| module_at(p.strip_prefix(&dir).ok()?, 0))
                .filter(|m| m != "mod")
                .collect();
            let mut graph = Graph::new();
            for (p, t) in files {
                let Ok(inner) = p.strip_prefix(&dir) else {
                    continue;
                };
                let Some(from) = module_at(inner, 0).filter(|m| m != "mod") else {
                    continue;
                };
                // Only the sibling's own file, or its mod.rs: deeper files use `super::` for
                // their own parent.
                let depth = inner.iter().count();
                let is_own = depth == 1 || (depth == 2 && inner.ends_with("mod.rs"));
                if !is_own {
                    continue;
                }
                let edges = graph.entry(from.clone()).or_default();
                for name in heads(t, "super::") {
                    let to = if siblings.contains(&name) {
                        Some(name)
                    } else {
                        owner.get(&name).cloned()
                    };
                    if let Some(to) = to.filter(|to| *to != from) {
                        edges.insert(to);
                    }
                }
            }
            graphs.insert(dir, graph);
        }
    }
    graphs
}

#[test]
fn top_level_modules_have_no_import_cycle() {
    let graph = top_level_graph(&files());
    assert!(graph.contains_key("gateway") && graph.contains_key("verify"));
    if let Some(c) = cycle(&graph) {
        panic!("import cycle between modules: {}", c.join(" -> "));
    }
}

#[test]
fn files_within_a_module_have_no_import_cycle() {
    let graphs = sibling_graphs(&files());
    assert!(graphs.contains_key(Path::new("gateway")));
    for (dir, graph) in &graphs {
        if let Some(c) = cycle(graph) {
            panic!("import cycle in src/{}/: {}", dir.display(), c.join(" -> "));
        }
    }
}

/// The layers named in docs/design.md, top first: a module may use only those after it.
#[test]
fn layers_import_only_downwards() {
    const ORDER: &[&str] = &["cli", "server", "config", "gateway", "delivery", "upstream"];
    let graph = top_level_graph(&files());
    for (i, upper) in ORDER.iter().enumerate() {
        for lower in &ORDER[i + 1..] {
            let uses = graph.get(*lower).is_some_and(|e| e.contains(*upper));
            assert!(!uses, "{lower} imports {upper}, a layer above it");
        }
    }
}

/// The signature doctor is a leaf beside `verify`: it uses the verifiers and secrets, nothing
/// above them (docs/design.md).
#[test]
fn the_doctor_is_a_leaf() {
    let graph = top_level_graph(&files());
    let uses = graph.get("doctor").cloned().unwrap_or_default();
    let allowed: BTreeSet<String> = ["verify", "secret"].map(String::from).into();
    assert!(uses.is_subset(&allowed), "doctor imports {uses:?}");
    assert!(uses.contains("verify"));
}

/// The checker itself finds what it must: a cycle, a grouped import, a test module skipped.
#[test]
fn the_checker_sees_cycles_groups_and_skips_tests() {
    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("a".into());
    assert_eq!(cycle(&g), Some(vec!["a".into(), "b".into(), "a".into()]));
    g.get_mut("b").unwrap().clear();
    assert_eq!(cycle(&g), None);
    assert_eq!(
        heads(
            "use crate::{store::X, limit};\nlet x = crate::verify::f();",
            "crate::"
        ),
        ["store", "limit", "verify"]
    );
    assert_eq!(heads("notcrate::x", "crate::"), Vec::<String>::new());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f.rs");
    std::fs::write(
        &f,
        "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n    fn f() { if x { } }\n}\n",
    )
    .unwrap();
    assert_eq!(heads(&code(&f), "crate::"), ["a"]);
}
