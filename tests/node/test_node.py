"""Kanary on a real node: the chart, the image and HAProxy in real pods, real traffic.

tests/cluster/up --node runs a one-node cluster on this machine (containerd, kubelet,
kube-proxy, kube-scheduler and every controller of kube-controller-manager); tests/image/build
builds the images (localhost/kanary:dev from the project's Dockerfile, localhost/haproxy:3.0 and
2.6, localhost/kanary-testapp:dev) and loads them into the node. Then, as a user would:
helm install the chart; the API server reaches the webhook through its Service; the example
stack (its Deployments running the test app, which greets each connection with its version's
name) is applied; connections from the cluster's client network namespace to the destination
Service's ClusterIP are counted per version. The scenarios run in order, each on the state the
previous one left, and write what happens at each step to the log (pytest -s), so a failure
explains itself.

Traffic goes only to this cluster's ClusterIPs and pod IPs, from the client namespace that
tests/cluster/up made, after kube-proxy has programmed every endpoint; nothing can leave the
machine (tests/cluster/README.md). Every loop is bounded.

Run (as root): /usr/bin/python3 -m pytest -v -s tests/node/test_node.py
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from kanarytest import Commands, eventually, unwind_on_sigterm  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from testapp_stack import stack_with_testapp  # noqa: E402

unwind_on_sigterm()

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHART = REPO / "charts" / "kanary"
CLUSTER = REPO / "tests" / "cluster"
IMAGE_BUILD = REPO / "tests" / "image" / "build"
EXAMPLES = REPO / "examples"
TRAFFICGEN = HERE / "trafficgen.py"
RELEASE = "kanary"
NS = "kanary-system"
APP = "shop"
KANARY = "simple-kanary-rule"
HAPROXY_DEPLOY = f"{KANARY}-haproxy"
DEST = "myapp"
SELECTOR = f"kanary.pyxida.io/name={KANARY}"
COMMAND_TIMEOUT = 300
WAIT = 180  # seconds, for anything the cluster does asynchronously
SPLIT_COUNT = 10_000
TOLERANCE = 2.0  # percentage points
PRESTOP_S = 15  # the controller's preStop sleep of HAProxy pods
HARD_STOP_AFTER_S = 60  # its hard-stop-after
INSTALL_VALUES = ["--set", "image.repository=localhost/kanary", "--set", "image.tag=dev",
                  "--set", "image.pullPolicy=Never",
                  "--set", "haproxy.image.repository=localhost/haproxy",
                  "--set", "haproxy.image.tag=3.0", "--set", "haproxy.image.pullPolicy=Never"]

T0 = time.monotonic()


def log(msg):
    print(f"[node {time.monotonic() - T0:7.1f}s] {msg}", flush=True)


class Cluster(Commands):
    timeout = COMMAND_TIMEOUT

    def __init__(self, env):
        super().__init__(env)
        self.netns = env["KANARY_CLIENT_NETNS"]

    def get(self, *args, ns=APP):
        out = self.kubectl("get", *args, "-n", ns, "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def apply(self, docs, *extra, check=True):
        return self.kubectl("apply", *extra, "-f", "-", input=yaml.safe_dump_all(docs), check=check)

    # ---- traffic -------------------------------------------------------------------------

    def split(self, host, port, count=SPLIT_COUNT):
        out = self.run("ip", "netns", "exec", self.netns, sys.executable, TRAFFICGEN, "split",
                       host, port, "--count", count, "--parallel", 8, timeout=900)
        return json.loads(out.stdout)

    def stream(self, host, port, rate=50, max_seconds=300, long=0):
        return Stream(self, host, port, rate, max_seconds, long)


class Stream:
    """trafficgen.py stream, in the client namespace, in the background."""

    def __init__(self, cluster, host, port, rate, max_seconds, long):
        self.out = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", cluster.netns, sys.executable, str(TRAFFICGEN), "stream",
             host, str(port), "--rate", str(rate), "--max-seconds", str(max_seconds),
             "--long", str(long)], stdout=self.out, env=cluster.env)
        self.started = time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.started

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.out.seek(0)
        return json.loads(self.out.read())

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def ready_condition(c):
    k = c.get("kanary", KANARY)
    for cond in ((k or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return cond
    return None


def ready_status(c):
    cond = ready_condition(c)
    return cond["status"] if cond else None


def service_ip(c, name, ns=APP):
    return c.get("service", name, ns=ns)["spec"]["clusterIP"]


def ready_endpoints(c, service, ns=APP):
    """(ip, port) of every ready endpoint of a Service, from its EndpointSlices."""
    slices = c.get("endpointslices", "-l", f"kubernetes.io/service-name={service}", ns=ns)
    out = set()
    for s in (slices or {}).get("items", []):
        ports = [p["port"] for p in s.get("ports") or [] if p.get("port")]
        for e in s.get("endpoints") or []:
            if (e.get("conditions") or {}).get("ready"):
                for a in e["addresses"]:
                    out.update((a, p) for p in ports)
    return out


def kube_proxy_programmed(c, service, ns=APP):
    """True when kube-proxy's rules DNAT the Service to exactly its ready endpoints."""
    eps = ready_endpoints(c, service, ns)
    if not eps:
        return False
    nat = c.run("iptables-save", "-t", "nat").stdout
    rules = [line for line in nat.splitlines() if f"{ns}/{service}:" in line and "DNAT" in line]
    have = {r.split("--to-destination ")[1].split()[0] for r in rules if "--to-destination" in r}
    return have == {f"{a}:{p}" for a, p in eps}


