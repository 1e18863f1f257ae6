//! The traits the flows need. Each flow asks for the narrowest one it can, so a function's
//! permissions can be read off its handler.

use async_trait::async_trait;

use crate::domain::code::PasswordlessCode;
use crate::domain::email::OutgoingEmail;
use crate::domain::ids::{ApplicationId, RefreshTokenId, TemplateId, TenantId, UserId};
use crate::domain::oauth::AuthorizationGrant;
use crate::domain::signing::{GeneratedKey, KeyMaterial};
use crate::domain::system::SystemConfiguration;
use crate::domain::two_factor::{TwoFactorChallenge, TwoFactorSecrets, TwoFactorTrust};
use crate::domain::verification::{Verification, VerificationTaken, VerificationWanted};
use crate::domain::{
    ApiKey, Application, EmailTemplate, Instant, KeyId, SecretHash, SigningAlgorithm, SigningKey,
    Tenant, User,
};

pub use crate::domain::generator::Entropy;
pub use crate::domain::generator::EntropyError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule held: the named field's value is taken.
    #[error("the value of {0} is already in use")]
    Duplicate(&'static str),
    /// The item to update does not exist.
    #[error("no such item")]
    Missing,
    /// The store could not be reached or answered with an error.
    #[error("the store failed: {0}")]
    Unavailable(String),
    /// An item could not be read back: a bug or a hand-edited store.
    #[error("a stored item is malformed: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>>;
    async fn tenants(&self) -> StoreResult<Vec<Tenant>>;
    /// Fails with `Duplicate("tenant.id")` when the id exists.
    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    /// Removes the tenant, first, so that nothing of it is usable from then on, and then
    /// everything that belongs to it: applications, users (with their codes and refresh
    /// tokens), email templates, signing keys and API keys. `Missing` for an unknown tenant.
    async fn delete_tenant(&self, id: TenantId) -> StoreResult<()>;
}

#[async_trait]
pub trait ApplicationStore: Send + Sync {
    async fn application(&self, id: ApplicationId) -> StoreResult<Option<Application>>;
    async fn applications(&self) -> StoreResult<Vec<Application>>;
    /// Fails with `Duplicate("application.id")` when the id exists.
    async fn insert_application(&self, application: &Application) -> StoreResult<()>;
    /// `Missing` for an unknown application.
    async fn update_application(&self, application: &Application) -> StoreResult<()>;
    /// `Missing` for an unknown application.
    async fn delete_application(&self, id: ApplicationId) -> StoreResult<()>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// `email` is compared case-insensitively within the tenant.
    async fn user_by_email(&self, tenant: TenantId, email: &str) -> StoreResult<Option<User>>;
    async fn user_by_username(&self, tenant: TenantId, username: &str)
        -> StoreResult<Option<User>>;
    /// Enforces one email and one username per tenant: `Duplicate("user.email")`,
    /// `Duplicate("user.username")`, `Duplicate("user.id")`.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    /// Replaces the user's profile and registrations; fails with `Missing` for an unknown user.
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    /// Every user of a tenant, in no particular order. For the rare whole-tenant jobs (search,
    /// removing an application's registrations), not for a login's path.
    async fn users_of_tenant(&self, tenant: TenantId) -> StoreResult<Vec<User>>;
    /// Removes the user, with its email and username, so both are free again; its codes and
    /// refresh tokens go with it or no longer find it. `Missing` for an unknown user.
    async fn delete_user(&self, id: UserId) -> StoreResult<()>;
}

/// What consuming a code found.
#[derive(Debug, Clone, PartialEq)]
pub enum Consumed {
    /// The code existed, was live and is now gone.
    Code(Box<PasswordlessCode>),
    /// The code exists but the short one-time code presented with it was wrong or missing.
    /// The attempt was counted before the comparison, so concurrent guesses cannot outrun the
    /// limit; the code was deleted if this was the last allowed try (S7).
    WrongOneTimeCode { user: UserId },
    /// Unknown, expired or already used: all one answer (S10).
    Nothing,
}

