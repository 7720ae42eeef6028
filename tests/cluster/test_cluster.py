"""The Kanary CRD, and the Kubernetes behaviours Kanary relies on, against a real control plane.

tests/cluster/up starts etcd, kube-apiserver and kube-controller-manager (built from pinned Go
modules by tests/cluster/build) for this module, and tests/cluster/down stops them afterwards.
No admission webhook is installed here: every refusal below comes from the CRD's own OpenAPI
schema and CEL rules.

Run: /usr/bin/python3 -m pytest -v tests/cluster/test_cluster.py
"""

import base64
import copy
import json
import os
import pathlib
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from kanarytest import eventually, unwind_on_sigterm  # noqa: E402

unwind_on_sigterm()

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
CRD = REPO / "charts" / "kanary" / "crds" / "kanaries.yaml"
CRD_NAME = "kanaries.kanary.pyxida.io"
API_VERSION = "kanary.pyxida.io/v1alpha1"
COMMAND_TIMEOUT = 60  # seconds, for any one kubectl or helm command
WAIT_TIMEOUT = 60  # seconds, for anything the control plane does asynchronously


def _required_version(wrapper, module):
    for line in (HERE / wrapper / "go.mod").read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == module and "=>" not in words:
            return words[1]
    raise AssertionError(f"tests/cluster/{wrapper}/go.mod does not require {module}")


K8S_VERSION = _required_version("k8s", "k8s.io/kubernetes")
HELM_VERSION = _required_version("helm", "helm.sh/helm/v3")


class Cluster:
    def __init__(self, env):
        self.env = env
        self.dir = pathlib.Path(env["KANARY_CLUSTER_DIR"])
        self.server = env["KANARY_API_SERVER"]

    def run(self, *args, input=None, check=True, kubeconfig=None, timeout=COMMAND_TIMEOUT):
        """Run a command with the cluster's environment; return the CompletedProcess."""
        env = dict(self.env)
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        proc = subprocess.run(
            [str(a) for a in args],
            env=env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(map(str, args))} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def kubectl(self, *args, **kw):
        return self.run("kubectl", *args, **kw)

    def apply(self, obj, *args, **kw):
        return self.kubectl("apply", "-f", "-", *args, input=json.dumps(obj), **kw)

    def get(self, *args, **kw):
        return json.loads(self.kubectl("get", "-o", "json", *args, **kw).stdout)

    def exists(self, *args):
        proc = self.kubectl("get", "--ignore-not-found", "-o", "name", *args)
        return proc.stdout.strip() != ""


def start_cluster(state_dir, *up_args):
    """Run tests/cluster/up and return the environment it exports."""
    up = subprocess.run(
        [str(HERE / "up"), "--state-dir", str(state_dir), *up_args],
        stdout=subprocess.PIPE,
        text=True,
        timeout=1800,  # includes a build if the cache is cold
    )
    assert up.returncode == 0, f"tests/cluster/up failed (exit {up.returncode})"
    env = subprocess.run(
        ["bash", "-c", 'eval "$1" && env -0', "bash", up.stdout],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return Cluster(dict(kv.split("=", 1) for kv in env.split("\0") if "=" in kv))


def stop_cluster(state_dir):
    if not state_dir.exists():
        return
    down = subprocess.run([str(HERE / "down"), str(state_dir)], stdout=subprocess.PIPE, timeout=120)
    assert down.returncode == 0, f"tests/cluster/down {state_dir} failed"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("cluster") / "state"
    try:
        yield start_cluster(state_dir)
    finally:
        stop_cluster(state_dir)


@pytest.fixture(scope="module")
def crd(cluster):
    cluster.kubectl("apply", "-f", CRD)
    cluster.kubectl(
        "wait", "--for=condition=Established", f"crd/{CRD_NAME}", f"--timeout={WAIT_TIMEOUT}s"
    )
    return cluster


@pytest.fixture
def ns(request, cluster):
    """A fresh namespace per test, named after it; deleted afterwards without waiting."""
    name = "t-" + request.node.name.lower().replace("_", "-")
    for ch in "[]":
        name = name.replace(ch, "-")
    name = name[:50].rstrip("-") + "-" + os.urandom(3).hex()
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def kanary(name, destination="myapp", routes=((("myapp-v1", "http"), 80), (("myapp-v2", 9090), 20)), **spec):
    return {
        "apiVersion": API_VERSION,
        "kind": "Kanary",
        "metadata": {"name": name},
        "spec": {
            "destination": destination,
            "routes": [
                {"backend": {"serviceName": svc, "servicePort": port}, "weight": weight}
                for (svc, port), weight in routes
            ],
            **spec,
        },
    }


# --- the toolchain ----------------------------------------------------------------------------


def test_path_puts_built_kubectl_and_helm_first(cluster):
    for tool in ("kubectl", "helm"):
        found = shutil.which(tool, path=cluster.env["PATH"])
        assert found is not None and not found.startswith("/usr/"), f"{tool} on PATH is {found}"
        assert "/kanary/" in found, f"{tool} on PATH is {found}, not the built one"


def test_kubectl_version_shows_the_real_server_version(cluster):
    versions = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == K8S_VERSION
    assert versions["serverVersion"]["gitVersion"] == K8S_VERSION
    assert versions["serverVersion"]["minor"] == K8S_VERSION.split(".")[1]


def test_helm_installs_a_chart_that_requires_kubernetes_1_34(cluster, ns, tmp_path):
    assert cluster.run("helm", "version", "--template", "{{.Version}}").stdout == HELM_VERSION
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: probe\nversion: 0.1.0\nkubeVersion: '>=1.34.0-0'\n"
    )
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: probe}\n"
        "data: {kubeVersion: '{{ .Capabilities.KubeVersion.Version }}'}\n"
    )
    cluster.run("helm", "install", "probe", chart, "--namespace", ns, "--wait", "--timeout", "60s")
    data = cluster.get("configmap", "probe", "-n", ns)["data"]
    assert data["kubeVersion"] == K8S_VERSION
    cluster.run("helm", "uninstall", "probe", "--namespace", ns)
    assert not cluster.exists("configmap", "probe", "-n", ns)


