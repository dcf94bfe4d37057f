//! Preview environments as the repo contract sees them: the namespace a pull request's or
//! a branch's head runs in (`<ns>-pr-<N>`, `<ns>-br-<branch>`) and how its name leads
//! back to the namespace it previews; the `previews:` settings of `micro.yaml`; and the
//! mark the platform keeps beside a preview's repo ([`Scope`]), which narrows what the
//! head may run there: only the chosen services, public only where the parent's are.

use crate::desired::DesiredNamespace;
use crate::spec::SpecError;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, BTreeSet};

/// What a preview runs: one pull request's head, or one branch's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Pull(u64),
    Branch(String),
}

impl Source {
    /// `#7`, or the branch's name.
    pub fn label(&self) -> String {
        match self {
            Source::Pull(n) => format!("#{n}"),
            Source::Branch(b) => b.clone(),
        }
    }

    /// What a user types for it: `7` or `#7` is a pull request, anything else a branch.
    pub fn parse(text: &str) -> Source {
        let digits = text.strip_prefix('#').unwrap_or(text);
        match digits.parse::<u64>() {
            Ok(n) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Source::Pull(n)
            }
            _ => Source::Branch(text.to_owned()),
        }
    }
}

const PULL: &str = "-pr-";
const BRANCH: &str = "-br-";
/// A preview's namespace name's longest: a DNS label with room for the `micro-` a
/// cluster puts before a tenant's namespace.
const MAX_NAME: usize = 57;

/// The preview namespace of `source` in `parent`, or why there can be none (the name
/// would be longer than a DNS label allows).
pub fn namespace_of(parent: &str, source: &Source) -> Result<String, String> {
    let name = match source {
        Source::Pull(n) => format!("{parent}{PULL}{n}"),
        Source::Branch(branch) => {
            let label = branch_label(branch);
            if label.is_empty() {
                return Err(format!(
                    "branch {branch:?} has no letter or digit to name its preview by"
                ));
            }
            format!("{parent}{BRANCH}{label}")
        }
    };
    if name.len() > MAX_NAME {
        return Err(format!(
            "the preview's namespace {name:?} would be longer than {MAX_NAME} characters: use a shorter branch name"
        ));
    }
    Ok(name)
}

/// A branch name as a DNS label's tail: lowercase letters and digits, every other run
/// of characters one `-`, none at either end (`feature/Login_Page` → `feature-login-page`).
fn branch_label(branch: &str) -> String {
    let mut out = String::new();
    for c in branch.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// The namespace `name` previews, if it is a preview's: `acme` of `acme-pr-7` and of
/// `acme-br-login`. Tenants' own names never have these forms ([`is_reserved`]).
pub fn parent_of(name: &str) -> Option<&str> {
    // A parent never contains `-br-`, so the first one splits.
    if let Some(at) = name.find(BRANCH) {
        let (parent, rest) = (&name[..at], &name[at + BRANCH.len()..]);
        return (!parent.is_empty() && !rest.is_empty()).then_some(parent);
    }
    let at = name.rfind(PULL)?;
    let (parent, number) = (&name[..at], &name[at + PULL.len()..]);
    let numeric = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    (numeric && !parent.is_empty()).then_some(parent)
}

/// Whether `name` has a preview's form, which no tenant's own namespace may take.
pub fn is_reserved(name: &str) -> bool {
    parent_of(name).is_some()
}

/// How a preview gets its parent's config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigCopy {
    /// The values the head names, copied from the parent; secrets only when listed.
    #[default]
    Copy,
    /// None: services start without config.
    Empty,
}

/// `previews:` in `micro.yaml`, as written.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewsSpec {
    #[serde(default)]
    pub enabled: bool,
    pub services: Option<Vec<Spanned<String>>>,
    pub ttl: Option<Spanned<String>>,
    pub max: Option<Spanned<u32>>,
    pub config: Option<ConfigCopy>,
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// Where the store keeps the admin's quota overrides of the previews class (never a
/// namespace's name).
pub const QUOTA_CLASS: &str = "@previews";

/// A preview's quota: the class (the defaults scaled down, with the admin's overrides on
/// top) and never more than its parent's.
pub fn quota(
    defaults: crate::quota::Quota,
    class_overrides: Option<&str>,
    parent: crate::quota::Quota,
) -> crate::quota::Quota {
    let mut class = defaults.preview_class();
    if let Some(overrides) = class_overrides {
        // Checked when stored.
        let _ = class.set(overrides);
    }
    class.at_most(parent)
}

/// The most previews a namespace may ask to have open at once.
pub const MAX_OPEN: u32 = 20;
/// A preview's inactivity before it goes, when `ttl` is not given.
pub const DEFAULT_TTL_SECS: u64 = 72 * 3600;
const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

