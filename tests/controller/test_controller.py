# SPDX-License-Identifier: Apache-2.0
"""The controller (`kanary-controller run`) against a real control plane.

tests/cluster/up starts etcd, kube-apiserver and kube-controller-manager with the
garbage-collector, namespace, serviceaccount, deployment and replicaset controllers. There is
no scheduler and no kubelet: Pods are stored and never run, and no EndpointSlice controller
runs either, so the tests write the EndpointSlices a real cluster would publish themselves.

Each test gets a namespace of its own and its own controller process, scoped to that
namespace (--namespace) with its Lease there, on free 127.0.0.1 ports for /metrics and the
probes. Every process a test starts is stopped by its PID, even when an assertion fails.

The data-plane test puts the backend "pods" in a network namespace it creates (a veth pair
and addresses in 10.213.x.0/24, because the API server refuses loopback addresses in
EndpointSlices), runs the real haproxy on the configuration the controller wrote, and sends
connections only to 127.0.0.1 (haproxy) and the addresses it created (haproxy to the pods).

Run: /usr/bin/python3 -m pytest -v tests/controller/test_controller.py
"""

import base64
import contextlib
import hashlib
import http.server
import json
import os
import pathlib
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from kanarytest import eventually, free_port, unwind_on_sigterm  # noqa: E402

unwind_on_sigterm()

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
CRD = REPO / "charts" / "kanary" / "crds" / "kanaries.yaml"
EXAMPLE = REPO / "examples" / "simple-stack.yaml"
CLUSTER = REPO / "tests" / "cluster"
HAPROXY = "/usr/sbin/haproxy"
API_VERSION = "kanary.pyxida.io/v1alpha1"
KANARY = "simple-kanary-rule"
DEPLOYMENT = KANARY + "-haproxy"
COMMAND_TIMEOUT = 60  # seconds, for any one kubectl command
WAIT_TIMEOUT = 60  # seconds, for anything that happens asynchronously
# The coalescing window given to the controller in these tests: wide enough that a burst of
# kubectl calls on a slow machine still falls into one window.
BATCH = "2s"
CONTROLLERS = ("garbage-collector-controller,namespace-controller,serviceaccount-controller,"
               "deployment-controller,replicaset-controller")


# ---- the cluster -------------------------------------------------------------------------------


class Cluster:
    def __init__(self, env):
        self.env = env

    def kubectl(self, *args, input=None, check=True, timeout=COMMAND_TIMEOUT):
        proc = subprocess.run(["kubectl", *map(str, args)], env=self.env, input=input,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(map(str, args))} exited {proc.returncode}\n"
                                 f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def apply(self, ns, *objs):
        doc = {"apiVersion": "v1", "kind": "List", "items": list(objs)}
        return self.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(doc))

    def get(self, ns, *args, check=True):
        proc = self.kubectl("get", "-n", ns, "-o", "json", *args, check=check)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def items(self, ns, kind, selector=None):
        args = [kind] + (["-l", selector] if selector else [])
        return self.get(ns, *args)["items"]

    def patch(self, ns, what, patch, kind="merge", subresource=None):
        args = ["patch", "-n", ns, *what.split(), "--type", kind, "-p", json.dumps(patch)]
        if subresource:
            args += ["--subresource", subresource]
        return self.kubectl(*args)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("cluster") / "state"
    try:
        up = subprocess.run([str(CLUSTER / "up"), "--state-dir", str(state),
                             "--controllers", CONTROLLERS],
                            stdout=subprocess.PIPE, text=True, timeout=1800)
        assert up.returncode == 0, f"tests/cluster/up failed (exit {up.returncode})"
        env = subprocess.run(["bash", "-c", 'eval "$1" && env -0', "bash", up.stdout],
                             capture_output=True, check=True, text=True).stdout
        c = Cluster(dict(kv.split("=", 1) for kv in env.split("\0") if "=" in kv))
        c.kubectl("apply", "-f", CRD)
        c.kubectl("wait", "--for=condition=Established", "crd/kanaries.kanary.pyxida.io",
                  f"--timeout={WAIT_TIMEOUT}s")
        yield c
    finally:
        if state.exists():
            subprocess.run([str(CLUSTER / "down"), str(state)], stdout=subprocess.PIPE,
                           timeout=120)


@pytest.fixture
def ns(request, cluster):
    name = "t-" + request.node.name.lower().replace("_", "-")
    name = name[:50].rstrip("-") + "-" + os.urandom(3).hex()
    cluster.kubectl("create", "namespace", name)
    # The namespace's default ServiceAccount, or the replicaset controller creates no Pods.
    eventually(lambda: cluster.kubectl("get", "sa", "default", "-n", name, check=False)
               .returncode == 0, "the default ServiceAccount")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


# ---- the controller ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def binary():
    path = os.environ.get("KANARY_CONTROLLER") or str(REPO / "build" / "controller" /
                                                     "kanary-controller")
    if not os.access(path, os.X_OK):
        pytest.fail(f"kanary-controller not found at {path}: build it, or set KANARY_CONTROLLER")
    return path


class Controller:
    """One `kanary-controller run` process, stopped by its PID."""

    def __init__(self, binary, cluster, ns, workdir, args):
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.log_path = workdir / f"controller-{self.metrics_port}.log"
        self.log = open(self.log_path, "w")
        cmd = [binary, "run", "--namespace", ns,
               f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
               f"--health-probe-bind-address=127.0.0.1:{self.health_port}",
               f"--endpoint-updates-batch-period={BATCH}", *args]
        self.proc = subprocess.Popen(cmd, env=cluster.env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def http(self, port, path, attempts=3):
        """(status, body), or (None, "") when the server did not answer.

        Each request is a new connection, which the server closes first, so its side keeps the
        pair of ports in TIME-WAIT; a later connect that picks the same client port has its
        SYN dropped and resent after 1, 3, 7 s (seen several times a minute while a test polls
        /metrics every 0.25 s). A request that got no answer is made again, a bounded number
        of times, before the server counts as not answering.
        """
        for attempt in range(attempts):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()
            except OSError:
                if attempt + 1 == attempts or self.proc.poll() is not None:
                    return None, ""

    def metrics(self):
        """The samples of /metrics as {'name{labels}': value}."""
        status, body = self.http(self.metrics_port, "/metrics")
        assert status == 200, f"/metrics answered {status}"
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def leading(self):
        status, body = self.http(self.metrics_port, "/metrics")
        return status == 200 and "\nkanary_controller_leader 1\n" in "\n" + body

    def wait_ready(self):
        eventually(lambda: self.alive() and self.http(self.health_port, "/readyz")[0] == 200,
                   "the controller's /readyz")

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"the controller exited {self.proc.returncode}:\n"
                                 f"{self.log_tail()}")
        return True

    def log_tail(self, n=40):
        return "".join(self.log_path.read_text().splitlines(True)[-n:])

    def terminate(self, timeout=30):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"the controller ignored SIGTERM:\n{self.log_tail()}")
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self):
        self.kill()
        self.log.close()


@pytest.fixture
def start_controller(binary, cluster, ns, tmp_path):
    """Starts controllers for the test's namespace; stops every one of them afterwards."""
    started = []

    def start(*args):
        c = Controller(binary, cluster, ns, tmp_path, args)
        started.append(c)
        return c

    yield start
    problems = []
    for c in started:
        # A graceful stop, so a sanitizer build reports leaks; a killed one stays killed.
        running = c.proc.poll() is None
        try:
            status = c.terminate() if running else None
        except AssertionError as e:
            status = str(e)
        c.close()
        log = c.log_path.read_text()
        print(f"--- controller log ({c.log_path.name}), last lines:\n{c.log_tail(20)}")
        if running and status != 0:
            problems.append(f"{c.log_path.name}: SIGTERM gave exit {status}")
        for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if mark in log:
                problems.append(f"{c.log_path.name}: {mark} reported")
    assert not problems, problems


# ---- objects -------------------------------------------------------------------------------------


def service(name, port, port_name=None, target=None):
    p = {"port": port, "targetPort": target or port}
    if port_name:
        p["name"] = port_name
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [p]}}


def slice_(name, svc, port, addresses, port_name=None, ready=True):
    p = {"port": port, "protocol": "TCP"}
    if port_name:
        p["name"] = port_name
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [p],
            "endpoints": [{"addresses": [a], "conditions": {"ready": ready}} for a in addresses]}


def kanary(weights=(80, 20), destination="myapp"):
    return {"apiVersion": API_VERSION, "kind": "Kanary", "metadata": {"name": KANARY},
            "spec": {"destination": destination, "routes": [
                {"backend": {"serviceName": "myapp-v1", "servicePort": "http"},
                 "weight": weights[0]},
                {"backend": {"serviceName": "myapp-v2", "servicePort": 9090},
                 "weight": weights[1]}]}}


V1 = [f"10.244.1.{i}" for i in range(1, 4)]
V2 = [f"10.244.2.{i}" for i in range(1, 3)]


def apply_example(cluster, ns, v1=V1, v2=V2):
    """examples/simple-stack.yaml, and the EndpointSlices its pods would have.

    The slices go first, as in a cluster where the backends run before the Kanary comes.
    """
    cluster.apply(ns, slice_("myapp-v1-abcde", "myapp-v1", 8080, v1, port_name="http"),
                  slice_("myapp-v2-fghij", "myapp-v2", 9090, v2))
    cluster.kubectl("apply", "-n", ns, "-f", EXAMPLE)


def kanary_obj(cluster, ns):
    return cluster.get(ns, "kanary", KANARY)


def condition(obj, ctype):
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return c
    return None


def status_endpoints(obj):
    return [r.get("endpoints") for r in (obj or {}).get("status", {}).get("routes", [])]


STATE_CM = KANARY + "-haproxy-state"


