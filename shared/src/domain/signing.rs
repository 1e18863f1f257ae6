use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
    RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pkcs1::der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, UintRef};
use pkcs1::der::Encode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::ids::{KeyId, TenantId};
use super::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SigningAlgorithm {
    /// The default: every JWKS-reading verifier, API Gateway's JWT authorizer included, knows it.
    #[default]
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "ES384")]
    Es384,
    /// A shared secret: never published, only for verifiers that hold the secret too.
    #[serde(rename = "HS256")]
    Hs256,
    #[serde(rename = "HS512")]
    Hs512,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 5] = [
        SigningAlgorithm::Rs256,
        SigningAlgorithm::Es256,
        SigningAlgorithm::Es384,
        SigningAlgorithm::Hs256,
        SigningAlgorithm::Hs512,
    ];

    fn jwt_algorithm(self) -> Algorithm {
        match self {
            SigningAlgorithm::Rs256 => Algorithm::RS256,
            SigningAlgorithm::Es256 => Algorithm::ES256,
            SigningAlgorithm::Es384 => Algorithm::ES384,
            SigningAlgorithm::Hs256 => Algorithm::HS256,
            SigningAlgorithm::Hs512 => Algorithm::HS512,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::Es384 => "ES384",
            SigningAlgorithm::Hs256 => "HS256",
            SigningAlgorithm::Hs512 => "HS512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// FusionAuth's key `type`: `RSA`, `EC` or `HMAC`.
    pub(crate) fn key_type(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RSA",
            SigningAlgorithm::Es256 | SigningAlgorithm::Es384 => "EC",
            SigningAlgorithm::Hs256 | SigningAlgorithm::Hs512 => "HMAC",
        }
    }

    /// A shared secret, which verifying needs as much as signing.
    pub(crate) fn is_hmac(self) -> bool {
        self.key_type() == "HMAC"
    }

    /// The EC curve of the algorithm, as JWKs name it.
    pub(crate) fn curve(self) -> Option<&'static str> {
        match self {
            SigningAlgorithm::Es256 => Some("P-256"),
            SigningAlgorithm::Es384 => Some("P-384"),
            _ => None,
        }
    }
}

/// The public half of an asymmetric key, as published in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum PublicJwk {
    #[serde(rename = "RSA")]
    Rsa { n: String, e: String },
    #[serde(rename = "EC")]
    Ec { crv: String, x: String, y: String },
}

/// A tenant's signing key as stored. Its private half is sealed by the key vault (S26): the
/// store holds only ciphertext, and responses and logs never see either form (S24).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    pub id: KeyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    pub algorithm: SigningAlgorithm,
    /// Empty for a public key imported alone: it signs nothing and is published nowhere.
    pub sealed_private_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_jwk: Option<PublicJwk>,
    pub insert_instant: Instant,
    /// FusionAuth's `name`, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// RSA: the modulus in bits; HMAC: the secret in bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A private key in clear, only ever in memory: PKCS#1 DER for RSA, PKCS#8 for EC, the raw
/// secret for HMAC. It never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyDer(pub Vec<u8>);

impl fmt::Debug for PrivateKeyDer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyDer(<redacted>)")
    }
}

/// Key material a caller brings to an import.
#[derive(Debug, Clone, Copy)]
pub enum KeyMaterial<'a> {
    /// PEM: a private key (PKCS#1, SEC1 or PKCS#8) with its public half or not, or a public
    /// key alone, which verifies and never signs.
    Pem {
        algorithm: Option<SigningAlgorithm>,
        private_key: Option<&'a str>,
        public_key: Option<&'a str>,
    },
    /// An HMAC secret: its bytes as given.
    Secret {
        algorithm: SigningAlgorithm,
        secret: &'a [u8],
    },
}

/// A key just made or imported: its private half is sealed before anything stores it. A
/// public key imported alone has none.
#[derive(Debug)]
pub struct GeneratedKey {
    pub id: KeyId,
    pub algorithm: SigningAlgorithm,
    pub private: Option<PrivateKeyDer>,
    pub public_jwk: Option<PublicJwk>,
    pub length: Option<u32>,
}

