// The platform's function runner: serves HTTP on $PORT and hands each request to the
// folder's handle(request). Written into the checkout by the build; not the user's code.
//
// request: { method, path, query: {name: value}, headers: {name: value}, body } (body
// parsed as JSON when it is JSON, else text). handle returns (or resolves to) an object
// or array (sent as JSON), a string (sent as text), or { status, body }.
const http = require("http");
const path = require("path");

const moduleName = process.argv[2] || "handler";
const { handle } = require(path.resolve(process.cwd(), moduleName));

function send(res, status, result) {
  const text = typeof result === "string";
  const data = text ? result : JSON.stringify(result === undefined ? null : result);
  res.writeHead(status, {
    "Content-Type": text ? "text/plain; charset=utf-8" : "application/json",
    "Content-Length": Buffer.byteLength(data),
  });
  res.end(data);
}

http
  .createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (url.pathname === "/healthz") return send(res, 200, { ok: true });
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      let body = null;
      if (raw) {
        try {
          body = JSON.parse(raw);
        } catch {
          body = raw;
        }
      }
      const request = {
        method: req.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        body,
      };
      try {
        const result = await handle(request);
        if (result && typeof result === "object" && "status" in result && "body" in result) {
          send(res, result.status, result.body);
        } else {
          send(res, 200, result);
        }
      } catch (e) {
        console.error(e);
        send(res, 500, { error: "the handler threw (see micro logs)" });
      }
    });
  })
  .listen(Number(process.env.PORT || 8080), "127.0.0.1", () => {
    console.log(`function ${moduleName}.handle listening on port ${process.env.PORT || 8080}`);
  });