# --- the CRD ----------------------------------------------------------------------------------


def test_crd_installs_and_is_established(crd):
    obj = crd.get("crd", CRD_NAME)
    conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conditions.get("Established") == "True"
    assert conditions.get("NamesAccepted") == "True"
    assert obj["status"]["acceptedNames"]["shortNames"] == ["ky"]
    resources = crd.kubectl("api-resources", "--api-group=kanary.pyxida.io", "-o", "wide").stdout
    assert "kanaries" in resources and "ky" in resources and "Kanary" in resources


def test_apply_rejects_weight_sum_not_100_by_cel(crd, ns):
    proc = crd.apply(kanary("bad-sum", routes=((("myapp-v1", "http"), 90), (("myapp-v2", 9090), 20))),
                     "-n", ns, check=False)
    assert proc.returncode != 0
    assert "spec.routes" in proc.stderr, proc.stderr
    assert "weights must sum to 100" in proc.stderr, proc.stderr
    assert not crd.exists("kanary", "bad-sum", "-n", ns)


def _routes(*weights):
    return tuple(((f"myapp-v{i}", 8080), w) for i, w in enumerate(weights, 1))


# (id, kanary spec changes, the field path and the words the API server must answer with)
INVALID = [
    ("weight-above-100", dict(routes=_routes(120, -20)),
     ["spec.routes[0].weight", "less than or equal to 100", "spec.routes[1].weight",
      "greater than or equal to 0"]),
    ("all-weights-zero", dict(routes=_routes(0, 0)),
     ["spec.routes", "at least one route must have a weight above 0", "weights must sum to 100"]),
    ("duplicate-backend", dict(routes=((("myapp-v1", 80), 50), (("myapp-v1", 81), 50))),
     ["spec.routes", "each backend serviceName may appear in only one route"]),
    ("destination-is-a-backend", dict(destination="myapp-v1", routes=_routes(100)),
     ["spec.destination", "must not be one of the backend Services"]),
    ("no-routes", dict(routes=()), ["spec.routes", "should have at least 1 items"]),
    ("seventeen-routes", dict(routes=_routes(100, *[0] * 16)),
     ["spec.routes", "must have at most 16 items"]),
    ("port-number-too-big", dict(routes=((("myapp-v1", 70000), 100),)),
     ["spec.routes[0].backend.servicePort", "must be a port number between 1 and 65535"]),
    ("port-number-zero", dict(routes=((("myapp-v1", 0), 100),)),
     ["spec.routes[0].backend.servicePort", "must be a port number between 1 and 65535"]),
    ("port-name-uppercase", dict(routes=((("myapp-v1", "HTTP"), 100),)),
     ["spec.routes[0].backend.servicePort", "must be an IANA service name"]),
    ("port-name-without-letter", dict(routes=((("myapp-v1", "8080"), 100),)),
     ["spec.routes[0].backend.servicePort", "must be an IANA service name"]),
    ("port-name-too-long", dict(routes=((("myapp-v1", "a-very-long-port-name"), 100),)),
     ["spec.routes[0].backend.servicePort", "may not be more than 15"]),
    ("destination-not-dns-1035", dict(destination="MyApp", routes=_routes(100)),
     ["spec.destination", "should match"]),
    ("backend-name-starts-with-digit", dict(routes=((("1app", 80), 100),)),
     ["spec.routes[0].backend.serviceName", "should match"]),
    ("spec-port-zero", dict(routes=_routes(100), port=0),
     ["spec.port", "greater than or equal to 1"]),
    ("proxy-replicas-zero", dict(routes=_routes(100), proxy={"replicas": 0}),
     ["spec.proxy.replicas", "greater than or equal to 1"]),
    ("proxy-replicas-eleven", dict(routes=_routes(100), proxy={"replicas": 11}),
     ["spec.proxy.replicas", "less than or equal to 10"]),
    ("every-cel-problem-reported", dict(routes=((("myapp-v1", 80), 90), (("myapp-v1", 81), 20))),
     ["weights must sum to 100", "each backend serviceName may appear in only one route"]),
]


