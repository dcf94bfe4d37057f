//! The Kubernetes runtime: a tenant becomes a Kubernetes namespace (`<prefix><tenant>`)
//! with network isolation, a quota and, per service, a Deployment, a Service, a Secret
//! and a ServiceAccount, all applied with server-side apply under one field manager.
//!
//! Rendering (`render`) is pure and shared with `micro manifests`: it builds typed
//! `k8s-openapi` objects from the desired state and the [`micro_runtime::Artifact`] the
//! controller names (what the pods fetch or run). The runtime (`runtime`) applies them,
//! compares them with what lives as unstructured JSON (only the fields it sets, so the
//! API server's defaults are no drift), observes through watch-fed caches and prunes
//! only what carries the platform's ownership labels. It must never touch an object it
//! does not own, never delete workloads when the server stops, and never put a secret
//! value anywhere but the service's own Secret.
//!
//! It implements `micro-runtime`'s contract and depends on no store, reconciler or HTTP
//! front door; its tests drive it against `micro-testkit`'s fake API server.

mod cache;
mod compare;
mod connect;
mod drift;
mod gateway;
mod identity;
pub mod labels;
mod logs;
mod proxy;
pub mod render;
pub mod runtime;
pub mod settings;
mod shared;
mod status;

pub use connect::{ConnectError, connect};
pub use runtime::KubeRuntime;
pub use settings::{KUBERNETES_VERSION, Settings};
