use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::secret::Secret;
use super::validation::{FieldError, ValidationErrors};

/// The source of randomness every code is drawn from. In production it is the OS CSPRNG (S1);
/// tests inject a deterministic one.
pub trait Entropy: Send + Sync {
    fn fill(&self, buf: &mut [u8]) -> Result<(), EntropyError>;
}

#[derive(Debug, thiserror::Error)]
#[error("the random source failed: {0}")]
pub struct EntropyError(pub String);

/// The kinds of code FusionAuth's tenant `externalIdentifierConfiguration` can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GeneratorType {
    RandomAlpha,
    RandomAlphaNumeric,
    RandomDigits,
    RandomBytes,
}

const DIGITS: &[u8] = b"0123456789";
const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALPHA_NUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

impl GeneratorType {
    /// The allowed lengths: characters for the alphabets, bytes of entropy for `randomBytes`.
    pub const fn length_range(self) -> (u32, u32) {
        match self {
            GeneratorType::RandomBytes => (16, 128),
            _ => (4, 12),
        }
    }

    const fn alphabet(self) -> &'static [u8] {
        match self {
            GeneratorType::RandomAlpha => ALPHA,
            GeneratorType::RandomAlphaNumeric => ALPHA_NUMERIC,
            GeneratorType::RandomDigits | GeneratorType::RandomBytes => DIGITS,
        }
    }
}

/// How a tenant wants its codes made: `{length, type}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGenerator {
    pub length: u32,
    #[serde(rename = "type")]
    pub kind: GeneratorType,
}

impl CodeGenerator {
    pub(crate) const LINK_DEFAULT: CodeGenerator = CodeGenerator {
        length: 32,
        kind: GeneratorType::RandomBytes,
    };
    pub(crate) const ONE_TIME_DEFAULT: CodeGenerator = CodeGenerator {
        length: 6,
        kind: GeneratorType::RandomDigits,
    };
    /// FusionAuth's default for the short code a verification email carries.
    pub(crate) const VERIFICATION_ONE_TIME_DEFAULT: CodeGenerator = CodeGenerator {
        length: 6,
        kind: GeneratorType::RandomAlphaNumeric,
    };

    pub fn validate(&self, field: &str) -> Result<(), ValidationErrors> {
        let (min, max) = self.kind.length_range();
        if self.length < min || self.length > max {
            return Err(ValidationErrors::field(FieldError::invalid(
                &format!("{field}.length"),
                format!("The length must be between {min} and {max} for this generator type."),
            )));
        }
        Ok(())
    }

    /// Draws a fresh code. Link codes (`randomBytes`) are URL-safe base64 without padding;
    /// the alphabets are sampled uniformly by rejection, so no symbol is favoured (S1).
    pub fn generate(&self, entropy: &dyn Entropy) -> Result<Secret, EntropyError> {
        match self.kind {
            GeneratorType::RandomBytes => {
                let mut bytes = vec![0u8; self.length as usize];
                entropy.fill(&mut bytes)?;
                Ok(Secret::new(URL_SAFE_NO_PAD.encode(bytes)))
            }
            kind => uniform_string(kind.alphabet(), self.length as usize, entropy).map(Secret::new),
        }
    }
}

pub(crate) fn uniform_string(
    alphabet: &[u8],
    length: usize,
    entropy: &dyn Entropy,
) -> Result<String, EntropyError> {
    // Bytes at or above the largest multiple of the alphabet size would favour the first
    // symbols (modulo bias); they are thrown away and drawn again.
    let size = alphabet.len();
    let accept_below = 256 - (256 % size);
    let mut out = String::with_capacity(length);
    let mut pool = [0u8; 32];
    while out.len() < length {
        entropy.fill(&mut pool)?;
        for &byte in &pool {
            if (byte as usize) < accept_below && out.len() < length {
                out.push(alphabet[byte as usize % size] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Plays back a fixed byte sequence, cycling, so tests see exactly what a generator does.
    struct Script(Mutex<(Vec<u8>, usize)>);

    impl Script {
        fn new(bytes: Vec<u8>) -> Self {
            Self(Mutex::new((bytes, 0)))
        }
    }

    impl Entropy for Script {
        fn fill(&self, buf: &mut [u8]) -> Result<(), EntropyError> {
            let mut state = self.0.lock().unwrap();
            for b in buf.iter_mut() {
                *b = state.0[state.1 % state.0.len()];
                state.1 += 1;
            }
            Ok(())
        }
    }

    fn counter() -> Script {
        Script::new((0..=255).collect())
    }

    #[test]
    fn s1_default_link_code_carries_256_bits_as_url_safe_base64() {
        let code = CodeGenerator::LINK_DEFAULT.generate(&counter()).unwrap();
        assert_eq!(code.expose().len(), 43);
        assert!(code
            .expose()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(
            URL_SAFE_NO_PAD.decode(code.expose()).unwrap(),
            (0..32).collect::<Vec<u8>>()
        );
    }

    #[test]
    fn every_generator_type_yields_its_alphabet_and_length() {
        let cases = [
            (GeneratorType::RandomDigits, 6, DIGITS),
            (GeneratorType::RandomAlpha, 12, ALPHA),
            (GeneratorType::RandomAlphaNumeric, 4, ALPHA_NUMERIC),
        ];
        for (kind, length, alphabet) in cases {
            let code = CodeGenerator { length, kind }.generate(&counter()).unwrap();
            assert_eq!(code.expose().len(), length as usize, "{kind:?}");
            assert!(
                code.expose().bytes().all(|b| alphabet.contains(&b)),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn s1_alphabet_sampling_rejects_biased_bytes() {
        // 250..=255 lie above the last full multiple of ten, so they must be skipped.
        let script = Script::new(vec![250, 251, 252, 253, 254, 255, 7, 13]);
        let code = CodeGenerator {
            length: 2,
            kind: GeneratorType::RandomDigits,
        }
        .generate(&script)
        .unwrap();
        assert_eq!(code.expose(), "73");
    }

    #[test]
    fn s1_every_symbol_is_equally_likely_over_all_byte_values() {
        // One sweep over every byte value accepts 250 of them, and must hit each digit 25 times.
        let digits = uniform_string(DIGITS, 250, &counter()).unwrap();
        let mut counts = [0usize; 10];
        for b in digits.bytes() {
            counts[(b - b'0') as usize] += 1;
        }
        assert_eq!(counts, [25; 10]);
    }

    #[test]
    fn lengths_outside_the_type_range_are_rejected() {
        for (kind, bad, good) in [
            (GeneratorType::RandomBytes, [15, 129], [16, 128]),
            (GeneratorType::RandomDigits, [3, 13], [4, 12]),
            (GeneratorType::RandomAlpha, [0, 13], [4, 12]),
            (GeneratorType::RandomAlphaNumeric, [3, 100], [4, 12]),
        ] {
            for length in bad {
                let errors = CodeGenerator { length, kind }.validate("gen").unwrap_err();
                assert!(errors.has_code("[invalid]gen.length"), "{kind:?} {length}");
            }
            for length in good {
                assert!(
                    CodeGenerator { length, kind }.validate("gen").is_ok(),
                    "{kind:?} {length}"
                );
            }
        }
    }
}