def configmaps(cluster, ns):
    """The structure ConfigMaps (hash-named, immutable): what rolls HAProxy."""
    return {c["metadata"]["name"]: c
            for c in cluster.items(ns, "configmap", "app.kubernetes.io/managed-by=kanary")
            if c["metadata"]["name"] != STATE_CM}


def state(cluster, ns):
    """The state the agent applies (docs/agent.md): weights and endpoints; None when absent."""
    cm = cluster.get(ns, "configmap", STATE_CM, check=False)
    return json.loads(cm["data"]["state.json"]) if cm else None


def state_endpoints(st, i):
    return [f"{e['address']}:{e['port']}" for e in st["routes"][i]["endpoints"]]


def template_hashes(cluster, ns):
    return {rs["metadata"]["labels"]["pod-template-hash"] for rs in kanary_replicasets(cluster, ns)}


def deployment(cluster, ns):
    return cluster.get(ns, "deployment", DEPLOYMENT, check=False)


def template_hash(dep):
    return dep["spec"]["template"]["metadata"]["annotations"]["kanary.pyxida.io/config-hash"]


def kanary_replicasets(cluster, ns):
    return cluster.items(ns, "replicaset", f"kanary.pyxida.io/name={KANARY}")


def events_settled(ctl):
    """Waits until the controller's event writer has dealt with every Event it recorded.

    Events are written off the reconcile path, by a thread draining a queue: each one
    recorded (kanary_controller_events_recorded_total) ends as created, patched, filtered as
    spam or failed. Once those add up, every Event told so far is in the API server.
    """
    def settled():
        m = ctl.metrics()
        done = sum(m.get(f'kanary_controller_events_total{{result="{r}"}}', 0)
                   for r in ("created", "patched", "spam_filtered", "failed"))
        return done == m["kanary_controller_events_recorded_total"]
    eventually(settled, "the controller's event writer to catch up")


def kanary_events(cluster, ns, reason=None):
    return [e for e in cluster.items(ns, "events")
            if e["involvedObject"].get("kind") == "Kanary" and
            (reason is None or e.get("reason") == reason)]


def events(cluster, ns, reason, ctl=None):
    """How often the Kanary got an Event with this reason (counting repeats).

    With ctl, once that controller's event writer has written everything it was told.
    """
    if ctl:
        events_settled(ctl)
    return sum(e.get("count", 1) or 1 for e in kanary_events(cluster, ns, reason))


def converged(cluster, ns, endpoints=None, generation=None):
    """The Kanary's status once it describes the applied config (and the given endpoints)."""
    def check():
        obj = kanary_obj(cluster, ns)
        st = obj.get("status", {})
        if st.get("observedGeneration") != (generation or obj["metadata"]["generation"]):
            return None
        if endpoints is not None and status_endpoints(obj) != endpoints:
            return None
        dep = deployment(cluster, ns)
        if not dep or template_hash(dep) != st.get("configHash"):
            return None
        return obj
    return eventually(check, "the Kanary's status to describe the applied configuration")


def render(binary, tmp_path, cluster, ns, *extra, state_only=False):
    """What `kanary-controller render --config-only` (or --state-only) makes of the cluster's
    objects."""
    docs = [kanary_obj(cluster, ns)]
    docs += cluster.items(ns, "service")
    docs += cluster.items(ns, "endpointslice")
    path = tmp_path / "stream.json"
    path.write_text("\n".join(json.dumps(d) for d in docs))
    what = "--state-only" if state_only else "--config-only"
    out = subprocess.run([binary, "render", "-f", str(path), what, *extra],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


# ---- scenarios -----------------------------------------------------------------------------------


def test_example_stack_yields_the_children_owned_with_a_config_matching_the_endpoints(
        cluster, ns, start_controller, binary, tmp_path):
    ctl = start_controller()
    ctl.wait_ready()
    apply_example(cluster, ns)
    obj = converged(cluster, ns, endpoints=[3, 2])
    uid = obj["metadata"]["uid"]
    st = obj["status"]
    cms = configmaps(cluster, ns)
    assert list(cms) == [f"{KANARY}-haproxy-{st['configHash'][:8]}"]
    cfg = next(iter(cms.values()))["data"]["haproxy.cfg"]
    dep = deployment(cluster, ns)
    svc = cluster.get(ns, "service", "myapp")
    pdb = cluster.get(ns, "pdb", DEPLOYMENT)
    state_cm = cluster.get(ns, "configmap", STATE_CM)
    identity = [cluster.get(ns, kind, DEPLOYMENT)
                for kind in ("serviceaccount", "role", "rolebinding")]
    for child in (next(iter(cms.values())), state_cm, dep, svc, pdb, *identity):
        refs = child["metadata"]["ownerReferences"]
        assert refs == [{"apiVersion": API_VERSION, "kind": "Kanary", "name": KANARY, "uid": uid,
                         "controller": True, "blockOwnerDeletion": True}], child["kind"]
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kanary"
        assert child["metadata"]["labels"]["kanary.pyxida.io/name"] == KANARY
    # The configuration is exactly what `render` makes of the same objects, and it is the
    # one the Deployment's pods mount.
    assert cfg == render(binary, tmp_path, cluster, ns)
    assert hashlib.sha256(cfg.encode()).hexdigest() == st["configHash"]
    assert template_hash(dep) == st["configHash"]
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert vols["config"]["configMap"]["name"] == next(iter(cms))
    # The structure holds no endpoint and no weight; the state holds them, and it is what
    # `render --state-only` makes of the same objects.
    for a in V1 + V2:
        assert a not in cfg
    held = state(cluster, ns)
    assert held == json.loads(render(binary, tmp_path, cluster, ns, state_only=True))
    assert held["kanary"] == KANARY and held["generation"] == 1
    assert held["structureHash"] == st["configHash"][:8]
    assert [(r["backend"], r["weight"]) for r in held["routes"]] == [("myapp-v1", 80),
                                                                    ("myapp-v2", 20)]
    assert state_endpoints(held, 0) == [f"{a}:8080" for a in V1]
    assert state_endpoints(held, 1) == [f"{a}:9090" for a in V2]
    # The agent's identity reads that one ConfigMap; the pods run as it, with the agent.
    role = identity[1]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                              "resourceNames": [STATE_CM], "verbs": ["get", "list", "watch"]}]
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == DEPLOYMENT
    assert [c["name"] for c in pod["containers"]] == ["haproxy", "agent"]
    assert svc["spec"]["ports"][0]["port"] == 80
    # Status: generation, conditions with reasons, routes, summary.
    assert st["observedGeneration"] == obj["metadata"]["generation"]
    assert st["summary"] == "myapp-v1=80,myapp-v2=20"
    assert st["routes"] == [
        {"serviceName": "myapp-v1", "weight": 80, "targetPort": 8080, "endpoints": 3},
        {"serviceName": "myapp-v2", "weight": 20, "targetPort": 9090, "endpoints": 2}]
    refs_cond = condition(obj, "ResolvedRefs")
    assert (refs_cond["status"], refs_cond["reason"]) == ("True", "ResolvedRefs")
    ready = condition(obj, "Ready")
    # No kubelet runs here: HAProxy pods never become available.
    assert (ready["status"], ready["reason"]) == ("False", "RolloutInProgress")
    assert events(cluster, ns, "ConfigChanged", ctl) == 1
    # kubectl get kanary shows the summary.
    row = cluster.kubectl("get", "kanary", "-n", ns, "--no-headers").stdout.split()
    assert row[:3] == [KANARY, "myapp", "myapp-v1=80,myapp-v2=20"]
    # Probes and metrics.
    assert ctl.http(ctl.health_port, "/healthz")[0] == 200
    m = ctl.metrics()
    labels = f'namespace="{ns}",kanary="{KANARY}"'
    assert m[f'kanary_route_weight{{{labels},service="myapp-v1"}}'] == 80
    assert m[f'kanary_route_ready_endpoints{{{labels},service="myapp-v2"}}'] == 2
    assert m['kanary_controller_reconcile_total{result="success"}'] >= 1
    assert m["kanary_controller_reconcile_duration_seconds_count"] >= 1
    assert "kanary_controller_workqueue_depth" in m
    assert m["kanary_controller_leader"] == 1
    # The cached Services' namespace and port names are shared strings, counted once.
    assert m["kanary_controller_informer_shared_bytes"] > 0


def no_rollout_since(cluster, ns, dep_before, hashes_before, ctl):
    """The HAProxy pods were left alone: same template, no new ReplicaSet, no new structure."""
    dep = deployment(cluster, ns)
    assert dep["metadata"]["generation"] == dep_before["metadata"]["generation"]
    assert template_hash(dep) == template_hash(dep_before)
    assert template_hashes(cluster, ns) == hashes_before
    assert list(configmaps(cluster, ns)) == [f"{KANARY}-haproxy-{template_hash(dep)[:8]}"]
    assert events(cluster, ns, "RolloutTriggered", ctl) == 0


