//! Quotas: what one namespace's desired state may ask of the platform. Checked at
//! pre-receive (a push over quota is refused with the reason) and again by the
//! reconciler (a commit that got in some other way is treated like an invalid one).
//!
//! The server writes each namespace's effective quota beside its repo (`marks`), where
//! the hook and the reconciler read it without the store; tenants cannot write there.

use crate::desired::DesiredNamespace;
use crate::quantity::{parse_cpu, parse_memory};
use git2::{ObjectType, Oid, Repository};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// What a replica may use when its spec sets no `resources` (its limits).
pub const DEFAULT_CPU_MILLIS: u64 = 1000;
pub const DEFAULT_MEMORY_BYTES: u64 = 512 << 20;
/// What such a replica reserves, and counts against the quota (its requests): small, so
/// a namespace of small services is not stopped at its CPU count. A spec's own
/// `resources` are both what it reserves and what it may use.
pub const DEFAULT_CPU_REQUEST_MILLIS: u64 = 100;
pub const DEFAULT_MEMORY_REQUEST_BYTES: u64 = 128 << 20;

/// One namespace's limits. Missing fields take the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quota {
    pub services: u64,
    /// Replicas of all services together.
    pub replicas: u64,
    /// CPU of all replicas together, in thousandths.
    pub cpu_millis: u64,
    /// Memory of all replicas together.
    pub memory_bytes: u64,
    /// The repo's objects on disk, a push included.
    pub repo_bytes: u64,
    /// Files the checkouts of all services hold together (a tree reused by several
    /// services counts for each).
    pub checkout_files: u64,
    pub checkout_bytes: u64,
    pub pushes_per_minute: u64,
    /// What the namespace may keep in the platform's store: its key-value records
    /// (table, key and value) and every version of its config values, in bytes.
    pub store_bytes: u64,
    /// The longest `build_timeout` a service may ask, in seconds.
    pub build_seconds: u64,
    /// Refs (branches and tags) the repo may hold.
    pub refs: u64,
}

impl Quota {
    /// The defaults, with CPU and memory fitted to a machine of `cores` and
    /// `memory_bytes` (the local runtime's: a namespace may reserve every core and half
    /// the memory).
    pub fn fitted(cores: u64, memory_bytes: u64) -> Quota {
        Quota {
            cpu_millis: cores.max(1) * 1000,
            memory_bytes: (memory_bytes / 2).max(1 << 30),
            ..Quota::default()
        }
    }
}

impl Quota {
    /// The previews class when an admin set none: a quarter of the CPU, memory and
    /// store, at most 10 services of one replica each.
    pub fn preview_class(self) -> Quota {
        let services = self.services.min(10);
        Quota {
            services,
            replicas: services,
            cpu_millis: (self.cpu_millis / 4).max(100),
            memory_bytes: (self.memory_bytes / 4).max(128 << 20),
            store_bytes: self.store_bytes / 4,
            ..self
        }
    }

    /// Each limit the lower of the two: a preview never gets more than its parent.
    pub fn at_most(self, other: Quota) -> Quota {
        Quota {
            services: self.services.min(other.services),
            replicas: self.replicas.min(other.replicas),
            cpu_millis: self.cpu_millis.min(other.cpu_millis),
            memory_bytes: self.memory_bytes.min(other.memory_bytes),
            repo_bytes: self.repo_bytes.min(other.repo_bytes),
            checkout_files: self.checkout_files.min(other.checkout_files),
            checkout_bytes: self.checkout_bytes.min(other.checkout_bytes),
            pushes_per_minute: self.pushes_per_minute.min(other.pushes_per_minute),
            store_bytes: self.store_bytes.min(other.store_bytes),
            build_seconds: self.build_seconds.min(other.build_seconds),
            refs: self.refs.min(other.refs),
        }
    }
}

