//! The layer rule of docs/design.md §2.1, checked on the source: `src/lib.rs`
//! lists the modules top to bottom, and no module may use one listed above
//! it. Test code (`*tests.rs`, `testutil.rs`, `#[cfg(test)]` blocks at the
//! end of a file) may reach anywhere and is not read.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules in `src/lib.rs` order.
fn layer_order(root: &Path) -> Vec<String> {
    let lib = fs::read_to_string(root.join("src/lib.rs")).expect("read src/lib.rs");
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .map(str::to_owned)
        .collect()
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.contains("tests") && name != "testutil.rs" {
                out.push(path);
            }
        }
    }
}

/// The files of one top-level module: `src/m.rs` and everything in `src/m/`.
fn module_files(root: &Path, module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = root.join("src").join(format!("{module}.rs"));
    if file.exists() {
        files.push(file);
    }
    sources(&root.join("src").join(module), &mut files);
    files
}

/// Modules a file names as `crate::x`, outside comments and the trailing
/// `#[cfg(test)]` part.
fn used_modules(text: &str, known: &[String]) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut in_group = false;
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if line.starts_with("//") {
            continue;
        }
        if in_group {
            // Inside a multi-line `use crate::{ ... };` each item starts a path.
            for part in line.split(',') {
                let name = ident(part);
                if known.contains(&name) {
                    used.insert(name);
                }
            }
            in_group = !line.contains("};");
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name = ident(rest);
            if known.contains(&name) {
                used.insert(name);
            }
        }
        // `use crate::{a, b::c}` names several modules at once.
        if let Some(at) = line.find("crate::{") {
            let group = &line[at + "crate::{".len()..];
            for part in group.split(',') {
                let name = ident(part);
                if known.contains(&name) {
                    used.insert(name);
                }
            }
            in_group = !group.contains('}');
        }
    }
    used
}

#[test]
fn no_module_uses_one_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let order = layer_order(root);
    assert!(
        order.len() > 10,
        "src/lib.rs lists too few modules: {order:?}"
    );
    let mut violations = Vec::new();
    for (rank, module) in order.iter().enumerate() {
        let files = module_files(root, module);
        assert!(!files.is_empty(), "no source for module {module}");
        for file in files {
            let text = fs::read_to_string(&file).expect("read source");
            for used in used_modules(&text, &order) {
                let used_rank = order.iter().position(|m| *m == used).unwrap_or(0);
                if used_rank < rank {
                    violations.push(format!(
                        "{} ({module}) uses {used}, which sits above it",
                        file.strip_prefix(root).unwrap_or(&file).display()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layer violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_nested_uses() {
    let known: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let text = "use crate::{a::X, b};\n// crate::c in a comment\nfn f() { crate::c::g() }\n#[cfg(test)]\nmod tests { use crate::a; }\n";
    let used = used_modules(text, &known);
    assert_eq!(used.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    let multi = "pub(crate) use crate::{\n    b::Y,\n    c,\n};\nuse std::a;\n";
    let used = used_modules(multi, &known);
    assert_eq!(used.into_iter().collect::<Vec<_>>(), ["b", "c"]);
}
