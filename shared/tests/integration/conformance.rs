//! The store contract, written once against the port traits. Every store adapter runs it.
#![allow(dead_code)]

use serde_json::json;
use std::sync::Arc;

use passwordless::domain::code::{LoginStrategy, PasswordlessCode};
use passwordless::domain::ids::RefreshTokenId;
use passwordless::domain::oauth::AuthorizationGrant;
use passwordless::domain::tenant::DEFAULT_TENANT_ID;
use passwordless::domain::two_factor::{
    ChallengePurpose, TwoFactorChallenge, TwoFactorSecrets, TwoFactorTrust,
};
use passwordless::domain::verification::{
    Verification, VerificationPurpose, VerificationTaken, VerificationWanted,
};
use passwordless::domain::{ApplicationId, Instant, SecretHash, Tenant, TenantId, User, UserId};
use passwordless::ports::{
    Consumed, KickstartMark, LoginFinish, Proof, Redeemed, RefreshTokenFilter, Rotation, Store,
    StoreError, StoredRefreshToken,
};

pub const NOW: Instant = Instant::from_secs(1_767_225_600);

fn id<T>(n: u8, make: fn([u8; 16]) -> T) -> T {
    let mut bytes = [n; 16];
    bytes[0] = rand_byte();
    make(bytes)
}

/// Distinct ids per call, so that one store can serve many checks.
fn rand_byte() -> u8 {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub fn user(tenant: TenantId, email: &str) -> User {
    serde_json::from_value(json!({
        "id": id(1, UserId::from_random_bytes),
        "tenantId": tenant,
        "email": email,
        "registrations": []
    }))
    .unwrap()
}

pub fn code(user: &User, secret: &str, expires_at: Instant) -> PasswordlessCode {
    PasswordlessCode {
        code_hash: SecretHash::of(secret),
        one_time_code_hash: None,
        tenant_id: user.tenant_id,
        user_id: user.id,
        application_id: ApplicationId::from_random_bytes([3; 16]),
        state: None,
        login_strategy: LoginStrategy::ClickableLink,
        insert_instant: NOW,
        expires_at,
        emailed: false,
        failed_attempts: 0,
        browser_binding: None,
    }
}

async fn fresh_user(store: &dyn Store, email: &str) -> User {
    let user = user(DEFAULT_TENANT_ID, email);
    store.insert_user(&user).await.unwrap();
    user
}

pub async fn a_code_is_consumed_exactly_once_under_fifty_way_concurrency(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "race@example.com").await;
    let code = code(&user, "race-code", NOW.plus_secs(180));
    store.insert_code(&code).await.unwrap();
    let attempts = (0..50).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .consume_code(&SecretHash::of("race-code"), Proof::Link, None, NOW)
                .await
                .unwrap()
        })
    });
    let mut wins = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Consumed::Code(c) => {
                assert_eq!(c.user_id, user.id);
                wins += 1;
            }
            Consumed::Nothing => {}
            Consumed::WrongOneTimeCode { .. } => panic!("no one-time code was involved"),
        }
    }
    assert_eq!(wins, 1);
}

pub async fn a_finished_login_clears_the_current_code_once(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "finish@example.com").await;
    let code = code(&user, "finish-code", NOW.plus_secs(180));
    store.insert_code(&code).await.unwrap();
    let app = code.application_id;
    let first = store.finish_login(user.id, &code, app, NOW).await.unwrap();
    let LoginFinish::Completed(done) = first else {
        panic!("{first:?}")
    };
    assert_eq!(done.last_login_instant, Some(NOW));
    assert_eq!(
        store.finish_login(user.id, &code, app, NOW).await.unwrap(),
        LoginFinish::Superseded
    );
}

pub async fn a_new_code_supersedes_the_previous_one(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "supersede@example.com").await;
    let old = code(&user, "old-code", NOW.plus_secs(180));
    let new = code(&user, "new-code", NOW.plus_secs(180));
    store.insert_code(&old).await.unwrap();
    store.insert_code(&new).await.unwrap();
    // Whether or not the old code's item lingers, it no longer finishes a login.
    if let Consumed::Code(taken) = store
        .consume_code(&old.code_hash, Proof::Link, None, NOW)
        .await
        .unwrap()
    {
        assert_eq!(
            store
                .finish_login(user.id, &taken, taken.application_id, NOW)
                .await
                .unwrap(),
            LoginFinish::Superseded
        );
    }
    let Consumed::Code(taken) = store
        .consume_code(&new.code_hash, Proof::Link, None, NOW)
        .await
        .unwrap()
    else {
        panic!("the new code is live")
    };
    assert!(matches!(
        store
            .finish_login(user.id, &taken, taken.application_id, NOW)
            .await
            .unwrap(),
        LoginFinish::Completed(_)
    ));
}

pub async fn a_superseded_code_reads_as_absent(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "superseded-read@example.com").await;
    let old = code(&user, "old-read", NOW.plus_secs(180));
    store.insert_code(&old).await.unwrap();
    assert!(store.code(&old.code_hash, NOW).await.unwrap().is_some());
    store
        .insert_code(&code(&user, "new-read", NOW.plus_secs(180)))
        .await
        .unwrap();
    assert!(
        store.code(&old.code_hash, NOW).await.unwrap().is_none(),
        "a superseded code cannot be sent again"
    );
}

