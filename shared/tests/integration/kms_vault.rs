//! Envelope encryption of signing keys under KMS (S26, M4), through the real SDK client against
//! moto's KMS on loopback, with the wrapped data key kept in DynamoDB (also moto).

use crate::support;
use std::sync::Arc;

use crate::support::RequestLog;
use passwordless::adapters::dynamodb::{DynamoStore, Tables};
use passwordless::adapters::vault::KmsKeyVault;
use passwordless::ports::{KeyVault, VaultError, WrappedDataKeyStore};

struct Deployment {
    kms: aws_sdk_kms::Client,
    calls: RequestLog,
    key_id: String,
    store: Arc<DynamoStore>,
}

async fn deployment() -> Deployment {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL must point at the emulator: run `bash scripts/test.sh`");
    let aws = aws_config::load_from_env().await;
    let calls = RequestLog::default();
    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&aws)
            .interceptor(calls.clone())
            .build(),
    );
    let key_id = support::kms_key(&kms).await;
    let tables = Tables::with_prefix(&format!("kms{}", uuid::Uuid::new_v4().simple()));
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), tables);
    store.create_tables().await.unwrap();
    calls.take();
    Deployment {
        kms,
        calls,
        key_id,
        store: Arc::new(store),
    }
}

impl Deployment {
    /// A process of this deployment: a fresh vault, as after a cold start.
    fn process(&self) -> KmsKeyVault {
        KmsKeyVault::new(self.kms.clone(), self.key_id.clone(), self.store.clone())
    }
}

#[tokio::test]
async fn m4_the_first_seal_makes_the_data_key_and_every_later_process_unwraps_it_once() {
    let deployment = deployment().await;
    let first = deployment.process();
    let sealed = first.seal(b"private key one", "key-1").await.unwrap();
    first.seal(b"private key two", "key-2").await.unwrap();
    assert_eq!(deployment.calls.take(), ["GenerateDataKey"]);
    let wrapped = deployment.store.wrapped_data_key().await.unwrap().unwrap();
    assert!(!wrapped.is_empty());

    // A cold start: one Decrypt, however many keys it opens or seals.
    let second = deployment.process();
    for _ in 0..10 {
        assert_eq!(
            second.open(&sealed, "key-1").await.unwrap(),
            b"private key one"
        );
    }
    second.seal(b"private key three", "key-3").await.unwrap();
    assert_eq!(deployment.calls.take(), ["Decrypt"]);
}

/// A function's init unwraps the data key, so that its first token pays no KMS call; before
/// the deployment's first seal there is nothing to unwrap, and the warm-up makes no key.
#[tokio::test]
async fn the_warm_up_unwraps_the_data_key_during_init_and_makes_none() {
    let deployment = deployment().await;
    deployment.process().warm_up().await;
    assert!(deployment.calls.take().is_empty(), "nothing sealed yet");
    assert_eq!(deployment.store.wrapped_data_key().await.unwrap(), None);

    let sealed = deployment
        .process()
        .seal(b"private key", "key-1")
        .await
        .unwrap();
    deployment.calls.take();
    let warmed = deployment.process();
    warmed.warm_up().await;
    assert_eq!(deployment.calls.take(), ["Decrypt"]);
    assert_eq!(warmed.open(&sealed, "key-1").await.unwrap(), b"private key");
    assert!(
        deployment.calls.take().is_empty(),
        "the request path calls no KMS"
    );
}

#[tokio::test]
async fn m4_s26_the_tables_without_the_kms_key_open_nothing() {
    let deployment = deployment().await;
    let sealed = deployment
        .process()
        .seal(b"private key", "key-1")
        .await
        .unwrap();
    // Someone with a copy of the tables and a KMS key of their own.
    let theirs = support::kms_key(&deployment.kms).await;
    let thief = KmsKeyVault::new(deployment.kms.clone(), theirs, deployment.store.clone());
    assert!(matches!(
        thief.open(&sealed, "key-1").await,
        Err(VaultError::Unavailable(_))
    ));
}