impl Default for Quota {
    fn default() -> Self {
        Quota {
            services: 50,
            replicas: 100,
            cpu_millis: 8_000,
            memory_bytes: 16 << 30,
            repo_bytes: 512 << 20,
            checkout_files: 100_000,
            checkout_bytes: 2 << 30,
            pushes_per_minute: 60,
            store_bytes: 256 << 20,
            build_seconds: 3600,
            refs: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "over quota: {what} would be {wanted}, namespace {namespace} may have {allowed} (an admin can raise it: micro admin quota {namespace})"
)]
pub struct QuotaError {
    pub namespace: String,
    pub what: &'static str,
    pub wanted: String,
    pub allowed: String,
}

impl Quota {
    /// The names `set` takes, as `micro admin quota` and `--default-quota` show them.
    pub const KEYS: [&'static str; 11] = [
        "services",
        "replicas",
        "cpu",
        "memory",
        "repo-size",
        "checkout-files",
        "checkout-size",
        "pushes-per-minute",
        "store-size",
        "build-time",
        "refs",
    ];

    /// Applies `key=value[,key=value…]` (counts plain, sizes like `4Gi`, CPU like `500m`).
    pub fn set(&mut self, spec: &str) -> Result<(), String> {
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: expected key=value"))?;
            let bad = || format!("{key}={value}: not a valid value");
            let count = || value.parse::<u64>().map_err(|_| bad());
            let size = || parse_memory(value).ok_or_else(bad);
            match key {
                "services" => self.services = count()?,
                "replicas" => self.replicas = count()?,
                "cpu" => self.cpu_millis = parse_cpu(value).ok_or_else(bad)?,
                "memory" => self.memory_bytes = size()?,
                "repo-size" => self.repo_bytes = size()?,
                "checkout-files" => self.checkout_files = count()?,
                "checkout-size" => self.checkout_bytes = size()?,
                "pushes-per-minute" => self.pushes_per_minute = count()?,
                "store-size" => self.store_bytes = size()?,
                "refs" => self.refs = count()?,
                "build-time" => {
                    self.build_seconds = crate::spec::parse_seconds(value)
                        .filter(|s| *s > 0)
                        .map(u64::from)
                        .ok_or_else(bad)?;
                }
                _ => {
                    return Err(format!(
                        "unknown quota {key:?}: one of {}",
                        Self::KEYS.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// Services, replicas, CPU and memory that `desired` asks for, against this quota.
    pub fn check_desired(&self, desired: &DesiredNamespace) -> Result<(), QuotaError> {
        let over = |what, wanted: String, allowed: String| QuotaError {
            namespace: desired.namespace.clone(),
            what,
            wanted,
            allowed,
        };
        let services = desired.services.len() as u64;
        if services > self.services {
            return Err(over(
                "services",
                services.to_string(),
                self.services.to_string(),
            ));
        }
        let (mut replicas, mut cpu, mut memory) = (0u64, 0u64, 0u64);
        // A namespace builds one service at a time, with that service's resources: the
        // biggest such build counts beside the replicas.
        let (mut build_cpu, mut build_memory) = (0u64, 0u64);
        for s in desired.services.values() {
            let n = u64::from(s.model.replicas);
            replicas += n;
            let c = s.model.cpu.as_deref().and_then(parse_cpu);
            let m = s.model.memory.as_deref().and_then(parse_memory);
            let (c, m) = (
                c.unwrap_or(DEFAULT_CPU_REQUEST_MILLIS),
                m.unwrap_or(DEFAULT_MEMORY_REQUEST_BYTES),
            );
            cpu += n * c;
            memory += n * m;
            if s.model.build.is_some() && n > 0 {
                build_cpu = build_cpu.max(c);
                build_memory = build_memory.max(m);
                let asked = u64::from(s.model.build_timeout);
                if asked > self.build_seconds {
                    return Err(over(
                        "build time",
                        format!("{asked}s ({}'s build_timeout)", s.name),
                        format!("{}s", self.build_seconds),
                    ));
                }
            }
        }
        cpu += build_cpu;
        memory += build_memory;
        if replicas > self.replicas {
            return Err(over(
                "replicas",
                replicas.to_string(),
                self.replicas.to_string(),
            ));
        }
        if cpu > self.cpu_millis {
            return Err(over(
                "cpu (the replicas' resources.cpu, 100m each without one)",
                format!("{cpu}m"),
                format!("{}m", self.cpu_millis),
            ));
        }
        if memory > self.memory_bytes {
            return Err(over(
                "memory (the replicas' resources.memory, 128Mi each without one)",
                mib(memory),
                mib(self.memory_bytes),
            ));
        }
        Ok(())
    }

    /// Files and bytes the checkouts of `desired`'s services would write, from the
    /// objects' headers (no blob is read). A tree is measured once however often reused.
    pub fn check_checkouts(
        &self,
        repo: &Repository,
        desired: &DesiredNamespace,
    ) -> Result<(), QuotaError> {
        let odb = repo.odb().map_err(|_| QuotaError {
            namespace: desired.namespace.clone(),
            what: "checkouts",
            wanted: "unreadable".into(),
            allowed: "readable objects".into(),
        })?;
        let mut memo = HashMap::new();
        let (mut files, mut bytes) = (0u64, 0u64);
        for service in desired.services.values() {
            if service.model.source.is_some() {
                continue; // fetched elsewhere, capped by the fetch limits
            }
            let Ok(tree) = Oid::from_str(&service.tree) else {
                continue;
            };
            let (f, b) = measure(repo, &odb, tree, &mut memo, self.checkout_files);
            files = files.saturating_add(f);
            bytes = bytes.saturating_add(b);
            if files > self.checkout_files {
                return Err(QuotaError {
                    namespace: desired.namespace.clone(),
                    what: "files in checkouts",
                    wanted: format!("over {}", self.checkout_files),
                    allowed: self.checkout_files.to_string(),
                });
            }
            if bytes > self.checkout_bytes {
                return Err(QuotaError {
                    namespace: desired.namespace.clone(),
                    what: "checkout size",
                    wanted: format!("over {}", mib(self.checkout_bytes)),
                    allowed: mib(self.checkout_bytes),
                });
            }
        }
        Ok(())
    }

    /// The size on disk of `dirs` (the repo's objects and a push's quarantine) against
    /// the repo quota.
    pub fn check_repo_size(&self, namespace: &str, dirs: &[&Path]) -> Result<(), QuotaError> {
        let size: u64 = dirs.iter().map(|d| disk_usage(d)).sum();
        if size > self.repo_bytes {
            return Err(QuotaError {
                namespace: namespace.to_owned(),
                what: "repo size",
                wanted: mib(size),
                allowed: mib(self.repo_bytes),
            });
        }
        Ok(())
    }
}

/// Bytes as whole MiB, rounded up: `512Mi`.
pub fn mib(bytes: u64) -> String {
    format!("{}Mi", bytes.div_ceil(1 << 20))
}

/// (files, bytes) under `tree`, stopping early once past `limit` files.
fn measure(
    repo: &Repository,
    odb: &git2::Odb<'_>,
    tree: Oid,
    memo: &mut HashMap<Oid, (u64, u64)>,
    limit: u64,
) -> (u64, u64) {
    if let Some(&known) = memo.get(&tree) {
        return known;
    }
    let Ok(t) = repo.find_tree(tree) else {
        return (0, 0);
    };
    let (mut files, mut bytes) = (0u64, 0u64);
    for entry in t.iter() {
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let (f, b) = measure(repo, odb, entry.id(), memo, limit);
                files = files.saturating_add(f);
                bytes = bytes.saturating_add(b);
            }
            Some(ObjectType::Blob) => {
                files += 1;
                bytes += odb
                    .read_header(entry.id())
                    .map_or(0, |(size, _)| size as u64);
            }
            _ => {}
        }
        if files > limit {
            break;
        }
    }
    memo.insert(tree, (files, bytes));
    (files, bytes)
}

/// Bytes of the regular files under `dir` (not following links).
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{DesiredService, ServiceModel};

    fn ns(services: &[(&str, u32, Option<&str>)]) -> DesiredNamespace {
        DesiredNamespace {
            namespace: "acme".into(),
            revision: "r".into(),
            services: services
                .iter()
                .map(|(name, replicas, memory)| {
                    let service = DesiredService {
                        name: (*name).into(),
                        model: ServiceModel {
                            replicas: *replicas,
                            memory: memory.map(str::to_owned),
                            ..ServiceModel::default()
                        },
                        tree: String::new(),
                        revision: "r".into(),
                    };
                    ((*name).to_owned(), service)
                })
                .collect(),
        }
    }

    #[test]
    fn a_namespace_over_any_limit_is_told_which() {
        let q = Quota {
            services: 2,
            replicas: 5,
            memory_bytes: 1 << 30,
            ..Quota::default()
        };
        assert!(
            q.check_desired(&ns(&[("a", 1, None), ("b", 1, None)]))
                .is_ok()
        );
        let err = q
            .check_desired(&ns(&[("a", 1, None), ("b", 1, None), ("c", 1, None)]))
            .unwrap_err();
        assert_eq!((err.what, err.wanted.as_str()), ("services", "3"));
        assert!(err.to_string().contains("micro admin quota acme"), "{err}");
        let err = q.check_desired(&ns(&[("a", 6, Some("16Mi"))])).unwrap_err();
        assert_eq!(err.what, "replicas");
        // Replicas without resources reserve 128Mi each: eight fit in 1Gi, nine do not
        // (with `replicas: 10` allowed).
        let q = Quota { replicas: 10, ..q };
        assert!(q.check_desired(&ns(&[("a", 8, None)])).is_ok());
        let err = q.check_desired(&ns(&[("a", 9, None)])).unwrap_err();
        assert!(err.what.starts_with("memory"), "{err}");
        assert!(err.to_string().contains("128Mi each without one"), "{err}");
    }

    #[test]
    fn a_reused_tree_counts_once_per_service_that_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let mut inner = repo.treebuilder(None).unwrap();
        for i in 0..10 {
            inner.insert(format!("f{i}"), blob, 0o100644).unwrap();
        }
        let tree = inner.write().unwrap().to_string();
        let mut desired = ns(&[("a", 1, None), ("b", 1, None), ("c", 1, None)]);
        for s in desired.services.values_mut() {
            s.tree = tree.clone();
        }
        let fits = Quota {
            checkout_files: 30,
            ..Quota::default()
        };
        assert!(fits.check_checkouts(&repo, &desired).is_ok());
        let tight = Quota {
            checkout_files: 29,
            ..Quota::default()
        };
        assert_eq!(
            tight.check_checkouts(&repo, &desired).unwrap_err().what,
            "files in checkouts"
        );
    }

    #[test]
    fn quotas_are_set_by_name_with_quantities() {
        let mut q = Quota::default();
        q.set("services=3, memory=4Gi,cpu=1500m,pushes-per-minute=2")
            .unwrap();
        assert_eq!(
            (q.services, q.memory_bytes, q.cpu_millis),
            (3, 4 << 30, 1500)
        );
        assert_eq!(q.pushes_per_minute, 2);
        assert!(q.set("lots=1").unwrap_err().contains("services, replicas"));
        assert!(q.set("memory=much").is_err());
        assert!(q.set("services").is_err());
    }

    #[test]
    fn a_quota_file_round_trips_and_defaults_fill_in() {
        let dir = tempfile::tempdir().unwrap();
        use crate::marks::{QUOTA_FILE, quota, write_quota};
        assert_eq!(quota(dir.path()), Quota::default());
        let q = Quota {
            services: 3,
            ..Quota::default()
        };
        write_quota(dir.path(), &q).unwrap();
        assert_eq!(quota(dir.path()), q);
        std::fs::write(dir.path().join(QUOTA_FILE), br#"{"services": 7}"#).unwrap();
        assert_eq!(quota(dir.path()).services, 7);
        assert_eq!(quota(dir.path()).replicas, Quota::default().replicas);
    }
}
