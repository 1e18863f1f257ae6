//! FusionAuth's official Python client (PyPI `fusionauth-client==1.69.0`), unchanged, against
//! the server; PyJWT verifies the token against the served JWKS. The test command installs both
//! into a virtual environment and names its interpreter in `PASSWORDLESS_TEST_PYTHON`.

use crate::support::*;
use std::path::PathBuf;

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
    let server = TestServer::start_at_wall_clock().await;
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
    assert_script_passed(&output);
}
