//! Fault injection (S23): a store and a mailer that pass every call through to the real ones
//! and fail one chosen call, before it reaches the real port (nothing happened) or after (it
//! happened, and the caller is told it failed, as after a lost response). Counting the calls a
//! flow makes, then failing each in turn, shows that no failure leaves a half state that lets
//! anyone in and that the flow succeeds when tried again. It wraps whatever store the tests
//! run on, SQLite or DynamoDB (moto), and whatever mailer, the outbox or SES.

use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use passwordless::domain::code::PasswordlessCode;
use passwordless::domain::email::OutgoingEmail;
use passwordless::domain::ids::{ApplicationId, RefreshTokenId, TemplateId, TenantId, UserId};
use passwordless::domain::oauth::AuthorizationGrant;
use passwordless::domain::system::SystemConfiguration;
use passwordless::domain::two_factor::{TwoFactorChallenge, TwoFactorSecrets, TwoFactorTrust};
use passwordless::domain::verification::{Verification, VerificationTaken, VerificationWanted};
use passwordless::domain::{
    ApiKey, Application, EmailTemplate, Instant, KeyId, SecretHash, SigningKey, Tenant, User,
};
use passwordless::ports::*;

/// Which call fails, and how.
#[derive(Default)]
pub struct Faults {
    calls: AtomicUsize,
    fail_at: AtomicUsize,
    after: AtomicBool,
    fired: AtomicBool,
}

/// When the chosen call fails: before the real port sees it, or after it did its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultTime {
    Before,
    After,
}

impl Faults {
    pub fn new() -> Arc<Faults> {
        let faults = Faults::default();
        faults.fail_at.store(usize::MAX, Ordering::SeqCst);
        Arc::new(faults)
    }

    /// Fails the `nth` call from now (0: the next one), once.
    pub fn arm(&self, nth: usize, time: FaultTime) {
        self.fired.store(false, Ordering::SeqCst);
        self.after.store(time == FaultTime::After, Ordering::SeqCst);
        self.fail_at
            .store(self.calls.load(Ordering::SeqCst) + nth, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.fail_at.store(usize::MAX, Ordering::SeqCst);
    }

    /// The calls made so far, store and mailer together.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Whether the armed fault has struck.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    fn strikes(&self, call: usize, after: bool) -> bool {
        let strikes = call == self.fail_at.load(Ordering::SeqCst)
            && self.after.load(Ordering::SeqCst) == after;
        if strikes {
            self.fired.store(true, Ordering::SeqCst);
        }
        strikes
    }

    fn before(&self) -> StoreResult<usize> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        match self.strikes(call, false) {
            true => Err(StoreError::Unavailable("injected fault".into())),
            false => Ok(call),
        }
    }

    fn after<T>(&self, call: usize, result: StoreResult<T>) -> StoreResult<T> {
        match self.strikes(call, true) {
            true => Err(StoreError::Unavailable(
                "injected fault after the call".into(),
            )),
            false => result,
        }
    }
}

/// The store the tests run on, failing where [`Faults`] says.
pub struct FaultyStore {
    pub inner: Arc<dyn Store>,
    pub faults: Arc<Faults>,
}

/// The mailer the tests run on, failing where [`Faults`] says.
pub struct FaultyMailer {
    pub inner: Arc<dyn Mailer>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Mailer for FaultyMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<SentEmail, MailError> {
        let fail = |_| MailError::Unavailable("injected fault".into());
        let call = self.faults.before().map_err(fail)?;
        let sent = self.inner.send(email).await;
        match self.faults.after(call, Ok(())) {
            Ok(()) => sent,
            Err(e) => Err(fail(e)),
        }
    }
}

#[async_trait]
impl TenantStore for FaultyStore {
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.tenant(id).await)
    }
    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.tenants().await)
    }
    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.insert_tenant(tenant).await)
    }
    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.update_tenant(tenant).await)
    }
    async fn delete_tenant(&self, id: TenantId) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.delete_tenant(id).await)
    }
}

