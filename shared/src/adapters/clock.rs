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

/// A clock that moves only when told: tests of expiry need no sleeps.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn starting_at(instant: Instant) -> Self {
        Self(AtomicI64::new(instant.as_millis()))
    }

    pub fn advance_secs(&self, secs: i64) {
        self.0
            .fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.load(Ordering::SeqCst))
    }
}
