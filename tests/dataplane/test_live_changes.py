# SPDX-License-Identifier: Apache-2.0
"""Live changes through the whole data path: the API server, the agent, haproxy, pods in a namespace.

tests/cluster/up starts etcd and kube-apiserver (no node). Each case writes
the state ConfigMap the controller keeps (`<name>-haproxy-state`, key
state.json), its content rendered by `kanary-controller
render --state-only --previous-state` from a Kanary, its Services and
EndpointSlices, exactly as the controller's reconcile computes it. The agent,
`kanary-controller agent --state-configmap`, runs on the host beside the real
haproxy (master-worker, on the rendered structure) and watches that ConfigMap
with a ServiceAccount token whose Role may get, list and watch that one
ConfigMap and nothing else (tests/cluster/sa-kubeconfig).

The first state is created with `kubectl apply`; every later one replaces
it with one PUT of the whole ConfigMap, made from this process with the
admin certificate, so the timings start when the write starts and do not
include kubectl's start-up.

The pods are listeners in a network namespace the test creates
(backendnet.py: `kny-dp-<pid>`, a veth pair, a free /24 of 10.248.0.0/16
routed only through the veth); haproxy on the host reaches them across the
veth, and each answers every connection with its name.

Each case prints its figures (`pytest -s`) and asserts:
- weights 80/20 -> 50/50: haproxy's master and worker PIDs unchanged, no
  failed connection under a constant stream, the split within TOLERANCE_PP
  of the new weights;
- a route's endpoints 3 -> 10 -> 2 under a constant stream: no failed
  connection, every new endpoint serves connections within
  NEW_ENDPOINT_DEADLINE_S (1 s, the issue's bound) of the start of the
  ConfigMap write (each time is printed), the removed ones take no new
  connection, PIDs unchanged;
- the agent restarted alone: stopped, a state with new weights and
  endpoints written while it is away, started again: it applies that state
  (its applied generation), the split follows, no connection of a constant
  stream fails, haproxy's PIDs unchanged; restarted with the state unchanged,
  it applies nothing (kanary_agent_applies_total 0, only read-back commands);
- a route added is a new structure: the running agent refuses the state
  computed for it (the split in force stays), and a new haproxy and agent on
  the new structure (the pod roll) apply that same ConfigMap.

Needs root for the namespace, and fails with the reason otherwise (meson
would count a run that skipped every case as passed).
"""

import contextlib
import http.client
import ipaddress
import json
import os
import pathlib
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
sys.path.insert(0, str(HERE))
import backendnet  # noqa: E402
import test_dataplane as dp  # noqa: E402
from kanarytest import Commands, unwind_on_sigterm  # noqa: E402
from test_dataplane import Route, controller  # noqa: E402,F401 (the fixture)

unwind_on_sigterm()

CLUSTER = HERE.parent / "cluster"
KANARY = "myapp-split"
STATE_CM = KANARY + "-haproxy-state"
# How often the time to a new endpoint's first connection is sampled (show stat).
SAMPLE_S = 0.02
# Issue #13: "a new ready pod gets traffic within a second of its EndpointSlice saying so".
# Measured 0.03-0.11 s from the start of the state write here (HAProxy 2.6 and 3.0), so the
# bound has 9-33x headroom; it is the acceptance criterion itself, not a benchmark (bench/).
NEW_ENDPOINT_DEADLINE_S = 1.0
REJECTED = re.compile(r'^kanary_agent_states_rejected_total\{reason="structure"\} (\d+)$', re.M)


# ---- the cluster, the agent's least privilege, the pods' namespace ------------------


