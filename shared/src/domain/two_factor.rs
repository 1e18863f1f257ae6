//! Two-factor sign-in, as FusionAuth has it: methods a user enrols (an authenticator app with
//! RFC 6238 codes, or codes sent by email), recovery codes that stand in for a method once
//! each, the pending second step of a login (its `twoFactorId`), and the trust a browser earns
//! by asking to be remembered (its `twoFactorTrustId`).
//!
//! What a user shows (`user.twoFactor.methods`) holds no secret; the authenticator secrets
//! (sealed by the key vault, S26) and the recovery codes (hashed, S2) live apart, in
//! [`TwoFactorSecrets`], read only when a code is checked.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::generator::{uniform_string, Entropy, EntropyError};
use super::ids::{ApplicationId, TemplateId, TenantId, UserId};
use super::kept::{check_kept, refuse_unhonoured, Kept};
use super::oauth::AuthorizationRequest;
use super::secret::{secrets_equal, Secret, SecretHash};
use super::time::Instant;
use super::validation::{FieldError, ValidationErrors};

/// The kinds of second factor. SMS would be a third, behind the same records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TwoFactorMethodKind {
    Authenticator,
    Email,
}

impl TwoFactorMethodKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "authenticator" => Some(Self::Authenticator),
            "email" => Some(Self::Email),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authenticator => "authenticator",
            Self::Email => "email",
        }
    }
}

/// FusionAuth's `AuthenticatorConfiguration`: the only one it (and this server) makes codes
/// with: HMAC-SHA1, 6 digits, 30 seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorConfiguration {
    pub algorithm: String,
    pub code_length: u32,
    pub time_step: u64,
}

impl Default for AuthenticatorConfiguration {
    fn default() -> Self {
        Self {
            algorithm: "HmacSHA1".into(),
            code_length: TOTP_DIGITS as u32,
            time_step: TOTP_STEP_SECONDS,
        }
    }
}

/// A method as the user object and a 242 show it: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorMethod {
    #[serde(default)]
    pub id: String,
    pub method: TwoFactorMethodKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator: Option<AuthenticatorConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// (FusionAuth) the method the user's last second step used.
    #[serde(default)]
    pub last_used: bool,
}

/// `user.twoFactor`: the methods a login will ask for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserTwoFactor {
    #[serde(default)]
    pub methods: Vec<TwoFactorMethod>,
}

impl UserTwoFactor {
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }

    pub fn method(&self, id: &str) -> Option<&TwoFactorMethod> {
        self.methods.iter().find(|m| m.id == id)
    }

    /// Marks `id` as the method used last, and no other.
    pub(crate) fn mark_used(&mut self, id: &str) {
        for method in &mut self.methods {
            method.last_used = method.id == id;
        }
    }
}

/// Method ids are short, as FusionAuth's are, and unique per user only.
pub(crate) const METHOD_ID_LENGTH: usize = 4;
const METHOD_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

pub(crate) fn new_method_id(
    entropy: &dyn Entropy,
    taken: &UserTwoFactor,
) -> Result<String, EntropyError> {
    loop {
        let id = uniform_string(METHOD_ID_ALPHABET, METHOD_ID_LENGTH, entropy)?;
        if taken.method(&id).is_none() {
            return Ok(id);
        }
    }
}

// ---- Authenticator (TOTP, RFC 6238) ----

pub(crate) const TOTP_DIGITS: usize = 6;
pub(crate) const TOTP_STEP_SECONDS: u64 = 30;
/// Steps either side of now that still count, for clocks that drift.
pub(crate) const TOTP_SKEW_STEPS: u64 = 1;
/// The secret this server makes: 160 bits, RFC 4226's recommendation.
pub(crate) const TOTP_SECRET_BYTES: usize = 20;
/// The shortest secret a client may bring: RFC 4226's minimum of 128 bits.
pub(crate) const TOTP_MIN_SECRET_BYTES: usize = 16;
pub(crate) const TOTP_MAX_SECRET_BYTES: usize = 64;

/// An authenticator app's shared secret, in the clear only while a code is made or checked.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthenticatorSecret(Vec<u8>);

impl std::fmt::Debug for AuthenticatorSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthenticatorSecret(<redacted>)")
    }
}

impl AuthenticatorSecret {
    pub fn generate(entropy: &dyn Entropy) -> Result<Self, EntropyError> {
        let mut bytes = vec![0u8; TOTP_SECRET_BYTES];
        entropy.fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// A secret as a client brings it; `None` when its length is outside the bounds.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (TOTP_MIN_SECRET_BYTES..=TOTP_MAX_SECRET_BYTES)
            .contains(&bytes.len())
            .then_some(Self(bytes))
    }

