//! The shape of the code, checked: reads the `use` lines and `crate::` paths of every
//! file under `src/`, and fails when two files import each other (directly or round a
//! loop) or when a module imports one that the layer table in docs/architecture.md does
//! not allow it to. Test modules (everything from a file's first `#[cfg(test)]`) are
//! not read: a test may reach anywhere.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// A module path below `crate`, e.g. `["cluster", "ops"]`.
type ModPath = Vec<String>;

/// Every source file of the library, by module path.
struct Crate {
    files: BTreeMap<ModPath, Source>,
}

struct Source {
    path: PathBuf,
    /// `true` for `mod.rs` and `lib.rs`: their module is their folder.
    is_folder: bool,
    /// The code before the first `#[cfg(test)]`, with comments removed.
    code: String,
}

impl Crate {
    fn read(src: &Path) -> Self {
        let mut files = BTreeMap::new();
        let mut pending = vec![src.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs")
                    || path == src.join("main.rs")
                    || path == src.join("architecture.rs")
                {
                    continue;
                }
                let relative = path.strip_prefix(src).unwrap();
                let mut module: ModPath = relative
                    .with_extension("")
                    .iter()
                    .map(|s| s.to_string_lossy().into_owned())
                    .collect();
                let is_folder = matches!(module.last().map(String::as_str), Some("mod" | "lib"));
                if is_folder {
                    module.pop();
                }
                let text = fs::read_to_string(&path).unwrap();
                let code = without_tests(&without_comments(&text));
                files.insert(
                    module,
                    Source {
                        path: relative.to_path_buf(),
                        is_folder,
                        code,
                    },
                );
            }
        }
        Self { files }
    }

    /// The file `path` (a full path from `crate`) lands in, following `pub use`
    /// re-exports of a folder's `mod.rs`, so an import of `crate::auth::Claims` counts as
    /// one of `auth/token.rs`, where `Claims` lives.
    fn resolve(&self, path: &[String], depth: usize) -> Option<ModPath> {
        let mut module: ModPath = Vec::new();
        let mut rest = path;
        while let Some((first, tail)) = rest.split_first() {
            let mut next = module.clone();
            next.push(first.clone());
            if !self.files.contains_key(&next) {
                break;
            }
            module = next;
            rest = tail;
        }
        if let (Some(item), true) = (rest.first(), depth < 8) {
            let source = self.files.get(&module)?;
            if source.is_folder {
                for (name, target) in reexports(&source.code, &module) {
                    if &name == item {
                        let mut target = target;
                        target.extend(rest[1..].iter().cloned());
                        return self.resolve(&target, depth + 1);
                    }
                }
            }
        }
        Some(module)
    }

    /// Each file's imports of other files (not of its own sub-modules, which it holds).
    fn imports(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut graph = BTreeMap::new();
        for (module, source) in &self.files {
            let mut targets = BTreeSet::new();
            for path in paths_in(&source.code, module) {
                if let Some(target) = self.resolve(&path, 0) {
                    if target != *module && !target.starts_with(module) {
                        targets.insert(target);
                    }
                }
            }
            graph.insert(module.clone(), targets);
        }
        graph
    }
}

/// The code up to the first inline test module (`#[cfg(test)] mod … {`); a
/// `#[cfg(test)] mod x;` declaration does not end it.
fn without_tests(code: &str) -> String {
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]") {
        let start = from + at;
        let rest = code[start + "#[cfg(test)]".len()..].trim_start();
        let line = rest.lines().next().unwrap_or("");
        if line.starts_with("mod ") && line.trim_end().ends_with('{') {
            return code[..start].to_string();
        }
        from = start + 1;
    }
    code.to_string()
}

/// Removes `//` comments (doc comments included) line by line; string literals holding
/// `//` are rare enough in `use` lines not to matter.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The full paths a file names: every `use` tree expanded, and every inline
/// `crate::…`/`super::…` path. `pub use` of a module's own children is a re-export, not
/// an import, and is left to [`reexports`].
fn paths_in(code: &str, module: &ModPath) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for statement in use_statements(code) {
        for path in expand_tree(&statement.tree) {
            if let Some(full) = absolute(&path, module) {
                paths.push(full);
            }
        }
    }
    for prefix in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(prefix) {
            let start = from + at;
            from = start + prefix.len();
            let before = code[..start].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = code[start..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let segments: Vec<String> = path
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if let Some(full) = absolute(&segments, module) {
                paths.push(full);
            }
        }
    }
    paths
}

struct UseStatement {
    public: bool,
    tree: String,
}