#[async_trait]
impl ApplicationStore for FaultyStore {
    async fn application(&self, id: ApplicationId) -> StoreResult<Option<Application>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.application(id).await)
    }
    async fn applications(&self) -> StoreResult<Vec<Application>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.applications().await)
    }
    async fn insert_application(&self, application: &Application) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.insert_application(application).await)
    }
    async fn update_application(&self, application: &Application) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.update_application(application).await)
    }
    async fn delete_application(&self, id: ApplicationId) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.delete_application(id).await)
    }
}

#[async_trait]
impl UserStore for FaultyStore {
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.user(id).await)
    }
    async fn user_by_email(&self, tenant: TenantId, email: &str) -> StoreResult<Option<User>> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.user_by_email(tenant, email).await)
    }
    async fn user_by_username(
        &self,
        tenant: TenantId,
        username: &str,
    ) -> StoreResult<Option<User>> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.user_by_username(tenant, username).await)
    }
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.insert_user(user).await)
    }
    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.update_user(user).await)
    }
    async fn users_of_tenant(&self, tenant: TenantId) -> StoreResult<Vec<User>> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.users_of_tenant(tenant).await)
    }
    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.delete_user(id).await)
    }
}

#[async_trait]
impl CodeStore for FaultyStore {
    async fn insert_code(&self, code: &PasswordlessCode) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.insert_code(code).await)
    }
    async fn code(&self, hash: &SecretHash, now: Instant) -> StoreResult<Option<PasswordlessCode>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.code(hash, now).await)
    }
    async fn mark_code_emailed(&self, hash: &SecretHash) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.mark_code_emailed(hash).await)
    }
    async fn consume_code(
        &self,
        hash: &SecretHash,
        proof: Proof<'_>,
        tenant: Option<TenantId>,
        now: Instant,
    ) -> StoreResult<Consumed> {
        let call = self.faults.before()?;
        self.faults.after(
            call,
            self.inner.consume_code(hash, proof, tenant, now).await,
        )
    }
    async fn finish_login(
        &self,
        user: UserId,
        code: &PasswordlessCode,
        application: ApplicationId,
        now: Instant,
    ) -> StoreResult<LoginFinish> {
        let call = self.faults.before()?;
        self.faults.after(
            call,
            self.inner.finish_login(user, code, application, now).await,
        )
    }
}

#[async_trait]
impl TemplateStore for FaultyStore {
    async fn template(&self, id: TemplateId) -> StoreResult<Option<EmailTemplate>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.template(id).await)
    }
    async fn insert_template(&self, template: &EmailTemplate) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.insert_template(template).await)
    }
    async fn templates(&self) -> StoreResult<Vec<EmailTemplate>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.templates().await)
    }
    async fn update_template(&self, template: &EmailTemplate) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.update_template(template).await)
    }
    async fn delete_template(&self, id: TemplateId) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.delete_template(id).await)
    }
}

#[async_trait]
impl ApiKeyStore for FaultyStore {
    async fn api_key(&self, hash: &SecretHash) -> StoreResult<Option<ApiKey>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.api_key(hash).await)
    }
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.insert_api_key(key).await)
    }
    async fn api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.api_keys().await)
    }
    async fn update_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.update_api_key(key).await)
    }
    async fn delete_api_key(&self, hash: &SecretHash) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.delete_api_key(hash).await)
    }
}

#[async_trait]
impl SigningKeyStore for FaultyStore {
    async fn signing_key(&self, id: KeyId) -> StoreResult<Option<SigningKey>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.signing_key(id).await)
    }
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.signing_keys().await)
    }
    async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.insert_signing_key(key).await)
    }
    async fn delete_signing_key(&self, id: KeyId) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.delete_signing_key(id).await)
    }
}