pub async fn an_expired_code_reads_as_absent_whatever_the_sweeper_did(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "expiry@example.com").await;
    let code = code(&user, "expiring", NOW.plus_secs(180));
    store.insert_code(&code).await.unwrap();
    assert!(store
        .code(&code.code_hash, NOW.plus_secs(179))
        .await
        .unwrap()
        .is_some());
    assert!(store
        .code(&code.code_hash, NOW.plus_secs(180))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .consume_code(&code.code_hash, Proof::Link, None, NOW.plus_secs(180))
            .await
            .unwrap(),
        Consumed::Nothing
    );
}

pub async fn a_wrong_one_time_code_counts_and_the_fifth_burns_the_code(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "otc@example.com").await;
    let mut form = code(&user, "form-code", NOW.plus_secs(180));
    form.one_time_code_hash = Some(SecretHash::of("123456"));
    store.insert_code(&form).await.unwrap();
    let wrong = SecretHash::of("000000");
    for _ in 0..4 {
        assert_eq!(
            store
                .consume_code(&form.code_hash, Proof::OneTimeCode(&wrong), None, NOW)
                .await
                .unwrap(),
            Consumed::WrongOneTimeCode { user: user.id }
        );
    }
    let right = SecretHash::of("123456");
    assert!(matches!(
        store
            .consume_code(&form.code_hash, Proof::OneTimeCode(&right), None, NOW)
            .await
            .unwrap(),
        Consumed::Code(_)
    ));

    store.insert_code(&form).await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            store
                .consume_code(&form.code_hash, Proof::Link, None, NOW)
                .await
                .unwrap(),
            Consumed::WrongOneTimeCode { user: user.id }
        );
    }
    assert_eq!(
        store
            .consume_code(&form.code_hash, Proof::OneTimeCode(&right), None, NOW)
            .await
            .unwrap(),
        Consumed::Nothing
    );
}

pub async fn an_inactive_user_is_refused_but_the_code_is_spent(store: Arc<dyn Store>) {
    let mut user = user(DEFAULT_TENANT_ID, "inactive@example.com");
    user.active = false;
    store.insert_user(&user).await.unwrap();
    let code = code(&user, "inactive-code", NOW.plus_secs(180));
    store.insert_code(&code).await.unwrap();
    let refused = store
        .finish_login(user.id, &code, code.application_id, NOW)
        .await
        .unwrap();
    assert!(
        matches!(&refused, LoginFinish::Refused(u) if u.last_login_instant.is_none()),
        "{refused:?}"
    );
    assert_eq!(
        store
            .finish_login(user.id, &code, code.application_id, NOW)
            .await
            .unwrap(),
        LoginFinish::Superseded
    );
}

pub async fn emails_are_unique_per_tenant_and_case_insensitive(store: Arc<dyn Store>) {
    let other = TenantId::from_random_bytes([rand_byte(); 16]);
    store
        .insert_tenant(&Tenant::new(other, "Other", "https://other.example", NOW))
        .await
        .unwrap();
    fresh_user(store.as_ref(), "unique@example.com").await;
    let clash = user(DEFAULT_TENANT_ID, "UNIQUE@example.com");
    assert!(matches!(
        store.insert_user(&clash).await,
        Err(StoreError::Duplicate("user.email"))
    ));
    store
        .insert_user(&user(other, "unique@example.com"))
        .await
        .unwrap();
    let found = store
        .user_by_email(DEFAULT_TENANT_ID, "Unique@Example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.tenant_id, DEFAULT_TENANT_ID);
    assert!(store
        .user_by_email(DEFAULT_TENANT_ID, "nobody@example.com")
        .await
        .unwrap()
        .is_none());
}

pub async fn an_update_cannot_take_another_users_email(store: Arc<dyn Store>) {
    fresh_user(store.as_ref(), "taken@example.com").await;
    let mut mover = fresh_user(store.as_ref(), "mover@example.com").await;
    mover.email = Some("Taken@example.com".into());
    assert!(matches!(
        store.update_user(&mover).await,
        Err(StoreError::Duplicate("user.email"))
    ));
    let ghost = user(DEFAULT_TENANT_ID, "ghost@example.com");
    assert!(matches!(
        store.update_user(&ghost).await,
        Err(StoreError::Missing)
    ));
}

pub async fn rate_counts_are_per_key_and_per_window(store: Arc<dyn Store>) {
    assert_eq!(store.hit("k1", 60, NOW).await.unwrap(), 1);
    assert_eq!(store.hit("k1", 60, NOW.plus_secs(1)).await.unwrap(), 2);
    assert_eq!(store.hit("k2", 60, NOW).await.unwrap(), 1);
    assert_eq!(store.hit("k1", 60, NOW.plus_secs(60)).await.unwrap(), 1);
}

pub async fn a_marked_code_remembers_it_was_emailed(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "mark@example.com").await;
    let code = code(&user, "mark-code", NOW.plus_secs(180));
    store.insert_code(&code).await.unwrap();
    store.mark_code_emailed(&code.code_hash).await.unwrap();
    assert!(
        store
            .code(&code.code_hash, NOW)
            .await
            .unwrap()
            .unwrap()
            .emailed
    );
}

