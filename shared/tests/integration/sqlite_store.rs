//! The store conformance suite on the embedded SQLite store, and what only a shared file adds:
//! several connections (processes) racing on one code.

use crate::conformance;

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

/// N18, S38: the embedded store sweeps what has expired, as DynamoDB's TTL does: bound codes
/// anybody can make from the hosted form, and rate counters once no window can read them; live
/// rows stay.
#[tokio::test]
async fn n18_s38_expired_bound_codes_and_rate_counters_are_swept() {
    use passwordless::domain::SecretHash;
    use passwordless::ports::{CodeStore, RateLimiter, UserStore};
    let store = SqliteStore::in_memory().unwrap();
    let now = conformance::NOW;
    let user = conformance::user(
        passwordless::domain::tenant::DEFAULT_TENANT_ID,
        "swept@example.com",
    );
    store.insert_user(&user).await.unwrap();
    let mut bound = conformance::code(&user, "bound-expiring", now.plus_secs(600));
    bound.browser_binding = Some(SecretHash::of("a browser"));
    bound.insert_instant = now;
    store.insert_code(&bound).await.unwrap();
    let mut live = conformance::code(&user, "bound-live", now.plus_secs(7200));
    live.browser_binding = Some(SecretHash::of("another browser"));
    live.insert_instant = now;
    store.insert_code(&live).await.unwrap();
    store.hit("a-minute", 60, now).await.unwrap();
    store.hit("a-month", 30 * 24 * 3600, now).await.unwrap();
    // An hour on: the first code has expired, and the minute's window cannot be read.
    let later = now.plus_secs(3600);
    assert_eq!(store.sweep(later).await.unwrap(), 2);
    assert!(store.code(&live.code_hash, later).await.unwrap().is_some());
    assert_eq!(
        store.count("a-month", 30 * 24 * 3600, later).await.unwrap(),
        1
    );
    assert_eq!(
        store.sweep(later).await.unwrap(),
        0,
        "nothing else had expired"
    );
    // A month's window is still read through the next month (the one before), then swept.
    let next_month = now.plus_secs(31 * 24 * 3600);
    assert_eq!(
        store
            .count(
                "a-month",
                30 * 24 * 3600,
                next_month.plus_secs(-30 * 24 * 3600)
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.sweep(now.plus_secs(61 * 24 * 3600)).await.unwrap(), 2);
}
