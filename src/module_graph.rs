//! A test that the modules of `src/` depend on each other in one direction
//! only: among the children of any module (the crate's top-level modules,
//! `call`'s, `agent`'s...), no two depend on each other, directly or round
//! a loop. A cycle is how a module stops being one concept.
//!
//! Read from the source text: a file's references (`crate::a::b`,
//! `super::x`, `self::y`, and their `{…}` groups) are resolved to the
//! module tree that the files and folders of `src/` make, and each becomes
//! an edge between the two siblings under which the referring and the
//! referred module part ways. Written by hand because no crate checks this
//! for a single-crate project (cargo-modules draws graphs for people to
//! read; it does not fail a build).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module, as the path of its names from the crate root.
type ModPath = Vec<String>;

/// Every module of the crate and the file that defines it.
fn modules(src: &Path) -> BTreeMap<ModPath, PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![(src.to_path_buf(), Vec::new())];
    while let Some((dir, at)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut sub = at.clone();
                sub.push(name);
                stack.push((path, sub));
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut module = at.clone();
                if !["mod", "lib", "main"].contains(&stem) {
                    module.push(stem.to_string());
                }
                found.insert(module, path);
            }
        }
    }
    found
}

/// The module paths `text` (the file of `module`) refers to, as written:
/// `crate::…`, `super::…` and `self::…`, with `{a, b::c}` groups expanded
/// to their first names.
fn references(module: &[String], text: &str) -> Vec<ModPath> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let pattern =
        regex::Regex::new(r"\b(crate|super|self)((?:::(?:[A-Za-z_][A-Za-z0-9_]*|\{[^}]*\}))+)")
            .unwrap_or_else(|e| panic!("the pattern is valid: {e}"));
    let mut out = Vec::new();
    for found in pattern.captures_iter(&code) {
        let base: ModPath = match &found[1] {
            "crate" => Vec::new(),
            "self" => module.to_vec(),
            _ => module[..module.len().saturating_sub(1)].to_vec(),
        };
        // `a::b::{c, d::e}`: the path up to the group, then one head per item.
        let (path, group) = match found[2].split_once('{') {
            Some((path, group)) => (path, Some(group.trim_end_matches('}'))),
            None => (&found[2], None),
        };
        let mut head = base;
        head.extend(
            path.split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
        let heads: Vec<ModPath> = match group {
            None => vec![head],
            Some(items) => items
                .split(',')
                .filter_map(|item| item.split("::").next().map(str::trim))
                .filter(|name| !name.is_empty())
                .map(|name| {
                    let mut p = head.clone();
                    p.push(name.to_string());
                    p
                })
                .collect(),
        };
        out.extend(heads);
    }
    out
}

/// Edges between siblings: (parent, from-child, to-child).
fn sibling_edges(src: &Path) -> BTreeSet<(ModPath, String, String)> {
    let all = modules(src);
    let mut edges = BTreeSet::new();
    for (module, file) in &all {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for target in references(module, &text) {
            // The longest prefix of the reference that is a module.
            let Some(target) = (1..=target.len())
                .rev()
                .map(|n| target[..n].to_vec())
                .find(|p| all.contains_key(p))
            else {
                continue;
            };
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if let (Some(from), Some(to)) = (module.get(common), target.get(common)) {
                edges.insert((module[..common].to_vec(), from.clone(), to.clone()));
            }
        }
    }
    edges
}

/// The cycles among the children of each module, as lists of names.
fn cycles(edges: &BTreeSet<(ModPath, String, String)>) -> Vec<(ModPath, Vec<String>)> {
    let mut by_parent: BTreeMap<&ModPath, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for (parent, from, to) in edges {
        by_parent
            .entry(parent)
            .or_default()
            .entry(from)
            .or_default()
            .push(to);
    }
    let mut found = Vec::new();
    for (parent, graph) in by_parent {
        // A node is on a cycle when it can reach itself.
        let reaches = |from: &str| {
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&str> = graph.get(from).cloned().unwrap_or_default();
            while let Some(n) = todo.pop() {
                if seen.insert(n) {
                    todo.extend(graph.get(n).cloned().unwrap_or_default());
                }
            }
            seen
        };
        let on_cycle: Vec<String> = graph
            .keys()
            .filter(|n| reaches(n).contains(*n))
            .map(|n| n.to_string())
            .collect();
        if !on_cycle.is_empty() {
            found.push((parent.clone(), on_cycle));
        }
    }
    found
}

#[test]
fn no_module_depends_on_its_own_dependents() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = sibling_edges(&src);
    assert!(
        edges
            .iter()
            .any(|(p, f, t)| p.is_empty() && f == "call" && t == "engine"),
        "the reader finds the edges it should: {edges:?}"
    );
    let found = cycles(&edges);
    assert!(
        found.is_empty(),
        "modules in a cycle (under the parent named first): {found:?}\nedges: {:?}",
        edges
            .iter()
            .filter(|(p, f, _)| found.iter().any(|(q, names)| q == p && names.contains(f)))
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_reader_sees_a_cycle_when_there_is_one() {
    let edge = |from: &str, to: &str| (vec!["x".to_string()], from.to_string(), to.to_string());
    let edges = BTreeSet::from([
        edge("a", "b"),
        edge("b", "c"),
        edge("c", "a"),
        edge("c", "d"),
    ]);
    assert_eq!(
        cycles(&edges),
        [(
            vec!["x".to_string()],
            vec!["a".into(), "b".into(), "c".into()]
        )]
    );
    let module: ModPath = vec!["call".into(), "session".into()];
    let refs = references(
        &module,
        "use super::{machine::Call, registry};\nuse crate::engine::Event; // crate::nope",
    );
    assert_eq!(
        refs,
        [
            vec!["call".to_string(), "machine".into()],
            vec!["call".to_string(), "registry".into()],
            vec!["engine".to_string(), "Event".into()],
        ]
    );
}
