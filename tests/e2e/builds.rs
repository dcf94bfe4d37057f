//! Builds: each service revision builds into its own environment (a virtualenv for
//! Python), so services pinning different versions of one package both work and nothing
//! lands in the host's Python.

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
        let spec = format!(
            "build: python3 mkwheel.py {version} && pip install --no-index --find-links . -r requirements.txt\nrun: python3 -u main.py\n"
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
