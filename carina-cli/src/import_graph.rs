//! The crate's modules import each other without a circle: a test that reads `src/**/*.rs`, takes
//! every path that names a module of this crate (`crate::...`, `super::...`, `self::...`, and a
//! file's own child modules by name, in `use` groups too) as an edge from the file that writes it
//! to the file that holds the module, and fails on a cycle, naming it.
//!
//! Why a test rather than a review rule: modules that import each other in a loop cannot be read,
//! tested or split one at a time, and such a loop grows one harmless-looking `use` at a time.
//!
//! Edges are between files: an inline module (`mod fleet { ... }` in `summary.rs`, `mod tests`)
//! belongs to the file it is written in, so `use super::*` in a file's tests is no edge. Comments,
//! string and character literals are skipped before paths are read. Declaring a child module
//! (`mod build;`) is structure, not an edge; using it (`build::build(...)`) is one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A module's path below the crate root: `[]` for `lib.rs`, `["compare", "build"]` for
/// `compare/build.rs`.
type Module = Vec<String>;

/// Which files each file imports from, by module path.
type Graph = BTreeMap<Module, BTreeSet<Module>>;

/// The module a source file under `src/` holds, from its path relative to `src/`; `None` for the
/// binary's root (`main.rs`), which is another crate.
fn module_of(rel: &Path) -> Option<Module> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop()?;
    let stem = file.strip_suffix(".rs")?;
    match (parts.is_empty(), stem) {
        (true, "lib") => Some(Vec::new()),
        (true, "main") => None,
        (_, "mod") => Some(parts),
        _ => {
            parts.push(stem.to_owned());
            Some(parts)
        }
    }
}

