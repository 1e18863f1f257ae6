//! Key vaults: private signing keys are sealed with AES-256-GCM under a data key that never
//! sits in the store in clear (S26), so a copy of the store, with or without its tables, mints
//! no token.
//!
//! - [`LocalKeyVault`]: the data key is a key-encryption key in an owner-only file beside the
//!   embedded store, or given by the environment.
//! - [`KmsKeyVault`]: envelope encryption. The data key is made once by KMS
//!   (`GenerateDataKey`) and kept wrapped in the store; a process unwraps it with one `Decrypt`
//!   the first time it signs or seals, and keeps it for its life.

use async_trait::async_trait;
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::OnceCell;

use crate::domain::signing::SignerCache;
use crate::ports::{KeyVault, StoreError, VaultError, WrappedDataKeyStore};

const DATA_KEY_LEN: usize = 32;

/// AES-256-GCM under one data key. A sealed value is `<scheme>:<nonce>:<ciphertext+tag>`, both
/// base64; the caller's context (the key id) is the associated data, so a sealed value moved
/// onto another key's record does not open.
struct Sealer {
    key: LessSafeKey,
    scheme: &'static str,
}

impl Sealer {
    fn new(scheme: &'static str, bytes: &[u8]) -> Result<Self, VaultError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| VaultError::Unavailable("the data key is not 32 bytes".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            scheme,
        })
    }

    fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| VaultError::Unavailable(e.to_string()))?;
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| VaultError::Unavailable("sealing failed".into()))?;
        Ok(format!(
            "{}:{}:{}",
            self.scheme,
            STANDARD.encode(nonce),
            STANDARD.encode(sealed)
        ))
    }

    fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, VaultError> {
        let unopenable = |why: &str| VaultError::Unopenable(why.to_owned());
        let mut parts = sealed.splitn(3, ':');
        let (Some(scheme), Some(nonce), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(unopenable("not a sealed value"));
        };
        if scheme != self.scheme {
            return Err(unopenable("sealed by another kind of vault"));
        }
        let nonce: [u8; NONCE_LEN] = STANDARD
            .decode(nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| unopenable("a malformed nonce"))?;
        let mut body = STANDARD
            .decode(body)
            .map_err(|_| unopenable("a malformed ciphertext"))?;
        let plaintext = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut body,
            )
            .map_err(|_| unopenable("the data key or the context does not match"))?;
        Ok(plaintext.to_vec())
    }
}

/// The embedded store's vault: a key-encryption key of its own, outside the store file.
pub struct LocalKeyVault {
    sealer: Sealer,
    signers: SignerCache,
}

impl LocalKeyVault {
    /// Reads the key file, or creates it (32 random bytes, base64, mode 0600) when missing.
    pub fn open_or_create(path: &Path) -> Result<Self, VaultError> {
        let fail = |what: &str, e: std::io::Error| {
            VaultError::Unavailable(format!("{what} {}: {e}", path.display()))
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(text.trim()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    crate::adapters::files::create_private_dir(parent)
                        .map_err(|e| fail("cannot create the folder of", e))?;
                }
                let mut key = [0u8; DATA_KEY_LEN];
                getrandom::fill(&mut key).map_err(|e| VaultError::Unavailable(e.to_string()))?;
                let text = STANDARD.encode(key);
                match crate::adapters::files::write_private_new(path, text.as_bytes()) {
                    Ok(()) => Self::from_base64(&text),
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::open_or_create(path)
                    }
                    Err(e) => Err(fail("cannot write", e)),
                }
            }
            Err(e) => Err(fail("cannot read", e)),
        }
    }

    /// A key given as base64 of 32 bytes (`PASSWORDLESS_KEY_ENCRYPTION_KEY`).
    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| VaultError::Unavailable("the key-encryption key is not base64".into()))?;
        if bytes.len() != DATA_KEY_LEN {
            return Err(VaultError::Unavailable(
                "the key-encryption key must be 32 bytes".into(),
            ));
        }
        Ok(Self {
            sealer: Sealer::new("local-aes256gcm", &bytes)?,
            signers: SignerCache::default(),
        })
    }
}

#[async_trait]
impl KeyVault for LocalKeyVault {
    async fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, VaultError> {
        self.sealer.seal(plaintext, context)
    }

    async fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, VaultError> {
        self.sealer.open(sealed, context)
    }

    fn signers(&self) -> Option<&SignerCache> {
        Some(&self.signers)
    }
}

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

/// A deployment whose functions never sign (start, send) has no vault; asking it for one is a
/// configuration error, reported when it happens.
pub struct NoKeyVault;

impl NoKeyVault {
    fn unconfigured() -> VaultError {
        VaultError::Unavailable(
            "no key vault is configured: set PASSWORDLESS_KMS_KEY_ID or PASSWORDLESS_KEY_FILE"
                .into(),
        )
    }
}

#[async_trait]
impl KeyVault for NoKeyVault {
    async fn seal(&self, _: &[u8], _: &str) -> Result<String, VaultError> {
        Err(Self::unconfigured())
    }

    async fn open(&self, _: &str, _: &str) -> Result<Vec<u8>, VaultError> {
        Err(Self::unconfigured())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> LocalKeyVault {
        LocalKeyVault::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[tokio::test]
    async fn s26_a_sealed_key_opens_only_with_its_data_key_and_its_context() {
        let sealed = vault().seal(b"private key", "key-1").await.unwrap();
        assert!(!sealed.contains("private key"));
        assert_eq!(
            vault().open(&sealed, "key-1").await.unwrap(),
            b"private key"
        );
        assert!(vault().open(&sealed, "key-2").await.is_err());
        let other = LocalKeyVault::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(other.open(&sealed, "key-1").await.is_err());
    }

    #[tokio::test]
    async fn s26_a_key_file_is_made_once_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("store.key");
        let sealed = LocalKeyVault::open_or_create(&path)
            .unwrap()
            .seal(b"x", "k")
            .await
            .unwrap();
        let again = LocalKeyVault::open_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed, "k").await.unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
