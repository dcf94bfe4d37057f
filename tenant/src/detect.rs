//! What a service folder's own files say about building and starting it, as Heroku's
//! buildpacks read a folder: `requirements.txt` means `pip install`, a `package.json`
//! means `npm ci`, a `Procfile`'s `web:` line is how it starts, a folder of static files
//! is served as they are. One answer for every reader: the desired model carries it, so
//! both runtimes, `micro diff` and `micro manifests` see the same steps.

use crate::toolchain::{NODE_MARKERS, PYTHON_MARKERS};
use serde::{Deserialize, Serialize};

/// One thing the folder's files made the platform do, and which file asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The file that asked (`requirements.txt`, `Procfile`).
    pub because: String,
    /// The shell command it runs.
    pub command: String,
    /// A path that, present in the checkout, means this was done already: an
    /// environment taken from a revision with the same dependency files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_if: Option<String>,
    /// What `micro describe` shows instead of a long command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub says: Option<String>,
}

/// Left in a virtualenv once its requirements are installed: a later revision that takes
/// the environment (same dependency files) need not ask pip again.
pub const PIP_DONE: &str = ".venv/.micro-installed";

/// What a folder's files ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detected {
    /// Install steps, in the order they run (before the spec's own `build`).
    pub install: Vec<Step>,
    /// How it starts when its spec has no `run`.
    pub run: Option<Step>,
    /// For a function (a `handler.py` or `handler.js` and nothing that says how it
    /// starts): the step that writes the platform's runner into the checkout, run after
    /// the install steps whether or not they are, and only when it starts that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<Step>,
}

/// Where the platform's function runners go in a checkout (beside a pinned runtime's
/// interpreter links).
pub const FUNCTION_DIR: &str = ".micro-runtime";

/// A function's file, its runner's file name and source, and how the runner starts.
const FUNCTIONS: [(&str, &str, &str, &str); 2] = [
    (
        "handler.py",
        "function.py",
        include_str!("function/runner.py"),
        "exec python3 -u .micro-runtime/function.py handler",
    ),
    (
        "handler.js",
        "function.js",
        include_str!("function/runner.js"),
        "exec node .micro-runtime/function.js handler",
    ),
];

/// Lock files that make `npm ci` (exactly what is locked) the install step.
const NPM_LOCKS: [&str; 2] = ["package-lock.json", "npm-shrinkwrap.json"];

/// Heroku's process file: its `web:` line is how a service without `run` starts.
pub const PROCFILE: &str = "Procfile";

/// The binary a Go folder is built into, in its checkout.
pub const GO_BINARY: &str = "micro-app";

/// The built-in server for a folder of static files: Python's, which every runtime
/// already has for virtualenvs; it serves the checkout on `$PORT`.
pub const STATIC_SERVER: &str = "exec python3 -m http.server \"$PORT\"";