    /// FusionAuth's `secret`: standard base64.
    pub fn from_base64(text: &str) -> Option<Self> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(Self::from_bytes)
    }

    /// FusionAuth's `secretBase32Encoded`: RFC 4648 base32, padding and case optional.
    pub fn from_base32(text: &str) -> Option<Self> {
        let cleaned: String = text
            .trim()
            .trim_end_matches('=')
            .to_ascii_uppercase()
            .chars()
            .filter(|c| *c != ' ')
            .collect();
        base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &cleaned)
            .and_then(Self::from_bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn to_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }

    pub(crate) fn to_base32(&self) -> String {
        base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &self.0)
    }

    fn totp(&self) -> totp_rs::TOTP {
        // `new_unchecked`: the length is checked where the secret is made or accepted.
        totp_rs::TOTP::new_unchecked(
            totp_rs::Algorithm::SHA1,
            TOTP_DIGITS,
            TOTP_SKEW_STEPS as u8,
            TOTP_STEP_SECONDS,
            self.0.clone(),
        )
    }

    /// The code for the step `now` falls in (what an authenticator app shows).
    pub fn code_at(&self, now: Instant) -> String {
        self.totp().generate(unix_seconds(now))
    }

    /// The step of `code` within the allowed skew of `now` that comes after `used_before`
    /// (the step the method last accepted; a code is refused when replayed within its
    /// window), compared in constant time.
    pub(crate) fn matching_step(&self, code: &str, now: Instant, used_before: u64) -> Option<u64> {
        let code = code.trim();
        if code.len() != TOTP_DIGITS {
            return None;
        }
        let totp = self.totp();
        let current = unix_seconds(now) / TOTP_STEP_SECONDS;
        let mut found = None;
        for step in current.saturating_sub(TOTP_SKEW_STEPS)..=current + TOTP_SKEW_STEPS {
            let expected = totp.generate(step * TOTP_STEP_SECONDS);
            if secrets_equal(expected.as_bytes(), code.as_bytes()) && step > used_before {
                found = Some(step);
            }
        }
        found
    }
}

fn unix_seconds(now: Instant) -> u64 {
    u64::try_from(now.as_secs()).unwrap_or(0)
}

/// The `otpauth://` URI an authenticator app reads (from a QR code): the Key Uri Format that
/// Google Authenticator defined and every app follows.
pub(crate) fn otpauth_uri(
    secret: &AuthenticatorSecret,
    issuer: &str,
    account: Option<&str>,
) -> String {
    let enc = |text: &str| -> String {
        form_urlencoded::byte_serialize(text.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let label = match account {
        Some(account) => format!("{}:{}", enc(issuer), enc(account)),
        None => enc(issuer),
    };
    format!(
        "otpauth://totp/{label}?secret={}&issuer={}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_SECONDS}",
        secret.to_base32(),
        enc(issuer)
    )
}

// ---- Recovery codes ----

/// FusionAuth hands out ten, each `XXXXX-XXXXX`.
pub(crate) const RECOVERY_CODE_COUNT: usize = 10;
const RECOVERY_CODE_HALF: usize = 5;
const RECOVERY_CODE_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Ten fresh recovery codes, as shown once to the user.
pub(crate) fn new_recovery_codes(entropy: &dyn Entropy) -> Result<Vec<Secret>, EntropyError> {
    (0..RECOVERY_CODE_COUNT)
        .map(|_| {
            let text = uniform_string(RECOVERY_CODE_ALPHABET, RECOVERY_CODE_HALF * 2, entropy)?;
            let (a, b) = text.split_at(RECOVERY_CODE_HALF);
            Ok(Secret::new(format!("{a}-{b}")))
        })
        .collect()
}

/// A recovery code as typed: the dash optional, any case. `None` for what cannot be one.
pub(crate) fn recovery_code_hash(typed: &str) -> Option<SecretHash> {
    let normalized: String = typed
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    (normalized.len() == RECOVERY_CODE_HALF * 2
        && normalized.bytes().all(|b| b.is_ascii_alphanumeric()))
    .then(|| SecretHash::of(&normalized))
}

// ---- What is kept apart from the user ----

/// An authenticator method's secret, sealed (S26), and the last step it accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedAuthenticator {
    pub method_id: String,
    pub sealed_secret: String,
    #[serde(default)]
    pub last_used_step: u64,
}

/// A user's two-factor secrets. `version` grows by one with every save, so that two
/// concurrent uses of one recovery code or one authenticator step cannot both succeed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorSecrets {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub version: u64,
    #[serde(default)]
    pub authenticators: Vec<SealedAuthenticator>,
    #[serde(default)]
    pub recovery_code_hashes: Vec<SecretHash>,
    /// When the user's trusted browsers were last ended (the methods reset, or asked for): a
    /// trust granted before it skips no second step (S38).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusts_ended_instant: Option<Instant>,
}

