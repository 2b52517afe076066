//! No import cycles: no module imports one that imports it back, neither between the crate's
//! top-level modules (`gen`, `surv`, `pipeline`, …) nor between sibling submodules of one
//! top-level module (`pipeline::bars`, `pipeline::reader`, …).
//!
//! The test reads the library's sources (the module tree from `src/lib.rs`), collects every
//! `crate::…`, `super::…` and `self::…` path outside comments and strings (re-exports followed
//! to the module that defines the item), builds both graphs and lists every elementary cycle
//! with the line that makes each of its edges.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Cycles still to remove, each from its smallest module (`&["a", "b"]`: a → b → a). Empty:
/// the two that lived in `src/pipeline` (`pipeline` ↔ `surv` through `pipeline::bars::MarkGen`,
/// `pipeline::bars` ↔ `pipeline::reader`) went with the engine rewrite. The test fails when a
/// listed cycle no longer exists, so the list only shrinks; a new cycle is to be broken (move the
/// shared type into a module of its own), not listed.
const CYCLES_TO_REMOVE: &[&[&str]] = &[];

/// A module path, `["surv", "alert"]` for `crate::surv::alert`.
type ModPath = Vec<String>;

/// Where an edge comes from: file, line and the path as written.
type Evidence = String;

/// A graph between named modules; each edge keeps the first place that makes it.
type Graph = BTreeMap<String, BTreeMap<String, Evidence>>;

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let (top, siblings) = graphs(&Crate::read(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))));
    let mut found: Vec<(Vec<String>, &Graph)> =
        cycles(&top).into_iter().map(|c| (c, &top)).collect();
    for g in siblings.values() {
        found.extend(cycles(g).into_iter().map(|c| (c, g)));
    }
    let allowed: BTreeSet<Vec<String>> = CYCLES_TO_REMOVE
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    let mut problems = Vec::new();
    for (cycle, g) in &found {
        if !allowed.contains(cycle) {
            problems.push(format!("new import cycle:\n{}", explain(cycle, g)));
        }
    }
    let present: BTreeSet<&Vec<String>> = found.iter().map(|(c, _)| c).collect();
    for gone in allowed.iter().filter(|c| !present.contains(c)) {
        problems.push(format!(
            "{} no longer forms a cycle: remove it from CYCLES_TO_REMOVE",
            gone.join(" -> ")
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_cycle_finder_finds_every_elementary_cycle() {
    let g = graph(&[
        ("a", "b"),
        ("b", "a"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "e"),
    ]);
    assert_eq!(
        cycles(&g),
        vec![names(&["a", "b"]), names(&["a", "b", "c"])]
    );
    // A self-reference is not a cycle between modules; a chain is not a cycle at all.
    assert!(cycles(&graph(&[("a", "a"), ("a", "b"), ("b", "c")])).is_empty());
    // A cycle not through the smallest node is still found, rotated to its smallest.
    assert_eq!(
        cycles(&graph(&[("a", "z"), ("z", "y"), ("y", "z")])),
        vec![names(&["y", "z"])]
    );
}

#[test]
fn paths_are_read_from_code_only_and_through_use_groups() {
    let src = r##"
        use crate::{gen::{self, SplitMix64}, surv::alert::Alert as A};
        // crate::commented::Out
        /* crate::block /* nested */ crate::still_comment */
        let s = "crate::in_string"; let r = r#"crate::raw"#; let c = '"'; let l: &'static str = "";
        fn f() { super::sibling::f::<u8>(); self::child::g(); $crate::mac::m!(); }
    "##;
    let clean = strip(src);
    let got: Vec<String> = references(&clean, &names(&["top", "here"]))
        .into_iter()
        .map(|r| r.path.join("::"))
        .collect();
    assert_eq!(
        got,
        [
            "gen",
            "gen::SplitMix64",
            "surv::alert::Alert",
            "top::sibling::f",
            "top::here::child::g",
            "mac::m"
        ]
    );
    assert_eq!(clean.lines().count(), src.lines().count(), "lines are kept");
}

#[test]
fn a_cycle_in_real_looking_sources_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let write = |p: &str, s: &str| {
        let p = dir.path().join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    };
    write("lib.rs", "pub mod a; pub mod b;");
    write("a/mod.rs", "pub mod x; pub mod y; pub use y::Y;");
    write("a/x.rs", "use super::Y; pub struct X;");
    write("a/y.rs", "pub struct Y(super::x::X, crate::b::B);");
    write("b.rs", "pub struct B; fn f() -> crate::a::Y { todo!() }");
    let (top, siblings) = graphs(&Crate::read(dir.path()));
    assert_eq!(cycles(&top), vec![names(&["a", "b"])]);
    assert_eq!(cycles(&siblings["a"]), vec![names(&["a::x", "a::y"])]);
    let why = explain(&names(&["a::x", "a::y"]), &siblings["a"]);
    assert!(
        why.contains("a/x.rs:1") && why.contains("a/y.rs:1"),
        "{why}"
    );
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn graph(edges: &[(&str, &str)]) -> Graph {
    let mut g = Graph::new();
    for (a, b) in edges {
        g.entry(a.to_string())
            .or_default()
            .insert(b.to_string(), String::new());
    }
    g
}

/// The cycle with the place that makes each of its edges.
fn explain(cycle: &[String], g: &Graph) -> String {
    let mut out = String::new();
    for (i, from) in cycle.iter().enumerate() {
        let to = &cycle[(i + 1) % cycle.len()];
        out += &format!("  {from} -> {to}   ({})\n", g[from][to]);
    }
    out
}

/// Every elementary cycle of `g` (no self-loops), each starting at its smallest node, sorted.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in g.keys() {
        let mut path = vec![start.clone()];
        walk(g, start, &mut path, &mut out);
    }
    out.sort();
    out
}

/// Extends `path` through nodes greater than its start; records each way back to the start.
fn walk(g: &Graph, start: &String, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let last = path.last().unwrap().clone();
    for next in g.get(&last).into_iter().flat_map(|e| e.keys()) {
        if next == start && path.len() > 1 {
            out.push(path.clone());
        } else if next > start && !path.contains(next) {
            path.push(next.clone());
            walk(g, start, path, out);
            path.pop();
        }
    }
}

/// The top-level graph, and one graph between the sibling submodules of each top-level module.
fn graphs(krate: &Crate) -> (Graph, BTreeMap<String, Graph>) {
    let (mut top, mut siblings) = (Graph::new(), BTreeMap::<String, Graph>::new());
    for (module, file) in &krate.files {
        for r in references(&file.clean, module) {
            let target = krate.resolve(&r.path);
            let at = format!("{}:{}: {}", file.shown, r.line, r.path.join("::"));
            if let (Some(a), Some(b)) = (module.first(), target.first()) {
                if a != b {
                    top.entry(a.clone())
                        .or_default()
                        .entry(b.clone())
                        .or_insert(at.clone());
                }
            }
            if module.len() >= 2
                && target.len() >= 2
                && module[0] == target[0]
                && module[1] != target[1]
            {
                let (a, b) = (module[..2].join("::"), target[..2].join("::"));
                let g = siblings.entry(module[0].clone()).or_default();
                g.entry(a).or_default().entry(b).or_insert(at);
            }
        }
    }
    (top, siblings)
}

/// One source file of the library.
struct File {
    /// Its path as shown in messages (relative to `src`).
    shown: String,
    /// Its text without comments, strings and character literals (same lines).
    clean: String,
}

/// The library's modules (those declared from `lib.rs`, one per file) and their re-exports.
struct Crate {
    files: BTreeMap<ModPath, File>,
    /// `(module, name) → path` for every `pub use` naming a path inside the crate.
    reexports: BTreeMap<(ModPath, String), ModPath>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut krate = Crate {
            files: BTreeMap::new(),
            reexports: BTreeMap::new(),
        };
        krate.add(src, Vec::new(), src.join("lib.rs"));
        let reexports: Vec<_> = krate
            .files
            .iter()
            .flat_map(|(m, f)| {
                reexports(&f.clean, m)
                    .into_iter()
                    .map(move |(n, p)| ((m.clone(), n), p))
            })
            .collect();
        for (key, path) in reexports {
            // A relative `pub use child::X` names a child module of the re-exporting one.
            let child: ModPath = key.0.iter().chain(path.first()).cloned().collect();
            let path = if !path.is_empty() && krate.files.contains_key(&child) {
                key.0.iter().chain(&path).cloned().collect()
            } else {
                path
            };
            krate.reexports.insert(key, path);
        }
        krate
    }

    /// Reads `file` as `module` and every module it declares with `mod name;`.
    fn add(&mut self, src: &Path, module: ModPath, file: PathBuf) {
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let clean = strip(&text);
        let is_root = module.is_empty() || file.file_name().is_some_and(|n| n == "mod.rs");
        let dir = if is_root {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for child in declared_modules(&clean) {
            let flat = dir.join(format!("{child}.rs"));
            let path = if flat.exists() {
                flat
            } else {
                dir.join(&child).join("mod.rs")
            };
            let mut m = module.clone();
            m.push(child);
            self.add(src, m, path);
        }
        let shown = file.strip_prefix(src).unwrap().display().to_string();
        self.files.insert(module, File { shown, clean });
    }

    /// The module that defines what `path` names: its longest prefix that is a module, through
    /// that module's re-exports.
    fn resolve(&self, path: &[String]) -> ModPath {
        let mut path = path.to_vec();
        for _ in 0..8 {
            let n = (0..=path.len())
                .rev()
                .find(|&n| self.files.contains_key(&path[..n]))
                .unwrap();
            match path
                .get(n)
                .and_then(|name| self.reexports.get(&(path[..n].to_vec(), name.clone())))
            {
                Some(to) => path = to.iter().chain(&path[n + 1..]).cloned().collect(),
                None => return path[..n].to_vec(),
            }
        }
        panic!("re-exports of {path:?} go round")
    }
}

/// The text with comments, string and character literals blanked (newlines kept).
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, s: &[char]| {
        out.extend(s.iter().map(|&ch| if ch == '\n' { '\n' } else { ' ' }));
    };
    let mut i = 0;
    while i < c.len() {
        let end = literal_end(&c, i);
        if end > i {
            blank(&mut out, &c[i..end]);
            i = end;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// If a comment or literal starts at `i`, the index just past it; else `i`.
fn literal_end(c: &[char], i: usize) -> usize {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let ident_before = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
    match (at(i), at(i + 1)) {
        ('/', '/') => (i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len()),
        ('/', '*') => block_comment_end(c, i),
        ('"', _) => quoted_end(c, i + 1, '"'),
        ('\'', '\\') => quoted_end(c, i + 1, '\''),
        ('\'', _) if at(i + 2) == '\'' => i + 3,
        ('r', '#' | '"') if !ident_before => raw_string_end(c, i + 1).unwrap_or(i),
        ('b', 'r') if !ident_before => raw_string_end(c, i + 2).unwrap_or(i),
        _ => i,
    }
}

fn block_comment_end(c: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    c.len()
}

/// Past the closing `close` of a literal whose body starts at `i` (backslash escapes).
fn quoted_end(c: &[char], mut i: usize, close: char) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            ch if ch == close => return i + 1,
            _ => i += 1,
        }
    }
    c.len()
}

