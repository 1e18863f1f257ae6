//! Signing-key generation with aws-lc-rs (fast even in debug builds, unlike pure-Rust RSA).

use crate::domain::signing::{b64url, GeneratedKey, PrivateKeyDer, PublicJwk};
use crate::domain::{KeyId, SigningAlgorithm};
use crate::ports::{KeyGenError, KeyMaker};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

pub struct AwsLcKeyMaker;

impl KeyMaker for AwsLcKeyMaker {
    fn generate(
        &self,
        id: KeyId,
        algorithm: SigningAlgorithm,
        length: Option<u32>,
    ) -> Result<GeneratedKey, KeyGenError> {
        let fail = |what: &str| KeyGenError(what.to_owned());
        let bits = match algorithm {
            SigningAlgorithm::Rs256 => Some(length.unwrap_or(2048)),
            SigningAlgorithm::Es256 => None,
            SigningAlgorithm::Hs256 => Some(256),
        };
        let (private_der, public_jwk) = match algorithm {
            SigningAlgorithm::Rs256 => {
                let size = match bits {
                    Some(3072) => KeySize::Rsa3072,
                    Some(4096) => KeySize::Rsa4096,
                    _ => KeySize::Rsa2048,
                };
                let pair = RsaKeyPair::generate(size).map_err(|_| fail("RSA generation"))?;
                let pkcs8 = pair.as_der().map_err(|_| fail("RSA encoding"))?;
                // jsonwebtoken signs with a PKCS#1 RSAPrivateKey: the octet string inside PKCS#8.
                let pkcs1 =
                    pkcs8_private_key(pkcs8.as_ref()).ok_or_else(|| fail("RSA PKCS#8 layout"))?;
                let public = pair.public_key();
                let jwk = PublicJwk::Rsa {
                    n: b64url(public.modulus().big_endian_without_leading_zero()),
                    e: b64url(public.exponent().big_endian_without_leading_zero()),
                };
                (pkcs1.to_vec(), Some(jwk))
            }
            SigningAlgorithm::Es256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| fail("EC generation"))?;
                let pkcs8 = pair.to_pkcs8v1().map_err(|_| fail("EC encoding"))?;
                let point = pair.public_key().as_ref();
                // An uncompressed P-256 point: 0x04, then x and y of 32 bytes each.
                if point.len() != 65 || point[0] != 4 {
                    return Err(fail("EC public key layout"));
                }
                let jwk = PublicJwk::Ec {
                    crv: "P-256".into(),
                    x: b64url(&point[1..33]),
                    y: b64url(&point[33..]),
                };
                (pkcs8.as_ref().to_vec(), Some(jwk))
            }
            SigningAlgorithm::Hs256 => {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret).map_err(|e| fail(&e.to_string()))?;
                (secret.to_vec(), None)
            }
        };
        Ok(GeneratedKey {
            id,
            algorithm,
            private: PrivateKeyDer(private_der),
            public_jwk,
            length: bits,
        })
    }
}

/// Reads one DER TLV at the start of `input`: (tag, content, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The `privateKey` OCTET STRING of a PKCS#8 `PrivateKeyInfo` (RFC 5208).
fn pkcs8_private_key(der: &[u8]) -> Option<&[u8]> {
    let (0x30, info, _) = der_tlv(der)? else {
        return None;
    };
    let (0x02, _version, rest) = der_tlv(info)? else {
        return None;
    };
    let (0x30, _algorithm, rest) = der_tlv(rest)? else {
        return None;
    };
    let (0x04, key, _) = der_tlv(rest)? else {
        return None;
    };
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_makes_a_key_that_signs() {
        for algorithm in [
            SigningAlgorithm::Rs256,
            SigningAlgorithm::Es256,
            SigningAlgorithm::Hs256,
        ] {
            let made = AwsLcKeyMaker
                .generate(KeyId::from_random_bytes([9; 16]), algorithm, None)
                .unwrap();
            let key = made.sealed("sealed".into(), None, crate::domain::Instant::from_secs(0));
            let token = key
                .sign(&made.private, &serde_json::json!({"sub": "x"}))
                .unwrap();
            assert_eq!(token.split('.').count(), 3, "{algorithm:?}");
            assert_eq!(key.jwk().is_some(), algorithm != SigningAlgorithm::Hs256);
        }
    }

    #[test]
    fn s24_a_key_never_prints_its_private_part() {
        let made = AwsLcKeyMaker
            .generate(
                KeyId::from_random_bytes([9; 16]),
                SigningAlgorithm::Hs256,
                None,
            )
            .unwrap();
        let printed = format!("{made:?}");
        assert!(printed.contains("redacted"), "{printed}");
        assert!(!printed.contains(&format!("{:?}", made.private.0)));
    }
}