/// The `use …;` statements of a file, whitespace removed.
fn use_statements(code: &str) -> Vec<UseStatement> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let start = from + at;
        from = start + 4;
        let before = code[..start].trim_end();
        let public = before.ends_with("pub") || before.ends_with("pub(crate)");
        let line_start = code[..start].rfind('\n').map_or(0, |n| n + 1);
        let lead = code[line_start..start].trim();
        if !(lead.is_empty() || lead == "pub" || lead == "pub(crate)") {
            continue;
        }
        let Some(end) = code[start..].find(';') else {
            break;
        };
        // `a as b` is kept as `a@b`, then all whitespace goes.
        let words: Vec<&str> = code[start + 4..start + end].split_whitespace().collect();
        let tree: String = words.join(" ").replace(" as ", "@").replace(' ', "");
        found.push(UseStatement { public, tree });
        from = start + end;
    }
    found
}

/// `a::{b,c::{d,e}}` → `a::b`, `a::c::d`, `a::c::e` (aliases dropped, `self` folded).
fn expand_tree(tree: &str) -> Vec<Vec<String>> {
    fn split_top(list: &str) -> Vec<&str> {
        let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
        for (i, c) in list.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&list[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&list[start..]);
        parts.into_iter().filter(|p| !p.is_empty()).collect()
    }
    let Some(open) = tree.find('{') else {
        let plain = tree.split('@').next().unwrap_or(tree);
        let mut segments: Vec<String> = plain
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if segments.last().is_some_and(|s| s == "self") {
            segments.pop();
        }
        return vec![segments];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    split_top(inner)
        .into_iter()
        .flat_map(|part| expand_tree(&format!("{prefix}{part}")))
        .collect()
}

/// `path` from `crate`, or `None` for a path into another crate.
fn absolute(path: &[String], module: &ModPath) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    // `module` is already the folder's path for a `mod.rs`, so `super` is its parent
    // either way.
    let mut base = module.clone();
    match first.as_str() {
        "crate" => base.clear(),
        "self" => {}
        "super" => {
            base.pop()?;
            let mut rest = rest;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            base.extend(rest.iter().cloned());
            return Some(base);
        }
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The names a folder's `mod.rs` re-exports with `pub use`, and the full path of each.
fn reexports(code: &str, module: &ModPath) -> Vec<(String, Vec<String>)> {
    let mut names = Vec::new();
    for statement in use_statements(code).into_iter().filter(|s| s.public) {
        let relative_to_self = !statement.tree.starts_with("crate::")
            && !statement.tree.starts_with("super::")
            && !statement.tree.starts_with("self::");
        let tree = if relative_to_self {
            format!("self::{}", statement.tree)
        } else {
            statement.tree.clone()
        };
        for path in expand_tree(&tree) {
            if let Some(full) = absolute(&path, module) {
                if let Some(name) = full.last() {
                    names.push((name.clone(), full));
                }
            }
        }
    }
    names
}

/// The groups of files that import each other round a loop (strongly connected
/// components of more than one file).
fn cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    // Kosaraju: finish order on the graph, then components on its transpose.
    fn finish(
        node: &ModPath,
        graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        seen: &mut BTreeSet<ModPath>,
        order: &mut Vec<ModPath>,
    ) {
        if !seen.insert(node.clone()) {
            return;
        }
        for next in graph.get(node).into_iter().flatten() {
            finish(next, graph, seen, order);
        }
        order.push(node.clone());
    }
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for node in graph.keys() {
        finish(node, graph, &mut seen, &mut order);
    }
    let mut reversed: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (from, targets) in graph {
        for to in targets {
            reversed.entry(to.clone()).or_default().insert(from.clone());
        }
    }
    let mut assigned = BTreeSet::new();
    let mut components = Vec::new();
    for node in order.iter().rev() {
        let mut component = Vec::new();
        finish(node, &reversed, &mut assigned, &mut component);
        if component.len() > 1 {
            component.sort();
            components.push(component);
        }
    }
    components
}

/// One row of the layer table: a module and what it may import.
struct Layer {
    module: String,
    /// `(path, upward)`: a module (`db`) or one file (`cluster::scheduler`), and whether
    /// the table marks the import as running upward (↑).
    allowed: Vec<(ModPath, bool)>,
}

/// The layer table of docs/architecture.md, top layer first, read from the rows
/// between the `layers:begin`/`layers:end` markers.
fn layer_table(doc: &str) -> Vec<Layer> {
    let begin = doc
        .find("<!-- layers:begin -->")
        .expect("layer table begins");
    let end = doc.find("<!-- layers:end -->").expect("layer table ends");
    doc[begin..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let allowed = cells[2]
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty() && *e != "—")
                .map(|e| {
                    let upward = e.starts_with('↑');
                    let path = e.trim_start_matches('↑').trim_matches('`');
                    (path.split("::").map(str::to_string).collect(), upward)
                })
                .collect();
            Layer {
                module: cells[1].trim_matches('`').to_string(),
                allowed,
            }
        })
        .collect()
}