/// L1 (S7 under concurrency): every guess is counted before it is compared, so a burst of
/// guesses sent at once gets exactly the comparisons guesses sent one by one would: five. The
/// other guesses are refused uncompared, and the right code, sent after, finds the login burned.
pub async fn l1_concurrent_guesses_cannot_outrun_the_one_time_code_limit(store: Arc<dyn Store>) {
    for round in 0..4 {
        let user = fresh_user(store.as_ref(), &format!("burst{round}@example.com")).await;
        let mut form = code(&user, &format!("burst-code-{round}"), NOW.plus_secs(180));
        form.one_time_code_hash = Some(SecretHash::of("123456"));
        store.insert_code(&form).await.unwrap();
        let mut guesses = Vec::new();
        for guess in 0..30u32 {
            let store = store.clone();
            let hash = form.code_hash;
            let wrong = SecretHash::of(&format!("{:06}", 900_000 + guess));
            guesses.push(tokio::spawn(async move {
                store
                    .consume_code(&hash, Proof::OneTimeCode(&wrong), None, NOW)
                    .await
                    .unwrap()
            }));
        }
        let mut compared = 0;
        for guess in guesses {
            match guess.await.unwrap() {
                Consumed::WrongOneTimeCode { .. } => compared += 1,
                Consumed::Nothing => {}
                other => panic!("a wrong guess got {other:?}"),
            }
        }
        assert_eq!(compared, 5, "a burst of 30 got {compared} comparisons");
        let right = SecretHash::of("123456");
        assert_eq!(
            store
                .consume_code(&form.code_hash, Proof::OneTimeCode(&right), None, NOW)
                .await
                .unwrap(),
            Consumed::Nothing,
            "the fifth wrong guess burned the login"
        );
    }
}

/// X7: a login scoped to another tenant leaves the code as it was.
pub async fn x7_a_code_is_not_consumed_outside_its_tenant(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "scoped@example.com").await;
    let code = code(&user, "scoped-code", NOW.plus_secs(180));
    store.insert_code(&code).await.unwrap();
    let other = TenantId::from_random_bytes([9; 16]);
    assert_eq!(
        store
            .consume_code(&code.code_hash, Proof::Link, Some(other), NOW)
            .await
            .unwrap(),
        Consumed::Nothing
    );
    assert!(matches!(
        store
            .consume_code(&code.code_hash, Proof::Link, Some(DEFAULT_TENANT_ID), NOW)
            .await
            .unwrap(),
        Consumed::Code(_)
    ));
}

/// S7's account-wide counter is read without being counted.
pub async fn a_rate_count_reads_without_counting(store: Arc<dyn Store>) {
    let key = format!("count-{}", rand_byte());
    assert_eq!(store.count(&key, 3600, NOW).await.unwrap(), 0);
    store.hit(&key, 3600, NOW).await.unwrap();
    store.hit(&key, 3600, NOW).await.unwrap();
    assert_eq!(store.count(&key, 3600, NOW).await.unwrap(), 2);
    assert_eq!(store.count(&key, 3600, NOW).await.unwrap(), 2);
    assert_eq!(
        store.count(&key, 3600, NOW.plus_secs(3600)).await.unwrap(),
        0
    );
}

/// L5: a kickstart is marked when it begins and when it ends; two cannot begin on one store.
pub async fn l5_a_kickstart_mark_is_set_once_and_completed(store: Arc<dyn Store>) {
    assert_eq!(store.kickstart_mark().await.unwrap(), None);
    store
        .set_kickstart_mark(KickstartMark::Started)
        .await
        .unwrap();
    assert!(matches!(
        store.set_kickstart_mark(KickstartMark::Started).await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(
        store.kickstart_mark().await.unwrap(),
        Some(KickstartMark::Started)
    );
    assert!(!store.is_pristine().await.unwrap());
    store
        .set_kickstart_mark(KickstartMark::Completed)
        .await
        .unwrap();
    assert_eq!(
        store.kickstart_mark().await.unwrap(),
        Some(KickstartMark::Completed)
    );
}

fn grant(expires_at: Instant) -> AuthorizationGrant {
    serde_json::from_value(json!({
        "tenantId": DEFAULT_TENANT_ID,
        "userId": id(4, UserId::from_random_bytes),
        "request": {"clientId": id(5, ApplicationId::from_random_bytes), "redirectUri": "https://app.example/cb", "scope": "openid"},
        "userState": "Authenticated",
        "authTime": NOW,
        "expiresAt": expires_at,
    }))
    .unwrap()
}

/// S5, S18: of fifty concurrent redemptions of one authorization code exactly one is fresh;
/// the others, and every later one, are told they replayed it.
pub async fn s18_an_authorization_code_is_redeemed_once_and_replays_are_recognised(
    store: Arc<dyn Store>,
) {
    let hash = SecretHash::of(&format!("grant-{}", rand_byte()));
    let stored = grant(NOW.plus_secs(30));
    store.insert_grant(&hash, &stored).await.unwrap();
    assert!(matches!(
        store.insert_grant(&hash, &stored).await,
        Err(StoreError::Duplicate(_))
    ));
    let racers: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.redeem_grant(&hash, NOW.plus_secs(1)).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Redeemed::Fresh(found) => {
                assert_eq!(found, stored);
                fresh += 1;
            }
            Redeemed::Replayed(found) => assert_eq!(found, stored),
            Redeemed::Nothing => panic!("a live grant read as absent"),
        }
    }
    assert_eq!(fresh, 1);
    assert_eq!(
        store.redeem_grant(&hash, NOW.plus_secs(2)).await.unwrap(),
        Redeemed::Replayed(stored)
    );
}

/// S4: an expired or unknown authorization code redeems nothing, whatever the sweeper did.
pub async fn an_expired_authorization_code_redeems_nothing(store: Arc<dyn Store>) {
    let hash = SecretHash::of(&format!("grant-{}", rand_byte()));
    store
        .insert_grant(&hash, &grant(NOW.plus_secs(30)))
        .await
        .unwrap();
    assert_eq!(
        store.redeem_grant(&hash, NOW.plus_secs(30)).await.unwrap(),
        Redeemed::Nothing
    );
    assert_eq!(
        store
            .redeem_grant(&SecretHash::of("never-issued"), NOW)
            .await
            .unwrap(),
        Redeemed::Nothing
    );
}