@pytest.fixture(scope="module")
def net():
    why = backendnet.why_not_root()
    if why:
        # Not a skip: meson counts a run whose every case was skipped as passed.
        pytest.fail(f"the live changes cannot run: {why}")
    n = backendnet.BackendNet()
    n.open()
    print(f"\npods in network namespace {n.netns} on {n.subnet}, host end {n.veth} {n.host_address}")
    try:
        yield n
    finally:
        n.close()
        assert not n.leftovers(), f"left on the host: {n.leftovers()}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, net):
    state = tmp_path_factory.mktemp("cluster") / "state"
    try:
        up = subprocess.run([str(CLUSTER / "up"), "--state-dir", str(state), "--controllers",
                             "serviceaccount-controller"],
                            stdout=subprocess.PIPE, text=True, timeout=1800)
        assert up.returncode == 0, f"tests/cluster/up failed (exit {up.returncode})"
        env = subprocess.run(["bash", "-c", 'eval "$1" && env -0', "bash", up.stdout],
                             capture_output=True, check=True, text=True).stdout
        yield Commands(dict(kv.split("=", 1) for kv in env.split("\0") if "=" in kv))
    finally:
        if state.exists():
            subprocess.run([str(CLUSTER / "down"), str(state)], stdout=subprocess.PIPE, timeout=120)


def state_configmap(ns, state):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": STATE_CM, "namespace": ns,
                         "labels": {"app.kubernetes.io/managed-by": "kanary", "kanary.pyxida.io/name": KANARY}},
            "data": {"state.json": json.dumps(state)}}


