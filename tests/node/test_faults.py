"""Faults on the real node: Kanary's daemons, the control plane and the runtime fail under it.

On a node cluster (tests/cluster/up --node) with the chart installed from the images that
tests/image/build makes, the example stack (its versions running the test app) and, from the
second scenario on, a burst of Kanaries more, each scenario breaks one thing while a stream
of connections runs through the example's destination Service:

  1. the controller's process killed (SIGKILL) in the middle of the rollout of a weight change;
  2. kube-apiserver, then etcd, restarted (tests/cluster/ctl) while Kanaries are created and
     changed in a burst;
  3. the controller cut off from the API server for 30 s by iptables rules (both directions,
     new and established connections), while Kanaries are changed, created and deleted;
  4. both webhook pods deleted under a stream of `kubectl apply`, gracefully then forced:
     with failurePolicy Fail the API server refuses the applies that come while no webhook
     answers; each one refused is applied again afterwards;
  5. containerd restarted (its shims and so the containers keep running).

After each, with bounded polls only: no Kanary lost; for every Kanary exactly one Deployment,
one PodDisruptionBudget, one destination Service and one hash-named ConfigMap, that ConfigMap
the one its status names (configHash is the sha256 of its haproxy.cfg), every child owned
by its live Kanary and nothing orphaned; status.observedGeneration the Kanary's generation and
Ready True. The stream's failed connections are counted and reported: none may fail in these
faults, since HAProxy's pods and kube-proxy's rules need neither Kanary's daemons nor the
control plane to go on serving (each scenario's comment says why for its own fault).

Run (as root): /usr/bin/python3 -m pytest -v -s tests/node/test_faults.py
With KANARY_NODE_CLUSTER=<state directory of a running node cluster> it runs on that cluster
(installing the chart and the stack when they are missing) and leaves it running.
"""

import hashlib
import json
import os
import pathlib
import re
import signal
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from kanarytest import eventually, unwind_on_sigterm  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from nodecluster import (APP, CHART, EXAMPLES, INSTALL_VALUES, MANAGED, NAME_LABEL,  # noqa: E402
                         NS, RELEASE, SETTLED_WAIT, WAIT, Logger, condition, container_pid,
                         endpoints_current, explain, explain_traffic_failures,
                         haproxy_pods as kanary_pods, haproxy_settled,
                         kube_proxy_programmed, node_cluster, rollout_done, service_ip,
                         template_hash)
from testapp_stack import stack_with_testapp  # noqa: E402

unwind_on_sigterm()

KANARY = "simple-kanary-rule"
DEST = "myapp"
# Kanaries created, then changed, during the control plane's restarts. Each runs one HAProxy
# pod, which requests 100m CPU, and a change surges a second: the node's 2 CPUs hold the
# example, Kanary's daemons and 8 such Kanaries mid-rollout (20 left pods Pending for CPU).
BURST = 8
BEFORE = 100  # connections a stream serves before a fault
AFTER = 250  # connections a stream serves after everything converged
CUT_S = 30  # how long the controller is cut off from the API server
# How long a restarted daemon gets to exit after SIGTERM before SIGKILL. kube-apiserver stops
# listening at once but then waits up to a minute for its watches: with that minute the
# restart would be a node outage (past the node monitor's grace period), not a restart.
GRACE_S = 5
FAULT_CHAIN = "KANARY-FAULT"
CHILD_KINDS = "configmaps,deployments,services,poddisruptionbudgets,serviceaccounts,roles,rolebindings"
HASH_NAME = re.compile(r"^(?P<kanary>.+)-haproxy-[0-9a-f]{8}$")

log = Logger("faults")


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    if os.geteuid() != 0:
        # Exit status 77: meson reports the suite SKIP, not OK (a skipped test is exit 0).
        pytest.exit("faults on the node run containerd and a kubelet: they need root",
                    returncode=77)
    with node_cluster(tmp_path_factory, log) as cl:
        if cl.helm("status", RELEASE, "--namespace", NS, check=False).returncode != 0:
            t = time.monotonic()
            cl.helm("install", RELEASE, CHART, "--namespace", NS, *INSTALL_VALUES, "--wait",
                    "--timeout", "300s")
            log(f"helm install: every pod Ready in {time.monotonic() - t:.1f}s")
        cl.apply(stack_with_testapp((EXAMPLES / "simple-stack.yaml").read_text()), "-n", APP)
        # Kanaries that must stay: the example, and any already there on an attached cluster.
        cl.expected = {KANARY} | {k["metadata"]["name"] for k in cl.items("kanaries")}
        converge(cl, "the example")
        yield cl