impl GeneratedKey {
    /// The stored form, with the private half as the vault sealed it.
    pub fn sealed(
        &self,
        sealed_private_key: String,
        tenant: Option<TenantId>,
        now: Instant,
    ) -> SigningKey {
        SigningKey {
            id: self.id,
            tenant_id: tenant,
            algorithm: self.algorithm,
            sealed_private_key,
            public_jwk: self.public_jwk.clone(),
            insert_instant: now,
            name: None,
            length: self.length,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("the key has nothing to verify with")]
    NoVerifyingKey,
    #[error("the private key does not parse as a {0} key")]
    KeyRejected(&'static str),
    #[error("the claims do not serialise: {0}")]
    Claims(#[from] serde_json::Error),
    #[error("the signature could not be made")]
    Unspecified,
}

/// A private key parsed once, ready to sign any number of tokens. Parsing costs more than a
/// signature (an RSA key pair is also checked for consistency as it is parsed), so a process
/// keeps one per key and reuses it (CONTRIBUTING.md: expensive things are made once per process).
pub struct Signer {
    /// The encoded JOSE header, `{"typ":"JWT","alg":…,"kid":…}`, the same for every token.
    header: String,
    key: ParsedKey,
}

enum ParsedKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    /// Boxed: an HMAC key holds its precomputed inner and outer states (over a kilobyte).
    Hmac(Box<hmac::Key>),
}

/// The signers a key vault has opened, by key id, with the sealed value each was opened from.
/// The store is still read before every signature (it says whether the key exists and whose
/// it is); this spares only the vault's open and the parse. A sealed value is unique (its nonce
/// is random), so a key deleted and imported again under the same id is never served another
/// key's signer, and a vault only ever serves what it opened itself.
#[derive(Default)]
pub struct SignerCache(Mutex<HashMap<KeyId, (String, Arc<Signer>)>>);

/// Enough for every key a deployment signs with; past it the cache starts over.
const SIGNER_CACHE_ENTRIES: usize = 64;

impl SignerCache {
    pub fn get(&self, key: &SigningKey) -> Option<Arc<Signer>> {
        self.lock()
            .get(&key.id)
            .filter(|(sealed, _)| *sealed == key.sealed_private_key)
            .map(|(_, signer)| signer.clone())
    }

    pub fn put(&self, key: &SigningKey, signer: Arc<Signer>) {
        let mut signers = self.lock();
        if signers.len() >= SIGNER_CACHE_ENTRIES {
            signers.clear();
        }
        signers.insert(key.id, (key.sealed_private_key.clone(), signer));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<KeyId, (String, Arc<Signer>)>> {
        // A panic elsewhere leaves the map consistent (S25).
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for SignerCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignerCache")
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    /// Signs claims into a compact JWS: `header.claims.signature`, each base64url.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, SigningError> {
        let claims = serde_json::to_vec(claims)?;
        let mut token = String::with_capacity(self.header.len() + claims.len() * 4 / 3 + 700);
        token.push_str(&self.header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = match &self.key {
            ParsedKey::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    token.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| SigningError::Unspecified)?;
                signature
            }
            ParsedKey::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), token.as_bytes())
                .map_err(|_| SigningError::Unspecified)?
                .as_ref()
                .to_vec(),
            ParsedKey::Hmac(key) => hmac::sign(key, token.as_bytes()).as_ref().to_vec(),
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }
}

impl SigningKey {
    /// What the vault binds a sealed private key to: its key id, so a sealed value copied onto
    /// another key's record does not open.
    pub fn seal_context(id: KeyId) -> String {
        format!("signing-key:{id}")
    }

