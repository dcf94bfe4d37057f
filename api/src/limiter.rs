//! Login throttling. Failures are counted per (account, client), with a backoff
//! that grows with each failure past a few: a guesser slows only itself, and nobody can
//! lock an account's owner out from elsewhere. A client is an address, or the services of
//! one namespace (see [`crate::serve::Client`]): a tenant's services never share a key
//! with people on the same machine. Clients also get a plain rate limit (governor) across
//! accounts. In memory: a restarted server forgets, which only
//! helps the user. Written here because governor limits rates, not failures.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Requests per minute from one client (an address, or one namespace's services), for
/// any account.
pub type AddressLimiter = governor::DefaultKeyedRateLimiter<crate::serve::Client>;

pub fn address_limiter(per_minute: u32) -> AddressLimiter {
    let rate = std::num::NonZeroU32::new(per_minute).unwrap_or(std::num::NonZeroU32::MIN);
    governor::RateLimiter::keyed(governor::Quota::per_minute(rate))
}

/// Failed logins per key, and when the next attempt may come.
pub struct Backoff {
    free: u32,
    first_wait: Duration,
    max_wait: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Backoff {
    /// `free` failures in a row cost nothing; the next waits `first_wait`, and each one
    /// after doubles it, up to `max_wait`.
    pub fn new(free: u32, first_wait: Duration, max_wait: Duration) -> Self {
        Backoff {
            free,
            first_wait,
            max_wait,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Err(wait)` while `key` must wait before its next attempt.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        match self.lock().get(key) {
            Some(&(_, until)) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, key: &str) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() > 100_000 {
            let forget = self.max_wait * 2;
            map.retain(|_, (_, until)| now.saturating_duration_since(*until) < forget);
        }
        let entry = map.entry(key.to_owned()).or_insert((0, now));
        entry.0 += 1;
        if entry.0 > self.free {
            let doublings = (entry.0 - self.free - 1).min(20);
            let wait = (self.first_wait * (1u32 << doublings)).min(self.max_wait);
            entry.1 = now + wait;
        }
    }

    pub fn succeeded(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_free_ones_wait_longer_each_time() {
        let b = Backoff::new(2, Duration::from_secs(1), Duration::from_secs(300));
        for _ in 0..2 {
            assert!(b.check("ann|10.0.0.1").is_ok());
            b.failed("ann|10.0.0.1");
        }
        assert!(b.check("ann|10.0.0.1").is_ok(), "two free failures");
        b.failed("ann|10.0.0.1");
        let first = b.check("ann|10.0.0.1").unwrap_err();
        b.failed("ann|10.0.0.1");
        let second = b.check("ann|10.0.0.1").unwrap_err();
        assert!(second > first, "{first:?} then {second:?}");
        assert!(
            b.check("ann|10.0.0.2").is_ok(),
            "another address is not slowed"
        );
        b.succeeded("ann|10.0.0.1");
        assert!(b.check("ann|10.0.0.1").is_ok());
    }
}
