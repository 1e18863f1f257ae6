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

use crate::domain::signing::SignerCache;
use crate::ports::{KeyVault, VaultError};

const DATA_KEY_LEN: usize = 32;

#[cfg(feature = "aws")]
mod kms;
#[cfg(feature = "aws")]
pub use kms::KmsKeyVault;

/// AES-256-GCM under one data key. A sealed value is `<scheme>:<nonce>:<ciphertext+tag>`, both
/// base64; the caller's context (the key id) is the associated data, so a sealed value moved
/// onto another key's record does not open.
pub(super) struct Sealer {
    key: LessSafeKey,
    scheme: &'static str,
}

impl Sealer {
    pub(super) fn new(scheme: &'static str, bytes: &[u8]) -> Result<Self, VaultError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| VaultError::Unavailable("the data key is not 32 bytes".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            scheme,
        })
    }

    pub(super) fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, VaultError> {
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

    pub(super) fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, VaultError> {
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

/// A deployment whose functions never sign (start, send) has no vault; asking it for one is a
/// configuration error, reported when it happens.
pub(crate) struct NoKeyVault;

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