/// S14: a code bound to a browser is taken with that browser's binding alone (no short code
/// needed), never with another binding, and a wrong binding counts no try.
pub async fn s14_n13_a_bound_code_is_taken_only_with_its_binding(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "bound@example.com").await;
    let mut bound = code(&user, "bound-code", NOW.plus_secs(180));
    bound.one_time_code_hash = Some(SecretHash::of("123456"));
    bound.browser_binding = Some(SecretHash::of("binding-a"));
    store.insert_code(&bound).await.unwrap();
    let other = SecretHash::of("binding-b");
    let short = SecretHash::of("123456");
    // N13: neither the link alone nor the link with the right short code takes it without its
    // browser (the API), nor the short code typed in another browser; none counts a try.
    for proof in [
        Proof::BoundBrowser(&other),
        Proof::Link,
        Proof::OneTimeCode(&short),
        Proof::BoundOneTimeCode {
            typed: &short,
            binding: &other,
        },
    ] {
        assert_eq!(
            store
                .consume_code(&bound.code_hash, proof, None, NOW)
                .await
                .unwrap(),
            Consumed::Nothing,
            "{proof:?}"
        );
    }
    let mine = SecretHash::of("binding-a");
    let Consumed::Code(taken) = store
        .consume_code(&bound.code_hash, Proof::BoundBrowser(&mine), None, NOW)
        .await
        .unwrap()
    else {
        panic!("the bound browser takes its code")
    };
    assert_eq!(
        taken.failed_attempts, 0,
        "the other binding counted nothing"
    );
    assert_eq!(taken.browser_binding, Some(mine));
    assert_eq!(
        store
            .consume_code(&bound.code_hash, Proof::BoundBrowser(&mine), None, NOW)
            .await
            .unwrap(),
        Consumed::Nothing
    );
    // The short code typed in the bound browser takes a bound code, and counts a wrong one.
    let mut typed = code(&user, "typed-code", NOW.plus_secs(180));
    typed.one_time_code_hash = Some(short);
    typed.browser_binding = Some(mine);
    store.insert_code(&typed).await.unwrap();
    let wrong = SecretHash::of("654321");
    assert!(matches!(
        store
            .consume_code(
                &typed.code_hash,
                Proof::BoundOneTimeCode {
                    typed: &wrong,
                    binding: &mine
                },
                None,
                NOW
            )
            .await
            .unwrap(),
        Consumed::WrongOneTimeCode { .. }
    ));
    let Consumed::Code(taken) = store
        .consume_code(
            &typed.code_hash,
            Proof::BoundOneTimeCode {
                typed: &short,
                binding: &mine,
            },
            None,
            NOW,
        )
        .await
        .unwrap()
    else {
        panic!("the short code in the bound browser takes its code")
    };
    assert_eq!(taken.code_hash, typed.code_hash);
}

/// A code asked for in `binding`'s browser at `at`.
fn bound_code(user: &User, secret: &str, binding: &str, at: Instant) -> PasswordlessCode {
    let mut bound = code(user, secret, at.plus_secs(600));
    bound.insert_instant = at;
    bound.one_time_code_hash = Some(SecretHash::of(&format!("{secret}-short")));
    bound.browser_binding = Some(SecretHash::of(binding));
    bound
}

/// Takes a bound code in its browser and finishes the login at `at`.
async fn finish_in_browser(
    store: &dyn Store,
    bound: &PasswordlessCode,
    binding: &str,
    at: Instant,
) -> Option<LoginFinish> {
    let binding = SecretHash::of(binding);
    match store
        .consume_code(&bound.code_hash, Proof::BoundBrowser(&binding), None, at)
        .await
        .unwrap()
    {
        Consumed::Code(taken) => Some(
            store
                .finish_login(taken.user_id, &taken, taken.application_id, at)
                .await
                .unwrap(),
        ),
        _ => None,
    }
}

/// S31: a code asked for on the hosted page ends no other code, so whoever asks in another
/// browser for the same address cannot end the owner's pending login; the owner's login then
/// ends every other code of the user, bound or not.
pub async fn s31_a_bound_code_supersedes_nothing_and_a_login_ends_the_others(
    store: Arc<dyn Store>,
) {
    let user = fresh_user(store.as_ref(), "s31-owner@example.com").await;
    let api = code(&user, "s31-api", NOW.plus_secs(180));
    store.insert_code(&api).await.unwrap();
    let owners = bound_code(&user, "s31-owner", "owner-browser", NOW.plus_secs(1));
    store.insert_code(&owners).await.unwrap();
    let attackers = bound_code(&user, "s31-attacker", "attacker-browser", NOW.plus_secs(2));
    store.insert_code(&attackers).await.unwrap();
    for live in [&api, &owners, &attackers] {
        assert!(
            store
                .code(&live.code_hash, NOW.plus_secs(3))
                .await
                .unwrap()
                .is_some(),
            "no code superseded another"
        );
    }
    assert!(matches!(
        finish_in_browser(store.as_ref(), &owners, "owner-browser", NOW.plus_secs(3)).await,
        Some(LoginFinish::Completed(_))
    ));
    for ended in [&api, &attackers] {
        assert!(
            store
                .code(&ended.code_hash, NOW.plus_secs(4))
                .await
                .unwrap()
                .is_none(),
            "the login ended the user's other codes"
        );
    }
    assert!(!matches!(
        finish_in_browser(
            store.as_ref(),
            &attackers,
            "attacker-browser",
            NOW.plus_secs(4)
        )
        .await,
        Some(LoginFinish::Completed(_))
    ));
}