/// Past a raw string whose hashes start at `i` (`#…#"…"#…#`), if one starts there.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let hashes = c[i..].iter().take_while(|&&ch| ch == '#').count();
    if c.get(i + hashes) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat('#').take(hashes))
        .collect();
    let body = i + hashes + 1;
    Some(
        (body..c.len())
            .find(|&k| c[k..].starts_with(&close))
            .map_or(c.len(), |k| k + close.len()),
    )
}

/// The names of `mod name;` declarations (inline `mod name { … }` bodies stay in their file).
fn declared_modules(clean: &str) -> Vec<String> {
    let words = tokens(clean);
    words
        .windows(3)
        .filter(|w| w[0] == "mod" && w[2] == ";")
        .map(|w| w[1].clone())
        .collect()
}

/// Identifiers and single punctuation characters.
fn tokens(clean: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for ch in clean.chars() {
        if ch.is_alphanumeric() || ch == '_' {
            word.push(ch);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if !ch.is_whitespace() {
            out.push(ch.to_string());
        }
    }
    out.extend((!word.is_empty()).then_some(word));
    out
}

/// A path found in a file: absolute (from the crate root), and its line.
struct Reference {
    path: ModPath,
    line: usize,
}

/// Every `crate::`, `$crate::`, `super::` and `self::` path in `clean` (a file of `module`),
/// `use` groups expanded, made absolute. Inline modules (`mod tests { … }`) shift `super`.
fn references(clean: &str, module: &[String]) -> Vec<Reference> {
    let c: Vec<char> = clean.chars().collect();
    let inline = inline_modules(&c);
    let mut out = Vec::new();
    for i in 0..c.len() {
        let ident_before = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        let Some(kw) = ["crate", "super", "self"]
            .into_iter()
            .find(|k| starts(&c, i, k))
        else {
            continue;
        };
        if ident_before || !starts(&c, i + kw.len(), "::") {
            continue;
        }
        let mut here: ModPath = module.to_vec();
        here.extend(
            inline
                .iter()
                .filter(|m| m.0 < i && i < m.1)
                .map(|m| m.2.clone()),
        );
        let base: ModPath = match kw {
            "crate" => Vec::new(),
            "super" => here[..here.len().saturating_sub(1)].to_vec(),
            _ => here,
        };
        let line = 1 + c[..i].iter().filter(|&&ch| ch == '\n').count();
        let mut j = i + kw.len() + 2;
        for (path, _) in use_tree(&c, &mut j, base) {
            out.push(Reference { path, line });
        }
    }
    out
}

fn starts(c: &[char], i: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(k, ch)| c.get(i + k) == Some(&ch))
}

