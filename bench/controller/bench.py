# SPDX-License-Identifier: Apache-2.0
"""Controller benchmark: apply-to-ConfigMap latency, convergence of many Kanaries, memory.

Usage: /usr/bin/python3 bench/controller/bench.py [--controller PATH] [--latency N]
           [--scale N] [--endpoints N] [--workers N] [--settle SECONDS]

Starts a throw-away control plane (tests/cluster/up, with a Service range wide enough for
every destination Service), then:

1. idle: the controller runs with nothing to do; its resident memory (VmRSS) is read.
2. latency: N Kanaries (default 100) are created one after the other, 200 ms apart, their
   backends already in place; the latency of each is the time from the start of its POST to
   the ADDED event of its ConfigMap on a watch. Then each gets a weight change, and the time
   to the MODIFIED event of its state ConfigMap (a weight change rolls nothing: it is
   written to the state the agent applies). p50 and p99 of both.
3. convergence: the controller is stopped, the latency phase's namespace deleted, N
   Kanaries (default 1,000) are created with two backend Services of endpoints/2 ready
   endpoints each (default 10 endpoints per Kanary), and a fresh controller is started: the
   time from its start until every Kanary's status names its applied configuration
   (status.configHash, observedGeneration), and its memory then. No rollout ever completes
   (no deployment controller runs), so every Kanary's rollout waits and is looked at again:
   the reconciles in the 5 s after convergence, and in the --settle seconds (default 60)
   after those.

The numbers go to standard output as a Markdown table. Nothing leaves 127.0.0.1: endpoint
addresses are only stored in EndpointSlices, never contacted. Every process started is
stopped by its PID.
"""

import argparse
import http.client
import json
import os
import pathlib
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

REPO = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = REPO / "tests" / "cluster"
CRD = REPO / "charts" / "kanary" / "crds" / "kanaries.yaml"
GROUP_PATH = "/apis/kanary.pyxida.io/v1alpha1"


class Api:
    """A keep-alive HTTPS client with the cluster's admin certificate."""

    def __init__(self, state):
        server = (state / "env").read_text().split("KANARY_API_SERVER=")[1].split()[0]
        u = urllib.parse.urlparse(server.strip("'\""))
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=str(state / "pki" / "ca.crt"))
        self.ctx.load_cert_chain(str(state / "pki" / "admin.crt"), str(state / "pki" / "admin.key"))
        self.conn = None
        self.state = state

    def request_raw(self, path):
        conn = self.connect()
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read().decode()
            if r.status != 200:
                raise RuntimeError(f"GET {path}: {r.status}")
            return body
        finally:
            conn.close()

    def connect(self):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=120)

    def request(self, method, path, body=None, ctype="application/json"):
        for attempt in range(3):
            if self.conn is None:
                self.conn = self.connect()
            try:
                data = json.dumps(body).encode() if body is not None else None
                self.conn.request(method, path, body=data,
                                  headers={"Content-Type": ctype} if data else {})
                r = self.conn.getresponse()
                payload = r.read()
                if r.status == 429 or r.status >= 500:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                if r.status >= 300:
                    raise RuntimeError(f"{method} {path}: {r.status} {payload[:300]!r}")
                return json.loads(payload) if payload else None
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt == 2:
                    raise
        raise RuntimeError(f"{method} {path}: server busy")

    def create(self, path, obj):
        return self.request("POST", path, obj)


def service(name):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"clusterIP": "None", "selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def endpoint_slice(name, svc, addresses):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses]}


def kanary(name, weights=(80, 20)):
    return {"apiVersion": "kanary.pyxida.io/v1alpha1", "kind": "Kanary",
            "metadata": {"name": name},
            "spec": {"destination": f"{name}-lb", "routes": [
                {"backend": {"serviceName": f"{name}-a", "servicePort": "http"},
                 "weight": weights[0]},
                {"backend": {"serviceName": f"{name}-b", "servicePort": "http"},
                 "weight": weights[1]}]}}