impl TwoFactorSecrets {
    pub fn empty(user_id: UserId, tenant_id: TenantId) -> Self {
        Self {
            user_id,
            tenant_id,
            version: 0,
            authenticators: Vec::new(),
            recovery_code_hashes: Vec::new(),
            trusts_ended_instant: None,
        }
    }

    /// Whether a trust was granted after the user's trusts last ended.
    pub(crate) fn honours(&self, trust: &TwoFactorTrust) -> bool {
        self.trusts_ended_instant
            .is_none_or(|ended| trust.start_instant > ended)
    }

    pub fn authenticator(&self, method_id: &str) -> Option<&SealedAuthenticator> {
        self.authenticators
            .iter()
            .find(|a| a.method_id == method_id)
    }

    /// Whether `hash` is one of the unused recovery codes (compared in constant time).
    pub(crate) fn has_recovery_code(&self, hash: &SecretHash) -> bool {
        self.recovery_code_hashes
            .iter()
            .fold(false, |found, stored| found | stored.matches(hash))
    }
}

/// The vault context a method's secret is sealed for: a sealed secret copied to another user
/// or method does not open.
pub(crate) fn secret_context(user: UserId, method_id: &str) -> String {
    format!("two-factor:{user}:{method_id}")
}

// ---- The pending second step ----

/// What a pending second step is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ChallengePurpose {
    /// A login that proved its first factor: what it would have answered waits here.
    #[serde(rename_all = "camelCase")]
    Login {
        application_id: ApplicationId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<Map<String, Value>>,
        /// Set when the hosted pages asked: the authorization request to finish afterwards.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authorization: Option<Box<AuthorizationRequest>>,
    },
    /// Codes mailed to enable (`email` is where) or disable a method, outside a login.
    #[serde(rename_all = "camelCase")]
    ManageMethods {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
    },
}

/// A pending second step, stored under the hash of its id (S2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorChallenge {
    pub id_hash: SecretHash,
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub purpose: ChallengePurpose,
    /// The hash of the last code mailed for it (an email method's code, or the code an
    /// enrolment during login answers), and until when it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hash: Option<SecretHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_expires_at: Option<Instant>,
    /// The method the mailed code went out for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_method_id: Option<String>,
    #[serde(default)]
    pub failed_attempts: u32,
    pub insert_instant: Instant,
    pub expires_at: Instant,
}

/// Wrong codes a pending step takes before it ends (S7).
pub(crate) const MAX_CHALLENGE_FAILURES: u32 = 5;

impl TwoFactorChallenge {
    /// TTL is checked on every read whatever the store's sweeper has done (S4).
    pub(crate) fn is_live(&self, now: Instant) -> bool {
        now < self.expires_at && self.failed_attempts < MAX_CHALLENGE_FAILURES
    }

    /// Whether `code` is the mailed code, still in time (constant time, S3).
    pub(crate) fn mailed_code_matches(&self, code: &Secret, now: Instant) -> bool {
        match (&self.code_hash, self.code_expires_at) {
            (Some(hash), Some(until)) => now < until && hash.matches(&code.hash()),
            _ => false,
        }
    }

    pub fn application_id(&self) -> Option<ApplicationId> {
        match &self.purpose {
            ChallengePurpose::Login { application_id, .. } => Some(*application_id),
            ChallengePurpose::ManageMethods { .. } => None,
        }
    }
}

/// The id of the one pending enable/disable step a user has: a new send replaces it.
pub(crate) fn manage_methods_challenge_hash(user: UserId) -> SecretHash {
    SecretHash::of(&format!("two-factor-manage:{user}"))
}

// ---- Trusted browsers ----

/// A browser that passed a second step and asked to be trusted, stored under the hash of its
/// `twoFactorTrustId` (S2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorTrust {
    pub id_hash: SecretHash,
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub application_id: ApplicationId,
    pub start_instant: Instant,
    pub expires_at: Instant,
}

