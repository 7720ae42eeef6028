"""What the node suites share: a node cluster with the images loaded, kubectl and helm in its
environment, traffic from its client network namespace, and the state of a Kanary and its
children read back from the API server.

node_cluster() runs tests/cluster/up --node for a test module (or, for development, attaches
to a node cluster already running: KANARY_NODE_CLUSTER=<its state directory>, left running
afterwards, with the images already loaded into it), loads the images tests/image/build makes
and creates the namespaces. Every wait
is a bounded poll (kanarytest.eventually) of an object, a rule or the traffic counters.
"""

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from kanarytest import Commands, eventually  # noqa: E402

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
COMMAND_TIMEOUT = 300
WAIT = 180  # seconds, for anything the cluster does asynchronously
INSTALL_VALUES = ["--set", "image.repository=localhost/kanary", "--set", "image.tag=dev",
                  "--set", "image.pullPolicy=Never",
                  "--set", "haproxy.image.repository=localhost/haproxy",
                  "--set", "haproxy.image.tag=3.0", "--set", "haproxy.image.pullPolicy=Never"]
MANAGED = "app.kubernetes.io/managed-by=kanary"
NAME_LABEL = "kanary.pyxida.io/name"
HASH_ANNOTATION = "kanary.pyxida.io/config-hash"
CNI_BRIDGE = "knycni0"  # the pods' bridge (tests/cluster/node.sh)


class Logger:
    """Lines to the test's log (pytest -s), stamped with the seconds since the module began."""

    def __init__(self, tag):
        self.tag, self.t0 = tag, time.monotonic()

    def __call__(self, msg):
        print(f"[{self.tag} {time.monotonic() - self.t0:7.1f}s] {msg}", flush=True)


class Cluster(Commands):
    timeout = COMMAND_TIMEOUT

    def __init__(self, env):
        super().__init__(env)
        self.netns = env["KANARY_CLIENT_NETNS"]
        self.dir = pathlib.Path(env["KANARY_CLUSTER_DIR"])

    def get(self, *args, ns=APP):
        out = self.kubectl("get", *args, "-n", ns, "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def items(self, *args, ns=APP):
        return (self.get(*args, ns=ns) or {"items": []})["items"]

    def apply(self, docs, *extra, check=True):
        return self.kubectl("apply", *extra, "-f", "-", input=yaml.safe_dump_all(docs), check=check)

    def restart(self, daemon, grace=15):
        """tests/cluster/ctl restart DAEMON (SIGTERM, SIGKILL after grace seconds), started
        again and serving. Returns its new PID and what ctl said of the stop and start."""
        out = self.run(CLUSTER / "ctl", "--state-dir", self.dir, "--grace", grace, "restart",
                       daemon, timeout=300)
        return int(out.stdout.split()[-1]), "; ".join(
            line.removeprefix("ctl: ") for line in out.stderr.splitlines())

    # ---- traffic -------------------------------------------------------------------------

    def split(self, host, port, count=10_000):
        out = self.run("ip", "netns", "exec", self.netns, sys.executable, TRAFFICGEN, "split",
                       host, port, "--count", count, "--parallel", 8, timeout=900)
        return json.loads(out.stdout)

    def stream(self, host, port, rate=50, max_seconds=300, long=0):
        return Stream(self, host, port, rate, max_seconds, long)


class Stream:
    """trafficgen.py stream, in the client namespace, in the background.

    Its progress file (rewritten a few times a second) says how many connections it has made,
    served and failed so far, and how its long connections stand; the waits below poll it.
    """

    def __init__(self, cluster, host, port, rate, max_seconds, long):
        self.out = tempfile.TemporaryFile(mode="w+")
        self.dir = tempfile.TemporaryDirectory()
        self.progress_file = pathlib.Path(self.dir.name) / "progress.json"
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", cluster.netns, sys.executable, str(TRAFFICGEN), "stream",
             host, str(port), "--rate", str(rate), "--max-seconds", str(max_seconds),
             "--long", str(long), "--progress-file", str(self.progress_file)],
            stdout=self.out, env=cluster.env)
        self.started = time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.started

    def progress(self):
        """The last progress snapshot: seconds, sent, ok, failed, long_open, long_ended."""
        try:
            return json.loads(self.progress_file.read_text())
        except (OSError, ValueError):
            return {"seconds": 0, "sent": 0, "ok": 0, "failed": 0, "long_open": 0,
                    "long_ended": 0}

    def wait_ok(self, more, what, timeout=120):
        """Until `more` connections beyond those served now have been served; the progress."""
        want = self.progress()["ok"] + more
        return eventually(lambda: self._running() and self.progress()["ok"] >= want and
                          self.progress(), f"{what}: {more} more connections served",
                          timeout, 0.2)

    def wait_long_open(self, count, timeout=60):
        return eventually(lambda: self._running() and self.progress()["long_open"] >= count,
                          f"{count} long connections open", timeout, 0.2)

    def _running(self):
        assert self.proc.poll() is None, "trafficgen stream ended early"
        return True

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
        self.dir.cleanup()


