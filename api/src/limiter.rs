//! Login rate limiting: a fixed window of attempts per key (an account's email, a
//! client address). In memory: a restarted server forgets, which only helps the user.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub struct Limiter {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Limiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Limiter {
            max,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt for `key`; `Err(wait)` when over the limit.
    pub fn attempt(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() > 100_000 {
            seen.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = seen.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.max {
            return Err(self.window.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_max_per_window_per_key() {
        let l = Limiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(l.attempt("a").is_ok());
        }
        let wait = l.attempt("a").unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        assert!(l.attempt("b").is_ok(), "keys are separate");
        let quick = Limiter::new(1, Duration::ZERO);
        assert!(quick.attempt("a").is_ok());
        assert!(quick.attempt("a").is_ok(), "a new window starts");
    }
}
