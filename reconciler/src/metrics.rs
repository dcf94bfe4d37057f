//! What an operator scrapes of the reconciler: how many reconciles ran, how each ended,
//! how long they took and how many namespaces wait (prometheus-client). Platform-wide
//! aggregates only, never a namespace name: a label per tenant would grow with the
//! fleet and say who the tenants are.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Upper bounds of the duration histogram, in seconds (Prometheus `le`).
const BOUNDS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];

/// How a reconcile ended, as counted: the history's own enum.
pub use micro_store::ReconcileResult as Ended;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    result: &'static str,
}

fn outcome(ended: Ended) -> Outcome {
    Outcome {
        result: ended.as_str(),
    }
}

pub struct Metrics {
    reconciles: Family<Outcome, Counter>,
    duration: Histogram,
    queue_depth: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let reconciles = Family::<Outcome, Counter>::default();
        // Every result is shown from the start, at 0.
        for ended in Ended::ALL {
            let _ = reconciles.get_or_create(&outcome(ended));
        }
        Metrics {
            reconciles,
            duration: Histogram::new(BOUNDS),
            queue_depth: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Counts one reconcile; skipped ones do not enter the duration histogram.
    pub fn record(&self, result: Ended, took: Duration) {
        self.reconciles.get_or_create(&outcome(result)).inc();
        if result != Ended::Unchanged {
            self.duration.observe(took.as_secs_f64());
        }
    }

    /// How many namespaces wait now (set before each scrape).
    pub fn set_queue_depth(&self, queued: usize) {
        self.queue_depth
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
    }

    /// Adds these metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "micro_reconciles",
            "Reconciles by how they ended",
            self.reconciles.clone(),
        );
        registry.register(
            "micro_reconcile_duration_seconds",
            "Time of reconciles that read the head",
            self.duration.clone(),
        );
        registry.register(
            "micro_reconcile_queue_depth",
            "Namespaces waiting for a reconcile",
            self.queue_depth.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_results_and_buckets_durations_cumulatively() {
        let m = Metrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.record(Ended::Applied, Duration::from_millis(3));
        m.record(Ended::Applied, Duration::from_millis(70));
        m.record(Ended::Failed, Duration::from_secs(200));
        m.record(Ended::Unchanged, Duration::from_micros(5));
        m.set_queue_depth(4);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "micro_reconciles_total{result=\"applied\"} 2",
            "micro_reconciles_total{result=\"failed\"} 1",
            "micro_reconciles_total{result=\"invalid\"} 0",
            "micro_reconciles_total{result=\"unchanged\"} 1",
            "micro_reconcile_duration_seconds_bucket{le=\"0.001\"} 0",
            "micro_reconcile_duration_seconds_bucket{le=\"0.005\"} 1",
            "micro_reconcile_duration_seconds_bucket{le=\"0.1\"} 2",
            "micro_reconcile_duration_seconds_bucket{le=\"120.0\"} 2",
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