@pytest.mark.parametrize("spec,expected", [pytest.param(s, e, id=i) for i, s, e in INVALID])
def test_apply_rejects_invalid_kanary_by_schema_alone(crd, ns, spec, expected):
    proc = crd.apply(kanary("bad", **spec), "-n", ns, check=False)
    assert proc.returncode != 0, "the API server stored an invalid Kanary"
    for words in expected:
        assert words in proc.stderr, f"{words!r} not in:\n{proc.stderr}"
    assert not crd.exists("kanary", "bad", "-n", ns)


def test_apply_rejects_missing_required_fields(crd, ns):
    obj = kanary("bad")
    del obj["spec"]["destination"]
    del obj["spec"]["routes"][0]["weight"]
    proc = crd.apply(obj, "-n", ns, check=False)
    assert proc.returncode != 0
    assert "spec.destination: Required value" in proc.stderr, proc.stderr
    assert "spec.routes[0].weight: Required value" in proc.stderr, proc.stderr


def test_apply_rejects_unknown_field(crd, ns):
    obj = kanary("bad")
    obj["spec"]["wieght"] = 10
    proc = crd.apply(obj, "-n", ns, check=False)
    assert proc.returncode != 0
    assert 'unknown field "spec.wieght"' in proc.stderr, proc.stderr


def test_apply_stores_valid_kanary(crd, ns):
    obj = kanary("simple-kanary-rule", port=8080, proxy={"replicas": 2})
    crd.apply(obj, "-n", ns)
    stored = crd.get("kanary", "simple-kanary-rule", "-n", ns)
    assert stored["spec"] == obj["spec"]
    assert stored["metadata"]["generation"] == 1
    # Edge values are accepted: one route at 100, 16 routes, the port range ends.
    crd.apply(kanary("one-route", routes=((("myapp-v1", 1), 100),)), "-n", ns)
    crd.apply(kanary("sixteen", routes=_routes(85, *[1] * 15)), "-n", ns)
    crd.apply(kanary("max-port", routes=((("myapp-v1", 65535), 100),), port=65535), "-n", ns)
    crd.apply(kanary("named-port", routes=((("myapp-v1", "grpc-web"), 100),)), "-n", ns)
    assert len(crd.get("ky", "-n", ns)["items"]) == 5


def test_get_ky_shows_destination_routes_ready_and_age(crd, ns):
    crd.apply(kanary("simple-kanary-rule"), "-n", ns)
    lines = crd.kubectl("get", "ky", "-n", ns).stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESTINATION", "ROUTES", "READY", "AGE"]
    assert lines[1].split()[:2] == ["simple-kanary-rule", "myapp"]
    status = {
        "status": {
            "observedGeneration": 1,
            "summary": "myapp-v1=80,myapp-v2=20",
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Serving", "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1,
            }],
        }
    }
    crd.kubectl("patch", "kanary", "simple-kanary-rule", "-n", ns, "--subresource=status",
                "--type=merge", "-p", json.dumps(status))
    row = crd.kubectl("get", "ky", "simple-kanary-rule", "-n", ns, "--no-headers").stdout.split()
    assert row[:4] == ["simple-kanary-rule", "myapp", "myapp-v1=80,myapp-v2=20", "True"]


