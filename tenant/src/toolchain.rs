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

/// An interpreter a service pins with `runtime:`: `python3.12`, `node20`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Runtime {
    /// `python3.<minor>`.
    Python(u8),
    /// `node<major>`.
    Node(u8),
}

impl Runtime {
    /// `python3.N` or `nodeN`; nothing else.
    pub fn parse(text: &str) -> Option<Runtime> {
        let number = |digits: &str| {
            (!digits.is_empty() && digits.len() <= 2 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse::<u8>().ok())
                .flatten()
                .filter(|n| *n < 64)
        };
        if let Some(minor) = text.strip_prefix("python3.") {
            return number(minor).map(Runtime::Python);
        }
        text.strip_prefix("node")
            .and_then(number)
            .filter(|major| *major > 0)
            .map(Runtime::Node)
    }

    /// The language it is an interpreter of, as [`Toolchains::primary`] names them.
    pub fn language(self) -> &'static str {
        match self {
            Runtime::Python(_) => "python",
            Runtime::Node(_) => "node",
        }
    }
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Runtime::Python(minor) => write!(f, "python3.{minor}"),
            Runtime::Node(major) => write!(f, "node{major}"),
        }
    }
}

/// The interpreters a platform has, as sets of versions: bit N of `python3` is
/// python3.N, bit N of `node` is nodeN. `any` takes every one (a plan-only platform).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Runtimes {
    #[serde(default)]
    pub python3: u64,
    #[serde(default)]
    pub node: u64,
    #[serde(default)]
    pub any: bool,
}

impl Runtimes {
    pub const ANY: Runtimes = Runtimes {
        python3: 0,
        node: 0,
        any: true,
    };

    pub fn with(mut self, runtime: Runtime) -> Self {
        match runtime {
            Runtime::Python(minor) => self.python3 |= 1 << minor,
            Runtime::Node(major) => self.node |= 1 << major,
        }
        self
    }

    pub fn has(self, runtime: Runtime) -> bool {
        self.any
            || match runtime {
                Runtime::Python(minor) => self.python3 & (1 << minor) != 0,
                Runtime::Node(major) => self.node & (1 << major) != 0,
            }
    }

    /// Every one it has, in order.
    pub fn list(self) -> Vec<Runtime> {
        (0..64u8)
            .map(Runtime::Python)
            .chain((0..64u8).map(Runtime::Node))
            .filter(|r| !self.any && self.has(*r))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_are_python3_minor_or_node_major_and_nothing_else() {
        assert_eq!(Runtime::parse("python3.12"), Some(Runtime::Python(12)));
        assert_eq!(Runtime::parse("node20"), Some(Runtime::Node(20)));
        for bad in [
            "python3",
            "python2.7",
            "python3.",
            "python3.x",
            "node",
            "node0",
            "node 20",
            "ruby3",
            "python3.123",
            "node99",
        ] {
            assert_eq!(Runtime::parse(bad), None, "{bad}");
        }
        let here = Runtimes::default()
            .with(Runtime::Python(11))
            .with(Runtime::Node(20));
        assert!(here.has(Runtime::Python(11)) && !here.has(Runtime::Python(12)));
        let names: Vec<String> = here.list().iter().map(ToString::to_string).collect();
        assert_eq!(names, ["python3.11", "node20"]);
        assert!(Runtimes::ANY.has(Runtime::Node(22)));
    }

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
