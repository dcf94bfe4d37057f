//! Which replica takes a request: the one with the fewest requests in flight through
//! the edge (ties go round), each counted until its answer has been sent on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Default)]
pub struct Balancer {
    /// Replica address → requests in flight; an address leaves when it has none.
    in_flight: Mutex<HashMap<String, usize>>,
    next: AtomicUsize,
}

/// One request's hold on its replica; let go when dropped.
pub struct Lease {
    balancer: Arc<Balancer>,
    target: String,
}

impl Lease {
    pub fn target(&self) -> &str {
        &self.target
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut map = self
            .balancer
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.target) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.target);
            }
        }
    }
}

impl Balancer {
    /// The least busy of `endpoints` but `except`, held for one request.
    pub fn pick(self: &Arc<Self>, endpoints: &[String], except: Option<&str>) -> Option<Lease> {
        let candidates: Vec<&String> = endpoints
            .iter()
            .filter(|e| Some(e.as_str()) != except)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut map = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let chosen = (0..candidates.len())
            .map(|i| candidates[(start + i) % candidates.len()])
            .min_by_key(|e| map.get(e.as_str()).copied().unwrap_or(0))?;
        *map.entry(chosen.clone()).or_insert(0) += 1;
        Some(Lease {
            balancer: self.clone(),
            target: chosen.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_busy_replica_takes_the_next_request() {
        let b = Arc::new(Balancer::default());
        let all = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let first = b.pick(&all, None).unwrap();
        let second = b.pick(&all, None).unwrap();
        let third = b.pick(&all, None).unwrap();
        let mut taken = [first.target(), second.target(), third.target()];
        taken.sort_unstable();
        assert_eq!(
            taken,
            ["a", "b", "c"],
            "each replica gets one before any gets two"
        );
        let freed = second.target().to_owned();
        drop(second);
        assert_eq!(b.pick(&all, None).unwrap().target(), freed);
        // A retry goes elsewhere.
        assert_ne!(b.pick(&all, Some("a")).unwrap().target(), "a");
        assert!(b.pick(&["a".to_owned()], Some("a")).is_none());
        drop((first, third));
        assert!(b.in_flight.lock().unwrap().is_empty());
    }
}