/// `(start, end, name)` of every inline `mod name { … }`, by character index.
fn inline_modules(c: &[char]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let boundary = i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        if boundary && starts(c, i, "mod") && c.get(i + 3).is_some_and(|ch| ch.is_whitespace()) {
            let mut j = i + 3;
            skip_ws(c, &mut j);
            let name = ident(c, &mut j);
            skip_ws(c, &mut j);
            if !name.is_empty() && c.get(j) == Some(&'{') {
                out.push((i, matching_brace(c, j), name));
            }
        }
        i += 1;
    }
    out
}

fn matching_brace(c: &[char], open: usize) -> usize {
    let mut depth = 0;
    for (k, &ch) in c.iter().enumerate().skip(open) {
        depth += (ch == '{') as i32 - (ch == '}') as i32;
        if depth == 0 {
            return k;
        }
    }
    c.len()
}

fn skip_ws(c: &[char], j: &mut usize) {
    while c.get(*j).is_some_and(|ch| ch.is_whitespace()) {
        *j += 1;
    }
}

fn ident(c: &[char], j: &mut usize) -> String {
    let start = *j;
    while c
        .get(*j)
        .is_some_and(|&ch| ch.is_alphanumeric() || ch == '_')
    {
        *j += 1;
    }
    c[start..*j].iter().collect()
}