/// S6 holds for the hosted page's codes too: a start through the API ends them.
pub async fn s6_an_api_start_ends_the_bound_codes(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "s6-bound@example.com").await;
    let bound = bound_code(&user, "s6-bound", "a-browser", NOW);
    store.insert_code(&bound).await.unwrap();
    let mut api = code(&user, "s6-api", NOW.plus_secs(180));
    api.insert_instant = NOW.plus_secs(1);
    store.insert_code(&api).await.unwrap();
    assert!(store
        .code(&bound.code_hash, NOW.plus_secs(2))
        .await
        .unwrap()
        .is_none());
    assert!(!matches!(
        finish_in_browser(store.as_ref(), &bound, "a-browser", NOW.plus_secs(2)).await,
        Some(LoginFinish::Completed(_))
    ));
    assert!(store
        .code(&api.code_hash, NOW.plus_secs(2))
        .await
        .unwrap()
        .is_some());
}

fn refresh_token(user: &User, secret: &str, family: RefreshTokenId) -> StoredRefreshToken {
    StoredRefreshToken {
        id: id(6, RefreshTokenId::from_random_bytes),
        token_hash: SecretHash::of(secret),
        user_id: user.id,
        application_id: ApplicationId::from_random_bytes([3; 16]),
        tenant_id: user.tenant_id,
        start_instant: NOW,
        expires_at: NOW.plus_secs(3600),
        family: Some(family),
        rotated: false,
        client_bound: false,
    }
}

/// S5, S20: of twenty concurrent rotations of one refresh token exactly one succeeds; the
/// used token then reads as rotated, and revoking its family ends every token of it.
pub async fn s20_a_refresh_token_rotates_once_and_a_revoked_family_is_dead(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "refresh@example.com").await;
    let family = id(7, RefreshTokenId::from_random_bytes);
    let first = refresh_token(&user, &format!("refresh-{}", rand_byte()), family);
    store.insert_refresh_token(&first).await.unwrap();
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let successor = refresh_token(&user, &format!("successor-{i}-{}", first.id), family);
            let old = first.token_hash;
            tokio::spawn(async move {
                let rotation = store
                    .rotate_refresh_token(&old, &successor, NOW)
                    .await
                    .unwrap();
                (rotation, successor)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        match racer.await.unwrap() {
            (Rotation::Rotated(old), successor) => {
                assert_eq!(old.id, first.id);
                winners.push(successor);
            }
            (Rotation::Reused(old), _) => assert!(old.rotated),
            (Rotation::Nothing, _) => panic!("a live token read as absent"),
        }
    }
    assert_eq!(winners.len(), 1);
    let used = store
        .refresh_token(&first.token_hash, NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(used.rotated);
    let live = store
        .refresh_token(&winners[0].token_hash, NOW)
        .await
        .unwrap()
        .unwrap();
    assert!(!live.rotated);
    assert_eq!(live.family_id(), family);
    store.revoke_refresh_family(family).await.unwrap();
    assert_eq!(
        store.refresh_token(&first.token_hash, NOW).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .refresh_token(&winners[0].token_hash, NOW)
            .await
            .unwrap(),
        None
    );
    let next = refresh_token(&user, &format!("after-{}", first.id), family);
    assert_eq!(
        store
            .rotate_refresh_token(&winners[0].token_hash, &next, NOW)
            .await
            .unwrap(),
        Rotation::Nothing
    );
}

/// Management lists a user's, an application's or one id's live refresh tokens: used,
/// expired and revoked ones are not listed.
pub async fn live_refresh_tokens_are_listed_by_user_application_and_id(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "sessions@example.com").await;
    let other = fresh_user(store.as_ref(), "others@example.com").await;
    let application = id(8, ApplicationId::from_random_bytes);
    let token = |user: &User, name: &str, family: RefreshTokenId| StoredRefreshToken {
        application_id: application,
        ..refresh_token(user, &format!("{name}-{}", user.id), family)
    };
    let (used_family, revoked_family, other_family) = (
        id(9, RefreshTokenId::from_random_bytes),
        id(10, RefreshTokenId::from_random_bytes),
        id(11, RefreshTokenId::from_random_bytes),
    );
    let used = token(&user, "used", used_family);
    let successor = StoredRefreshToken {
        start_instant: NOW.plus_secs(1),
        ..token(&user, "successor", used_family)
    };
    let revoked = token(&user, "revoked", revoked_family);
    let expired = StoredRefreshToken {
        expires_at: NOW.plus_secs(1),
        ..token(&user, "expired", id(12, RefreshTokenId::from_random_bytes))
    };
    let others = token(&other, "other", other_family);
    for t in [&used, &revoked, &expired, &others] {
        store.insert_refresh_token(t).await.unwrap();
    }
    store
        .rotate_refresh_token(&used.token_hash, &successor, NOW)
        .await
        .unwrap();
    store.revoke_refresh_family(revoked_family).await.unwrap();
    let later = NOW.plus_secs(2);
    let ids =
        |tokens: Vec<StoredRefreshToken>| tokens.into_iter().map(|t| t.id).collect::<Vec<_>>();

    let of_user = store
        .live_refresh_tokens(RefreshTokenFilter::User(user.id), later)
        .await
        .unwrap();
    assert_eq!(ids(of_user), vec![successor.id]);
    let of_application = store
        .live_refresh_tokens(RefreshTokenFilter::Application(application), later)
        .await
        .unwrap();
    assert_eq!(ids(of_application), vec![others.id, successor.id]);
    for (wanted, expected) in [
        (successor.id, vec![successor.id]),
        (used.id, vec![]),
        (revoked.id, vec![]),
        (expired.id, vec![]),
    ] {
        let found = store
            .live_refresh_tokens(RefreshTokenFilter::Id(wanted), later)
            .await
            .unwrap();
        assert_eq!(ids(found), expected);
    }
}

