#!/usr/bin/env python3
"""piku beside bench 16 (issue 28): the same Flask app deployed by piku, from the same
local package index, in the same session.

    python3 cli/benches/peers/piku-builds.py PIKU_CHECKOUT

piku's own piku.py and git hook deploy it (see piku.py beside this file for how piku
runs here; needs uwsgi, virtualenv and python3-click). Its wheels are fetched once with
`pip download` and served on loopback by registry.py; piku's pip is pointed there with
PIP_INDEX_URL in the hook's environment. Each figure is from the push to the new version
answering: a first deploy, a change to app.py alone, one dependency added.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import piku as peer  # noqa: E402  (the helpers of piku.py beside this file)

APP = (
    "import os\nfrom flask import Flask\napp = Flask(__name__)\n@app.get('/')\n"
    "def hello():\n    return '{answer}'\n"
    "app.run(host='127.0.0.1', port=int(os.environ['PORT']))\n"
)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: piku-builds.py PIKU_CHECKOUT")
    checkout = os.path.abspath(sys.argv[1])
    for tool in ("uwsgi", "git", "virtualenv"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install uwsgi-core git python3-click python3-virtualenv")
    home = tempfile.mkdtemp(prefix="piku-builds-")
    registry = os.path.join(home, "registry")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d",
         os.path.join(registry, "wheels"), "flask==3.0.3", "python-dotenv==1.0.1"],
        check=True,
    )
    mirror = subprocess.Popen(
        [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "registry.py"), registry],
        stdout=subprocess.PIPE, text=True,
    )
    at = mirror.stdout.readline().strip().rsplit(" ", 1)[1]
    root = os.path.join(home, ".piku")
    env = {
        "HOME": home,
        "USER": os.environ.get("USER", "root"),
        "PATH": "/usr/bin:/bin:" + os.environ["PATH"],
        "PIKU_ROOT": root,
        "PIP_INDEX_URL": f"http://{at}/simple/",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    script = os.path.join(home, "piku.py")
    shutil.copy(os.path.join(checkout, "piku.py"), script)
    os.chmod(script, 0o755)
    peer.run(["/usr/bin/python3", script, "setup"], env=env)
    emperor = subprocess.Popen(
        ["uwsgi", "--ini", os.path.join(root, "uwsgi", "uwsgi.ini")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        app = "flaskapp"
        bare = os.path.join(root, "repos", app)
        peer.run(["git", "init", "--quiet", "--bare", bare], env=env)
        hook = os.path.join(bare, "hooks", "post-receive")
        with open(hook, "w") as h:
            h.write(
                "#!/usr/bin/env bash\nset -e; set -o pipefail;\n"
                f'cat | PIKU_ROOT="{root}" {script} git-hook {app}'
            )
        os.chmod(hook, 0o755)
        work = os.path.join(home, "work", app)
        os.makedirs(work)
        port = peer.free_port()
        files = {
            "Procfile": "web: python3 -u app.py\n",
            "ENV": f"PORT={port}\n",
            "requirements.txt": "flask==3.0.3\n",
            "app.py": APP.format(answer="hello"),
        }
        for name, text in files.items():
            with open(os.path.join(work, name), "w") as f:
                f.write(text)
        peer.run(["git", "init", "--quiet", "-b", "master", work], env=env)

        def deploy(what, answer):
            peer.run(["git", "-C", work, "add", "-A"], env=env)
            peer.run(["git", "-C", work, "commit", "-qm", what], env=env)
            started = time.monotonic()
            subprocess.run(["git", "-C", work, "push", "-q", bare, "master"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            pushed = time.monotonic() - started
            while peer.get(port) != answer:
                if time.monotonic() - started > 300:
                    sys.exit(f"{what}: {answer!r} not answered within 300 s")
                time.sleep(0.02)
            took = time.monotonic() - started
            print(f"piku flaskapp {what}: the push (piku's build in its hook) {pushed:.2f} s, "
                  f"push to answering {took:.2f} s", flush=True)
            return took

        first = deploy("first build", "hello")
        with open(os.path.join(work, "app.py"), "w") as f:
            f.write(APP.format(answer="hello again"))
        code = deploy("a change to code alone", "hello again")
        with open(os.path.join(work, "requirements.txt"), "w") as f:
            f.write("flask==3.0.3\npython-dotenv==1.0.1\n")
        with open(os.path.join(work, "app.py"), "w") as f:
            f.write(APP.format(answer="hello with dotenv"))
        deploy("one dependency added", "hello with dotenv")
        print(f"piku flaskapp: a redeploy after a change to code alone took {code * 100 / first:.0f}% of the first")
    finally:
        try:
            os.killpg(emperor.pid, signal.SIGINT)
            emperor.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(emperor.pid, signal.SIGKILL)
        mirror.kill()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
