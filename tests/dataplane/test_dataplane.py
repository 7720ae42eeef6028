# SPDX-License-Identifier: Apache-2.0
"""Data-plane test: the real haproxy runs a rendered structure, the real agent applies the state.

The structure comes from `kanary-controller render --config-only` and the
state from `render --state-only`, fed a Kanary with its Services and
EndpointSlices, so what is measured here is what the controller would ship;
`kanary-controller agent --state-file` puts the state into haproxy through
its admin socket, as the sidecar does in the pod, and is fed new states by
rewriting that file. The "pods" are tiny listeners on their own 127.0.x.y
addresses that answer with their name and close; the client opens real TCP
connections through haproxy's frontend and counts who answered.

Every case prints one line with the measured split (`pytest -s` shows it),
for the record of what the data plane does, and asserts:
- each route gets its weight within TOLERANCE_PP percentage points, with no
  failed connection, whatever the pod counts;
- a route whose pods all died costs at most 0.5 % of the connections once
  the health checks have noticed;
- not-ready and terminating endpoints never reach haproxy, so no connection
  (not even a health check) reaches them;
- haproxy logs every connection, also one where only the server speaks;
- a restarted haproxy answers /ready 503 "no-state" while no agent runs, and the
  agent, started then or already running, puts the whole state in again.

The live changes of a running haproxy (weights 80/20 -> 50/50, endpoints
3 -> 10 -> 2, a route added) run end to end in test_live_changes.py: the
agent watching the real API server, the pods in a network namespace.

haproxy is the one KANARY_HAPROXY names (meson runs this file once per haproxy
under test: the system's and HAProxy 3.0), else haproxy on PATH; its version
heads the output.

Nothing leaves 127.0.0.0/8, and every process and socket is stopped by the
test itself, by PID, even when an assertion fails.
"""

import collections
import contextlib
import dataclasses
import errno
import hashlib
import http.client
import ipaddress
import json
import os
import pathlib
import queue
import re
import selectors
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

HAPROXY = os.environ.get("KANARY_HAPROXY") or shutil.which("haproxy") or "/usr/sbin/haproxy"
NAMESPACE = "default"
DESTINATION = "myapp"

# Connections per measured split. 10,000 keeps the binomial noise of a 50 %
# route at 0.5 pp, so the 2 pp tolerance is 4 sigma and the test is not flaky.
CONNECTIONS = 10_000
TOLERANCE_PP = 2.0
DEAD_ROUTE_MAX_LOSS = 0.005
# Modest concurrency: enough to keep haproxy busy on two cores, not a benchmark.
CLIENT_THREADS = 16
# Hard limits, so a broken proxy fails the test instead of hanging it.
CASE_DEADLINE_S = 150.0
CONNECT_TIMEOUT_S = 10.0
READY_DEADLINE_S = 20.0
MARK_DOWN_DEADLINE_S = 30.0


# ---- the binary under test ----------------------------------------------------