pub async fn the_system_configuration_is_saved_and_replaced(store: Arc<dyn Store>) {
    use passwordless::domain::system::SystemConfiguration;
    assert_eq!(store.system_configuration().await.unwrap(), None);
    let mut configuration = SystemConfiguration::default();
    configuration.cors_configuration.enabled = true;
    configuration.cors_configuration.allowed_origins = vec!["https://app.example".into()];
    configuration
        .kept
        .insert("reportTimezone".into(), json!("America/Denver"));
    store
        .put_system_configuration(&configuration)
        .await
        .unwrap();
    assert_eq!(
        store.system_configuration().await.unwrap().as_ref(),
        Some(&configuration)
    );
    configuration.cors_configuration.enabled = false;
    store
        .put_system_configuration(&configuration)
        .await
        .unwrap();
    assert_eq!(
        store.system_configuration().await.unwrap(),
        Some(configuration),
        "a save replaces the one before, also where reads are cached"
    );
}

fn verification(user: &User, id: &str, one_time_code: Option<&str>) -> Verification {
    Verification {
        id_hash: SecretHash::of(id),
        one_time_code_hash: one_time_code.map(SecretHash::of),
        purpose: VerificationPurpose::Email,
        tenant_id: user.tenant_id,
        user_id: user.id,
        email: user.email.clone().unwrap_or_default(),
        insert_instant: NOW,
        expires_at: NOW.plus_secs(86_400),
        failed_attempts: 0,
    }
}

/// What an email verification request of any tenant takes.
const EMAIL: VerificationWanted = VerificationWanted {
    kind: "email",
    tenant: None,
};

pub async fn s5_a_verification_is_taken_once_by_its_id(store: Arc<dyn Store>) {
    let user = user(DEFAULT_TENANT_ID, "verify-link@example.com");
    let link = verification(&user, "verify-link", None);
    store.insert_verification(&link).await.unwrap();
    assert!(matches!(
        store.insert_verification(&link).await,
        Err(StoreError::Duplicate("verification"))
    ));
    let racers = (0..20).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .take_verification(&SecretHash::of("verify-link"), None, EMAIL, NOW)
                .await
                .unwrap()
        })
    });
    let mut taken = 0;
    for racer in racers {
        match racer.await.unwrap() {
            VerificationTaken::Taken(found) => {
                assert_eq!(*found, link);
                taken += 1;
            }
            other => assert_eq!(other, VerificationTaken::Nothing),
        }
    }
    assert_eq!(taken, 1);
    let expired = verification(&user, "verify-expired", None);
    store.insert_verification(&expired).await.unwrap();
    assert_eq!(
        store
            .take_verification(&expired.id_hash, None, EMAIL, expired.expires_at)
            .await
            .unwrap(),
        VerificationTaken::Nothing,
        "an expired verification proves nothing whatever the sweeper did (S4)"
    );
    assert_eq!(
        store
            .take_verification(&SecretHash::of("never-issued"), None, EMAIL, NOW)
            .await
            .unwrap(),
        VerificationTaken::Nothing
    );
}

pub async fn s7_a_verification_with_a_one_time_code_takes_five_wrong_tries(store: Arc<dyn Store>) {
    let user = user(DEFAULT_TENANT_ID, "verify-form@example.com");
    let form = verification(&user, "verify-form", Some("123456"));
    store.insert_verification(&form).await.unwrap();
    let id = form.id_hash;
    assert_eq!(
        store
            .take_verification(&id, None, EMAIL, NOW)
            .await
            .unwrap(),
        VerificationTaken::WrongOneTimeCode { missing: true },
        "the id alone does not take it, and counts nothing"
    );
    let wrong = SecretHash::of("000000");
    for _ in 0..4 {
        assert_eq!(
            store
                .take_verification(&id, Some(&wrong), EMAIL, NOW)
                .await
                .unwrap(),
            VerificationTaken::WrongOneTimeCode { missing: false }
        );
    }
    let right = SecretHash::of("123456");
    match store
        .take_verification(&id, Some(&right), EMAIL, NOW)
        .await
        .unwrap()
    {
        VerificationTaken::Taken(found) => assert_eq!(found.user_id, user.id),
        other => panic!("the right code on the fifth try takes it: {other:?}"),
    }
    let burnt = verification(&user, "verify-burnt", Some("123456"));
    store.insert_verification(&burnt).await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            store
                .take_verification(&burnt.id_hash, Some(&wrong), EMAIL, NOW)
                .await
                .unwrap(),
            VerificationTaken::WrongOneTimeCode { missing: false }
        );
    }
    assert_eq!(
        store
            .take_verification(&burnt.id_hash, Some(&right), EMAIL, NOW)
            .await
            .unwrap(),
        VerificationTaken::Nothing,
        "the fifth wrong try ended it"
    );
}