fn name(module: &ModPath) -> String {
    if module.is_empty() {
        "lib".into()
    } else {
        module.join("::")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn the_crate() -> (Crate, BTreeMap<ModPath, BTreeSet<ModPath>>) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let krate = Crate::read(&root.join("src"));
        let graph = krate.imports();
        (krate, graph)
    }

    #[test]
    fn no_file_imports_round_a_loop() {
        let (_, graph) = the_crate();
        let found = cycles(&graph);
        let shown: Vec<String> = found
            .iter()
            .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" ↔ "))
            .collect();
        assert!(shown.is_empty(), "import cycles:\n{}", shown.join("\n"));
    }

    #[test]
    fn every_import_follows_the_layer_table() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let doc = fs::read_to_string(root.join("docs/architecture.md")).unwrap();
        let table = layer_table(&doc);
        let rank = |module: &str| table.iter().position(|l| l.module == module);
        let mut wrong = Vec::new();
        for layer in &table {
            for (path, upward) in &layer.allowed {
                let (Some(own), Some(theirs)) = (rank(&layer.module), rank(&path[0])) else {
                    wrong.push(format!("`{}` lists unknown `{}`", layer.module, name(path)));
                    continue;
                };
                if *upward != (theirs < own) {
                    wrong.push(format!(
                        "`{}` → `{}`: marked {}, but the table puts it {}",
                        layer.module,
                        name(path),
                        if *upward { "↑" } else { "downward" },
                        if theirs < own { "above" } else { "below" },
                    ));
                }
            }
        }
        let (krate, graph) = the_crate();
        let mut upward_imports = 0;
        let mut used: BTreeSet<(String, ModPath)> = BTreeSet::new();
        for (from, targets) in &graph {
            let Some(top) = from.first() else { continue };
            let Some(layer) = table.iter().find(|l| &l.module == top) else {
                wrong.push(format!("`{top}` has no row in the layer table"));
                continue;
            };
            for to in targets
                .iter()
                .filter(|to| to.first().is_some_and(|t| t != top))
            {
                match layer.allowed.iter().find(|(path, _)| to.starts_with(path)) {
                    Some((path, upward)) => {
                        upward_imports += usize::from(*upward);
                        used.insert((top.clone(), path.clone()));
                    }
                    None => wrong.push(format!(
                        "{} imports {}, which the `{top}` row does not allow",
                        krate.files[from].path.display(),
                        name(to)
                    )),
                }
            }
        }
        // An upward import that is gone leaves its ↑ entry behind: the table must
        // shrink with the debt.
        for layer in &table {
            for (path, upward) in &layer.allowed {
                if *upward && !used.contains(&(layer.module.clone(), path.clone())) {
                    wrong.push(format!(
                        "`{}` → ↑`{}` is no longer imported: remove it from the table",
                        layer.module,
                        name(path)
                    ));
                }
            }
        }
        wrong.sort();
        wrong.dedup();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        let stated = doc
            .split("file imports run upward")
            .next()
            .and_then(|before| before.split_whitespace().last())
            .and_then(|n| n.parse::<usize>().ok());
        assert_eq!(
            stated,
            Some(upward_imports),
            "docs/architecture.md should say \"{upward_imports} file imports run upward\""
        );
    }

    #[test]
    fn use_trees_expand_and_reexports_resolve() {
        assert_eq!(
            expand_tree("crate::{a::{b,c},d}"),
            vec![
                vec!["crate".to_string(), "a".into(), "b".into()],
                vec!["crate".to_string(), "a".into(), "c".into()],
                vec!["crate".to_string(), "d".into()],
            ]
        );
        let (krate, graph) = the_crate();
        // `crate::auth::Claims` is re-exported by auth/mod.rs from auth/token.rs.
        let claims: Vec<String> = ["auth", "Claims"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            krate.resolve(&claims, 0),
            Some(vec!["auth".to_string(), "token".into()])
        );
        let server = vec!["server".to_string()];
        assert!(graph[&server].contains(&vec!["state".to_string()]));
    }

    /// Prints the graph (`cargo test --lib architecture -- --nocapture --ignored`).
    #[test]
    #[ignore]
    fn print_the_graph() {
        let (_, graph) = the_crate();
        let mut tops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, targets) in &graph {
            for to in targets {
                if let (Some(a), Some(b)) = (from.first(), to.first()) {
                    if a != b {
                        tops.entry(a.clone()).or_default().insert(b.clone());
                    }
                }
            }
        }
        for (from, to) in tops {
            println!("{from}: {}", to.into_iter().collect::<Vec<_>>().join(", "));
        }
        for (from, targets) in &graph {
            for to in targets {
                if from.first() != to.first() {
                    println!("edge {} -> {}", name(from), name(to));
                }
            }
        }
        for c in cycles(&graph) {
            println!(
                "cycle: {}",
                c.iter().map(name).collect::<Vec<_>>().join(" ↔ ")
            );
        }
    }
}
