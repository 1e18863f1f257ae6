//! Signing keys made with aws-lc-rs (fast even in debug builds, unlike pure-Rust RSA): generated,
//! or imported from PEM or an HMAC secret and checked before anything stores them.

use crate::domain::signing::{
    b64url, curve_of_oid, GeneratedKey, KeyMaterial, PrivateKeyDer, PublicJwk, EC_PUBLIC_KEY_OID,
    RSA_ENCRYPTION_OID,
};
use crate::domain::{KeyId, SigningAlgorithm};
use crate::ports::{KeyGenError, KeyImportError, KeyMaker};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};
use base64::Engine;
use pkcs1::der::Decode;
use spki::SubjectPublicKeyInfoRef;

pub struct AwsLcKeyMaker;

fn ec_algorithm(algorithm: SigningAlgorithm) -> Option<&'static EcdsaSigningAlgorithm> {
    match algorithm {
        SigningAlgorithm::Es256 => Some(&ECDSA_P256_SHA256_FIXED_SIGNING),
        SigningAlgorithm::Es384 => Some(&ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => None,
    }
}

/// The JWK of an EC key pair's public point (uncompressed: 0x04, x, y).
fn ec_jwk(algorithm: SigningAlgorithm, point: &[u8]) -> Option<PublicJwk> {
    let half = (point.len().checked_sub(1)?) / 2;
    if point.first() != Some(&4) || half == 0 || point.len() != 1 + 2 * half {
        return None;
    }
    Some(PublicJwk::Ec {
        crv: algorithm.curve()?.to_owned(),
        x: b64url(&point[1..=half]),
        y: b64url(&point[1 + half..]),
    })
}

fn rsa_jwk(pair: &RsaKeyPair) -> PublicJwk {
    let public = pair.public_key();
    PublicJwk::Rsa {
        n: b64url(public.modulus().big_endian_without_leading_zero()),
        e: b64url(public.exponent().big_endian_without_leading_zero()),
    }
}

/// The secret length of an HMAC algorithm, in bytes: its hash size (RFC 7518 §3.2).
fn hmac_bytes(algorithm: SigningAlgorithm) -> usize {
    if algorithm == SigningAlgorithm::Hs512 {
        64
    } else {
        32
    }
}

impl KeyMaker for AwsLcKeyMaker {
    fn generate(
        &self,
        id: KeyId,
        algorithm: SigningAlgorithm,
        length: Option<u32>,
    ) -> Result<GeneratedKey, KeyGenError> {
        let fail = |what: &str| KeyGenError(what.to_owned());
        let (private_der, public_jwk, bits) = match algorithm.key_type() {
            "RSA" => {
                let bits = length.unwrap_or(2048);
                let size = match bits {
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    _ => KeySize::Rsa2048,
                };
                let pair = RsaKeyPair::generate(size).map_err(|_| fail("RSA generation"))?;
                let pkcs8 = pair.as_der().map_err(|_| fail("RSA encoding"))?;
                // jsonwebtoken signs with a PKCS#1 RSAPrivateKey: the octet string inside PKCS#8.
                let pkcs1 =
                    pkcs8_private_key(pkcs8.as_ref()).ok_or_else(|| fail("RSA PKCS#8 layout"))?;
                (pkcs1.to_vec(), Some(rsa_jwk(&pair)), Some(bits))
            }
            "EC" => {
                let curve = ec_algorithm(algorithm).ok_or_else(|| fail("EC curve"))?;
                let pair = EcdsaKeyPair::generate(curve).map_err(|_| fail("EC generation"))?;
                let pkcs8 = pair.to_pkcs8v1().map_err(|_| fail("EC encoding"))?;
                let jwk = ec_jwk(algorithm, pair.public_key().as_ref())
                    .ok_or_else(|| fail("EC public key layout"))?;
                (pkcs8.as_ref().to_vec(), Some(jwk), None)
            }
            _ => {
                let mut secret = vec![0u8; hmac_bytes(algorithm)];
                getrandom::fill(&mut secret).map_err(|e| fail(&e.to_string()))?;
                let bits = u32::try_from(secret.len() * 8).ok();
                (secret, None, bits)
            }
        };
        Ok(GeneratedKey {
            id,
            algorithm,
            private: Some(PrivateKeyDer(private_der)),
            public_jwk,
            length: bits,
        })
    }

