//! The README as a newcomer reads it: its first two code blocks are the two commands, its
//! "Five minutes with curl" block runs as written against a freshly seeded `serve` (in a
//! fresh folder, as from a fresh clone), and every link between the repository's documents
//! points at a file and a heading that exist.

use crate::support::{serve_until_listening, Group};

use std::path::{Path, PathBuf};
use std::process::Command;

const REPOSITORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn readme() -> String {
    std::fs::read_to_string(Path::new(REPOSITORY).join("README.md")).unwrap()
}

/// The fenced `bash` blocks of a Markdown text, in order, each with the heading above it.
fn bash_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut block: Option<String> = None;
    for line in markdown.lines() {
        match (&mut block, line.trim_start()) {
            (None, l) if l.starts_with('#') => heading = l.trim_start_matches('#').trim().into(),
            (None, "```bash") => block = Some(String::new()),
            (Some(_), "```") => blocks.push((heading.clone(), block.take().unwrap())),
            (Some(text), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_readme_opens_with_the_two_commands() {
    let blocks = bash_blocks(&readme());
    assert_eq!(
        blocks[0].1.trim(),
        "cargo run -p passwordless-cli -- serve",
        "the first command runs the local server"
    );
    assert_eq!(
        blocks[1].1.trim(),
        "bash scripts/test.sh",
        "the second is the test command"
    );
    let ci = std::fs::read_to_string(Path::new(REPOSITORY).join(".ci/run")).unwrap();
    assert!(
        ci.lines()
            .any(|l| l.trim().trim_start_matches("exec ") == "bash scripts/test.sh"),
        "CI runs exactly the test command: {ci}"
    );
}

/// Starts `serve` as the README's first command does, in `dir`, on a free port; answers once
/// it listens (the first start seeds the demo and writes `.passwordless/demo.env`).
fn serve_in(dir: &Path) -> Group {
    let (serve, output) = serve_until_listening(
        Command::new(env!("CARGO_BIN_EXE_passwordless"))
            .current_dir(dir)
            .env_remove("PASSWORDLESS_STORE")
            .env_remove("PASSWORDLESS_OUTBOX")
            .env_remove("PASSWORDLESS_MAILER")
            .env_remove("PASSWORDLESS_PUBLIC_URL"),
        &dir.join("serve.log"),
    );
    assert!(output.contains("Seeded a demo"), "{output}");
    serve
}

#[test]
fn the_readme_curl_session_runs_as_written() {
    let (_, session) = bash_blocks(&readme())
        .into_iter()
        .find(|(heading, _)| heading == "Five minutes with curl")
        .expect("a bash block under \"Five minutes with curl\"");
    let dir = tempfile::tempdir().unwrap();
    let _serve = serve_in(dir.path());

    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &session])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    // 2. send answers 200; 6. the spent code is a 404 (printed right after the key set, which
    // ends without a newline).
    assert_eq!(stdout.lines().next(), Some("200"), "{stdout}");
    assert!(stdout.trim_end().ends_with("}404"), "{stdout}");
    // 3. the email, with the magic link.
    assert!(stdout.contains("Subject:"), "{stdout}");
    assert!(stdout.contains("/oauth2/passwordless/"), "{stdout}");
    // 4. the state the start carried.
    assert!(stderr.contains("'next': '/home'"), "{stderr}");
    // 5. the token's claims and the key set that verifies it.
    assert!(
        stdout.contains("\"email\": \"demo@example.com\""),
        "{stdout}"
    );
    assert!(stdout.contains("\"keys\""), "{stdout}");
}

/// The Markdown documents of the repository: the README, the map, the rules and `docs/`.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(REPOSITORY);
    let mut files: Vec<PathBuf> = [
        "README.md",
        "ARCHITECTURE.md",
        "CONTRIBUTING.md",
        "BENCHMARKS.md",
    ]
    .iter()
    .map(|f| root.join(f))
    .collect();
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    let mut in_code = false;
    markdown
        .lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
            }
            !in_code && line.starts_with('#')
        })
        .map(|line| anchor(line.trim_start_matches('#').trim()))
        .collect()
}

/// The targets of the inline links `[text](target)` of a Markdown text.
fn links(markdown: &str) -> Vec<String> {
    markdown
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(target, _)| target.to_owned()))
        .collect()
}

#[test]
fn every_link_between_the_documents_points_at_a_file_and_heading_that_exist() {
    let mut checked = 0;
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let file = match file {
                "" => document.clone(),
                relative => document.parent().unwrap().join(relative),
            };
            assert!(
                file.exists(),
                "{}: a link to {target}, which does not exist",
                document.display()
            );
            if !fragment.is_empty() {
                let headings = anchors(&std::fs::read_to_string(&file).unwrap());
                assert!(
                    headings.iter().any(|h| h == fragment),
                    "{}: a link to {target}, whose heading does not exist (headings: {headings:?})",
                    document.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} links found");
}
