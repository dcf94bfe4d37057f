//! The `web` template: a public page the service renders, with a `static/` folder.

pub(super) const PYTHON_YAML: &str = "\
# A public web page: reachable from outside through the platform's edge. It is started
# with $PORT set and must listen on it.
run: python3 -u main.py
replicas: 1
public: true
readiness: { path: /healthz }
env:
  GREETING: Hello
";

pub(super) const NODE_YAML: &str = "\
# A public web page: reachable from outside through the platform's edge. package.json
# makes it `npm install` first; it is started with $PORT set and must listen on it.
run: node server.js
replicas: 1
public: true
readiness: { path: /healthz }
env:
  GREETING: Hello
";

pub(super) const GO_YAML: &str = "\
# A public web page: reachable from outside through the platform's edge. go.mod makes it
# `go build` it and start what it built, with $PORT set; it must listen on it.
replicas: 1
public: true
readiness: { path: /healthz }
env:
  GREETING: Hello
";

pub(super) const STYLE_CSS: &str =
    "body { font-family: system-ui, sans-serif; margin: 3rem auto; max-width: 40rem; }\n";

pub(super) const MAIN_PY: &str = r#""""The {{name}} web page: HTML rendered here, files from static/ (standard library only)."""
import html
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

GREETING = os.environ.get("GREETING", "Hello")
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png", ".svg": "image/svg+xml"}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{{name}}</title><link rel="stylesheet" href="/static/style.css"></head>
<body><h1>{greeting}, {who}!</h1>
<form><input name="name" placeholder="your name"> <button>Greet</button></form>
<p>Rendered by {{name}}. Edit main.py and <code>micro run .</code> again.</p></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    def send(self, status, kind, data):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            return self.send(200, "text/plain", b"ok")
        if url.path.startswith("/static/"):
            name = url.path[len("/static/"):]
            # Only the folder's own files: no way up out of it.
            if name in os.listdir(STATIC):
                with open(os.path.join(STATIC, name), "rb") as f:
                    kind = TYPES.get(os.path.splitext(name)[1], "application/octet-stream")
                    return self.send(200, kind, f.read())
            return self.send(404, "text/plain", b"not found")
        if url.path != "/":
            return self.send(404, "text/plain", b"not found")
        who = parse_qs(url.query).get("name", ["stranger"])[0]
        page = PAGE.format(greeting=html.escape(GREETING), who=html.escape(who))
        self.send(200, "text/html; charset=utf-8", page.encode())


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"{{name}} listening on port {port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

pub(super) const SERVER_JS: &str = r#"// The {{name}} web page: HTML rendered here, files from static/ (Node's standard library only).
const fs = require("fs");
const http = require("http");
const path = require("path");

const greeting = process.env.GREETING || "Hello";
const staticDir = path.join(__dirname, "static");
const types = { ".css": "text/css", ".js": "text/javascript", ".png": "image/png", ".svg": "image/svg+xml" };
const escape = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function send(res, status, type, data) {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}

http
  .createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (url.pathname === "/healthz") return send(res, 200, "text/plain", "ok");
    if (url.pathname.startsWith("/static/")) {
      const name = url.pathname.slice("/static/".length);
      // Only the folder's own files: no way up out of it.
      if (fs.readdirSync(staticDir).includes(name)) {
        const type = types[path.extname(name)] || "application/octet-stream";
        return send(res, 200, type, fs.readFileSync(path.join(staticDir, name)));
      }
      return send(res, 404, "text/plain", "not found");
    }
    if (url.pathname !== "/") return send(res, 404, "text/plain", "not found");
    const who = escape(url.searchParams.get("name") || "stranger");
    send(
      res,
      200,
      "text/html; charset=utf-8",
      `<!doctype html>
<html><head><meta charset="utf-8"><title>{{name}}</title><link rel="stylesheet" href="/static/style.css"></head>
<body><h1>${escape(greeting)}, ${who}!</h1>
<form><input name="name" placeholder="your name"> <button>Greet</button></form>
<p>Rendered by {{name}}. Edit server.js and <code>micro run .</code> again.</p></body></html>
`,
    );
  })
  .listen(Number(process.env.PORT || 8080), "127.0.0.1", () => {
    console.log(`{{name}} listening on port ${process.env.PORT || 8080}`);
  });
"#;

pub(super) const MAIN_GO: &str = r#"// The {{name}} web page: HTML rendered here, files from static/ (Go's standard library only).
package main

import (
	"html/template"
	"log"
	"net/http"
	"os"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{name}}</title><link rel="stylesheet" href="/static/style.css"></head>
<body><h1>{{.Greeting}}, {{.Who}}!</h1>
<form><input name="name" placeholder="your name"> <button>Greet</button></form>
<p>Rendered by {{name}}. Edit main.go and <code>micro run .</code> again.</p></body></html>
`))

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	greeting := os.Getenv("GREETING")
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	http.Handle("/static/", http.StripPrefix("/static/", http.FileServer(http.Dir("static"))))
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		who := r.URL.Query().Get("name")
		if who == "" {
			who = "stranger"
		}
		page.Execute(w, map[string]string{"Greeting": greeting, "Who": who})
	})
	log.Printf("{{name}} listening on port %s", port)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil))
}
"#;
