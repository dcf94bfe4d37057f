#!/usr/bin/env python3
"""piku beside bench 13 and bench 14 (issue 26): the same idle app under piku, measured the
same way, in the same session.

    python3 cli/benches/peers/piku.py PIKU_CHECKOUT [N] [--hold]

PIKU_CHECKOUT is a clone of piku's repository (its piku.py is run as it ships). Needs
uwsgi (Debian: uwsgi-core), git and python3-click. Everything lives in a throwaway HOME;
uwsgi's emperor runs as piku's setup writes it. N apps (default 25) of the idle app are
pushed as piku's own git hook deploys them (a Procfile `web:` worker: a uwsgi vassal that
attaches the app), left idle 3 s, then measured: PSS and RSS of each vassal's processes,
split into the app (the python3 process) and piku's (the vassal's uwsgi master and the
shell it starts the app with), and the emperor's share per app.

With --hold the apps keep running after the figures print, and the line
`piku app at 127.0.0.1:PORT` names one of them for bench 14's third path
(MICRO_BENCH_PIKU_APP); Ctrl-C stops everything.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

# The same app as bench 13's (`IDLE_APP` in cli/benches/server.rs).
IDLE_APP = (
    "import os, http.server\n"
    "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])),"
    " http.server.SimpleHTTPRequestHandler).serve_forever()\n"
)

# What the redeploys push: the app answers its version.
VERSIONED_APP = (
    "import os, http.server\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'v{version}')\n"
    "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
)


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)


def pss_rss(pid):
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def children():
    """Parent pid -> child pids, for every process."""
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def descendants(pid, kids):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def port_of(env_root, app):
    with open(os.path.join(env_root, app, "LIVE_ENV")) as f:
        for line in f:
            if line.startswith("PORT="):
                return int(line.strip().split("=", 1)[1])
    raise RuntimeError(f"{app}: no PORT in LIVE_ENV")


def answers(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port):
    """The body of `GET /` on a new connection, or None when the call failed."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            return r.read().decode(errors="replace") if r.status == 200 else None
    except OSError:
        return None