/// The end of a login, as the user's record saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginFinish {
    /// The code was still the user's current one: it is cleared and the login recorded.
    Completed(User),
    /// The code was still current and is cleared, but the user may not log in (423/410).
    Refused(User),
    /// A newer start replaced this code, or the user is gone (S6).
    Superseded,
}

/// What a login presents besides the code (or, for a typed short code, the code's hash that
/// the asking browser holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof<'a> {
    /// The link alone: takes a code that has no short one-time code; on one that has, it
    /// counts as a wrong try (S7).
    Link,
    /// The short one-time code's hash, counted before it is compared (S7), presented without a
    /// browser (the API): a code bound to a browser reads as `Nothing` and counts nothing (S14).
    OneTimeCode(&'a SecretHash),
    /// The short one-time code typed in the browser the code is bound to: `binding` is the hash
    /// of its binding cookie. Only a code bound to exactly that browser is counted and compared;
    /// anything else reads as `Nothing` (S14).
    BoundOneTimeCode {
        typed: &'a SecretHash,
        binding: &'a SecretHash,
    },
    /// The link opened in the browser that asked for it on the hosted page: the hash of its
    /// binding cookie. Takes only a code bound to exactly that browser; anything else reads as
    /// `Nothing` and counts nothing (S14).
    BoundBrowser(&'a SecretHash),
}

#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Stores a code. A code started through the API (no browser binding) becomes the user's
    /// only current code, invalidating every earlier one, bound or not (S6), in the same write.
    /// A code bound to the browser that asked on the hosted page invalidates nothing: anybody
    /// who knows the address can ask there, and that must not end the owner's pending login
    /// (S31); it lives until it is used, expires, or an API start or a finished login ends it.
    async fn insert_code(&self, code: &PasswordlessCode) -> StoreResult<()>;
    /// Reads a code; expired codes read as absent (S4).
    async fn code(&self, hash: &SecretHash, now: Instant) -> StoreResult<Option<PasswordlessCode>>;
    /// Notes that the code went out by email, so its login will prove the address.
    async fn mark_code_emailed(&self, hash: &SecretHash) -> StoreResult<()>;
    /// Takes a code exactly once (S5): of any number of concurrent calls, one gets `Code`.
    /// With `tenant`, a code of another tenant is left as it was and reads as `Nothing` (X7).
    async fn consume_code(
        &self,
        hash: &SecretHash,
        proof: Proof<'_>,
        tenant: Option<TenantId>,
        now: Instant,
    ) -> StoreResult<Consumed>;
    /// Completes a login on the user's record: only if `code` is still valid (the current code
    /// for an API-started one; for a bound one, no API start or login since it was made), ends
    /// every other code of the user and, when the user may log in, records the login
    /// (`User::record_login`).
    async fn finish_login(
        &self,
        user: UserId,
        code: &PasswordlessCode,
        application: ApplicationId,
        now: Instant,
    ) -> StoreResult<LoginFinish>;
}

#[async_trait]
pub trait TemplateStore: Send + Sync {
    async fn template(&self, id: TemplateId) -> StoreResult<Option<EmailTemplate>>;
    async fn insert_template(&self, template: &EmailTemplate) -> StoreResult<()>;
    async fn templates(&self) -> StoreResult<Vec<EmailTemplate>>;
    /// `Missing` for an unknown template.
    async fn update_template(&self, template: &EmailTemplate) -> StoreResult<()>;
    /// `Missing` for an unknown template.
    async fn delete_template(&self, id: TemplateId) -> StoreResult<()>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn api_key(&self, hash: &SecretHash) -> StoreResult<Option<ApiKey>>;
    /// Fails with `Duplicate("apiKey.key")` when the key exists.
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn api_keys(&self) -> StoreResult<Vec<ApiKey>>;
    /// Replaces the key of the same hash; `Missing` when there is none.
    async fn update_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    /// `Missing` when there is none.
    async fn delete_api_key(&self, hash: &SecretHash) -> StoreResult<()>;
}

