"""kanary-testapp, the server the node tests and the quick start run as every version.

The binary runs here on loopback, as the pods run it: configured by TESTAPP_PORT,
TESTAPP_NAME and (here) TESTAPP_ADDRESS. KANARY_TESTAPP names the binary meson built;
without it the test compiles tests/image/testapp/testapp.c itself.
"""

import fcntl
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
from kanarytest import WAIT_TIMEOUT as WAIT, eventually, free_port, unwind_on_sigterm  # noqa: E402

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

    def connections(self):
        """Each TCP connection the server holds (ports, state, queues), from /proc/net/tcp."""
        return [c for c in tcp_sockets() if c["local"] == self.port and c["state"] != LISTEN]

    def echoed_what_it_could(self, s, sent):
        """The server has taken in the `sent` bytes of client socket s as far as it can:
        either it read them all and their echo sits in our receive queue or its send queue,
        or it stopped reading (what we sent waits unread in its receive queue) while its
        echo waits on our full receive buffer."""
        peer = s.getsockname()[1]
        mine = [c for c in self.connections() if c["remote"] == peer]
        if not mine:
            return False
        held = unread(s)
        return held + mine[0]["tx_queue"] >= sent or \
            (mine[0]["rx_queue"] > 0 and mine[0]["tx_queue"] > 0 and held > 0)

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


LISTEN = 0x0A  # the state number of a listening socket in /proc/net/tcp


def tcp_sockets():
    """This network namespace's TCP sockets on 127.0.0.1, from /proc/net/tcp."""
    out = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        local, remote = f[1].split(":"), f[2].split(":")
        tx, rx = f[4].split(":")
        if local[0] != "0100007F":
            continue
        out.append({"local": int(local[1], 16), "remote": int(remote[1], 16),
                    "state": int(f[3], 16), "tx_queue": int(tx, 16), "rx_queue": int(rx, 16)})
    return out


def unread(s):
    """Bytes waiting in socket s's receive queue (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0" * 4))[0]


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
        # More than our receive buffer holds unread: the server's echo backs up. Once it has
        # taken in the first part as far as it can, send more on top.
        eventually(lambda: a.echoed_what_it_could(s, 300000),
                   "the server's echo to stall on our full buffer")
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
    # The server has seen every reset: it holds no connection any more.
    eventually(lambda: a.proc.poll() is not None or not a.connections(),
               "the server to close every reset connection")
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
    a.proc.send_signal(signal.SIGTERM)
    assert a.proc.wait(timeout=WAIT) == 0
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
