//! `$MICRO_HOME` (default `~/.micro`): the CLI's environments and tokens, the push cache
//! and where local sources were run from.

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment every CLI knows: a platform on this machine.
pub const BUILTIN_ENV: &str = "server";
pub const BUILTIN_URL: &str = "https://127.0.0.1:8081";
/// The hosted platform's environment, built in when this CLI was built with its address
/// (`MICRO_DEFAULT_PLATFORM_URL`, and `MICRO_DEFAULT_PLATFORM_CA_FINGERPRINT` when its
/// certificate is from its own CA, pinned on first use).
pub const PLATFORM_ENV: &str = "platform";

/// The built-in `platform` environment of a CLI built with `url` (and the fingerprint
/// of the platform's own CA).
fn builtin_platform(url: Option<&str>, fingerprint: Option<&str>) -> Option<Env> {
    let url = url.filter(|u| !u.is_empty())?;
    Some(Env {
        url: url.to_owned(),
        ca_fingerprint: fingerprint.filter(|f| !f.is_empty()).map(str::to_owned),
        ..Env::default()
    })
}

/// This build's `platform` environment, if it has one.
fn platform() -> Option<Env> {
    builtin_platform(
        option_env!("MICRO_DEFAULT_PLATFORM_URL"),
        option_env!("MICRO_DEFAULT_PLATFORM_CA_FINGERPRINT"),
    )
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Env {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The account's own namespace, remembered so commands need not ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The CA this environment's certificates must chain to (PEM), pinned: no other is
    /// trusted for it. None: the system's roots (a platform with a public certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// The fingerprint of the CA to pin on first use (the built-in `platform`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_fingerprint: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Envs {
    #[serde(default)]
    pub current: Option<String>,
    #[serde(default)]
    pub envs: BTreeMap<String, Env>,
}

impl Envs {
    /// An env by name; `server` exists even when the file does not mention it.
    pub fn get(&self, name: &str) -> Option<Env> {
        self.get_with(name, platform())
    }

    fn get_with(&self, name: &str, platform: Option<Env>) -> Option<Env> {
        self.envs.get(name).cloned().or_else(|| match name {
            BUILTIN_ENV => Some(Env {
                url: BUILTIN_URL.to_owned(),
                ..Env::default()
            }),
            PLATFORM_ENV => platform,
            _ => None,
        })
    }

    pub fn current_name(&self) -> &str {
        self.current.as_deref().unwrap_or(BUILTIN_ENV)
    }

    /// Every env, the built-in one included.
    pub fn all(&self) -> BTreeMap<String, Env> {
        self.all_with(platform())
    }

    fn all_with(&self, platform: Option<Env>) -> BTreeMap<String, Env> {
        let mut all = self.envs.clone();
        for name in [BUILTIN_ENV, PLATFORM_ENV] {
            if let Some(builtin) = self.get_with(name, platform.clone()) {
                all.entry(name.to_owned()).or_insert(builtin);
            }
        }
        all
    }
}

/// What `micro run DIR` remembers of a service it deployed from a folder: where the
/// folder is, and what it put in the repo, so `micro update` notices work pushed since.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deployed {
    pub dir: PathBuf,
    /// The tree of `services/<name>` it pushed.
    #[serde(default)]
    pub tree: Option<String>,
    /// The commit that carried it.
    #[serde(default)]
    pub commit: Option<String>,
}

/// `sources.json` entries: older CLIs kept the folder alone.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Remembered {
    Deployed(Deployed),
    Dir(PathBuf),
}

#[derive(Clone, Debug)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// The file git reads `env_name`'s pinned CA from (written from the environment, so
    /// it follows the CA a later `micro env add` or server start pinned); none without one.
    pub fn ca_file(&self, env_name: &str, ca_pem: Option<&str>) -> Result<Option<PathBuf>> {
        let Some(pem) = ca_pem else {
            return Ok(None);
        };
        let dir = self.dir().join("ca");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{env_name}.pem"));
        if std::fs::read_to_string(&path).ok().as_deref() != Some(pem) {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, pem).with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(Some(path))
    }

    pub fn locate() -> Result<Self> {
        let dir = match std::env::var_os("MICRO_HOME") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => {
                let home = std::env::var_os("HOME")
                    .ok_or_else(|| anyhow!("neither MICRO_HOME nor HOME is set"))?;
                PathBuf::from(home).join(".micro")
            }
        };
        Ok(Home { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn envs_file(&self) -> PathBuf {
        self.dir.join("envs.json")
    }

    pub fn load_envs(&self) -> Result<Envs> {
        read_json(&self.envs_file())
    }

    pub fn save_envs(&self, envs: &Envs) -> Result<()> {
        write_json_private(&self.envs_file(), envs)
    }

    /// Where `micro run DIR` remembers DIR so `micro update NAME` can find it again.
    fn sources_file(&self) -> PathBuf {
        self.dir.join("sources.json")
    }

    pub fn remember_source(&self, key: &str, deployed: Deployed) -> Result<()> {
        let mut map: BTreeMap<String, Remembered> = read_json(&self.sources_file())?;
        map.insert(key.to_owned(), Remembered::Deployed(deployed));
        write_json_private(&self.sources_file(), &map)
    }

    pub fn source_of(&self, key: &str) -> Result<Option<Deployed>> {
        let map: BTreeMap<String, Remembered> = read_json(&self.sources_file())?;
        Ok(map.get(key).cloned().map(|r| match r {
            Remembered::Deployed(d) => d,
            Remembered::Dir(dir) => Deployed {
                dir,
                tree: None,
                commit: None,
            },
        }))
    }

    /// A bare repo per env and namespace, used to build and push commits.
    pub fn push_cache(&self, env: &str, namespace: &str) -> PathBuf {
        self.dir
            .join("cache")
            .join(env)
            .join(micro_tenant::layout::repo_dir_name(namespace))
    }
}

fn read_json<T: Default + for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not valid", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes atomically, readable by the owner only: the file holds tokens.
fn write_json_private<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("bad path {}", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(value)?)?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod builtin_tests {
    use super::*;

    #[test]
    fn a_cli_built_with_the_platforms_address_lists_it_beside_server() {
        let envs = Envs::default();
        let hosted = builtin_platform(Some("https://micro.example"), Some("SHA256:ab"));
        let all = envs.all_with(hosted.clone());
        assert_eq!(all.keys().collect::<Vec<_>>(), ["platform", "server"]);
        let platform = envs.get_with(PLATFORM_ENV, hosted).unwrap();
        assert_eq!(platform.url, "https://micro.example");
        assert_eq!(platform.ca_fingerprint.as_deref(), Some("SHA256:ab"));
        // Without it, nothing changes.
        assert_eq!(envs.all_with(builtin_platform(None, None)).len(), 1);
        assert!(envs.get_with(PLATFORM_ENV, None).is_none());
    }
}