@pytest.fixture(autouse=True)
def explain_failure(request, c):
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed != failed:
        explain(c, log, MANAGED)


# ---- what must hold after every fault -----------------------------------------------------------


def problems(c):
    """Everything that is not as it should be, as sentences; empty when all is well."""
    out = []
    kanaries = {k["metadata"]["name"]: k for k in c.items("kanaries")}
    if set(kanaries) != c.expected:
        out.append(f"Kanaries {sorted(kanaries)}, expected {sorted(c.expected)}")
    children = c.items(CHILD_KINDS, "-l", MANAGED)
    mine = {name: [] for name in kanaries}
    for o in children:
        meta = o["metadata"]
        owner = meta.get("labels", {}).get(NAME_LABEL)
        what = f"{o['kind']} {meta['name']}"
        if owner not in kanaries:
            out.append(f"{what}: orphaned (its Kanary {owner} does not exist)")
            continue
        refs = [r for r in meta.get("ownerReferences") or [] if r.get("controller")]
        if len(refs) != 1 or refs[0]["kind"] != "Kanary" or refs[0]["name"] != owner or \
                refs[0]["uid"] != kanaries[owner]["metadata"]["uid"]:
            out.append(f"{what}: controller ownerReferences {refs}, not Kanary {owner} "
                       f"{kanaries[owner]['metadata']['uid']}")
        mine[owner].append(o)
    for name, k in sorted(kanaries.items()):
        gen, st = k["metadata"]["generation"], k.get("status") or {}
        ready, h = condition(k), st.get("configHash") or ""
        if st.get("observedGeneration") != gen:
            out.append(f"{name}: observedGeneration {st.get('observedGeneration')}, "
                       f"generation {gen}")
        if not ready or ready["status"] != "True":
            out.append(f"{name}: Ready {ready and (ready['status'], ready.get('reason'))}")
        of = {}
        for o in mine[name]:
            of.setdefault(o["kind"], []).append(o)
        hashed = [o for o in of.get("ConfigMap", []) if HASH_NAME.match(o["metadata"]["name"])]
        want_cm = f"{name}-haproxy-{h[:8]}"
        if [o["metadata"]["name"] for o in hashed] != [want_cm]:
            out.append(f"{name}: hash-named ConfigMaps {[o['metadata']['name'] for o in hashed]}"
                       f", want only {want_cm}")
        elif hashlib.sha256(hashed[0]["data"]["haproxy.cfg"].encode()).hexdigest() != h:
            out.append(f"{name}: {want_cm} does not hold the configuration of hash {h}")
        for kind, want in (("Deployment", f"{name}-haproxy"),
                           ("PodDisruptionBudget", f"{name}-haproxy"),
                           ("Service", k["spec"]["destination"])):
            have = [o["metadata"]["name"] for o in of.get(kind, [])]
            if have != [want]:
                out.append(f"{name}: {kind}s {have}, want exactly {want}")
        for d in of.get("Deployment", []):
            if template_hash(d) != h:
                out.append(f"{name}: Deployment runs {template_hash(d)[:8]}, status says {h[:8]}")
            elif not rollout_done(d):
                out.append(f"{name}: Deployment rollout not done {d.get('status')}")
    return out


def converge(c, what):
    """Polls until problems() is empty; fails naming what is still wrong. Returns the time."""
    t = time.monotonic()
    last = []

    def ok():
        last[:] = problems(c)
        return not last

    try:
        eventually(ok, f"{what}: every Kanary converged", WAIT, 1)
    except AssertionError as e:
        raise AssertionError(f"{e}; still wrong:\n  " + "\n  ".join(last)) from None
    took = time.monotonic() - t
    log(f"{what}: {len(c.expected)} Kanaries converged {took:.1f}s later: children unique and "
        "owned, no orphan, observedGeneration current, Ready True, configHash = the ConfigMap")
    return took


