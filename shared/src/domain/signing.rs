use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::fmt;

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
    /// A shared secret: never published, only for verifiers that hold the secret too.
    #[serde(rename = "HS256")]
    Hs256,
}

impl SigningAlgorithm {
    fn jwt_algorithm(self) -> Algorithm {
        match self {
            SigningAlgorithm::Rs256 => Algorithm::RS256,
            SigningAlgorithm::Es256 => Algorithm::ES256,
            SigningAlgorithm::Hs256 => Algorithm::HS256,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SigningAlgorithm::Rs256 => "RS256",
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::Hs256 => "HS256",
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

/// A key just made: its private half is sealed before anything stores it.
#[derive(Debug)]
pub struct GeneratedKey {
    pub id: KeyId,
    pub algorithm: SigningAlgorithm,
    pub private: PrivateKeyDer,
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
}

impl SigningKey {
    /// What the vault binds a sealed private key to: its key id, so a sealed value copied onto
    /// another key's record does not open.
    pub fn seal_context(id: KeyId) -> String {
        format!("signing-key:{id}")
    }

    /// Signs claims into a compact JWT whose header names this key (`kid`) and `typ: JWT`,
    /// with the private half the vault opened.
    pub fn sign<C: Serialize>(
        &self,
        private: &PrivateKeyDer,
        claims: &C,
    ) -> Result<String, SigningError> {
        let mut header = Header::new(self.algorithm.jwt_algorithm());
        header.kid = Some(self.id.to_string());
        header.typ = Some("JWT".to_owned());
        let key = match self.algorithm {
            SigningAlgorithm::Rs256 => EncodingKey::from_rsa_der(&private.0),
            SigningAlgorithm::Es256 => EncodingKey::from_ec_der(&private.0),
            SigningAlgorithm::Hs256 => EncodingKey::from_secret(&private.0),
        };
        Ok(jsonwebtoken::encode(&header, claims, &key)?)
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
            (Some(PublicJwk::Ec { x, y, .. }), SigningAlgorithm::Es256, _) => {
                DecodingKey::from_ec_components(x, y)?
            }
            (_, SigningAlgorithm::Hs256, Some(secret)) => DecodingKey::from_secret(&secret.0),
            _ => return Err(SigningError::NoVerifyingKey),
        };
        let mut validation = Validation::new(self.algorithm.jwt_algorithm());
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Ok(jsonwebtoken::decode::<Value>(token, &key, &validation)?.claims)
    }

    /// The JWKS entry for this key; HMAC secrets are never published.
    pub fn jwk(&self) -> Option<Value> {
        let public = self.public_jwk.as_ref()?;
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
                let rsa_key = der(0x30, &[der_unsigned(&n), der_unsigned(&e)].concat());
                // AlgorithmIdentifier: rsaEncryption (1.2.840.113549.1.1.1), NULL.
                let algorithm = der(
                    0x30,
                    &[
                        der(
                            0x06,
                            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
                        ),
                        vec![0x05, 0x00],
                    ]
                    .concat(),
                );
                der(
                    0x30,
                    &[algorithm, der(0x03, &[&[0u8][..], &rsa_key].concat())].concat(),
                )
            }
            PublicJwk::Ec { crv, x, y } if crv == "P-256" => {
                let point = [
                    &[4u8][..],
                    &URL_SAFE_NO_PAD.decode(x).ok()?,
                    &URL_SAFE_NO_PAD.decode(y).ok()?,
                ]
                .concat();
                // id-ecPublicKey (1.2.840.10045.2.1) on prime256v1 (1.2.840.10045.3.1.7).
                let algorithm = der(
                    0x30,
                    &[
                        der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
                        der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
                    ]
                    .concat(),
                );
                der(
                    0x30,
                    &[algorithm, der(0x03, &[&[0u8][..], &point].concat())].concat(),
                )
            }
            PublicJwk::Ec { .. } => return None,
        };
        let body = base64::engine::general_purpose::STANDARD.encode(spki);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        Some(format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----",
            lines.join("\n")
        ))
    }
}

/// One DER element: tag, length, content.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER holding an unsigned big-endian number.
fn der_unsigned(number: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = number.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    der(0x02, &content)
}

/// Base64url without padding, the encoding of JWK numbers.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}