/// N17: a verification is taken only by a request for its kind and (when scoped) its tenant;
/// any other leaves it as it was, its tries uncounted.
pub async fn n17_a_verification_is_taken_only_as_its_kind_and_tenant(store: Arc<dyn Store>) {
    let user = user(DEFAULT_TENANT_ID, "verify-kind@example.com");
    let form = verification(&user, "verify-kind", Some("123456"));
    store.insert_verification(&form).await.unwrap();
    let right = SecretHash::of("123456");
    let wrong = SecretHash::of("000000");
    let other_tenant = TenantId::from_random_bytes([9; 16]);
    for wanted in [
        VerificationWanted {
            kind: "registration",
            tenant: None,
        },
        VerificationWanted {
            kind: "email",
            tenant: Some(other_tenant),
        },
    ] {
        for code in [
            None,
            Some(&wrong),
            Some(&right),
            Some(&wrong),
            Some(&wrong),
            Some(&wrong),
            Some(&wrong),
        ] {
            assert_eq!(
                store
                    .take_verification(&form.id_hash, code, wanted, NOW)
                    .await
                    .unwrap(),
                VerificationTaken::Nothing,
                "{wanted:?}"
            );
        }
    }
    let in_its_tenant = VerificationWanted {
        kind: "email",
        tenant: Some(user.tenant_id),
    };
    match store
        .take_verification(&form.id_hash, Some(&right), in_its_tenant, NOW)
        .await
        .unwrap()
    {
        // Ten wrong codes above would have burnt it, had any been counted.
        VerificationTaken::Taken(found) => assert_eq!(found.user_id, user.id),
        other => panic!("its own kind and tenant take it, no try spent: {other:?}"),
    }
}

fn challenge(user: &User, id: &str, expires_at: Instant) -> TwoFactorChallenge {
    TwoFactorChallenge {
        id_hash: SecretHash::of(id),
        user_id: user.id,
        tenant_id: user.tenant_id,
        purpose: ChallengePurpose::Login {
            application_id: ApplicationId::from_random_bytes([3; 16]),
            state: None,
            authorization: None,
        },
        code_hash: None,
        code_expires_at: None,
        code_method_id: None,
        failed_attempts: 0,
        insert_instant: NOW,
        expires_at,
    }
}

pub async fn s5_a_two_factor_step_is_taken_once_under_races(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "two-factor-race@example.com").await;
    let step = challenge(&user, "tf-race", NOW.plus_secs(300));
    store.put_two_factor_challenge(&step).await.unwrap();
    assert_eq!(
        store
            .two_factor_challenge(&step.id_hash, NOW)
            .await
            .unwrap()
            .as_ref(),
        Some(&step),
        "reading a step does not take it"
    );
    let racers = (0..20).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .take_two_factor_challenge(&SecretHash::of("tf-race"), NOW)
                .await
                .unwrap()
        })
    });
    let mut taken = 0;
    for racer in racers {
        if let Some(found) = racer.await.unwrap() {
            assert_eq!(found, step);
            taken += 1;
        }
    }
    assert_eq!(taken, 1);
    assert_eq!(
        store
            .two_factor_challenge(&step.id_hash, NOW)
            .await
            .unwrap(),
        None
    );
}

pub async fn s4_an_expired_two_factor_step_or_trust_reads_as_absent(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "two-factor-expiry@example.com").await;
    let step = challenge(&user, "tf-expiring", NOW.plus_secs(300));
    store.put_two_factor_challenge(&step).await.unwrap();
    let later = step.expires_at;
    assert_eq!(
        store
            .two_factor_challenge(&step.id_hash, later)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_two_factor_challenge(&step.id_hash, later)
            .await
            .unwrap(),
        None
    );
    assert!(!store
        .fail_two_factor_challenge(&step.id_hash, later)
        .await
        .unwrap());
    let trust = TwoFactorTrust {
        id_hash: SecretHash::of("tf-trust"),
        user_id: user.id,
        tenant_id: user.tenant_id,
        application_id: ApplicationId::from_random_bytes([3; 16]),
        start_instant: NOW,
        expires_at: NOW.plus_secs(60),
    };
    store.insert_two_factor_trust(&trust).await.unwrap();
    assert_eq!(
        store
            .two_factor_trust(&trust.id_hash, NOW)
            .await
            .unwrap()
            .as_ref(),
        Some(&trust)
    );
    assert_eq!(
        store
            .two_factor_trust(&trust.id_hash, trust.expires_at)
            .await
            .unwrap(),
        None
    );
}

pub async fn s7_concurrent_wrong_codes_end_a_two_factor_step_at_five(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "two-factor-tries@example.com").await;
    let step = challenge(&user, "tf-tries", NOW.plus_secs(300));
    store.put_two_factor_challenge(&step).await.unwrap();
    let racers = (0..20).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .fail_two_factor_challenge(&SecretHash::of("tf-tries"), NOW)
                .await
                .unwrap()
        })
    });
    let mut counted = 0;
    for racer in racers {
        if racer.await.unwrap() {
            counted += 1;
        }
    }
    assert_eq!(counted, 5, "exactly five wrong codes are counted");
    assert_eq!(
        store
            .two_factor_challenge(&step.id_hash, NOW)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_two_factor_challenge(&step.id_hash, NOW)
            .await
            .unwrap(),
        None,
        "a step out of tries cannot be taken with a right code either"
    );
}

pub async fn two_factor_secrets_save_by_version_so_one_racer_wins(store: Arc<dyn Store>) {
    let user = fresh_user(store.as_ref(), "two-factor-secrets@example.com").await;
    assert_eq!(store.two_factor_secrets(user.id).await.unwrap(), None);
    let mut secrets = TwoFactorSecrets::empty(user.id, user.tenant_id);
    secrets.version = 1;
    secrets.recovery_code_hashes = vec![SecretHash::of("AAAAA11111")];
    assert!(store.save_two_factor_secrets(&secrets).await.unwrap());
    assert!(
        !store.save_two_factor_secrets(&secrets).await.unwrap(),
        "version 1 is taken"
    );
    let racers = (0..10).map(|_| {
        let store = store.clone();
        let mut next = secrets.clone();
        next.version = 2;
        next.recovery_code_hashes.clear();
        tokio::spawn(async move { store.save_two_factor_secrets(&next).await.unwrap() })
    });
    let mut saved = 0;
    for racer in racers {
        if racer.await.unwrap() {
            saved += 1;
        }
    }
    assert_eq!(saved, 1);
    let stored = store.two_factor_secrets(user.id).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert!(stored.recovery_code_hashes.is_empty());
    store.delete_user(user.id).await.unwrap();
    assert_eq!(
        store.two_factor_secrets(user.id).await.unwrap(),
        None,
        "the secrets go with the user"
    );
}