/// Every `.rs` file under `dir` with its module, and its text.
fn read_tree(dir: &Path) -> Vec<(Module, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(Module, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let rel = path.strip_prefix(root).unwrap();
                if let Some(m) = module_of(rel) {
                    out.push((m, std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The code of a source file with comments and the insides of string, byte-string and character
/// literals blanked out, so that a path in a doc comment or a message is no edge. Lifetimes
/// (`'a`) are left as they are.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let prev_ident = i > 0 && is_ident(b[i - 1]);
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(b' ');
        } else if !prev_ident && raw_string_start(&b[i..]).is_some() {
            let (open, hashes) = raw_string_start(&b[i..]).unwrap();
            i += open;
            let mut close = vec![b'"'];
            close.extend(std::iter::repeat_n(b'#', hashes));
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.extend_from_slice(b"\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.extend_from_slice(b"\"\"");
        } else if b[i] == b'\'' && (b.get(i + 1) == Some(&b'\\') || b.get(i + 2) == Some(&b'\'')) {
            // A character literal (`'"'`, `'\''`, `'\u{1F600}'`); `'a` alone is a lifetime.
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.extend_from_slice(b"' '");
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `(length of the opening, number of #)` when `b` starts a raw (byte) string: `r"`, `r#"`,
/// `br##"`, ...
fn raw_string_start(b: &[u8]) -> Option<(usize, usize)> {
    let r = match b {
        [b'r', ..] => 1,
        [b'b', b'r', ..] => 2,
        _ => return None,
    };
    let hashes = b[r..].iter().take_while(|&&c| c == b'#').count();
    (b.get(r + hashes) == Some(&b'"')).then_some((r + hashes + 1, hashes))
}

/// The identifier at `*i`, if any, moving past it.
fn ident(b: &[u8], i: &mut usize) -> Option<String> {
    let start = *i;
    while *i < b.len() && is_ident(b[*i]) {
        *i += 1;
    }
    (*i > start).then(|| String::from_utf8_lossy(&b[start..*i]).into_owned())
}

fn skip_space(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

/// The paths of a use tree or path at `*i`, each as its segments: `a::{b, c::d}` gives
/// `[a, b]` and `[a, c, d]`; a glob ends the path at its prefix (`self` is resolved later).
fn paths(b: &[u8], i: &mut usize) -> Vec<Vec<String>> {
    skip_space(b, i);
    if b.get(*i) == Some(&b'{') {
        *i += 1;
        let mut all = Vec::new();
        loop {
            skip_space(b, i);
            match b.get(*i) {
                None => break,
                Some(b'}') => {
                    *i += 1;
                    break;
                }
                Some(b',') => *i += 1,
                Some(_) => {
                    let before = *i;
                    all.extend(paths(b, i));
                    if *i == before {
                        // Something no path starts with (an attribute's `#`): step over it.
                        *i += 1;
                    }
                }
            }
        }
        return all;
    }
    let Some(first) = ident(b, i) else {
        if b.get(*i) == Some(&b'*') {
            *i += 1;
        }
        return vec![Vec::new()];
    };
    let mut j = *i;
    skip_space(b, &mut j);
    if b[j..].starts_with(b"::") {
        *i = j + 2;
        return paths(b, i)
            .into_iter()
            .map(|rest| std::iter::once(first.clone()).chain(rest).collect())
            .collect();
    }
    // `h as k`: the alias names nothing of the crate.
    if b[j..].starts_with(b"as") && b.get(j + 2).is_some_and(|c| c.is_ascii_whitespace()) {
        let mut k = j + 2;
        skip_space(b, &mut k);
        if ident(b, &mut k).is_some() {
            *i = k;
        }
    }
    vec![vec![first]]
}

/// The modules of this crate that the code of the file holding `module` names, as absolute
/// paths (not yet cut down to files). `children`: the modules the file declares with `mod x;`.
fn references(code: &str, module: &Module) -> Vec<Module> {
    let b = code.as_bytes();
    let children: BTreeSet<String> = {
        let mut set = BTreeSet::new();
        let mut i = 0;
        while let Some(at) = code[i..].find("mod ") {
            let mut j = i + at + 4;
            let ok = i + at == 0 || !is_ident(b[i + at - 1]);
            if let (true, Some(name)) = (ok, ident(b, &mut j)) {
                skip_space(b, &mut j);
                if b.get(j) == Some(&b';') {
                    set.insert(name);
                }
            }
            i += at + 4;
        }
        set
    };
    // The inline modules the scan is in: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => {
                depth += 1;
                i += 1;
                continue;
            }
            b'}' => {
                if inline.last().is_some_and(|&(_, d)| d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
                continue;
            }
            c if !is_ident(c) => {
                i += 1;
                continue;
            }
            _ => {}
        }
        // An identifier that starts here: not the tail of one, nor a segment after `::` or `$`.
        let preceded = i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b':' || b[i - 1] == b'$');
        let start = i;
        let Some(word) = ident(b, &mut i) else {
            i += 1;
            continue;
        };
        if preceded {
            continue;
        }
        let mut j = i;
        skip_space(b, &mut j);
        if word == "mod" {
            let mut k = j;
            if let Some(name) = ident(b, &mut k) {
                skip_space(b, &mut k);
                if b.get(k) == Some(&b'{') {
                    inline.push((name, depth + 1));
                }
            }
            continue;
        }
        let relative = word == "super" || word == "self" || children.contains(&word);
        if !(word == "crate" || relative) || !b[j..].starts_with(b"::") {
            continue;
        }
        // The module the code is in: the file's, and the inline modules around it.
        let here: Module = module
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        let mut k = start;
        for path in paths(b, &mut k) {
            let mut abs = if path[0] == "crate" {
                Vec::new()
            } else {
                here.clone()
            };
            for seg in path.into_iter().skip_while(|s| s == "crate") {
                match seg.as_str() {
                    "super" => {
                        abs.pop();
                    }
                    "self" => {}
                    _ => abs.push(seg),
                }
            }
            out.push(abs);
        }
        i = k.max(i);
    }
    out
}

/// The graph of `files`: an edge from each file to the file of each module its code names (the
/// longest module path that is a file), without edges from a file to itself.
fn graph(files: &[(Module, String)]) -> Graph {
    let known: BTreeSet<&Module> = files.iter().map(|(m, _)| m).collect();
    let mut g = Graph::new();
    for (m, src) in files {
        let edges = g.entry(m.clone()).or_default();
        for path in references(&code_only(src), m) {
            let target = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| known.contains(p))
                .unwrap_or_default();
            if &target != m {
                edges.insert(target);
            }
        }
    }
    g
}

/// A cycle of `g` as its modules in order, the first repeated at the end; `None` when there is
/// none.
fn find_cycle(g: &Graph) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        g: &'a Graph,
        m: &'a Module,
        marks: &mut BTreeMap<&'a Module, Mark>,
        path: &mut Vec<&'a Module>,
    ) -> Option<Vec<Module>> {
        match marks.get(m) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = path.iter().position(|p| *p == m).unwrap();
                let mut cycle: Vec<Module> = path[from..].iter().map(|p| (*p).clone()).collect();
                cycle.push(m.clone());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(m, Mark::Open);
        path.push(m);
        for next in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, next, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(m, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    g.keys()
        .find_map(|m| visit(g, m, &mut marks, &mut Vec::new()))
}

fn name(m: &Module) -> String {
    std::iter::once("crate")
        .chain(m.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("::")
}

fn module(s: &str) -> Module {
    s.split("::")
        .filter(|p| !p.is_empty() && *p != "crate")
        .map(str::to_owned)
        .collect()
}

fn file(path: &str, src: &str) -> (Module, String) {
    (module_of(Path::new(path)).unwrap(), src.to_owned())
}

fn edges(g: &Graph) -> Vec<(String, String)> {
    g.iter()
        .flat_map(|(a, to)| to.iter().map(move |b| (name(a), name(b))))
        .collect()
}

#[test]
fn the_crate_has_no_import_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&read_tree(&src));
    // The scan sees the crate as it is: its split modules and edges known to exist (if the
    // parser stopped finding paths, an empty graph would have no cycle either).
    for (from, to) in [
        ("compare", "compare::render"),
        ("compare::build", "compare::stats"),
        ("compare::build", "compare::verdict"),
        ("compare::render", "compare::build"),
        ("compare::render", "summary"),
        ("report::html", "report::charts"),
        ("report::charts", "report::analysis"),
        ("report::html", "summary"),
        ("summary", "view"),
        ("simulate", "load"),
    ] {
        let (from, to) = (module(from), module(to));
        assert!(
            g.get(&from).is_some_and(|e| e.contains(&to)),
            "no edge {} -> {} in {:#?}",
            name(&from),
            name(&to),
            edges(&g)
        );
    }
    if let Some(cycle) = find_cycle(&g) {
        let names: Vec<String> = cycle.iter().map(name).collect();
        panic!(
            "an import circle: {} (every module in it imports the next; move what they share \
             into a module that imports none of them)",
            names.join(" -> ")
        );
    }
}

#[test]
fn a_circle_is_found_and_named() {
    let g = graph(&[
        file("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        file("a.rs", "use crate::b::f;\n"),
        file("b.rs", "pub fn f() { crate::c::g() }\n"),
        file("c.rs", "pub fn g() { let _ = crate::a::X; }\n"),
    ]);
    let cycle: Vec<String> = find_cycle(&g).unwrap().iter().map(name).collect();
    assert_eq!(
        cycle,
        ["crate::a", "crate::b", "crate::c", "crate::a"],
        "{:?}",
        edges(&g)
    );
}

#[test]
fn comments_literals_and_a_files_own_tests_make_no_edge() {
    let g = graph(&[
        file("lib.rs", "mod a;\nmod b;\n"),
        file(
            "a.rs",
            "use crate::b::f;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    fn t() { super::g(); }\n}\n",
        ),
        file(
            "b.rs",
            "//! Uses [`crate::a`].\n// crate::a::g\n/* outer /* crate::a */ crate::a */\n\
             const S: &str = \"crate::a::g\";\nconst R: &str = r#\"a \" crate::a::g\"#;\n\
             const Q: char = '\"';\nfn f<'a>(x: &'a str) -> &'a str { x }\nconst T: &str = \"\\\" crate::a\";\n",
        ),
    ]);
    assert_eq!(edges(&g), [("crate::a".into(), "crate::b".into())]);
    assert!(find_cycle(&g).is_none());
}

#[test]
fn groups_super_self_and_child_modules_resolve_to_files() {
    let g = graph(&[
        file("lib.rs", "pub mod w;\npub mod x;\n"),
        file("w.rs", "pub fn w() {}\n"),
        file(
            "x/mod.rs",
            "mod y;\nmod z;\npub use self::z::{g, h as k};\nfn run() { y::f(); }\n",
        ),
        file(
            "x/y.rs",
            "use super::z::{\n    self,\n    g,\n};\npub fn f() {}\n",
        ),
        file(
            "x/z.rs",
            "use crate::{w::*, x::y::f};\npub(crate) fn g() {}\npub(super) fn h() {}\n",
        ),
    ]);
    let want: Vec<(String, String)> = [
        ("crate::x", "crate::x::y"),
        ("crate::x", "crate::x::z"),
        ("crate::x::y", "crate::x::z"),
        ("crate::x::z", "crate::w"),
        ("crate::x::z", "crate::x::y"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(edges(&g), want);
    // y and z import each other.
    let cycle: Vec<String> = find_cycle(&g).unwrap().iter().map(name).collect();
    assert_eq!(cycle, ["crate::x::y", "crate::x::z", "crate::x::y"]);
}