def least_privilege(ns):
    """The agent's ServiceAccount, and a Role that reads the state ConfigMap and nothing else."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "agent", "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "agent", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [STATE_CM],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "agent", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "agent"},
         "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": ns}]},
    ]


@pytest.fixture
def agent_account(cluster, tmp_path):
    """(namespace, kubeconfig): a fresh namespace and the agent's least-privilege token in it."""
    ns = "dp-live-" + os.urandom(3).hex()
    cluster.kubectl("create", "namespace", ns)
    try:
        cluster.kubectl("apply", "-f", "-",
                        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": least_privilege(ns)}))
        kubeconfig = tmp_path / "agent.kubeconfig"
        cluster.run(str(CLUSTER / "sa-kubeconfig"), "-n", ns, "-o", kubeconfig, "agent")
        yield ns, kubeconfig
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


class NamespacedPods(dp.Pods):
    """dp.Pods whose listeners are made inside the network namespace, on its addresses."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def add_service(self, service, count, subnet):
        addresses = self.net.take(count)
        socks, port = self.net.inside(lambda: dp.bind_same_port(addresses))
        pods = []
        for i, (address, sock) in enumerate(zip(addresses, socks)):
            pod = dp.Pod(service, f"{service}-pod{i}", address, port, sock)
            self.pods[pod.name] = pod
            pods.append(pod)
        return pods


def start_pods(net, routes):
    pods = NamespacedPods(net)
    try:
        by_service = {r.service: pods.add_service(r.service, r.pods, i) for i, r in enumerate(routes)}
        pods.start()
    except BaseException:
        pods.close()
        raise
    return pods, by_service


def assert_inside(net, cfg, state):
    """Every endpoint in the namespace's /24, every slot placeholder on loopback, every bind
    on 127.0.0.1: nothing this test runs may reach another machine."""
    for route in state["routes"]:
        for ep in route["endpoints"]:
            assert ipaddress.ip_address(ep["address"]) in net.subnet, \
                f"{route['backend']}: endpoint {ep['address']} outside {net.subnet}"
    for backend, servers in dp.servers_by_backend(cfg).items():
        for name, address, _, _ in servers:
            a = ipaddress.ip_address(address.strip("[]"))
            assert a.is_loopback or a in net.subnet, f"{backend}/{name} points at {address}"
    for m in re.finditer(r"^\s*bind\s+(\S+)", cfg, re.M):
        assert m.group(1).startswith("127.0.0.1:"), f"haproxy would bind {m.group(1)}"


# ---- haproxy and the agent watching the API server ----------------------------------


class StateWriter:
    """Replaces the state ConfigMap with one PUT to the API server, as the admin of
    tests/cluster/up (its client certificate)."""

    def __init__(self, cluster):
        pki = pathlib.Path(cluster.env["KANARY_CLUSTER_DIR"]) / "pki"
        self.server = urllib.parse.urlsplit(cluster.env["KANARY_API_SERVER"])
        self.ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        self.ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def put(self, ns, state):
        """The seconds from the start of the request to the API server's 200 (it has stored it)."""
        start = time.monotonic()
        conn = http.client.HTTPSConnection(self.server.hostname, self.server.port, context=self.ctx, timeout=30)
        try:
            conn.request("PUT", f"/api/v1/namespaces/{ns}/configmaps/{STATE_CM}",
                         body=json.dumps(state_configmap(ns, state)),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read().decode(errors="replace")
        finally:
            conn.close()
        assert resp.status == 200, f"PUT configmap/{STATE_CM}: {resp.status} {body}"
        return time.monotonic() - start


class WatchingHaproxy(dp.Haproxy):
    """haproxy with the agent watching the state ConfigMap; a new state is a PUT of it."""

    def __init__(self, controller, cfg, state, ports, workdir, runtime_dir, cluster, account, net):
        super().__init__(controller, cfg, state, ports, workdir, runtime_dir)
        self.cluster = cluster
        self.writer = StateWriter(cluster)
        self.namespace, self.kubeconfig = account
        self.net = net

    def start_agent(self):
        with open(self.agent_log_path, "ab") as log:
            self.agent = subprocess.Popen(
                [self.controller, "agent", "--kanary", KANARY, "--namespace", self.namespace,
                 "--state-configmap", STATE_CM, "--kubeconfig", str(self.kubeconfig),
                 "--socket", self.socket, "--config", str(self.cfg_path), "--interval", "1s",
                 "--metrics-bind", f"127.0.0.1:{self.agent_port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def create(self, state):
        """Creates (or replaces) the state ConfigMap with kubectl apply."""
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(state_configmap(self.namespace, state)))

    def write(self, state):
        """Replaces the state ConfigMap; the seconds the PUT took."""
        return self.writer.put(self.namespace, state)

    def apply(self, state):
        """Replaces the state ConfigMap and waits until the agent reports that generation read back:
        (seconds the PUT took, seconds from its answer to the read-back)."""
        self.state = state
        put_s = self.write(state)
        return put_s, self.wait_applied(state["generation"])

    def applied_generation(self):
        m = dp.AGENT_APPLIED.search(self.agent_metrics())
        return int(m.group(1)) if m else None

    def agent_counters(self):
        """{metric name: value} of the agent's unlabelled series, from one scrape."""
        return {m.group(1): int(float(m.group(2)))
                for m in re.finditer(r"^(kanary_agent_[a-z_]+) (\S+)$", self.agent_metrics(), re.M)}

    def wait_new_agent_applied(self, generation):
        """Waits until a just started agent serves /metrics and reports generation read back;
        its counters then."""
        deadline = time.monotonic() + dp.READY_DEADLINE_S
        seen = None
        while True:
            assert self.agent.poll() is None, \
                f"the agent exited with {self.agent.returncode}:\n{self.agent_log_tail()}"
            try:
                counters = self.agent_counters()
                seen = counters.get("kanary_agent_applied_generation")
                if seen == generation:
                    return counters
            except (OSError, http.client.HTTPException, AssertionError):
                pass  # its metrics listener is not up yet
            assert time.monotonic() < deadline, \
                f"the restarted agent applied generation {seen} after {dp.READY_DEADLINE_S} s," \
                f" want {generation}:\n{self.agent_log_tail()}"
            time.sleep(SAMPLE_S)

    def rendered(self, stream, previous=None):
        prev = self.state_path.with_name("previous.json")
        prev.write_text(json.dumps(previous or self.state))
        cfg = dp.render(self.controller, stream, self.ports, self.runtime_dir, previous=prev)
        state = json.loads(dp.render(self.controller, stream, self.ports, self.runtime_dir,
                                     "--state-only", previous=prev))
        assert_inside(self.net, cfg, state)
        return cfg, state

    def stop_agent(self):
        """Stops the agent with SIGTERM and checks that it exits 0, as it must (under ASan
        and UBSan too: an error or a leak at exit would change the status)."""
        dp.stop_process(self.agent)
        assert self.agent.returncode == 0, \
            f"the agent exited with {self.agent.returncode} on SIGTERM:\n{self.agent_log_tail()}"

    def roll(self, cfg):
        """The pod roll of a structural change: a new haproxy on cfg and a new agent beside it,
        which reads the state ConfigMap as it is."""
        self.stop_agent()
        self.stop()
        self.cfg = cfg
        self.cfg_path.write_text(cfg)
        dp.haproxy_check(self.cfg_path)
        assert self.start_haproxy(), "haproxy could not bind its ports again"
        self.start_agent()
        self.wait_ready()


@contextlib.contextmanager
def running_haproxy(controller, stream, workdir, expect_up, cluster, account, net):
    """As dp.running_haproxy, the first state written to the ConfigMap before the agent starts."""
    runtime_dir = tempfile.mkdtemp(prefix="kanary-dp-", dir="/tmp")
    hap = None
    try:
        for _ in range(5):
            ports = dp.free_ports(4)
            cfg = dp.render(controller, stream, ports, runtime_dir)
            state = json.loads(dp.render(controller, stream, ports, runtime_dir, "--state-only"))
            assert state["structureHash"] == dp.structure_hash(cfg)
            assert_inside(net, cfg, state)
            hap = WatchingHaproxy(controller, cfg, state, ports, workdir, runtime_dir, cluster, account, net)
            hap.create(state)
            if hap.start():
                break
            hap.stop()
        else:
            raise AssertionError("haproxy could not bind free ports five times in a row")
        for backend, want in expect_up.items():
            hap.wait_active(backend, want, deadline_s=10)
        yield hap
        log = hap.agent_log_path.read_text(errors="replace")
        assert " 403" not in log and "orbidden" not in log, f"the agent was refused:\n{log}"
        assert "kanary_agent_apply_errors_total 0" in hap.agent_metrics()
        hap.stop_agent()
        net.check_routes()
    except BaseException:
        if hap:
            print(f"haproxy log (tail):\n{hap.log_tail()}\nagent log (tail):\n{hap.agent_log_tail()}")
        raise
    finally:
        if hap:
            hap.stop()
        shutil.rmtree(runtime_dir, ignore_errors=True)


# ---- the cases ----------------------------------------------------------------------------


def test_weights_80_20_to_50_50_written_to_the_configmap(controller, cluster, agent_account, net, tmp_path):
    """A weight change is a new state, not a new structure: the agent's watch sees the
    ConfigMap change, it replaces the route map atomically, haproxy's master and worker
    stay, no connection fails, and the split follows."""
    ns, kubeconfig = agent_account
    auth = cluster.env | {"KUBECONFIG": str(kubeconfig)}
    for verb, what, want in (("watch", f"configmap/{STATE_CM}", "yes"), ("list", "configmaps", "no"),
                             ("get", "secrets", "no")):
        got = cluster.kubectl("auth", "can-i", verb, what, "-n", ns, env=auth, check=False).stdout.strip()
        assert got == want, f"the agent's token: can-i {verb} {what} is {got}, want {want}"

    before = [Route("myapp-v1", 80, 3), Route("myapp-v2", 20, 3)]
    after = [Route("myapp-v1", 50, 3), Route("myapp-v2", 50, 3)]
    services = [r.service for r in after]
    pods, by_service = start_pods(net, before)
    with pods:
        stream = dp.healthy_stream(tmp_path / "stream.yaml", before, by_service)
        with running_haproxy(controller, stream, tmp_path, {"route_myapp-v1": 3, "route_myapp-v2": 3},
                             cluster, agent_account, net) as hap:
            pids = hap.pids()
            tally = dp.drive(hap.address, dp.CONNECTIONS)
            pct = dp.report("ConfigMap state 80/20, pods in the namespace", tally, pods, services)
            dp.assert_split(pct, before, tally)
            cfg, state = hap.rendered(dp.healthy_stream(tmp_path / "stream-50.yaml", after, by_service))
            assert state["generation"] == 2
            assert cfg == hap.cfg, "a weight change must not change the structure"
            with dp.background_load(hap.address) as load:
                hap.wait_sessions(1000)
                put_s, applied_s = hap.apply(state)
                hap.wait_sessions(1000)
            stream_tally = load.get("tally") or dp.Tally()
            after_pids = hap.pids()
            assert dp.admin(hap.socket, "show map /dev/null").count("route_myapp-") == 2
            tally = dp.drive(hap.address, dp.CONNECTIONS)
        print(f"\nConfigMap weights 80/20 -> 50/50: the PUT took {put_s:.3f} s, the agent read the"
              f" new split back {applied_s:.3f} s after its answer; {stream_tally.sent} connections during"
              f" the change, {stream_tally.failed} failed; master and worker PIDs {pids} before, {after_pids}"
              " after")
        pct = dp.report("after the ConfigMap's 80/20 -> 50/50", tally, pods, services)
    assert after_pids == pids, "haproxy's master or worker changed"
    assert stream_tally.failed == 0, f"{dict(stream_tally.failures)}"
    assert stream_tally.sent >= 2000
    dp.assert_split(pct, after, tally)


def test_endpoints_3_to_10_to_2_written_to_the_configmap(controller, cluster, agent_account, net, tmp_path):
    """A route's endpoints 3 -> 10 -> 2 fill and empty slots of one structure: every new
    endpoint gets connections (how long after the ConfigMap write is printed), the
    removed ones get none, and no connection fails under the constant stream."""
    routes = [Route("myapp-v1", 50, 10), Route("myapp-v2", 50, 2)]
    pods, by_service = start_pods(net, routes)
    v1 = by_service["myapp-v1"]

    def stream_with(n, name):
        return dp.healthy_stream(tmp_path / name, routes, dict(by_service, **{"myapp-v1": v1[:n]}))

    with pods:
        with running_haproxy(controller, stream_with(3, "stream-3.yaml"), tmp_path,
                             {"route_myapp-v1": 3, "route_myapp-v2": 2}, cluster, agent_account, net) as hap:
            pids = hap.pids()
            cfg10, state10 = hap.rendered(stream_with(10, "stream-10.yaml"))
            cfg2, state2 = hap.rendered(stream_with(2, "stream-2.yaml"), state10)
            assert (state10["generation"], state2["generation"]) == (2, 3)
            assert cfg10 == hap.cfg and cfg2 == hap.cfg, "3 -> 10 -> 2 endpoints must fit the slots"
            new = {f"{p.address}:{p.port}": p for p in v1[3:]}
            with dp.background_load(hap.address) as load:
                hap.wait_sessions(500)
                # Timed from the start of the PUT (an upper bound: the API server stored the
                # state somewhere within put10_s): poll haproxy's per-slot session counters for
                # each new endpoint's first connection, and the agent's read-back, until every
                # new endpoint has served.
                written = time.monotonic()
                put10_s = hap.write(state10)
                hap.state = state10
                first, applied10_s = {}, None
                while len(first) < len(new) or applied10_s is None:
                    assert time.monotonic() - written < dp.READY_DEADLINE_S, \
                        f"not served after {dp.READY_DEADLINE_S} s: {sorted(set(new) - set(first))}" \
                        f" (agent applied {hap.applied_generation()})\n{hap.agent_log_tail()}"
                    now = time.monotonic() - written
                    for address, n in sessions(hap).items():
                        if address in new and n > 0 and address not in first:
                            first[address] = now
                    if applied10_s is None and hap.applied_generation() == 2:
                        applied10_s = time.monotonic() - written
                    time.sleep(SAMPLE_S)
                assert hap.live_addresses("route_myapp-v1") == sorted(f"{p.address}:{p.port}" for p in v1)
                hap.wait_sessions(1000)
                put2_s, applied2_s = hap.apply(state2)
                kept = {f"{p.address}:{p.port}" for p in v1[:2]}
                assert hap.live_addresses("route_myapp-v1") == sorted(kept)
                removed = {f"{p.address}:{p.port}" for p in v1[2:]}
                drained = {a: n for a, n in sessions(hap).items() if a in removed}
                hap.wait_sessions(2000)
                later = sessions(hap)
            stream_tally = load.get("tally") or dp.Tally()
            after_pids = hap.pids()
        slowest = max(first.values())
        print(f"\nConfigMap endpoints 3 -> 10: from the start of the PUT (answered after {put10_s:.3f} s),"
              f" the agent read generation 2 back at {applied10_s:.2f} s and each new endpoint had its first"
              f" connection at (s, sampled every {SAMPLE_S:.2f} s): "
              + ", ".join(f"{new[a].name} {t:.2f}" for a, t in sorted(first.items(), key=lambda x: x[1]))
              + f"; slowest {slowest:.2f} s, {'within' if slowest <= NEW_ENDPOINT_DEADLINE_S else 'NOT within'}"
              f" {NEW_ENDPOINT_DEADLINE_S:.0f} s")
        print(f"ConfigMap endpoints 10 -> 2: the PUT took {put2_s:.3f} s, read back {applied2_s:.3f} s"
              f" after; {stream_tally.sent} connections during 3 -> 10 -> 2, {stream_tally.failed} failed;"
              f" master and worker PIDs {pids} before, {after_pids} after")
        dp.report("during 3 -> 10 -> 2", stream_tally, pods, [r.service for r in routes])
    assert after_pids == pids, "haproxy's master or worker changed"
    assert stream_tally.failed == 0, f"{dict(stream_tally.failures)}"
    for p in new.values():
        assert stream_tally.answers[p.name] > 0, f"{p.name} in the namespace answered no connection"
    late = {new[a].name: round(t, 3) for a, t in first.items() if t > NEW_ENDPOINT_DEADLINE_S}
    assert not late, f"new endpoints first served later than {NEW_ENDPOINT_DEADLINE_S} s after the write: {late}"
    assert len(drained) == 8
    for address, n in drained.items():
        assert later[address] == n, f"{address} got {later[address] - n} connections after it was removed"


def sessions(hap):
    """{address:port: sessions} of route_myapp-v1's slots (a slot's counter covers every endpoint it held)."""
    return {a: n for a, _, n in hap.servers()["route_myapp-v1"].values()}


def test_route_added_is_refused_by_the_running_agent_and_rolls(controller, cluster, agent_account, net, tmp_path):
    """Adding a route changes the structure hash: the agent of the running haproxy counts
    the state written for it and keeps the split in force; the new pod (haproxy on the new
    structure, a new agent) applies that same ConfigMap."""
    routes = [Route("myapp-v1", 50, 2), Route("myapp-v2", 50, 2)]
    grown = [Route("myapp-v1", 50, 2), Route("myapp-v2", 30, 2), Route("myapp-v3", 20, 2)]
    services = [r.service for r in grown]
    pods, by_service = start_pods(net, grown)
    with pods:
        stream = dp.healthy_stream(tmp_path / "stream.yaml", routes, by_service)
        with running_haproxy(controller, stream, tmp_path, {"route_myapp-v1": 2, "route_myapp-v2": 2},
                             cluster, agent_account, net) as hap:
            old_hash, old_pids = dp.structure_hash(hap.cfg), hap.pids()
            cfg3, state3 = hap.rendered(dp.healthy_stream(tmp_path / "stream-3.yaml", grown, by_service))
            assert state3["structureHash"] == dp.structure_hash(cfg3) != old_hash
            assert state3["generation"] == 2
            # 17 endpoints outgrow a route's 16 slots: another structure too.
            many = [dict(address=a, port=by_service["myapp-v1"][0].port) for a in net.take(17)]
            docs = [dp.kanary_doc(routes), dp.service_doc("myapp-v1", "http", many[0]["port"]),
                    dp.service_doc("myapp-v2", "http", by_service["myapp-v2"][0].port),
                    dp.slice_doc("myapp-v1", "abcde", "http", many[0]["port"],
                                 [{"addresses": [m["address"]]} for m in many]),
                    dp.slice_doc("myapp-v2", "abcde", "http", by_service["myapp-v2"][0].port,
                                 [dp.endpoint(p) for p in by_service["myapp-v2"]])]
            cfg17, _ = hap.rendered(dp.write_stream(tmp_path / "stream-17.yaml", docs))
            assert dp.structure_hash(cfg17) not in (old_hash, dp.structure_hash(cfg3))
            hap.write(state3)
            deadline = time.monotonic() + dp.READY_DEADLINE_S
            while True:
                m = REJECTED.search(hap.agent_metrics())
                if m and int(m.group(1)) >= 1:
                    break
                assert time.monotonic() < deadline, f"the agent did not refuse the state:\n{hap.agent_log_tail()}"
                time.sleep(SAMPLE_S)
            assert hap.applied_generation() == 1
            tally = dp.drive(hap.address, dp.CONNECTIONS)
            pct_old = dp.report("new structure's state refused, the split in force", tally, pods, services)
            dp.assert_split(pct_old, routes + [Route("myapp-v3", 0, 2)], tally)

            hap.roll(cfg3)
            hap.wait_active("route_myapp-v3", 2, deadline_s=10)
            assert hap.applied_generation() == 2
            new_pids = hap.pids()
            tally = dp.drive(hap.address, dp.CONNECTIONS)
        print(f"\nroute added: structure {old_hash} -> {dp.structure_hash(cfg3)} (17 endpoints in 16 slots:"
              f" {dp.structure_hash(cfg17)}); the running agent refused"
              f" the ConfigMap's state for it (rejected{{reason=structure}} >= 1, generation 1 still applied);"
              f" rolled: PIDs {old_pids} -> {new_pids}, the new agent applied generation 2")
        pct = dp.report("after the roll to 50/30/20", tally, pods, services)
    dp.assert_split(pct, grown, tally)


def test_agent_restarted_alone_applies_the_state_written_while_it_was_away(
        controller, cluster, agent_account, net, tmp_path):
    """The agent restarts alone (a crash, an OOM kill, a new image of the sidecar) while
    haproxy goes on: a state with new weights and endpoints written while it was away is
    applied by the new agent from the ConfigMap, haproxy's master and worker stay, and no
    connection of a constant stream fails. Restarted again with the state unchanged, the
    agent reads haproxy back and changes nothing."""
    before = [Route("myapp-v1", 80, 3), Route("myapp-v2", 20, 3)]
    after = [Route("myapp-v1", 50, 5), Route("myapp-v2", 50, 2)]
    services = [r.service for r in after]
    pods, by_service = start_pods(net, [after[0], before[1]])
    v1, v2 = by_service["myapp-v1"], by_service["myapp-v2"]

    def stream_with(routes, n1, n2, name):
        return dp.healthy_stream(tmp_path / name, routes, {"myapp-v1": v1[:n1], "myapp-v2": v2[:n2]})

    with pods:
        with running_haproxy(controller, stream_with(before, 3, 3, "stream-before.yaml"), tmp_path,
                             {"route_myapp-v1": 3, "route_myapp-v2": 3}, cluster, agent_account, net) as hap:
            pids = hap.pids()
            cfg2, state2 = hap.rendered(stream_with(after, 5, 2, "stream-after.yaml"))
            assert state2["generation"] == 2
            assert cfg2 == hap.cfg, "new weights and 5 and 2 endpoints must fit the structure"
            removed = f"{v2[2].address}:{v2[2].port}"
            with dp.background_load(hap.address) as load:
                hap.wait_sessions(500)
                hap.stop_agent()
                # Written while no agent runs: haproxy goes on with the state in force.
                hap.write(state2)
                hap.state = state2
                hap.wait_sessions(500)
                assert hap.live_addresses("route_myapp-v1") == sorted(f"{p.address}:{p.port}" for p in v1[:3])
                start = time.monotonic()
                hap.start_agent()
                changed = hap.wait_new_agent_applied(2)
                applied_s = time.monotonic() - start
                assert hap.live_addresses("route_myapp-v1") == sorted(f"{p.address}:{p.port}" for p in v1)
                assert hap.live_addresses("route_myapp-v2") == sorted(f"{p.address}:{p.port}" for p in v2[:2])
                drained = sessions_of(hap, "route_myapp-v2")[removed]
                hap.wait_sessions(1000)
                drained_later = sessions_of(hap, "route_myapp-v2")[removed]
            stream_tally = load.get("tally") or dp.Tally()
            tally = dp.drive(hap.address, dp.CONNECTIONS)
            after_pids = hap.pids()

            # Restarted with the state unchanged: read back, nothing to send.
            hap.stop_agent()
            log_before = len(hap.agent_log_path.read_bytes())
            hap.start_agent()
            unchanged = hap.wait_new_agent_applied(2)
            # A few more passes (--interval 1s), each only reading back.
            deadline = time.monotonic() + dp.READY_DEADLINE_S
            while unchanged["kanary_agent_commands_total"] < 6:
                assert time.monotonic() < deadline, f"the agent made no 3 passes: {unchanged}"
                time.sleep(0.1)
                unchanged = hap.agent_counters()
            final_pids = hap.pids()
            unchanged_log = hap.agent_log_path.read_bytes()[log_before:].decode(errors="replace")
        print(f"\nagent restarted alone with a new state written while it was away (80/20 -> 50/50, v1 3 -> 5"
              f" and v2 3 -> 2 endpoints): generation 2 read back {applied_s:.2f} s after its start"
              f" (applies {changed['kanary_agent_applies_total']}, commands"
              f" {changed['kanary_agent_commands_total']}); {stream_tally.sent} connections across the stop,"
              f" the write and the restart, {stream_tally.failed} failed; master and worker PIDs {pids} before,"
              f" {after_pids} after; the removed endpoint's sessions {drained} -> {drained_later}")
        print(f"agent restarted with the state unchanged: applies {unchanged['kanary_agent_applies_total']},"
              f" errors {unchanged['kanary_agent_apply_errors_total']},"
              f" commands {unchanged['kanary_agent_commands_total']} (show servers state and show map, each"
              " pass);"
              f" PIDs {final_pids}")
        pct = dp.report("after the agent's restart, 50/50", tally, pods, services)
    assert after_pids == pids and final_pids == pids, "haproxy's master or worker changed"
    assert stream_tally.failed == 0, f"{dict(stream_tally.failures)}"
    assert stream_tally.sent >= 2000
    assert changed["kanary_agent_applies_total"] == 1
    assert changed["kanary_agent_apply_errors_total"] == 0
    assert drained_later == drained, f"{removed} got {drained_later - drained} connections after it was removed"
    dp.assert_split(pct, after, tally)
    # A pass that sends anything beyond its read-back (`show servers state`, `show map`)
    # ends in an apply, counted and logged, or an error: neither happened.
    assert unchanged["kanary_agent_applies_total"] == 0, unchanged
    assert unchanged["kanary_agent_apply_errors_total"] == 0, unchanged
    assert "agent for " in unchanged_log and "applied state generation" not in unchanged_log, unchanged_log


def sessions_of(hap, backend):
    """{address:port: sessions} of backend's slots."""
    return {a: n for a, _, n in hap.servers()[backend].values()}