#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    async fn signing_key(&self, id: KeyId) -> StoreResult<Option<SigningKey>>;
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<()>;
    /// `Missing` for an unknown key.
    async fn delete_signing_key(&self, id: KeyId) -> StoreResult<()>;
}

/// A refresh token as stored: its hash and what it may refresh.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRefreshToken {
    pub id: RefreshTokenId,
    pub token_hash: SecretHash,
    pub user_id: UserId,
    pub application_id: ApplicationId,
    pub tenant_id: TenantId,
    pub start_instant: Instant,
    pub expires_at: Instant,
    /// The tokens one sign-in led to, by rotation: the first token's id (its `sid`), or one
    /// derived from the authorization code that made it. Revoked as a whole (S18, S20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<RefreshTokenId>,
    /// Used once already: presented again, it is a replay (S20).
    #[serde(default)]
    pub rotated: bool,
    /// Issued by the token endpoint to a client that authenticated: redeemable only there, by
    /// that client, authenticated again; never at `/api/jwt/refresh` (S35).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_bound: bool,
}

impl StoredRefreshToken {
    pub fn family_id(&self) -> RefreshTokenId {
        self.family.unwrap_or(self.id)
    }
}

/// What rotating a refresh token found.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// Live and unused: now rotated, and its successor stored. The old token.
    Rotated(StoredRefreshToken),
    /// Rotated before: a reuse. The caller revokes the family (S20).
    Reused(StoredRefreshToken),
    /// Unknown, expired, or of a revoked family.
    Nothing,
}

#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    async fn insert_refresh_token(&self, token: &StoredRefreshToken) -> StoreResult<()>;
    /// An unexpired token of a family not revoked; `rotated` tells whether it was used.
    async fn refresh_token(
        &self,
        hash: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<StoredRefreshToken>>;
    /// Uses `old` once: marks it rotated and stores `successor` (of the same family). Of any
    /// number of concurrent rotations of one token exactly one gets `Rotated`.
    async fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        successor: &StoredRefreshToken,
        now: Instant,
    ) -> StoreResult<Rotation>;
    /// Ends every token of a family, now and for good (S18, S20).
    async fn revoke_refresh_family(&self, family: RefreshTokenId) -> StoreResult<()>;
    /// The live tokens `filter` selects: unexpired, not yet used, of a family not revoked;
    /// oldest first.
    async fn live_refresh_tokens(
        &self,
        filter: RefreshTokenFilter,
        now: Instant,
    ) -> StoreResult<Vec<StoredRefreshToken>>;
}

/// Which refresh tokens a management call is about. By user is an index lookup; by id and by
/// application read the whole (short-lived) token table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshTokenFilter {
    User(UserId),
    Id(RefreshTokenId),
    Application(ApplicationId),
}

impl RefreshTokenFilter {
    pub fn selects(self, token: &StoredRefreshToken) -> bool {
        match self {
            RefreshTokenFilter::User(id) => token.user_id == id,
            RefreshTokenFilter::Id(id) => token.id == id,
            RefreshTokenFilter::Application(id) => token.application_id == id,
        }
    }
}

/// What redeeming a single-use grant found.
#[derive(Debug, Clone, PartialEq)]
pub enum Redeemed<T> {
    /// Live and unused until now: this call used it.
    Fresh(T),
    /// Used before and not yet expired: a replay, which revokes what the grant produced (S18).
    Replayed(T),
    /// Unknown or expired.
    Nothing,
}

/// Authorization codes: stored under their hash (S2), redeemed once (S5, S18). A used grant
/// stays readable as used until it expires, so a replay is recognised.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Fails with `Duplicate("grant")` when the hash exists.
    async fn insert_grant(&self, hash: &SecretHash, grant: &AuthorizationGrant) -> StoreResult<()>;
    /// Of any number of concurrent calls on a live grant, exactly one gets `Fresh`.
    async fn redeem_grant(
        &self,
        hash: &SecretHash,
        now: Instant,
    ) -> StoreResult<Redeemed<AuthorizationGrant>>;
}