impl Detected {
    /// What the files named `names` (a folder's top) ask for; `procfile` is the text of
    /// its `Procfile`, if it has one.
    pub fn of<'a>(names: impl IntoIterator<Item = &'a str>, procfile: Option<&str>) -> Self {
        let names: Vec<&str> = names.into_iter().collect();
        let has = |n: &str| names.contains(&n);
        let step = |because: &str, command: &str| Step {
            because: because.to_owned(),
            command: command.to_owned(),
            done_if: None,
            says: None,
        };
        let once = |because: &str, command: &str, done_if: &str| Step {
            done_if: Some(done_if.to_owned()),
            ..step(because, command)
        };
        let mut found = Detected::default();
        if has("requirements.txt") {
            found.install.push(once(
                "requirements.txt",
                "pip install -r requirements.txt",
                PIP_DONE,
            ));
        } else if let Some(project) = ["pyproject.toml", "setup.py"].into_iter().find(|n| has(n)) {
            found.install.push(once(project, "pip install .", PIP_DONE));
        }
        if NODE_MARKERS.iter().any(|n| has(n)) {
            found
                .install
                .push(match NPM_LOCKS.into_iter().find(|n| has(n)) {
                    Some(lock) => once(lock, "npm ci", "node_modules"),
                    None => once("package.json", "npm install", "node_modules"),
                });
        }
        let go = has("go.mod");
        if go {
            found
                .install
                .push(step("go.mod", &format!("go build -o {GO_BINARY} .")));
        }
        found.run = procfile
            .and_then(web_line)
            .map(|command| step("Procfile", &command))
            .or_else(|| go.then(|| step("go.mod", &format!("exec ./{GO_BINARY}"))))
            .or_else(|| {
                let (file, runner, source, start) =
                    FUNCTIONS.into_iter().find(|(file, ..)| has(file))?;
                // A heredoc, then a line of its own for what the build joins after it.
                let write = format!(
                    "mkdir -p {FUNCTION_DIR} && cat > {FUNCTION_DIR}/{runner} <<'MICRO_RUNNER' || exit 1\n{source}MICRO_RUNNER\ntrue"
                );
                found.function = Some(Step {
                    says: Some(format!("the platform's function runner ({FUNCTION_DIR}/{runner})")),
                    ..step(file, &write)
                });
                Some(Step {
                    says: Some(format!("{start} (handle(request) in {file})")),
                    ..step(file, start)
                })
            })
            .or_else(|| {
                let code = PYTHON_MARKERS.iter().chain(&NODE_MARKERS).any(|n| has(n));
                (has("index.html") && !code).then(|| step("index.html", STATIC_SERVER))
            });
        found
    }

    /// The build a service runs: the detected install steps, then the spec's own `build`;
    /// only the spec's when `detect` is off. `None`: nothing to build.
    pub fn build(&self, spec_build: Option<&str>, detect: bool) -> Option<String> {
        let steps: Vec<String> = self
            .install
            .iter()
            .filter(|_| detect)
            .chain(&self.function)
            .map(Step::guarded)
            .chain(spec_build.map(str::to_owned))
            .collect();
        // Each step must succeed for the next to run.
        (!steps.is_empty()).then(|| steps.join(" && \\\n"))
    }

    /// The language a runner image is picked by (`python`, `node`, `go`, `static`):
    /// Python's over Node's (a Python project with a front end is still Python).
    pub fn language(&self) -> Option<&'static str> {
        let asked = |file: &str| {
            self.install
                .iter()
                .chain(&self.run)
                .any(|s| s.because == file)
        };
        if PYTHON_MARKERS.iter().any(|m| asked(m)) || asked("handler.py") {
            Some("python")
        } else if NODE_MARKERS.iter().chain(&NPM_LOCKS).any(|m| asked(m)) || asked("handler.js") {
            Some("node")
        } else if asked("go.mod") {
            Some("go")
        } else if asked("index.html") {
            Some("static")
        } else {
            None
        }
    }

    /// One line per thing done, for `micro describe`: `requirements.txt: pip install …`;
    /// with `detect` off, only how it starts (the install steps are not run).
    pub fn lines(&self, detect: bool) -> Vec<String> {
        self.install
            .iter()
            .filter(|_| detect)
            .chain(&self.function)
            .chain(&self.run)
            .map(|s| format!("{}: {}", s.because, s.says.as_ref().unwrap_or(&s.command)))
            .collect()
    }

    /// What applies to a spec that has its own `run` (`has_run`): not how the files
    /// would start it, nor a function's runner.
    pub fn given_run(&self, has_run: bool) -> std::borrow::Cow<'_, Detected> {
        if has_run && (self.run.is_some() || self.function.is_some()) {
            std::borrow::Cow::Owned(Detected {
                install: self.install.clone(),
                run: None,
                function: None,
            })
        } else {
            std::borrow::Cow::Borrowed(self)
        }
    }
}

impl Step {
    /// Its command, skipped where it was done already (and marking it done after, for
    /// pip: npm's `node_modules` marks itself).
    fn guarded(&self) -> String {
        match &self.done_if {
            Some(path) if path == PIP_DONE => {
                format!("[ -e {path} ] || {{ {} && touch {path}; }}", self.command)
            }
            Some(path) => format!("[ -e {path} ] || {}", self.command),
            None => self.command.clone(),
        }
    }
}

