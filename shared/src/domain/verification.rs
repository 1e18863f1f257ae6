//! Email and registration verifications: a verification id (a secret as long as a link code)
//! that proves the address it was mailed to, and for FusionAuth's `FormField` strategy a short
//! one-time code the person types in as well.

use serde::{Deserialize, Serialize};

use super::ids::{ApplicationId, TenantId, UserId};
use super::secret::SecretHash;
use super::time::Instant;

/// What a verification proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum VerificationPurpose {
    /// The user's email address.
    Email,
    /// The user's registration for an application.
    #[serde(rename_all = "camelCase")]
    Registration { application_id: ApplicationId },
}

impl VerificationPurpose {
    /// The purpose's kind as stores keep it beside the verification, to take only what a
    /// request asks for.
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            VerificationPurpose::Email => "email",
            VerificationPurpose::Registration { .. } => "registration",
        }
    }
}

/// What a request may take: a verification of one kind (`email` or `registration`), and of
/// one tenant when the caller is scoped to one. Anything else is left as it was, uncounted
/// (N17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationWanted {
    pub kind: &'static str,
    pub tenant: Option<TenantId>,
}

impl VerificationWanted {
    pub fn holds(&self, verification: &Verification) -> bool {
        verification.purpose.kind_name() == self.kind
            && self.tenant.is_none_or(|t| t == verification.tenant_id)
    }
}

/// FusionAuth's `VerificationStrategy`: the link alone, or the id and a typed short code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerificationStrategy {
    #[default]
    ClickableLink,
    FormField,
}

/// A verification as stored: the hash of its id, never the id (S2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub id_hash: SecretHash,
    /// Present for `FormField`: taking the verification needs this short code too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_code_hash: Option<SecretHash>,
    pub purpose: VerificationPurpose,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// The address it was mailed to: once the user's address changes, it proves nothing.
    pub email: String,
    pub insert_instant: Instant,
    pub expires_at: Instant,
    #[serde(default)]
    pub failed_attempts: u32,
}

impl Verification {
    /// TTL is checked on every read whatever the store's sweeper has done (S4).
    pub(crate) fn is_live(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

/// What taking a verification found.
#[derive(Debug, Clone, PartialEq)]
pub enum VerificationTaken {
    /// Live, and the one-time code (if it has one) was right: it is now used up.
    Taken(Box<Verification>),
    /// It wants a one-time code and none was given (`missing`, which counts nothing), or a
    /// wrong one (counted first; the fifth wrong try ends it, S7).
    WrongOneTimeCode { missing: bool },
    /// Unknown, expired or already used.
    Nothing,
}