    fn import(&self, id: KeyId, material: KeyMaterial<'_>) -> Result<GeneratedKey, KeyImportError> {
        match material {
            KeyMaterial::Secret { algorithm, secret } => {
                let needed = hmac_bytes(algorithm);
                if !algorithm.is_hmac() {
                    return Err(KeyImportError::new(
                        "key.algorithm",
                        "A secret is imported as an HS256 or HS512 key.",
                    ));
                }
                if secret.len() < needed {
                    return Err(KeyImportError::new(
                        "key.secret",
                        format!(
                            "An {} secret must hold at least {needed} bytes, the size of its hash.",
                            algorithm.name()
                        ),
                    ));
                }
                Ok(GeneratedKey {
                    id,
                    algorithm,
                    private: Some(PrivateKeyDer(secret.to_vec())),
                    public_jwk: None,
                    length: u32::try_from(secret.len() * 8).ok(),
                })
            }
            KeyMaterial::Pem {
                algorithm,
                private_key: Some(private),
                public_key,
            } => {
                let imported = import_private(id, private)?;
                if let Some(algorithm) = algorithm {
                    if algorithm != imported.algorithm {
                        return Err(KeyImportError::new(
                            "key.algorithm",
                            format!(
                                "The private key is an {} key, not {}.",
                                imported.algorithm.name(),
                                algorithm.name()
                            ),
                        ));
                    }
                }
                if let Some(public) = public_key {
                    let (_, given) = public_jwk_of_pem(public)?;
                    if Some(given) != imported.public_jwk {
                        return Err(KeyImportError::new(
                            "key.publicKey",
                            "The public key is not the public half of the private key.",
                        ));
                    }
                }
                Ok(imported)
            }
            KeyMaterial::Pem {
                algorithm,
                private_key: None,
                public_key: Some(public),
            } => {
                let (found, jwk) = public_jwk_of_pem(public)?;
                if algorithm.is_some_and(|a| a != found) {
                    return Err(KeyImportError::new(
                        "key.algorithm",
                        format!("The public key is an {} key.", found.name()),
                    ));
                }
                Ok(GeneratedKey {
                    id,
                    algorithm: found,
                    private: None,
                    length: modulus_bits(&jwk),
                    public_jwk: Some(jwk),
                })
            }
            KeyMaterial::Pem {
                private_key: None,
                public_key: None,
                ..
            } => Err(KeyImportError::new(
                "key.publicKey",
                "Import a privateKey, a publicKey, or a secret.",
            )),
        }
    }
}

fn modulus_bits(jwk: &PublicJwk) -> Option<u32> {
    match jwk {
        PublicJwk::Rsa { n, .. } => {
            let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(n)
                .ok()?;
            u32::try_from(n.len() * 8).ok()
        }
        PublicJwk::Ec { .. } => None,
    }
}

/// The label and DER content of a PEM block.
fn pem_der(pem: &str) -> Option<(String, Vec<u8>)> {
    let begun = pem.trim().strip_prefix("-----BEGIN ")?;
    let (label, rest) = begun.split_once("-----")?;
    let (body, _) = rest.split_once(&format!("-----END {label}-----"))?;
    let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .ok()?;
    Some((label.to_owned(), der))
}

/// A private key from PEM: PKCS#1 or PKCS#8 RSA (at least 2048 bits), SEC1 or PKCS#8 EC on
/// P-256 or P-384.
fn import_private(id: KeyId, pem: &str) -> Result<GeneratedKey, KeyImportError> {
    let bad = |message: &str| KeyImportError::new("key.privateKey", message);
    let (label, der) = pem_der(pem)
        .ok_or_else(|| bad("The private key is not PEM (-----BEGIN PRIVATE KEY-----)."))?;
    match label.as_str() {
        "RSA PRIVATE KEY" => import_rsa(id, &der),
        "EC PRIVATE KEY" => import_ec(id, &der),
        "PRIVATE KEY" if RsaKeyPair::from_pkcs8(&der).is_ok() => {
            let pkcs1 = pkcs8_private_key(&der)
                .ok_or_else(|| bad("The RSA private key is not PKCS#8 as expected."))?;
            import_rsa(id, pkcs1)
        }
        "PRIVATE KEY" => import_ec(id, &der),
        "ENCRYPTED PRIVATE KEY" => Err(bad(
            "An encrypted private key cannot be imported: decrypt it first.",
        )),
        _ => Err(bad("The PEM block is not a private key.")),
    }
}

