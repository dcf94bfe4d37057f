//! Builds: each service revision builds into its own environment (a virtualenv for
//! Python), so services pinning different versions of one package both work and nothing
//! lands in the host's Python; a folder's files say how it is built and started.

use crate::harness::Platform;

/// Writes a wheel of a one-module package `greet` at the version given, offline.
const MKWHEEL: &str = r#"
import base64, hashlib, sys, zipfile
v = sys.argv[1]
files = {
    "greet/__init__.py": f"__version__ = {v!r}\n",
    f"greet-{v}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: greet\nVersion: {v}\n",
    f"greet-{v}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
def digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data.encode()).digest()).rstrip(b"=").decode()
record = "".join(f"{n},{digest(d)},{len(d)}\n" for n, d in files.items()) + f"greet-{v}.dist-info/RECORD,,\n"
with zipfile.ZipFile(f"greet-{v}-py3-none-any.whl", "w") as z:
    for n, d in files.items():
        z.writestr(n, d)
    z.writestr(f"greet-{v}.dist-info/RECORD", record)
"#;

const APP: &str = r#"
import os, http.server, greet
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{greet.__version__} {os.environ.get('VIRTUAL_ENV')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

#[test]
fn two_services_pin_different_versions_of_one_package() {
    let p = Platform::start();
    for (name, version) in [("old", "1.0"), ("new", "2.0")] {
        // Its own build alone: the wheel it installs is made by the build itself.
        let spec = format!(
            "build: {{ detect: false, run: \"python3 mkwheel.py {version} && pip install --no-index --find-links . -r requirements.txt\" }}\nrun: python3 -u main.py\n"
        );
        let requirements = format!("greet=={version}\n");
        p.write_service(
            name,
            &[
                ("service.yaml", &spec),
                ("requirements.txt", &requirements),
                ("mkwheel.py", MKWHEEL),
                ("main.py", APP),
            ],
        );
        p.ok(&["run", &format!("./{name}"), "--wait"]);
    }
    let old = p.ok(&["call", "old", "/"]);
    let new = p.ok(&["call", "new", "/"]);
    assert!(
        old.starts_with("1.0 ") && new.starts_with("2.0 "),
        "{old} / {new}"
    );
    assert!(old.contains("/.venv"), "a virtualenv of its own: {old}");
    let host = std::process::Command::new("python3")
        .args(["-c", "import greet"])
        .output()
        .unwrap();
    assert!(
        !host.status.success(),
        "nothing was installed into the host's Python"
    );
}

/// Says what toolchain environment the service was given.
pub(crate) const TOOLCHAIN_APP: &str = r#"
import json, os, http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        venv = os.environ.get("VIRTUAL_ENV") or ""
        body = json.dumps({"venv": venv, "venv_made": os.path.isdir(venv), "path": os.environ["PATH"]}).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// The files of a folder that is a Python project with a Node side, built (`true`) and
/// run with [`TOOLCHAIN_APP`].
pub(crate) const PYTHON_AND_NODE: &[(&str, &str)] = &[
    ("service.yaml", "run: python3 -u app.py\nbuild: \"true\"\n"),
    ("requirements.txt", ""),
    ("package.json", "{}\n"),
    ("app.py", TOOLCHAIN_APP),
];

/// Locally, `service` (running [`TOOLCHAIN_APP`]) got a virtualenv, made before its
/// build, and `node_modules/.bin` on PATH.
pub(crate) fn assert_local_toolchains(p: &Platform, service: &str) {
    let local: serde_json::Value = serde_json::from_str(&p.ok(&["call", service, "/"])).unwrap();
    assert!(
        local["venv"].as_str().unwrap().ends_with("/.venv") && local["venv_made"] == true,
        "{local}"
    );
    let path = local["path"].as_str().unwrap();
    assert!(
        path.contains(".venv/bin") && path.contains("node_modules/.bin"),
        "{local}"
    );
}

/// On a cluster (what `micro manifests` renders for the same commit), `service`'s build
/// makes the virtualenv on the same markers, and it runs with the same PATH on the Python
/// runner.
pub(crate) fn assert_cluster_toolchains(p: &Platform, service: &str) {
    let list: serde_json::Value =
        serde_json::from_str(&p.ok(&["manifests", "--service", service, "-o", "json"])).unwrap();
    let deployment = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap_or_else(|| panic!("{list:#}"));
    let pod = &deployment["spec"]["template"]["spec"];
    let build = pod["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "build")
        .unwrap_or_else(|| panic!("{pod:#}"));
    let script = build["command"][2].as_str().unwrap();
    assert!(
        script.contains("[ -e requirements.txt ] || [ -e pyproject.toml ] || [ -e setup.py ]")
            && script.contains("python3 -m venv .venv"),
        "{script}"
    );
    let main = &pod["containers"][0];
    assert!(
        main["image"]
            .as_str()
            .unwrap()
            .starts_with("micro-runner-python:"),
        "{main:#}"
    );
    let cluster_path = main["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PATH")
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("{main:#}"));
    assert!(
        cluster_path.contains(".venv/bin") && cluster_path.contains("node_modules/.bin"),
        "{cluster_path}"
    );
}

/// A folder with both `requirements.txt` and `package.json` gets the same toolchains on
/// both runtimes, by one rule (`micro_tenant::toolchain`): a virtualenv made before its
/// build, and `node_modules/.bin` on PATH. (The two once disagreed: the cluster's side
/// said "python" only, the local one both.)
#[test]
fn both_runtimes_give_a_python_and_node_folder_the_same_toolchains() {
    let p = Platform::start();
    let dir = p.write_service("both", PYTHON_AND_NODE);
    p.ok(&["run", dir.to_str().unwrap(), "--wait"]);
    assert_local_toolchains(&p, "both");
    assert_cluster_toolchains(&p, "both");
}

/// A wheel of `greet` at `version`, made offline into `dir`.
fn wheel(dir: &std::path::Path, version: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", MKWHEEL, version])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_folder_is_built_and_started_from_what_its_files_say() {
    let p = Platform::start();
    // requirements.txt and a Procfile, no `run` and no `build`: installed, then started
    // by its `web:` line. (The index is a folder of wheels: tests have no internet.)
    let dir = p.write_service(
        "py",
        &[
            (
                "service.yaml",
                "env: { PIP_NO_INDEX: \"1\", PIP_FIND_LINKS: wheels }\n",
            ),
            ("requirements.txt", "greet==1.0\n"),
            ("Procfile", "release: true\nweb: python3 -u main.py\n"),
            ("main.py", APP),
        ],
    );
    wheel(&dir.join("wheels"), "1.0");
    // `--wait` shows the build's lines as they come.
    let out = p.micro(&["run", "./py", "--wait"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.lines()
            .any(|l| l.contains("[build]") && l.contains("Successfully installed greet-1.0")),
        "{said}"
    );
    // And `micro logs --build` shows them alone, afterwards.
    let built = p.ok(&["logs", "py", "--build"]);
    assert!(built.contains("greet"), "{built}");
    assert!(built.lines().all(|l| l.contains(" [build] ")), "{built}");
    let answer = p.ok(&["call", "py", "/"]);
    assert!(
        answer.starts_with("1.0 ") && answer.contains("/.venv"),
        "{answer}"
    );
    let described = p.ok(&["describe", "py"]);
    assert!(
        described.contains("requirements.txt: pip install -r requirements.txt")
            && described.contains("Procfile: python3 -u main.py"),
        "{described}"
    );

    // A power user's push says which services it makes build, and how to follow them.
    p.ok(&["clone", "clone"]);
    let clone = p.work.join("clone");
    let main = clone.join("services/py/main.py");
    std::fs::write(&main, format!("{APP}\n# changed\n")).unwrap();
    p.git_ok(&clone, &["commit", "-qam", "a code change"]);
    let out = p.git(&clone, &["push", "-q", "origin", "HEAD:main"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("remote: building py; follow with: micro logs py --build -f"),
        "{said}"
    );
    // Its dependencies did not change: the new revision takes the last one's
    // environment instead of installing it again.
    let pushed = p.git_ok(&clone, &["rev-parse", "HEAD"]);
    p.wait_running(None, "py", Some(pushed.trim()));
    let described = p.ok(&["describe", "py"]);
    assert!(
        described.contains("environment taken from revision"),
        "{described}"
    );

    // Only static files: served as they are.
    p.write_service(
        "site",
        &[
            ("service.yaml", "replicas: 1\n"),
            ("index.html", "<h1>hello from a static site</h1>\n"),
        ],
    );
    p.ok(&["run", "./site", "--wait"]);
    assert!(
        p.ok(&["call", "site", "/"])
            .contains("hello from a static site")
    );

    // Nothing says how it starts: refused at push time, saying what would.
    p.write_service(
        "nothing",
        &[("service.yaml", "replicas: 1\n"), ("notes.txt", "x")],
    );
    let said = p.fails(&["run", "./nothing", "--wait"]);
    assert!(
        said.contains("missing `run`") && said.contains("Procfile"),
        "{said}"
    );
}

/// `micro new --lang`: each skeleton runs as generated and answers.
#[test]
fn every_skeleton_runs_as_generated() {
    let p = Platform::start();
    for (lang, answer) in [
        ("python", "Hello from py-app"),
        ("node", "Hello from node-app"),
        ("static", "<h1>static-app</h1>"),
        ("go", "Hello from go-app"),
    ] {
        let name = match lang {
            "python" => "py-app".to_owned(),
            other => format!("{other}-app"),
        };
        p.ok(&["new", &name, "--lang", lang]);
        let out = p.micro(&["run", &format!("./{name}"), "--wait"]);
        assert!(
            out.status.success(),
            "{lang}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&p.micro(&["logs", &name]).stdout)
        );
        let got = p.ok(&["call", &name, "/"]);
        assert!(got.contains(answer), "{lang}: {got}");
    }
    let said = p.fails(&["new", "secure", "--lang", "node", "--tls"]);
    assert!(said.contains("--tls"), "{said}");
    assert!(!p.work.join("secure").exists());
    let said = p.fails(&["new", "gofn", "--lang", "go", "--template", "function"]);
    assert!(said.contains("--lang python or node"), "{said}");
    assert!(!p.work.join("gofn").exists());
}

/// Generates `micro new NAME --lang LANG --template TEMPLATE` and runs it, waiting.
fn generated(p: &Platform, lang: &str, template: &str) -> String {
    let name = format!("{lang}-{template}");
    p.ok(&["new", &name, "--lang", lang, "--template", template]);
    let out = p.micro(&["run", &format!("./{name}"), "--wait"]);
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    name
}

/// `--template api`: a public JSON API over `/items` in each language, answering as
/// generated: an item created is listed, read and deleted.
#[test]
fn every_api_skeleton_runs_as_generated() {
    let p = Platform::start();
    for lang in ["python", "node", "go"] {
        let name = generated(&p, lang, "api");
        let created = p.ok(&["call", &name, "/items", r#"{"name": "tea"}"#]);
        let item: serde_json::Value = serde_json::from_str(&created).unwrap();
        assert_eq!(item["name"], "tea", "{lang}: {created}");
        let id = item["id"].as_i64().unwrap();
        let listed = p.ok(&["call", &name, "/items"]);
        assert!(listed.contains("tea"), "{lang}: {listed}");
        let one = p.ok(&["call", &name, &format!("/items/{id}")]);
        assert!(one.contains("tea"), "{lang}: {one}");
        let spec = std::fs::read_to_string(p.work.join(&name).join("service.yaml")).unwrap();
        assert!(spec.contains("\npublic: true"), "{lang}: {spec}");
    }
}

/// `--template web`: a public page rendered by the service, with its static folder.
#[test]
fn every_web_skeleton_runs_as_generated() {
    let p = Platform::start();
    for lang in ["python", "node", "go"] {
        let name = generated(&p, lang, "web");
        let page = p.ok(&["call", &name, "/?name=Ada"]);
        assert!(page.contains("<h1>Hello, Ada!</h1>"), "{lang}: {page}");
        let css = p.ok(&["call", &name, "/static/style.css"]);
        assert!(css.contains("font-family"), "{lang}: {css}");
    }
}

/// `--template function`: a handler and no server code; the platform's runner serves
/// it, and `micro describe` says so.
#[test]
fn every_function_skeleton_runs_as_generated() {
    let p = Platform::start();
    for (lang, file) in [("python", "handler.py"), ("node", "handler.js")] {
        let name = generated(&p, lang, "function");
        let files: Vec<String> = std::fs::read_dir(p.work.join(&name))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f != ".gitignore")
            .collect();
        assert_eq!(files.len(), 2, "{lang}: {files:?}");
        let answer = p.ok(&["call", &name, "/"]);
        assert!(
            answer.contains(&format!("Hello stranger from {name}")),
            "{lang}: {answer}"
        );
        let answer = p.ok(&["call", &name, "/hi", r#"{"name": "Ada"}"#]);
        assert!(answer.contains("Hello Ada from"), "{lang}: {answer}");
        let described = p.ok(&["describe", &name]);
        assert!(
            described.contains(&format!("{file}: the platform's function runner")),
            "{lang}: {described}"
        );
    }
}

/// `micro server --build-env`: what the operator sets (a package mirror) every build
/// gets; here, pip pointed at the wheels in the folder, with nothing in the spec.
#[test]
fn the_operators_build_env_reaches_every_build() {
    let p = Platform::start_with(&[("MICRO_BUILD_ENV", "PIP_NO_INDEX=1,PIP_FIND_LINKS=wheels")]);
    let dir = p.write_service(
        "mirrored",
        &[
            ("service.yaml", "replicas: 1\n"),
            ("requirements.txt", "greet==1.0\n"),
            ("Procfile", "web: python3 -u main.py\n"),
            ("main.py", APP),
        ],
    );
    wheel(&dir.join("wheels"), "1.0");
    p.ok(&["run", "./mirrored", "--wait"]);
    assert!(p.ok(&["call", "mirrored", "/"]).starts_with("1.0 "));
}

/// A PEP 503 index of `greet` on this machine's loopback, as an operator's mirror would
/// be: `http.server`'s folder listings are the simple index's pages. It logs each
/// request it gets.
struct Mirror {
    child: std::process::Child,
    port: u16,
    requests: std::path::PathBuf,
    _root: tempfile::TempDir,
}

impl Mirror {
    fn serve(version: &str) -> Self {
        use std::io::BufRead;
        let root = tempfile::tempdir().unwrap();
        wheel(&root.path().join("simple/greet"), version);
        let requests = root.path().join("requests.log");
        let mut child = std::process::Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(root.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&requests).unwrap())
            .spawn()
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Mirror {
            child,
            port,
            requests,
            _root: root,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/simple/", self.port)
    }

    fn was_asked(&self) -> bool {
        std::fs::read_to_string(&self.requests).is_ok_and(|log| log.contains("GET /simple/"))
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds have a network (`--build-egress public`, the default) but not to this
/// machine: an operator's mirror on its loopback is let through by
/// `--build-egress-allow`, and the same build pointed at a mirror that is not allowed
/// never reaches it, and its failure names the switch.
#[test]
fn a_build_reaches_the_mirror_it_is_allowed_and_no_other_port_of_this_machine() {
    let allowed = Mirror::serve("1.0");
    let other = Mirror::serve("1.0");
    let p = Platform::start_with(&[
        (
            "MICRO_BUILD_EGRESS_ALLOW",
            &format!("127.0.0.1:{}", allowed.port),
        ),
        (
            "MICRO_BUILD_ENV",
            &format!("PIP_INDEX_URL={}", allowed.url()),
        ),
    ]);
    for (name, env) in [
        ("mirrored", String::new()),
        (
            "elsewhere",
            format!(
                "env: {{ PIP_INDEX_URL: \"{}\", PIP_RETRIES: \"0\", PIP_TIMEOUT: \"5\" }}\n",
                other.url()
            ),
        ),
    ] {
        p.write_service(
            name,
            &[
                ("service.yaml", &format!("replicas: 1\n{env}")),
                ("requirements.txt", "greet==1.0\n"),
                ("Procfile", "web: python3 -u main.py\n"),
                ("main.py", APP),
            ],
        );
    }
    p.ok(&["run", "./mirrored", "--wait"]);
    assert!(p.ok(&["call", "mirrored", "/"]).starts_with("1.0 "));
    assert!(allowed.was_asked());

    let out = p.micro(&["run", "./elsewhere", "--wait"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("could not reach the network") && said.contains("--build-egress-allow"),
        "{said}"
    );
    assert!(
        !other.was_asked(),
        "a build reached a loopback port it was not allowed"
    );
}

/// `runtime:` pins an interpreter this platform has: its commands' `python3` is that
/// one. One the platform lacks is refused when pushed, naming those it has.
#[test]
fn a_service_runs_on_the_interpreter_its_spec_pins() {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(f'python3.{sys.version_info[1]}')"])
        .output()
        .unwrap();
    let here = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let p = Platform::start();
    let app = "import os, sys, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = f'python3.{sys.version_info[1]} {sys.executable}'.encode()\n        self.send_response(200); self.end_headers(); self.wfile.write(body)\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";
    p.write_service(
        "pinned",
        &[
            (
                "service.yaml",
                &format!("runtime: {here}\nrun: python3 -u main.py\n"),
            ),
            ("main.py", app),
        ],
    );
    p.ok(&["run", "./pinned", "--wait"]);
    let answer = p.ok(&["call", "pinned", "/"]);
    assert!(
        answer.starts_with(&format!("{here} ")) && answer.contains("/.micro-runtime/bin/python3"),
        "{answer}"
    );
    let described = p.ok(&["describe", "pinned"]);
    assert!(
        described.contains(&format!("service.yaml: runtime {here}")),
        "{described}"
    );

    // Absent here: refused at push time, saying what is.
    let spec = p.work.join("pinned/service.yaml");
    std::fs::write(&spec, "runtime: python3.40\nrun: python3 -u main.py\n").unwrap();
    let said = p.fails(&["update", "pinned"]);
    assert!(
        said.contains("runtime python3.40 is not on this platform") && said.contains(&here),
        "{said}"
    );
    // Not an interpreter at all: the forms it takes.
    std::fs::write(&spec, "runtime: ruby3\nrun: python3 -u main.py\n").unwrap();
    let said = p.fails(&["update", "pinned"]);
    assert!(said.contains("python3.N or nodeN"), "{said}");
    // What runs is still the pinned revision.
    assert!(
        p.ok(&["call", "pinned", "/"])
            .starts_with(&format!("{here} "))
    );
}

/// On a terminal, `--wait` shows the build's last lines redrawn in place and folds them
/// into one line when it succeeds; in a pipe (every other test here) each line stays.
#[test]
fn on_a_terminal_a_build_is_a_live_tail_folded_when_it_succeeds() {
    let p = Platform::start();
    let app = "import os, http.server\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()\n";
    p.write_service(
        "tty",
        &[
            (
                "service.yaml",
                "run: python3 -u main.py\nbuild: for i in $(seq 1 20); do echo step $i; sleep 0.1; done\n",
            ),
            ("main.py", app),
        ],
    );
    // `script` gives the command a terminal and copies what it wrote.
    let out = std::process::Command::new("script")
        .args([
            "-qec",
            &format!("{} run ./tty --wait", crate::harness::BIN),
            "/dev/null",
        ])
        .current_dir(&p.work)
        .env("MICRO_HOME", &p.home)
        .env("TERM", "xterm")
        .env_remove("MICRO_ENV")
        .env_remove("MICRO_NAMESPACE")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    // The last lines were drawn dimmed, erased as new ones came, then folded into one.
    assert!(said.contains("\x1b[2mstep 20"), "{said:?}");
    assert!(said.contains("\x1b[J"), "{said:?}");
    assert!(
        said.contains("tty: built (") && said.contains("lines: micro logs tty --build)"),
        "{said:?}"
    );
    assert!(said.contains("tty: running at"), "{said:?}");
}

/// The npm side of a mirror: a package published only to a registry on this machine's
/// loopback (`cli/benches/peers/registry.py`, serving what `npm pack` made) is installed
/// by a Node folder's detected `npm install`, let through by `--build-egress-allow`.
#[test]
fn a_node_build_installs_from_the_npm_registry_it_is_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("hello-lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(
        lib.join("package.json"),
        r#"{"name": "hello-lib", "version": "1.0.0", "main": "index.js"}"#,
    )
    .unwrap();
    std::fs::write(
        lib.join("index.js"),
        "module.exports = 'hello from the mirror';\n",
    )
    .unwrap();
    let registry = tmp.path().join("registry");
    std::fs::create_dir_all(registry.join("npm")).unwrap();
    let packed = std::process::Command::new("npm")
        .args(["pack", "--pack-destination"])
        .arg(registry.join("npm"))
        .current_dir(&lib)
        .env("npm_config_cache", tmp.path().join("cache"))
        .output()
        .unwrap();
    assert!(packed.status.success(), "{packed:?}");
    let mut served = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/peers/registry.py"
        ))
        .arg(&registry)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(served.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let at = line.trim().rsplit(' ').next().unwrap().to_owned();
    let p = Platform::start_with(&[
        ("MICRO_BUILD_EGRESS_ALLOW", &at),
        (
            "MICRO_BUILD_ENV",
            &format!("npm_config_registry=http://{at}/,npm_config_update_notifier=false"),
        ),
    ]);
    p.write_service(
        "noded",
        &[
            ("service.yaml", "run: node server.js\n"),
            (
                "package.json",
                r#"{"name": "noded", "version": "1.0.0", "dependencies": {"hello-lib": "1.0.0"}}"#,
            ),
            (
                "server.js",
                "const said = require('hello-lib');\nrequire('http').createServer((q, s) => s.end(said)).listen(Number(process.env.PORT), '127.0.0.1');\n",
            ),
        ],
    );
    let out = p.micro(&["run", "./noded", "--wait"]);
    let _ = served.kill();
    let _ = served.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        p.ok(&["call", "noded", "/"]).trim(),
        "hello from the mirror"
    );
}