#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one hit on `key` in the fixed window of `window_seconds` that `now` falls in and
    /// returns the hits so far, this one included. Shared across processes (S8).
    async fn hit(&self, key: &str, window_seconds: i64, now: Instant) -> StoreResult<u32>;
    /// The hits on `key` so far in the window `now` falls in, without counting one. A window
    /// can be counted until the end of the window after it; then the store sweeps it (S38).
    async fn count(&self, key: &str, window_seconds: i64, now: Instant) -> StoreResult<u32>;
}

/// How far a kickstart file got on this store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickstartMark {
    /// Begun and not finished: the store is half-seeded and must not be served (L5).
    Started,
    Completed,
}

impl KickstartMark {
    pub fn as_str(self) -> &'static str {
        match self {
            KickstartMark::Started => "started",
            KickstartMark::Completed => "completed",
        }
    }

    /// A mark as a store keeps it; anything else is a corrupt store.
    pub(crate) fn from_stored(text: &str) -> StoreResult<Self> {
        match text {
            "started" => Ok(KickstartMark::Started),
            "completed" => Ok(KickstartMark::Completed),
            other => Err(StoreError::Corrupt(format!("kickstart mark {other:?}"))),
        }
    }
}

/// Email and registration verifications, stored under the hash of their id (S2) until they
/// are taken or expire.
#[async_trait]
pub trait VerificationStore: Send + Sync {
    /// Fails with `Duplicate("verification")` when the id exists.
    async fn insert_verification(&self, verification: &Verification) -> StoreResult<()>;
    /// Takes a live verification exactly once (S5), only if it is what `wanted` names: another
    /// kind or tenant reads as `Nothing` and is left as it was, uncounted (N17). One with a
    /// one-time code needs it: a wrong one is counted before it is compared and the fifth ends
    /// the verification (S7); a missing one counts nothing and leaves it as it was.
    async fn take_verification(
        &self,
        id: &SecretHash,
        one_time_code: Option<&SecretHash>,
        wanted: VerificationWanted,
        now: Instant,
    ) -> StoreResult<VerificationTaken>;
}

