//! A small read-through cache with a time-to-live, for values read on every request (verified
//! keys, agents). Local writes evict at once; the TTL bounds how long a change made by another
//! instance sharing the database can go unseen.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

type Entries<K, V> = HashMap<K, (Arc<V>, Instant)>;

#[derive(Debug)]
pub struct TtlCache<K, V> {
    map: RwLock<Entries<K, V>>,
    ttl: Duration,
    max: usize,
}

impl<K: Eq + Hash + Clone, V> TtlCache<K, V> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            ttl,
            max,
        }
    }

    pub fn get(&self, k: &K) -> Option<Arc<V>> {
        let map = self.map.read().ok()?;
        let (v, at) = map.get(k)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    pub fn put(&self, k: K, v: Arc<V>) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= self.max {
                // Rare; dropping everything is simpler than LRU bookkeeping and only costs reloads.
                map.clear();
            }
            map.insert(k, (v, Instant::now()));
        }
    }

    pub fn remove(&self, k: &K) {
        if let Ok(mut map) = self.map.write() {
            map.remove(k);
        }
    }

    /// Removes every entry whose value matches.
    pub fn retain(&self, keep: impl Fn(&V) -> bool) {
        if let Ok(mut map) = self.map.write() {
            map.retain(|_, (v, _)| keep(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_evicts() {
        let c: TtlCache<u32, String> = TtlCache::new(Duration::from_millis(50), 2);
        c.put(1, Arc::new("a".into()));
        assert_eq!(c.get(&1).as_deref().map(String::as_str), Some("a"));
        c.remove(&1);
        assert!(c.get(&1).is_none());
        c.put(1, Arc::new("a".into()));
        std::thread::sleep(Duration::from_millis(60));
        assert!(c.get(&1).is_none(), "expired");
        c.put(1, Arc::new("a".into()));
        c.put(2, Arc::new("b".into()));
        c.put(3, Arc::new("c".into()));
        assert!(
            c.get(&3).is_some() && c.get(&1).is_none(),
            "full cache is reset, not grown"
        );
        c.retain(|v| v != "c");
        assert!(c.get(&3).is_none());
    }
}
