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

    /// The start of the fixed window of `seconds` (at least one) that this instant falls in,
    /// and the window's end: the unit rate limits count in.
    pub const fn window(self, seconds: i64) -> (Instant, Instant) {
        let length = if seconds < 1 {
            1000
        } else {
            seconds.saturating_mul(1000)
        };
        let start = self.0.div_euclid(length) * length;
        (Instant(start), Instant(start.saturating_add(length)))
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

    #[test]
    fn windows_are_fixed_and_aligned() {
        let (start, end) = Instant::from_millis(125_500).window(60);
        assert_eq!((start.as_millis(), end.as_millis()), (120_000, 180_000));
        assert_eq!(Instant::from_millis(1_500).window(0).0.as_millis(), 1_000);
    }
}
