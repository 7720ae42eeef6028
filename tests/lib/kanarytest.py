"""Helpers shared by the Python test suites (imported after adding tests/lib to sys.path)."""

import signal
import socket
import subprocess
import time

WAIT_TIMEOUT = 60  # seconds, for anything that happens asynchronously


def unwind_on_sigterm():
    """Turn SIGTERM into an exception.

    meson stops a test that runs over its timeout with SIGTERM; as an exception it unwinds
    pytest, so the fixtures stop the daemons, haproxy and the cluster the test started.
    """

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def eventually(predicate, what, timeout=WAIT_TIMEOUT, interval=0.25):
    """Poll predicate until it returns a true value, and return it; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port():
    """A TCP port free on 127.0.0.1 now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Commands:
    """Runs kubectl, helm and other commands in one environment (a test cluster's exports).

    A command that exits non-zero fails the test with its output, unless check is false.
    """

    timeout = 120  # seconds, for any one command

    def __init__(self, env):
        self.env = env

    def run(self, *args, input=None, check=True, timeout=None, env=None, cwd=None):
        proc = subprocess.run([str(a) for a in args], env=env or self.env, input=input,
                              capture_output=True, text=True, timeout=timeout or self.timeout,
                              cwd=cwd)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))} exited {proc.returncode}\n"
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def kubectl(self, *args, **kw):
        return self.run("kubectl", *args, **kw)

    def helm(self, *args, **kw):
        return self.run("helm", *args, **kw)