def test_a_burst_of_endpoint_changes_makes_one_state_change_and_no_rollout(
        cluster, ns, start_controller):
    ctl = start_controller()
    ctl.wait_ready()
    apply_example(cluster, ns)
    before = converged(cluster, ns, endpoints=[3, 2])
    dep = deployment(cluster, ns)
    eventually(lambda: len(kanary_replicasets(cluster, ns)) == 1, "the first ReplicaSet")
    hashes = template_hashes(cluster, ns)
    gen = state(cluster, ns)["generation"]
    # myapp-v1 scales from 3 to 6 pods: the endpoint controller would touch its slices
    # several times in a row. Three writes, well inside one coalescing window.
    t0 = time.monotonic()
    cluster.apply(ns, slice_("myapp-v1-abcde", "myapp-v1", 8080, V1 + ["10.244.1.4"],
                             port_name="http"),
                  slice_("myapp-v1-second", "myapp-v1", 8080, ["10.244.1.5"], port_name="http"))
    cluster.patch(ns, "endpointslice myapp-v1-second",
                  [{"op": "add", "path": "/endpoints/-",
                    "value": {"addresses": ["10.244.1.6"], "conditions": {"ready": True}}}],
                  kind="json")
    burst = time.monotonic() - t0
    obj = converged(cluster, ns, endpoints=[6, 2])
    # Six endpoints fit the slots the route has: the structure stays.
    assert obj["status"]["configHash"] == before["status"]["configHash"]
    st = eventually(lambda: (lambda s: s if len(s["routes"][0]["endpoints"]) == 6 else None)(
        state(cluster, ns)), "the state to hold the six endpoints")
    assert state_endpoints(st, 0) == [f"10.244.1.{i}:8080" for i in range(1, 7)]
    # The status counts all six endpoints, and the reconcile that wrote it wrote the state
    # first: had the burst been split over two windows, the state would be two writes on.
    assert st["generation"] == gen + 1, f"the burst took {burst:.2f}s"
    no_rollout_since(cluster, ns, dep, hashes, ctl)
    # Pods going away never shrink the slots: still no rollout.
    cluster.kubectl("delete", "endpointslice", "myapp-v1-second", "-n", ns)
    converged(cluster, ns, endpoints=[4, 2])
    st = eventually(lambda: (lambda s: s if len(s["routes"][0]["endpoints"]) == 4 else None)(
        state(cluster, ns)), "the state to hold four endpoints")
    assert st["routes"][0]["slots"] >= 6
    no_rollout_since(cluster, ns, dep, hashes, ctl)


def test_a_weight_change_patches_the_state_and_rolls_nothing(cluster, ns, start_controller,
                                                             binary, tmp_path):
    ctl = start_controller()
    ctl.wait_ready()
    apply_example(cluster, ns)
    first = converged(cluster, ns)
    eventually(lambda: len(kanary_replicasets(cluster, ns)) == 1, "the first ReplicaSet")
    dep = deployment(cluster, ns)
    hashes = template_hashes(cluster, ns)
    state_rv = cluster.get(ns, "configmap", STATE_CM)["metadata"]["resourceVersion"]
    gen = state(cluster, ns)["generation"]
    cluster.patch(ns, f"kanary {KANARY}", {"spec": {"routes": kanary((50, 50))["spec"]["routes"]}})
    obj = converged(cluster, ns, generation=first["metadata"]["generation"] + 1)
    assert obj["status"]["summary"] == "myapp-v1=50,myapp-v2=50"
    assert [r["weight"] for r in obj["status"]["routes"]] == [50, 50]
    assert obj["status"]["configHash"] == first["status"]["configHash"]
    st = eventually(lambda: (lambda s: s if s["routes"][0]["weight"] == 50 else None)(
        state(cluster, ns)), "the state to carry the new weights")
    assert [r["weight"] for r in st["routes"]] == [50, 50]
    assert st["generation"] == gen + 1
    assert cluster.get(ns, "configmap", STATE_CM)["metadata"]["resourceVersion"] != state_rv
    # What `render --state-only` makes of the same objects, but for the generation: render
    # knows no history and says 1.
    offline = json.loads(render(binary, tmp_path, cluster, ns, state_only=True))
    assert offline["generation"] == 1
    assert dict(st, generation=1) == offline
    cfg = configmaps(cluster, ns)[f"{KANARY}-haproxy-{obj['status']['configHash'][:8]}"]
    assert cfg["data"]["haproxy.cfg"] == render(binary, tmp_path, cluster, ns)
    no_rollout_since(cluster, ns, dep, hashes, ctl)


def test_a_route_that_outgrows_its_slots_rolls_once(cluster, ns, start_controller):
    ctl = start_controller()
    ctl.wait_ready()
    apply_example(cluster, ns)
    first = converged(cluster, ns, endpoints=[3, 2])
    slots = state(cluster, ns)["routes"][0]["slots"]
    many = [f"10.244.1.{i}" for i in range(1, slots + 2)]
    cluster.apply(ns, slice_("myapp-v1-abcde", "myapp-v1", 8080, many, port_name="http"))
    obj = converged(cluster, ns, endpoints=[slots + 1, 2])
    assert obj["status"]["configHash"] != first["status"]["configHash"]
    st = state(cluster, ns)
    assert st["routes"][0]["slots"] > slots
    assert st["structureHash"] == obj["status"]["configHash"][:8]
    assert events(cluster, ns, "RolloutTriggered", ctl) == 1


def test_a_deleted_backend_keeps_the_last_config_and_says_why(cluster, ns, start_controller):
    ctl = start_controller()
    ctl.wait_ready()
    apply_example(cluster, ns)
    good = converged(cluster, ns, endpoints=[3, 2])
    dep_before = deployment(cluster, ns)
    cms_before = set(configmaps(cluster, ns))
    cluster.kubectl("delete", "service", "myapp-v2", "-n", ns)

    def refs_false():
        obj = kanary_obj(cluster, ns)
        c = condition(obj, "ResolvedRefs")
        return obj if c and c["status"] == "False" else None
    obj = eventually(refs_false, "ResolvedRefs=False")
    refs = condition(obj, "ResolvedRefs")
    assert refs["reason"] == "BackendNotFound"
    assert 'spec.routes[1].backend.serviceName: Not found: "myapp-v2"' in refs["message"]
    ready = condition(obj, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "BackendNotFound")
    assert f"HAProxy keeps configuration {good['status']['configHash'][:8]}" in ready["message"]
    eventually(lambda: events(cluster, ns, "BackendNotFound") == 1, "a BackendNotFound event")
    warning = [e for e in cluster.items(ns, "events") if e.get("reason") == "BackendNotFound"]
    assert warning[0]["type"] == "Warning"
    # The last good configuration stays in force, untouched.
    assert obj["status"]["configHash"] == good["status"]["configHash"]
    assert obj["status"]["routes"] == good["status"]["routes"]
    # The reconcile that wrote ResolvedRefs=False applied nothing, and every later one sees
    # the Service gone as well.
    dep = deployment(cluster, ns)
    assert dep["metadata"]["generation"] == dep_before["metadata"]["generation"]
    assert template_hash(dep) == template_hash(dep_before)
    assert set(configmaps(cluster, ns)) == cms_before
    # Nothing changed, so nothing is told again.
    assert events(cluster, ns, "BackendNotFound", ctl) == 1
    # The Service comes back: the same configuration again, so no rollout.
    cluster.apply(ns, service("myapp-v2", 9090))
    back = eventually(lambda: (condition(kanary_obj(cluster, ns), "ResolvedRefs") or {})
                      .get("status") == "True", "ResolvedRefs=True again")
    assert back
    obj = converged(cluster, ns, endpoints=[3, 2])
    assert obj["status"]["configHash"] == good["status"]["configHash"]
    assert deployment(cluster, ns)["metadata"]["generation"] == dep_before["metadata"]["generation"]


def test_a_route_left_without_ready_endpoints_warns_once(cluster, ns, start_controller):
    ctl = start_controller()
    ctl.wait_ready()
    apply_example(cluster, ns)
    converged(cluster, ns, endpoints=[3, 2])
    # Every myapp-v2 pod goes unready.
    cluster.apply(ns, slice_("myapp-v2-fghij", "myapp-v2", 9090, V2, ready=False))
    converged(cluster, ns, endpoints=[3, 0])
    eventually(lambda: events(cluster, ns, "NoEndpoints") == 1, "a NoEndpoints event")
    warning = [e for e in cluster.items(ns, "events") if e.get("reason") == "NoEndpoints"]
    assert warning[0]["type"] == "Warning"
    assert "myapp-v2" in warning[0]["message"]
    # HAProxy still serves: the other route carries the connections.
    ready = condition(kanary_obj(cluster, ns), "Ready")
    assert ready["reason"] != "NoEndpoints"
    # Another change while v2 stays empty tells nothing new about v2.
    cluster.apply(ns, slice_("myapp-v1-abcde", "myapp-v1", 8080, V1 + ["10.244.1.4"],
                             port_name="http"))
    converged(cluster, ns, endpoints=[4, 0])
    assert events(cluster, ns, "NoEndpoints", ctl) == 1


def test_deleting_the_kanary_removes_its_children(cluster, ns, start_controller):
    start_controller().wait_ready()
    apply_example(cluster, ns)
    converged(cluster, ns)
    cluster.kubectl("delete", "kanary", KANARY, "-n", ns)

    def gone():
        return (not configmaps(cluster, ns) and deployment(cluster, ns) is None and
                cluster.get(ns, "service", "myapp", check=False) is None and
                cluster.get(ns, "pdb", DEPLOYMENT, check=False) is None)
    eventually(gone, "the garbage collector to remove the children")
    # The backends are not ours and stay.
    assert cluster.get(ns, "service", "myapp-v1")


def snapshot(cluster, ns):
    """resourceVersions of the Kanary and everything the controller writes, and its Events.

    The deployment controller keeps writing the Deployment's status for a while after each
    change; for the Deployment, what the controller writes stands in for its
    resourceVersion: generation, labels, annotations and the fields it manages.
    """
    out = {}
    for kind in ("kanary", "configmap", "deployment", "service", "pdb"):
        for o in cluster.items(ns, kind):
            md = o["metadata"]
            if kind == "deployment":
                mine = [(m.get("operation"), m.get("subresource", ""), m.get("time"),
                         json.dumps(m.get("fieldsV1"), sort_keys=True))
                        for m in md.get("managedFields", []) if m.get("manager") == "kanary"]
                out[f"{kind}/{md['name']}"] = (md["generation"], md.get("labels"),
                                               md.get("annotations"), sorted(mine))
            else:
                out[f"{kind}/{md['name']}"] = md["resourceVersion"]
    out["events"] = sorted((e["reason"], e.get("count", 1)) for e in cluster.items(ns, "events")
                           if e["involvedObject"].get("kind") == "Kanary")
    return out


