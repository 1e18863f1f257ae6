//! The limits on sending and on wrong codes: per address, per source, and the wider limit
//! a source that signed in before is held to (S8, S31, S33).

use tracing::warn;

use crate::domain::{Instant, SecretHash, Tenant, User};
use crate::ports::RateLimiter;

use crate::flows::{FlowError, FlowResult};

/// How many times the per-address limit one source may use, all sources together may use for
/// one address, and one source may use for all addresses.
const WIDE_LIMIT_FACTOR: u32 = 10;

/// The mails one address can be sent in an hour, from all sources together (N8). Twenty is
/// more than a person asks for (a link works for minutes; asking again every three minutes for
/// an hour is already a struggle), few enough that an inbox is not flooded and that mailbox
/// providers do not come to see the sending domain as a bulk sender, and it bounds the short
/// codes anybody can guess against one account: five tries a login, a hundred an hour, one in
/// ten thousand an hour for the default six digits.
pub(crate) const MAX_MAILS_PER_ADDRESS_PER_HOUR: u32 = 20;

const HOUR_SECONDS: i64 = 3600;

/// How long a source an address signed in from stays one it is known at (fixed windows: the
/// current one and the one before are read).
const KNOWN_SOURCE_WINDOW_SECONDS: i64 = 30 * 24 * 3600;

/// The first half of the address's hash: what counters are keyed by, never the address.
fn address_key(normalized_login: &str) -> String {
    let mut hex = SecretHash::of(normalized_login).to_hex();
    hex.truncate(32);
    hex
}

fn known_source_key(
    tenant: crate::domain::TenantId,
    normalized_login: &str,
    source: &str,
) -> String {
    format!(
        "send:known:{tenant}:{}:{source}",
        address_key(normalized_login)
    )
}

/// Remembers that `user` signed in from `source` in a browser, so that the ceilings all sources
/// share for the address do not hold that source back (S31): whoever fills them from elsewhere
/// keeps the mail from flooding the inbox, not the user from their usual network.
pub(crate) async fn remember_source<S: RateLimiter + ?Sized>(
    store: &S,
    user: &User,
    source: Option<&str>,
    now: Instant,
) -> FlowResult<()> {
    let (Some(source), Some(login)) = (source, user.normalized_email()) else {
        return Ok(());
    };
    store
        .hit(
            &known_source_key(user.tenant_id, &login, source),
            KNOWN_SOURCE_WINDOW_SECONDS,
            now,
        )
        .await?;
    Ok(())
}

/// Counted in the shared store before anything is written, so the limits hold across every
/// instance (S8, S31), and alike whether or not the address is a user's. All counters are keyed
/// by the address's hash, never the address: one address from one source gets the tenant's
/// limit, so whoever hammers the form for somebody's address spends their own allowance and
/// not the owner's (S31); one source gets ten times that for all addresses (offices share
/// addresses). One address from all sources together gets ten times the limit and at most
/// `MAX_MAILS_PER_ADDRESS_PER_HOUR` an hour, which bounds the mail anybody can make one inbox
/// receive (N8); a source the address signed in from before is not held by these two. The
/// counters are read in one round.
pub(super) async fn enforce_send_limits<S: RateLimiter + ?Sized>(
    store: &S,
    tenant: &Tenant,
    normalized_login: &str,
    source: Option<&str>,
    now: Instant,
) -> FlowResult<()> {
    let limit = &tenant.rate_limit_configuration.send_passwordless;
    if !limit.enabled {
        return Ok(());
    }
    let login = address_key(normalized_login);
    let window = limit.time_period_in_seconds;
    let wide = limit.limit.saturating_mul(WIDE_LIMIT_FACTOR);
    // (key, window, allowed, which, shared by all sources)
    let mut counters = vec![
        (
            format!("send:login:{}:{login}", tenant.id),
            window,
            if source.is_some() { wide } else { limit.limit },
            "per-address",
            true,
        ),
        (
            format!("send:login-hour:{}:{login}", tenant.id),
            HOUR_SECONDS,
            MAX_MAILS_PER_ADDRESS_PER_HOUR,
            "per-address-hourly",
            true,
        ),
    ];
    if let Some(source) = source {
        counters.push((
            format!("send:login-ip:{}:{login}:{source}", tenant.id),
            window,
            limit.limit,
            "per-address-and-source",
            false,
        ));
        counters.push((
            format!("send:ip:{}:{source}", tenant.id),
            window,
            wide,
            "per-source",
            false,
        ));
    }
    let known = async {
        let Some(source) = source else {
            return Ok(false);
        };
        let key = known_source_key(tenant.id, normalized_login, source);
        let (this, before) = futures_util::future::try_join(
            store.count(&key, KNOWN_SOURCE_WINDOW_SECONDS, now),
            store.count(
                &key,
                KNOWN_SOURCE_WINDOW_SECONDS,
                now.plus_secs(-KNOWN_SOURCE_WINDOW_SECONDS),
            ),
        )
        .await?;
        Ok::<bool, crate::ports::StoreError>(this + before > 0)
    };
    let hits = futures_util::future::try_join_all(
        counters
            .iter()
            .map(|(key, window, _, _, _)| store.hit(key, *window, now)),
    );
    let (hits, known) = futures_util::future::try_join(hits, known).await?;
    for ((_, _, allowed, which, shared), hits) in counters.iter().zip(hits) {
        if hits > *allowed && !(*shared && known) {
            warn!(tenant_id = %tenant.id, limit = which, "passwordless send refused: rate limit");
            return Err(FlowError::RateLimited);
        }
    }
    Ok(())
}

/// Wrong one-time codes one anonymous source may type in a window; past them that source's
/// one-time codes are not looked at until the window ends (S7, S33). The limit is the
/// source's, never the account's: anybody who knows an address can ask for logins to it, so
/// failures counted against the account would let anybody hold the real user's sign-in. How
/// many guesses an account can see is bounded instead by the pending login (five tries, then it
/// is burnt) and by the mails an address can be sent in an hour (`MAX_MAILS_PER_ADDRESS_PER_HOUR`).
pub(crate) const MAX_SOURCE_FAILURES_PER_WINDOW: u32 = 30;

pub(crate) const SOURCE_FAILURE_WINDOW_SECONDS: i64 = 600;

fn source_failures_key(source: &str) -> String {
    format!("login-failed:source:{source}")
}

/// Whether `source` has typed its window's share of wrong one-time codes.
pub(crate) async fn source_is_held<S: RateLimiter + ?Sized>(
    store: &S,
    source: Option<&str>,
    now: Instant,
) -> FlowResult<bool> {
    let Some(source) = source else {
        return Ok(false);
    };
    let failures = store
        .count(
            &source_failures_key(source),
            SOURCE_FAILURE_WINDOW_SECONDS,
            now,
        )
        .await?;
    Ok(failures >= MAX_SOURCE_FAILURES_PER_WINDOW)
}

/// Counts a wrong one-time code against the source that typed it.
pub(crate) async fn count_source_failure<S: RateLimiter + ?Sized>(
    store: &S,
    source: Option<&str>,
    now: Instant,
) -> FlowResult<()> {
    if let Some(source) = source {
        let failures = store
            .hit(
                &source_failures_key(source),
                SOURCE_FAILURE_WINDOW_SECONDS,
                now,
            )
            .await?;
        if failures == MAX_SOURCE_FAILURES_PER_WINDOW {
            warn!(
                failures,
                "user.login.failed: a source's wrong one-time codes wait for the window's end"
            );
        }
    }
    Ok(())
}