fn import_rsa(id: KeyId, pkcs1: &[u8]) -> Result<GeneratedKey, KeyImportError> {
    let pair = RsaKeyPair::from_der(pkcs1).map_err(|e| {
        KeyImportError::new(
            "key.privateKey",
            format!("The RSA private key is not usable: {e}."),
        )
    })?;
    let bits = pair.public_modulus_len() * 8;
    if bits < 2048 {
        return Err(KeyImportError::new(
            "key.privateKey",
            format!("An RSA key needs at least 2048 bits; this one has {bits}."),
        ));
    }
    Ok(GeneratedKey {
        id,
        algorithm: SigningAlgorithm::Rs256,
        private: Some(PrivateKeyDer(pkcs1.to_vec())),
        public_jwk: Some(rsa_jwk(&pair)),
        length: u32::try_from(bits).ok(),
    })
}

fn import_ec(id: KeyId, der: &[u8]) -> Result<GeneratedKey, KeyImportError> {
    for algorithm in [SigningAlgorithm::Es256, SigningAlgorithm::Es384] {
        let Some(curve) = ec_algorithm(algorithm) else {
            continue;
        };
        let Ok(pair) = EcdsaKeyPair::from_private_key_der(curve, der) else {
            continue;
        };
        let (Ok(pkcs8), Some(jwk)) = (
            pair.to_pkcs8v1(),
            ec_jwk(algorithm, pair.public_key().as_ref()),
        ) else {
            continue;
        };
        return Ok(GeneratedKey {
            id,
            algorithm,
            private: Some(PrivateKeyDer(pkcs8.as_ref().to_vec())),
            public_jwk: Some(jwk),
            length: None,
        });
    }
    Err(KeyImportError::new(
        "key.privateKey",
        "The private key is neither RSA nor EC on P-256 or P-384.",
    ))
}

/// A public key from PEM (an X.509 SubjectPublicKeyInfo): RSA of at least 2048 bits, or EC on
/// P-256 or P-384; its algorithm and JWK.
fn public_jwk_of_pem(pem: &str) -> Result<(SigningAlgorithm, PublicJwk), KeyImportError> {
    let bad = |message: &str| KeyImportError::new("key.publicKey", message);
    let not_spki = || {
        bad("The public key must be PEM of an X.509 SubjectPublicKeyInfo (-----BEGIN PUBLIC KEY-----).")
    };
    let (label, der) = pem_der(pem).ok_or_else(not_spki)?;
    if label != "PUBLIC KEY" {
        return Err(not_spki());
    }
    let spki = SubjectPublicKeyInfoRef::try_from(der.as_slice()).map_err(|_| not_spki())?;
    let key = spki.subject_public_key.as_bytes().ok_or_else(not_spki)?;
    if spki.algorithm.oid == RSA_ENCRYPTION_OID {
        let rsa = pkcs1::RsaPublicKey::from_der(key)
            .map_err(|_| bad("The RSA public key does not parse."))?;
        let (n, e) = (rsa.modulus.as_bytes(), rsa.public_exponent.as_bytes());
        if n.len() * 8 < 2048 {
            return Err(bad("An RSA key needs at least 2048 bits."));
        }
        return Ok((
            SigningAlgorithm::Rs256,
            PublicJwk::Rsa {
                n: b64url(n),
                e: b64url(e),
            },
        ));
    }
    if spki.algorithm.oid == EC_PUBLIC_KEY_OID {
        let curve = spki.algorithm.parameters_oid().ok().and_then(curve_of_oid);
        let algorithm = match curve {
            Some("P-256") => SigningAlgorithm::Es256,
            Some("P-384") => SigningAlgorithm::Es384,
            _ => return Err(bad("An EC public key must be on P-256 or P-384.")),
        };
        let jwk = ec_jwk(algorithm, key).ok_or_else(|| bad("The EC public key does not parse."))?;
        return Ok((algorithm, jwk));
    }
    Err(bad("The public key is neither RSA nor EC."))
}

