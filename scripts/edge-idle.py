#!/usr/bin/env python3
"""Bench 15b: what idle keep-alive connections to the edge cost the server.

    python3 scripts/edge-idle.py SERVER_PID EDGE_PORT HOST [N]

Opens N (default 4,000) TLS connections to the edge at 127.0.0.1:EDGE_PORT, 200 from
each of 127.0.0.2, 127.0.0.3, ... (under the per-client cap), each after one `GET /` to
HOST answered, keeps them open, and prints the server's PSS and RSS before and after (and, last, the growth alone).
"""
import resource, select, socket, ssl, sys, time


def rollup(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Pss:", "Rss:"):
                out[parts[0]] = int(parts[1]) / 1024
    return out["Pss:"], out["Rss:"]


def main():
    pid, port, host = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 4000
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    before = rollup(pid)
    held, started = [], time.time()
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), source_address=(f"127.0.0.{2 + i // 200}", 0))
        s = ctx.wrap_socket(s, server_hostname=host)
        s.settimeout(30)
        s.sendall(request)
        got = b""
        while b"\r\n\r\n" not in got or not got.endswith(b"\n"):
            data = s.recv(4096)
            if not data:
                sys.exit(f"connection {i} closed: {got[:80]!r}")
            got += data
        if not got.startswith(b"HTTP/1.1 200"):
            sys.exit(f"connection {i}: {got[:80]!r}")
        held.append(s)
    opened = time.time() - started
    # Idle connections are parked after a quiet second or two.
    time.sleep(3)
    after = rollup(pid)
    # A connection the server closed reads as ready (its end); an idle one does not.
    poller = select.poll()
    for s in held:
        poller.register(s, select.POLLIN)
    closed = poller.poll(0)
    print(
        f"bench 15b {len(held)} idle keep-alive connections to the edge (opened in {opened:.1f} s, "
        f"{len(held) - len(closed)} still open): "
        f"the server's PSS {before[0]:.1f} -> {after[0]:.1f} MiB (+{after[0] - before[0]:.1f} MiB, "
        f"{(after[0] - before[0]) * 1024 / len(held):.1f} KiB each, "
        f"{(after[0] - before[0]) * 10000 / len(held):.0f} MiB for 10,000), RSS {before[1]:.1f} -> {after[1]:.1f} MiB"
    )
    # For the bench that runs this: the growth alone, in MiB.
    print(f"grew {after[0] - before[0]:.2f}")


if __name__ == "__main__":
    main()
