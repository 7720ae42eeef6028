# SPDX-License-Identifier: Apache-2.0
"""Runtime changes on a real node: weight change to split on the wire, pod Ready to traffic.

Usage (as root; the node is exclusive):
  flock /run/lock/kanary-node.lock /usr/bin/python3 bench/runtime/bench.py [--changes N]
      [--rate R] [--batch-period DURATION]

Brings up a one-node cluster (tests/cluster/up --node), builds and loads the images
(tests/image/build --load), installs the chart and the example stack with the test app
greeting each connection with its pod's name, exactly as tests/node/test_runtime.py does.
A probe in the cluster's client network namespace opens R new connections a second (default
200) to the destination's ClusterIP and logs who served each, on CLOCK_MONOTONIC. Then:

1. weights: N times (default 20) the weights flip between 100/0 and 0/100 with `kubectl
   patch`; the latency of one change is from just before kubectl starts to the first
   connection served by the new version after the last one served by the old version (from
   then on the whole split is the new one, through both HAProxy pods).
2. endpoints: with all traffic on myapp-v2, N times it scales from 2 to 3 pods; the latency
   is from the moment a watch on the pods sees the new pod Ready to the first connection that
   pod serves. It then scales back to 2, and the next round waits until the state holds 2.

Resolution: 1/R seconds (5 ms at 200/s). p50 and p99 (nearest rank) of each go to standard
output as a Markdown table. Traffic stays in the cluster (tests/cluster/README.md).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lib"))
sys.path.insert(0, str(REPO / "tests" / "node"))
from kanarytest import eventually  # noqa: E402
import test_node as tn  # noqa: E402
import test_runtime as tr  # noqa: E402

PROBE = pathlib.Path(__file__).resolve().parent / "probe.py"


def log(msg):
    print(f"[bench {time.monotonic() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


T0 = time.monotonic()


def pct(values, p):
    v = sorted(values)
    return v[max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))]


class Probe:
    def __init__(self, c, host, port, rate, max_seconds):
        self.lines = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", c.netns, sys.executable, str(PROBE), host, str(port),
             "--rate", str(rate), "--max-seconds", str(max_seconds)],
            stdout=subprocess.PIPE, text=True, env=c.env)
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for line in self.proc.stdout:
            t, _, who = line.strip().partition(" ")
            with self.lock:
                self.lines.append((float(t), who))

    def since(self, t):
        with self.lock:
            return [(a, w) for a, w in self.lines if a >= t]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


class PodWatch:
    """The first time a watch saw each pod of a selector Ready (this process's clock)."""

    def __init__(self, c, selector):
        self.ready = {}
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["kubectl", "get", "pods", "-n", tn.APP, "-l", selector, "--watch", "-o", "json",
             "--output-watch-events"], stdout=subprocess.PIPE, text=True, env=c.env)
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        dec = json.JSONDecoder()
        buf = ""
        for line in self.proc.stdout:
            buf += line
            while buf.strip():
                try:
                    ev, end = dec.raw_decode(buf.lstrip())
                except ValueError:
                    break
                buf = buf.lstrip()[end:]
                now = time.monotonic()
                pod = ev.get("object") or {}
                name = pod.get("metadata", {}).get("name")
                conds = (pod.get("status") or {}).get("conditions") or []
                if name and any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                    with self.lock:
                        self.ready.setdefault(name, now)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def patch_weights(c, w1, w2):
    t = time.monotonic()
    tn.set_weights(c, w1, w2)
    return t


def weight_changes(c, probe, n):
    out = []
    flips = [(100, 0), (0, 100)]
    for i in range(n):
        w = flips[(i + 1) % 2]
        new, old = ("myapp-v1", "myapp-v2") if w[0] == 100 else ("myapp-v2", "myapp-v1")
        t = patch_weights(c, *w)
        tr.wait_applied(c, f"change {i + 1}: {w[0]}/{w[1]}",
                        lambda s: [r["weight"] for r in s["routes"]] == list(w))
        # A second of traffic past the agents' apply, so the last old connection is seen.
        time.sleep(1.0)
        seen = probe.since(t)
        last_old = max((a for a, who in seen if tr.version_of(who) == old), default=t)
        first_new = min((a for a, who in seen if tr.version_of(who) == new and a >= last_old),
                        default=None)
        assert first_new is not None, f"no connection to {new} after the change"
        out.append(first_new - t)
        log(f"weights {w[0]}/{w[1]}: new split on the wire {first_new - t:.3f}s after kubectl")
    return out