def haproxy_pods(c, terminating=False):
    """The HAProxy pods of the Kanary; those being deleted only when terminating is true."""
    pods = (c.get("pods", "-l", SELECTOR) or {"items": []})["items"]
    return [p for p in pods if terminating or not p["metadata"].get("deletionTimestamp")]


def rollout_done(c):
    """The HAProxy Deployment runs one ReplicaSet, every replica available, old ones at 0."""
    d = c.get("deployment", HAPROXY_DEPLOY)
    if not d:
        return False
    st, want = d.get("status") or {}, d["spec"]["replicas"]
    return (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and st.get("updatedReplicas") == want and st.get("availableReplicas") == want
            and st.get("replicas") == want)


def config_hash(c):
    d = c.get("deployment", HAPROXY_DEPLOY)
    return d["spec"]["template"]["metadata"]["annotations"]["kanary.pyxida.io/config-hash"]


def set_weights(c, w1, w2):
    k = c.get("kanary", KANARY)
    routes = k["spec"]["routes"]
    routes[0]["weight"], routes[1]["weight"] = w1, w2
    c.kubectl("patch", "kanary", KANARY, "-n", APP, "--type", "merge",
              "-p", json.dumps({"spec": {"routes": routes}}))


def wait_serving(c, what):
    """Ready True, the rollout done, and kube-proxy programmed for the destination."""
    t = time.monotonic()
    eventually(lambda: ready_status(c) == "True", f"{what}: Kanary Ready True", WAIT, 1)
    eventually(lambda: rollout_done(c), f"{what}: HAProxy rollout done", WAIT, 1)
    eventually(lambda: kube_proxy_programmed(c, DEST), f"{what}: kube-proxy rules", WAIT, 0.5)
    log(f"{what}: Ready True, rollout done, kube-proxy programmed ({time.monotonic() - t:.1f}s)")


def check_split(c, expect, what):
    res = c.split(service_ip(c, DEST), kanary_port(c))
    log(f"{what}: {res['ok']} served, {res['failed']} failed of {res['total']} in "
        f"{res['seconds']}s: {res['share']} errors={res['errors']}")
    assert res["failed"] == 0, res
    for name, want in expect.items():
        got = res["share"].get(name, 0.0)
        assert abs(got - want) <= TOLERANCE, f"{name}: {got}% served, want {want}±{TOLERANCE}"
    return res


def kanary_port(c):
    return c.get("kanary", KANARY)["spec"]["port"]


