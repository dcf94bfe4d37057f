//! The `service` template: an internal service answering JSON, in each language (and
//! Python's with `--tls`).

pub(super) const NODE_YAML: &str = "\
# How the platform runs this service: package.json makes it `npm install` first. It is
# started with $PORT set and must listen on it.
run: node server.js
replicas: 1
readiness: { path: /healthz }
env:
  GREETING: Hello
";

pub(super) const PACKAGE_JSON: &str = r#"{
  "name": "{{name}}",
  "version": "0.1.0",
  "private": true,
  "scripts": { "start": "node server.js" }
}
"#;

pub(super) const SERVER_JS: &str = r#"// The {{name}} service: answers JSON over HTTP on $PORT (Node's standard library only).
const http = require("http");

const name = process.env.MICRO_SERVICE_NAME || "{{name}}";
const greeting = process.env.GREETING || "Hello";

http
  .createServer((req, res) => {
    const body = JSON.stringify({ message: `${greeting} from ${name}`, path: req.url });
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(body);
  })
  .listen(Number(process.env.PORT || 8080), "127.0.0.1", () => {
    console.log(`${name} listening on port ${process.env.PORT || 8080}`);
  });
"#;

pub(super) const GO_YAML: &str = "\
# How the platform runs this service: go.mod makes it `go build` it and start what it
# built, with $PORT set; it must listen on it.
replicas: 1
readiness: { path: /healthz }
env:
  GREETING: Hello
";

pub(super) const GO_MOD: &str = "module {{name}}\n\ngo 1.19\n";

pub(super) const MAIN_GO: &str = r#"// The {{name}} service: answers JSON over HTTP on $PORT (Go's standard library only).
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
)

func main() {
	name := os.Getenv("MICRO_SERVICE_NAME")
	if name == "" {
		name = "{{name}}"
	}
	greeting := os.Getenv("GREETING")
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"message": greeting + " from " + name, "path": r.URL.Path})
	})
	log.Printf("%s listening on port %s", name, port)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil))
}
"#;

pub(super) const STATIC_YAML: &str = "\
# A folder of static files with no `run`: the platform serves them as they are.
replicas: 1
readiness: { path: / }
";

pub(super) const INDEX_HTML: &str = r#"<!doctype html>
<html>
  <head><meta charset="utf-8"><title>{{name}}</title></head>
  <body><h1>{{name}}</h1><p>Served as it is by the platform. Edit index.html and <code>micro run .</code> again.</p></body>
</html>
"#;

/// `micro run` leaves these on the developer's machine: Node's and Go's build output.
pub(super) const NODE_GITIGNORE: &str = "node_modules/\n.env\n";
pub(super) const GO_GITIGNORE: &str = "micro-app\n.env\n";

pub(super) const SERVICE_YAML: &str = "\
# How the platform runs this service. It is started with $PORT set and must listen on it.
run: python3 -u main.py
replicas: 1
readiness: { path: /healthz }
env:
  GREETING: Hello
";

/// `micro run` leaves what this names on the developer's machine.
pub(super) const GITIGNORE: &str = "__pycache__/\n.env\nvenv/\n.venv/\n";

pub(super) const MAIN_PY: &str = r#""""The {{name}} service: answers JSON over HTTP on $PORT (Python standard library only)."""
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

    def do_DELETE(self):
        self.reply(200, {"message": f"deleted {self.path}", "path": self.path})


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"{NAME} listening on port {port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

pub(super) const SERVICE_YAML_TLS: &str = "\
# How the platform runs this service. It is started with $PORT set and must listen on it,
# here with HTTPS: the platform calls it over mTLS and says who is calling.
run: python3 -u main.py
replicas: 1
tls: true
env:
  GREETING: Hello
";

pub(super) const MAIN_PY_TLS: &str = r#""""The {{name}} service: answers JSON over HTTPS on $PORT with its own certificate, to
callers the platform vouches for (Python standard library only).

The platform gives it a certificate (MICRO_TLS_CERT, MICRO_TLS_KEY), renewed in place
before it expires, and calls it over mTLS with its own (MICRO_PLATFORM_IDENTITY), naming
the original caller in X-Micro-Caller: a sibling service's SPIFFE URI, or mailto: a
person. A connection without a certificate from the platform CA is refused.
"""
import json
import os
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = os.environ.get("MICRO_SERVICE_NAME", "{{name}}")
GREETING = os.environ.get("GREETING", "Hello")
CERT, KEY = os.environ["MICRO_TLS_CERT"], os.environ["MICRO_TLS_KEY"]
PLATFORM = os.environ["MICRO_PLATFORM_IDENTITY"]


class Handler(BaseHTTPRequestHandler):
    def setup(self):
        # The handshake, in this connection's own thread.
        self.request.do_handshake()
        super().setup()

    def caller(self):
        """Who called: the platform vouches for the caller it names."""
        cert = self.request.getpeercert() or {}
        uris = [value for kind, value in cert.get("subjectAltName", ()) if kind == "URI"]
        if uris == [PLATFORM]:
            return self.headers.get("X-Micro-Caller", "")
        return None

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        caller = self.caller()
        if caller is None:
            return self.reply(403, {"error": "only the platform calls this service"})
        self.reply(200, {"message": f"{GREETING} from {NAME}", "caller": caller, "path": self.path})


class Server(ThreadingHTTPServer):
    """HTTPS, asking every caller for a certificate from the platform CA; its own
    certificate loaded again whenever the platform renews it."""

    def __init__(self, address):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(os.environ["MICRO_PLATFORM_CA"])
        self.loaded = None
        super().__init__(address, Handler)

    def get_request(self):
        sock, address = self.socket.accept()
        stamp = os.stat(CERT).st_mtime_ns
        if stamp != self.loaded:
            self.context.load_cert_chain(CERT, KEY)
            self.loaded = stamp
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, address):
        # A refused handshake (no certificate, the wrong one) or a probe that only
        # connects: not worth a traceback.
        print(f"connection from {address[0]} refused or dropped", flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8443"))
    print(f"{NAME} listening with TLS on port {port}", flush=True)
    Server(("127.0.0.1", port)).serve_forever()
"#;