@pytest.fixture(scope="module")
def controller():
    """kanary-controller from the build: meson passes it, manual runs use build/."""
    path = os.environ.get("KANARY_CONTROLLER")
    if not path:
        repo = pathlib.Path(__file__).resolve().parents[2]
        path = str(repo / "build" / "controller" / "kanary-controller")
    if not os.access(path, os.X_OK):
        pytest.fail(f"kanary-controller not found at {path}: build it, or set KANARY_CONTROLLER")
    if not os.access(HAPROXY, os.X_OK):
        pytest.fail(f"haproxy not found at {HAPROXY}: install it, or set KANARY_HAPROXY")
    version = subprocess.run([HAPROXY, "-v"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0, f"{HAPROXY} -v failed: {version.stdout}{version.stderr}"
    print(f"\nhaproxy under test: {HAPROXY}: {version.stdout.splitlines()[0]}")
    return path


# ---- pods: loopback listeners that answer with their name ----------------------


@dataclasses.dataclass(eq=False)
class Pod:
    """One backend pod: a listening socket on its own loopback address."""

    service: str
    name: str
    address: str
    port: int
    sock: socket.socket
    accepted: int = 0  # every connection, health checks included
    alive: bool = True


class Pods:
    """Every pod of a test, served by one selector thread.

    One thread serves all listeners because a pod's work is tiny (accept,
    write the name, close) and a thread per pod would only fight over the
    interpreter lock with the client. Pods of one Service share a port, as
    an EndpointSlice has one port list for all its endpoints, and differ by
    address: 127.0.<subnet>.1, .2, ...
    """

    def __init__(self):
        self.pods = {}
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._requests = queue.SimpleQueue()
        self._thread = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add_service(self, service, count, subnet):
        """Binds count pods of service on 127.0.<subnet>.1..count, one shared free port."""
        addresses = [f"127.0.{subnet}.{i + 1}" for i in range(count)]
        socks, port = bind_same_port(addresses)
        pods = []
        for i, (address, sock) in enumerate(zip(addresses, socks)):
            pod = Pod(service, f"{service}-pod{i}", address, port, sock)
            self.pods[pod.name] = pod
            pods.append(pod)
        return pods

    def start(self):
        """Starts serving every pod added so far."""
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        for pod in self.pods.values():
            pod.sock.setblocking(False)
            self._sel.register(pod.sock, selectors.EVENT_READ, pod)
        self._thread = threading.Thread(target=self._serve, name="pods", daemon=True)
        self._thread.start()

    def kill(self, pods):
        """Closes the listeners of pods, so connecting to them is refused, as for a dead pod."""
        done = threading.Event()
        self._requests.put(("kill", list(pods), done))
        self._wake_w.send(b"k")
        if not done.wait(10):
            raise RuntimeError("the pod thread did not close the listeners")

    def service_of(self, pod_name):
        """The Service of the pod that answered, or None for an unknown answer."""
        pod = self.pods.get(pod_name)
        return pod.service if pod else None

    def close(self):
        """Stops the thread and closes every socket; safe to call twice."""
        if self._thread and self._thread.is_alive():
            self._requests.put(("stop", [], None))
            try:
                self._wake_w.send(b"s")
            except OSError:
                pass
            self._thread.join(10)
        for pod in self.pods.values():
            pod.sock.close()
            pod.alive = False
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    def _serve(self):
        while True:
            for key, _ in self._sel.select():
                if key.data is None:
                    if not self._handle_requests():
                        return
                else:
                    self._accept_all(key.data)

    def _handle_requests(self):
        try:
            while self._wake_r.recv(64):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                what, pods, done = self._requests.get_nowait()
            except queue.Empty:
                return True
            if what == "stop":
                return False
            for pod in pods:
                if pod.alive:
                    self._sel.unregister(pod.sock)
                    pod.sock.close()
                    pod.alive = False
            done.set()

    @staticmethod
    def _accept_all(pod):
        reply = (pod.name + "\n").encode()
        while True:
            try:
                conn, _ = pod.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            pod.accepted += 1
            try:
                conn.sendall(reply)
            except OSError:
                pass  # a health check that already hung up
            finally:
                conn.close()


def bind_same_port(addresses, attempts=50):
    """Listening sockets on every address with one free port (ports of a slice are shared)."""
    for _ in range(attempts):
        socks = []
        try:
            port = 0
            for address in addresses:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((address, port))
                s.listen(512)
                port = s.getsockname()[1]
            return socks, port
        except OSError as e:
            for s in socks:
                s.close()
            if e.errno != errno.EADDRINUSE:
                raise
    raise RuntimeError(f"no port free on all of {addresses}")


def free_ports(count):
    """Distinct ports free on 127.0.0.1 now; the caller retries if one is taken later."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ---- the input stream: a Kanary, its Services, their EndpointSlices --------------


@dataclasses.dataclass
class Route:
    """One route of the Kanary and how its Service names its port."""

    service: str
    weight: int
    pods: int
    port_name: str = "http"  # "" for an unnamed Service port
    by_number: bool = False  # servicePort given as the Service port's number


SERVICE_PORT = 80
READY = {"ready": True, "serving": True, "terminating": False}


def kanary_doc(routes):
    """The Kanary, each route's servicePort by name or by number."""
    return {
        "apiVersion": "kanary.pyxida.io/v1alpha1",
        "kind": "Kanary",
        "metadata": {"name": "myapp-split", "namespace": NAMESPACE},
        "spec": {
            "destination": DESTINATION,
            "routes": [
                {
                    "backend": {
                        "serviceName": r.service,
                        "servicePort": SERVICE_PORT if r.by_number or not r.port_name else r.port_name,
                    },
                    "weight": r.weight,
                }
                for r in routes
            ],
        },
    }


def service_doc(service, port_name, target_port):
    """A ClusterIP Service with one TCP port; port_name "" leaves it unnamed."""
    port = {"port": SERVICE_PORT, "targetPort": target_port, "protocol": "TCP"}
    if port_name:
        port["name"] = port_name
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service, "namespace": NAMESPACE},
        "spec": {"selector": {"app": service}, "ports": [port]},
    }


def slice_doc(service, suffix, port_name, port, endpoints):
    """An IPv4 EndpointSlice of service; its port carries the Service port's name."""
    slice_port = {"port": port, "protocol": "TCP"}
    if port_name:
        slice_port["name"] = port_name
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-{suffix}",
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": [slice_port],
        "endpoints": endpoints,
    }


def endpoint(pod, conditions=READY):
    """A slice endpoint of pod; conditions None leaves the field out (read as ready)."""
    ep = {"addresses": [pod.address], "targetRef": {"kind": "Pod", "name": pod.name, "namespace": NAMESPACE}}
    if conditions is not None:
        ep["conditions"] = conditions
    return ep


def write_stream(path, docs):
    """A YAML stream of flow-style documents (JSON is YAML), as a user might pipe in."""
    path.write_text("".join("---\n" + json.dumps(d, indent=1) + "\n" for d in docs))
    return path


def healthy_stream(path, routes, pods_by_service):
    """The stream for routes whose pods are all ready, one slice per Service."""
    docs = [kanary_doc(routes)]
    for r in routes:
        pods = pods_by_service[r.service]
        docs.append(service_doc(r.service, r.port_name, pods[0].port))
        docs.append(slice_doc(r.service, "abcde", r.port_name, pods[0].port, [endpoint(p) for p in pods]))
    return write_stream(path, docs)