def create_backends(api, ns, names, per_route):
    for i, name in enumerate(names):
        for j, side in enumerate("ab"):
            api.create(f"/api/v1/namespaces/{ns}/services", service(f"{name}-{side}"))
            # Unique per Kanary, only stored in the slice, never contacted.
            addrs = [f"10.{100 + j}.{(i * per_route + k) // 250}.{(i * per_route + k) % 250 + 1}"
                     for k in range(per_route)]
            api.create(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
                       endpoint_slice(f"{name}-{side}-x", f"{name}-{side}", addrs))


def rss_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def vm_kib(pid, field):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def cpu_s(pid):
    """User plus system CPU time of a process so far, in seconds."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE")


def apiserver_writes(api):
    """Write requests the API server answered so far: {(verb, resource): count}."""
    out = {}
    for line in api.request_raw("/metrics").splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels, value = line.rsplit(" ", 1)
        kv = dict(p.split("=", 1) for p in labels[len("apiserver_request_total{"):-1].split(","))
        verb = kv.get("verb", "").strip('"')
        if verb not in WRITE_VERBS:
            continue
        res = kv.get("resource", "").strip('"')
        sub = kv.get("subresource", "").strip('"')
        key = (verb, res + ("/" + sub if sub else ""))
        out[key] = out.get(key, 0) + float(value)
    return out


class Sampler(threading.Thread):
    """Every second: the API server's write count, for the peak write rate over 5 s."""

    def __init__(self, api):
        super().__init__(daemon=True)
        self.api = Api(api.state)
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.samples.append((time.monotonic(), sum(apiserver_writes(self.api).values())))
            except (OSError, RuntimeError, http.client.HTTPException):
                pass
            self.halt.wait(1)

    def peak(self, window=5.0):
        best = 0.0
        for i, (t, n) in enumerate(self.samples):
            for t2, n2 in self.samples[i + 1:]:
                if t2 - t >= window:
                    best = max(best, (n2 - n) / (t2 - t))
                    break
        return best


