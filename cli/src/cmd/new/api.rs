//! The `api` template: a public JSON API over one small resource (`/items`: list,
//! create, read, delete), kept in memory so it runs as generated.

pub(super) const PYTHON_YAML: &str = "\
# A public JSON API: reachable from outside through the platform's edge. It is started
# with $PORT set and must listen on it. Add `auth: key` to ask callers for an API key.
run: python3 -u main.py
replicas: 1
public: true
readiness: { path: /healthz }
";

pub(super) const NODE_YAML: &str = "\
# A public JSON API: reachable from outside through the platform's edge. package.json
# makes it `npm install` first; it is started with $PORT set and must listen on it.
run: node server.js
replicas: 1
public: true
readiness: { path: /healthz }
";

pub(super) const GO_YAML: &str = "\
# A public JSON API: reachable from outside through the platform's edge. go.mod makes it
# `go build` it and start what it built, with $PORT set; it must listen on it.
replicas: 1
public: true
readiness: { path: /healthz }
";

pub(super) const MAIN_PY: &str = r#""""The {{name}} API: items over JSON (Python standard library only).

GET /items, POST /items {"name": ...}, GET /items/<id>, DELETE /items/<id>. Items live
in memory: use the platform's store (`micro store`) or a database to keep them.
"""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEMS, LOCK = {}, threading.Lock()
NEXT = [1]


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def item_id(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[0] != "items" or len(parts) > 2:
            return None, False
        return (int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else None), len(parts) == 2

    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(200, {"ok": True})
        ident, one = self.item_id()
        with LOCK:
            if one:
                return self.reply(*((200, ITEMS[ident]) if ident in ITEMS else (404, {"error": "no such item"})))
            if self.path.split("?")[0].rstrip("/") == "/items":
                return self.reply(200, list(ITEMS.values()))
        self.reply(404, {"error": "try GET /items"})

    def do_POST(self):
        if self.path.rstrip("/") != "/items":
            return self.reply(404, {"error": "try POST /items"})
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            name = str(body["name"])
        except (ValueError, KeyError, TypeError):
            return self.reply(400, {"error": 'send {"name": "..."}'})
        with LOCK:
            item = {"id": NEXT[0], "name": name}
            ITEMS[item["id"]] = item
            NEXT[0] += 1
        self.reply(201, item)

    def do_DELETE(self):
        ident, one = self.item_id()
        with LOCK:
            if one and ITEMS.pop(ident, None) is not None:
                return self.reply(204)
        self.reply(404, {"error": "no such item"})


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"{{name}} API listening on port {port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

pub(super) const SERVER_JS: &str = r#"// The {{name}} API: items over JSON (Node's standard library only).
// GET /items, POST /items {"name": ...}, GET /items/:id, DELETE /items/:id. Items live in
// memory: use the platform's store (`micro store`) or a database to keep them.
const http = require("http");

const items = new Map();
let next = 1;

function reply(res, status, body) {
  const data = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}

http
  .createServer((req, res) => {
    const path = new URL(req.url, "http://localhost").pathname.replace(/\/+$/, "");
    if (path === "/healthz") return reply(res, 200, { ok: true });
    const one = path.match(/^\/items\/(\d+)$/);
    if (req.method === "GET" && path === "/items") return reply(res, 200, [...items.values()]);
    if (req.method === "GET" && one) {
      const item = items.get(Number(one[1]));
      return item ? reply(res, 200, item) : reply(res, 404, { error: "no such item" });
    }
    if (req.method === "DELETE" && one) {
      return items.delete(Number(one[1])) ? reply(res, 204) : reply(res, 404, { error: "no such item" });
    }
    if (req.method === "POST" && path === "/items") {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        let name;
        try {
          name = JSON.parse(Buffer.concat(chunks).toString() || "{}").name;
        } catch {}
        if (typeof name !== "string") return reply(res, 400, { error: 'send {"name": "..."}' });
        const item = { id: next++, name };
        items.set(item.id, item);
        reply(res, 201, item);
      });
      return;
    }
    reply(res, 404, { error: "try GET /items" });
  })
  .listen(Number(process.env.PORT || 8080), "127.0.0.1", () => {
    console.log(`{{name}} API listening on port ${process.env.PORT || 8080}`);
  });
"#;

pub(super) const MAIN_GO: &str = r#"// The {{name}} API: items over JSON (Go's standard library only).
// GET /items, POST /items {"name": ...}, GET /items/{id}, DELETE /items/{id}. Items live
// in memory: use the platform's store (`micro store`) or a database to keep them.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

type item struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

var (
	mu    sync.Mutex
	items = map[int]item{}
	next  = 1
)

func reply(w http.ResponseWriter, status int, body interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if body != nil {
		json.NewEncoder(w).Encode(body)
	}
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]bool{"ok": true})
	})
	http.HandleFunc("/items", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case "GET":
			list := []item{}
			for _, it := range items {
				list = append(list, it)
			}
			sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
			reply(w, 200, list)
		case "POST":
			var in struct{ Name *string `json:"name"` }
			if json.NewDecoder(r.Body).Decode(&in) != nil || in.Name == nil {
				reply(w, 400, map[string]string{"error": `send {"name": "..."}`})
				return
			}
			it := item{ID: next, Name: *in.Name}
			items[it.ID] = it
			next++
			reply(w, 201, it)
		default:
			reply(w, 405, map[string]string{"error": "GET or POST"})
		}
	})
	http.HandleFunc("/items/", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/items/"))
		mu.Lock()
		defer mu.Unlock()
		it, ok := items[id]
		if err != nil || !ok {
			reply(w, 404, map[string]string{"error": "no such item"})
			return
		}
		if r.Method == "DELETE" {
			delete(items, id)
			reply(w, 204, nil)
			return
		}
		reply(w, 200, it)
	})
	log.Printf("{{name}} API listening on port %s", port)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+port, nil))
}
"#;