/// `previews:` checked: what the platform acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub enabled: bool,
    /// `None`: the public services and what they call.
    pub services: Option<BTreeSet<String>>,
    pub ttl_secs: u64,
    pub max: u32,
    pub config: ConfigCopy,
    /// Secret keys that are copied all the same.
    pub secrets: BTreeSet<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: false,
            services: None,
            ttl_secs: DEFAULT_TTL_SECS,
            max: 5,
            config: ConfigCopy::Copy,
            secrets: BTreeSet::new(),
        }
    }
}

impl PreviewsSpec {
    /// The settings, or the first value that is wrong (at its line and column).
    pub fn settings(&self) -> Result<Settings, SpecError> {
        let at = |line: u64, column: u64, message: String| {
            SpecError::new("micro.yaml", line.max(1), column.max(1), message)
        };
        let mut s = Settings {
            enabled: self.enabled,
            config: self.config.unwrap_or_default(),
            secrets: self.secrets.iter().cloned().collect(),
            ..Settings::default()
        };
        if let Some(ttl) = &self.ttl {
            let l = &ttl.referenced;
            s.ttl_secs = parse_duration(&ttl.value)
                .filter(|t| (60..=MAX_TTL_SECS).contains(t))
                .ok_or_else(|| {
                    at(
                        l.line(),
                        l.column(),
                        format!(
                            "`ttl` {:?} must be a duration from 1m to 30d, like 72h, 90m or 7d",
                            ttl.value
                        ),
                    )
                })?;
        }
        if let Some(max) = &self.max {
            let l = &max.referenced;
            if !(1..=MAX_OPEN).contains(&max.value) {
                return Err(at(
                    l.line(),
                    l.column(),
                    format!("`max` must be from 1 to {MAX_OPEN}"),
                ));
            }
            s.max = max.value;
        }
        if let Some(services) = &self.services {
            let mut set = BTreeSet::new();
            for name in services {
                let l = &name.referenced;
                crate::spec::check_service_name(&name.value)
                    .map_err(|e| at(l.line(), l.column(), e))?;
                set.insert(name.value.clone());
            }
            s.services = Some(set);
        }
        Ok(s)
    }
}

/// `90s`, `90m`, `72h`, `7d` → seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let unit = match text.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// What a preview may run, kept beside its repo: which services, and how each is
/// served. Written by the platform from the parent's settings and what the parent runs;
/// applied by [`crate::admit::admit`] before the quota is weighed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The services run; the head's others are left out.
    pub services: BTreeSet<String>,
    /// Public in the parent (`true` when behind its API keys): the only ones public here.
    pub public: BTreeMap<String, bool>,
}

impl Scope {
    /// The scope of a preview of `head` (a pull request's or branch's desired state)
    /// whose parent runs `parent` and asks for `wanted` (`None`: the head's public
    /// services and, transitively, what they call).
    pub fn of(
        head: &DesiredNamespace,
        parent: Option<&DesiredNamespace>,
        wanted: Option<&BTreeSet<String>>,
        calls: &BTreeMap<String, BTreeSet<String>>,
    ) -> Scope {
        let services = match wanted {
            Some(w) => w.clone(),
            None => {
                let mut chosen: BTreeSet<String> = head
                    .services
                    .values()
                    .filter(|s| s.model.public)
                    .map(|s| s.name.clone())
                    .collect();
                let mut todo: Vec<String> = chosen.iter().cloned().collect();
                while let Some(caller) = todo.pop() {
                    for callee in calls.get(&caller).into_iter().flatten() {
                        if chosen.insert(callee.clone()) {
                            todo.push(callee.clone());
                        }
                    }
                }
                chosen
            }
        };
        let public = parent
            .map(|p| {
                p.services
                    .values()
                    .filter(|s| s.model.public)
                    .map(|s| (s.name.clone(), s.model.auth_key))
                    .collect()
            })
            .unwrap_or_default();
        Scope { services, public }
    }