def percentile(values, p):
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class ConfigMapWatch(threading.Thread):
    """Records when each Kanary's ConfigMaps are first seen (ADDED), and when they change
    (MODIFIED), by name."""

    def __init__(self, api, ns):
        super().__init__(daemon=True)
        self.api, self.ns = api, ns
        self.seen = {}
        self.modified = {}
        self.lock = threading.Lock()
        self.started_ok = threading.Event()

    def run(self):
        try:
            self.watch()
        except (OSError, http.client.HTTPException, ValueError):
            pass  # the cluster went away at the end of the run

    def watch(self):
        conn = self.api.connect()
        q = urllib.parse.urlencode({"watch": "1", "timeoutSeconds": "3600",
                                    "labelSelector": "app.kubernetes.io/managed-by=kanary"})
        conn.request("GET", f"/api/v1/namespaces/{self.ns}/configmaps?{q}")
        r = conn.getresponse()
        self.started_ok.set()
        buf = b""
        while True:
            chunk = r.read1(65536) if hasattr(r, "read1") else r.read(65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                ev = json.loads(line)
                now = time.monotonic()
                name = ev["object"]["metadata"]["name"]
                with self.lock:
                    if ev["type"] == "ADDED":
                        self.seen.setdefault(name, now)
                    elif ev["type"] == "MODIFIED":
                        self.modified.setdefault(name, []).append(now)

    def first(self, kanary_name, exclude=()):
        with self.lock:
            for name, t in self.seen.items():
                if (name.startswith(kanary_name + "-haproxy-") and name not in exclude and
                        name != kanary_name + "-haproxy-state"):
                    return name, t
        return None, None

    def state_modified(self, kanary_name, after):
        """When the Kanary's state ConfigMap first changed after the given time, or None."""
        with self.lock:
            times = self.modified.get(kanary_name + "-haproxy-state", [])
            return next((t for t in times if t >= after), None)


class Controller:
    def __init__(self, binary, env, workers, logdir, tag):
        self.log_path = logdir / f"controller-{tag}.log"
        self.log = open(self.log_path, "w")
        self.metrics_port = free_port()
        self.proc = subprocess.Popen(
            [binary, "run", f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
             f"--health-probe-bind-address=127.0.0.1:{free_port()}",
             "--leader-elect-resource-namespace=default",
             f"--concurrent-kanary-syncs={workers}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def metrics(self):
        """The samples of /metrics, or {} while the server is not up yet."""
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
            c.request("GET", "/metrics")
            body = c.getresponse().read().decode()
            c.close()
        except OSError:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the controller exited; see {self.log_path}")
            return {}
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, what, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = predicate()
        if r:
            return r
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--controller", default=str(REPO / "build" / "controller" / "kanary-controller"))
    ap.add_argument("--latency", type=int, default=100, help="Kanaries for the latency phase")
    ap.add_argument("--scale", type=int, default=1000, help="Kanaries for the convergence phase")
    ap.add_argument("--endpoints", type=int, default=10, help="ready endpoints per Kanary")
    ap.add_argument("--workers", type=int, default=1, help="--concurrent-kanary-syncs")
    ap.add_argument("--settle", type=int, default=60,
                    help="seconds to count reconciles for, from 5 s after convergence")
    args = ap.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="kanary-bench."))
    state = work / "state"
    env = dict(os.environ, KANARY_SERVICE_CIDR="10.0.0.0/16")
    up = subprocess.run([str(CLUSTER / "up"), "--state-dir", str(state)], env=env,
                        stdout=subprocess.PIPE, text=True, timeout=1800)
    if up.returncode != 0:
        sys.exit("tests/cluster/up failed")
    cenv = dict(kv.split("=", 1) for kv in subprocess.run(
        ["bash", "-c", 'eval "$1" && env -0', "bash", up.stdout], capture_output=True,
        check=True, text=True).stdout.split("\0") if "=" in kv)
    ctl = None
    results = {}
    try:
        subprocess.run(["kubectl", "apply", "-f", str(CRD)], env=cenv, check=True,
                       capture_output=True)
        subprocess.run(["kubectl", "wait", "--for=condition=Established",
                        "crd/kanaries.kanary.pyxida.io", "--timeout=60s"], env=cenv, check=True,
                       capture_output=True)
        api = Api(state)
        for ns in ("bench-latency", "bench-scale"):
            api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": ns}})

        # 1. idle
        ctl = Controller(args.controller, cenv, args.workers, work, "latency")
        wait(lambda: ctl.metrics().get("kanary_controller_leader") == 1, "leadership", 60)
        time.sleep(3)
        results["rss_idle_kib"] = rss_kib(ctl.proc.pid)

        # 2. latency
        names = [f"lat{i:04d}" for i in range(args.latency)]
        create_backends(api, "bench-latency", names, args.endpoints // 2)
        watch = ConfigMapWatch(api, "bench-latency")
        watch.start()
        watch.started_ok.wait(30)
        time.sleep(1)
        created = {}
        for name in names:
            t0 = time.monotonic()
            api.create(f"{GROUP_PATH}/namespaces/bench-latency/kanaries", kanary(name))
            created[name] = t0
            time.sleep(0.2)
        wait(lambda: all(watch.first(n)[0] for n in names), "every first ConfigMap", 120)
        lat_create = [watch.first(n)[1] - created[n] for n in names]
        changed = {}
        for name in names:
            t0 = time.monotonic()
            api.request("PATCH", f"{GROUP_PATH}/namespaces/bench-latency/kanaries/{name}",
                        {"spec": kanary(name, (50, 50))["spec"]},
                        ctype="application/merge-patch+json")
            changed[name] = t0
            time.sleep(0.2)
        wait(lambda: all(watch.state_modified(n, changed[n]) for n in names),
             "every state ConfigMap changed", 120)
        lat_update = [watch.state_modified(n, changed[n]) - changed[n] for n in names]
        results["latency_create_ms"] = (percentile(lat_create, 50) * 1000,
                                        percentile(lat_create, 99) * 1000)
        results["latency_update_ms"] = (percentile(lat_update, 50) * 1000,
                                        percentile(lat_update, 99) * 1000)
        m = ctl.metrics()
        results["latency_reconciles"] = m.get('kanary_controller_reconcile_total{result="success"}')
        ctl.stop()
        ctl = None
        # The latency phase's objects go, so the next phase counts exactly its own.
        api.request("DELETE", "/api/v1/namespaces/bench-latency")

        def latency_gone():
            try:
                api.request("GET", "/api/v1/namespaces/bench-latency")
                return False
            except RuntimeError as e:
                return " 404 " in str(e)
        wait(latency_gone, "namespace bench-latency to be deleted", 600)

        # 3. convergence
        names = [f"k{i:04d}" for i in range(args.scale)]
        t = time.monotonic()
        create_backends(api, "bench-scale", names, args.endpoints // 2)
        for name in names:
            api.create(f"{GROUP_PATH}/namespaces/bench-scale/kanaries", kanary(name))
        results["setup_s"] = time.monotonic() - t
        pids = {name: int((state / "pid" / name).read_text()) for name in ("kube-apiserver", "etcd")}
        cpu0 = {name: cpu_s(pid) for name, pid in pids.items()}
        writes0 = apiserver_writes(api)
        sampler = Sampler(api)
        sampler.start()
        t0 = time.monotonic()
        ctl = Controller(args.controller, cenv, args.workers, work, "scale")

        def all_converged():
            items = api.request("GET", f"{GROUP_PATH}/namespaces/bench-scale/kanaries")["items"]
            done = sum(1 for k in items
                       if k.get("status", {}).get("configHash")
                       and k["status"].get("observedGeneration") == k["metadata"]["generation"])
            return done == args.scale
        # Listing every Kanary is itself work for the API server: not more often than needed.
        wait(all_converged, f"{args.scale} Kanaries to converge", 3600,
             interval=max(0.2, args.scale / 2000))
        results["converge_s"] = time.monotonic() - t0
        results["ctl_cpu_s"] = cpu_s(ctl.proc.pid)
        for name, pid in pids.items():
            results[f"{name}_cpu_s"] = cpu_s(pid) - cpu0[name]
        writes1 = apiserver_writes(api)
        sampler.halt.set()
        sampler.join()
        delta = {k: v - writes0.get(k, 0) for k, v in writes1.items() if v - writes0.get(k, 0) > 0}
        results["writes"] = sum(delta.values())
        results["writes_by"] = sorted(delta.items(), key=lambda kv: -kv[1])
        results["write_peak"] = sampler.peak()
        m = ctl.metrics()
        results["converge_reconciles"] = m.get("kanary_controller_reconcile_duration_seconds_count", 0)
        results["converge_reconcile_s"] = m.get("kanary_controller_reconcile_duration_seconds_sum", 0)
        results["cache_bytes"] = {k.split('"')[1]: v for k, v in m.items()
                                  if k.startswith("kanary_controller_informer_bytes{")}
        results["rss_converged_kib"] = rss_kib(ctl.proc.pid)
        results["hwm_kib"] = vm_kib(ctl.proc.pid, "VmHWM")
        time.sleep(5)
        results["rss_settled_kib"] = rss_kib(ctl.proc.pid)
        m = ctl.metrics()
        results["heap"] = {k.split('"')[1]: v for k, v in m.items()
                           if k.startswith("kanary_controller_heap_bytes{")}
        results["shared_bytes"] = m.get("kanary_controller_informer_shared_bytes", 0)
        results["settle_reconciles"] = (m["kanary_controller_reconcile_duration_seconds_count"]
                                        - results["converge_reconciles"])
        n = m["kanary_controller_reconcile_duration_seconds_count"]
        # Nothing changes any more: what is reconciled now are looks at rollouts that wait.
        time.sleep(args.settle)
        results["settle_window_reconciles"] = (
            ctl.metrics()["kanary_controller_reconcile_duration_seconds_count"] - n)
        results["rss_after_settle_kib"] = rss_kib(ctl.proc.pid)
        results["scale_reconciles"] = n
        results["scale_reconcile_mean_ms"] = m["kanary_controller_reconcile_duration_seconds_sum"] / n * 1000
        results["scale_errors"] = m['kanary_controller_reconcile_total{result="error"}']
        ctl.stop()
        ctl = None
    finally:
        if ctl:
            ctl.stop()
        subprocess.run([str(CLUSTER / "down"), str(state)], stdout=subprocess.DEVNULL,
                       timeout=300)

    print(f"controller logs: {work}")
    cpu = os.cpu_count()
    print(f"\nController benchmark ({cpu} CPUs, --concurrent-kanary-syncs={args.workers}, "
          f"{args.endpoints} endpoints per Kanary)\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| apply-to-ConfigMap latency, new Kanary (n={args.latency}) | "
          f"p50 {results['latency_create_ms'][0]:.0f} ms, p99 {results['latency_create_ms'][1]:.0f} ms |")
    print(f"| apply-to-state-ConfigMap latency, weight change (n={args.latency}) | "
          f"p50 {results['latency_update_ms'][0]:.0f} ms, p99 {results['latency_update_ms'][1]:.0f} ms |")
    print(f"| time to converge {args.scale} Kanaries from a cold start | {results['converge_s']:.1f} s "
          f"({results['scale_reconciles']:.0f} reconciles, mean {results['scale_reconcile_mean_ms']:.1f} ms, "
          f"{results['scale_errors']:.0f} errors) |")
    print(f"| resident memory, idle | {results['rss_idle_kib'] / 1024:.1f} MiB |")
    print(f"| resident memory, {args.scale} Kanaries converged | "
          f"{results['rss_converged_kib'] / 1024:.1f} MiB (after 5 s more: "
          f"{results['rss_settled_kib'] / 1024:.1f} MiB; peak {results['hwm_kib'] / 1024:.1f} MiB) |")
    cs = results["converge_s"]
    print(f"| API server writes while converging | {results['writes']:.0f} "
          f"({results['writes'] / cs:.0f}/s on average, {results['write_peak']:.0f}/s at the "
          f"busiest 5 s) |")
    print(f"| where the time went while converging ({cs:.0f} s of wall clock) | "
          f"reconciles {results['converge_reconcile_s']:.0f} s ({results['converge_reconciles']:.0f} of them); "
          f"CPU: controller {results['ctl_cpu_s']:.0f} s, kube-apiserver "
          f"{results['kube-apiserver_cpu_s']:.0f} s, etcd {results['etcd_cpu_s']:.0f} s |")
    if results["cache_bytes"]:
        print(f"| the caches' records at convergence | "
              f"{sum(results['cache_bytes'].values()) / 1048576:.1f} MiB: "
              + ", ".join(f"{k} {v / 1048576:.1f}" for k, v in
                          sorted(results["cache_bytes"].items(), key=lambda kv: -kv[1])) + " |")
    if results.get("heap"):
        print(f"| malloc, 5 s after convergence | {results['heap'].get('in_use', 0) / 1048576:.1f} MiB "
              f"in use, {results['heap'].get('free', 0) / 1048576:.1f} MiB free in its arenas; "
              f"shared strings {results['shared_bytes'] / 1048576:.1f} MiB |")
    print(f"| reconciles in the 5 s after convergence | {results['settle_reconciles']:.0f} "
          f"(every Kanary's rollout waits: each is looked at again, from 5 s on) |")
    if args.settle > 0:
        print(f"| reconciles in the {args.settle} s after that | {results['settle_window_reconciles']:.0f} "
              f"({results['settle_window_reconciles'] / args.settle:.1f}/s; resident memory "
              f"then {results['rss_after_settle_kib'] / 1024:.1f} MiB) |")
    print("\nAPI server writes while converging, by verb and resource:")
    for (verb, res), n in results["writes_by"][:12]:
        print(f"  {verb} {res}: {n:.0f}")
    print(f"\n(setting up the {args.scale} Kanaries and their backends took {results['setup_s']:.0f} s)")


if __name__ == "__main__":
    main()