/// The `privateKey` OCTET STRING of a PKCS#8 `PrivateKeyInfo` (RFC 5208).
fn pkcs8_private_key(der: &[u8]) -> Option<&[u8]> {
    pkcs8::PrivateKeyInfo::try_from(der)
        .ok()
        .map(|info| info.private_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::signing::pem;
    use crate::domain::{Instant, SigningKey};
    use serde_json::json;

    fn id() -> KeyId {
        KeyId::from_random_bytes([9; 16])
    }

    /// Signs with the made key and verifies with its stored form.
    fn signs_and_verifies(made: &GeneratedKey) {
        let key = made.sealed("sealed".into(), None, Instant::from_secs(0));
        let private = made.private.as_ref().unwrap();
        let token = key.sign(private, &json!({"sub": "x"})).unwrap();
        let secret = made.algorithm.is_hmac().then_some(private);
        assert_eq!(key.verify(&token, secret).unwrap()["sub"], "x");
        // The header a verifier reads to pick the key and the algorithm.
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.id.to_string().as_str()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(format!("{:?}", header.alg), made.algorithm.name());
        // A parsed signer is reused: its second token verifies as well as its first.
        let signer = key.signer(private).unwrap();
        let first = signer.sign(&json!({"sub": "a"})).unwrap();
        let second = signer.sign(&json!({"sub": "b"})).unwrap();
        assert_eq!(key.verify(&first, secret).unwrap()["sub"], "a");
        assert_eq!(key.verify(&second, secret).unwrap()["sub"], "b");
    }

    #[test]
    fn a_signer_cache_serves_only_the_sealed_value_it_was_filled_from() {
        use crate::domain::signing::SignerCache;
        use std::sync::Arc;
        let made = AwsLcKeyMaker
            .generate(id(), SigningAlgorithm::Es256, None)
            .unwrap();
        let key = made.sealed("sealed-once".into(), None, Instant::from_secs(0));
        let cache = SignerCache::default();
        assert!(cache.get(&key).is_none());
        let signer = Arc::new(key.signer(made.private.as_ref().unwrap()).unwrap());
        cache.put(&key, signer.clone());
        assert!(Arc::ptr_eq(&cache.get(&key).unwrap(), &signer));
        // The same id sealed anew (the key deleted and imported again) is opened again.
        let again = made.sealed("sealed-again".into(), None, Instant::from_secs(0));
        assert!(cache.get(&again).is_none());
    }

    fn private_pem(made: &GeneratedKey, label: &str) -> String {
        pem(label, &made.private.as_ref().unwrap().0)
    }

    fn import_pem(
        private: Option<&str>,
        public: Option<&str>,
    ) -> Result<GeneratedKey, KeyImportError> {
        AwsLcKeyMaker.import(
            id(),
            KeyMaterial::Pem {
                algorithm: None,
                private_key: private,
                public_key: public,
            },
        )
    }

    #[test]
    fn every_algorithm_makes_a_key_that_signs() {
        for algorithm in SigningAlgorithm::ALL {
            let made = AwsLcKeyMaker.generate(id(), algorithm, None).unwrap();
            signs_and_verifies(&made);
            let key = made.sealed("sealed".into(), None, Instant::from_secs(0));
            assert_eq!(key.jwk().is_some(), !algorithm.is_hmac(), "{algorithm:?}");
        }
        let hs512 = AwsLcKeyMaker
            .generate(id(), SigningAlgorithm::Hs512, None)
            .unwrap();
        assert_eq!(hs512.length, Some(512));
    }

    #[test]
    fn private_keys_import_from_pkcs1_pkcs8_and_sec1_and_keep_their_public_half() {
        let rsa = AwsLcKeyMaker
            .generate(id(), SigningAlgorithm::Rs256, Some(3072))
            .unwrap();
        let p256 = AwsLcKeyMaker
            .generate(id(), SigningAlgorithm::Es256, None)
            .unwrap();
        let p384 = AwsLcKeyMaker
            .generate(id(), SigningAlgorithm::Es384, None)
            .unwrap();
        let rsa_pkcs8 = RsaKeyPair::from_der(&rsa.private.as_ref().unwrap().0)
            .unwrap()
            .as_der()
            .unwrap();
        let p384_sec1 = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P384_SHA384_FIXED_SIGNING,
            &p384.private.as_ref().unwrap().0,
        )
        .unwrap()
        .private_key()
        .as_der()
        .unwrap();
        for (made, private) in [
            (&rsa, private_pem(&rsa, "RSA PRIVATE KEY")),
            (&rsa, pem("PRIVATE KEY", rsa_pkcs8.as_ref())),
            (&p256, private_pem(&p256, "PRIVATE KEY")),
            (&p384, pem("EC PRIVATE KEY", p384_sec1.as_ref())),
        ] {
            let public = made.public_jwk.as_ref().unwrap().to_pem().unwrap();
            let imported = import_pem(Some(&private), Some(&public)).unwrap();
            assert_eq!(imported.algorithm, made.algorithm);
            assert_eq!(imported.public_jwk, made.public_jwk);
            assert_eq!(imported.length, made.length);
            signs_and_verifies(&imported);
        }
    }

    #[test]
    fn a_public_key_alone_imports_and_cannot_sign() {
        let made = AwsLcKeyMaker
            .generate(id(), SigningAlgorithm::Es384, None)
            .unwrap();
        let public = made.public_jwk.as_ref().unwrap().to_pem().unwrap();
        let imported = import_pem(None, Some(&public)).unwrap();
        assert_eq!(imported.algorithm, SigningAlgorithm::Es384);
        assert_eq!(imported.public_jwk, made.public_jwk);
        assert!(imported.private.is_none());
        let key: SigningKey = imported.sealed(String::new(), None, Instant::from_secs(0));
        assert!(!key.can_sign());
        assert_eq!(key.jwk(), None, "a key that signs nothing is not published");
    }

    #[test]
    fn material_that_does_not_fit_is_refused_naming_the_property() {
        let rsa = AwsLcKeyMaker
            .generate(id(), SigningAlgorithm::Rs256, None)
            .unwrap();
        let other = AwsLcKeyMaker
            .generate(id(), SigningAlgorithm::Rs256, None)
            .unwrap();
        let private = private_pem(&rsa, "RSA PRIVATE KEY");
        let wrong_public = other.public_jwk.as_ref().unwrap().to_pem().unwrap();
        let refused = |result: Result<GeneratedKey, KeyImportError>| result.unwrap_err().field;
        assert_eq!(
            refused(import_pem(Some(&private), Some(&wrong_public))),
            "key.publicKey"
        );
        assert_eq!(refused(import_pem(Some("not pem"), None)), "key.privateKey");
        assert_eq!(
            refused(import_pem(
                Some(&pem("ENCRYPTED PRIVATE KEY", b"\x30\x00")),
                None
            )),
            "key.privateKey"
        );
        assert_eq!(
            refused(import_pem(None, Some(&pem("CERTIFICATE", b"\x30\x00")))),
            "key.publicKey"
        );
        assert_eq!(
            refused(AwsLcKeyMaker.import(
                id(),
                KeyMaterial::Pem {
                    algorithm: Some(SigningAlgorithm::Es256),
                    private_key: Some(&private),
                    public_key: None,
                },
            )),
            "key.algorithm"
        );
        for (algorithm, secret) in [
            (SigningAlgorithm::Hs256, [7u8; 31].as_slice()),
            (SigningAlgorithm::Hs512, [7u8; 63].as_slice()),
        ] {
            let short = AwsLcKeyMaker.import(id(), KeyMaterial::Secret { algorithm, secret });
            assert_eq!(refused(short), "key.secret");
        }
        let hmac = AwsLcKeyMaker
            .import(
                id(),
                KeyMaterial::Secret {
                    algorithm: SigningAlgorithm::Hs512,
                    secret: &[7u8; 64],
                },
            )
            .unwrap();
        signs_and_verifies(&hmac);
    }

    #[test]
    fn s24_a_key_never_prints_its_private_part() {
        let made = AwsLcKeyMaker
            .generate(id(), SigningAlgorithm::Hs256, None)
            .unwrap();
        let printed = format!("{made:?}");
        assert!(printed.contains("redacted"), "{printed}");
        assert!(!printed.contains(&format!("{:?}", made.private.as_ref().unwrap().0)));
    }
}
