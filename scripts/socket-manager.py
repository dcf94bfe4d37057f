# systemd's part in socket activation, for tests and benchmarks: binds 127.0.0.1:PORT,
# runs the command after it with the socket as fd 3 (LISTEN_FDS=1, LISTEN_PID), keeps the
# socket while it starts the command again on SIGHUP, and stops it on SIGTERM.
# Usage: python3 socket-manager.py PORT COMMAND...
import os, signal, socket, sys
port, command = int(sys.argv[1]), sys.argv[2:]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", port))
except OSError as e:
    print("socket manager:", e, "(Address already in use)", flush=True)
    sys.exit(1)
s.listen(1024)
def start():
    pid = os.fork()
    if pid == 0:
        if s.fileno() == 3:
            os.set_inheritable(3, True)
        else:
            os.dup2(s.fileno(), 3)
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
        os.execvpe(command[0], command, env)
    return pid
child = start()
def restart(*_):
    global child
    os.kill(child, signal.SIGTERM)
    os.waitpid(child, 0)
    child = start()
def stop(*_):
    os.kill(child, signal.SIGTERM)
    os.waitpid(child, 0)
    sys.exit(0)
signal.signal(signal.SIGHUP, restart)
signal.signal(signal.SIGTERM, stop)
while True:
    signal.pause()
