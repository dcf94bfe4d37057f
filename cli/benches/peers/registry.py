#!/usr/bin/env python3
"""A package registry on loopback for bench 16, as an operator's mirror would be: a PEP 503
simple index of the wheels in DIR/wheels and an npm registry of the tarballs in DIR/npm
(`npm pack` output), their packuments made from each tarball's package.json.

    python3 cli/benches/peers/registry.py DIR

Prints `serving on 127.0.0.1:PORT` once it listens; serves until killed.
"""

import base64
import hashlib
import html
import json
import os
import re
import sys
import tarfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(sys.argv[1])
WHEELS = os.path.join(ROOT, "wheels")
NPM = os.path.join(ROOT, "npm")
# What a packument's version carries from package.json.
FIELDS = ("dependencies", "optionalDependencies", "peerDependencies", "peerDependenciesMeta",
          "bin", "engines", "os", "cpu")


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def wheels():
    found = {}
    for f in sorted(os.listdir(WHEELS)) if os.path.isdir(WHEELS) else []:
        if f.endswith((".whl", ".tar.gz")):
            found.setdefault(normalize(f.split("-")[0]), []).append(f)
    return found


def tarballs():
    """{name: {version: (path, package.json)}}"""
    found = {}
    for f in sorted(os.listdir(NPM)) if os.path.isdir(NPM) else []:
        if not f.endswith(".tgz"):
            continue
        path = os.path.join(NPM, f)
        with tarfile.open(path) as t:
            member = next(m for m in t.getmembers() if m.name.endswith("/package.json") and m.name.count("/") == 1)
            meta = json.load(t.extractfile(member))
        found.setdefault(meta["name"], {})[meta["version"]] = (path, meta)
    return found


def digests(path):
    data = open(path, "rb").read()
    return hashlib.sha1(data).hexdigest(), "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


PYPI, NPMS = wheels(), tarballs()
SUMS = {}


class Handler(BaseHTTPRequestHandler):
    def send(self, status, kind, data):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

    def base(self):
        return f"http://{self.headers.get('Host')}"

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith("/simple/"):
            name = normalize(path[len("/simple/"):].strip("/"))
            files = PYPI.get(name)
            if not files:
                return self.send(404, "text/plain", b"no such project")
            links = "".join(
                f'<a href="/files/{html.escape(f)}#sha256={hashlib.sha256(open(os.path.join(WHEELS, f), "rb").read()).hexdigest()}">{html.escape(f)}</a>\n'
                for f in files
            )
            return self.send(200, "text/html", f"<!doctype html><html><body>\n{links}</body></html>".encode())
        if path.startswith("/files/"):
            f = os.path.basename(path)
            full = os.path.join(WHEELS, f)
            if os.path.isfile(full):
                return self.send(200, "application/octet-stream", open(full, "rb").read())
            return self.send(404, "text/plain", b"no such file")
        if "/-/" in path:
            name, file = path.lstrip("/").split("/-/", 1)
            name = name.replace("%2f", "/").replace("%2F", "/")
            short = name.split("/")[-1]
            version = file[len(short) + 1:-len(".tgz")]
            entry = NPMS.get(name, {}).get(version)
            if entry:
                return self.send(200, "application/octet-stream", open(entry[0], "rb").read())
            return self.send(404, "application/json", b'{"error": "not found"}')
        name = path.lstrip("/").replace("%2f", "/").replace("%2F", "/")
        versions = NPMS.get(name)
        if not versions:
            return self.send(404, "application/json", b'{"error": "not found"}')
        doc = {"name": name, "versions": {}, "dist-tags": {}}
        for version, (tgz, meta) in versions.items():
            if tgz not in SUMS:
                SUMS[tgz] = digests(tgz)
            shasum, integrity = SUMS[tgz]
            entry = {k: meta[k] for k in FIELDS if k in meta}
            entry.update(name=name, version=version, dist={
                "tarball": f"{self.base()}/{name}/-/{name.split('/')[-1]}-{version}.tgz",
                "shasum": shasum, "integrity": integrity})
            doc["versions"][version] = entry
        doc["dist-tags"]["latest"] = sorted(versions, key=lambda v: [int(p) if p.isdigit() else 0 for p in re.split(r"[.+-]", v)])[-1]
        self.send(200, "application/json", json.dumps(doc).encode())


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"serving on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
