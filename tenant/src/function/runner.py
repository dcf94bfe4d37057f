"""The platform's function runner: serves HTTP on $PORT and hands each request to the
folder's handle(request). Written into the checkout by the build; not the user's code.

request: {"method", "path", "query": {name: value}, "headers": {name: value}, "body"}
(body parsed as JSON when it is JSON, else text). handle returns a dict or list (sent as
JSON), a str (sent as text), or (status, one of those).
"""
import importlib
import json
import os
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

sys.path.insert(0, os.getcwd())
MODULE = sys.argv[1] if len(sys.argv) > 1 else "handler"
handle = getattr(importlib.import_module(MODULE), "handle")


class Handler(BaseHTTPRequestHandler):
    def answer(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            return self.send(200, {"ok": True})
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        request = {
            "method": self.command,
            "path": url.path,
            "query": dict(parse_qsl(url.query)),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        }
        try:
            result = handle(request)
        except Exception:
            traceback.print_exc()
            return self.send(500, {"error": "the handler raised an exception (see micro logs)"})
        status = 200
        if isinstance(result, tuple) and len(result) == 2:
            status, result = result
        self.send(status, result)

    def send(self, status, result):
        if isinstance(result, str):
            data, kind = result.encode(), "text/plain; charset=utf-8"
        else:
            data, kind = json.dumps(result).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print(f"function {MODULE}.handle listening on port {port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
