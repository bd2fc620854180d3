//! Keeps the top-level modules in layers that run one way (DESIGN.md,
//! "Layers, one direction"): reads every source file under `src/`, builds
//! the graph of which top-level module names which (`crate::x::...`,
//! `use crate::{x, y}`), and fails on an import cycle or on an import that
//! goes up a layer, naming the modules and the files that tie them.
//!
//! Cross-module references are written `crate::...`; comments are ignored.
//! Reads files only (no cargo), and sorts everything, so it is fast and
//! its messages are the same on every run.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// The layers from the top down. A module may use modules in its own layer
/// or below, never above; a cycle inside a layer fails too. A new
/// top-level module must be placed here.
const LAYERS: &[&[&str]] = &[
    // The command line: nothing uses it.
    &["cli"],
    // The running service wires the rest: start-up, settings, reload, the
    // background schedules.
    &["service"],
    // The status page, started by the service; it reaches the service only
    // through `web::Control`.
    // The trust dashboard, on the page's sessions, roles and headers.
    &["fleet"],
    &["web"],
    // Work the page, the commands and the schedules share; the trust's
    // central log's shippers, started by the service.
    &["report", "updates", "assessment", "cluster", "ship"],
    // Resolution: transport, codec, pipeline.
    &["dns"],
    &["metrics"],
    // The status page's store (users, rules, overrides).
    &["admin"],
    &["policy"],
    &["lists"],
    &["config"],
    &["alerts"],
    &["journal"],
    // Small leaves everyone may use (testkit: the tests' scripted servers).
    &["calendar"],
    &["clock", "name", "testkit"],
];

/// Imports that go up a layer and are still to be removed, each with the
/// reason; the test says when one is no longer needed. None today.
const KNOWN_UPWARD: &[(&str, &str)] = &[];

/// Cycles still to be removed; the test says when one is gone. None today.
const KNOWN_CYCLES: &[&[&str]] = &[];

/// from -> to -> the files of `from` that name `to`.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

#[test]
fn top_level_modules_have_no_cycle_and_no_upward_import() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    let mut problems = Vec::new();
    problems.extend(unplaced_modules(&graph));
    problems.extend(upward_imports(&graph));
    problems.extend(cycles(&graph));
    problems.extend(stale_known_entries(&graph));
    assert!(
        problems.is_empty(),
        "the top-level modules must stay in layers that run one way (src/layers.rs):\n\n{}",
        problems.join("\n\n")
    );
}

#[test]
fn the_check_finds_cycles_and_upward_imports() {
    let mut graph = Graph::new();
    for (from, to) in [
        ("web", "report"),
        ("report", "web"),
        ("clock", "cli"),
        ("cli", "clock"),
    ] {
        add_edge(&mut graph, from, to);
    }
    let found = cycles(&graph);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("cli -> clock -> cli"), "{}", found[0]);
    assert!(found[1].contains("report -> web -> report"), "{}", found[1]);
    assert!(found[1].contains("src/web.rs"), "{}", found[1]);
    let upward = upward_imports(&graph);
    assert!(
        upward.iter().any(|p| p.contains("clock -> cli")),
        "{upward:?}"
    );
    assert!(
        upward.iter().any(|p| p.contains("report -> web")),
        "{upward:?}"
    );
    assert!(!upward.iter().any(|p| p.contains("web -> report")));
    // A new cycle anywhere is found, named with its modules.
    add_edge(&mut graph, "config", "lists");
    add_edge(&mut graph, "lists", "config");
    let found = cycles(&graph);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found
            .iter()
            .any(|c| c.contains("config -> lists -> config")),
        "{found:?}"
    );
    assert!(stale_known_entries(&graph).is_empty());
}

fn add_edge(graph: &mut Graph, from: &str, to: &str) {
    graph
        .entry(from.to_string())
        .or_default()
        .entry(to.to_string())
        .or_default()
        .insert(format!("src/{from}.rs"));
}