impl TwoFactorTrust {
    pub(crate) fn is_live(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

/// FusionAuth's `multiFactorConfiguration.loginPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginPolicy {
    /// A user with a method is asked for it.
    #[default]
    Enabled,
    /// Nobody is asked.
    Disabled,
    /// Everybody is asked; a user without a method enrols one first.
    Required,
}

/// FusionAuth's application `multiFactorConfiguration.trustPolicy`: which applications a
/// trusted browser skips the step for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrustPolicy {
    /// A trust earned in any application of the tenant.
    #[default]
    Any,
    /// Only a trust earned in this application.
    This,
    /// Never: every login is asked.
    None,
}

impl TrustPolicy {
    pub fn accepts(self, trust: &TwoFactorTrust, application: ApplicationId) -> bool {
        match self {
            TrustPolicy::Any => true,
            TrustPolicy::This => trust.application_id == application,
            TrustPolicy::None => false,
        }
    }
}

// ---- Configuration ----

/// A method's switch as the tenant sets it (`multiFactorConfiguration.authenticator` and
/// `.email`), with the email method's template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodConfiguration {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<TemplateId>,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

impl MethodConfiguration {
    fn switched(enabled: bool) -> Self {
        Self {
            enabled,
            template_id: None,
            kept: Kept::new(),
        }
    }
}

/// The tenant's `multiFactorConfiguration`, with FusionAuth's defaults: authenticator apps on,
/// email off, SMS off, `loginPolicy: Enabled`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TenantMultiFactorConfiguration {
    pub authenticator: MethodConfiguration,
    pub email: MethodConfiguration,
    pub login_policy: LoginPolicy,
    /// FusionAuth's properties of this object (`sms`) that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

impl Default for TenantMultiFactorConfiguration {
    fn default() -> Self {
        Self {
            authenticator: MethodConfiguration::switched(true),
            email: MethodConfiguration::switched(false),
            login_policy: LoginPolicy::Enabled,
            kept: Kept::new(),
        }
    }
}

impl TenantMultiFactorConfiguration {
    pub fn allows(&self, method: TwoFactorMethodKind) -> bool {
        match method {
            TwoFactorMethodKind::Authenticator => self.authenticator.enabled,
            TwoFactorMethodKind::Email => self.email.enabled,
        }
    }

    pub fn validate(&self, errors: &mut ValidationErrors) {
        let prefix = "tenant.multiFactorConfiguration";
        if self.email.enabled && self.email.template_id.is_none() {
            errors.push(FieldError::missing(&format!("{prefix}.email.templateId")));
        }
        check_kept(errors, prefix, &self.kept, &["sms"]);
        check_kept(
            errors,
            &format!("{prefix}.authenticator"),
            &self.authenticator.kept,
            &["algorithm", "codeLength", "timeStep"],
        );
        check_kept(errors, &format!("{prefix}.email"), &self.email.kept, &[]);
        refuse_unhonoured(
            errors,
            &format!("{prefix}.sms.enabled"),
            self.kept.get("sms").and_then(|sms| sms.get("enabled")) == Some(&Value::Bool(true)),
            "codes by SMS are not built; a user could enrol a method no login could ask for.",
        );
    }
}

/// The application's `multiFactorConfiguration`: its own policy (the tenant's when absent),
/// which trusted browsers it accepts, and its own template for emailed codes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApplicationMultiFactorConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_policy: Option<LoginPolicy>,
    pub trust_policy: TrustPolicy,
    pub email: ApplicationMethodConfiguration,
    /// FusionAuth's properties of this object (`sms`) that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApplicationMethodConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<TemplateId>,
    #[serde(flatten)]
    pub kept: Kept,
}

impl ApplicationMultiFactorConfiguration {
    pub fn validate(&self, errors: &mut ValidationErrors) {
        let prefix = "application.multiFactorConfiguration";
        check_kept(errors, prefix, &self.kept, &["sms"]);
        check_kept(errors, &format!("{prefix}.email"), &self.email.kept, &[]);
    }
}