def main_stream(c):
    k = c.get("kanary", KANARY)
    s = c.stream(service_ip(c, DEST), k["spec"]["port"], rate=50, max_seconds=900)
    s.wait_ok(BEFORE, "before the fault")
    return s


def end_stream(c, s, what):
    eventually(lambda: endpoints_current(c, KANARY, DEST), f"{what}: endpoints current", WAIT,
               0.5)
    eventually(lambda: kube_proxy_programmed(c, DEST), f"{what}: kube-proxy rules", WAIT, 0.5)
    # The stream goes on until the old HAProxy pods are gone (tests/node/test_node.py,
    # wait_serving), so it covers their whole termination.
    eventually(lambda: haproxy_settled(c, KANARY, DEST),
               f"{what}: old HAProxy pods gone, no connection bound to them",
               SETTLED_WAIT, 0.5)
    s.wait_ok(AFTER, f"{what}: after convergence")
    res = s.stop()
    # A failed connection has a cause the log should name: HAProxy containers restarted
    # (their liveness probe) or probes failing on a starved node.
    pods = kanary_pods(c, KANARY)
    res["haproxy_restarts"] = sum(restarts(p) for p in pods)
    log(f"{what}: stream {res['sent']} connections, {res['ok']} served, {res['failed']} failed "
        f"{res['failures'][:5]}; the example's HAProxy containers restarted "
        f"{res['haproxy_restarts']} times")
    if res["failed"]:
        explain_traffic_failures(c, log, res, DEST)
        out = c.kubectl("get", "events", "-n", APP, "--field-selector", "reason=Unhealthy",
                        check=False)
        log("probe failures:\n" + "\n".join(out.stdout.splitlines()[-15:]))
    return res


def change_weights(c, name):
    """Patches a Kanary's two weights to a split it does not have; returns its summary."""
    k = c.get("kanary", name)
    routes = k["spec"]["routes"]
    w1 = next(w for w in (50, 80, 30) if w != routes[0]["weight"])
    routes[0]["weight"], routes[1]["weight"] = w1, 100 - w1
    c.kubectl("patch", "kanary", name, "-n", APP, "--type", "merge",
              "-p", json.dumps({"spec": {"routes": routes}}))
    return f"myapp-v1={w1},myapp-v2={100 - w1}"


def slots(c):
    """The server slots of the example's second route (myapp-v2), from its state ConfigMap."""
    cm = c.get("configmap", f"{KANARY}-haproxy-state")
    return json.loads(cm["data"]["state.json"])["routes"][1]["slots"]


def summary(c, name):
    return ((c.get("kanary", name) or {}).get("status") or {}).get("summary")


def kanary_doc(name, w1):
    return {"apiVersion": "kanary.pyxida.io/v1alpha1", "kind": "Kanary",
            "metadata": {"name": name, "namespace": APP},
            "spec": {"destination": name, "proxy": {"replicas": 1}, "routes": [
                {"backend": {"serviceName": "myapp-v1", "servicePort": "http"}, "weight": w1},
                {"backend": {"serviceName": "myapp-v2", "servicePort": 9090},
                 "weight": 100 - w1}]}}