#[async_trait]
impl RefreshTokenStore for FaultyStore {
    async fn insert_refresh_token(&self, token: &StoredRefreshToken) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.insert_refresh_token(token).await)
    }
    async fn refresh_token(
        &self,
        hash: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<StoredRefreshToken>> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.refresh_token(hash, now).await)
    }
    async fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        successor: &StoredRefreshToken,
        now: Instant,
    ) -> StoreResult<Rotation> {
        let call = self.faults.before()?;
        self.faults.after(
            call,
            self.inner.rotate_refresh_token(old, successor, now).await,
        )
    }
    async fn revoke_refresh_family(&self, family: RefreshTokenId) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.revoke_refresh_family(family).await)
    }
    async fn live_refresh_tokens(
        &self,
        filter: RefreshTokenFilter,
        now: Instant,
    ) -> StoreResult<Vec<StoredRefreshToken>> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.live_refresh_tokens(filter, now).await)
    }
}

#[async_trait]
impl GrantStore for FaultyStore {
    async fn insert_grant(&self, hash: &SecretHash, grant: &AuthorizationGrant) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.insert_grant(hash, grant).await)
    }
    async fn redeem_grant(
        &self,
        hash: &SecretHash,
        now: Instant,
    ) -> StoreResult<Redeemed<AuthorizationGrant>> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.redeem_grant(hash, now).await)
    }
}

#[async_trait]
impl RateLimiter for FaultyStore {
    async fn hit(&self, key: &str, window_seconds: i64, now: Instant) -> StoreResult<u32> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.hit(key, window_seconds, now).await)
    }
    async fn count(&self, key: &str, window_seconds: i64, now: Instant) -> StoreResult<u32> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.count(key, window_seconds, now).await)
    }
}

#[async_trait]
impl SystemStore for FaultyStore {
    async fn system_configuration(&self) -> StoreResult<Option<SystemConfiguration>> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.system_configuration().await)
    }
    async fn put_system_configuration(
        &self,
        configuration: &SystemConfiguration,
    ) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults.after(
            call,
            self.inner.put_system_configuration(configuration).await,
        )
    }
}

#[async_trait]
impl VerificationStore for FaultyStore {
    async fn insert_verification(&self, verification: &Verification) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.insert_verification(verification).await)
    }
    async fn take_verification(
        &self,
        id: &SecretHash,
        one_time_code: Option<&SecretHash>,
        wanted: VerificationWanted,
        now: Instant,
    ) -> StoreResult<VerificationTaken> {
        let call = self.faults.before()?;
        self.faults.after(
            call,
            self.inner
                .take_verification(id, one_time_code, wanted, now)
                .await,
        )
    }
}

#[async_trait]
impl TwoFactorStore for FaultyStore {
    async fn two_factor_secrets(&self, user: UserId) -> StoreResult<Option<TwoFactorSecrets>> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.two_factor_secrets(user).await)
    }
    async fn save_two_factor_secrets(&self, secrets: &TwoFactorSecrets) -> StoreResult<bool> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.save_two_factor_secrets(secrets).await)
    }
    async fn put_two_factor_challenge(&self, challenge: &TwoFactorChallenge) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.put_two_factor_challenge(challenge).await)
    }
    async fn two_factor_challenge(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorChallenge>> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.two_factor_challenge(id, now).await)
    }
    async fn fail_two_factor_challenge(&self, id: &SecretHash, now: Instant) -> StoreResult<bool> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.fail_two_factor_challenge(id, now).await)
    }
    async fn take_two_factor_challenge(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorChallenge>> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.take_two_factor_challenge(id, now).await)
    }
    async fn insert_two_factor_trust(&self, trust: &TwoFactorTrust) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.insert_two_factor_trust(trust).await)
    }
    async fn two_factor_trust(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorTrust>> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.two_factor_trust(id, now).await)
    }
}

#[async_trait]
impl StoreAdmin for FaultyStore {
    async fn is_pristine(&self) -> StoreResult<bool> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.is_pristine().await)
    }
    async fn kickstart_mark(&self) -> StoreResult<Option<KickstartMark>> {
        let call = self.faults.before()?;
        self.faults.after(call, self.inner.kickstart_mark().await)
    }
    async fn set_kickstart_mark(&self, mark: KickstartMark) -> StoreResult<()> {
        let call = self.faults.before()?;
        self.faults
            .after(call, self.inner.set_kickstart_mark(mark).await)
    }
}