def test_status_is_written_only_through_the_status_subresource(crd, ns):
    crd.apply(kanary("k"), "-n", ns)
    # A status in a write to the main resource is dropped...
    crd.kubectl("patch", "kanary", "k", "-n", ns, "--type=merge", "-p",
                json.dumps({"status": {"summary": "forged"}}))
    assert "status" not in crd.get("kanary", "k", "-n", ns) or \
        "summary" not in crd.get("kanary", "k", "-n", ns)["status"]
    # ...a write to /status lands and does not bump the generation...
    crd.kubectl("patch", "kanary", "k", "-n", ns, "--subresource=status", "--type=merge", "-p",
                json.dumps({"status": {"summary": "myapp-v1=80,myapp-v2=20", "observedGeneration": 1}}))
    stored = crd.get("kanary", "k", "-n", ns)
    assert stored["status"]["summary"] == "myapp-v1=80,myapp-v2=20"
    assert stored["metadata"]["generation"] == 1
    # ...a spec change does, and a spec change through /status is dropped.
    crd.kubectl("patch", "kanary", "k", "-n", ns, "--subresource=status", "--type=merge", "-p",
                json.dumps({"spec": {"destination": "other"}}))
    assert crd.get("kanary", "k", "-n", ns)["spec"]["destination"] == "myapp"
    crd.kubectl("patch", "kanary", "k", "-n", ns, "--type=merge", "-p",
                json.dumps({"spec": {"destination": "other"}}))
    stored = crd.get("kanary", "k", "-n", ns)
    assert stored["metadata"]["generation"] == 2
    assert stored["status"]["observedGeneration"] == 1
    # The status schema is enforced too.
    proc = crd.kubectl("patch", "kanary", "k", "-n", ns, "--subresource=status", "--type=merge",
                       "-p", json.dumps({"status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}}),
                       check=False)
    assert proc.returncode != 0
    assert "status.conditions[0].status: Unsupported value" in proc.stderr, proc.stderr


def test_server_side_apply_reports_a_conflict_between_field_managers(crd, ns):
    obj = kanary("k")
    crd.apply(obj, "-n", ns, "--server-side", "--field-manager=kanary-test-user")
    changed = copy.deepcopy(obj)
    changed["spec"]["destination"] = "elsewhere"
    proc = crd.apply(changed, "-n", ns, "--server-side", "--field-manager=someone-else", check=False)
    assert proc.returncode != 0
    assert "conflict" in proc.stderr.lower() and ".spec.destination" in proc.stderr, proc.stderr
    crd.apply(changed, "-n", ns, "--server-side", "--field-manager=someone-else", "--force-conflicts")
    stored = crd.get("kanary", "k", "-n", ns, "--show-managed-fields")
    assert stored["spec"]["destination"] == "elsewhere"
    managers = {m["manager"] for m in stored["metadata"]["managedFields"]}
    assert {"kanary-test-user", "someone-else"} <= managers


# --- controllers ------------------------------------------------------------------------------


def _owned_configmap(name, owner):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "ownerReferences": [{
                "apiVersion": API_VERSION, "kind": "Kanary", "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "data": {"haproxy.cfg": "# test\n"},
    }


def test_garbage_collector_deletes_configmap_when_its_kanary_is_deleted(crd, ns):
    crd.apply(kanary("k"), "-n", ns)
    owner = crd.get("kanary", "k", "-n", ns)
    crd.apply(_owned_configmap("k-haproxy", owner), "-n", ns)
    crd.kubectl("delete", "kanary", "k", "-n", ns)
    eventually(lambda: not crd.exists("configmap", "k-haproxy", "-n", ns),
               "the garbage collector to delete the ConfigMap owned by the deleted Kanary")


def test_garbage_collector_deletes_configmap_whose_owner_is_already_gone(crd, ns):
    crd.apply(kanary("k"), "-n", ns)
    owner = crd.get("kanary", "k", "-n", ns)
    crd.kubectl("delete", "kanary", "k", "-n", ns)
    crd.apply(_owned_configmap("orphan", owner), "-n", ns)
    eventually(lambda: not crd.exists("configmap", "orphan", "-n", ns),
               "the garbage collector to delete a ConfigMap whose owner no longer exists")


def test_garbage_collector_keeps_configmap_whose_owner_exists(crd, ns):
    crd.apply(kanary("k"), "-n", ns)
    owner = crd.get("kanary", "k", "-n", ns)
    crd.apply(_owned_configmap("kept", owner), "-n", ns)
    crd.apply(_owned_configmap("probe", {"metadata": {"name": "gone", "uid": "00000000-0000-0000-0000-000000000000"}}), "-n", ns)
    # Once the collector has removed the dangling probe, it has also seen "kept".
    eventually(lambda: not crd.exists("configmap", "probe", "-n", ns), "the garbage collector")
    assert crd.exists("configmap", "kept", "-n", ns)


def test_deleting_a_namespace_removes_its_kanaries(crd):
    name = "t-delete-ns-" + os.urandom(3).hex()
    crd.kubectl("create", "namespace", name)
    crd.apply(kanary("k"), "-n", name)
    crd.kubectl("delete", "namespace", name, "--wait=false")
    eventually(lambda: not crd.exists("namespace", name),
               f"the namespace controller to finish deleting namespace {name}")


def test_serviceaccount_controller_creates_default_serviceaccount(cluster, ns):
    eventually(lambda: cluster.exists("serviceaccount", "default", "-n", ns),
               f"ServiceAccount {ns}/default")


# --- RBAC with a ServiceAccount token ---------------------------------------------------------


def _http_status(kubeconfig, path):
    """GET path with the token and CA in kubeconfig (JSON output of kubectl config view)."""
    cfg = json.loads(kubeconfig)
    cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    req = urllib.request.Request(cluster["server"] + path,
                                 headers={"Authorization": "Bearer " + user["token"]})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=COMMAND_TIMEOUT) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_serviceaccount_kubeconfig_gets_403_where_its_rbac_says_so(crd, ns, tmp_path):
    crd.kubectl("create", "serviceaccount", "reader", "-n", ns)
    crd.kubectl("create", "role", "kanary-reader", "-n", ns, "--verb=get,list,watch",
                "--resource=kanaries.kanary.pyxida.io")
    crd.kubectl("create", "rolebinding", "reader", "-n", ns, "--role=kanary-reader",
                f"--serviceaccount={ns}:reader")
    crd.apply(kanary("k"), "-n", ns)

    kc = tmp_path / "reader.kubeconfig"
    crd.run(HERE / "sa-kubeconfig", "-n", ns, "-o", kc, "--duration", "10m", "reader")
    assert oct(kc.stat().st_mode & 0o777) == "0o600"
    who = json.loads(crd.kubectl("auth", "whoami", "-o", "json", kubeconfig=kc).stdout)
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:reader"

    # Allowed by the Role.
    names = crd.kubectl("get", "ky", "-o", "name", kubeconfig=kc).stdout.split()
    assert names == ["kanary.kanary.pyxida.io/k"]
    # Not allowed: writing, other resources, other namespaces.
    for args in (["delete", "kanary", "k"], ["get", "configmaps"], ["get", "ky", "-n", "default"],
                 ["create", "configmap", "x", "--from-literal=a=b"]):
        proc = crd.kubectl(*args, kubeconfig=kc, check=False)
        assert proc.returncode != 0 and "forbidden" in proc.stderr.lower(), (args, proc.stderr)
    assert crd.exists("kanary", "k", "-n", ns)

    raw = crd.kubectl("config", "view", "--raw", "-o", "json", kubeconfig=kc).stdout
    assert _http_status(raw, f"/apis/kanary.pyxida.io/v1alpha1/namespaces/{ns}/kanaries") == 200
    assert _http_status(raw, f"/api/v1/namespaces/{ns}/secrets") == 403
    assert _http_status(raw, "/apis/kanary.pyxida.io/v1alpha1/namespaces/default/kanaries") == 403


# --- the scripts ------------------------------------------------------------------------------


def _pids(state_dir):
    return {p.name: int(p.read_text()) for p in (state_dir / "pid").iterdir()}


def _running(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes() != b""
    except OSError:
        return False


def test_two_clusters_run_side_by_side_and_down_stops_only_its_own(cluster, tmp_path):
    second_dir = tmp_path / "second"
    try:
        second = start_cluster(second_dir, "--no-build", "--controllers=namespace-controller")
        assert second.server != cluster.server
        pids = _pids(second_dir)
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
        assert set(pids.values()).isdisjoint(_pids(cluster.dir).values())
        second.kubectl("create", "namespace", "only-in-second")
        assert second.exists("namespace", "only-in-second")
        assert not cluster.exists("namespace", "only-in-second")
    finally:
        stop_cluster(second_dir)
    assert not second_dir.exists()
    assert not any(_running(pid) for pid in pids.values())
    assert all(_running(pid) for pid in _pids(cluster.dir).values())
    cluster.kubectl("get", "namespace", "default")