    /// Narrows `desired` to this scope.
    pub fn apply(&self, desired: &mut DesiredNamespace) {
        desired
            .services
            .retain(|name, _| self.services.contains(name));
        for service in desired.services.values_mut() {
            match self.public.get(&service.name) {
                Some(auth_key) if service.model.public => {
                    service.model.auth_key |= auth_key;
                }
                _ => {
                    service.model.public = false;
                    service.model.auth_key = false;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::desired::{DesiredService, ServiceModel};

    #[test]
    fn names_lead_back_to_their_parent_and_tenants_cannot_take_them() {
        let pr = namespace_of("brave-otter-river", &Source::Pull(7)).unwrap();
        assert_eq!(pr, "brave-otter-river-pr-7");
        assert_eq!(parent_of(&pr), Some("brave-otter-river"));
        let br = namespace_of("acme", &Source::Branch("feature/Login_Page--x-".into())).unwrap();
        assert_eq!(br, "acme-br-feature-login-page-x");
        assert_eq!(parent_of(&br), Some("acme"));
        // A branch whose label has `-pr-7` in it is still the branch's.
        let tricky = namespace_of("acme", &Source::Branch("fix-pr-7".into())).unwrap();
        assert_eq!(parent_of(&tricky), Some("acme"));
        for own in [
            "acme",
            "my-pr-team",
            "pr-7",
            "acme-pr-",
            "acme-pr-x",
            "-br-x",
        ] {
            assert_eq!(parent_of(own), None, "{own}");
        }
        assert!(namespace_of("acme", &Source::Branch("///".into())).is_err());
        assert!(namespace_of("acme", &Source::Branch("b".repeat(70))).is_err());
        // Nobody can make one by hand.
        assert!(crate::spec::check_namespace_name("acme-pr-7").is_err());
        assert!(crate::spec::check_namespace_name("acme-br-x").is_err());
        assert!(crate::spec::check_namespace_name("my-pr-team").is_ok());
        assert_eq!(Source::parse("#12"), Source::Pull(12));
        assert_eq!(Source::parse("12"), Source::Pull(12));
        assert_eq!(Source::parse("login"), Source::Branch("login".into()));
    }

    fn spec(yaml: &str) -> Result<Settings, SpecError> {
        let ns: crate::spec::NamespaceSpec =
            crate::spec::parse_yaml("micro.yaml", yaml.as_bytes()).unwrap();
        ns.previews.unwrap().settings()
    }

    #[test]
    fn settings_are_checked_with_the_place_of_what_is_wrong() {
        let s = spec(
            "schema: 1\nnamespace: a\npreviews:\n  enabled: true\n  ttl: 2h\n  max: 3\n  config: copy\n  secrets: [stripe.key]\n  services: [web]\n",
        )
        .unwrap();
        assert!(s.enabled);
        assert_eq!((s.ttl_secs, s.max), (7200, 3));
        assert!(s.secrets.contains("stripe.key"));
        assert_eq!(s.services.unwrap().len(), 1);
        let e = spec("schema: 1\nnamespace: a\npreviews:\n  enabled: true\n  ttl: forever\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("micro.yaml:5:8:"), "{e}");
        let e = spec("schema: 1\nnamespace: a\npreviews:\n  max: 500\n").unwrap_err();
        assert!(e.to_string().contains("`max` must be from 1"), "{e}");
        let e = spec("schema: 1\nnamespace: a\npreviews:\n  services: [Web]\n").unwrap_err();
        assert!(e.to_string().starts_with("micro.yaml:4:"), "{e}");
    }

    fn service(name: &str, public: bool, auth_key: bool) -> DesiredService {
        DesiredService {
            name: name.into(),
            revision: "r".into(),
            model: ServiceModel {
                public,
                auth_key,
                replicas: 1,
                ..ServiceModel::default()
            },
            tree: String::new(),
        }
    }

    fn desired(services: Vec<DesiredService>) -> DesiredNamespace {
        DesiredNamespace {
            namespace: "a".into(),
            revision: "r".into(),
            services: services.into_iter().map(|s| (s.name.clone(), s)).collect(),
        }
    }

    #[test]
    fn a_scope_runs_the_public_services_and_what_they_call_public_only_as_the_parent() {
        let head = desired(vec![
            service("web", true, false),
            service("api", false, false),
            service("db", false, false),
            service("batch", false, false),
            service("admin", true, false),
        ]);
        let parent = desired(vec![
            service("web", true, true),
            service("api", false, false),
        ]);
        let calls = BTreeMap::from([
            ("web".to_owned(), BTreeSet::from(["api".to_owned()])),
            ("api".to_owned(), BTreeSet::from(["db".to_owned()])),
        ]);
        let scope = Scope::of(&head, Some(&parent), None, &calls);
        let mut run = head.clone();
        scope.apply(&mut run);
        let names: Vec<&str> = run.services.keys().map(String::as_str).collect();
        assert_eq!(names, ["admin", "api", "db", "web"]);
        // `web` is public behind the parent's keys; `admin`, private in the parent's
        // world (it does not run there), stays private here.
        assert!(run.services["web"].model.public && run.services["web"].model.auth_key);
        assert!(!run.services["admin"].model.public);
        let only = BTreeSet::from(["api".to_owned()]);
        let mut run = head.clone();
        Scope::of(&head, Some(&parent), Some(&only), &calls).apply(&mut run);
        assert_eq!(run.services.keys().collect::<Vec<_>>(), ["api"]);
    }
}
