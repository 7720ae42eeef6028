# SPDX-License-Identifier: Apache-2.0
"""The agent against the real API server: it watches its state ConfigMap with a least-privilege token.

tests/cluster/up starts etcd and kube-apiserver. The test writes the state
ConfigMap the controller would keep (`<name>-haproxy-state`, key state.json,
rendered by `kanary-controller render --state-only`), and a ServiceAccount
whose Role may get, list and watch that one ConfigMap (resourceNames) and
nothing else; the agent runs outside a pod on that ServiceAccount's token
(tests/cluster/sa-kubeconfig), beside the real haproxy on the rendered
structure with loopback "pods", as in test_dataplane.py.

A state change is a `kubectl apply` of the ConfigMap: the agent's watch sees
it and the split on the wire follows, with haproxy's PIDs unchanged and no
failed connection under a constant stream.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))
sys.path.insert(0, str(HERE))
import test_dataplane as dp  # noqa: E402
from kanarytest import Commands, eventually, unwind_on_sigterm  # noqa: E402

unwind_on_sigterm()

CLUSTER = HERE.parent / "cluster"
KANARY = "myapp-split"
STATE_CM = KANARY + "-haproxy-state"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
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


class WatchingHaproxy(dp.Haproxy):
    """haproxy with the agent watching the state ConfigMap instead of reading a file."""

    kubeconfig = None
    namespace = None

    def start_agent(self):
        with open(self.agent_log_path, "ab") as log:
            self.agent = subprocess.Popen(
                [self.controller, "agent", "--kanary", KANARY, "--namespace", self.namespace,
                 "--state-configmap", STATE_CM, "--kubeconfig", str(self.kubeconfig),
                 "--socket", self.socket, "--config", str(self.cfg_path), "--interval", "1s",
                 "--metrics-bind", f"127.0.0.1:{self.agent_port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def test_agent_applies_the_state_configmap_it_watches(cluster, tmp_path):
    controller = os.environ.get("KANARY_CONTROLLER") or str(HERE.parents[1] / "build" / "controller" /
                                                           "kanary-controller")
    ns = "agent-watch-" + os.urandom(3).hex()
    cluster.run("kubectl", "create", "namespace", ns)
    before = [dp.Route("myapp-v1", 80, 3), dp.Route("myapp-v2", 20, 3)]
    after = [dp.Route("myapp-v1", 50, 3), dp.Route("myapp-v2", 50, 3)]
    pods, by_service = dp.start_pods(before)
    runtime_dir = tempfile.mkdtemp(prefix="kanary-dp-", dir="/tmp")
    hap = None
    try:
        with pods:
            stream = dp.healthy_stream(tmp_path / "stream.yaml", before, by_service)
            ports = dp.free_ports(4)
            cfg = dp.render(controller, stream, ports, runtime_dir)
            state = json.loads(dp.render(controller, stream, ports, runtime_dir, "--state-only"))
            dp.assert_loopback_only(cfg, state)
            objs = least_privilege(ns) + [state_configmap(ns, state)]
            cluster.run("kubectl", "apply", "-f", "-",
                        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
            kubeconfig = tmp_path / "agent.kubeconfig"
            cluster.run(str(CLUSTER / "sa-kubeconfig"), "-n", ns, "-o", kubeconfig, "agent")
            # The token reads the state ConfigMap and no other.
            auth = cluster.env | {"KUBECONFIG": str(kubeconfig)}
            assert cluster.run("kubectl", "auth", "can-i", "watch", f"configmap/{STATE_CM}", "-n", ns,
                               env=auth, check=False).stdout.strip() == "yes"
            assert cluster.run("kubectl", "auth", "can-i", "list", "configmaps", "-n", ns,
                               env=auth, check=False).stdout.strip() == "no"
            assert cluster.run("kubectl", "auth", "can-i", "get", "secrets", "-n", ns,
                               env=auth, check=False).stdout.strip() == "no"

            hap = WatchingHaproxy(controller, cfg, state, ports, tmp_path, runtime_dir)
            hap.kubeconfig, hap.namespace = kubeconfig, ns
            assert hap.start(), "haproxy could not bind its ports"
            hap.wait_applied(1)
            hap.wait_active("route_myapp-v1", 3, deadline_s=10)
            pids = hap.pids()
            tally = dp.drive(hap.address, dp.CONNECTIONS)
            pct = dp.report("watched state 80/20", tally, pods, ["myapp-v1", "myapp-v2"])
            dp.assert_split(pct, before, tally)

            stream50 = dp.healthy_stream(tmp_path / "stream-50.yaml", after, by_service)
            prev = tmp_path / "previous.json"
            prev.write_text(json.dumps(state))
            assert dp.render(controller, stream50, ports, runtime_dir, previous=prev) == cfg
            state50 = json.loads(dp.render(controller, stream50, ports, runtime_dir, "--state-only",
                                           previous=prev))
            assert state50["generation"] == 2
            with dp.background_load(hap.address) as load:
                hap.wait_sessions(1000)
                start = time.monotonic()
                cluster.run("kubectl", "apply", "-f", "-", input=json.dumps(state_configmap(ns, state50)))
                hap.wait_applied(2)
                applied_s = time.monotonic() - start
                hap.wait_sessions(1000)
            stream_tally = load.get("tally") or dp.Tally()
            assert hap.pids() == pids, "haproxy's master or worker changed"
            tally = dp.drive(hap.address, dp.CONNECTIONS)
            print(f"\nConfigMap 80/20 -> 50/50: applied and read back {applied_s:.2f} s after kubectl"
                  f" apply returned; {stream_tally.sent} connections meanwhile, {stream_tally.failed} failed")
            pct = dp.report("watched state 50/50", tally, pods, ["myapp-v1", "myapp-v2"])
            assert stream_tally.failed == 0, f"{dict(stream_tally.failures)}"
            dp.assert_split(pct, after, tally)
            log = hap.agent_log_path.read_text(errors="replace")
            assert "403" not in log and "orbidden" not in log, f"the agent was refused:\n{log}"
            assert 'kanary_agent_apply_errors_total 0' in hap.agent_metrics()
    except BaseException:
        if hap:
            print(f"haproxy log (tail):\n{hap.log_tail()}\nagent log (tail):\n{hap.agent_log_tail()}")
        raise
    finally:
        if hap:
            hap.stop()
        shutil.rmtree(runtime_dir, ignore_errors=True)
        cluster.run("kubectl", "delete", "namespace", ns, "--wait=false", check=False)
