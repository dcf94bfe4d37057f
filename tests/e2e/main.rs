//! End-to-end tests: the real `micro` binary and server, the real `git` CLI, real
//! processes and a real SQLite store, each test on its own port and temp dirs.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod health;

mod accounts;
mod backup;
mod billing;
mod branches;
mod builds;
mod config;
mod conventions;
mod crash;
mod deletion;
mod domains;
mod drift;
mod edge;
mod egress;
mod forge;
mod gitops;
mod hostile;
mod identity;
mod invalid;
mod isolation;
mod kubernetes;
mod kv;
mod logs;
mod manifests;
mod matrix;
mod postgres;
mod restart;
mod rollout;
mod service_tls;
mod signup;
mod sources;
mod tls;
mod walkthrough;