# ---- rendering and reading the configuration -------------------------------------


def render(controller, stream, ports, runtime_dir, what="--config-only", previous=None):
    """haproxy.cfg (or with what="--state-only" state.json) for the stream, on 127.0.0.1 only.

    previous: the state file in force, whose slots and generation the new
    structure and state follow, as the controller's reconcile does.
    """
    proxy, probe, metrics = ports[:3]
    cmd = [controller, "render", "-f", str(stream), what,
           "--bind-address", "127.0.0.1", "--proxy-port", str(proxy),
           "--probe-port", str(probe), "--metrics-port", str(metrics), "--runtime-dir", runtime_dir]
    if previous:
        cmd += ["--previous-state", str(previous)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"render failed ({out.returncode}): {out.stderr}"
    return out.stdout


def structure_hash(cfg):
    """The hash8 the structure ConfigMap is named by: SHA-256 of haproxy.cfg."""
    return hashlib.sha256(cfg.encode()).hexdigest()[:8]


def write_state(path, state):
    """Replaces the agent's state file whole (rename), so it never reads half a state."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


SERVER_LINE = re.compile(r"^\s*server\s+(\S+)\s+(\[[^\]]+\]|[^\s:]+):(\d+)(.*)$")


def servers_by_backend(cfg):
    """{backend: [(name, address, port, rest of line)]} from the server lines of cfg."""
    backends, current = {}, None
    for line in cfg.splitlines():
        head = line.split("#", 1)[0].split()
        if not head:
            continue
        if head[0] in ("global", "defaults", "frontend", "backend", "listen"):
            current = head[1] if head[0] == "backend" and len(head) > 1 else None
            if current:
                backends.setdefault(current, [])
            continue
        m = SERVER_LINE.match(line.split("#", 1)[0])
        if m and current:
            backends[current].append((m.group(1), m.group(2), int(m.group(3)), m.group(4)))
    return backends


def assert_loopback_only(cfg, state):
    """Refuses to run a configuration or state that would send traffic off this machine."""
    for route in state["routes"]:
        for ep in route["endpoints"]:
            assert ipaddress.ip_address(ep["address"]).is_loopback, \
                f"{route['backend']}: endpoint {ep['address']} outside loopback"
    for backend, servers in servers_by_backend(cfg).items():
        for name, address, _, _ in servers:
            assert ipaddress.ip_address(address.strip("[]")).is_loopback, \
                f"{backend}/{name} points at {address}, outside loopback"
    for m in re.finditer(r"^\s*bind\s+(\S+)", cfg, re.M):
        assert m.group(1).startswith("127.0.0.1:"), f"haproxy would bind {m.group(1)}"


def haproxy_check(cfg_path):
    """`haproxy -c`: every rendered file must be valid for the real haproxy."""
    out = subprocess.run([HAPROXY, "-c", "-f", str(cfg_path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"haproxy -c refused the rendered config:\n{out.stdout}{out.stderr}"
    warnings = [l for l in (out.stdout + out.stderr).splitlines() if "WARNING" in l]
    for w in warnings:
        print(f"haproxy -c warning: {w}")


# ---- haproxy ---------------------------------------------------------------------


def http_get(port, path, timeout=2.0):
    """(status, body) from 127.0.0.1:port; http.client ignores proxy variables, on purpose."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


ACTIVE_SERVERS = re.compile(r'^haproxy_backend_active_servers\{[^}]*proxy="([^"]+)"[^}]*\}\s+(\S+)', re.M)
AGENT_APPLIED = re.compile(r"^kanary_agent_applied_generation (\d+)$", re.M)


def admin(sock_path, command, timeout=5.0):
    """One command on haproxy's admin socket; its whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(command.encode() + b"\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data.decode(errors="replace")
            data += chunk


def stop_process(proc):
    """SIGTERM, then SIGKILL if it lingers; always reaps the process."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Haproxy:
    """The real haproxy on a rendered structure, and the agent applying the state file.

    haproxy runs in master-worker mode in the foreground (-W -db), as in the
    pod; the agent beside it reads the state file and talks to haproxy's admin
    socket. Both are stopped by PID. Their logs go to files shown on failure.
    """

    def __init__(self, controller, cfg, state, ports, workdir, runtime_dir):
        self.controller = controller
        self.cfg = cfg
        self.state = state
        self.proxy_port, self.probe_port, self.metrics_port, self.agent_port = ports
        self.cfg_path = workdir / "haproxy.cfg"
        self.state_path = workdir / "state.json"
        self.log_path = workdir / "haproxy.log"
        self.agent_log_path = workdir / "agent.log"
        self.ports = ports
        self.runtime_dir = runtime_dir
        self.socket = os.path.join(runtime_dir, "admin.sock")
        self.proc = None
        self.agent = None

    def start(self):
        """Starts haproxy and the agent; returns False when haproxy exited at once because a port was taken."""
        self.cfg_path.write_text(self.cfg)
        write_state(self.state_path, self.state)
        haproxy_check(self.cfg_path)
        if not self.start_haproxy():
            return False
        self.start_agent()
        self.wait_ready()
        return True

    def start_haproxy(self):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([HAPROXY, "-W", "-db", "-f", str(self.cfg_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "cannot bind" in self.log_tail().lower():
                    return False
                raise AssertionError(f"haproxy exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if "Pid:" in admin(self.socket, "show info", timeout=1):
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"haproxy's admin socket not up within {READY_DEADLINE_S} s:\n{self.log_tail()}")

    def start_agent(self):
        with open(self.agent_log_path, "ab") as log:
            self.agent = subprocess.Popen(
                [self.controller, "agent", "--state-file", str(self.state_path), "--socket", self.socket,
                 "--config", str(self.cfg_path), "--interval", "100ms",
                 "--metrics-bind", f"127.0.0.1:{self.agent_port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self):
        """/ready answers 200 once the agent has put the first state in (503 "no-state" before)."""
        deadline = time.monotonic() + READY_DEADLINE_S
        last = None
        while time.monotonic() < deadline:
            if self.agent.poll() is not None:
                raise AssertionError(f"the agent exited with {self.agent.returncode}:\n{self.agent_log_tail()}")
            try:
                last = http_get(self.probe_port, "/ready", timeout=1)
                if last[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.05)
        raise AssertionError(f"haproxy not ready within {READY_DEADLINE_S} s (last {last}):\n"
                             f"{self.log_tail()}\nagent:\n{self.agent_log_tail()}")

    def stop(self):
        stop_process(self.agent)
        stop_process(self.proc)

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def agent_log_tail(self, lines=30):
        try:
            return "\n".join(self.agent_log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def pids(self):
        """(master PID, worker PID): the process we started, and the one `show info` names."""
        m = re.search(r"^Pid: (\d+)$", admin(self.socket, "show info"), re.M)
        assert m, "show info names no Pid"
        return self.proc.pid, int(m.group(1))

    def apply(self, state):
        """Hands the agent a new state and waits until it reports that generation read back."""
        self.state = state
        write_state(self.state_path, state)
        return self.wait_applied(state["generation"])

    def agent_metrics(self):
        status, body = http_get(self.agent_port, "/metrics")
        assert status == 200, f"agent /metrics answered {status}"
        return body

    def wait_applied(self, generation, deadline_s=READY_DEADLINE_S):
        """Seconds until the agent's kanary_agent_applied_generation is generation."""
        start = time.monotonic()
        seen = None
        while time.monotonic() - start < deadline_s:
            m = AGENT_APPLIED.search(self.agent_metrics())
            seen = int(m.group(1)) if m else None
            if seen == generation:
                return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(f"agent applied generation {seen} after {deadline_s} s, want {generation}:\n"
                             f"{self.agent_log_tail()}")

    def servers(self):
        """{backend: {server: (address:port, in maintenance, sessions so far)}} from `show stat`."""
        out, cols = {}, None
        for line in admin(self.socket, "show stat").splitlines():
            if line.startswith("# "):
                cols = {name: i for i, name in enumerate(line[2:].split(","))}
                continue
            f = line.split(",")
            if not cols or len(f) < len(cols) - 1 or f[1] in ("FRONTEND", "BACKEND"):
                continue
            out.setdefault(f[0], {})[f[1]] = (f[cols["addr"]], "MAINT" in f[cols["status"]],
                                               int(f[cols["stot"]] or 0))
        return out

    def frontend_sessions(self):
        """Connections fe_main has taken so far."""
        out = admin(self.socket, "show stat")
        cols = None
        for line in out.splitlines():
            if line.startswith("# "):
                cols = {name: i for i, name in enumerate(line[2:].split(","))}
            elif cols and line.startswith("fe_main,FRONTEND,"):
                return int(line.split(",")[cols["stot"]])
        raise AssertionError("show stat has no fe_main")

    def wait_sessions(self, more, deadline_s=CASE_DEADLINE_S):
        """Waits until fe_main has taken `more` connections beyond now (the load runs)."""
        target = self.frontend_sessions() + more
        deadline = time.monotonic() + deadline_s
        while self.frontend_sessions() < target:
            assert time.monotonic() < deadline, f"fe_main took fewer than {more} connections in {deadline_s} s"
            time.sleep(0.02)

    def rendered(self, stream, previous=None):
        """(haproxy.cfg, state) for stream on this haproxy's ports, following the
        state previous (default: the one the agent reads now)."""
        prev = self.state_path.with_name("previous.json")
        prev.write_text(json.dumps(previous or self.state))
        cfg = render(self.controller, stream, self.ports, self.runtime_dir, previous=prev)
        state = json.loads(render(self.controller, stream, self.ports, self.runtime_dir,
                                  "--state-only", previous=prev))
        assert_loopback_only(cfg, state)
        return cfg, state

    def live_addresses(self, backend):
        """The address:port of every server of backend not in maintenance."""
        return sorted(a for a, maint, _ in self.servers()[backend].values() if not maint)

    def active_servers(self):
        """{backend: usable servers} from the Prometheus exporter."""
        status, body = http_get(self.metrics_port, "/metrics?scope=backend")
        assert status == 200, f"/metrics answered {status}"
        return {m.group(1): int(float(m.group(2))) for m in ACTIVE_SERVERS.finditer(body)}

    def wait_active(self, backend, want, deadline_s=MARK_DOWN_DEADLINE_S):
        """Seconds until backend has want usable servers; fails past the deadline."""
        start = time.monotonic()
        seen = None
        while time.monotonic() - start < deadline_s:
            seen = self.active_servers().get(backend)
            if seen == want:
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"{backend}: {seen} usable servers after {deadline_s} s, want {want}")

    @property
    def address(self):
        return ("127.0.0.1", self.proxy_port)


@contextlib.contextmanager
def running_haproxy(controller, stream, workdir, expect_up):
    """Renders the stream on free ports and runs haproxy and the agent until the block ends.

    Ports are picked free just before start; if another process takes one in
    between, haproxy fails to bind and we render again on new ports. Once
    ready (the agent has applied the state), it checks that every backend in
    expect_up ({backend: servers}) has all its servers up.
    """
    runtime_dir = tempfile.mkdtemp(prefix="kanary-dp-", dir="/tmp")
    try:
        for _ in range(5):
            ports = free_ports(4)
            cfg = render(controller, stream, ports, runtime_dir)
            state = json.loads(render(controller, stream, ports, runtime_dir, "--state-only"))
            assert state["structureHash"] == structure_hash(cfg)
            assert_loopback_only(cfg, state)
            haproxy = Haproxy(controller, cfg, state, ports, workdir, runtime_dir)
            try:
                if haproxy.start():
                    break
            except BaseException:
                haproxy.stop()
                raise
        else:
            raise AssertionError("haproxy could not bind free ports five times in a row")
        try:
            for backend, want in expect_up.items():
                haproxy.wait_active(backend, want, deadline_s=10)
            yield haproxy
        except BaseException:
            print(f"haproxy log (tail):\n{haproxy.log_tail()}\nagent log (tail):\n{haproxy.agent_log_tail()}")
            raise
        finally:
            haproxy.stop()
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)


# ---- the client ------------------------------------------------------------------


@dataclasses.dataclass
class Tally:
    """What the client saw: who answered each connection, and what failed."""

    answers: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    failures: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    elapsed: float = 0.0

    @property
    def sent(self):
        return sum(self.answers.values()) + sum(self.failures.values())

    @property
    def failed(self):
        return sum(self.failures.values())

    def merge(self, other):
        self.answers.update(other.answers)
        self.failures.update(other.failures)


def one_connection(address):
    """Opens one connection through haproxy and returns (pod name, None) or (None, why it failed)."""
    try:
        with socket.create_connection(address, timeout=CONNECT_TIMEOUT_S) as s:
            data = b""
            while len(data) < 1024:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
    except socket.timeout:
        return None, "timeout"
    except ConnectionRefusedError:
        return None, "refused"
    except ConnectionResetError:
        return None, "reset"
    except OSError as e:
        return None, errno.errorcode.get(e.errno, str(e))
    name = data.decode(errors="replace").strip()
    if not name:
        return None, "empty"
    return name, None


def drive(address, count=None, stop=None, deadline_s=CASE_DEADLINE_S, threads=CLIENT_THREADS):
    """count connections (or until stop is set) from a few threads; never past the deadline."""
    start = time.monotonic()
    deadline = start + deadline_s
    tallies = [Tally() for _ in range(threads)]

    def worker(i):
        quota = None if count is None else count // threads + (1 if i < count % threads else 0)
        t = tallies[i]
        while quota is None or t.sent < quota:
            if (stop is not None and stop.is_set()) or time.monotonic() > deadline:
                return
            name, why = one_connection(address)
            if name is None:
                t.failures[why] += 1
            else:
                t.answers[name] += 1

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(deadline_s + CONNECT_TIMEOUT_S + 5)
    total = Tally()
    for t in tallies:
        total.merge(t)
    total.elapsed = time.monotonic() - start
    if count is not None:
        assert total.sent == count, f"only {total.sent} of {count} connections within {deadline_s} s"
    return total


@contextlib.contextmanager
def background_load(address):
    """Client traffic from a background thread while the block runs; yields a holder of its Tally."""
    stop = threading.Event()
    result = {}

    def run():
        result["tally"] = drive(address, stop=stop, deadline_s=MARK_DOWN_DEADLINE_S + 10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join(MARK_DOWN_DEADLINE_S + CONNECT_TIMEOUT_S + 20)


# ---- reporting -------------------------------------------------------------------


def shares(tally, pods, services):
    """({service: % of answered connections}, {service: count}); None counts unknown answers."""
    per_service = collections.Counter()
    for name, n in tally.answers.items():
        per_service[pods.service_of(name)] += n
    served = sum(per_service.values())
    pct = {s: (100.0 * per_service[s] / served if served else 0.0) for s in services}
    if per_service[None]:
        pct[None] = 100.0 * per_service[None] / served
    return pct, per_service


def report(label, tally, pods, services):
    """Prints the measured split in one line (for the issue's closing note) and returns it."""
    pct, per_service = shares(tally, pods, services)
    split = " ".join(f"{s}={pct[s]:.2f}%" for s in services)
    why = f" {dict(tally.failures)}" if tally.failed else ""
    print(f"\n{label}: {split} over {tally.sent} connections, {tally.failed} failed{why}"
          f" ({tally.elapsed:.1f} s)")
    spread = []
    for s in services:
        counts = [tally.answers[p.name] for p in pods.pods.values() if p.service == s]
        if counts and per_service[s]:
            spread.append(f"{s} {len(counts)} pod{'s' if len(counts) > 1 else ''}"
                          f" {min(counts)}-{max(counts)} each")
    if spread:
        print("  per pod: " + ", ".join(spread))
    return pct


def assert_split(pct, routes, tally):
    """Each route within TOLERANCE_PP of its weight, nobody else answering, nothing failed."""
    assert None not in pct, f"answers from unknown pods: {tally.answers}"
    assert tally.failed == 0, f"{tally.failed} connections failed: {dict(tally.failures)}"
    for r in routes:
        assert abs(pct[r.service] - r.weight) <= TOLERANCE_PP, \
            f"{r.service}: {pct[r.service]:.2f}% for weight {r.weight}"


# ---- the cases -------------------------------------------------------------------


def start_pods(routes):
    """Pods for every route, route i on 127.0.<i+1>.x; the caller closes them."""
    pods = Pods()
    try:
        by_service = {r.service: pods.add_service(r.service, r.pods, i + 1) for i, r in enumerate(routes)}
        pods.start()
    except BaseException:
        pods.close()
        raise
    return pods, by_service


def measure_split(controller, tmp_path, label, routes):
    """Runs CONNECTIONS connections through haproxy for routes, all pods healthy, and checks the split."""
    pods, by_service = start_pods(routes)
    with pods:
        stream = healthy_stream(tmp_path / "stream.yaml", routes, by_service)
        expect = {f"route_{r.service}": r.pods for r in routes}
        with running_haproxy(controller, stream, tmp_path, expect) as hap:
            tally = drive(hap.address, CONNECTIONS)
        pct = report(label, tally, pods, [r.service for r in routes])
    return pct, tally


def test_split_80_20_with_3_vs_7_pods(controller, tmp_path):
    routes = [Route("myapp-v1", 80, 3), Route("myapp-v2", 20, 7, by_number=True)]
    pct, tally = measure_split(controller, tmp_path, "split 80/20 (3 vs 7 pods)", routes)
    assert_split(pct, routes, tally)


def test_split_50_30_20_with_2_3_4_pods(controller, tmp_path):
    routes = [Route("myapp-v1", 50, 2), Route("myapp-v2", 30, 3, port_name="tcp"),
              Route("myapp-v3", 20, 4, port_name="")]
    pct, tally = measure_split(controller, tmp_path, "split 50/30/20 (2, 3, 4 pods)", routes)
    assert_split(pct, routes, tally)


def test_split_99_1_with_1_vs_10_pods(controller, tmp_path):
    routes = [Route("myapp-v1", 99, 1), Route("myapp-v2", 1, 10)]
    pct, tally = measure_split(controller, tmp_path, "split 99/1 (1 vs 10 pods)", routes)
    assert_split(pct, routes, tally)


def test_weight_0_route_gets_no_connections(controller, tmp_path):
    routes = [Route("myapp-v1", 100, 2), Route("myapp-v2", 0, 2)]
    pct, tally = measure_split(controller, tmp_path, "split 100/0 (2 vs 2 pods)", routes)
    assert_split(pct, routes, tally)
    assert pct["myapp-v2"] == 0.0


def test_dead_route_loses_at_most_half_a_percent_once_checks_settle(controller, tmp_path):
    """All v2 pods die after haproxy started with them up; the fallback carries their share."""
    routes = [Route("myapp-v1", 80, 3), Route("myapp-v2", 20, 7)]
    services = [r.service for r in routes]
    label = "dead route 80/20 (3 vs 7 pods)"
    pods, by_service = start_pods(routes)
    with pods:
        stream = healthy_stream(tmp_path / "stream.yaml", routes, by_service)
        expect = {"route_myapp-v1": 3, "route_myapp-v2": 7}
        with running_haproxy(controller, stream, tmp_path, expect) as hap:
            pods.kill(by_service["myapp-v2"])
            # Connections sent between the kill and the checks' verdict: information only.
            with background_load(hap.address) as load:
                detect_s = hap.wait_active("route_myapp-v2", 0)
            window = load.get("tally") or Tally()
            print(f"\n{label}, v2 pods killed under load: route_myapp-v2 marked down after "
                  f"{detect_s:.2f} s; {window.sent} connections in that window, {window.failed} failed"
                  f" ({100.0 * window.failed / max(window.sent, 1):.2f}%) {dict(window.failures) or ''}")
            assert hap.active_servers().get("route_myapp-v1") == 3
            status, _ = http_get(hap.probe_port, "/ready")
            assert status == 200, "one route still has servers, so the proxy stays ready"
            tally = drive(hap.address, CONNECTIONS)
        pct = report(f"{label}, after checks settled", tally, pods, services)
    assert tally.failed <= DEAD_ROUTE_MAX_LOSS * tally.sent, \
        f"{tally.failed} of {tally.sent} connections failed: {dict(tally.failures)}"
    assert pct.get(None) is None, f"answers from unknown pods: {tally.answers}"
    assert pct["myapp-v1"] == 100.0


def test_dead_route_without_traffic_is_marked_down_by_health_checks(controller, tmp_path):
    """Active checks alone find dead pods; once every route is dead, /ready turns 503."""
    routes = [Route("myapp-v1", 80, 3), Route("myapp-v2", 20, 7)]
    label = "dead route 80/20 (3 vs 7 pods), no traffic"
    pods, by_service = start_pods(routes)
    with pods:
        stream = healthy_stream(tmp_path / "stream.yaml", routes, by_service)
        expect = {"route_myapp-v1": 3, "route_myapp-v2": 7}
        with running_haproxy(controller, stream, tmp_path, expect) as hap:
            timing = re.search(r"^\s*default-server\s+(.*)$", hap.cfg, re.M)
            pods.kill(by_service["myapp-v2"])
            detect_s = hap.wait_active("route_myapp-v2", 0)
            tally = drive(hap.address, CONNECTIONS // 2)
            pct = report(f"{label}: v2 marked down by health checks after {detect_s:.2f} s"
                         f" [{timing.group(1) if timing else '?'}]; then", tally, pods,
                         [r.service for r in routes])
            assert tally.failed == 0, f"{dict(tally.failures)}"
            assert pct["myapp-v1"] == 100.0
            pods.kill(by_service["myapp-v1"])
            all_dead_s = hap.wait_active("route_myapp-v1", 0)
            status, body = http_get(hap.probe_port, "/ready")
            print(f"  every route dead: marked down after {all_dead_s:.2f} s, /ready answers {status} {body.strip()}")
            assert status == 503


def test_not_ready_and_terminating_endpoints_never_reach_haproxy_nor_get_traffic(controller, tmp_path):
    """Only ready, non-terminating endpoints (or ones with no conditions) fill slots.

    Every endpoint here is a live listener, so if one leaked into the state or
    into haproxy it would answer traffic or at least see health checks.
    """
    routes = [Route("myapp-v1", 50, 6), Route("myapp-v2", 50, 3)]
    pods, by_service = start_pods(routes)
    with pods:
        v1, v2 = by_service["myapp-v1"], by_service["myapp-v2"]
        conditions_v1 = [READY,
                         {"ready": False, "serving": False, "terminating": False},  # not ready
                         {"ready": False, "serving": True, "terminating": True},    # draining
                         None,                                                      # no conditions
                         {"ready": True, "serving": True, "terminating": True},     # terminating wins
                         {}]                                                        # empty: ready
        conditions_v2 = [{"ready": True},
                         {"ready": False},
                         {"terminating": True}]
        usable = {v1[0], v1[3], v1[5], v2[0]}
        docs = [kanary_doc(routes),
                service_doc("myapp-v1", "http", v1[0].port), service_doc("myapp-v2", "http", v2[0].port),
                # myapp-v1 spread over two slices, as the EndpointSlice controller does past 100 endpoints.
                slice_doc("myapp-v1", "aaaaa", "http", v1[0].port,
                          [endpoint(p, c) for p, c in zip(v1[:3], conditions_v1[:3])]),
                slice_doc("myapp-v1", "bbbbb", "http", v1[0].port,
                          [endpoint(p, c) for p, c in zip(v1[3:], conditions_v1[3:])]),
                slice_doc("myapp-v2", "ccccc", "http", v2[0].port,
                          [endpoint(p, c) for p, c in zip(v2, conditions_v2)])]
        stream = write_stream(tmp_path / "stream.yaml", docs)
        expect = {"route_myapp-v1": 3, "route_myapp-v2": 1}
        with running_haproxy(controller, stream, tmp_path, expect) as hap:
            cfg, state = hap.cfg, json.dumps(hap.state)
            live = {b: hap.live_addresses(b) for b in ("route_myapp-v1", "route_myapp-v2", "fallback")}
            tally = drive(hap.address, CONNECTIONS // 2)
        print(f"\nnot-ready/terminating 50/50: {len(usable)} of {len(pods.pods)} endpoints usable;"
              " connections accepted per pod (health checks included): "
              + " ".join(f"{p.name}={p.accepted}{'' if p in usable else ' (excluded)'}"
                         for p in pods.pods.values()))
        report("not-ready/terminating 50/50 (3 of 6 vs 1 of 3 pods usable)", tally, pods,
               [r.service for r in routes])

        for backend, want in (("route_myapp-v1", [v1[0], v1[3], v1[5]]), ("route_myapp-v2", [v2[0]])):
            assert live[backend] == sorted(f"{p.address}:{p.port}" for p in want), \
                f"{backend} servers in haproxy: {live[backend]}"
        assert live["fallback"] == sorted(f"{p.address}:{p.port}" for p in usable), \
            f"fallback servers in haproxy: {live['fallback']}"
        for pod in pods.pods.values():
            if pod in usable:
                continue
            # Not in the structure, not in the state.
            for text, what in ((cfg, "config"), (state, "state")):
                assert not re.search(rf"(?<![\d.]){re.escape(pod.address)}(?![\d])", text), \
                    f"{pod.name} ({pod.address}) is in the {what}"
            assert pod.accepted == 0, f"{pod.name} ({pod.address}) got {pod.accepted} connections"
            assert tally.answers[pod.name] == 0
        assert tally.failed == 0, f"{dict(tally.failures)}"
        assert sum(tally.answers.values()) == tally.sent


def test_connection_where_only_the_server_speaks_is_logged(controller, tmp_path):
    """A server-speaks-first protocol (SMTP, MySQL): the client sends nothing, and yet
    haproxy writes the connection's log line. `option dontlognull` would drop it, as it
    drops every connection whose client sent no data."""
    routes = [Route("myapp-v1", 100, 1)]
    count = 20
    pods, by_service = start_pods(routes)
    with pods:
        stream = healthy_stream(tmp_path / "stream.yaml", routes, by_service)
        with running_haproxy(controller, stream, tmp_path, {"route_myapp-v1": 1}) as hap:
            assert "dontlognull" not in hap.cfg
            clients = []
            for _ in range(count):
                # The pod writes its name first and closes; the client only reads.
                with socket.create_connection(hap.address, timeout=CONNECT_TIMEOUT_S) as s:
                    clients.append(s.getsockname()[1])
                    greeting = s.recv(256)
                assert greeting == b"myapp-v1-pod0\n", f"greeting {greeting!r}"
            # One tcplog line per connection, "<client ip>:<port> [date] fe_main route/server ...",
            # written when the connection ends.
            deadline = time.monotonic() + 10
            while True:
                log = hap.log_path.read_text(errors="replace")
                logged = {int(m.group(1)) for m in
                          re.finditer(r"^127\.0\.0\.1:(\d+) \[[^\]]*\] fe_main route_myapp-v1/", log, re.M)}
                missing = [port for port in clients if port not in logged]
                if not missing or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
    print(f"\nserver speaks first, client sends nothing: {count - len(missing)} of {count}"
          " connections in haproxy's log")
    assert not missing, f"no log line for the connections from ports {missing}:\n{hap.log_tail()}"


# ---- the agent puts the state into a restarted haproxy ---------------------------------


def wait_probe_answers(hap, path):
    """(status, body) of the first answer of haproxy's probe listener to GET path."""
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        try:
            return http_get(hap.probe_port, path, timeout=1)
        except (OSError, http.client.HTTPException) as e:
            assert time.monotonic() < deadline, \
                f"haproxy's probe port answered nothing within {READY_DEADLINE_S} s ({e}):\n{hap.log_tail()}"
            time.sleep(0.05)


def test_haproxy_restart_gets_the_whole_state_again(controller, tmp_path):
    """haproxy restarts with empty slots and /ready 503 ("no-state"), and stays so while
    no agent runs; the agent started beside it puts the whole state in and /ready turns
    200. Restarted again under a running agent, haproxy gets the state on the agent's
    next pass, and the split is the state's."""
    routes = [Route("myapp-v1", 80, 3), Route("myapp-v2", 20, 2)]
    pods, by_service = start_pods(routes)
    with pods:
        stream = healthy_stream(tmp_path / "stream.yaml", routes, by_service)
        with running_haproxy(controller, stream, tmp_path, {"route_myapp-v1": 3, "route_myapp-v2": 2}) as hap:
            # No agent: a new haproxy has no state and must not say it is ready.
            stop_process(hap.agent)
            assert hap.agent.returncode == 0, f"the agent exited with {hap.agent.returncode}"
            stop_process(hap.proc)
            assert hap.start_haproxy(), "haproxy could not bind its ports again"
            first = wait_probe_answers(hap, "/ready")
            assert first == (503, "no-state"), f"/ready before any state: {first}"
            # Its admin socket and probe are up, and still no agent: nothing changes that.
            assert "route_myapp-v1" not in admin(hap.socket, "show map /dev/null")
            assert not hap.live_addresses("route_myapp-v1"), "slots in use without an agent"
            again = http_get(hap.probe_port, "/ready")
            assert again == (503, "no-state"), f"/ready with no agent running: {again}"
            start = time.monotonic()
            hap.start_agent()
            hap.wait_ready()
            first_state_s = time.monotonic() - start
            assert http_get(hap.probe_port, "/ready") == (200, "ready")
            # Restarted under the running agent: it puts the state in on its next pass.
            stop_process(hap.proc)
            start = time.monotonic()
            assert hap.start_haproxy(), "haproxy could not bind its ports again"
            hap.wait_ready()
            ready_s = time.monotonic() - start
            assert hap.live_addresses("route_myapp-v1") == sorted(
                f"{p.address}:{p.port}" for p in by_service["myapp-v1"])
            tally = drive(hap.address, CONNECTIONS)
        print(f"\nhaproxy restarted without its agent: /ready {first[0]} {first[1]!r} at its first answer, and"
              f" again with the map and slots seen empty; the agent started then made it ready in {first_state_s:.2f} s;"
              f" restarted under the running agent: ready with the whole state again {ready_s:.2f} s after"
              " its start")
        pct = report("after the restart", tally, pods, [r.service for r in routes])
    assert_split(pct, routes, tally)