/// The policy a login in `application` follows.
pub(crate) fn login_policy(
    tenant: &TenantMultiFactorConfiguration,
    application: &ApplicationMultiFactorConfiguration,
) -> LoginPolicy {
    application.login_policy.unwrap_or(tenant.login_policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting(std::sync::atomic::AtomicU8);
    impl Entropy for Counting {
        fn fill(&self, buf: &mut [u8]) -> Result<(), EntropyError> {
            for b in buf {
                *b = self.0.fetch_add(7, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        }
    }

    fn rfc_secret() -> AuthenticatorSecret {
        AuthenticatorSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
    }

    #[test]
    fn authenticator_codes_follow_rfc_6238() {
        // RFC 6238 appendix B, SHA1, the last six digits of each eight-digit value.
        let secret = rfc_secret();
        assert_eq!(secret.code_at(Instant::from_secs(59)), "287082");
        assert_eq!(secret.code_at(Instant::from_secs(1_111_111_109)), "081804");
        assert_eq!(secret.code_at(Instant::from_secs(1_234_567_890)), "005924");
    }

    #[test]
    fn a_code_counts_one_step_either_side_and_not_further() {
        let secret = rfc_secret();
        let now = Instant::from_secs(1_234_567_890);
        let step = 1_234_567_890 / 30;
        for offset in [-30i64, 0, 30] {
            let code = secret.code_at(Instant::from_secs(1_234_567_890 + offset));
            assert!(
                secret.matching_step(&code, now, 0).is_some(),
                "offset {offset}"
            );
        }
        let far = secret.code_at(Instant::from_secs(1_234_567_890 + 90));
        assert_eq!(secret.matching_step(&far, now, 0), None);
        assert_eq!(
            secret.matching_step(&secret.code_at(now), now, 0),
            Some(step)
        );
    }

    #[test]
    fn a_code_is_refused_when_replayed_within_its_window() {
        let secret = rfc_secret();
        let now = Instant::from_secs(1_234_567_890);
        let step = secret.matching_step(&secret.code_at(now), now, 0).unwrap();
        assert_eq!(secret.matching_step(&secret.code_at(now), now, step), None);
        let later = now.plus_secs(30);
        assert!(secret
            .matching_step(&secret.code_at(later), later, step)
            .is_some());
    }

    #[test]
    fn secrets_read_both_of_fusionauths_encodings() {
        let secret = rfc_secret();
        assert_eq!(
            AuthenticatorSecret::from_base64(&secret.to_base64()),
            Some(secret.clone())
        );
        assert_eq!(
            AuthenticatorSecret::from_base32(&secret.to_base32().to_lowercase()),
            Some(secret.clone())
        );
        assert_eq!(AuthenticatorSecret::from_base64("c2hvcnQ="), None);
        assert_eq!(AuthenticatorSecret::from_base32("not base32!"), None);
    }

    #[test]
    fn s1_recovery_codes_are_ten_distinct_five_dash_five_codes() {
        let entropy = Counting(std::sync::atomic::AtomicU8::new(0));
        let codes = new_recovery_codes(&entropy).unwrap();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        for code in &codes {
            let text = code.expose();
            assert_eq!(text.len(), 11);
            assert_eq!(&text[5..6], "-");
            assert!(recovery_code_hash(text).is_some());
        }
    }

    #[test]
    fn a_recovery_code_matches_without_its_dash_and_in_any_case() {
        let hash = recovery_code_hash("ABCDE-12345").unwrap();
        assert_eq!(recovery_code_hash("abcde12345"), Some(hash));
        assert_eq!(recovery_code_hash("abcde-1234"), None);
        let mut secrets = TwoFactorSecrets::empty(UserId::default(), TenantId::default());
        secrets.recovery_code_hashes.push(hash);
        assert!(secrets.has_recovery_code(&recovery_code_hash(" abcde-12345 ").unwrap()));
    }

    #[test]
    fn the_otpauth_uri_names_issuer_account_and_parameters() {
        let uri = otpauth_uri(&rfc_secret(), "Pied Piper", Some("jared@example.com"));
        assert!(uri.starts_with("otpauth://totp/Pied%20Piper:jared%40example.com?secret="));
        assert!(uri.ends_with("&issuer=Pied%20Piper&algorithm=SHA1&digits=6&period=30"));
    }

    #[test]
    fn trust_policies_decide_which_applications_a_trust_covers() {
        let app = ApplicationId::parse("00000000-0000-4000-8000-000000000001").unwrap();
        let other = ApplicationId::parse("00000000-0000-4000-8000-000000000002").unwrap();
        let trust = TwoFactorTrust {
            id_hash: SecretHash::of("t"),
            user_id: UserId::default(),
            tenant_id: TenantId::default(),
            application_id: app,
            start_instant: Instant::from_secs(0),
            expires_at: Instant::from_secs(10),
        };
        assert!(TrustPolicy::Any.accepts(&trust, other));
        assert!(TrustPolicy::This.accepts(&trust, app));
        assert!(!TrustPolicy::This.accepts(&trust, other));
        assert!(!TrustPolicy::None.accepts(&trust, app));
    }
}