def test_a_restarted_controller_changes_nothing(cluster, ns, start_controller):
    # -v 1 logs every apply ("applied ConfigMap x"): a no-op apply changes no
    # resourceVersion, so the log is what shows the second controller sent none.
    applied = re.compile(r"applied (ConfigMap|Deployment|PodDisruptionBudget|Service) ")
    first = start_controller("--v=1")
    first.wait_ready()
    apply_example(cluster, ns)
    converged(cluster, ns, endpoints=[3, 2])
    events_settled(first)
    before = snapshot(cluster, ns)
    assert first.terminate() == 0
    lease = cluster.get(ns, "lease", "kanary-controller")
    assert lease["spec"]["holderIdentity"] == "", "SIGTERM releases the lease"
    assert applied.search(first.log_path.read_text()), first.log_tail()
    second = start_controller("--v=1")
    second.wait_ready()
    eventually(lambda: second.leading(), "the new controller to lead")
    eventually(lambda: second.metrics()['kanary_controller_reconcile_total{result="success"}'] >= 1,
               "the new controller to reconcile the Kanary")
    # A reconcile is counted once it has written whatever it writes; its Events follow.
    events_settled(second)
    assert snapshot(cluster, ns) == before
    assert not applied.search(second.log_path.read_text()), second.log_tail()
    assert second.metrics()['kanary_controller_reconcile_total{result="error"}'] == 0


def test_a_resync_that_changed_nothing_writes_and_tells_nothing(cluster, ns, start_controller):
    ctl = start_controller("--resync-period=1s", "--leader-elect=false")
    ctl.wait_ready()
    apply_example(cluster, ns)
    converged(cluster, ns, endpoints=[3, 2])
    events_settled(ctl)
    before = snapshot(cluster, ns)
    reconciles = ctl.metrics()['kanary_controller_reconcile_total{result="success"}']
    eventually(lambda: ctl.metrics()['kanary_controller_reconcile_total{result="success"}'] >=
               reconciles + 3, "three resyncs")
    events_settled(ctl)
    assert snapshot(cluster, ns) == before
    # Without leader election there is no Lease.
    assert cluster.get(ns, "lease", "kanary-controller", check=False) is None



def test_children_someone_else_changed_are_taken_back_and_their_own_fields_left(
        cluster, ns, start_controller):
    """The caches keep no copy of the children, only the digest of what the controller
    applied (from the API server's managedFields): a field of ours changed by someone else
    moves out of our managed set, the digests differ, and the controller applies again; a
    field that is only theirs is none of its business."""
    ctl = start_controller()
    ctl.wait_ready()
    apply_example(cluster, ns)
    converged(cluster, ns, endpoints=[3, 2])
    events_settled(ctl)
    dep = deployment(cluster, ns)
    pdb = cluster.get(ns, "pdb", DEPLOYMENT)
    svc = cluster.get(ns, "service", "myapp")
    replicas = dep["spec"]["replicas"]
    image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    container = dep["spec"]["template"]["spec"]["containers"][0]["name"]
    target = svc["spec"]["ports"][0]["targetPort"]

    cluster.patch(ns, f"deployment {DEPLOYMENT}", {"spec": {"replicas": replicas + 4}})
    cluster.patch(ns, f"pdb {DEPLOYMENT}", {"spec": {"maxUnavailable": "13%"}})
    cluster.patch(ns, "service myapp",
                  [{"op": "replace", "path": "/spec/ports/0/targetPort", "value": 9999}],
                  kind="json")
    eventually(lambda: deployment(cluster, ns)["spec"]["replicas"] == replicas,
               "the Deployment's replicas taken back")
    eventually(lambda: cluster.get(ns, "pdb", DEPLOYMENT)["spec"]["maxUnavailable"] ==
               pdb["spec"]["maxUnavailable"], "the PodDisruptionBudget taken back")
    eventually(lambda: cluster.get(ns, "service", "myapp")["spec"]["ports"][0]["targetPort"] ==
               target, "the Service's targetPort taken back")
    cluster.patch(ns, f"deployment {DEPLOYMENT}", {"spec": {"template": {"spec": {
        "containers": [{"name": container, "image": "example.invalid/other:1"}]}}}},
        kind="strategic")
    eventually(lambda: deployment(cluster, ns)["spec"]["template"]["spec"]["containers"][0][
        "image"] == image, "the Deployment's image taken back")

    # Someone else's annotation: woken, the controller writes nothing.
    events_settled(ctl)
    success = 'kanary_controller_reconcile_total{result="success"}'
    cluster.patch(ns, "service myapp", {"metadata": {"annotations": {"someone/else": "x"}}})
    cluster.patch(ns, f"pdb {DEPLOYMENT}", {"metadata": {"annotations": {"someone/else": "x"}}})
    rv = {kind: cluster.get(ns, kind, name)["metadata"]["resourceVersion"]
          for kind, name in (("service", "myapp"), ("pdb", DEPLOYMENT))}
    # The second reconcile counted from here started after the patches.
    done = ctl.metrics()[success]
    eventually(lambda: ctl.metrics()[success] >= done + 2, "reconciles after the patches")
    events_settled(ctl)
    assert {kind: cluster.get(ns, kind, name)["metadata"]["resourceVersion"]
            for kind, name in (("service", "myapp"), ("pdb", DEPLOYMENT))} == rv
    assert ctl.metrics()['kanary_controller_reconcile_total{result="error"}'] == 0

def test_two_controllers_one_leader_and_failover_after_the_leader_dies(
        cluster, ns, start_controller):
    timing = ["--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s",
              "--leader-elect-retry-period=1s"]
    a = start_controller(*timing)
    b = start_controller(*timing)
    a.wait_ready()
    b.wait_ready()
    eventually(lambda: a.leading() or b.leading(), "a leader")
    leader, standby = (a, b) if a.leading() else (b, a)
    apply_example(cluster, ns)
    converged(cluster, ns)
    assert not standby.leading()
    assert standby.metrics()['kanary_controller_reconcile_total{result="success"}'] == 0, \
        "the standby must not reconcile"
    holder = cluster.get(ns, "lease", "kanary-controller")["spec"]["holderIdentity"]
    leader.kill()
    killed = time.monotonic()
    eventually(lambda: standby.leading(), "the standby to take over", timeout=30, interval=0.1)
    failover = time.monotonic() - killed
    # Printed, not asserted: how long it takes is for a benchmark, not a test.
    print(f"failover took {failover:.1f}s (lease duration 4s, retry period 1s)")
    lease = cluster.get(ns, "lease", "kanary-controller")
    assert lease["spec"]["holderIdentity"] not in ("", holder)
    assert lease["spec"]["leaseTransitions"] >= 1
    # The new leader does the work.
    gen = kanary_obj(cluster, ns)["metadata"]["generation"]
    cluster.patch(ns, f"kanary {KANARY}", {"spec": {"routes": kanary((60, 40))["spec"]["routes"]}})
    obj = converged(cluster, ns, generation=gen + 1)
    assert obj["status"]["summary"] == "myapp-v1=60,myapp-v2=40"


def test_a_leader_whose_lease_is_taken_stops_and_exits_1(cluster, ns, start_controller):
    ctl = start_controller("--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s",
                           "--leader-elect-retry-period=1s")
    ctl.wait_ready()
    eventually(ctl.leading, "leadership")
    # Someone else writes the Lease as its holder, again and again until the leader gives up:
    # it cannot renew any more.
    def taken():
        if ctl.proc.poll() is not None:
            return True
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        cluster.patch(ns, "lease kanary-controller",
                      {"spec": {"holderIdentity": "intruder", "renewTime": now}})
        return False
    eventually(taken, "the leader to stop", interval=0.5)
    status = ctl.proc.wait(30)
    assert status == 1, ctl.log_tail()
    assert "leadership lost" in ctl.log_path.read_text()


def test_superseded_configmaps_go_once_no_replicaset_uses_them(cluster, ns, start_controller):
    start_controller().wait_ready()
    apply_example(cluster, ns)
    converged(cluster, ns)
    # Three structural changes: myapp-v1 outgrows its slots three times.
    for _ in range(3):
        slots = state(cluster, ns)["routes"][0]["slots"]
        many = [f"10.244.{1 + i // 250}.{1 + i % 250}" for i in range(slots + 1)]
        cluster.apply(ns, slice_("myapp-v1-abcde", "myapp-v1", 8080, many, port_name="http"))
        converged(cluster, ns, endpoints=[slots + 1, 2])
    eventually(lambda: len(kanary_replicasets(cluster, ns)) == 4, "four ReplicaSets")
    assert len(configmaps(cluster, ns)) == 4, "every ReplicaSet keeps its configuration"
    # Without kubelets no rollout completes, so the deployment controller never prunes old
    # ReplicaSets; delete the scaled-down ones as its history cleanup would.
    current = f"{KANARY}-haproxy-{kanary_obj(cluster, ns)['status']['configHash'][:8]}"
    for rs in kanary_replicasets(cluster, ns):
        if rs["spec"]["replicas"] == 0:
            cluster.kubectl("delete", "replicaset", rs["metadata"]["name"], "-n", ns)

    def in_use():
        names = {v["configMap"]["name"] for rs in kanary_replicasets(cluster, ns)
                 for v in rs["spec"]["template"]["spec"]["volumes"] if "configMap" in v}
        return names | {current}
    eventually(lambda: set(configmaps(cluster, ns)) == in_use(),
               "exactly the ConfigMaps still in use")
    assert current in configmaps(cluster, ns)
    assert len(configmaps(cluster, ns)) < 4


FOREIGN = "Service myapp exists and is not owned by this Kanary"