#[test]
fn references_are_read_from_paths_and_use_groups() {
    let text = "use crate::clock::Clock;\n\
                use crate::{admin::AdminStore, config};\n\
                // crate::web::nothing in a comment\n\
                let x = crate::journal::format_utc(0); /* crate::cli */\n\
                use crate::{\n    dns::{a, b},\n    report,\n};\n";
    let found: Vec<String> = referenced_modules(text).into_iter().collect();
    assert_eq!(
        found,
        ["admin", "clock", "config", "dns", "journal", "report"]
    );
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for file in source_files(src) {
        let Ok(relative) = file.strip_prefix(src) else {
            continue;
        };
        let Some(from) = top_level_module(relative) else {
            continue;
        };
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
        let shown = format!("src/{}", relative.display());
        let edges = graph.entry(from.clone()).or_default();
        for to in referenced_modules(&text) {
            if to != from {
                edges.entry(to).or_default().insert(shown.clone());
            }
        }
    }
    graph
}

/// Every `.rs` file under `dir`, sorted.
fn source_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `web/pages/log.rs` -> `web`, `report.rs` -> `report`; None for the crate
/// roots (`lib.rs`, `main.rs`) and this check.
fn top_level_module(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    match name {
        "lib" | "main" | "layers" => None,
        _ => Some(name.to_string()),
    }
}

/// The top-level modules `text` names through `crate::`, outside comments.
fn referenced_modules(text: &str) -> BTreeSet<String> {
    let code = without_comments(text);
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        // `lollipop_crate::`, `$crate::` and the like are not this crate's root.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let after = rest.trim_start();
        if let Some(group) = after.strip_prefix('{') {
            found.extend(group_heads(group));
        } else if let Some(name) = identifier(after) {
            found.insert(name.to_string());
        }
    }
    found
}

/// The first path segment of each item of a `{...}` use group (the text
/// after its opening brace).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expecting = true;
    for (index, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expecting = true,
            c if expecting && depth == 0 && !c.is_whitespace() => {
                expecting = false;
                if let Some(name) = identifier(&group[index..]) {
                    heads.push(name.to_string());
                }
            }
            _ => {}
        }
    }
    heads.retain(|name| name != "self");
    heads
}

fn identifier(text: &str) -> Option<&str> {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    (end > 0).then(|| &text[..end])
}

/// `text` with `//` and `/* */` comments blanked (string contents are kept:
/// a `//` inside a string only hides the rest of that line's text).
fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let line = rest.find("//");
        let block = rest.find("/*");
        match (line, block) {
            (Some(l), b) if b.is_none_or(|b| l < b) => {
                out.push_str(&rest[..l]);
                rest = &rest[l..];
                match rest.find('\n') {
                    Some(end) => rest = &rest[end..],
                    None => break,
                }
            }
            (_, Some(b)) => {
                out.push_str(&rest[..b]);
                rest = &rest[b + 2..];
                match rest.find("*/") {
                    Some(end) => rest = &rest[end + 2..],
                    None => break,
                }
            }
            _ => {
                out.push_str(rest);
                break;
            }
        }
    }
    out
}

fn unplaced_modules(graph: &Graph) -> Vec<String> {
    let mut modules: BTreeSet<&str> = graph.keys().map(String::as_str).collect();
    modules.extend(graph.values().flat_map(|to| to.keys().map(String::as_str)));
    modules
        .into_iter()
        .filter(|module| layer_of(module).is_none())
        .map(|module| {
            format!("module `{module}` has no layer: place it in LAYERS in src/layers.rs")
        })
        .collect()
}

fn upward_imports(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for (from, edges) in graph {
        for (to, files) in edges {
            let (Some(low), Some(high)) = (layer_of(from), layer_of(to)) else {
                continue;
            };
            let known = KNOWN_UPWARD.contains(&(from.as_str(), to.as_str()));
            if high < low && !known {
                problems.push(format!(
                    "`{from}` imports `{to}`, which is in a layer above it: {from} -> {to} in {}",
                    list(files)
                ));
            }
        }
    }
    problems
}

