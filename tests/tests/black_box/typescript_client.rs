//! FusionAuth's official TypeScript client (npm `@fusionauth/typescript-client@1.69.0`),
//! unchanged, against the server: the management calls, keys and the JWT helpers. The test
//! command installs it with `npm ci` into `tests/compat/typescript` and names Node.js in
//! `PASSWORDLESS_TEST_NODE`.

use crate::support::*;
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_typescript_client_works_unchanged() {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compat/typescript");
    assert!(
        folder.join("node_modules/@fusionauth/typescript-client").exists(),
        "the TypeScript client is not installed: run `bash scripts/test.sh`, which runs `npm ci` in {}",
        folder.display()
    );
    let node = std::env::var("PASSWORDLESS_TEST_NODE").unwrap_or_else(|_| "node".to_owned());
    let server = TestServer::start_at_wall_clock().await;
    let output = tokio::process::Command::new(node)
        .current_dir(&folder)
        .arg("smoke.mjs")
        .arg(&server.base)
        .arg(ADMIN_KEY)
        .output()
        .await
        .expect("node runs");
    assert_script_passed(&output);
}
