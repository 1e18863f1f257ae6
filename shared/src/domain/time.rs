use serde::{Deserialize, Serialize};

/// A point in time as epoch milliseconds, the unit of every instant on the wire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Instant(i64);

impl Instant {
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Epoch seconds, rounded down: the unit of JWT claims and of DynamoDB's TTL attribute.
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    pub const fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_and_arithmetic_saturates() {
        assert_eq!(Instant::from_millis(1_999).as_secs(), 1);
        assert_eq!(Instant::from_secs(5).plus_secs(2).as_millis(), 7_000);
        assert_eq!(
            Instant::from_millis(i64::MAX).plus_secs(10).as_millis(),
            i64::MAX
        );
    }
}
