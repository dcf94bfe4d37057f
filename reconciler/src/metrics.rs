//! What an operator scrapes: how many reconciles ran, how each ended, how long they took
//! and how many namespaces wait. Platform-wide aggregates only, never a namespace name: a
//! label per tenant would grow with the fleet and say who the tenants are.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the duration histogram, in seconds (Prometheus `le`).
const BOUNDS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];

/// How a reconcile ended, as counted: the history's own enum.
pub use micro_store::ReconcileResult as Ended;

#[derive(Default)]
pub struct Metrics {
    applied: AtomicU64,
    invalid: AtomicU64,
    failed: AtomicU64,
    unchanged: AtomicU64,
    /// Cumulative counts per bound, then the sum (µs) and the count.
    buckets: [AtomicU64; BOUNDS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Metrics {
    /// Counts one reconcile; skipped ones do not enter the duration histogram.
    pub fn record(&self, result: Ended, took: Duration) {
        self.counter(result).fetch_add(1, Relaxed);
        if result == Ended::Unchanged {
            return;
        }
        let secs = took.as_secs_f64();
        for (bound, bucket) in BOUNDS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn counter(&self, result: Ended) -> &AtomicU64 {
        match result {
            Ended::Applied => &self.applied,
            Ended::Invalid => &self.invalid,
            Ended::Failed => &self.failed,
            Ended::Unchanged => &self.unchanged,
        }
    }

    /// The Prometheus text exposition of these metrics plus the queue's depth.
    pub fn render(&self, queued: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP micro_reconciles_total Reconciles by how they ended.\n");
        out.push_str("# TYPE micro_reconciles_total counter\n");
        for result in Ended::ALL {
            let _ = writeln!(
                out,
                "micro_reconciles_total{{result=\"{result}\"}} {}",
                self.counter(result).load(Relaxed)
            );
        }
        out.push_str(
            "# HELP micro_reconcile_duration_seconds Time of reconciles that read the head.\n",
        );
        out.push_str("# TYPE micro_reconcile_duration_seconds histogram\n");
        for (bound, bucket) in BOUNDS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "micro_reconcile_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(
            out,
            "micro_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "micro_reconcile_duration_seconds_sum {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "micro_reconcile_duration_seconds_count {count}");
        out.push_str("# HELP micro_reconcile_queue_depth Namespaces waiting for a reconcile.\n");
        out.push_str("# TYPE micro_reconcile_queue_depth gauge\n");
        let _ = writeln!(out, "micro_reconcile_queue_depth {queued}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_results_and_buckets_durations_cumulatively() {
        let m = Metrics::default();
        m.record(Ended::Applied, Duration::from_millis(3));
        m.record(Ended::Applied, Duration::from_millis(70));
        m.record(Ended::Failed, Duration::from_secs(200));
        m.record(Ended::Unchanged, Duration::from_micros(5));
        let text = m.render(4);
        for line in [
            "micro_reconciles_total{result=\"applied\"} 2",
            "micro_reconciles_total{result=\"failed\"} 1",
            "micro_reconciles_total{result=\"invalid\"} 0",
            "micro_reconciles_total{result=\"unchanged\"} 1",
            "micro_reconcile_duration_seconds_bucket{le=\"0.001\"} 0",
            "micro_reconcile_duration_seconds_bucket{le=\"0.005\"} 1",
            "micro_reconcile_duration_seconds_bucket{le=\"0.1\"} 2",
            "micro_reconcile_duration_seconds_bucket{le=\"120\"} 2",
            "micro_reconcile_duration_seconds_bucket{le=\"+Inf\"} 3",
            "micro_reconcile_duration_seconds_count 3",
            "micro_reconcile_duration_seconds_sum 200.073",
            "micro_reconcile_queue_depth 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
