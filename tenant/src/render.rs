//! Rendering a parsed spec into the desired model: defaults applied, config versions
//! attached, positions dropped.

use crate::desired::{ServiceModel, SourceModel};
use crate::detect::Detected;
use crate::spec::{ConfigSpec, ServiceSpec};

/// The model of one service. `code` is the digest of its files other than the spec;
/// `toolchain` what its files say it is built with, `detected` what they ask for.
pub fn model(
    spec: &ServiceSpec,
    code: &str,
    toolchain: Option<&str>,
    detected: &Detected,
    config: &ConfigSpec,
) -> ServiceModel {
    let build = spec.build.as_ref().map(|b| &b.value);
    let detect = build.is_none_or(crate::spec::BuildValue::detect);
    let spec_build = build.and_then(crate::spec::BuildValue::command);
    let detected = detected.given_run(spec.run.is_some());
    ServiceModel {
        code: code.to_owned(),
        toolchain: toolchain.map(str::to_owned),
        runtime: spec.runtime.as_ref().map(|r| r.value.clone()),
        run: spec
            .run()
            .or(detected.run.as_ref().map(|s| s.command.as_str()))
            .map(str::to_owned),
        build: detected.build(spec_build, detect),
        detected: detected.lines(detect),
        image: spec.image.as_ref().map(|i| i.value.clone()),
        source: spec.source.as_ref().map(|s| SourceModel {
            git: s.git.value.clone(),
            commit: s.reference.value.clone(),
            track: s.track.clone(),
            path: s.path.as_ref().map(|p| p.value.clone()),
        }),
        port: spec.port.as_ref().map(|p| p.value),
        replicas: spec.replicas(),
        env: spec
            .env()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        config: spec
            .config
            .iter()
            .map(|k| {
                (
                    k.value.clone(),
                    config.get(&k.value).map_or(0, |e| e.version),
                )
            })
            .collect(),
        cpu: spec
            .resources
            .as_ref()
            .and_then(|r| r.cpu.as_ref().map(|c| c.value.clone())),
        memory: spec
            .resources
            .as_ref()
            .and_then(|r| r.memory.as_ref().map(|m| m.value.clone())),
        ready_path: spec
            .readiness
            .as_ref()
            .and_then(|r| r.path.as_ref().map(|p| p.value.clone())),
        build_timeout: spec
            .build_timeout
            .as_ref()
            .and_then(|t| crate::spec::parse_seconds(&t.value))
            .unwrap_or(0),
        ready_timeout: spec
            .readiness
            .as_ref()
            .and_then(|r| r.timeout.as_ref())
            .and_then(|t| crate::spec::parse_seconds(&t.value))
            .unwrap_or(crate::spec::DEFAULT_READY_TIMEOUT_SECS),
        tls: spec.tls.as_ref().is_some_and(|t| t.value),
        public: spec.public.as_ref().is_some_and(|p| p.value),
        auth_key: spec.auth.as_ref().is_some_and(|a| a.value == "key"),
        body_limit: spec
            .limits
            .as_ref()
            .and_then(|l| l.body.as_ref())
            .and_then(|b| crate::quantity::parse_memory(&b.value))
            .unwrap_or(0),
        liveness: spec.liveness.as_ref().map(|l| crate::desired::Liveness {
            path: l.path.as_ref().map(|p| p.value.clone()),
            period: l
                .period
                .as_ref()
                .and_then(|p| crate::spec::parse_seconds(&p.value))
                .unwrap_or(crate::spec::DEFAULT_LIVENESS_PERIOD_SECS),
            failures: l
                .failures
                .as_ref()
                .map_or(crate::spec::DEFAULT_LIVENESS_FAILURES, |f| f.value),
        }),
    }
}