@contextlib.contextmanager
def node_cluster(tmp_path_factory, log):
    """A node cluster for one test module, images loaded and namespaces made; then down.

    With KANARY_NODE_CLUSTER set, the node cluster running from that state directory instead,
    with the images it has (tests/image/build --load them first), left running afterwards.
    """
    attach = os.environ.get("KANARY_NODE_CLUSTER")
    state = pathlib.Path(attach) if attach else tmp_path_factory.mktemp("node") / "state"
    try:
        if attach:
            log(f"attaching to the node cluster in {state}")
            text = (state / "env").read_text()
        else:
            log("tests/cluster/up --node")
            up = subprocess.run([str(CLUSTER / "up"), "--node", "--state-dir", str(state)],
                                stdout=subprocess.PIPE, text=True, timeout=1800)
            assert up.returncode == 0, f"tests/cluster/up --node failed (exit {up.returncode})"
            text = up.stdout
        env = subprocess.run(["bash", "-c", 'eval "$1" && env -0', "bash", text],
                             capture_output=True, check=True, text=True).stdout
        cl = Cluster(dict(kv.split("=", 1) for kv in env.split("\0") if "=" in kv))
        if not attach:
            log("node Ready; tests/image/build --load")
            t = time.monotonic()
            cl.run(IMAGE_BUILD, "--load", timeout=3000)
            log(f"images built and loaded in {time.monotonic() - t:.0f}s")
        for ns in (NS, APP):
            if cl.kubectl("get", "namespace", ns, check=False).returncode != 0:
                cl.kubectl("create", "namespace", ns)
        cl.kubectl("label", "--overwrite", "namespace", NS,
                   "pod-security.kubernetes.io/enforce=restricted")
        yield cl
    finally:
        if state.exists() and not attach:
            log("tests/cluster/down")
            subprocess.run([str(CLUSTER / "down"), str(state)], stdout=subprocess.PIPE,
                           timeout=300)


def explain(c, log, kanary_selector):
    """The cluster's state, to the log next to a failure."""
    for args in (("get", "pods", "-A", "-o", "wide"), ("get", "ky", "-A"),
                 ("get", "events", "-A", "--sort-by=.lastTimestamp"),
                 ("logs", "-n", NS, "-l", "app.kubernetes.io/component=controller", "--tail=40"),
                 ("logs", "-n", APP, "-l", kanary_selector, "--tail=20", "--prefix")):
        out = c.kubectl(*args, check=False)
        text = "\n".join((out.stdout + out.stderr).splitlines()[-60:])
        log(f"after the failure: kubectl {' '.join(args)}\n{text}")


# ---- a Kanary and what the cluster made of it -------------------------------------------------