def redeploys(env, home, port, app, rounds=3):
    """Push → new version answering, and calls failed while piku redeploys, as bench 2
    and bench 8 measure them here: calls one after another on new connections from the
    push until the new version has answered 50 times in a row."""
    work = os.path.join(home, "work", app)
    bare = os.path.join(home, ".piku", "repos", app)
    for version in range(2, 2 + rounds):
        with open(os.path.join(work, "app.py"), "w") as f:
            f.write(VERSIONED_APP.format(version=version))
        run(["git", "-C", work, "commit", "-qam", f"v{version}"], env=env)
        pusher = subprocess.Popen(
            ["git", "-C", work, "push", "-q", bare, "master"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        started = time.monotonic()
        calls = failed = streak = 0
        answering = None
        deadline = started + 120
        while streak < 50:
            body = get(port)
            calls += 1
            if body is None:
                failed += 1
                streak = 0
            elif body == f"v{version}":
                if answering is None:
                    answering = time.monotonic() - started
                streak += 1
            if time.monotonic() > deadline:
                sys.exit(f"v{version} did not answer within 120 s")
        pusher.wait()
        print(
            f"piku redeploy to v{version}: the new version answered {answering * 1000:.0f} ms "
            f"after the push began; {failed} of {calls} calls failed"
        )
        sys.stdout.flush()


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    hold = "--hold" in sys.argv
    if not args:
        sys.exit("usage: piku.py PIKU_CHECKOUT [N] [--hold]: give a clone of piku's repository")
    checkout = os.path.abspath(args[0])
    n = int(args[1]) if len(args) > 1 else 25
    for tool in ("uwsgi", "git"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install uwsgi-core git python3-click")
    commit = subprocess.run(
        ["git", "-C", checkout, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip() or "unknown"

    home = tempfile.mkdtemp(prefix="piku-peer-")
    root = os.path.join(home, ".piku")
    env = {
        "HOME": home,
        "USER": os.environ.get("USER", "root"),
        # piku runs under the system's python3 (Debian's python3-click), as on a piku host.
        "PATH": "/usr/bin:/bin:" + os.environ["PATH"],
        "PIKU_ROOT": root,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    script = os.path.join(home, "piku.py")
    shutil.copy(os.path.join(checkout, "piku.py"), script)
    run(["/usr/bin/python3", script, "setup"], env=env)
    emperor = subprocess.Popen(
        ["uwsgi", "--ini", os.path.join(root, "uwsgi", "uwsgi.ini")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        apps = [f"idle{i}" for i in range(n)]
        started = time.monotonic()
        for app in apps:
            # What piku's git-receive-pack does on a first push over ssh: a bare repo
            # whose post-receive hook is piku's git-hook.
            bare = os.path.join(root, "repos", app)
            run(["git", "init", "--quiet", "--bare", bare], env=env)
            hook = os.path.join(bare, "hooks", "post-receive")
            with open(hook, "w") as h:
                h.write(
                    "#!/usr/bin/env bash\nset -e; set -o pipefail;\n"
                    f'cat | PIKU_ROOT="{root}" {script} git-hook {app}'
                )
            os.chmod(hook, 0o755)
            os.chmod(script, 0o755)
            work = os.path.join(home, "work", app)
            os.makedirs(work)
            with open(os.path.join(work, "Procfile"), "w") as f:
                f.write("release: true\nweb: python3 -u app.py\n")
            with open(os.path.join(work, "app.py"), "w") as f:
                f.write(IDLE_APP)
            # A port of its own that stays across redeploys (piku picks a new one on each
            # deploy otherwise, and rewrites the app's nginx site to follow it).
            with open(os.path.join(work, "ENV"), "w") as f:
                f.write(f"PORT={free_port()}\n")
            run(["git", "init", "--quiet", "-b", "master", work], env=env)
            run(["git", "-C", work, "add", "-A"], env=env)
            run(["git", "-C", work, "commit", "-qm", "idle app"], env=env)
            run(["git", "-C", work, "push", "-q", bare, "master"], env=env,
                stderr=subprocess.DEVNULL)
        ports = {}
        deadline = time.monotonic() + 600
        while len(ports) < n:
            for app in apps:
                if app in ports:
                    continue
                try:
                    port = port_of(os.path.join(root, "envs"), app)
                except (OSError, RuntimeError):
                    continue
                if answers(port):
                    ports[app] = port
            if time.monotonic() > deadline:
                sys.exit(f"only {len(ports)} of {n} piku apps answered")
            time.sleep(0.2)
        deployed = time.monotonic() - started
        time.sleep(3)

        kids = children()
        # A vassal's master is named `APP:web:uWSGI master` (piku's procname-prefix); its
        # descendants are the shell it starts the app with and the app.
        masters = {}
        for pids in kids.values():
            for pid in pids:
                name = cmdline(pid)
                for app in apps:
                    if name.startswith(f"{app}:web:") and "master" in name:
                        masters[app] = pid
        vassals = list(masters.values())
        app_pss = app_rss = plat_pss = plat_rss = 0
        platform_procs = 0
        for vassal in vassals:
            for pid in descendants(vassal, kids):
                pss, rss = pss_rss(pid)
                if cmdline(pid).startswith("python3"):
                    app_pss += pss
                    app_rss += rss
                else:
                    plat_pss += pss
                    plat_rss += rss
                    platform_procs += 1
        in_vassals = {p for v in vassals for p in descendants(v, kids)}
        emperor_pss = sum(
            pss_rss(p)[0] for p in descendants(emperor.pid, kids) if p not in in_vassals
        )
        mib = 1024.0
        per = len(vassals) or 1
        print(
            f"piku {commit[:7]}, {n} idle apps ({len(vassals)} vassals found, deployed in "
            f"{deployed:.1f} s): per app PSS {(app_pss + plat_pss) / per / mib:.1f} MiB = the app "
            f"{app_pss / per / mib:.1f} MiB + piku's {plat_pss / per / mib:.2f} MiB "
            f"({platform_procs / per:.1f} processes); RSS {(app_rss + plat_rss) / per / mib:.1f} MiB; "
            f"the emperor's {emperor_pss / mib:.1f} MiB is {emperor_pss / per / mib:.2f} MiB per app"
        )
        sys.stdout.flush()
        redeploys(env, home, ports[apps[-1]], apps[-1])
        if hold:
            print(f"piku app at 127.0.0.1:{ports[apps[0]]}")
            sys.stdout.flush()
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        # SIGINT is how the emperor is told to stop its vassals and exit.
        try:
            os.killpg(emperor.pid, signal.SIGINT)
            emperor.wait(timeout=30)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            os.killpg(emperor.pid, signal.SIGKILL)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    socket.setdefaulttimeout(5)
    main()
