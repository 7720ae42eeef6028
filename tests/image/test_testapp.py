"""kanary-testapp, the server the node tests and the quick start run as every version.

The binary runs here on loopback, as the pods run it: configured by TESTAPP_PORT,
TESTAPP_NAME and (here) TESTAPP_ADDRESS. KANARY_TESTAPP names the binary meson built;
without it the test compiles tests/image/testapp/testapp.c itself.
"""

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
from kanarytest import eventually, free_port, unwind_on_sigterm  # noqa: E402

unwind_on_sigterm()


@pytest.fixture(scope="session")
def binary(tmp_path_factory):
    if os.environ.get("KANARY_TESTAPP"):
        return os.environ["KANARY_TESTAPP"]
    out = tmp_path_factory.mktemp("testapp") / "kanary-testapp"
    subprocess.run(["cc", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra",
                    "-Werror", "-static", "-Os", "-o", str(out),
                    str(HERE / "testapp" / "testapp.c")], check=True)
    return str(out)


class App:
    def __init__(self, binary, **env):
        self.port = free_port()
        full = {k: v for k, v in os.environ.items() if not k.startswith("TESTAPP_")}
        full.update({"TESTAPP_PORT": str(self.port), "TESTAPP_ADDRESS": "127.0.0.1"})
        full.update({k: v for k, v in env.items() if v is not None})
        for k, v in env.items():
            if v is None:
                full.pop(k, None)
        self.proc = subprocess.Popen([binary], env=full, stderr=subprocess.PIPE, text=True)
        host = full.get("TESTAPP_ADDRESS", "127.0.0.1") or "127.0.0.1"
        self.host = "127.0.0.1" if host == "::" else host
        eventually(self._listening, f"testapp listening on port {self.port}", timeout=10)

    def _listening(self):
        assert self.proc.poll() is None, self.proc.stderr.read()
        try:
            socket.create_connection((self.host, self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def connect(self, host=None):
        s = socket.create_connection((host or self.host, self.port), timeout=10)
        return s

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


@pytest.fixture
def app(binary):
    apps = []

    def start(**env):
        a = App(binary, **env)
        apps.append(a)
        return a

    yield start
    for a in apps:
        a.stop()


def read_line(s):
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(1024)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def read_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(min(65536, n - len(data)))
        assert chunk, f"connection closed after {len(data)} of {n} bytes"
        data += chunk
    return data


def test_greets_each_connection_with_its_name_then_echoes(app):
    a = app(TESTAPP_NAME="myapp-v2")
    with a.connect() as s:
        assert read_line(s) == b"myapp-v2\n"
        s.sendall(b"hello\n")
        assert read_exactly(s, 6) == b"hello\n"
        s.sendall(b"again")
        assert read_exactly(s, 5) == b"again"
    with a.connect() as s:
        assert read_line(s) == b"myapp-v2\n"


def test_greeting_defaults_to_the_hostname(app):
    a = app(TESTAPP_NAME=None)
    with a.connect() as s:
        assert read_line(s) == socket.gethostname().encode() + b"\n"


def test_greeting_comes_before_the_client_says_anything(app):
    a = app(TESTAPP_NAME="first")
    with a.connect() as s:
        s.settimeout(5)
        assert s.recv(100) == b"first\n"


def test_echoes_a_megabyte_whatever_the_client_reads_at_a_time(app):
    a = app(TESTAPP_NAME="big")
    payload = bytes(range(256)) * 4096
    with a.connect() as s:
        assert read_line(s) == b"big\n"
        s.sendall(payload[:300000])
        time.sleep(0.2)  # the server stops reading until its echo is out
        s.sendall(payload[300000:600000])
        got = read_exactly(s, 600000)
        s.sendall(payload[600000:])
        got += read_exactly(s, len(payload) - 600000)
    assert got == payload


def test_holds_many_connections_at_once(app):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    count = min(1000, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100)
    a = app(TESTAPP_NAME="many")
    conns = []
    try:
        for _ in range(count):
            conns.append(a.connect())
        for s in conns:
            assert read_line(s) == b"many\n"
        for i, s in enumerate(conns):
            s.sendall(b"%d\n" % i)
        for i, s in enumerate(conns):
            assert read_line(s) == b"%d\n" % i
    finally:
        for s in conns:
            s.close()
    with a.connect() as s:
        assert read_line(s) == b"many\n"


def test_survives_clients_that_reset_or_vanish(app):
    a = app(TESTAPP_NAME="tough")
    for i in range(50):
        s = a.connect()
        if i % 2:
            s.sendall(b"x" * 100000)  # much of the echo will find the connection reset
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        s.close()  # linger 0: the kernel sends RST
    time.sleep(0.2)
    assert a.proc.poll() is None
    with a.connect() as s:
        assert read_line(s) == b"tough\n"
        s.sendall(b"ok")
        assert read_exactly(s, 2) == b"ok"


def test_listens_on_ipv4_and_ipv6_when_no_address_is_set(app):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    a = app(TESTAPP_NAME="dual", TESTAPP_ADDRESS=None)
    for host in ("127.0.0.1", "::1"):
        try:
            s = a.connect(host)
        except OSError as e:
            if host == "::1":
                pytest.skip(f"::1 unreachable here: {e}")
            raise
        with s:
            assert read_line(s) == b"dual\n"


def test_sigterm_ends_it_with_status_0_closing_open_connections(app):
    a = app(TESTAPP_NAME="bye")
    held = [a.connect() for _ in range(5)]
    for s in held:
        assert read_line(s) == b"bye\n"
    started = time.monotonic()
    a.proc.send_signal(signal.SIGTERM)
    assert a.proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 2
    for s in held:
        s.settimeout(5)
        assert s.recv(10) == b""
        s.close()


def test_rejects_a_port_that_is_not_one(binary):
    for bad in ("0", "65536", "80x", "-1"):
        out = subprocess.run([binary], env={"TESTAPP_PORT": bad}, capture_output=True,
                             text=True, timeout=10)
        assert out.returncode == 2, (bad, out.stderr)
        assert "TESTAPP_PORT" in out.stderr
