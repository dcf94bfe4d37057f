//! Where tenant repos live and which branch is the desired state: spelled once.

use std::path::{Path, PathBuf};

/// The branch whose head is the namespace's desired state.
pub const BRANCH: &str = "refs/heads/main";

/// The folder holding one folder per service.
pub const SERVICES_DIR: &str = "services";

/// A service's folder in the repo: `services/<name>`.
pub fn service_dir(name: &str) -> String {
    format!("{SERVICES_DIR}/{name}")
}

/// A service's spec file in the repo: `services/<name>/service.yaml`.
pub fn spec_path(name: &str) -> String {
    format!("{SERVICES_DIR}/{name}/service.yaml")
}

/// The folder name of a namespace's bare repo: `<ns>.git`.
pub fn repo_dir_name(namespace: &str) -> String {
    format!("{namespace}.git")
}

/// A namespace's bare repo under the platform's repos root.
pub fn repo_path(root: &Path, namespace: &str) -> PathBuf {
    root.join(repo_dir_name(namespace))
}

/// The namespace a `<ns>.git` folder name belongs to.
pub fn namespace_of(dir_name: &str) -> Option<&str> {
    dir_name.strip_suffix(".git").filter(|ns| !ns.is_empty())
}

/// The variable a config key is injected as: upper case, `.` and `-` → `_`.
pub fn config_env_name(key: &str) -> String {
    format!(
        "MICRO_CONFIG_{}",
        key.to_uppercase().replace(['.', '-'], "_")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_round_trip() {
        let path = repo_path(Path::new("/r"), "team");
        assert_eq!(path, Path::new("/r/team.git"));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(namespace_of(name), Some("team"));
        assert_eq!(namespace_of(".git"), None);
        assert_eq!(config_env_name("db.pass-word"), "MICRO_CONFIG_DB_PASS_WORD");
    }
}