def controller_pod(c):
    pods = [p for p in c.items("pods", "-l", "app.kubernetes.io/component=controller", ns=NS)
            if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def restarts(pod):
    return sum(s.get("restartCount", 0) for s in pod["status"].get("containerStatuses") or [])


def lease(c):
    return c.get("lease", "kanary-controller", ns=NS)["spec"]


class Writer(threading.Thread):
    """kubectl apply of each document in turn, each retried until the API server takes it.

    A retry follows a refusal after a short pause (bounded: at most `tries` per document);
    every refusal is counted with the first line of kubectl's error.
    """

    def __init__(self, c, docs, tries=240):
        super().__init__(daemon=True)
        self.c, self.docs, self.tries = c, docs, tries
        self.done, self.refused, self.error = 0, [], None

    def run(self):
        try:
            for doc in self.docs:
                for attempt in range(self.tries):
                    out = self.c.kubectl("apply", "--request-timeout=15s", "-f", "-",
                                         input=json.dumps(doc), check=False, timeout=60)
                    if out.returncode == 0:
                        break
                    self.refused.append((out.stderr.strip().splitlines() or ["?"])[-1][:160])
                    time.sleep(0.5)  # a pause between two tries of a bounded retry loop
                else:
                    raise AssertionError(f"{doc['metadata']['name']}: refused {self.tries} "
                                         f"times; last: {self.refused[-1]}")
                self.done += 1
        except BaseException as e:  # reported by finish()
            self.error = e

    def finish(self, timeout):
        self.join(timeout)
        assert not self.is_alive(), f"the writer still runs after {timeout}s"
        if self.error:
            raise self.error

    def wait_done(self, n):
        eventually(lambda: self.error or self.done >= n or not self.is_alive(),
                   f"{n} applies taken", WAIT, 0.1)
        if self.error:
            raise self.error


def tally(refused):
    kinds = {}
    for line in refused:
        key = re.sub(r"[0-9a-f]{6,}|\d+(\.\d+)*", "#", line)[:100]
        kinds[key] = kinds.get(key, 0) + 1
    return kinds


# ---- the faults, in order -----------------------------------------------------------------------


def test_controller_killed_mid_rollout(c):
    """SIGKILL to the controller's process while a weight change and a structural change
    (a backend outgrowing its route's server slots) roll out: its replacement
    (the container restarted in the same pod, a new identity) waits for the Lease to expire,
    takes it, and finishes the work: status, the rollout's end, the old ConfigMap's removal.
    The rollout itself is the deployment controller's (maxUnavailable 0, old pods in their
    preStop sleep then soft stop), so no connection may fail."""
    dep = c.get("deployment", f"{KANARY}-haproxy")
    old_hash = template_hash(dep)
    pod = controller_pod(c)
    before, holder = restarts(pod), lease(c)["holderIdentity"]
    pid = container_pid(c, pod, NS)
    s = main_stream(c)
    try:
        # Weights change live (the state ConfigMap); the structure rolls: a weight change
        # and myapp-v2 grown past the server slots of its route, at once.
        want = change_weights(c, KANARY)
        c.kubectl("scale", "deployment", "myapp-v2", "-n", APP, f"--replicas={slots(c) + 1}")
        # The new configuration applied: the rollout has begun. Kill at once.
        eventually(lambda: template_hash(c.get("deployment", f"{KANARY}-haproxy")) != old_hash,
                   "the new configuration applied", WAIT, 0.05)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        dep = c.get("deployment", f"{KANARY}-haproxy")
        k = c.get("kanary", KANARY)
        log(f"controller PID {pid} killed with the Deployment at {template_hash(dep)[:8]} "
            f"(was {old_hash[:8]}), rollout done {rollout_done(dep)}, observedGeneration "
            f"{(k.get('status') or {}).get('observedGeneration')} of "
            f"{k['metadata']['generation']}, old ConfigMap present "
            f"{bool(c.get('configmap', f'{KANARY}-haproxy-{old_hash[:8]}'))}")
        eventually(lambda: restarts(controller_pod(c)) > before, "the controller restarted",
                   WAIT, 0.5)
        new = eventually(lambda: lease(c).get("holderIdentity") not in (None, "", holder) and
                         lease(c)["holderIdentity"], "a new Lease holder", WAIT, 0.5)
        log(f"container restarted; {new} took the Lease {time.monotonic() - killed_at:.1f}s "
            "after the kill")
        converge(c, "controller killed")
        assert summary(c, KANARY) == want
        res = end_stream(c, s, "controller killed")
    finally:
        s.kill()
    assert restarts(controller_pod(c)) == before + 1
    assert res["failed"] == 0, res["failures"]


def test_apiserver_then_etcd_restarted_during_a_burst(c):
    """BURST Kanaries created, kube-apiserver restarted in the middle; then all of them
    changed, etcd restarted in the middle. The writes the API server refused while down
    were tried again (counted); every write it took is in force at the end. HAProxy keeps
    serving and kube-proxy keeps its rules while the API server is away (the node's status
    updates are seconds apart, well within the node monitor's grace period of 20s), so no
    connection may fail."""
    names = [f"burst-{i:02d}" for i in range(BURST)]
    s = main_stream(c)
    try:
        w = Writer(c, [kanary_doc(n, 80) for n in names])
        w.start()
        w.wait_done(3)
        pid, said = c.restart("kube-apiserver", grace=GRACE_S)
        log(f"kube-apiserver restarted (PID {pid}) with {w.done} of {BURST} creates taken "
            f"before: {said}")
        w.finish(WAIT)
        c.expected |= set(names)
        log(f"{BURST} Kanaries created; {len(w.refused)} tries refused and retried: "
            f"{tally(w.refused)}")
        converge(c, "kube-apiserver restarted")
        w = Writer(c, [kanary_doc(n, 50) for n in names])
        w.start()
        w.wait_done(3)
        pid, said = c.restart("etcd", grace=GRACE_S)
        log(f"etcd restarted (PID {pid}) with {w.done} of {BURST} changes taken before: {said}")
        w.finish(WAIT)
        log(f"{BURST} Kanaries changed; {len(w.refused)} tries refused and retried: "
            f"{tally(w.refused)}")
        converge(c, "etcd restarted")
        wrong = {n: summary(c, n) for n in names if summary(c, n) != "myapp-v1=50,myapp-v2=50"}
        assert not wrong, wrong
        res = end_stream(c, s, "kube-apiserver and etcd restarted")
    finally:
        s.kill()
    assert res["failed"] == 0, res["failures"]
    # Every burst Kanary serves: a few connections through each one's own ClusterIP.
    failed = {}
    for n in names:
        eventually(lambda: kube_proxy_programmed(c, n), f"kube-proxy rules for {n}", WAIT, 0.5)
        eventually(lambda: haproxy_settled(c, n, n), f"old HAProxy pods of {n} gone",
                   SETTLED_WAIT, 0.5)
        r = c.split(service_ip(c, n), 80, 50)
        if r["failed"] or set(r["by_name"]) != {"myapp-v1", "myapp-v2"}:
            failed[n] = r
    log(f"50 connections through each of the {BURST} burst Kanaries: "
        f"{BURST - len(failed)} served every one by both versions")
    assert not failed, failed


def test_controller_cut_off_from_the_api_server(c):
    """Every packet between the controller's pod and the API server dropped for CUT_S
    seconds (both directions, so established watches hang as in a partition), while one
    Kanary is changed, one created, one deleted and the example's weights changed. The
    webhook and the data plane are not cut. Afterwards the controller (restarted by the
    kubelet once its Lease could not be renewed, or still running) catches up; the deleted
    Kanary's children went with it through the garbage collector meanwhile."""
    created = f"burst-{BURST:02d}"
    pod = controller_pod(c)
    ip, before = pod["status"]["podIP"], restarts(pod)
    node_ip = c.env["KANARY_NODE_IP"]
    api_port = c.env["KANARY_API_SERVER"].rsplit(":", 1)[1]
    s = main_stream(c)
    rules = [("INPUT", ["-s", ip, "-d", node_ip, "-p", "tcp", "--dport", api_port]),
             ("OUTPUT", ["-s", node_ip, "-d", ip, "-p", "tcp", "--sport", api_port])]
    try:
        c.run("iptables", "-w", "-N", FAULT_CHAIN)
        for chain, match in rules:
            c.run("iptables", "-w", "-A", FAULT_CHAIN, *match, "-j", "DROP")
        for chain, _ in rules:
            c.run("iptables", "-w", "-I", chain, "1", "-j", FAULT_CHAIN)
        cut_at = time.monotonic()
        renewed = lease(c).get("renewTime")
        log(f"controller pod {pod['metadata']['name']} ({ip}) cut off from {node_ip}:{api_port}")
        want = change_weights(c, KANARY)
        want_00 = change_weights(c, "burst-00")
        c.kubectl("delete", "kanary", "burst-01", "-n", APP, "--wait=false")
        c.apply([kanary_doc(created, 70)])
        c.expected = (c.expected - {"burst-01"}) | {created}
        log("during the cut: weights of the example and burst-00 changed, burst-01 deleted, "
            f"{created} created")
        # The fault lasts CUT_S seconds; meanwhile, once a second, what the cluster shows.
        seen = set()
        while time.monotonic() - cut_at < CUT_S:
            p = controller_pod(c)
            seen.add((restarts(p) - before, lease(c).get("renewTime") != renewed,
                      ((c.get("kanary", KANARY).get("status") or {}).get("summary"))))
            time.sleep(1)  # one sample a second of a fault whose length is the scenario's
        summaries = sorted({x[2] for x in seen})
        log(f"during the cut: controller restarts {sorted({x[0] for x in seen})}, Lease renewed "
            f"{any(x[1] for x in seen)}, the example's status summary {summaries}")
    finally:
        for chain, _ in rules:
            c.run("iptables", "-w", "-D", chain, "-j", FAULT_CHAIN, check=False)
        c.run("iptables", "-w", "-F", FAULT_CHAIN, check=False)
        c.run("iptables", "-w", "-X", FAULT_CHAIN, check=False)
    try:
        restored = time.monotonic()
        log(f"cut removed after {restored - cut_at:.1f}s")
        eventually(lambda: lease(c).get("renewTime") != renewed, "the Lease renewed", WAIT, 0.5)
        log(f"the Lease renewed {time.monotonic() - restored:.1f}s after the cut ended, "
            f"by {lease(c)['holderIdentity']}; controller restarts "
            f"{restarts(controller_pod(c)) - before}")
        converge(c, "controller cut off")
        assert summary(c, KANARY) == want
        assert summary(c, "burst-00") == want_00
        assert summary(c, created) == "myapp-v1=70,myapp-v2=30"
        res = end_stream(c, s, "controller cut off")
    finally:
        s.kill()
    assert res["failed"] == 0, res["failures"]


@pytest.mark.parametrize("how", ["graceful", "forced"])
def test_webhook_pods_deleted_under_a_stream_of_applies(c, how):
    """`kubectl apply` of the example's Kanary, one after another, each with a new annotation
    (a real UPDATE, which the API server sends to both webhooks), while both webhook pods are
    deleted: as `kubectl delete pod` does (graceful: they serve through their grace period,
    and kube-proxy sends to serving, terminating endpoints while no other is ready), then
    forced (--grace-period=0 --force: gone at once, as in a crash). With failurePolicy Fail,
    an apply is refused while no webhook answers (counted); each refused one is applied again
    afterwards and taken. No write is let through unchecked, and the data plane does not
    notice."""
    base = c.get("kanary", KANARY)
    doc = {"apiVersion": base["apiVersion"], "kind": "Kanary", "spec": base["spec"],
           "metadata": {"name": KANARY, "namespace": APP, "annotations": {}}}
    key = "faults.kanary.pyxida.io/apply"
    old = {p["metadata"]["name"]
           for p in c.items("pods", "-l", "app.kubernetes.io/component=webhook", ns=NS)}
    results, stop = [], threading.Event()

    def applies():
        i = 0
        while not stop.is_set() and i < 2000:
            i += 1
            doc["metadata"]["annotations"][key] = f"{how}-{i}"
            out = c.kubectl("apply", "--request-timeout=30s", "-f", "-", input=json.dumps(doc),
                            check=False, timeout=60)
            results.append((i, out.returncode, out.stderr.strip()))

    def webhooks_ready():
        now = c.items("pods", "-l", "app.kubernetes.io/component=webhook", ns=NS)
        return len(now) == 2 and not old & {p["metadata"]["name"] for p in now} and all(
            (condition(p) or {}).get("status") == "True" for p in now)

    s = main_stream(c)
    t = threading.Thread(target=applies, daemon=True)
    try:
        t.start()
        eventually(lambda: sum(1 for r in results if r[1] == 0) >= 5, "5 applies taken", WAIT,
                   0.1)
        force = ["--grace-period=0", "--force"] if how == "forced" else []
        c.kubectl("delete", "pods", "-n", NS, "-l", "app.kubernetes.io/component=webhook",
                  "--wait=false", *force)
        deleted = len(results)
        log(f"both webhook pods deleted ({how}) after {deleted} applies")
        eventually(webhooks_ready, "two new webhook pods Ready", WAIT, 0.5)
        ready = len(results)
        eventually(lambda: sum(1 for r in results[ready:] if r[1] == 0) >= 10,
                   "10 applies taken after the new webhook pods were Ready", WAIT, 0.2)
        stop.set()
        t.join(120)
        assert not t.is_alive()
        refused = [r for r in results if r[1] != 0]
        log(f"{how}: {len(results)} applies: {len(results) - len(refused)} taken, "
            f"{len(refused)} refused ({sum(1 for r in refused if 'failed calling webhook' in r[2])}"
            f" 'failed calling webhook', {sum(1 for r in refused if r[0] > ready)} of them after "
            f"the new pods were Ready); applies {deleted + 1}..{ready} came between the "
            f"deletion and the new pods Ready; refused: "
            f"{[(r[0], r[2].splitlines()[-1][-120:]) for r in refused[:3]]}")
        # Refused only for want of a webhook, and only after the deletion (kube-proxy may
        # still send to the old pods' addresses for a moment after the new ones are Ready).
        assert all("failed calling webhook" in r[2] for r in refused), refused
        assert all(r[0] > deleted for r in refused), refused
        # Each refused apply again, now: every one is taken. Then the last one once more.
        for i, _, _ in refused:
            doc["metadata"]["annotations"][key] = f"{how}-{i}"
            out = c.kubectl("apply", "-f", "-", input=json.dumps(doc), check=False)
            assert out.returncode == 0, f"apply {i} refused again: {out.stderr}"
        last = f"{how}-{results[-1][0]}"
        doc["metadata"]["annotations"][key] = last
        c.kubectl("apply", "-f", "-", input=json.dumps(doc))
        assert c.get("kanary", KANARY)["metadata"]["annotations"][key] == last
        log(f"{how}: the {len(refused)} refused applies applied again: every one taken")
        converge(c, f"webhook pods deleted ({how})")
        res = end_stream(c, s, f"webhook pods deleted ({how})")
    finally:
        stop.set()
        s.kill()
    assert res["failed"] == 0, res["failures"]


def test_containerd_restarted(c):
    """containerd stopped (SIGTERM) and started again. The containers' shims outlive it, so
    no pod and no container restarts and no connection may fail; once it is back the node
    makes new pods again (a backend scaled up), and a weight change takes effect."""
    def pods():
        return {p["metadata"]["uid"]: (p["metadata"]["name"], restarts(p))
                for ns in (APP, NS) for p in c.items("pods", ns=ns)
                if not p["metadata"].get("deletionTimestamp")}

    before = pods()
    s = main_stream(c)
    try:
        pid, said = c.restart("containerd", grace=GRACE_S)
        log(f"containerd restarted (PID {pid}): {said}")
        node = c.get("node", "kanary-node", ns=NS)
        log(f"node Ready {condition(node)['status']} ({condition(node).get('reason')})")
        s.wait_ok(BEFORE, "after the restart")
        after = pods()
        assert after == before, {"before": before, "after": after}
        log(f"the same {len(after)} pods, no container restarted")
        # The node makes pods again: one more myapp-v1 pod runs and serves.
        c.kubectl("scale", "deployment", "myapp-v1", "-n", APP, "--replicas=4")
        eventually(lambda: len([p for p in c.items("pods", "-l", "app=myapp,version=v1")
                                if (condition(p) or {}).get("status") == "True"]) == 4,
                   "a fourth myapp-v1 pod Ready", WAIT, 0.5)
        want = change_weights(c, KANARY)
        converge(c, "containerd restarted, then a new pod and a weight change")
        assert summary(c, KANARY) == want
        res = end_stream(c, s, "containerd restarted")
    finally:
        s.kill()
    assert res["failed"] == 0, res["failures"]
