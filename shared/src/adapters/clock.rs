use std::sync::atomic::{AtomicI64, Ordering};

use crate::domain::Instant;
use crate::ports::Clock;

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Instant {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Instant::from_millis(millis)
    }
}

/// A clock that moves only when told: tests of expiry need no sleeps. One that follows the
/// wall clock also moves with real time, from where it was put: for tests whose other party
/// reads the real time too (a client library's authenticator code, a token's `exp`).
pub struct ManualClock {
    /// The instant itself, or for a following clock its distance from the wall clock.
    millis: AtomicI64,
    follows_wall_clock: bool,
}

impl ManualClock {
    pub fn starting_at(instant: Instant) -> Self {
        Self {
            millis: AtomicI64::new(instant.as_millis()),
            follows_wall_clock: false,
        }
    }

    /// The wall clock, which `advance_secs` still moves ahead.
    pub fn following_wall_clock() -> Self {
        Self {
            millis: AtomicI64::new(0),
            follows_wall_clock: true,
        }
    }

    pub fn advance_secs(&self, secs: i64) {
        self.millis
            .fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let millis = self.millis.load(Ordering::SeqCst);
        if self.follows_wall_clock {
            Instant::from_millis(SystemClock.now().as_millis().saturating_add(millis))
        } else {
            Instant::from_millis(millis)
        }
    }
}
