//! The store conformance suite on the embedded SQLite store, and what only a shared file adds:
//! several connections (processes) racing on one code.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

mod conformance;

use std::sync::Arc;

use passwordless::adapters::sqlite::SqliteStore;
use passwordless::ports::{Consumed, Proof, Store};

fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap())
}

conformance::conformance_suite!({
    let dir = tempfile::tempdir().unwrap();
    (store(&dir), dir)
});

#[tokio::test]
async fn the_whole_suite_passes_on_one_in_memory_store() {
    conformance::run_all(Arc::new(SqliteStore::in_memory().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s5_fifty_connections_to_one_file_consume_a_code_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let first = SqliteStore::open(&path).unwrap();
    let user = conformance::user(
        passwordless::domain::tenant::DEFAULT_TENANT_ID,
        "files@example.com",
    );
    use passwordless::ports::{CodeStore, UserStore};
    first.insert_user(&user).await.unwrap();
    let code = conformance::code(&user, "file-race", conformance::NOW.plus_secs(180));
    first.insert_code(&code).await.unwrap();
    // Each store owns its own connection, as separate processes would.
    let stores: Vec<SqliteStore> = (0..50).map(|_| SqliteStore::open(&path).unwrap()).collect();
    let attempts = stores.into_iter().map(|store| {
        let hash = code.code_hash;
        tokio::spawn(async move {
            store
                .consume_code(&hash, Proof::Link, None, conformance::NOW)
                .await
                .unwrap()
        })
    });
    let mut wins = 0;
    for attempt in attempts {
        if matches!(attempt.await.unwrap(), Consumed::Code(_)) {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}
