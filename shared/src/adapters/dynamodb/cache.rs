//! The per-instance cache of configuration reads (tenants, applications, templates, keys).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A config item's kind and id.
pub(crate) type ConfigKey = (&'static str, String);

/// Remembers config bodies for a short time, within a fixed number of entries (L4): a warm
/// instance hit with random API keys or ids must not grow without bound.
pub(crate) struct ConfigCache {
    entries: Mutex<HashMap<ConfigKey, (Instant, Option<String>)>>,
    ttl: Duration,
    capacity: usize,
}

impl ConfigCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConfigKey, (Instant, Option<String>)>> {
        // A panic elsewhere never makes the cache unusable (S25): its entries stay consistent.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Some(body or None)` while a fresh answer is remembered.
    pub fn get(&self, kind: &'static str, id: &str, now: Instant) -> Option<Option<String>> {
        let entries = self.lock();
        let (at, value) = entries.get(&(kind, id.to_owned()))?;
        (now.duration_since(*at) < self.ttl).then(|| value.clone())
    }

    /// Remembers an answer. Misses are not remembered for kinds whose ids callers choose
    /// freely (API keys: every wrong key would take an entry); when full, expired entries go
    /// first, then the oldest.
    pub fn put(&self, kind: &'static str, id: &str, value: Option<String>, now: Instant) {
        if value.is_none() && !remembers_misses(kind) {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&(kind, id.to_owned())) {
            entries.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
            if entries.len() >= self.capacity {
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(key, _)| key.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert((kind, id.to_owned()), (now, value));
    }

    pub fn forget(&self, kind: &'static str, id: &str) {
        self.lock().remove(&(kind, id.to_owned()));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// API keys are looked up by whatever a caller sends; only real ones earn an entry.
fn remembers_misses(kind: &str) -> bool {
    kind != "APIKEY"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l4_unknown_api_keys_are_not_remembered() {
        let cache = ConfigCache::new(Duration::from_secs(10), 100);
        let now = Instant::now();
        for i in 0..1000 {
            cache.put("APIKEY", &format!("random-{i}"), None, now);
        }
        assert!(cache.is_empty());
        cache.put("APIKEY", "real", Some("{}".into()), now);
        assert_eq!(cache.get("APIKEY", "real", now), Some(Some("{}".into())));
    }

    #[test]
    fn l4_the_cache_never_holds_more_than_its_capacity() {
        let cache = ConfigCache::new(Duration::from_secs(10), 64);
        let start = Instant::now();
        for i in 0..10_000u64 {
            let now = start + Duration::from_millis(i);
            cache.put("APPLICATION", &format!("id-{i}"), None, now);
            assert!(cache.len() <= 64);
        }
        // The newest answers are the ones kept.
        let end = start + Duration::from_millis(9_999);
        assert_eq!(cache.get("APPLICATION", "id-9999", end), Some(None));
        assert_eq!(cache.get("APPLICATION", "id-0", end), None);
    }

    #[test]
    fn an_answer_expires_after_the_ttl() {
        let cache = ConfigCache::new(Duration::from_secs(10), 8);
        let now = Instant::now();
        cache.put("TENANT", "t", Some("x".into()), now);
        assert!(cache
            .get("TENANT", "t", now + Duration::from_secs(9))
            .is_some());
        assert!(cache
            .get("TENANT", "t", now + Duration::from_secs(10))
            .is_none());
    }
}