/// The paths of a use tree (or a plain path) starting at `j` under `prefix`, each with its
/// `as` alias: `{a::{b, c}, d as e}` gives `a::b`, `a::c`, `d` (alias `e`). `self` in a group
/// names the group's prefix.
fn use_tree(c: &[char], j: &mut usize, mut prefix: ModPath) -> Vec<(ModPath, Option<String>)> {
    loop {
        skip_ws(c, j);
        if c.get(*j) == Some(&'{') {
            *j += 1;
            let mut out = Vec::new();
            loop {
                skip_ws(c, j);
                match c.get(*j) {
                    Some('}') | None => break,
                    Some(',') => *j += 1,
                    _ => out.extend(use_tree(c, j, prefix.clone())),
                }
            }
            *j += 1;
            return out;
        }
        let name = ident(c, j);
        if name.is_empty() || name == "self" {
            return vec![(prefix, None)];
        }
        prefix.push(name);
        skip_ws(c, j);
        if starts(c, *j, "::") && c.get(*j + 2) != Some(&'<') {
            *j += 2;
            continue;
        }
        let mut k = *j;
        let alias = (ident(c, &mut k) == "as").then(|| {
            skip_ws(c, &mut k);
            ident(c, &mut k)
        });
        if alias.is_some() {
            *j = k;
        }
        return vec![(prefix, alias)];
    }
}

/// `(name, path)` of each `pub use` (any visibility) of a file of `module`: crate-absolute for
/// `crate`/`super`/`self` paths, else as written (a child module or an outside crate).
fn reexports(clean: &str, module: &[String]) -> Vec<(String, ModPath)> {
    let c: Vec<char> = clean.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word_at = |k: usize, w: &str| {
        starts(&c, k, w) && (k == 0 || !(c[k - 1].is_alphanumeric() || c[k - 1] == '_'))
    };
    while let Some(k) = (i..c.len()).find(|&k| word_at(k, "pub")) {
        let mut j = k + 3;
        skip_ws(&c, &mut j);
        if c.get(j) == Some(&'(') {
            j = (j..c.len()).find(|&m| c[m] == ')').unwrap_or(c.len()) + 1;
            skip_ws(&c, &mut j);
        }
        i = k + 3;
        if !(starts(&c, j, "use") && c.get(j + 3).is_some_and(|ch| ch.is_whitespace())) {
            continue;
        }
        j += 3;
        skip_ws(&c, &mut j);
        let mut probe = j;
        let first = ident(&c, &mut probe);
        let base: ModPath = match first.as_str() {
            "crate" => Vec::new(),
            "super" => module[..module.len().saturating_sub(1)].to_vec(),
            "self" => module.to_vec(),
            _ => {
                probe = j;
                Vec::new()
            }
        };
        if probe != j {
            probe += 2; // the `::` after the keyword
        }
        for (path, alias) in use_tree(&c, &mut probe, base) {
            if let Some(name) = alias.or_else(|| path.last().cloned()) {
                out.push((name, path));
            }
        }
    }
    out
}