/// The command of a Procfile's `web:` process, as Heroku reads it.
fn web_line(procfile: &str) -> Option<String> {
    procfile.lines().find_map(|line| {
        let (kind, command) = line.split_once(':')?;
        (kind.trim() == "web" && !command.trim().is_empty()).then(|| command.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_folder_installs_its_requirements() {
        let d = Detected::of(["main.py", "requirements.txt", "pyproject.toml"], None);
        assert_eq!(
            d.build(None, true).as_deref(),
            Some(
                "[ -e .venv/.micro-installed ] || { pip install -r requirements.txt && touch .venv/.micro-installed; }"
            )
        );
        assert_eq!(
            d.lines(true),
            ["requirements.txt: pip install -r requirements.txt"]
        );
        assert_eq!(d.run, None);
        let project = Detected::of(["pyproject.toml", "app.py"], None);
        assert_eq!(project.install[0].command, "pip install .");
    }

    #[test]
    fn node_uses_npm_ci_only_with_a_lock_file() {
        let locked = Detected::of(["package.json", "package-lock.json"], None);
        assert_eq!(
            locked.build(None, true).as_deref(),
            Some("[ -e node_modules ] || npm ci")
        );
        let loose = Detected::of(["package.json", "index.js"], None);
        assert_eq!(
            loose.build(None, true).as_deref(),
            Some("[ -e node_modules ] || npm install")
        );
    }

    #[test]
    fn the_specs_build_runs_after_the_detected_step_or_alone() {
        let d = Detected::of(["requirements.txt"], None);
        assert_eq!(
            d.build(Some("python manage.py collectstatic"), true)
                .as_deref(),
            Some(
                "[ -e .venv/.micro-installed ] || { pip install -r requirements.txt && touch .venv/.micro-installed; } && \\\npython manage.py collectstatic"
            )
        );
        assert_eq!(d.build(Some("make"), false).as_deref(), Some("make"));
        assert_eq!(d.build(None, false), None);
        assert_eq!(Detected::of(["run.sh"], None).build(None, true), None);
    }

    #[test]
    fn a_handler_file_is_a_function_the_platforms_runner_serves() {
        let f = Detected::of(["handler.py", "requirements.txt"], None);
        assert_eq!(
            f.run.as_ref().unwrap().command,
            "exec python3 -u .micro-runtime/function.py handler"
        );
        let build = f.build(Some("make"), true).unwrap();
        // pip, then the runner written, then the spec's own build, each one's failure
        // stopping the rest.
        let pip = build.find("pip install").unwrap();
        let runner = build.find("cat > .micro-runtime/function.py").unwrap();
        assert!(
            pip < runner && build.ends_with("MICRO_RUNNER\ntrue && \\\nmake"),
            "{build}"
        );
        assert!(build.contains("ThreadingHTTPServer"));
        assert_eq!(
            f.lines(true)[1..],
            [
                "handler.py: the platform's function runner (.micro-runtime/function.py)",
                "handler.py: exec python3 -u .micro-runtime/function.py handler (handle(request) in handler.py)"
            ]
        );
        assert_eq!(f.language(), Some("python"));
        let js = Detected::of(["handler.js"], None);
        assert_eq!(js.language(), Some("node"));
        assert!(
            js.build(None, true)
                .unwrap()
                .contains("require(path.resolve")
        );
        // A spec with its own `run` gets neither.
        let given = f.given_run(true);
        assert!(given.run.is_none() && given.function.is_none());
        assert!(!given.build(None, true).unwrap().contains("function.py"));
    }

    #[test]
    fn a_procfile_web_line_a_go_module_or_static_files_say_how_it_starts() {
        let procfile = "release: ./migrate\nweb: gunicorn app:app --bind :$PORT\nworker: celery\n";
        let d = Detected::of(["Procfile", "requirements.txt"], Some(procfile));
        assert_eq!(
            d.run.map(|s| s.command).as_deref(),
            Some("gunicorn app:app --bind :$PORT")
        );
        let go = Detected::of(["go.mod", "main.go"], None);
        assert_eq!(go.run.as_ref().unwrap().command, "exec ./micro-app");
        assert_eq!(go.install[0].command, "go build -o micro-app .");
        assert_eq!(go.language(), Some("go"));
        let site = Detected::of(["index.html", "style.css"], None);
        assert_eq!(site.language(), Some("static"));
        assert_eq!(site.run.unwrap().command, STATIC_SERVER);
        // A front end's index.html in a Python project is not a static site.
        let app = Detected::of(["index.html", "requirements.txt"], None);
        assert_eq!(app.run, None);
        assert_eq!(Detected::of(["Procfile"], Some("worker: x\n")).run, None);
    }
}
