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
/// ones before it (ARCHITECTURE.md, Code map).
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
}
