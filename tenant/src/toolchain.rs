//! Which language toolchains a service folder is built with, by the files at its top.
//! One answer for every reader: the desired state (a cluster picks a runner image by
//! it), the local runtime (which prepares the environment on its checkout, the only
//! place a `source:` service's files are known) and the cluster's build step (a shell
//! test over the same markers, run on the pod's checkout).

/// Files that make a folder a Python project: it gets a virtualenv of its own.
pub const PYTHON_MARKERS: [&str; 3] = ["requirements.txt", "pyproject.toml", "setup.py"];
/// Files that make a folder a Node project: its `node_modules/.bin` goes on PATH.
pub const NODE_MARKERS: [&str; 1] = ["package.json"];

/// The folder inside a checkout that holds its virtualenv.
pub const VENV: &str = ".venv";

/// The toolchains a folder asks for; a folder may ask for both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Toolchains {
    pub python: bool,
    pub node: bool,
}

impl Toolchains {
    /// The toolchains the names at a folder's top ask for.
    pub fn detect<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut found = Toolchains::default();
        for name in names {
            found.python |= PYTHON_MARKERS.contains(&name);
            found.node |= NODE_MARKERS.contains(&name);
        }
        found
    }

    /// What the files at the top of the folder `dir` ask for (a `stat` per marker).
    pub fn of_folder(dir: &std::path::Path) -> Self {
        Self::detect(
            PYTHON_MARKERS
                .iter()
                .chain(&NODE_MARKERS)
                .copied()
                .filter(|m| dir.join(m).is_file()),
        )
    }

    /// The one a single runner image is picked by: Python's over Node's (a Python
    /// project with a `package.json` for its front end is still a Python service).
    pub fn primary(self) -> Option<&'static str> {
        if self.python {
            Some("python")
        } else if self.node {
            Some("node")
        } else {
            None
        }
    }

    /// The shell step that makes the checkout's virtualenv, once (run in the checkout,
    /// before a build): the same on every runtime.
    pub fn make_venv() -> String {
        format!("[ -x {VENV}/bin/python ] || python3 -m venv {VENV} || exit 1")
    }

    /// A shell test that is true in a folder that holds a Python marker.
    pub fn python_test() -> String {
        PYTHON_MARKERS
            .iter()
            .map(|m| format!("[ -e {m} ]"))
            .collect::<Vec<_>>()
            .join(" || ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_with_both_asks_for_both_and_runs_on_python() {
        let both = Toolchains::detect(["main.py", "requirements.txt", "package.json"]);
        assert_eq!(
            both,
            Toolchains {
                python: true,
                node: true
            }
        );
        assert_eq!(both.primary(), Some("python"));
        assert_eq!(Toolchains::detect(["package.json"]).primary(), Some("node"));
        assert_eq!(Toolchains::detect(["run.sh"]).primary(), None);
        assert_eq!(
            Toolchains::python_test(),
            "[ -e requirements.txt ] || [ -e pyproject.toml ] || [ -e setup.py ]"
        );
    }
}
