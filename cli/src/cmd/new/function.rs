//! The `function` template: one handler, `handle(request)`, and no server code: the
//! platform finds `handler.py` or `handler.js` and serves it with its own runner (see
//! `micro describe`).

pub(super) const YAML: &str = "\
# A function: the platform calls handle(request) in this folder's handler file for every
# request, through its own runner (no `run`: the handler file says how it starts).
replicas: 1
readiness: { path: /healthz }
env:
  GREETING: Hello
";

pub(super) const HANDLER_PY: &str = r#""""The {{name}} function.

request: {"method", "path", "query", "headers", "body"} (body parsed as JSON when it is).
Return a dict or list (sent as JSON), a str (sent as text), or (status, one of those).
"""
import os

GREETING = os.environ.get("GREETING", "Hello")


def handle(request):
    body = request["body"] if isinstance(request["body"], dict) else {}
    who = body.get("name") or request["query"].get("name") or "stranger"
    return {"message": f"{GREETING} {who} from {{name}}", "path": request["path"]}
"#;

pub(super) const HANDLER_JS: &str = r#"// The {{name}} function.
//
// request: { method, path, query, headers, body } (body parsed as JSON when it is).
// Return (or resolve to) an object or array (sent as JSON), a string (sent as text), or
// { status, body }.
const greeting = process.env.GREETING || "Hello";

exports.handle = async (request) => {
  const who = (request.body && request.body.name) || request.query.name || "stranger";
  return { message: `${greeting} ${who} from {{name}}`, path: request.path };
};
"#;
