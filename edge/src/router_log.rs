//! The router's log: one line per request the edge answered for a service, as Heroku's
//! router writes them, kept per service in memory (the last [`KEPT`] lines, each at most
//! [`LINE_MAX`] bytes), numbered so a follower asks for what came after what it saw.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// Lines kept per service.
pub const KEPT: usize = 500;
/// Longest line kept (a long path is cut).
pub const LINE_MAX: usize = 512;

/// A service's last lines, each with its number.
type Lines = VecDeque<(u64, String)>;

#[derive(Default)]
pub struct RouterLog {
    /// (namespace, service) → its last lines.
    services: Mutex<HashMap<(String, String), Lines>>,
    next: std::sync::atomic::AtomicU64,
}

impl RouterLog {
    pub fn record(&self, namespace: &str, service: &str, mut line: String) {
        if line.len() > LINE_MAX {
            let mut end = LINE_MAX;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
        }
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        let lines = services
            .entry((namespace.to_owned(), service.to_owned()))
            .or_default();
        if lines.len() == KEPT {
            lines.pop_front();
        }
        lines.push_back((n, line));
    }

    /// The last `tail` lines of a service after line number `after` (0: all kept), with
    /// their numbers.
    pub fn lines(
        &self,
        namespace: &str,
        service: &str,
        after: u64,
        tail: usize,
    ) -> Vec<(u64, String)> {
        let services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(lines) = services.get(&(namespace.to_owned(), service.to_owned())) else {
            return Vec::new();
        };
        let newer: Vec<&(u64, String)> = lines.iter().filter(|(n, _)| *n > after).collect();
        newer[newer.len().saturating_sub(tail)..]
            .iter()
            .map(|(n, l)| (*n, l.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_keeps_its_last_lines_cut_to_size() {
        let log = RouterLog::default();
        for i in 0..KEPT + 10 {
            log.record("a", "web", format!("line {i}"));
        }
        log.record("b", "web", "x".repeat(LINE_MAX * 2));
        let all = log.lines("a", "web", 0, usize::MAX);
        assert_eq!(all.len(), KEPT);
        assert_eq!(all.last().unwrap().1, format!("line {}", KEPT + 9));
        let last_two = log.lines("a", "web", 0, 2);
        assert_eq!(last_two.len(), 2);
        let after = log.lines("a", "web", last_two[0].0, 10);
        assert_eq!(after, vec![last_two[1].clone()]);
        assert_eq!(log.lines("b", "web", 0, 10)[0].1.len(), LINE_MAX);
        assert!(log.lines("a", "api", 0, 10).is_empty());
    }
}