def endpoint_changes(c, probe, watch, n):
    out = []
    for i in range(n):
        before = set(tr.ready_pods(c, "myapp-v2"))
        c.kubectl("scale", "deployment", "myapp-v2", "-n", tn.APP, "--replicas=3")
        new = eventually(lambda: (lambda p: p[0] if p else None)(
            [p for p in tr.ready_pods(c, "myapp-v2") if p not in before]),
            "the new myapp-v2 pod Ready", tn.WAIT, 0.2)
        ready_at = eventually(lambda: watch.ready.get(new), "the watch to see it Ready",
                              tn.WAIT, 0.05)
        first = eventually(lambda: min((a for a, who in probe.since(ready_at) if who == new),
                                       default=None), f"a connection served by {new}",
                           tn.WAIT, 0.05)
        out.append(first - ready_at)
        log(f"round {i + 1}: pod {new} Ready -> first connection {first - ready_at:.3f}s")
        c.kubectl("scale", "deployment", "myapp-v2", "-n", tn.APP, "--replicas=2")
        eventually(lambda: len(tr.ready_pods(c, "myapp-v2")) == 2, "myapp-v2 at 2", tn.WAIT, 0.5)
        tr.wait_applied(c, "back to 2", lambda s: len(s["routes"][1]["endpoints"]) == 2)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--changes", type=int, default=20)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--batch-period", default="",
                   help="the controller's --endpoint-updates-batch-period (default: its own)")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/runtime: runs containerd and a kubelet: run it as root")
    state = pathlib.Path(tempfile.mkdtemp(prefix="kanary-bench-runtime-")) / "state"
    probe = watch = None
    try:
        log("tests/cluster/up --node")
        up = subprocess.run([str(tn.CLUSTER / "up"), "--node", "--state-dir", str(state)],
                            stdout=subprocess.PIPE, text=True, timeout=1800)
        assert up.returncode == 0, "tests/cluster/up --node failed"
        env = subprocess.run(["bash", "-c", 'eval "$1" && env -0', "bash", up.stdout],
                             capture_output=True, check=True, text=True).stdout
        c = tn.Cluster(dict(kv.split("=", 1) for kv in env.split("\0") if "=" in kv))
        c.run(tn.IMAGE_BUILD, "--load", timeout=3000)
        c.kubectl("create", "namespace", tn.NS)
        c.kubectl("create", "namespace", tn.APP)
        values = list(tn.INSTALL_VALUES)
        if args.batch_period:
            values += ["--set", "controller.extraArgs={--endpoint-updates-batch-period="
                       + args.batch_period + "}"]
        c.helm("install", tn.RELEASE, tn.CHART, "--namespace", tn.NS, *values, "--wait",
               "--timeout", "300s")
        c.apply(tr.stack(), "-n", tn.APP)
        tn.wait_serving(c, "example")
        host, port = tn.service_ip(c, tn.DEST), tn.kanary_port(c)
        probe = Probe(c, host, port, args.rate, 7200)
        watch = PodWatch(c, "app=myapp,version=v2")
        time.sleep(2)
        weights = weight_changes(c, probe, args.changes)
        # All traffic on myapp-v2 (the last flip leaves 0/100 for an even N).
        if tr.state(c)["routes"][1]["weight"] != 100:
            patch_weights(c, 0, 100)
            tr.wait_applied(c, "0/100", lambda s: s["routes"][1]["weight"] == 100)
        endpoints = endpoint_changes(c, probe, watch, args.changes)
        errors = sum(1 for _, who in probe.since(0) if who.startswith("ERR"))
        served = len(probe.since(0)) - errors
        print("| measure | n | p50 | p99 | max |")
        print("|---|---|---|---|---|")
        for name, v in (("kubectl patch -> new split on the wire", weights),
                        ("backend pod Ready -> its first connection", endpoints)):
            print(f"| {name} | {len(v)} | {pct(v, 50):.3f} s | {pct(v, 99):.3f} s | "
                  f"{max(v):.3f} s |")
        print(f"\nprobe: {served} connections served, {errors} failed, at {args.rate:.0f}/s")
    finally:
        for x in (probe, watch):
            if x:
                x.stop()
        if state.exists():
            subprocess.run([str(tn.CLUSTER / "down"), str(state)], stdout=subprocess.PIPE,
                           timeout=300)


if __name__ == "__main__":
    main()