def foreign_service(cluster, ns):
    """Someone else's Service of the destination's name; returns it as the API server has it."""
    foreign = service("myapp", 80)
    foreign["metadata"]["labels"] = {"owner": "someone-else"}
    cluster.apply(ns, foreign)
    return cluster.get(ns, "service", "myapp")


def service_conflict(cluster, ns, ctl):
    """Ready=False with ServiceConflict, told by one Warning Event after six failed attempts.

    Returns the attempts logged: [(retry number, delay in ms, text)].
    """
    def conflict():
        c = condition(kanary_obj(cluster, ns), "Ready")
        return c if c and c["reason"] == "ServiceConflict" else None
    ready = eventually(conflict, "Ready=False with ServiceConflict")
    print(f"Ready: {ready['status']} {ready['reason']}: {ready['message']}")
    assert ready["status"] == "False"
    assert ready["message"] == (f"{FOREIGN}; it is left alone until it is deleted or handed "
                                "over; retrying with backoff")
    # The controller keeps trying, backing off; several attempts go by.
    eventually(lambda: len(retries_logged(ctl, FOREIGN)) >= 6, "six failed attempts")
    # Told once: one Warning Event, however many attempts failed the same way.
    assert events(cluster, ns, "ServiceConflict", ctl) == 1
    warnings = kanary_events(cluster, ns, "ServiceConflict")
    assert [(e["type"], e.get("count")) for e in warnings] == [("Warning", 1)], warnings
    assert FOREIGN in warnings[0]["message"]
    # Logged once per attempt, with the retry's number and delay; the delay doubles. The
    # Event is not logged a second time.
    tries = retries_logged(ctl, FOREIGN)
    print("retries logged (number, delay in ms):", [(n, d) for n, d, _ in tries])
    assert [n for n, _, _ in tries] == list(range(1, len(tries) + 1)), tries
    delays = [d for _, d, _ in tries]
    assert all(b == 2 * a for a, b in zip(delays, delays[1:])), delays
    log = ctl.log_path.read_text()
    assert sum(1 for line in log.splitlines() if FOREIGN in line) == len(tries)
    return tries


def test_a_service_of_someone_else_is_never_taken(cluster, ns, start_controller):
    before = foreign_service(cluster, ns)
    ctl = start_controller()
    ctl.wait_ready()
    apply_example(cluster, ns)
    service_conflict(cluster, ns, ctl)
    # Every attempt left the Service alone.
    after = cluster.get(ns, "service", "myapp")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert "ownerReferences" not in after["metadata"]
    # Once it is gone, the Kanary makes its own (its deletion wakes the Kanary, and so
    # would the next attempt).
    cluster.kubectl("delete", "service", "myapp", "-n", ns)

    def ours():
        s = cluster.get(ns, "service", "myapp", check=False)
        return s if s and s["metadata"].get("ownerReferences") else None
    svc = eventually(ours, "the Kanary's own Service")
    assert svc["spec"]["selector"]["kanary.pyxida.io/name"] == KANARY
    ready = eventually(lambda: (lambda c: c if c and c["reason"] != "ServiceConflict" else None)(
        condition(kanary_obj(cluster, ns), "Ready")), "Ready without ServiceConflict")
    assert ready["reason"] == "RolloutInProgress", ready
    assert events(cluster, ns, "Applied", ctl) == 1
    assert events(cluster, ns, "ServiceConflict") == 1


def test_a_service_of_someone_else_is_taken_up_by_a_retry_once_it_is_gone(
        cluster, ns, start_controller):
    # Everything is there before the controller starts, so its first reconcile finds it all.
    foreign_service(cluster, ns)
    apply_example(cluster, ns)
    # A Service change wakes its Kanaries only after an hour, and no resync comes: the
    # deletion below reaches the controller's cache, but only a retry reconciles it.
    ctl = start_controller("--endpoint-updates-batch-period=1h", "--resync-period=0")
    ctl.wait_ready()
    tries = service_conflict(cluster, ns, ctl)
    cluster.kubectl("delete", "service", "myapp", "-n", ns)

    def ours():
        s = cluster.get(ns, "service", "myapp", check=False)
        return s if s and s["metadata"].get("ownerReferences") else None
    svc = eventually(ours, "the Kanary's own Service, made by a retry")
    assert svc["spec"]["selector"]["kanary.pyxida.io/name"] == KANARY
    ready = eventually(lambda: (lambda c: c if c and c["reason"] != "ServiceConflict" else None)(
        condition(kanary_obj(cluster, ns), "Ready")), "Ready without ServiceConflict")
    assert ready["reason"] == "RolloutInProgress", ready
    assert events(cluster, ns, "Applied", ctl) == 1
    assert events(cluster, ns, "ServiceConflict") == 1
    later = retries_logged(ctl, FOREIGN)
    print("retries logged before success (number, delay in ms):", [(n, d) for n, d, _ in later])
    assert len(later) >= len(tries)


def haproxy_pods(cluster, ns):
    """The Kanary's HAProxy pods: the replicaset controller made them; no kubelet runs them."""
    return cluster.items(ns, "pod", f"kanary.pyxida.io/name={KANARY},app.kubernetes.io/name=haproxy")


def write_pod_status(cluster, ns, pod, status):
    """What a kubelet would report, written through pods/status (the test runs as admin)."""
    cluster.patch(ns, f"pod {pod}", {"status": status}, subresource="status")


def pod_runs(cluster, ns, name):
    """The pod runs and is ready, since long enough ago for the Deployment's minReadySeconds."""
    since = "2026-01-01T00:00:00Z"
    containers = cluster.get(ns, "pod", name)["spec"]["containers"]
    write_pod_status(cluster, ns, name, {
        "phase": "Running",
        "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": since},
                       {"type": "Initialized", "status": "True", "lastTransitionTime": since},
                       {"type": "ContainersReady", "status": "True",
                        "lastTransitionTime": since},
                       {"type": "Ready", "status": "True", "lastTransitionTime": since}],
        "containerStatuses": [{
            "name": c["name"], "image": c["image"], "imageID": "", "ready": True,
            "started": True, "restartCount": 0,
            "state": {"running": {"startedAt": since}}} for c in containers]})


def pods_run(cluster, ns, pods):
    """The HAProxy pods run and turn ready, as a kubelet would report; returns Ready=True.

    Ready long enough ago for the Deployment's minReadySeconds, so the replicaset and
    deployment controllers count them available and the Deployment's status says the rollout
    is done.
    """
    for name in pods:
        pod_runs(cluster, ns, name)

    def rolled():
        d = deployment(cluster, ns)
        st = d.get("status", {})
        return (st.get("observedGeneration") == d["metadata"]["generation"] and
                st.get("updatedReplicas") == 2 and st.get("availableReplicas") == 2)
    eventually(rolled, "the Deployment to count its pods available")

    def ready_true():
        c = condition(kanary_obj(cluster, ns), "Ready")
        return c if c and c["status"] == "True" else None
    return eventually(ready_true, "Ready=True")


def two_haproxy_pods(cluster, ns):
    return eventually(lambda: [p["metadata"]["name"] for p in haproxy_pods(cluster, ns)]
                      if len(haproxy_pods(cluster, ns)) == 2 else None, "two HAProxy pods")


