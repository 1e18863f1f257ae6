//! Passwordless magic-link login, wire-compatible with FusionAuth's passwordless API.
//!
//! `domain` holds the rules, `ports` the traits the flows need, `flows` the use cases,
//! `adapters` the stores and mailers, `http` the edge that every entry point shares.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod flows;
pub mod http;
pub mod kickstart;
pub mod ports;
pub mod telemetry;

pub use app::App;

/// The unit tests' allocator: the system's, with a ceiling a test can set (the memory
/// property test of S32). Past the ceiling an allocation fails and the test process aborts,
/// which fails the run loudly.
#[cfg(test)]
mod test_allocator {
    use std::alloc::System;

    #[global_allocator]
    static ALLOCATOR: cap::Cap<System> = cap::Cap::new(System, usize::MAX);

    /// Runs `work` with at most `extra` bytes allocated beyond what is allocated now.
    pub(crate) fn with_ceiling<T>(extra: usize, work: impl FnOnce() -> T) -> T {
        struct Lift;
        impl Drop for Lift {
            fn drop(&mut self) {
                let _ = ALLOCATOR.set_limit(usize::MAX);
            }
        }
        let _lift = Lift;
        let _ = ALLOCATOR.set_limit(ALLOCATOR.allocated().saturating_add(extra));
        work()
    }
}

/// The layer order, held by a test rather than by habit: each layer of this crate uses only the
/// ones before it, and inside a layer no module imports one that imports it back
/// (ARCHITECTURE.md, Code map).
#[cfg(test)]
mod layers {
    use std::path::Path;

    const ORDER: [&str; 6] = ["domain", "ports", "flows", "adapters", "app", "http"];

    /// `app` names the route set a Lambda function serves to pick the adapters it builds: the
    /// one arrow against the order, known and kept to that one import.
    const KNOWN: [(&str, &str, &str); 1] = [("app", "http", "crate::http::routes::RouteSet")];

    fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    #[test]
    fn each_layer_uses_only_the_layers_before_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let mut against = Vec::new();
        for path in files {
            let relative = path.strip_prefix(&root).unwrap();
            let first = relative.components().next().unwrap().as_os_str();
            let layer = first.to_str().unwrap().trim_end_matches(".rs");
            let Some(rank) = ORDER.iter().position(|l| *l == layer) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for (at, _) in code.match_indices("crate::") {
                    let used: String = code[at + 7..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    let Some(used_rank) = ORDER.iter().position(|l| *l == used) else {
                        continue;
                    };
                    let known = KNOWN.iter().any(|(from, to, import)| {
                        *from == layer && *to == used && code.contains(import)
                    });
                    if used_rank > rank && !known {
                        against.push(format!(
                            "{}:{}: {layer} uses {used}",
                            relative.display(),
                            n + 1
                        ));
                    }
                }
            }
        }
        assert!(
            against.is_empty(),
            "imports against the layer order:\n{}",
            against.join("\n")
        );
    }

    /// The modules of one layer that a file of `module` imports: `crate::<layer>::x` anywhere,
    /// and `super::x` (or `super::{x, …}`) from the file at the layer's top.
    fn imported_siblings(text: &str, layer: &str, depth: usize) -> Vec<String> {
        let ident = |rest: &str| -> String {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut found = Vec::new();
        let absolute = format!("crate::{layer}::");
        for (at, _) in code.match_indices(&absolute) {
            found.push(ident(&code[at + absolute.len()..]));
        }
        let relative = "super::".repeat(depth + 1);
        for (at, _) in code.match_indices(&relative) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c == ':' || c.is_alphanumeric()) {
                continue;
            }
            let rest = &code[at + relative.len()..];
            match rest.strip_prefix('{') {
                Some(group) if depth == 0 => {
                    let group = group.split('}').next().unwrap_or_default();
                    found.extend(group.split(',').map(|item| ident(item.trim())));
                }
                _ => found.push(ident(rest)),
            }
        }
        found
    }

    /// No module imports one that imports it back, however far round: each layer's modules form
    /// a tree of uses, so any of them can be read (and moved) starting from the ones it needs.
    #[test]
    fn no_module_of_a_layer_imports_another_that_imports_it_back() {
        use std::collections::{BTreeMap, BTreeSet};
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut circles = Vec::new();
        for layer in ORDER {
            let dir = root.join(layer);
            if !dir.is_dir() {
                continue;
            }
            let modules: BTreeSet<String> = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.trim_end_matches(".rs").to_owned()
                })
                .filter(|name| name != "mod")
                .collect();
            let mut files = Vec::new();
            sources(&dir, &mut files);
            let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for path in files {
                let relative = path.strip_prefix(&dir).unwrap();
                let parts: Vec<_> = relative.components().collect();
                let module = parts[0].as_os_str().to_string_lossy();
                let module = module.trim_end_matches(".rs").to_owned();
                if module == "mod" || path.file_name().is_some_and(|n| n == "tests.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for used in imported_siblings(&text, layer, parts.len() - 1) {
                    if used != module && modules.contains(&used) {
                        uses.entry(module.clone()).or_default().insert(used);
                    }
                }
            }
            // Depth-first from each module; meeting a module on the current path is a circle.
            fn walk(
                uses: &BTreeMap<String, BTreeSet<String>>,
                path: &mut Vec<String>,
                circles: &mut Vec<String>,
            ) {
                let Some(last) = path.last().cloned() else {
                    return;
                };
                for next in uses.get(&last).into_iter().flatten() {
                    if let Some(at) = path.iter().position(|m| m == next) {
                        let mut circle = path[at..].to_vec();
                        circle.push(next.clone());
                        circles.push(circle.join(" -> "));
                    } else if path.len() < 8 {
                        path.push(next.clone());
                        walk(uses, path, circles);
                        path.pop();
                    }
                }
            }
            for module in uses.keys() {
                let mut found = Vec::new();
                walk(&uses, &mut vec![module.clone()], &mut found);
                circles.extend(found.into_iter().map(|c| format!("{layer}: {c}")));
            }
        }
        circles.sort();
        circles.dedup();
        assert!(
            circles.is_empty(),
            "modules that import each other:\n{}",
            circles.join("\n")
        );
    }
}
