//! `--edge-rate-limit`: requests per second per client address (governor's GCRA), with
//! the addresses not seen for a while forgotten, so a scan of many addresses cannot grow
//! the table without bound.

use governor::clock::{Clock, DefaultClock};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Every this many checks, addresses whose limit has fully recovered are dropped.
const PRUNE_EVERY: u64 = 4096;

pub struct PerClient {
    limiter: governor::DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

impl PerClient {
    /// `None` for zero: no limit.
    pub fn new(per_second: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
        Some(PerClient {
            limiter: governor::RateLimiter::keyed(
                governor::Quota::per_second(rate).allow_burst(burst),
            ),
            checks: AtomicU64::new(0),
        })
    }

    /// Whether `client` may send one more request now; else how long until it may.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_over_its_rate_waits_and_others_do_not() {
        assert!(PerClient::new(0).is_none());
        let limit = PerClient::new(5).unwrap();
        let (noisy, quiet): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let allowed = (0..100).filter(|_| limit.check(noisy).is_ok()).count();
        // A burst of twice the rate (and what a slow machine's pauses let recover).
        assert!((10..50).contains(&allowed), "{allowed}");
        assert!(limit.check(noisy).unwrap_err() > Duration::ZERO);
        assert!(limit.check(quiet).is_ok());
    }
}