/// Two-factor records: a user's secrets (kept apart from the user, read only when a code is
/// checked), pending second steps and trusted browsers, the last two under the hash of their
/// ids (S2).
#[async_trait]
pub trait TwoFactorStore: Send + Sync {
    async fn two_factor_secrets(&self, user: UserId) -> StoreResult<Option<TwoFactorSecrets>>;
    /// Saves `secrets` only if the stored version is one less (none stored counts as 0), so
    /// of two concurrent uses of one recovery code or step exactly one saves; `false` when
    /// another save came first.
    async fn save_two_factor_secrets(&self, secrets: &TwoFactorSecrets) -> StoreResult<bool>;
    /// Stores a pending step, replacing one of the same id.
    async fn put_two_factor_challenge(&self, challenge: &TwoFactorChallenge) -> StoreResult<()>;
    /// A live pending step: expired ones, and ones that took their last wrong code, read as
    /// absent (S4, S7).
    async fn two_factor_challenge(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorChallenge>>;
    /// Counts a wrong code on a live pending step, atomically; the last allowed one ends it
    /// (S7). `false` when there was none.
    async fn fail_two_factor_challenge(&self, id: &SecretHash, now: Instant) -> StoreResult<bool>;
    /// Takes a live pending step exactly once (S5): of concurrent calls one gets it.
    async fn take_two_factor_challenge(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorChallenge>>;
    async fn insert_two_factor_trust(&self, trust: &TwoFactorTrust) -> StoreResult<()>;
    /// A live trust; expired ones read as absent.
    async fn two_factor_trust(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorTrust>>;
}

/// The one system configuration (CORS above all), read on every cross-origin request: stores
/// keep it where their configuration cache serves it.
#[async_trait]
pub trait SystemStore: Send + Sync {
    /// The configuration saved last; `None` until one is saved, when the defaults hold.
    async fn system_configuration(&self) -> StoreResult<Option<SystemConfiguration>>;
    /// Replaces the configuration.
    async fn put_system_configuration(
        &self,
        configuration: &SystemConfiguration,
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait StoreAdmin: Send + Sync {
    /// True while the store holds nothing but the default tenant: kickstart applies only then.
    async fn is_pristine(&self) -> StoreResult<bool>;
    async fn kickstart_mark(&self) -> StoreResult<Option<KickstartMark>>;
    /// `Started` only on a store without a mark (`Duplicate("kickstart")` otherwise, so two
    /// processes never seed one store at once); `Completed` replaces `Started`.
    async fn set_kickstart_mark(&self, mark: KickstartMark) -> StoreResult<()>;
}

/// Every port a store provides, for wiring an `App` with one object.
pub trait Store:
    TenantStore
    + ApplicationStore
    + UserStore
    + CodeStore
    + TemplateStore
    + ApiKeyStore
    + SigningKeyStore
    + RefreshTokenStore
    + GrantStore
    + RateLimiter
    + SystemStore
    + VerificationStore
    + TwoFactorStore
    + StoreAdmin
{
}

impl<T> Store for T where
    T: TenantStore
        + ApplicationStore
        + UserStore
        + CodeStore
        + TemplateStore
        + ApiKeyStore
        + SigningKeyStore
        + RefreshTokenStore
        + GrantStore
        + RateLimiter
        + SystemStore
        + VerificationStore
        + TwoFactorStore
        + StoreAdmin
{
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The provider refused this message (an unverified sender, a bad address).
    #[error("the message was rejected: {0}")]
    Rejected(String),
    #[error("the mailer failed: {0}")]
    Unavailable(String),
}

/// What a mailer took: the provider's id of the message (SES's `MessageId`, the outbox's file
/// name), logged with the send so an operator can follow one message into bounce reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub message_id: String,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &OutgoingEmail) -> Result<SentEmail, MailError>;
}

#[derive(Debug, thiserror::Error)]
#[error("key generation failed: {0}")]
pub struct KeyGenError(pub String);

/// Makes new signing keys; their private halves are sealed by a [`KeyVault`] before storing.
pub trait KeyMaker: Send + Sync {
    /// `length`: the RSA modulus in bits (2048, the default, 3072 or 4096); other algorithms
    /// have one size.
    fn generate(
        &self,
        id: KeyId,
        algorithm: SigningAlgorithm,
        length: Option<u32>,
    ) -> Result<GeneratedKey, KeyGenError>;
    /// Checks imported material and makes a key of it; what is wrong names the property.
    fn import(&self, id: KeyId, material: KeyMaterial<'_>) -> Result<GeneratedKey, KeyImportError>;
}

/// Why imported key material is refused: the request property at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct KeyImportError {
    pub field: &'static str,
    pub message: String,
}

impl KeyImportError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the key vault failed: {0}")]
    Unavailable(String),
    /// Sealed under another data key or for another context: a copied or tampered store.
    #[error("a sealed key does not open: {0}")]
    Unopenable(String),
}

/// Seals and opens private key material (S26). `context` is bound to the ciphertext.
#[async_trait]
pub trait KeyVault: Send + Sync {
    async fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, VaultError>;
    async fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, VaultError>;
    /// The signing keys this vault opened, kept parsed for the life of the process; none for a
    /// vault that keeps nothing.
    fn signers(&self) -> Option<&crate::domain::signing::SignerCache> {
        None
    }
}

/// Where envelope encryption keeps its data key, wrapped by KMS.
#[async_trait]
pub trait WrappedDataKeyStore: Send + Sync {
    async fn wrapped_data_key(&self) -> StoreResult<Option<Vec<u8>>>;
    /// Fails with `Duplicate("dataKey")` when one is stored already.
    async fn insert_wrapped_data_key(&self, wrapped: &[u8]) -> StoreResult<()>;
}