def test_an_image_that_cannot_be_pulled_keeps_ready_false_and_says_why(
        cluster, ns, start_controller):
    image = "localhost/haproxy:nope"
    ctl = start_controller(f"--haproxy-image={image}",
                           "--haproxy-image-pull-secrets=regcred,mirror.example")
    ctl.wait_ready()
    apply_example(cluster, ns)
    converged(cluster, ns, endpoints=[3, 2])
    # The pull Secrets are the pod's, for both images, as the API server stores them.
    assert deployment(cluster, ns)["spec"]["template"]["spec"]["imagePullSecrets"] == \
        [{"name": "regcred"}, {"name": "mirror.example"}]
    pods = two_haproxy_pods(cluster, ns)
    assert all(p["spec"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror.example"}]
               for p in haproxy_pods(cluster, ns))
    # Pods that no kubelet ran yet are starting: the rollout is just in progress.
    ready = condition(kanary_obj(cluster, ns), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RolloutInProgress"), ready
    # The kubelet cannot pull the image. Nothing the controller watches changes (the pods'
    # ReplicaSet counts no more and no fewer ready pods), so only its look-again sees it.
    never = f'Container image "{image}" is not present with pull policy of Never'
    scheduled = {"type": "PodScheduled", "status": "True",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}
    for name in pods:
        write_pod_status(cluster, ns, name, {
            "phase": "Pending", "conditions": [scheduled],
            "containerStatuses": [{
                "name": "haproxy", "image": image, "imageID": "", "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "ErrImageNeverPull", "message": never}}}]})

    def pull_failed():
        # Once the controller has looked at both pods: it may look between the two writes.
        c = condition(kanary_obj(cluster, ns), "Ready")
        return c if (c and c["reason"] == "HAProxyImagePullFailed" and
                     all(f"pod {p}:" in c["message"] for p in pods)) else None
    ready = eventually(pull_failed, "Ready=False with HAProxyImagePullFailed, both pods named")
    print(f"Ready: {ready['status']} {ready['reason']}: {ready['message']}")
    assert ready["status"] == "False"
    assert ready["message"].startswith(f"Deployment {DEPLOYMENT} cannot roll out configuration ")
    for name in sorted(pods):
        assert f"pod {name}: container haproxy: ErrImageNeverPull: {never}" in ready["message"]
    assert events(cluster, ns, "HAProxyImagePullFailed", ctl) == 1
    warning = [e for e in cluster.items(ns, "events") if e.get("reason") == "HAProxyImagePullFailed"]
    assert warning[0]["type"] == "Warning"
    assert image in warning[0]["message"]
    # It stays so, and is told once, however often the controller looks again (from every 5 s,
    # less often while it finds the same): two more looks.
    looks = ctl.metrics()['kanary_controller_reconcile_total{result="success"}']
    eventually(lambda: ctl.metrics()['kanary_controller_reconcile_total{result="success"}'] >=
               looks + 2, "two more looks at the pods")
    ready = condition(kanary_obj(cluster, ns), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "HAProxyImagePullFailed")
    assert events(cluster, ns, "HAProxyImagePullFailed", ctl) == 1
    assert ctl.log_path.read_text().count("HAProxyImagePullFailed:") == 1
    # The image is there now.
    ready = pods_run(cluster, ns, pods)
    assert ready["reason"] == "Ready"
    assert "HAProxy serves configuration" in ready["message"]
    assert ctl.metrics()['kanary_controller_reconcile_total{result="error"}'] == 0


RECHECK_LINE = re.compile(r"DEBUG (\S+): Ready (\w+): next look at the rollout in (\d+)s$")


def rechecks_logged(ctl, reason):
    """The delays (s) the controller's -v 1 lines gave the next look at a waiting rollout whose
    Ready said reason, in order: one line each time the delay changes."""
    out = []
    for line in ctl.log_path.read_text().splitlines():
        m = RECHECK_LINE.search(line)
        if m and m.group(2) == reason:
            out.append(int(m.group(3)))
    return out


def runs(delays):
    """The delays cut where they start again at 5 s: [[5, 10, ...], [5, ...]]."""
    out = []
    for d in delays:
        if d == 5 or not out:
            out.append([])
        out[-1].append(d)
    return out


def test_a_rollout_that_stays_stuck_is_looked_at_less_and_less_until_it_changes(
        cluster, ns, start_controller):
    image = "localhost/haproxy:nope"
    reason = "HAProxyImagePullFailed"
    ctl = start_controller(f"--haproxy-image={image}", "--v=1")
    ctl.wait_ready()
    apply_example(cluster, ns)
    converged(cluster, ns, endpoints=[3, 2])
    pods = two_haproxy_pods(cluster, ns)
    never = f'Container image "{image}" is not present with pull policy of Never'

    def pull_fails(name):
        write_pod_status(cluster, ns, name, {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "containerStatuses": [{
                "name": "haproxy", "image": image, "imageID": "", "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "ErrImageNeverPull", "message": never}}}]})
    for name in pods:
        pull_fails(name)

    def stuck_on(names):
        c = condition(kanary_obj(cluster, ns), "Ready")
        return c if (c and c["reason"] == reason and
                     all(f"pod {p}:" in c["message"] for p in names)) else None
    eventually(lambda: stuck_on(pods), f"Ready=False with {reason}, both pods named")

    # Nothing the controller watches changes: each look at the pods finds the same as the one
    # before, and the next one waits twice as long (the schedule bounds the wait here).
    def run_reached(delays):
        last = runs(rechecks_logged(ctl, reason))[-1]
        return len(last) >= len(delays) and last
    reconciles = 'kanary_controller_reconcile_total{result="success"}'
    assert eventually(lambda: run_reached([5, 10]), "the delay to double", timeout=120) == \
        [5, 10]
    before = ctl.metrics()[reconciles]
    last = eventually(lambda: run_reached([5, 10, 20, 40]), "the delay to reach 40 s",
                      timeout=180)
    after = ctl.metrics()[reconciles]
    print(f"next-look delays logged with {reason}: {rechecks_logged(ctl, reason)}; "
          f"reconciles while it waited 10 s and 20 s: {after - before:.0f}")
    assert last == [5, 10, 20, 40], rechecks_logged(ctl, reason)
    # Started again only when what Ready says changed: the first look may have seen one pod
    # fail, the next both.
    delays = runs(rechecks_logged(ctl, reason))
    assert len(delays) <= 2 and all(r == [5 * 2 ** i for i in range(len(r))] for r in delays), \
        delays
    # The looks after 10 s and after 20 s, and the one that logged 10 s if /metrics had not
    # counted it yet: looking every 5 s would have made six or seven.
    assert after - before <= 3, (before, after)
    # Told once (one Warning), however often it looked.
    assert events(cluster, ns, reason, ctl) == 1
    log = ctl.log_path.read_text().splitlines()
    assert sum(1 for line in log if " WARN " in line and f"{reason}:" in line) == 1

    # One pod runs: the Deployment counts it available, its watch event wakes the Kanary at
    # once (the next look was 40 s away), and the delay starts again at 5 s.
    pod_runs(cluster, ns, pods[0])
    def only_the_other():
        c = stuck_on([pods[1]])
        return c if c and f"pod {pods[0]}:" not in c["message"] else None
    ready = eventually(only_the_other, "Ready to name only the pod that still cannot pull")
    assert ready["status"] == "False"
    eventually(lambda: rechecks_logged(ctl, reason)[-1] == 5, "the delay to start again at 5 s")
    assert runs(rechecks_logged(ctl, reason))[-2] == [5, 10, 20, 40]
    # The other pod runs: the rollout is done, Ready turns True, and nothing is looked at again.
    ready = pods_run(cluster, ns, pods)
    assert ready["reason"] == "Ready"
    assert events(cluster, ns, reason, ctl) == 1
    assert ctl.metrics()['kanary_controller_reconcile_total{result="error"}'] == 0


def test_options_that_would_fail_every_kanary_are_refused_at_start(binary):
    cases = [
        (["--agent-metrics-port=8080"], "the agent's metrics port is one of HAProxy's ports"),
        (["--haproxy-runtime-dir=/tmp"], "the runtime directory is not absolute"),
        # No admin socket: the agent could never fill the routes, /ready would stay 503.
        (["--haproxy-runtime-dir="], "a runtime directory is needed"),
        (["--haproxy-image-pull-secrets=regcred,Not_A_Name"],
         '"Not_A_Name" is not a Secret name (a DNS-1123 subdomain'),
        (["--haproxy-image-pull-secrets=regcred,regcred"], '"regcred" is named twice'),
        (["--haproxy-image-pull-secrets=" + ",".join(f"s{i}" for i in range(17))],
         "more than 16 Secrets"),
    ]
    for args, message in cases:
        out = subprocess.run([binary, "run", "--kubeconfig=/nonexistent", *args],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 2, (args, out.returncode, out.stderr)
        assert message in out.stderr, (args, out.stderr)
    assert "--haproxy-image-pull-secrets NAME[,NAME...]" in subprocess.run(
        [binary, "run", "--help"], capture_output=True, text=True, timeout=30).stdout


# ---- failures that retrying alone does not end ---------------------------------------------------

RETRY_LINE = re.compile(r"reconcile failed: (.*); retry (\d+) in (\d+)ms")


def retries_logged(ctl, what):
    """The controller's failure lines naming what: [(retry number, delay in ms, text)]."""
    out = []
    for line in ctl.log_path.read_text().splitlines():
        m = RETRY_LINE.search(line)
        if m and what in m.group(1):
            out.append((int(m.group(2)), int(m.group(3)), m.group(1)))
    return out


def test_a_deployment_made_by_someone_else_is_reported_once_and_retried_with_backoff(
        cluster, ns, start_controller):
    # Someone made a Deployment of the name the Kanary's HAProxy needs.
    cluster.kubectl("create", "deployment", DEPLOYMENT, "-n", ns,
                    "--image=registry.example/someone-else:1")
    ctl = start_controller()
    ctl.wait_ready()
    apply_example(cluster, ns)

    def conflict():
        c = condition(kanary_obj(cluster, ns), "Ready")
        return c if c and c["reason"] == "ApplyConflict" else None
    ready = eventually(conflict, "Ready=False with ApplyConflict")
    print(f"Ready: {ready['status']} {ready['reason']}: {ready['message']}")
    assert ready["status"] == "False"
    assert ready["message"].startswith(f"cannot apply Deployment {DEPLOYMENT}: Conflict: ")
    assert ready["message"].endswith("; nothing is applied yet; retrying with backoff")
    # The controller keeps trying, backing off; several attempts go by.
    what = f"cannot apply Deployment {DEPLOYMENT}: Conflict"
    eventually(lambda: len(retries_logged(ctl, what)) >= 6, "six failed attempts")
    # Told once: one Warning Event, however many attempts failed the same way.
    assert events(cluster, ns, "ApplyConflict", ctl) == 1
    # (The Kanary may come before its Services into the controller's caches, and a
    # BackendNotFound go by first: the example stack applies them together.)
    warnings = kanary_events(cluster, ns, "ApplyConflict")
    assert [(e["type"], e.get("count")) for e in warnings] == [("Warning", 1)], warnings
    assert f"Deployment {DEPLOYMENT}" in warnings[0]["message"]
    # Logged once per attempt, with the retry's number and delay; the delay doubles.
    tries = retries_logged(ctl, what)
    print("retries logged (number, delay in ms):", [(n, d) for n, d, _ in tries])
    assert [n for n, _, _ in tries] == list(range(1, len(tries) + 1)), tries
    delays = [d for _, d, _ in tries]
    assert all(b == 2 * a for a, b in zip(delays, delays[1:])), delays
    log = ctl.log_path.read_text()
    assert sum(1 for line in log.splitlines() if what in line) == len(tries)
    # The foreign Deployment is left alone.
    foreign = deployment(cluster, ns)
    assert "ownerReferences" not in foreign["metadata"]
    assert foreign["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "registry.example/someone-else:1"

    # Once it is gone, the next attempt makes the Kanary's own, and Ready comes back.
    cluster.kubectl("delete", "deployment", DEPLOYMENT, "-n", ns)
    obj = converged(cluster, ns, endpoints=[3, 2])
    assert condition(obj, "Ready")["reason"] != "ApplyConflict"
    ready = pods_run(cluster, ns, two_haproxy_pods(cluster, ns))
    assert ready["reason"] == "Ready"
    assert events(cluster, ns, "Applied", ctl) == 1
    applied = kanary_events(cluster, ns, "Applied")[0]
    assert applied["type"] == "Normal"
    assert events(cluster, ns, "ApplyConflict") == 1


# The controller's permissions in its namespace (charts/kanary/templates/rbac.yaml), less
# Events: the controller runs with these and no more.
RULES_WITHOUT_EVENTS = [
    {"apiGroups": ["kanary.pyxida.io"], "resources": ["kanaries"], "verbs": ["list", "watch"]},
    {"apiGroups": ["kanary.pyxida.io"], "resources": ["kanaries/status"], "verbs": ["patch"]},
    {"apiGroups": ["kanary.pyxida.io"], "resources": ["kanaries/finalizers"],
     "verbs": ["update"]},
    {"apiGroups": [""], "resources": ["services"],
     "verbs": ["list", "watch", "create", "patch"]},
    {"apiGroups": ["apps"], "resources": ["deployments"],
     "verbs": ["list", "watch", "create", "patch"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"],
     "verbs": ["list", "watch", "create", "patch"]},
    {"apiGroups": [""], "resources": ["configmaps"],
     "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
     "verbs": ["get", "create", "patch"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
     "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
]


def kubeconfig_for(cluster, ns, sa, rules, path):
    """A kubeconfig for a ServiceAccount of ns that holds exactly rules there (a Role)."""
    cluster.kubectl("create", "serviceaccount", sa, "-n", ns)
    cluster.apply(ns, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                       "metadata": {"name": sa}, "rules": rules},
                  {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": sa},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": sa},
                   "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]})
    token = cluster.kubectl("create", "token", sa, "-n", ns, "--duration=1h").stdout.strip()
    admin = json.loads(cluster.kubectl("config", "view", "--raw", "--minify", "-o",
                                       "json").stdout)
    server = admin["clusters"][0]["cluster"]
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": server}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": sa, "namespace": ns}}]}))
    return path


def test_events_the_controller_may_not_write_cost_the_reconcile_nothing(
        cluster, ns, start_controller, tmp_path):
    cfg = kubeconfig_for(cluster, ns, "kanary-no-events", RULES_WITHOUT_EVENTS,
                         tmp_path / "kubeconfig")
    ctl = start_controller(f"--kubeconfig={cfg}", "--leader-elect=false")
    ctl.wait_ready()
    apply_example(cluster, ns)
    # The children are applied and the status written, as with the right to write Events.
    obj = converged(cluster, ns, endpoints=[3, 2])
    assert obj["status"]["summary"] == "myapp-v1=80,myapp-v2=20"
    # The ConfigChanged Event was recorded, refused by the API server, counted and logged by
    # the event writer; the reconcile that told it succeeded regardless.
    events_settled(ctl)
    m = ctl.metrics()
    assert m['kanary_controller_events_total{result="failed"}'] >= 1
    assert m['kanary_controller_events_total{result="created"}'] == 0
    assert m['kanary_controller_reconcile_total{result="error"}'] == 0
    assert m['kanary_controller_reconcile_total{result="success"}'] >= 1
    assert "event Normal ConfigChanged for Kanary" in ctl.log_path.read_text()
    assert "not written: Forbidden" in ctl.log_path.read_text()
    assert kanary_events(cluster, ns) == []


def test_a_child_the_controller_may_not_write_is_reported_until_it_may(
        cluster, ns, start_controller, tmp_path):
    # The controller may read Deployments but not write them (a Role cut short).
    events_rule = {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]}
    cut = [dict(r, verbs=["list", "watch"]) if r["resources"] == ["deployments"] else r
           for r in RULES_WITHOUT_EVENTS] + [events_rule]
    cfg = kubeconfig_for(cluster, ns, "kanary-cut-short", cut, tmp_path / "kubeconfig")
    ctl = start_controller(f"--kubeconfig={cfg}", "--leader-elect=false")
    ctl.wait_ready()
    apply_example(cluster, ns)

    def forbidden():
        c = condition(kanary_obj(cluster, ns), "Ready")
        return c if c and c["reason"] == "ApplyForbidden" else None
    ready = eventually(forbidden, "Ready=False with ApplyForbidden")
    assert ready["status"] == "False"
    assert ready["message"].startswith(f"cannot apply Deployment {DEPLOYMENT}: Forbidden: ")
    what = f"cannot apply Deployment {DEPLOYMENT}: Forbidden"
    eventually(lambda: len(retries_logged(ctl, what)) >= 3, "three failed attempts")
    assert events(cluster, ns, "ApplyForbidden", ctl) == 1
    # The permission comes: the next attempt goes through.
    cluster.apply(ns, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                       "metadata": {"name": "kanary-cut-short"},
                       "rules": RULES_WITHOUT_EVENTS + [events_rule]})
    obj = converged(cluster, ns, endpoints=[3, 2])
    assert condition(obj, "Ready")["reason"] == "RolloutInProgress"
    assert events(cluster, ns, "Applied", ctl) == 1
    assert events(cluster, ns, "ApplyForbidden") == 1


def test_a_child_the_controller_may_not_read_is_reported_until_it_may(
        cluster, ns, start_controller, tmp_path):
    # The controller may list and watch ConfigMaps but not get one: it cannot read the state
    # ConfigMap (its informer keeps no data), so it cannot apply anything.
    events_rule = {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]}
    cut = [dict(r, verbs=[v for v in r["verbs"] if v != "get"])
           if r["resources"] == ["configmaps"] else r
           for r in RULES_WITHOUT_EVENTS] + [events_rule]
    cfg = kubeconfig_for(cluster, ns, "kanary-no-get", cut, tmp_path / "kubeconfig")
    ctl = start_controller(f"--kubeconfig={cfg}", "--leader-elect=false")
    ctl.wait_ready()
    apply_example(cluster, ns)

    def forbidden():
        c = condition(kanary_obj(cluster, ns), "Ready")
        return c if c and c["reason"] == "ApplyForbidden" else None
    ready = eventually(forbidden, "Ready=False with ApplyForbidden")
    print(f"Ready: {ready['status']} {ready['reason']}: {ready['message']}")
    assert ready["status"] == "False"
    assert ready["message"].startswith(f"cannot get ConfigMap {STATE_CM}: Forbidden: ")
    assert ready["message"].endswith("; nothing is applied yet; retrying with backoff")
    what = f"get ConfigMap {STATE_CM}: Forbidden"
    eventually(lambda: len(retries_logged(ctl, what)) >= 3, "three failed attempts")
    assert events(cluster, ns, "ApplyForbidden", ctl) == 1
    # One line per attempt, nothing besides.
    tries = retries_logged(ctl, what)
    log = ctl.log_path.read_text()
    assert sum(1 for line in log.splitlines() if f"ConfigMap {STATE_CM}" in line) == len(tries)
    # The permission comes: the next attempt goes through.
    cluster.apply(ns, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                       "metadata": {"name": "kanary-no-get"},
                       "rules": RULES_WITHOUT_EVENTS + [events_rule]})
    obj = converged(cluster, ns, endpoints=[3, 2])
    assert condition(obj, "Ready")["reason"] == "RolloutInProgress"
    assert events(cluster, ns, "Applied", ctl) == 1
    assert events(cluster, ns, "ApplyForbidden") == 1


class EventHold:
    """An admission webhook on Events of one namespace that answers only when released.

    The real API server calls it for every Event created or patched there, and so takes as
    long to write an Event as the test likes: an API server that is slow for Events only.
    It admits everything; it holds each request until release() or HOLD seconds (below the
    webhook's timeout), and counts what it saw: every Event, and those about a Kanary (the
    controller's; kube-controller-manager writes Events in the namespace too).
    """

    HOLD = 25

    def __init__(self, cluster, ns, workdir):
        self.cluster = cluster
        self.name = f"kanary-test-hold-events-{ns}"[:63]
        self.requests = 0
        self.about_kanaries = 0
        self.timed_out = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        certs = workdir / "hold-certs"
        subprocess.run([str(REPO / "certs" / "make-certs"), "-o", str(certs)], check=True,
                       capture_output=True, timeout=60)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs / "tls.crt", certs / "tls.key")
        hold = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                obj = review["request"].get("object") or {}
                with hold.lock:
                    hold.requests += 1
                    if obj.get("involvedObject", {}).get("kind") == "Kanary":
                        hold.about_kanaries += 1
                if not hold.released.wait(EventHold.HOLD):
                    with hold.lock:
                        hold.timed_out += 1
                body = json.dumps({"apiVersion": "admission.k8s.io/v1",
                                   "kind": "AdmissionReview",
                                   "response": {"uid": review["request"]["uid"],
                                                "allowed": True}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        port = self.server.server_address[1]
        ca = base64.b64encode((certs / "ca.crt").read_bytes()).decode()
        cluster.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration", "metadata": {"name": self.name},
            "webhooks": [{
                "name": "hold.events.kanary.pyxida.io",
                "clientConfig": {"url": f"https://127.0.0.1:{port}/hold", "caBundle": ca},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"],
                           "operations": ["CREATE", "UPDATE"], "resources": ["events"],
                           "scope": "Namespaced"}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                "failurePolicy": "Ignore", "sideEffects": "None",
                "admissionReviewVersions": ["v1"], "timeoutSeconds": 30}]}))

    def seen(self):
        with self.lock:
            return self.requests

    def kanary_events_seen(self):
        with self.lock:
            return self.about_kanaries

    def release(self):
        self.released.set()

    def close(self):
        self.released.set()
        self.cluster.kubectl("delete", "validatingwebhookconfiguration", self.name,
                             "--ignore-not-found", check=False)
        self.server.shutdown()
        self.server.server_close()


def test_a_slow_api_server_for_events_holds_up_no_reconcile(
        cluster, ns, start_controller, tmp_path):
    hold = EventHold(cluster, ns, tmp_path)
    try:
        # The webhook is in force once an Event of this namespace goes through it.
        probes = iter(range(1000))

        def probe():
            cluster.apply(ns, {"apiVersion": "v1", "kind": "Event",
                               "metadata": {"name": f"probe-{next(probes)}"},
                               "involvedObject": {"kind": "ConfigMap", "name": "probe",
                                                  "namespace": ns},
                               "reason": "Probe", "message": "webhook in force?",
                               "type": "Normal"})
            return hold.seen() >= 1
        hold.release()
        eventually(probe, "the event webhook to be called")
        hold.released.clear()
        ctl = start_controller()
        ctl.wait_ready()
        apply_example(cluster, ns)
        # The first Event (ConfigChanged) reaches the API server, which waits for the webhook.
        eventually(lambda: hold.kanary_events_seen() == 1,
                   "the controller's first Event to be held")
        # Meanwhile the reconcile finished: children applied, status written.
        first = converged(cluster, ns, endpoints=[3, 2])
        # And the next change (a route outgrowing its slots: a new structure) is reconciled
        # while that Event is still held, with its own Events (ConfigChanged,
        # RolloutTriggered) queued behind it.
        slots = state(cluster, ns)["routes"][0]["slots"]
        cluster.apply(ns, slice_("myapp-v1-abcde", "myapp-v1", 8080,
                                 [f"10.244.1.{i}" for i in range(1, slots + 2)],
                                 port_name="http"))
        obj = converged(cluster, ns, endpoints=[slots + 1, 2])
        assert obj["status"]["configHash"] != first["status"]["configHash"]
        m = ctl.metrics()
        assert m["kanary_controller_event_queue_depth"] >= 1
        assert m['kanary_controller_events_total{result="created"}'] == 0
        assert m['kanary_controller_reconcile_total{result="error"}'] == 0
        assert hold.timed_out == 0, "the held Event was let go before the test was done"
        assert hold.kanary_events_seen() == 1, "one Event at a time reaches the API server"
        # Once the API server answers, every Event told is written.
        hold.release()
        assert events(cluster, ns, "ConfigChanged", ctl) == 2
        assert events(cluster, ns, "RolloutTriggered", ctl) == 1
    finally:
        hold.close()


# ---- the data plane --------------------------------------------------------------------------

POD_SERVER = r"""
import selectors, socket, sys
sel = selectors.DefaultSelector()
for spec in sys.argv[1:]:
    addr, port = spec.rsplit(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    s.listen(256)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, addr.encode() + b"\n")
print("listening", flush=True)
while True:
    for key, _ in sel.select():
        try:
            conn, _ = key.fileobj.accept()
        except OSError:
            continue
        try:
            conn.sendall(key.data)
        except OSError:
            pass
        conn.close()
"""


@contextlib.contextmanager
def netns_pods(addresses_by_port):
    """Listeners on addresses in a network namespace this test creates, reachable from here.

    addresses_by_port: {port: [address, ...]} inside 10.213.<n>.0/24; the host side is .1.
    """
    tag = os.urandom(3).hex()
    name, host_if, ns_if = f"kanary-test-{tag}", f"kt{tag}h", f"kt{tag}n"
    subnet = next(iter(addresses_by_port.values()))[0].rsplit(".", 1)[0]
    server = None

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)
    try:
        ip("netns", "add", name)
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        ip("link", "set", ns_if, "netns", name)
        ip("addr", "add", f"{subnet}.1/24", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", name, "link", "set", "lo", "up")
        for addrs in addresses_by_port.values():
            for a in addrs:
                ip("-n", name, "addr", "add", f"{a}/24", "dev", ns_if)
        ip("-n", name, "link", "set", ns_if, "up")
        specs = [f"{a}:{p}" for p, addrs in addresses_by_port.items() for a in addrs]
        server = subprocess.Popen(["ip", "netns", "exec", name, "/usr/bin/python3", "-c",
                                   POD_SERVER, *specs], stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "listening"
        yield
    finally:
        if server:
            server.kill()
            server.wait(10)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


class Haproxy:
    """The real haproxy on the structure the controller wrote, and the real agent beside it
    applying the state ConfigMap through the admin socket, as in a HAProxy pod."""

    def __init__(self, cfg, workdir, probe_port, binary, cluster, ns):
        self.workdir = workdir
        self.path = workdir / "haproxy.cfg"
        self.path.write_text(cfg)
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.path)], capture_output=True,
                               text=True, timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = open(workdir / "haproxy.log", "w")
        self.proc = subprocess.Popen([HAPROXY, "-W", "-db", "-f", str(self.path)],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        sock = workdir / "run" / "admin.sock"
        self.agent_metrics = free_port()
        self.agent_log = open(workdir / "agent.log", "w")
        self.agent = subprocess.Popen(
            [binary, "agent", f"--kubeconfig={cluster.env['KUBECONFIG']}", "--kanary", KANARY,
             "--namespace", ns, "--state-configmap", STATE_CM, "--socket", str(sock),
             "--config", str(self.path), "--metrics-bind", f"127.0.0.1:{self.agent_metrics}"],
            stdin=subprocess.DEVNULL, stdout=self.agent_log, stderr=subprocess.STDOUT)
        self.probe_port = probe_port

        def ready():
            assert self.proc.poll() is None, (workdir / "haproxy.log").read_text()
            assert self.agent.poll() is None, (workdir / "agent.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{probe_port}/ready",
                                            timeout=2) as r:
                    return r.status == 200
            except (urllib.error.URLError, OSError):
                return False
        try:
            eventually(ready, "haproxy /ready once the agent applied the state", timeout=30,
                       interval=0.2)
        except BaseException:
            self.stop()  # no process outlives the test
            raise

    def applied(self):
        """The state generation the agent applied and read back, from its /metrics."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.agent_metrics}/metrics",
                                        timeout=2) as r:
                body = r.read().decode()
        except (urllib.error.URLError, OSError):
            return None
        for line in body.splitlines():
            if line.startswith("kanary_agent_applied_generation "):
                return int(float(line.split()[1]))
        return None

    def stop(self):
        for p in (self.agent, self.proc):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        self.log.close()
        self.agent_log.close()


def split(port, n):
    """n connections through haproxy; the answering addresses counted."""
    counts = {}
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.settimeout(10)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
        who = data.decode().strip() or "<nothing>"
        counts[who] = counts.get(who, 0) + 1
    return counts


def test_the_real_haproxy_and_agent_split_by_weight_and_a_weight_change_needs_no_restart(
        cluster, ns, start_controller, binary, tmp_path):
    if not os.access(HAPROXY, os.X_OK):
        pytest.fail(f"haproxy not found at {HAPROXY}")
    if os.geteuid() != 0:
        pytest.fail("this scenario creates a network namespace (ip netns): run it as root")
    n = int.from_bytes(os.urandom(1), "big")
    v1 = [f"10.213.{n}.{i}" for i in (11, 12, 13)]
    v2 = [f"10.213.{n}.{i}" for i in (21, 22)]
    proxy, probe, metrics = free_port(), free_port(), free_port()
    (tmp_path / "run").mkdir()
    start_controller("--haproxy-bind-address=127.0.0.1", f"--haproxy-proxy-port={proxy}",
                     f"--haproxy-probe-port={probe}", f"--haproxy-metrics-port={metrics}",
                     f"--haproxy-runtime-dir={tmp_path / 'run'}").wait_ready()
    conns = 2000
    hap = None
    with netns_pods({8080: v1, 9090: v2}):
        cluster.apply(ns, service("myapp-v1", 80, port_name="http", target=8080),
                      service("myapp-v2", 9090),
                      slice_("myapp-v1-abcde", "myapp-v1", 8080, v1, port_name="http"),
                      slice_("myapp-v2-fghij", "myapp-v2", 9090, v2), kanary((80, 20)))
        try:
            for weights in ((80, 20), (50, 50)):
                if weights != (80, 20):
                    gen = kanary_obj(cluster, ns)["metadata"]["generation"]
                    cluster.patch(ns, f"kanary {KANARY}",
                                  {"spec": {"routes": kanary(weights)["spec"]["routes"]}})
                    obj = converged(cluster, ns, generation=gen + 1)
                    # The same structure: the HAProxy that runs keeps running.
                    assert obj["status"]["configHash"] == first_hash
                else:
                    obj = converged(cluster, ns, endpoints=[3, 2])
                    first_hash = obj["status"]["configHash"]
                    name = f"{KANARY}-haproxy-{first_hash[:8]}"
                    hap = Haproxy(configmaps(cluster, ns)[name]["data"]["haproxy.cfg"],
                                  tmp_path, probe, binary, cluster, ns)
                    pid = hap.proc.pid
                want = eventually(lambda: (lambda s: s if s["routes"][0]["weight"] ==
                                           weights[0] else None)(state(cluster, ns)),
                                  f"the state with weights {weights}")["generation"]
                eventually(lambda: (hap.applied() or 0) >= want,
                           f"the agent to apply state generation {want}")
                counts = split(proxy, conns)
                to_v1 = sum(c for who, c in counts.items() if who in v1)
                to_v2 = sum(c for who, c in counts.items() if who in v2)
                print(f"weights {weights}: {to_v1 / conns:.1%} to v1, {to_v2 / conns:.1%} to "
                      f"v2, by pod {dict(sorted(counts.items()))}")
                assert to_v1 + to_v2 == conns, counts
                # 2,000 draws: one standard deviation is at most 1.1 points; allow 4.
                assert abs(100 * to_v1 / conns - weights[0]) <= 4, counts
                assert all(counts.get(a, 0) > 0 for a in v1 + v2), counts
                assert hap.proc.poll() is None and hap.proc.pid == pid
        finally:
            if hap:
                hap.stop()