# ---- the cluster -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the node suite runs containerd and a kubelet: it needs root")
    state = tmp_path_factory.mktemp("node") / "state"
    try:
        log("tests/cluster/up --node")
        up = subprocess.run([str(CLUSTER / "up"), "--node", "--state-dir", str(state)],
                            stdout=subprocess.PIPE, text=True, timeout=1800)
        assert up.returncode == 0, f"tests/cluster/up --node failed (exit {up.returncode})"
        env = subprocess.run(["bash", "-c", 'eval "$1" && env -0', "bash", up.stdout],
                             capture_output=True, check=True, text=True).stdout
        cl = Cluster(dict(kv.split("=", 1) for kv in env.split("\0") if "=" in kv))
        log("node Ready; tests/image/build --load")
        t = time.monotonic()
        cl.run(IMAGE_BUILD, "--load", timeout=3000)
        log(f"images built and loaded in {time.monotonic() - t:.0f}s")
        cl.kubectl("create", "namespace", NS)
        cl.kubectl("label", "namespace", NS, "pod-security.kubernetes.io/enforce=restricted")
        cl.kubectl("create", "namespace", APP)
        yield cl
    finally:
        if state.exists():
            log("tests/cluster/down")
            subprocess.run([str(CLUSTER / "down"), str(state)], stdout=subprocess.PIPE,
                           timeout=300)


