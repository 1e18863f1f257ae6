use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::{ApplicationId, TenantId, UserId};
use super::secret::SecretHash;
use super::time::Instant;

/// A short one-time code is burned after this many wrong tries (S7).
pub(crate) const MAX_ONE_TIME_CODE_ATTEMPTS: u32 = 5;

/// How the user will present the code: by clicking a link, or by typing a short code too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum LoginStrategy {
    #[default]
    ClickableLink,
    FormField,
}

impl LoginStrategy {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ClickableLink" => Some(Self::ClickableLink),
            "FormField" => Some(Self::FormField),
            _ => None,
        }
    }
}

/// A passwordless code as stored: its hash, never the code (S2), and what it may log in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordlessCode {
    pub code_hash: SecretHash,
    /// Present for `FormField` starts: the login must also present this short code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_code_hash: Option<SecretHash>,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub application_id: ApplicationId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Map<String, Value>>,
    pub login_strategy: LoginStrategy,
    pub insert_instant: Instant,
    pub expires_at: Instant,
    /// Set once the code has been emailed: a login with it then proves the email address.
    #[serde(default)]
    pub emailed: bool,
    #[serde(default)]
    pub failed_attempts: u32,
    /// For a login asked for on the hosted page: the hash of the cookie that page gave the
    /// browser. Only that browser may complete the login by the link (S14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_binding: Option<SecretHash>,
}

impl PasswordlessCode {
    /// TTL is checked on every read whatever the store's sweeper has done (S4).
    pub(crate) fn is_live(&self, now: Instant) -> bool {
        now < self.expires_at
    }

    pub(crate) fn time_to_live_seconds(&self, now: Instant) -> i64 {
        ((self.expires_at.as_millis() - now.as_millis()).max(0) + 999) / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::*;

    #[test]
    fn s4_a_code_is_dead_from_its_expiry_instant_on() {
        let code = PasswordlessCode {
            code_hash: SecretHash::of("c"),
            one_time_code_hash: None,
            tenant_id: TenantId::from_random_bytes([1; 16]),
            user_id: UserId::from_random_bytes([2; 16]),
            application_id: ApplicationId::from_random_bytes([3; 16]),
            state: None,
            login_strategy: LoginStrategy::ClickableLink,
            insert_instant: Instant::from_secs(0),
            expires_at: Instant::from_secs(180),
            emailed: false,
            failed_attempts: 0,
            browser_binding: None,
        };
        assert!(code.is_live(Instant::from_millis(179_999)));
        assert!(!code.is_live(Instant::from_secs(180)));
        assert_eq!(code.time_to_live_seconds(Instant::from_secs(60)), 120);
    }
}