    /// Parses the private half the vault opened into a [`Signer`] whose tokens name this key
    /// (`kid`) and `typ: JWT`.
    pub(crate) fn signer(&self, private: &PrivateKeyDer) -> Result<Signer, SigningError> {
        let rejected = |_| SigningError::KeyRejected(self.algorithm.name());
        let key = match self.algorithm {
            SigningAlgorithm::Rs256 => {
                ParsedKey::Rsa(RsaKeyPair::from_der(&private.0).map_err(rejected)?)
            }
            SigningAlgorithm::Es256 => ParsedKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &private.0)
                    .map_err(rejected)?,
            ),
            SigningAlgorithm::Es384 => ParsedKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &private.0)
                    .map_err(rejected)?,
            ),
            SigningAlgorithm::Hs256 => {
                ParsedKey::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, &private.0)))
            }
            SigningAlgorithm::Hs512 => {
                ParsedKey::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA512, &private.0)))
            }
        };
        let header =
            json!({"typ": "JWT", "alg": self.algorithm.name(), "kid": self.id.to_string()});
        Ok(Signer {
            header: URL_SAFE_NO_PAD.encode(header.to_string()),
            key,
        })
    }

    /// Signs claims once with the private half the vault opened. Issuing paths keep a
    /// [`Signer`] instead; this is for one-off signatures.
    pub fn sign<C: Serialize>(
        &self,
        private: &PrivateKeyDer,
        claims: &C,
    ) -> Result<String, SigningError> {
        self.signer(private)?.sign(claims)
    }

    /// Checks a token's signature with this key and answers its claims. The HMAC secret (the
    /// vault-opened private half) is needed only for HS256 keys. Expiry and issuer are the
    /// caller's to check, against its own clock.
    pub fn verify(
        &self,
        token: &str,
        secret: Option<&PrivateKeyDer>,
    ) -> Result<Value, SigningError> {
        let key = match (&self.public_jwk, self.algorithm, secret) {
            (Some(PublicJwk::Rsa { n, e }), SigningAlgorithm::Rs256, _) => {
                DecodingKey::from_rsa_components(n, e)?
            }
            (Some(PublicJwk::Ec { crv, x, y }), algorithm, _)
                if algorithm.curve() == Some(crv.as_str()) =>
            {
                DecodingKey::from_ec_components(x, y)?
            }
            (_, algorithm, Some(secret)) if algorithm.is_hmac() => {
                DecodingKey::from_secret(&secret.0)
            }
            _ => return Err(SigningError::NoVerifyingKey),
        };
        let mut validation = Validation::new(self.algorithm.jwt_algorithm());
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Ok(jsonwebtoken::decode::<Value>(token, &key, &validation)?.claims)
    }

    /// Whether this server holds the private half (or secret) and so signs with the key.
    pub(crate) fn can_sign(&self) -> bool {
        !self.sealed_private_key.is_empty()
    }

    /// The public half a verifier of this server's tokens may trust: none for HMAC secrets,
    /// and none for a public key imported alone, which signs none of them.
    pub(crate) fn published_jwk(&self) -> Option<&PublicJwk> {
        self.public_jwk.as_ref().filter(|_| self.can_sign())
    }

    /// The JWKS entry for this key; HMAC secrets and keys this server does not sign with are
    /// never published.
    pub fn jwk(&self) -> Option<Value> {
        let public = self.published_jwk()?;
        let mut jwk = serde_json::to_value(public).ok()?;
        if let Value::Object(map) = &mut jwk {
            map.insert("kid".into(), json!(self.id.to_string()));
            map.insert("alg".into(), json!(self.algorithm.name()));
            map.insert("use".into(), json!("sig"));
        }
        Some(jwk)
    }
}

impl PublicJwk {
    /// The key as PEM (`-----BEGIN PUBLIC KEY-----`, an X.509 SubjectPublicKeyInfo), the form
    /// FusionAuth's key API and `/api/jwt/public-key` answer with.
    pub fn to_pem(&self) -> Option<String> {
        let spki = match self {
            PublicJwk::Rsa { n, e } => {
                let n = URL_SAFE_NO_PAD.decode(n).ok()?;
                let e = URL_SAFE_NO_PAD.decode(e).ok()?;
                let rsa_key = pkcs1::RsaPublicKey {
                    modulus: UintRef::new(&n).ok()?,
                    public_exponent: UintRef::new(&e).ok()?,
                }
                .to_der()
                .ok()?;
                subject_public_key_info(RSA_ENCRYPTION_OID, Some(AnyRef::NULL), &rsa_key)?
            }
            PublicJwk::Ec { crv, x, y } => {
                let point = [
                    &[4u8][..],
                    &URL_SAFE_NO_PAD.decode(x).ok()?,
                    &URL_SAFE_NO_PAD.decode(y).ok()?,
                ]
                .concat();
                let curve = curve_oid(crv)?;
                subject_public_key_info(EC_PUBLIC_KEY_OID, Some(AnyRef::from(&curve)), &point)?
            }
        };
        Some(pem("PUBLIC KEY", &spki))
    }
}

/// The DER of an X.509 SubjectPublicKeyInfo.
fn subject_public_key_info(
    algorithm: ObjectIdentifier,
    parameters: Option<AnyRef<'_>>,
    key: &[u8],
) -> Option<Vec<u8>> {
    SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: algorithm,
            parameters,
        },
        subject_public_key: BitStringRef::from_bytes(key).ok()?,
    }
    .to_der()
    .ok()
}

/// DER as a PEM block of `label`: base64 in lines of 64, no final line break.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----",
        lines.join("\n")
    )
}

/// id-ecPublicKey.
pub(crate) const EC_PUBLIC_KEY_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// rsaEncryption.
pub(crate) const RSA_ENCRYPTION_OID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// prime256v1 and secp384r1.
const CURVE_OIDS: [(&str, ObjectIdentifier); 2] = [
    ("P-256", ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7")),
    ("P-384", ObjectIdentifier::new_unwrap("1.3.132.0.34")),
];

/// The object identifier of a named curve.
pub(crate) fn curve_oid(curve: &str) -> Option<ObjectIdentifier> {
    CURVE_OIDS
        .iter()
        .find(|(c, _)| *c == curve)
        .map(|(_, oid)| *oid)
}

/// The curve an object identifier names.
pub(crate) fn curve_of_oid(oid: ObjectIdentifier) -> Option<&'static str> {
    CURVE_OIDS.iter().find(|(_, o)| *o == oid).map(|(c, _)| *c)
}

/// Base64url without padding, the encoding of JWK numbers.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