@pytest.fixture(autouse=True)
def explain_failure(request, c):
    """After a failed scenario, the cluster's state goes to the log next to the failure."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed == failed:
        return
    for args in (("get", "pods", "-A", "-o", "wide"), ("get", "ky", "-A"),
                 ("get", "events", "-A", "--sort-by=.lastTimestamp"),
                 ("logs", "-n", NS, "-l", "app.kubernetes.io/component=controller", "--tail=40"),
                 ("logs", "-n", APP, "-l", SELECTOR, "--tail=20", "--prefix")):
        out = c.kubectl(*args, check=False)
        text = "\n".join((out.stdout + out.stderr).splitlines()[-60:])
        log(f"after the failure: kubectl {' '.join(args)}\n{text}")


# ---- the scenarios, in order -------------------------------------------------------------------


def test_helm_install_runs_both_daemons_in_pods(c):
    t = time.monotonic()
    c.helm("install", RELEASE, CHART, "--namespace", NS, *INSTALL_VALUES, "--wait",
           "--timeout", "300s")
    log(f"helm install: every pod Ready in {time.monotonic() - t:.1f}s")
    for comp in ("webhook", "controller"):
        pods = c.get("pods", "-l", f"app.kubernetes.io/component={comp}", ns=NS)["items"]
        assert pods, f"no {comp} pod"
        for p in pods:
            assert p["status"]["phase"] == "Running", p["status"]
            sc = p["spec"]["containers"][0]["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"]
            assert p["spec"]["containers"][0]["image"] == "localhost/kanary:dev"
        log(f"{comp}: {len(pods)} pod(s) Running and Ready, read-only root, no capabilities")
    # The API server calls the webhook through its Service, not a URL.
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        cfg = json.loads(c.kubectl("get", kind, "-o", "json").stdout)["items"]
        hooks = [h for item in cfg for h in item["webhooks"] if "kanary" in h["name"]]
        assert hooks and all("service" in h["clientConfig"] and "url" not in h["clientConfig"]
                             for h in hooks), hooks


def test_apply_example_serves_80_20_through_the_cluster_ip(c):
    t = time.monotonic()
    c.apply(stack_with_testapp((EXAMPLES / "simple-stack.yaml").read_text()), "-n", APP)
    eventually(lambda: ready_status(c) == "True", "Kanary Ready True", WAIT, 0.5)
    log(f"kubectl apply -> READY True in {time.monotonic() - t:.1f}s")
    out = c.kubectl("get", "ky", "-n", APP).stdout
    log("kubectl get ky:\n" + out)
    assert "True" in out and "myapp-v1=80,myapp-v2=20" in out
    wait_serving(c, "example")
    pods = haproxy_pods(c)
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)
    check_split(c, {"myapp-v1": 80, "myapp-v2": 20}, "80/20 through the ClusterIP")


def test_invalid_example_is_refused_by_the_webhook_service(c):
    text = (EXAMPLES / "invalid.yaml").read_text()
    out = c.kubectl("apply", "-n", APP, "-f", "-", input=text, check=False)
    log(f"kubectl apply -f examples/invalid.yaml: exit {out.returncode}: {out.stderr.strip()}")
    assert out.returncode != 0
    assert "spec.routes[1].weight" in out.stderr and "weights must sum to 100" in out.stderr
    # With the weight fixed only the webhook (through its Service) can find the missing port.
    out = c.kubectl("apply", "-n", APP, "-f", "-", input=text.replace("weight: 120", "weight: 20"),
                    check=False)
    log(f"... with the weight fixed: exit {out.returncode}: {out.stderr.strip()}")
    assert out.returncode != 0
    assert ('spec.routes[1].backend.servicePort: Not found: "grpc": Service myapp-v2 has no '
            'TCP port of that name') in out.stderr


def state_weights(c):
    cm = c.get("configmap", f"{KANARY}-haproxy-state")
    return [r["weight"] for r in json.loads(cm["data"]["state.json"])["routes"]] if cm else None


def test_structural_change_rolls_with_no_failed_connection(c):
    # Weights and endpoints change live (tests/node/test_runtime.py); what still rolls is the
    # structure: here myapp-v2 outgrows the server slots its route has.
    old_hash = config_hash(c)
    old_rs = {rs["metadata"]["name"] for rs in c.get("replicasets", "-l", SELECTOR)["items"]
              if rs["spec"]["replicas"] > 0}
    max_s = PRESTOP_S + HARD_STOP_AFTER_S + 90
    s = c.stream(service_ip(c, DEST), kanary_port(c), rate=50, max_seconds=max_s, long=10)
    try:
        time.sleep(3)
        t = time.monotonic()
        cm = c.get("configmap", f"{KANARY}-haproxy-state")
        slots = json.loads(cm["data"]["state.json"])["routes"][1]["slots"]
        c.kubectl("scale", "deployment", "myapp-v2", "-n", APP, f"--replicas={slots + 1}")
        log(f"myapp-v2 scaled to {slots + 1} pods, past its {slots} slots, under 50 new "
            "connections/s and 10 long connections")
        eventually(lambda: config_hash(c) != old_hash, "a new configuration", WAIT, 0.5)
        eventually(lambda: rollout_done(c) and ready_status(c) == "True", "rollout done", WAIT, 0.5)
        rolled = time.monotonic() - t
        log(f"rollout to {config_hash(c)[:8]} done {rolled:.1f}s after the change")
        # The long connections (all on old pods) end by HAProxy's soft stop; wait for them.
        deadline = t + PRESTOP_S + HARD_STOP_AFTER_S + 60
        while time.monotonic() < deadline and s.proc.poll() is None:
            time.sleep(2)
            if not any(p["metadata"].get("deletionTimestamp")
                       for p in haproxy_pods(c, terminating=True)):
                if time.monotonic() - t > PRESTOP_S + HARD_STOP_AFTER_S + 10:
                    break
        res = s.stop()
    finally:
        s.kill()
    change_at = 3.0
    log(f"stream: {res['sent']} new connections, {res['ok']} served, {res['failed']} failed; "
        f"{res['by_name']}; failures {res['failures'][:10]}")
    assert res["failed"] == 0, res["failures"]
    ends = []
    for lc in res["long"]:
        ends.append((lc["served_by"], lc["end"], lc["ended_at"] and lc["ended_at"] - change_at,
                     lc["echoes"]))
    log("long connections (served by, how they ended, seconds after the change, echoes): "
        + "; ".join(f"{a}, {b}, {c_ if c_ is None else round(c_, 1)}, {d}" for a, b, c_, d in ends))
    for served, end, after, echoes in ends:
        assert served, ends
        # Open at least through the preStop sleep: nothing cuts them at the rollout itself.
        assert end.startswith(("closed by the server", "reset by the server", "open")), ends
        assert after is None or after >= PRESTOP_S, ends
    # The old ReplicaSets scale to 0, the superseded ConfigMap goes.
    eventually(lambda: all(rs["spec"]["replicas"] == 0
                           for rs in c.get("replicasets", "-l", SELECTOR)["items"]
                           if rs["metadata"]["name"] in old_rs), "old ReplicaSet at 0", WAIT, 1)
    eventually(lambda: not c.get("configmap", f"{KANARY}-haproxy-{old_hash[:8]}"),
               "the superseded ConfigMap collected", WAIT, 1)
    log("old ReplicaSet at 0 replicas, superseded ConfigMap deleted")
    wait_serving(c, "grown slots")
    check_split(c, {"myapp-v1": 80, "myapp-v2": 20}, "80/20 after the rollout")


def test_every_pod_of_one_version_deleted_under_load(c):
    s = c.stream(service_ip(c, DEST), kanary_port(c), rate=50, max_seconds=120)
    try:
        time.sleep(3)
        c.kubectl("delete", "pods", "-n", APP, "-l", "app=myapp,version=v2", "--wait=false")
        deleted_at = s.elapsed()
        log(f"every myapp-v2 pod deleted at {deleted_at:.1f}s of the stream")
        # The Deployment makes new pods; their endpoints roll HAProxy; wait until served again.
        time.sleep(5)
        wait_serving(c, "after the deletion")
        time.sleep(5)
        res = s.stop()
    finally:
        s.kill()
    early = [f for f in res["failures"] if f["at"] < deleted_at + 10]
    late = [f for f in res["failures"] if f["at"] >= deleted_at + 10]
    log(f"stream: {res['ok']} served, {res['failed']} failed ({len(early)} within 10s of the "
        f"deletion, {len(late)} after); {res['by_name']}; {res['failures'][:10]}")
    # A connection HAProxy had already handed to a pod that the kill then closed cannot be
    # retried (L4: it is established): those few are reported; once the health checks and
    # the new endpoints have settled, none may fail.
    assert not late, late


def test_haproxy_pod_deleted_under_load(c):
    s = c.stream(service_ip(c, DEST), kanary_port(c), rate=50, max_seconds=180)
    try:
        time.sleep(3)
        victim = haproxy_pods(c)[0]["metadata"]["name"]
        c.kubectl("delete", "pod", "-n", APP, victim, "--wait=false")
        at = s.elapsed()
        log(f"HAProxy pod {victim} deleted at {at:.1f}s of the stream")
        eventually(lambda: len(haproxy_pods(c)) == 2 and rollout_done(c),
                   "two HAProxy pods again", WAIT, 1)
        eventually(lambda: kube_proxy_programmed(c, DEST), "kube-proxy rules", WAIT, 0.5)
        time.sleep(PRESTOP_S + 5)
        res = s.stop()
    finally:
        s.kill()
    log(f"stream: {res['ok']} served, {res['failed']} failed after deleting an HAProxy pod; "
        f"{res['failures'][:10]}")
    assert res["ok"] > 0
    # Reported, not asserted to be 0: the endpoint removal races the pod's preStop.
    after = [f for f in res["failures"] if f["at"] > at + PRESTOP_S + 5]
    assert not after, after


def test_webhook_and_controller_pods_deleted(c):
    # One webhook pod gone: admission keeps answering through the other (PDB minAvailable 1).
    pods = c.get("pods", "-l", "app.kubernetes.io/component=webhook", ns=NS)["items"]
    assert len(pods) == 2
    c.kubectl("delete", "pod", "-n", NS, pods[0]["metadata"]["name"], "--wait=false")
    k = c.get("kanary", KANARY)
    for key in ("status", "metadata"):
        k.pop(key, None)
    k["metadata"] = {"name": KANARY, "namespace": APP}
    answered = 0
    for _ in range(20):
        out = c.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(k), check=False)
        assert out.returncode == 0, out.stderr
        answered += 1
        time.sleep(0.25)
    log(f"webhook pod {pods[0]['metadata']['name']} deleted: {answered} of 20 server dry-run "
        "applies answered")
    # The controller pod gone: the new one takes the Lease and applies the next change.
    lease = c.get("lease", "kanary-controller", ns=NS)
    holder = lease["spec"]["holderIdentity"]
    pod = c.get("pods", "-l", "app.kubernetes.io/component=controller", ns=NS)["items"][0]
    t = time.monotonic()
    c.kubectl("delete", "pod", "-n", NS, pod["metadata"]["name"], "--wait=false")
    new = eventually(lambda: (c.get("lease", "kanary-controller", ns=NS)["spec"]
                              .get("holderIdentity") not in (None, "", holder)) and
                     c.get("lease", "kanary-controller", ns=NS)["spec"]["holderIdentity"],
                     "a new Lease holder", WAIT, 0.5)
    log(f"controller pod deleted: {new} holds the Lease {time.monotonic() - t:.1f}s later")
    for w1, w2 in ((60, 40), (80, 20)):
        set_weights(c, w1, w2)
        eventually(lambda: state_weights(c) == [w1, w2],
                   f"{w1}/{w2} written by the new leader", WAIT, 1)
    wait_serving(c, "80/20 again")


def test_unpullable_haproxy_image_keeps_ready_false_until_fixed(c):
    bad = "localhost/haproxy:no-such-tag"
    c.helm("upgrade", RELEASE, CHART, "--namespace", NS, *INSTALL_VALUES,
           "--set", "haproxy.image.tag=no-such-tag", "--wait", "--timeout", "300s")
    log(f"helm upgrade: HAProxy image {bad}")
    cond = eventually(lambda: (ready_condition(c) or {}).get("status") == "False"
                      and bad in ready_condition(c).get("message", "") and ready_condition(c),
                      "Ready False naming the image", WAIT, 1)
    log(f"Ready {cond['status']} {cond['reason']}: {cond['message']}")
    # It stays False: sampled for 20 s. The old pods keep serving meanwhile (maxUnavailable 0).
    for _ in range(20):
        assert ready_status(c) != "True"
        time.sleep(1)
    res = c.split(service_ip(c, DEST), kanary_port(c), count=500)
    log(f"while broken, the old HAProxy pods still serve: {res['ok']} of 500, {res['failed']} "
        f"failed {res['errors']}")
    # Service goes on through the old pods. Not asserted to be perfect: one run of many lost
    # 3 of 500 here, with the HAProxy pods of the previous rollout still in their soft stop;
    # the counts are in the log.
    assert res["failed"] <= 5, res
    c.helm("upgrade", RELEASE, CHART, "--namespace", NS, *INSTALL_VALUES, "--wait",
           "--timeout", "300s")
    log("helm upgrade back to localhost/haproxy:3.0")
    wait_serving(c, "fixed image")


def test_haproxy_2_6_image_rolls_in_and_splits(c):
    s = c.stream(service_ip(c, DEST), kanary_port(c), rate=50, max_seconds=300)
    try:
        c.helm("upgrade", RELEASE, CHART, "--namespace", NS, *INSTALL_VALUES,
               "--set", "haproxy.image.tag=2.6", "--wait", "--timeout", "300s")
        log("helm upgrade: HAProxy image localhost/haproxy:2.6")
        eventually(lambda: all(p["spec"]["containers"][0]["image"] == "localhost/haproxy:2.6"
                               for p in haproxy_pods(c)) and rollout_done(c),
                   "HAProxy 2.6 pods", WAIT, 1)
        wait_serving(c, "HAProxy 2.6")
        time.sleep(3)
        res = s.stop()
    finally:
        s.kill()
    log(f"rollout 3.0 -> 2.6 under load: {res['ok']} served, {res['failed']} failed")
    assert res["failed"] == 0, res["failures"]
    check_split(c, {"myapp-v1": 80, "myapp-v2": 20}, "80/20 on HAProxy 2.6")


def test_uninstall_removes_what_the_readme_says(c):
    c.kubectl("delete", "kanaries", "--all", "--all-namespaces", "--wait=true", "--timeout=120s")
    eventually(lambda: not c.get("deployment", HAPROXY_DEPLOY) and not c.get("service", DEST),
               "the Kanary's children collected", WAIT, 1)
    c.helm("uninstall", RELEASE, "--namespace", NS, "--wait", "--timeout", "300s")
    def left():
        names = c.kubectl("get", "all,secrets,configmaps,leases,serviceaccounts,roles,"
                          "rolebindings", "-n", NS, "-o", "name").stdout.split()
        return [x for x in names if not x.endswith(("/kube-root-ca.crt", "/default"))]
    # helm's --wait sees the Deployments go; their pods end in their own grace period.
    eventually(lambda: not left(), "nothing of the release left in its namespace", WAIT, 1)
    cluster_wide = c.kubectl("get", "validatingwebhookconfigurations,mutatingwebhookconfigurations,"
                             "clusterroles,clusterrolebindings", "-l",
                             f"app.kubernetes.io/instance={RELEASE}", "-o", "name").stdout.split()
    assert not cluster_wide, cluster_wide
    assert c.kubectl("get", "crd", "kanaries.kanary.pyxida.io", check=False).returncode == 0
    log("helm uninstall: nothing of the release left in the cluster but the CRD")