/// Declares one test per check. `$make` is evaluated inside each (async) test and gives the
/// store and a guard that must live as long as the test (a temporary folder, a request log).
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance::conformance_suite!(@each $make;
            a_code_is_consumed_exactly_once_under_fifty_way_concurrency,
            a_finished_login_clears_the_current_code_once,
            a_new_code_supersedes_the_previous_one,
            a_superseded_code_reads_as_absent,
            an_expired_code_reads_as_absent_whatever_the_sweeper_did,
            a_wrong_one_time_code_counts_and_the_fifth_burns_the_code,
            an_inactive_user_is_refused_but_the_code_is_spent,
            emails_are_unique_per_tenant_and_case_insensitive,
            an_update_cannot_take_another_users_email,
            rate_counts_are_per_key_and_per_window,
            a_marked_code_remembers_it_was_emailed,
            l1_concurrent_guesses_cannot_outrun_the_one_time_code_limit,
            x7_a_code_is_not_consumed_outside_its_tenant,
            a_rate_count_reads_without_counting,
            l5_a_kickstart_mark_is_set_once_and_completed,
            s18_an_authorization_code_is_redeemed_once_and_replays_are_recognised,
            an_expired_authorization_code_redeems_nothing,
            s14_n13_a_bound_code_is_taken_only_with_its_binding,
            s31_a_bound_code_supersedes_nothing_and_a_login_ends_the_others,
            s6_an_api_start_ends_the_bound_codes,
            s20_a_refresh_token_rotates_once_and_a_revoked_family_is_dead,
            live_refresh_tokens_are_listed_by_user_application_and_id,
            the_system_configuration_is_saved_and_replaced,
            s5_a_verification_is_taken_once_by_its_id,
            s7_a_verification_with_a_one_time_code_takes_five_wrong_tries,
            n17_a_verification_is_taken_only_as_its_kind_and_tenant,
            s5_a_two_factor_step_is_taken_once_under_races,
            s4_an_expired_two_factor_step_or_trust_reads_as_absent,
            s7_concurrent_wrong_codes_end_a_two_factor_step_at_five,
            two_factor_secrets_save_by_version_so_one_racer_wins
        );
    };
    (@each $make:expr; $($check:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let (store, _guard) = $make;
            $crate::conformance::$check(store).await;
        }
    )*};
}

pub(crate) use conformance_suite;

/// Runs every check against one store.
pub async fn run_all(store: Arc<dyn Store>) {
    a_code_is_consumed_exactly_once_under_fifty_way_concurrency(store.clone()).await;
    a_finished_login_clears_the_current_code_once(store.clone()).await;
    a_new_code_supersedes_the_previous_one(store.clone()).await;
    a_superseded_code_reads_as_absent(store.clone()).await;
    an_expired_code_reads_as_absent_whatever_the_sweeper_did(store.clone()).await;
    a_wrong_one_time_code_counts_and_the_fifth_burns_the_code(store.clone()).await;
    an_inactive_user_is_refused_but_the_code_is_spent(store.clone()).await;
    emails_are_unique_per_tenant_and_case_insensitive(store.clone()).await;
    an_update_cannot_take_another_users_email(store.clone()).await;
    rate_counts_are_per_key_and_per_window(store.clone()).await;
    a_marked_code_remembers_it_was_emailed(store.clone()).await;
    l1_concurrent_guesses_cannot_outrun_the_one_time_code_limit(store.clone()).await;
    x7_a_code_is_not_consumed_outside_its_tenant(store.clone()).await;
    a_rate_count_reads_without_counting(store.clone()).await;
    l5_a_kickstart_mark_is_set_once_and_completed(store.clone()).await;
    s18_an_authorization_code_is_redeemed_once_and_replays_are_recognised(store.clone()).await;
    an_expired_authorization_code_redeems_nothing(store.clone()).await;
    s14_n13_a_bound_code_is_taken_only_with_its_binding(store.clone()).await;
    s31_a_bound_code_supersedes_nothing_and_a_login_ends_the_others(store.clone()).await;
    s6_an_api_start_ends_the_bound_codes(store.clone()).await;
    s20_a_refresh_token_rotates_once_and_a_revoked_family_is_dead(store.clone()).await;
    live_refresh_tokens_are_listed_by_user_application_and_id(store.clone()).await;
    the_system_configuration_is_saved_and_replaced(store.clone()).await;
    s5_a_verification_is_taken_once_by_its_id(store.clone()).await;
    s7_a_verification_with_a_one_time_code_takes_five_wrong_tries(store.clone()).await;
    n17_a_verification_is_taken_only_as_its_kind_and_tenant(store.clone()).await;
    s5_a_two_factor_step_is_taken_once_under_races(store.clone()).await;
    s4_an_expired_two_factor_step_or_trust_reads_as_absent(store.clone()).await;
    s7_concurrent_wrong_codes_end_a_two_factor_step_at_five(store.clone()).await;
    two_factor_secrets_save_by_version_so_one_racer_wins(store).await;
}
