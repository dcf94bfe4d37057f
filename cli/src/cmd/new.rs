//! `micro new NAME`: a service skeleton that runs as generated (python3, stdlib only).

use anyhow::{Context, Result, bail};
use micro_reconciler::spec::check_service_name;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// The service name (a DNS label: lowercase letters, digits, '-'); also the folder
    pub name: String,
}

const SERVICE_YAML: &str = "\
# How the platform runs this service. It is started with $PORT set and must listen on it.
run: python3 -u main.py
replicas: 1
env:
  GREETING: Hello
";

/// `micro run` leaves what this names on the developer's machine.
const GITIGNORE: &str = "__pycache__/\n.env\nvenv/\n.venv/\n";

const MAIN_PY: &str = r#""""The {{name}} service: answers JSON over HTTP on $PORT (Python standard library only)."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("MICRO_SERVICE_NAME", "{{name}}")
GREETING = os.environ.get("GREETING", "Hello")


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(200, {"message": f"{GREETING} from {NAME}", "path": self.path})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            request = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return self.reply(400, {"error": "body must be JSON"})
        who = request.get("name", "stranger") if isinstance(request, dict) else "stranger"
        self.reply(200, {"message": f"{GREETING} {who}", "path": self.path})


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"{NAME} listening on port {port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

pub fn run(args: &NewArgs) -> Result<()> {
    check_service_name(&args.name).map_err(anyhow::Error::msg)?;
    let dir = PathBuf::from(&args.name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join("service.yaml"), SERVICE_YAML)?;
    std::fs::write(dir.join("main.py"), MAIN_PY.replace("{{name}}", &args.name))?;
    std::fs::write(dir.join(".gitignore"), GITIGNORE)?;
    println!("Created service {} in ./{}", args.name, args.name);
    println!("Run it with: micro run ./{}", args.name);
    Ok(())
}
