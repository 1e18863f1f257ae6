//! FusionAuth's official Python client (PyPI `fusionauth-client==1.69.0`), unchanged, against
//! the server; PyJWT verifies the token against the served JWKS. The test command installs both
//! into a virtual environment and names its interpreter in `PASSWORDLESS_TEST_PYTHON`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

mod support;

use std::path::PathBuf;
use support::*;

fn python() -> PathBuf {
    if let Ok(python) = std::env::var("PASSWORDLESS_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        default.exists(),
        "no Python environment with fusionauth-client: run `bash scripts/test.sh`, which creates it, or set PASSWORDLESS_TEST_PYTHON"
    );
    default
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_client_works_unchanged() {
    let server = TestServer::start().await;
    // PyJWT checks `exp` against the wall clock, so this server's clock starts at the real time.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    server.clock.advance_secs(now - T0.as_secs());
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compat/fusionauth_client_compat.py");
    let output = tokio::process::Command::new(python())
        .arg(script)
        .arg(&server.base)
        .arg(ADMIN_KEY)
        .arg(server.mailbox())
        .arg(server.default_tenant())
        .output()
        .await
        .expect("python runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "the client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