/// Known exceptions that no longer happen, so that the lists stay honest.
fn stale_known_entries(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for (from, to) in KNOWN_UPWARD {
        let still = graph
            .get(*from)
            .is_some_and(|edges| edges.contains_key(*to));
        if !still {
            problems.push(format!(
                "`{from}` no longer imports `{to}`: drop ({from:?}, {to:?}) from KNOWN_UPWARD"
            ));
        }
    }
    let sets = strongly_connected(graph);
    for known in KNOWN_CYCLES {
        let mut known: Vec<String> = known.iter().map(|m| m.to_string()).collect();
        known.sort_unstable();
        if !sets.contains(&known) {
            problems.push(format!(
                "the cycle between {} is gone: drop it from KNOWN_CYCLES",
                known.join(", ")
            ));
        }
    }
    problems
}

/// Each strongly connected set of modules (other than the known ones),
/// shown as one cycle through it with the files that tie each step.
fn cycles(graph: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for set in &strongly_connected(graph) {
        let known = KNOWN_CYCLES.iter().any(|known| {
            let mut known: Vec<&str> = known.to_vec();
            known.sort_unstable();
            known == set.iter().map(String::as_str).collect::<Vec<_>>()
        });
        if !known {
            problems.push(describe_cycle(graph, set));
        }
    }
    problems
}

/// The sets of two or more modules that each reach all the others, each
/// sorted.
fn strongly_connected(graph: &Graph) -> BTreeSet<Vec<String>> {
    let modules: BTreeSet<&str> = graph.keys().map(String::as_str).collect();
    let reach = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([start.to_string()]);
        while let Some(module) = queue.pop_front() {
            for next in graph.get(&module).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(next.clone()) {
                    queue.push_back(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&str, BTreeSet<String>> =
        modules.iter().map(|m| (*m, reach(m))).collect();
    let mut sets: BTreeSet<Vec<String>> = BTreeSet::new();
    for module in &modules {
        let set: Vec<String> = modules
            .iter()
            .filter(|other| {
                reachable[module].contains(**other) && reachable[**other].contains(*module)
            })
            .map(|m| m.to_string())
            .collect();
        if set.len() > 1 {
            sets.insert(set);
        }
    }
    sets
}

/// The shortest cycle from the first module of `set` back to itself.
fn describe_cycle(graph: &Graph, set: &[String]) -> String {
    let start = &set[0];
    let mut came_from: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = VecDeque::from([start.clone()]);
    let mut last = None;
    'search: while let Some(module) = queue.pop_front() {
        for next in graph.get(&module).into_iter().flat_map(|e| e.keys()) {
            if !set.contains(next) {
                continue;
            }
            if next == start {
                last = Some(module.clone());
                break 'search;
            }
            if !came_from.contains_key(next) {
                came_from.insert(next.clone(), module.clone());
                queue.push_back(next.clone());
            }
        }
    }
    // Back from the last step to the start, then turned round.
    let mut back = Vec::new();
    let mut at = last.unwrap_or_else(|| start.clone());
    while &at != start {
        back.push(at.clone());
        at = came_from.get(&at).cloned().unwrap_or_else(|| start.clone());
    }
    back.reverse();
    let mut path = vec![start.clone()];
    path.extend(back);
    path.push(start.clone());
    let mut text = format!("import cycle: {}", path.join(" -> "));
    for step in path.windows(2) {
        let files = &graph[&step[0]][&step[1]];
        text.push_str(&format!("\n  {} -> {}: {}", step[0], step[1], list(files)));
    }
    text
}

fn list(files: &BTreeSet<String>) -> String {
    files.iter().cloned().collect::<Vec<_>>().join(", ")
}
