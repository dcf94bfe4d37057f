#!/usr/bin/env python3
"""Measures wall time from `git push` returning to the pushed revision answering.

Starts `micro server` (the binary given, default target/release/micro) in temp dirs,
runs a service, then N times: edit, commit, push, and poll `micro call` through the
platform's API until the new text answers. Prints each figure and the median.
Usage: scripts/push-latency.py [MICRO_BINARY] [N]
"""
import json, os, socket, statistics, subprocess, sys, tempfile, time, urllib.request

binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/micro")
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
tmp = tempfile.mkdtemp()
env = dict(os.environ, MICRO_HOME=f"{tmp}/home", MICRO_DEFAULT_QUOTA="pushes-per-minute=1000000", GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b",
           GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b", GIT_TERMINAL_PROMPT="0")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
server = subprocess.Popen([binary, "server", "--address", f"127.0.0.1:{port}", "--data-dir", f"{tmp}/data"],
                          env=env, stderr=subprocess.DEVNULL)
try:
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz"); break
        except OSError:
            time.sleep(0.05)
    token = json.load(open(f"{tmp}/home/envs.json"))["envs"]["server"]["token"]
    run = lambda *a: subprocess.run([binary, *a], cwd=tmp, env=env, check=True, capture_output=True)
    run("new", "hello"); run("run", "./hello", "--wait"); run("clone", "work")
    work, main_py = f"{tmp}/work", f"{tmp}/work/services/hello/main.py"
    url = f"http://127.0.0.1:{port}/api/v1/namespaces/default/services/hello/call"
    def answer():
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            return urllib.request.urlopen(req, timeout=2).read().decode()
        except OSError:
            return ""
    original = open(main_py).read()
    figures = []
    for i in range(rounds):
        marker = f"round {i}"
        open(main_py, "w").write(original.replace("{GREETING} from {NAME}", "{GREETING} from {NAME} " + marker))
        subprocess.run(["git", "commit", "-qam", marker], cwd=work, env=env, check=True)
        subprocess.run(["git", "push", "-q"], cwd=work, env=env, check=True)
        pushed = time.monotonic()
        while marker not in answer():
            time.sleep(0.005)
        figures.append((time.monotonic() - pushed) * 1000)
        print(f"push {i + 1}: {figures[-1]:.0f} ms")
    print(f"median {statistics.median(figures):.0f} ms, min {min(figures):.0f} ms, max {max(figures):.0f} ms over {rounds} pushes")
finally:
    server.terminate(); server.wait()
