//! What the edge has seen of each public service: request counts by status class and a
//! latency histogram for `/metrics` (prometheus-client, labelled by namespace and
//! service), and the last five minutes in one-minute slots for `micro describe`
//! (requests per minute, p50 and p99). Bounded per service: a fixed set of buckets,
//! whatever the traffic; a service's figures go when the service does.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Upper bounds of the latency buckets, in seconds: the histogram's and the window's.
const BOUNDS: [f64; 16] = [
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    f64::INFINITY,
];
/// Status classes, as the requests' label says them.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// One slot per minute, five of them.
const SLOTS: usize = 5;
const SLOT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Requests {
    namespace: String,
    service: String,
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Service {
    namespace: String,
    service: String,
}

/// One minute of one service's requests: how many fell in each latency bucket.
#[derive(Clone, Copy, Default)]
struct Slot {
    /// Which minute (since the edge started) this slot holds.
    minute: u64,
    counts: [u32; BOUNDS.len()],
}

/// A service's last five minutes, as `micro describe` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Recent {
    pub per_minute: f64,
    /// Upper bounds of the buckets holding the 50th and 99th percentiles, in seconds.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// The edge's traffic figures.
pub struct Traffic {
    started: Instant,
    requests: Family<Requests, Counter>,
    latency: Family<Service, Histogram, fn() -> Histogram>,
    recent: Mutex<HashMap<(String, String), [Slot; SLOTS]>>,
}

fn histogram() -> Histogram {
    // The last bound is +Inf, which every histogram has.
    Histogram::new(BOUNDS[..BOUNDS.len() - 1].iter().copied())
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            started: Instant::now(),
            requests: Family::default(),
            latency: Family::new_with_constructor(histogram),
            recent: Mutex::default(),
        }
    }
}

impl Traffic {
    /// Adds its metrics to `registry`.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "micro_edge_requests",
            "Requests the edge answered for a public service, by status class",
            self.requests.clone(),
        );
        registry.register(
            "micro_edge_request_duration_seconds",
            "Time from a request's arrival at the edge to its answer's headers",
            self.latency.clone(),
        );
    }

    /// Counts one answered request.
    pub fn record(&self, namespace: &str, service: &str, status: u16, took: Duration) {
        let class = CLASSES[usize::from(status / 100).clamp(1, 5) - 1];
        self.requests
            .get_or_create(&Requests {
                namespace: namespace.to_owned(),
                service: service.to_owned(),
                class,
            })
            .inc();
        let secs = took.as_secs_f64();
        self.latency
            .get_or_create(&Service {
                namespace: namespace.to_owned(),
                service: service.to_owned(),
            })
            .observe(secs);
        let minute = self.minute();
        let bucket = BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BOUNDS.len() - 1);
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let slots = recent
            .entry((namespace.to_owned(), service.to_owned()))
            .or_default();
        let slot = &mut slots[(minute % SLOTS as u64) as usize];
        if slot.minute != minute {
            *slot = Slot {
                minute,
                counts: [0; BOUNDS.len()],
            };
        }
        slot.counts[bucket] = slot.counts[bucket].saturating_add(1);
    }

    fn minute(&self) -> u64 {
        self.started.elapsed().as_secs() / SLOT.as_secs()
    }

    /// `service`'s last five minutes (the current one partly).
    pub fn recent(&self, namespace: &str, service: &str) -> Recent {
        let now = self.minute();
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(slots) = recent.get(&(namespace.to_owned(), service.to_owned())) else {
            return Recent::default();
        };
        let mut counts = [0u64; BOUNDS.len()];
        for slot in slots
            .iter()
            .filter(|s| now.saturating_sub(s.minute) < SLOTS as u64)
        {
            for (total, n) in counts.iter_mut().zip(slot.counts) {
                *total += u64::from(n);
            }
        }
        let total: u64 = counts.iter().sum();
        // Minutes the window spans: fewer while the edge is young.
        let minutes = (self.started.elapsed().as_secs_f64() / 60.0).clamp(1.0, SLOTS as f64);
        let quantile = |q: f64| {
            let want = (total as f64 * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            counts.iter().zip(BOUNDS).find_map(|(n, bound)| {
                seen += n;
                (total > 0 && seen >= want).then_some(bound)
            })
        };
        Recent {
            per_minute: total as f64 / minutes,
            p50: quantile(0.5),
            p99: quantile(0.99),
        }
    }

    /// Forgets the figures of every service `public` no longer says is public: what a
    /// tenant's churn of services can leave here stays bounded by what is public now.
    pub fn prune(&self, public: impl Fn(&str, &str) -> bool) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.retain(|(namespace, service), _| {
            let keep = public(namespace, service);
            if !keep {
                let labels = Service {
                    namespace: namespace.clone(),
                    service: service.clone(),
                };
                self.latency.remove(&labels);
                for class in CLASSES {
                    self.requests.remove(&Requests {
                        namespace: namespace.clone(),
                        service: service.clone(),
                        class,
                    });
                }
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_per_service_and_their_percentiles() {
        let traffic = Traffic::default();
        let mut registry = prometheus_client::registry::Registry::default();
        traffic.register(&mut registry);
        for _ in 0..98 {
            traffic.record("a", "web", 200, Duration::from_millis(3));
        }
        traffic.record("a", "web", 502, Duration::from_millis(700));
        traffic.record("a", "web", 404, Duration::from_secs(20));
        traffic.record("b", "api", 200, Duration::from_millis(1));
        let recent = traffic.recent("a", "web");
        assert_eq!(recent.per_minute, 100.0);
        assert_eq!(recent.p50, Some(0.005));
        assert_eq!(recent.p99, Some(1.0));
        assert_eq!(traffic.recent("a", "nosuch"), Recent::default());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "micro_edge_requests_total{namespace=\"a\",service=\"web\",class=\"2xx\"} 98",
            "micro_edge_requests_total{namespace=\"a\",service=\"web\",class=\"5xx\"} 1",
            "micro_edge_request_duration_seconds_count{namespace=\"a\",service=\"web\"} 100",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // A service no longer public leaves nothing behind.
        traffic.prune(|ns, _| ns == "b");
        assert_eq!(traffic.recent("a", "web"), Recent::default());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(!text.contains("service=\"web\""), "{text}");
        assert!(text.contains("service=\"api\""), "{text}");
    }
}
