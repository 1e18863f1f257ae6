//! The use cases. They take ports and return domain results; the rules of the product live here.

pub mod api_keys;
pub mod bootstrap;
pub mod jwt;
pub mod keys;
pub mod links;
pub mod mail;
pub mod management;
pub mod oauth;
pub mod oidc;
pub mod passwordless;
pub mod system;
pub mod templates;
pub mod tenancy;
pub mod tokens;
pub mod two_factor;
pub mod users;
pub mod verification;

use crate::domain::email::RenderError;
use crate::domain::signing::SigningError;
use crate::domain::validation::ValidationErrors;
use crate::ports::{EntropyError, KeyGenError, MailError, StoreError, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("the request broke validation rules")]
    Invalid(ValidationErrors),
    /// Unknown id, or a code that is unknown, expired, used or superseded (S10).
    #[error("not found")]
    NotFound,
    /// A live code that needs its short one-time code was presented without it (`missing`) or
    /// with a wrong one. The try was counted; the code lives until its last try (S7).
    #[error("the one-time code is missing or wrong")]
    WrongOneTimeCode { missing: bool },
    /// The caller's key may not act on what it named (S21, S22).
    #[error("not authorized")]
    Unauthorized,
    #[error("the user is locked or inactive")]
    UserLocked,
    #[error("the user has expired")]
    UserExpired,
    #[error("too many requests")]
    RateLimited,
    /// The feature the request uses is turned off where it would act (a tenant that does not
    /// verify email addresses, an application that does not verify registrations).
    #[error("the feature is disabled")]
    Disabled,
    /// A second-factor code that is wrong, used already, or refused while the account's
    /// failed-attempt limit holds (FusionAuth's 421).
    #[error("the two-factor code is not valid")]
    TwoFactorCodeWrong,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Entropy(#[from] EntropyError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    KeyGen(#[from] KeyGenError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{0}")]
    Internal(String),
}

impl From<ValidationErrors> for FlowError {
    fn from(errors: ValidationErrors) -> Self {
        FlowError::Invalid(errors)
    }
}

pub(crate) type FlowResult<T> = Result<T, FlowError>;

/// `[duplicate]field`: a value that must be unique is taken.
pub(crate) fn duplicate(field: &str, what: &str) -> FlowError {
    crate::domain::validation::ValidationErrors::field(crate::domain::validation::FieldError::new(
        "duplicate",
        field,
        format!("{what} already exists."),
    ))
    .into()
}

/// A fresh random v4 id from the injected entropy.
pub(crate) fn random_id_bytes(
    entropy: &dyn crate::ports::Entropy,
) -> Result<[u8; 16], EntropyError> {
    let mut bytes = [0u8; 16];
    entropy.fill(&mut bytes)?;
    Ok(bytes)
}
