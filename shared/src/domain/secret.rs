use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// The longest secret we ever compare or hash from user input (S3, S11): longer input is
/// rejected before any work is done on it.
pub(crate) const MAX_SECRET_LEN: usize = 256;

/// A secret value (a code, token or key) on its way to or from the caller. It never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the one place that must hand it out (a response body, an email).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

/// Secrets arrive in requests (a client secret on create); they leave only through `expose`.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// SHA-256 of a secret: the only form in which codes, tokens and keys are stored (S2).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// A hash given as its bytes (a random stand-in of the same shape, for instance).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(bytes))
    }

    /// Constant-time equality (S3): the only way two hashes are compared.
    pub fn matches(&self, other: &SecretHash) -> bool {
        secrets_equal(&self.0, &other.0)
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in a test failure and useless to an attacker.
        write!(f, "SecretHash({}…)", &self.to_hex()[..8])
    }
}

impl Serialize for SecretHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        SecretHash::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("not a SHA-256 hex digest"))
    }
}

/// Compares two secrets in time independent of where they differ (S3). Inputs longer than
/// [`MAX_SECRET_LEN`] never match, so an attacker cannot make us compare megabytes.
pub(crate) fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() > MAX_SECRET_LEN || b.len() > MAX_SECRET_LEN {
        return false;
    }
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s12_secrets_never_print() {
        let secret = Secret::new("hunter2-very-secret");
        assert!(!format!("{secret:?} {secret}").contains("hunter2"));
    }

    #[test]
    fn s2_hashes_round_trip_through_hex_and_match_only_themselves() {
        let hash = SecretHash::of("abc");
        assert_eq!(
            hash.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(SecretHash::from_hex(&hash.to_hex()).unwrap().matches(&hash));
        assert!(!hash.matches(&SecretHash::of("abd")));
        assert!(SecretHash::from_hex("zz").is_none());
    }

    #[test]
    fn s3_comparison_refuses_oversized_input() {
        let long = vec![b'a'; MAX_SECRET_LEN + 1];
        assert!(!secrets_equal(&long, &long));
        assert!(secrets_equal(b"same", b"same"));
        assert!(!secrets_equal(b"same", b"diff"));
        assert!(!secrets_equal(b"short", b"longer"));
    }
}