def condition(k, ctype="Ready"):
    for cond in ((k or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype:
            return cond
    return None


def service_ip(c, name, ns=APP):
    return c.get("service", name, ns=ns)["spec"]["clusterIP"]


def ready_endpoints(c, service, ns=APP):
    """(ip, port) of every ready endpoint of a Service, from its EndpointSlices."""
    out = set()
    for s in c.items("endpointslices", "-l", f"kubernetes.io/service-name={service}", ns=ns):
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


# Conntrack states in which a new SYN with the same 4-tuple follows the entry (and its NAT, to
# the pod it chose then) instead of starting a new connection through kube-proxy's rules.
# Measured on the project's kernel (6.18), DNAT and masquerade as kube-proxy does them: a new
# SYN replaced a TIME_WAIT or ESTABLISHED entry and went to the new backend, but followed a
# CLOSE entry (a connection the server reset) and an unanswered SYN_SENT one to the old
# backend: "No route to host" 3 s later once that backend's address was gone. These states
# live at most 120 s (SYN_SENT, FIN_WAIT); kube-proxy removes stale entries of UDP only.
FOLLOWED_STATES = ("SYN_SENT", "SYN_RECV", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "CLOSE")
# How long waiting for such entries to expire may take: a FIN_WAIT entry lives 120 s past the
# last FIN a client retransmits to a pod that is gone, and the client gives up within 2 minutes.
SETTLED_WAIT = 300


def conntrack_entries(c, service, ns=APP, sport=None):
    """The host's conntrack entries of TCP connections to a Service's ClusterIP (those from the
    client namespace): dicts of state, sport (the client's port), to (the address the
    connection was DNATed to) and line (conntrack -L's text)."""
    svc = c.get("service", service, ns=ns)
    if not svc:
        # Explaining a failure must not fail in turn: without the Service there is no entry to show.
        return []
    args = ["conntrack", "-L", "-p", "tcp", "--orig-dst", svc["spec"]["clusterIP"]]
    if sport is not None:
        args += ["--orig-port-src", sport]
    out = []
    for line in c.run(*args, check=False).stdout.splitlines():
        words = line.split()
        kv = [w.split("=", 1) for w in words if "=" in w]
        srcs = [v for k, v in kv if k == "src"]
        sports = [v for k, v in kv if k == "sport"]
        if len(words) < 4 or len(srcs) < 2 or not sports:
            continue
        out.append({"state": words[3] if "=" not in words[3] else "", "sport": int(sports[0]),
                    "to": srcs[1], "line": line})
    return out


def stale_bindings(c, service, ns=APP):
    """Conntrack entries to the Service's ClusterIP that a new connection from the same client
    port would follow to an address that is not a ready endpoint any more (a pod that is gone
    or going). Under load the client reuses its ports within seconds: such a connection goes
    to a dead address and fails (EHOSTUNREACH once ARP for it gives up)."""
    ready = {a for a, _ in ready_endpoints(c, service, ns)}
    return [e for e in conntrack_entries(c, service, ns)
            if e["state"] in FOLLOWED_STATES and e["to"] not in ready]


def haproxy_settled(c, kanary, service, ns=APP):
    """A rollout's end as a client sees it: no HAProxy pod of the Kanary is still terminating
    (every old pod's address has left the node) and no conntrack entry would lead a new
    connection to an address that is not a ready endpoint."""
    return (not [p for p in haproxy_pods(c, kanary, terminating=True)
                 if p["metadata"].get("deletionTimestamp")]
            and not stale_bindings(c, service, ns))


def explain_traffic_failures(c, log, res, service, ns=APP):
    """After failed connections: when and from which client port each failed, the conntrack
    entries of those ports now, the node's neighbour entries on the pods' bridge, kube-proxy's
    DNAT targets for the Service and the Kanary's pods with their addresses."""
    fails = res.get("failures") or []
    log("failed connections (seconds into the run, seconds taken, client port, reason): "
        + "; ".join(f"{f['at']}, {f.get('seconds')}, {f.get('port')}, {f['reason']}"
                    for f in fails[:40]))
    for f in fails[:20]:
        if f.get("port"):
            for e in conntrack_entries(c, service, ns, f["port"]):
                log(f"conntrack of client port {f['port']}: {e['line']}")
    for args in (("ip", "-br", "link", "show", CNI_BRIDGE),
                 ("ip", "neigh", "show", "dev", CNI_BRIDGE)):
        out = c.run(*args, check=False)
        log(f"{' '.join(args)}:\n{out.stdout}{out.stderr}")
    nat = c.run("iptables-save", "-t", "nat", check=False).stdout
    log("kube-proxy DNAT targets: " + ", ".join(
        line.split("--to-destination ")[1].split()[0] for line in nat.splitlines()
        if f"{ns}/{service}:" in line and "--to-destination" in line))
    out = c.kubectl("get", "pods", "-n", ns, "-o", "custom-columns=NAME:.metadata.name,"
                    "IP:.status.podIP,PHASE:.status.phase,DELETED:.metadata.deletionTimestamp",
                    check=False)
    log(f"pods:\n{out.stdout}")


def endpoints_current(c, kanary, service, ns=APP):
    """The Service's ready endpoints are the Kanary's Ready HAProxy pods that are not being
    deleted, no more, no less: the EndpointSlice has caught up with the pods (kube-proxy's
    rules are checked against the EndpointSlice by kube_proxy_programmed)."""
    pods = {p["status"].get("podIP") for p in haproxy_pods(c, kanary)
            if (condition(p) or {}).get("status") == "True"}
    return bool(pods) and {a for a, _ in ready_endpoints(c, service, ns)} == pods


def haproxy_pods(c, kanary, terminating=False):
    """The HAProxy pods of a Kanary; those being deleted only when terminating is true."""
    pods = c.items("pods", "-l", f"{NAME_LABEL}={kanary}")
    return [p for p in pods if terminating or not p["metadata"].get("deletionTimestamp")]


def rollout_done(d):
    """A Deployment runs one ReplicaSet, every replica updated and available, none extra."""
    if not d:
        return False
    st, want = d.get("status") or {}, d["spec"]["replicas"]
    return (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and st.get("updatedReplicas") == want and st.get("availableReplicas") == want
            and st.get("replicas") == want)


def template_hash(d):
    return d["spec"]["template"]["metadata"]["annotations"][HASH_ANNOTATION]


def container_pid(c, pod, ns):
    """The host PID of a pod's first container's process, from the CRI (crictl inspect)."""
    name = pod["spec"]["containers"][0]["name"]
    cid = c.run("crictl", "ps", "-q", "--pod", pod_sandbox(c, pod, ns), "--name", f"^{name}$",
                "--state", "Running").stdout.split()
    assert len(cid) == 1, f"{ns}/{pod['metadata']['name']}: running containers {cid}"
    return json.loads(c.run("crictl", "inspect", cid[0]).stdout)["info"]["pid"]


def pod_sandbox(c, pod, ns):
    ids = c.run("crictl", "pods", "-q", "--name", f"^{pod['metadata']['name']}$",
                "--namespace", f"^{ns}$", "--state", "Ready").stdout.split()
    assert len(ids) == 1, f"{ns}/{pod['metadata']['name']}: sandboxes {ids}"
    return ids[0]
