//! Envelope encryption under a KMS key: the data key is made once by KMS (`GenerateDataKey`)
//! and kept wrapped in the store; a process unwraps it with one `Decrypt` the first time it
//! signs or seals, and keeps it for its life.

use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::OnceCell;

use super::Sealer;
use crate::domain::signing::SignerCache;
use crate::ports::{KeyVault, StoreError, VaultError, WrappedDataKeyStore};

/// The scheme name sealed values of the KMS vault carry.
const KMS_SCHEME: &str = "kms-aes256gcm";

/// Envelope encryption under a KMS key.
pub struct KmsKeyVault {
    kms: aws_sdk_kms::Client,
    key_id: String,
    wrapped: Arc<dyn WrappedDataKeyStore>,
    sealer: OnceCell<Sealer>,
    signers: SignerCache,
}

impl KmsKeyVault {
    pub fn new(
        kms: aws_sdk_kms::Client,
        key_id: impl Into<String>,
        wrapped: Arc<dyn WrappedDataKeyStore>,
    ) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
            wrapped,
            sealer: OnceCell::new(),
            signers: SignerCache::default(),
        }
    }

    /// Unwraps the deployment's data key during init, when one is stored, so that the first
    /// token an instance signs pays neither the KMS handshake nor the `Decrypt`. A failure is
    /// logged and left for the first request to meet again (and report).
    pub async fn warm_up(&self) {
        match self.wrapped.wrapped_data_key().await {
            Ok(Some(wrapped)) => {
                let opened = self
                    .sealer
                    .get_or_try_init(|| async {
                        Sealer::new(KMS_SCHEME, &self.unwrap_key(wrapped).await?)
                    })
                    .await;
                if let Err(e) = opened {
                    tracing::warn!(detail = %e, "the data key could not be unwrapped during init");
                }
            }
            // Nothing sealed yet: the first seal makes the key.
            Ok(None) => {}
            Err(e) => tracing::warn!(detail = %e, "the data key could not be read during init"),
        }
    }

    /// The data key, unwrapped once per process: one `Decrypt`, or one `GenerateDataKey` for
    /// the very first key of a deployment.
    async fn sealer(&self) -> Result<&Sealer, VaultError> {
        self.sealer
            .get_or_try_init(|| async {
                let store = |e: StoreError| VaultError::Unavailable(e.to_string());
                let plaintext = match self.wrapped.wrapped_data_key().await.map_err(store)? {
                    Some(wrapped) => self.unwrap_key(wrapped).await?,
                    None => {
                        let (plaintext, wrapped) = self.generate().await?;
                        match self.wrapped.insert_wrapped_data_key(&wrapped).await {
                            Ok(()) => plaintext,
                            // Another process stored one first: theirs is the deployment's.
                            Err(StoreError::Duplicate(_)) => {
                                let theirs = self
                                    .wrapped
                                    .wrapped_data_key()
                                    .await
                                    .map_err(store)?
                                    .ok_or_else(|| {
                                        VaultError::Unavailable("the data key vanished".into())
                                    })?;
                                self.unwrap_key(theirs).await?
                            }
                            Err(e) => return Err(store(e)),
                        }
                    }
                };
                Sealer::new(KMS_SCHEME, &plaintext)
            })
            .await
    }

    async fn unwrap_key(&self, wrapped: Vec<u8>) -> Result<Vec<u8>, VaultError> {
        let out = self
            .kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(wrapped))
            .send()
            .await
            .map_err(|e| VaultError::Unavailable(kms_error("Decrypt", &e)))?;
        out.plaintext()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| VaultError::Unavailable("KMS Decrypt returned no key".into()))
    }

    async fn generate(&self) -> Result<(Vec<u8>, Vec<u8>), VaultError> {
        let out = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .send()
            .await
            .map_err(|e| VaultError::Unavailable(kms_error("GenerateDataKey", &e)))?;
        match (out.plaintext(), out.ciphertext_blob()) {
            (Some(plaintext), Some(wrapped)) => {
                Ok((plaintext.as_ref().to_vec(), wrapped.as_ref().to_vec()))
            }
            _ => Err(VaultError::Unavailable(
                "KMS GenerateDataKey returned no key".into(),
            )),
        }
    }
}

/// The KMS error code and request id, never the SDK's full text.
fn kms_error<E, R>(operation: &str, e: &aws_sdk_kms::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + aws_sdk_kms::operation::RequestId,
    R: std::fmt::Debug,
{
    match e {
        aws_sdk_kms::error::SdkError::ServiceError(service) => format!(
            "KMS {operation}: {} (request id {})",
            service.err().code().unwrap_or("error"),
            aws_sdk_kms::operation::RequestId::request_id(service.err()).unwrap_or("unknown")
        ),
        aws_sdk_kms::error::SdkError::TimeoutError(_) => format!("KMS {operation} timed out"),
        aws_sdk_kms::error::SdkError::DispatchFailure(_) => {
            format!("KMS {operation}: KMS could not be reached")
        }
        _ => format!("KMS {operation} failed"),
    }
}

#[async_trait]
impl KeyVault for KmsKeyVault {
    async fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, VaultError> {
        self.sealer().await?.seal(plaintext, context)
    }

    async fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, VaultError> {
        self.sealer().await?.open(sealed, context)
    }

    fn signers(&self) -> Option<&SignerCache> {
        Some(&self.signers)
    }
}
