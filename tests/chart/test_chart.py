"""The Helm chart (charts/kanary) against a real control plane.

tests/cluster/up starts etcd, kube-apiserver and kube-controller-manager (with the deployment
and replicaset controllers, so the chart's Deployments get Pods, admitted or refused by Pod
Security admission). No kubelet runs: Pods are stored, never started. So, after `helm
install`, kanary-webhook and kanary-controller run on this host, each with a kubeconfig that
holds a token of the chart's own ServiceAccount (tests/cluster/sa-kubeconfig); the webhook
serves the certificate the chart generated, and the chart's webhook configurations reach it
through the development value webhook.url. When this runs as root, each daemon also runs as
the chart's user 65532, with no capabilities, no_new_privs and a read-only root filesystem
(a private mount namespace), as its securityContext asks.

What is proven: helm lint (also --strict) is clean; helm template's output in every
certificate mode, and namespaced, is accepted by the API server (kubectl apply
--dry-run=server); the whole admission and reconcile scenario runs with the chart's RBAC and
not one 403 (neither daemon logs one at debug level, where every failed request is logged, and
the API server's own audit log records none, but the ones the test then provokes on purpose),
installed cluster-wide and namespaced (watchNamespace: Roles in one namespace, and there the
controller's own token gets a real 403 for a Service or Deployment anywhere else); each identity holds exactly the rules
the chart gives and cannot read Secrets or write outside them; helm upgrade keeps the webhook
CA; helm uninstall leaves only the CRD (and what users made); an existing Secret from
certs/make-certs works; the rejection examples/invalid.yaml shows in its comment is the real
one; and neither daemon sends a bearer token to a plain http:// server without
--insecure-allow-http-token.

cert-manager does not run here: its mode is checked by lint, by the rendered objects and by
the API server's dry run against stand-in CRDs for Issuer and Certificate defined below (the
fields the chart uses, typed, so a misspelt field is refused), not by a live issuance.

Every process started here is stopped by its PID and the cluster is torn down, even when an
assertion fails; all traffic goes to 127.0.0.1.

Run: /usr/bin/python3 -m pytest -v tests/chart/test_chart.py
(KANARY_WEBHOOK and KANARY_CONTROLLER name the binaries; meson sets them.)
"""

import base64
import contextlib
import http.server
import json
import os
import pathlib
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request

import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "lib"))
from kanarytest import Commands, eventually, free_port, unwind_on_sigterm  # noqa: E402

unwind_on_sigterm()

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHART = REPO / "charts" / "kanary"
CLUSTER = REPO / "tests" / "cluster"
MAKE_CERTS = REPO / "certs" / "make-certs"
EXAMPLES = REPO / "examples"
WEBHOOK = pathlib.Path(os.environ.get("KANARY_WEBHOOK", REPO / "build" / "webhook" / "kanary-webhook"))
CONTROLLER = pathlib.Path(
    os.environ.get("KANARY_CONTROLLER", REPO / "build" / "controller" / "kanary-controller"))
CRD_NAME = "kanaries.kanary.pyxida.io"
RELEASE = "kanary"
NS = "kanary-system"  # the release namespace
APP = "shop"  # where the example runs
TEAM = "team"  # the one namespace of the namespaced install (watchNamespace)
WEBHOOK_SA = f"{RELEASE}-webhook"
CONTROLLER_SA = f"{RELEASE}-controller"
LEASE = f"{RELEASE}-controller"
KANARY = "simple-kanary-rule"
STATE_CM = f"{KANARY}-haproxy-state"  # the agent's state ConfigMap (docs/agent.md)
COMMAND_TIMEOUT = 120  # seconds, for any one command
WAIT_TIMEOUT = 60  # seconds, for anything that happens asynchronously
CONTROLLERS = ("garbage-collector-controller,namespace-controller,serviceaccount-controller,"
               "deployment-controller,replicaset-controller")
UID = 65532  # the image's USER and the chart's runAsUser

# The rules each identity holds, as (apiGroup, resource, resourceNames, verbs); the issue's
# closing note lists them with why each is needed (charts/kanary/templates/rbac.yaml says why).
WEBHOOK_RULES = {
    ("", "services", (), ("get", "list", "watch")),
    ("discovery.k8s.io", "endpointslices", (), ("list", "watch")),
}
CONTROLLER_RULES = {
    ("kanary.pyxida.io", "kanaries", (), ("list", "watch")),
    ("kanary.pyxida.io", "kanaries/status", (), ("patch",)),
    ("kanary.pyxida.io", "kanaries/finalizers", (), ("update",)),
    ("", "services", (), ("create", "list", "patch", "watch")),
    ("apps", "deployments", (), ("create", "list", "patch", "watch")),
    ("policy", "poddisruptionbudgets", (), ("create", "list", "patch", "watch")),
    ("", "configmaps", (), ("create", "delete", "get", "list", "patch", "watch")),
    ("", "serviceaccounts", (), ("create", "get", "patch")),
    ("rbac.authorization.k8s.io", "roles", (), ("create", "get", "patch")),
    ("rbac.authorization.k8s.io", "rolebindings", (), ("create", "get", "patch")),
    ("apps", "replicasets", (), ("list", "watch")),
    ("discovery.k8s.io", "endpointslices", (), ("list", "watch")),
    ("", "pods", (), ("list",)),
    ("", "events", (), ("create", "patch")),
}
CONTROLLER_NS_RULES = {  # in the release namespace only
    ("coordination.k8s.io", "leases", (LEASE,), ("get", "update")),
}


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def samples(text):
    """Prometheus text as {'name{labels}': value}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


# ---- the control plane -------------------------------------------------------------------------


class Cluster(Commands):
    timeout = COMMAND_TIMEOUT

    def get(self, *args, check=True):
        proc = self.kubectl("get", "-o", "json", *args, check=check)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def apply(self, ns, *objs, check=True):
        doc = {"apiVersion": "v1", "kind": "List", "items": list(objs)}
        return self.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(doc), check=check)

    # The API server's audit log (tests/cluster/up): every request of a ServiceAccount outside
    # kube-system, with its answer's code. It is the API server's own count of what it refused:
    # a refusal by authorization never reaches apiserver_request_total, whose code="403"
    # series stays at 0 however many requests RBAC refuses.
    def audit_mark(self):
        """Where the audit log ends now; audit_403s(mark) reads what comes after."""
        path = pathlib.Path(self.env["KANARY_CLUSTER_DIR"]) / "log" / "audit.log"
        return path.stat().st_size if path.exists() else 0

    def audit_403s(self, since):
        """The requests of the release's ServiceAccounts that the API server answered 403,
        audited after since, as sorted (ServiceAccount, namespace, resource) triples."""
        path = pathlib.Path(self.env["KANARY_CLUSTER_DIR"]) / "log" / "audit.log"
        prefix = f"system:serviceaccount:{NS}:"
        out = []
        with open(path, "rb") as f:
            f.seek(since)
            for line in f:
                if not line.endswith(b"\n"):
                    break  # being written
                e = json.loads(line)
                user = e.get("user", {}).get("username", "")
                if (e.get("stage") == "ResponseComplete" and user.startswith(prefix) and
                        e.get("responseStatus", {}).get("code") == 403):
                    ref = e.get("objectRef", {})
                    out.append((user[len(prefix):], ref.get("namespace"), ref.get("resource")))
        return sorted(out)


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
        # The release namespace enforces the restricted Pod Security Standard: the chart's
        # Pods must pass it to be created at all.
        c.kubectl("create", "namespace", NS)
        c.kubectl("label", "namespace", NS, "pod-security.kubernetes.io/enforce=restricted",
                  "pod-security.kubernetes.io/warn=restricted")
        c.kubectl("create", "namespace", APP)
        yield c
    finally:
        if state.exists():
            subprocess.run([str(CLUSTER / "down"), str(state)], stdout=subprocess.PIPE,
                           timeout=120)


# ---- rendering ---------------------------------------------------------------------------------

GENERATE = ["--set", "webhook.url=https://127.0.0.1:9443"]
CERT_MANAGER = ["--set", "certificates.mode=certManager"]
CERT_MANAGER_ISSUER = CERT_MANAGER + [
    "--set", "certificates.certManager.issuerRef.name=corp-ca",
    "--set", "certificates.certManager.issuerRef.kind=ClusterIssuer",
    "--set", "certificates.certManager.issuerRef.group=cert-manager.io"]
EXISTING = ["--set", "certificates.mode=existingSecret",
            "--set", "certificates.existingSecret.name=my-webhook-tls",
            "--set", "certificates.existingSecret.caBundle=" +
            base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()]
NAMESPACED = ["--set", f"watchNamespace={APP}"]
MODES = {"generate": [], "generate-url": GENERATE, "certManager": CERT_MANAGER,
         "certManager-issuerRef": CERT_MANAGER_ISSUER, "existingSecret": EXISTING,
         "namespaced": NAMESPACED}


def template(cluster, *values, crds=False):
    args = ["template", RELEASE, CHART, "--namespace", NS, *values]
    if crds:
        args.append("--include-crds")
    out = cluster.helm(*args).stdout
    return out, [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return found


def one(docs, kind, name=None):
    found = by_kind(docs, kind, name)
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


def rules_of(role):
    return {(g, r, tuple(rule.get("resourceNames", ())), tuple(sorted(rule["verbs"])))
            for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}


def help_flags(binary, *cmd):
    text = subprocess.run([str(binary), *cmd, "--help"], capture_output=True, text=True,
                          timeout=30).stdout
    return set(re.findall(r"--[a-z][a-z0-9-]*", text))


# Stand-ins for cert-manager's Issuer and Certificate CRDs: only the fields the chart uses,
# typed, so the API server's dry run (strict field validation) refuses a misspelt or mistyped
# field. They are not cert-manager's own schemas.
def standin_crd(kind, plural, spec_props):
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cert-manager.io"},
        "spec": {"group": "cert-manager.io", "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                           "listKind": kind + "List"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {
                         "spec": {"type": "object", "properties": spec_props}}}}}]}}


STR = {"type": "string"}
STRS = {"type": "array", "items": STR}
ISSUER_REF = {"type": "object", "required": ["name"],
              "properties": {"name": STR, "kind": STR, "group": STR}}
CERT_MANAGER_CRDS = [
    standin_crd("Issuer", "issuers", {
        "selfSigned": {"type": "object", "properties": {"crlDistributionPoints": STRS}},
        "ca": {"type": "object", "required": ["secretName"], "properties": {"secretName": STR}},
    }),
    standin_crd("Certificate", "certificates", {
        "secretName": STR, "commonName": STR, "dnsNames": STRS, "ipAddresses": STRS,
        "duration": STR, "renewBefore": STR, "isCA": {"type": "boolean"},
        "usages": {"type": "array", "items": {"type": "string", "enum": [
            "digital signature", "key encipherment", "server auth", "client auth",
            "cert sign"]}},
        "privateKey": {"type": "object", "properties": {
            "algorithm": {"type": "string", "enum": ["RSA", "ECDSA", "Ed25519"]},
            "size": {"type": "integer"},
            "rotationPolicy": {"type": "string", "enum": ["Never", "Always"]}}},
        "issuerRef": ISSUER_REF,
    }),
]


def test_helm_lint_is_clean_in_every_certificate_mode(cluster):
    for mode, values in MODES.items():
        for strict in ([], ["--strict"]):
            out = cluster.helm("lint", CHART, "--namespace", NS, *strict, *values).stdout
            assert "1 chart(s) linted, 0 chart(s) failed" in out, (mode, out)
            assert "[WARNING]" not in out and "[ERROR]" not in out, (mode, out)


def test_wrong_values_are_refused_with_a_message_that_says_which(cluster):
    cases = [
        (["--set", "certificates.mode=selfsigned"], "/certificates/mode"),
        (["--set", "certificates.mode=existingSecret"],
         "certificates.existingSecret.name is required"),
        (["--set", "webhook.replicaz=3"], "replicaz"),
        (["--set", "webhook.timeoutSeconds=60"], "/webhook/timeoutSeconds"),
        (["--set", "webhook.url=http://127.0.0.1:9443"], "/webhook/url"),
        (["--set", "watchNamespace=Shop"], "/watchNamespace"),
    ]
    for values, message in cases:
        proc = cluster.helm("template", RELEASE, CHART, "--namespace", NS, *values, check=False)
        assert proc.returncode != 0, values
        assert message in proc.stderr, (values, proc.stderr)


def test_the_rendered_objects_are_the_ones_the_design_asks_for(cluster):
    _, docs = template(cluster)
    fullname = RELEASE
    webhook = one(docs, "Deployment", f"{fullname}-webhook")
    controller = one(docs, "Deployment", f"{fullname}-controller")
    assert webhook["spec"]["replicas"] == 2
    assert controller["spec"]["replicas"] == 1
    pdb = one(docs, "PodDisruptionBudget", f"{fullname}-webhook")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == webhook["spec"]["selector"]["matchLabels"]
    svc = one(docs, "Service", f"{fullname}-webhook")
    assert svc["spec"]["selector"] == webhook["spec"]["selector"]["matchLabels"]
    # Each daemon: its own ServiceAccount, the restricted security context, probes on its
    # health port, resources, and only flags the binary has.
    sas = {d["metadata"]["name"] for d in by_kind(docs, "ServiceAccount")}
    assert sas == {WEBHOOK_SA, CONTROLLER_SA}
    for dep, binary, cmd in ((webhook, WEBHOOK, "serve"), (controller, CONTROLLER, "run")):
        pod = dep["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == dep["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == UID
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (c,) = pod["containers"]
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == UID
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
        assert c["command"] == [f"/usr/local/bin/{binary.name}"]
        assert c["args"][0] == cmd
        flags = {a.split("=", 1)[0] for a in c["args"][1:]}
        assert flags <= help_flags(binary, cmd), flags - help_flags(binary, cmd)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        health = [a for a in c["args"] if a.startswith("--health-probe-bind-address=")][0]
        assert health.endswith(f":{ports['health']}")
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    wargs = webhook["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--secure-port=9443" in wargs
    cargs = controller["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect=true" in cargs
    assert f"--leader-elect-resource-name={LEASE}" in cargs
    assert f"--leader-elect-resource-namespace={NS}" in cargs
    assert "--haproxy-image=haproxy:3.0" in cargs
    assert not [a for a in cargs if a.startswith("--haproxy-image-pull-policy")]
    assert webhook["spec"]["template"]["spec"]["containers"][0]["image"] == "kanary:0.1.0"
    # The webhook configurations: Fail, no side effects, a short timeout, only Kanaries.
    for kind, path in (("MutatingWebhookConfiguration", "/mutate"),
                       ("ValidatingWebhookConfiguration", "/validate")):
        (hook,) = one(docs, kind)["webhooks"]
        assert hook["failurePolicy"] == "Fail"
        assert hook["sideEffects"] == "None"
        assert hook["timeoutSeconds"] <= 10
        assert hook["rules"] == [{"apiGroups": ["kanary.pyxida.io"],
                                  "apiVersions": ["v1alpha1"],
                                  "operations": ["CREATE", "UPDATE"],
                                  "resources": ["kanaries"], "scope": "Namespaced"}]
        assert hook["clientConfig"]["service"] == {"name": f"{fullname}-webhook",
                                                   "namespace": NS, "path": path, "port": 443}
        assert hook["clientConfig"]["caBundle"]
    # RBAC: exactly the rules the daemons use.
    assert rules_of(one(docs, "ClusterRole", f"{fullname}-webhook")) == WEBHOOK_RULES
    assert rules_of(one(docs, "ClusterRole", f"{fullname}-controller")) == CONTROLLER_RULES
    assert rules_of(one(docs, "Role")) == CONTROLLER_NS_RULES
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for b in by_kind(docs, kind):
            assert b["subjects"] == [{"kind": "ServiceAccount", "name": b["roleRef"]["name"]
                                      .replace("-leader-election", ""), "namespace": NS}]
    one(docs, "Lease", LEASE)
    # Mode generate: the pod mounts the serving pair only, never the CA key.
    assert {d["metadata"]["name"] for d in by_kind(docs, "Secret")} == {
        f"{fullname}-webhook-ca", f"{fullname}-webhook-tls"}
    (vol,) = webhook["spec"]["template"]["spec"]["volumes"]
    assert vol["secret"]["secretName"] == f"{fullname}-webhook-tls"
    assert [i["key"] for i in vol["secret"]["items"]] == ["tls.crt", "tls.key"]


def test_the_namespaced_install_holds_roles_in_its_namespace_only(cluster):
    _, docs = template(cluster, *NAMESPACED)
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in by_kind(docs, "Role")}
    assert set(roles) == {(APP, WEBHOOK_SA), (APP, CONTROLLER_SA),
                          (NS, f"{CONTROLLER_SA}-leader-election")}
    assert rules_of(roles[APP, WEBHOOK_SA]) == WEBHOOK_RULES
    assert rules_of(roles[APP, CONTROLLER_SA]) == CONTROLLER_RULES
    assert rules_of(roles[NS, f"{CONTROLLER_SA}-leader-election"]) == CONTROLLER_NS_RULES
    for b in by_kind(docs, "RoleBinding"):
        role = roles[b["metadata"]["namespace"], b["metadata"]["name"]]
        assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                "name": role["metadata"]["name"]}
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": b["roleRef"]["name"]
                                  .replace("-leader-election", ""), "namespace": NS}]
    # Both daemons limited to the namespace, with a flag each binary has.
    for name, binary, cmd in ((WEBHOOK_SA, WEBHOOK, "serve"), (CONTROLLER_SA, CONTROLLER, "run")):
        args = one(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]["args"]
        assert f"--namespace={APP}" in args
        assert "--namespace" in help_flags(binary, cmd)
    # Only that namespace's Kanaries reach the webhook; the rules stay the same.
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (hook,) = one(docs, kind)["webhooks"]
        assert hook["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": APP}}
        assert hook["rules"][0]["resources"] == ["kanaries"]
    # Cluster-wide (the default): no selector, no --namespace.
    _, docs = template(cluster)
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        assert "namespaceSelector" not in one(docs, kind)["webhooks"][0]
    for d in by_kind(docs, "Deployment"):
        assert not [a for a in d["spec"]["template"]["spec"]["containers"][0]["args"]
                    if a.startswith("--namespace")]


def test_haproxy_pull_policy_reaches_the_controller_and_is_checked(cluster):
    _, docs = template(cluster, "--set", "haproxy.image.pullPolicy=Never")
    (controller,) = by_kind(docs, "Deployment", f"{RELEASE}-controller")
    cargs = controller["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--haproxy-image-pull-policy=Never" in cargs
    assert "--haproxy-image-pull-policy" in help_flags(CONTROLLER, "run")
    out = cluster.helm("template", RELEASE, CHART, "--set", "haproxy.image.pullPolicy=never",
                       check=False)
    assert out.returncode != 0 and "pullPolicy" in out.stderr, out.stderr


def test_image_pull_secrets_reach_the_haproxy_pods_through_the_controller(cluster):
    def controller_args(*values):
        _, docs = template(cluster, *values)
        (controller,) = by_kind(docs, "Deployment", f"{RELEASE}-controller")
        return controller["spec"]["template"]["spec"]["containers"][0]["args"]

    def pull_secrets_flags(args):
        return [a for a in args if a.startswith("--haproxy-image-pull-secrets")]

    # None by default: the controller's default, no flag.
    assert pull_secrets_flags(controller_args()) == []
    # The daemons' Secrets by default, since the agent sidecar runs their image.
    daemons = ["--set", "imagePullSecrets[0].name=regcred"]
    args = controller_args(*daemons)
    assert pull_secrets_flags(args) == ["--haproxy-image-pull-secrets=regcred"]
    # haproxy.imagePullSecrets instead, when set.
    own = ["--set", "haproxy.imagePullSecrets[0].name=haproxy-mirror",
           "--set", "haproxy.imagePullSecrets[1].name=kanary.images"]
    args = controller_args(*daemons, *own)
    assert pull_secrets_flags(args) == ["--haproxy-image-pull-secrets=haproxy-mirror,kanary.images"]
    # The controller takes what the chart renders (it checks its flags before --help).
    assert "--haproxy-image-pull-secrets" in help_flags(CONTROLLER, "run")
    run = subprocess.run([str(CONTROLLER), "run", *pull_secrets_flags(args), "--help"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    bad = subprocess.run([str(CONTROLLER), "run", "--haproxy-image-pull-secrets=ok,Not_A_Name"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2
    assert '"Not_A_Name" is not a Secret name (a DNS-1123 subdomain' in bad.stderr, bad.stderr
    # A name Kubernetes would refuse stops helm, with the value's path.
    for value in ("haproxy.imagePullSecrets[0].name=Not_A_Name", "imagePullSecrets[0].name=x."):
        out = cluster.helm("template", RELEASE, CHART, "--set", value, check=False)
        assert out.returncode != 0, value
        assert "imagePullSecrets/0/name" in out.stderr, out.stderr


def test_cert_manager_mode_renders_a_ca_chain_and_ca_injection(cluster):
    _, docs = template(cluster, *CERT_MANAGER)
    assert not by_kind(docs, "Secret")
    certs = {d["metadata"]["name"]: d for d in by_kind(docs, "Certificate")}
    issuers = {d["metadata"]["name"]: d for d in by_kind(docs, "Issuer")}
    assert set(certs) == {f"{RELEASE}-webhook-ca", f"{RELEASE}-webhook-tls"}
    assert issuers[f"{RELEASE}-selfsigned"]["spec"] == {"selfSigned": {}}
    ca = certs[f"{RELEASE}-webhook-ca"]["spec"]
    assert ca["isCA"] is True and ca["issuerRef"]["name"] == f"{RELEASE}-selfsigned"
    assert issuers[f"{RELEASE}-webhook-ca"]["spec"] == {"ca": {"secretName": ca["secretName"]}}
    serving = certs[f"{RELEASE}-webhook-tls"]["spec"]
    assert serving["issuerRef"]["name"] == f"{RELEASE}-webhook-ca"
    assert f"{RELEASE}-webhook.{NS}.svc" in serving["dnsNames"]
    vol = one(docs, "Deployment", f"{RELEASE}-webhook")["spec"]["template"]["spec"]["volumes"][0]
    assert vol["secret"]["secretName"] == serving["secretName"]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        conf = one(docs, kind)
        assert conf["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == \
            f"{NS}/{RELEASE}-webhook-tls"
        assert "caBundle" not in conf["webhooks"][0]["clientConfig"]
    # With an issuer of the user's, the chart makes no issuer of its own.
    _, docs = template(cluster, *CERT_MANAGER_ISSUER)
    assert not by_kind(docs, "Issuer")
    (cert,) = by_kind(docs, "Certificate")
    assert cert["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer",
                                         "group": "cert-manager.io"}


def test_helm_template_is_accepted_by_the_api_server_in_every_mode(cluster):
    for crd in CERT_MANAGER_CRDS:
        cluster.apply("default", crd)
        cluster.kubectl("wait", "--for=condition=Established",
                        f"crd/{crd['metadata']['name']}", f"--timeout={WAIT_TIMEOUT}s")
    try:
        for mode, values in MODES.items():
            out, docs = template(cluster, *values, crds=True)
            proc = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=out,
                                   check=False)
            assert proc.returncode == 0, (mode, proc.stderr)
            # Pod Security admission warns (warn=restricted) on a Deployment whose Pods
            # it would refuse; there must be no warning at all.
            assert "Warning" not in proc.stderr, (mode, proc.stderr)
            assert proc.stdout.count("(server dry run)") == len(docs), (mode, proc.stdout)
    finally:
        for crd in CERT_MANAGER_CRDS:
            cluster.kubectl("delete", "crd", crd["metadata"]["name"], "--ignore-not-found")


# ---- the daemons on this host, as the chart's identities ---------------------------------------


CONFINE = ('mount -o remount,bind,ro / && exec setpriv --reuid={uid} --regid={uid} '
           '--clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"')


def confinement():
    """The command prefix that runs a daemon as the chart's securityContext asks, or []."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"):
        return []
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
              CONFINE.format(uid=UID), "sh"]
    for binary in (WEBHOOK, CONTROLLER):
        probe = subprocess.run([*prefix, str(binary), "--help"], capture_output=True,
                               timeout=30)
        if probe.returncode != 0:
            print(f"running the daemons unconfined: {binary} --help failed confined: "
                  f"{probe.stderr.decode(errors='replace')}")
            return []
    return prefix


class Daemon:
    """kanary-webhook or kanary-controller on this host, stopped by its PID."""

    def __init__(self, name, argv, workdir, prefix):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.log = open(self.log_path, "w")
        # unshare, sh and setpriv each exec the next: the PID is the daemon's.
        self.proc = subprocess.Popen([*prefix, *map(str, argv)], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def text(self):
        self.log.flush()
        return self.log_path.read_text()

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n{self.text()}")
        return True

    def stop(self, timeout=40):
        """SIGTERM and wait; returns the exit status (None when it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self.log.close()
                return None
        self.log.close()
        return self.proc.returncode


class Release:
    """The installed release, its identities' kubeconfigs and the daemons running as them."""

    def __init__(self, cluster, workdir, prefix):
        self.cluster = cluster
        self.workdir = workdir
        self.prefix = prefix
        self.port = free_port()
        self.values = ["--set", f"webhook.url=https://127.0.0.1:{self.port}"]
        self.daemons = []
        self.tls = workdir / "tls"
        self.tls.mkdir()

    def own(self, path):
        """Lets the daemons' user read path."""
        if self.prefix:
            os.chown(path, UID, UID)

    def agent_kubeconfig(self, sa):
        """A kubeconfig with a real token of the agent's ServiceAccount (in the app namespace)."""
        path = self.workdir / f"{sa}.kubeconfig"
        self.cluster.run(CLUSTER / "sa-kubeconfig", "-n", APP, "-o", path, "--duration", "1h",
                         sa)
        return path

    def kubeconfig(self, sa):
        path = self.workdir / f"{sa}.kubeconfig"
        self.cluster.run(CLUSTER / "sa-kubeconfig", "-n", NS, "-o", path, "--duration", "2h", sa)
        self.own(path)
        return path

    def secret_files(self, secret, keys=("tls.crt", "tls.key")):
        """Writes the Secret's keys where the webhook reads them, as kubelet would."""
        data = self.cluster.get("secret", "-n", NS, secret)["data"]
        for k in keys:
            tmp = self.tls / f".{k}.tmp"
            tmp.write_bytes(base64.b64decode(data[k]))
            self.own(tmp)
            os.replace(tmp, self.tls / k)
        return data

    def start_webhook(self, kubeconfig, extra=()):
        self.webhook_health = free_port()
        d = Daemon("webhook", [WEBHOOK, "serve", f"--kubeconfig={kubeconfig}",
                               f"--tls-cert-file={self.tls / 'tls.crt'}",
                               f"--tls-private-key-file={self.tls / 'tls.key'}",
                               "--bind-address=127.0.0.1", f"--secure-port={self.port}",
                               f"--health-probe-bind-address=127.0.0.1:{self.webhook_health}",
                               "--tls-reload-interval=200ms", "--v=1", *extra],
                   self.workdir, self.prefix)
        self.daemons.append(d)
        eventually(lambda: d.alive() and http_get(self.webhook_health, "/readyz")[0] == 200,
                   "the webhook's /readyz")
        self.webhook = d
        return d

    def start_controller(self, kubeconfig, n, extra=()):
        metrics, health = free_port(), free_port()
        d = Daemon(f"controller-{n}", [
            CONTROLLER, "run", f"--kubeconfig={kubeconfig}", "--leader-elect=true",
            f"--leader-elect-resource-name={LEASE}", f"--leader-elect-resource-namespace={NS}",
            f"--metrics-bind-address=127.0.0.1:{metrics}",
            f"--health-probe-bind-address=127.0.0.1:{health}",
            "--endpoint-updates-batch-period=1s", "-v", "4", *extra], self.workdir, self.prefix)
        d.metrics_port = metrics
        self.daemons.append(d)
        eventually(lambda: d.alive() and http_get(health, "/readyz")[0] == 200,
                   f"{d.name}'s /readyz")
        return d

    def leader(self):
        for d in self.daemons:
            if d.name.startswith("controller") and d.proc.poll() is None:
                status, body = http_get(d.metrics_port, "/metrics")
                if status == 200 and samples(body).get("kanary_controller_leader") == 1:
                    return d
        return None

    def forbidden_lines(self):
        return [f"{d.name}: {line}" for d in self.daemons for line in d.text().splitlines()
                if "Forbidden" in line or " 403" in line]

    def stop_all(self):
        """Stops every daemon; returns the problems (exit status, sanitizer reports)."""
        problems = []
        for d in self.daemons:
            running = d.proc.poll() is None
            status = d.stop()
            if running and status != 0:
                problems.append(f"{d.name}: SIGTERM gave exit {status}:\n{d.text()[-3000:]}")
            for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                if mark in d.log_path.read_text():
                    problems.append(f"{d.name}: {mark} reported")
        self.daemons = []
        return problems


@pytest.fixture(scope="module")
def release(cluster):
    # The daemons' user must reach its files: a directory of ours, not pytest's 0700 one.
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="kanary-chart-"))
    workdir.chmod(0o711)
    prefix = confinement()
    print("daemons run " + (f"as uid {UID}, no capabilities, read-only /" if prefix
                            else "as this user (not root: no confinement)"))
    r = Release(cluster, workdir, prefix)
    try:
        out = cluster.helm("install", RELEASE, CHART, "--namespace", NS, *r.values)
        assert "STATUS: deployed" in out.stdout, out.stdout
        yield r
    finally:
        problems = r.stop_all()
        cluster.helm("uninstall", RELEASE, "--namespace", NS, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
        assert not problems, problems


# ---- the example -------------------------------------------------------------------------------


def slice_(name, svc, port, addresses, port_name=None):
    p = {"port": port, "protocol": "TCP"}
    if port_name:
        p["name"] = port_name
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": [p],
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses]}


def documented_rejections():
    """The commands and the output examples/invalid.yaml's comment says kubectl shows."""
    blocks, current = [], None
    for line in (EXAMPLES / "invalid.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line[1:]
        if text.startswith("   $ "):
            current = {"command": text[5:].strip(), "output": []}
            blocks.append(current)
        elif current is not None and text.startswith("   ") and text.strip():
            current["output"].append(text[3:].rstrip())
        else:
            current = None
    return blocks


def set_weights(cluster, v1, ns=APP):
    patch = [{"op": "replace", "path": "/spec/routes/0/weight", "value": v1},
             {"op": "replace", "path": "/spec/routes/1/weight", "value": 100 - v1}]
    cluster.kubectl("patch", "kanary", KANARY, "-n", ns, "--type=json",
                    "-p", json.dumps(patch))


def converged(cluster, summary, ns=APP):
    def check():
        obj = cluster.get("kanary", KANARY, "-n", ns)
        st = obj.get("status", {})
        dep = cluster.get("deployment", f"{KANARY}-haproxy", "-n", ns, check=False)
        if (st.get("observedGeneration") != obj["metadata"]["generation"] or
                st.get("summary") != summary or not dep):
            return None
        ann = dep["spec"]["template"]["metadata"]["annotations"]
        return obj if ann.get("kanary.pyxida.io/config-hash") == st.get("configHash") else None
    return eventually(check, f"the Kanary to converge on {summary}")


def kanary_events(cluster, reason):
    items = cluster.get("events", "-n", APP)["items"]
    return {e["message"]: e.get("count") or 1 for e in items
            if e["involvedObject"].get("kind") == "Kanary" and e.get("reason") == reason}


def state(cluster):
    """The state the controller keeps for the HAProxy pods' agent (docs/agent.md)."""
    cm = cluster.get("configmap", STATE_CM, "-n", APP)
    return json.loads(cm["data"]["state.json"])


def configmaps(cluster):
    return {c["metadata"]["name"] for c in
            cluster.get("configmap", "-n", APP, "-l", f"kanary.pyxida.io/name={KANARY}")["items"]}


def can_i_list(cluster, sa, ns, sa_ns=NS):
    """The resource rules `kubectl auth can-i --list` reports for the ServiceAccount (of
    namespace sa_ns) in ns, without the self-reviews every authenticated user may make."""
    out = cluster.kubectl("auth", "can-i", "--list",
                          f"--as=system:serviceaccount:{sa_ns}:{sa}",
                          "-n", ns).stdout.splitlines()
    rules = set()
    for line in out[1:]:
        m = re.match(r"^(\S+)\s+\[\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$", line)
        if not m:
            continue
        resource, names, verbs = m.groups()
        if resource.startswith("self"):
            continue
        name, _, group = resource.partition(".")
        if "/" in group:
            group, _, sub = group.partition("/")
            name += "/" + sub
        rules.add((group, name, tuple(names.split()), tuple(sorted(verbs.split()))))
    return rules


def can_i(cluster, sa, verb, resource, ns=None, name=None):
    # A subresource goes by --subresource ("pods/log" would be the pod named log).
    resource, _, sub = resource.partition("/")
    args = ["auth", "can-i", verb, resource + (f"/{name}" if name else ""),
            f"--as=system:serviceaccount:{NS}:{sa}"]
    args += [f"--subresource={sub}"] if sub else []
    args += ["-n", ns] if ns else ["--all-namespaces"]
    proc = cluster.kubectl(*args, check=False)
    return proc.stdout.strip() == "yes"


def test_install_then_the_example_runs_as_the_charts_identities_without_a_403(cluster, release):
    c = cluster
    # Pod Security admission (enforce=restricted in the release namespace) let the chart's
    # Pods be created: two webhook Pods and one controller Pod.
    def pods():
        items = c.get("pods", "-n", NS)["items"]
        return sorted(p["metadata"]["labels"]["app.kubernetes.io/component"] for p in items)
    eventually(lambda: pods() == ["controller", "webhook", "webhook"],
               "the chart's Pods, admitted under the restricted Pod Security Standard")
    lease = c.get("lease", "-n", NS, LEASE)
    assert not lease.get("spec", {}).get("holderIdentity")

    mark = c.audit_mark()
    release.secret_files(f"{RELEASE}-webhook-tls")
    wh = release.start_webhook(release.kubeconfig(WEBHOOK_SA))
    ctl_kubeconfig = release.kubeconfig(CONTROLLER_SA)
    release.start_controller(ctl_kubeconfig, 1)
    release.start_controller(ctl_kubeconfig, 2)
    eventually(release.leader, "a leader")
    assert c.get("lease", "-n", NS, LEASE)["spec"]["holderIdentity"]

    # The example: backends with the EndpointSlices their pods would have, then the stack.
    c.apply(APP, slice_("myapp-v1-abcde", "myapp-v1", 8080, ["10.244.1.1", "10.244.1.2"],
                        port_name="http"),
            slice_("myapp-v2-fghij", "myapp-v2", 9090, ["10.244.2.1"]))
    c.kubectl("apply", "-n", APP, "-f", EXAMPLES / "simple-stack.yaml")
    obj = c.get("kanary", KANARY, "-n", APP)
    # Admitted and defaulted by the webhook.
    assert obj["spec"]["port"] == 80
    assert obj["spec"]["proxy"] == {"replicas": 2}
    obj = converged(c, "myapp-v1=80,myapp-v2=20")
    assert [(r["serviceName"], r["weight"], r["endpoints"]) for r in obj["status"]["routes"]] \
        == [("myapp-v1", 80, 2), ("myapp-v2", 20, 1)]
    row = c.kubectl("get", "ky", "-n", APP, "--no-headers").stdout.split()
    assert row[:3] == [KANARY, "myapp", "myapp-v1=80,myapp-v2=20"]
    uid = obj["metadata"]["uid"]
    for kind, name in (("configmap", f"{KANARY}-haproxy-{obj['status']['configHash'][:8]}"),
                       ("configmap", STATE_CM), ("serviceaccount", f"{KANARY}-haproxy"),
                       ("role", f"{KANARY}-haproxy"), ("rolebinding", f"{KANARY}-haproxy"),
                       ("deployment", f"{KANARY}-haproxy"), ("pdb", f"{KANARY}-haproxy"),
                       ("service", "myapp")):
        child = c.get(kind, name, "-n", APP)
        assert [r["uid"] for r in child["metadata"]["ownerReferences"]] == [uid], kind

    # The rejections the example's comment shows are the ones kubectl prints.
    blocks = documented_rejections()
    assert blocks, "examples/invalid.yaml shows no rejection"
    kubeconfig = release.workdir / "in-app.kubeconfig"
    shutil.copy(c.env["KUBECONFIG"], kubeconfig)
    c.kubectl("config", "set-context", "--current", f"--namespace={APP}",
              f"--kubeconfig={kubeconfig}")
    for block in blocks:
        proc = c.run("bash", "-c", block["command"], check=False,
                     env=dict(c.env, KUBECONFIG=str(kubeconfig)), cwd=REPO)
        assert proc.returncode == 1, (block["command"], proc.stdout, proc.stderr)
        assert [line.rstrip() for line in proc.stderr.splitlines()] == block["output"], \
            (block["command"], proc.stderr)
    assert c.get("kanary", "broken-kanary-rule", "-n", APP, check=False) is None
    wm = samples(http_get(release.webhook_health, "/metrics")[1])
    assert any(k.startswith("kanary_webhook_requests_total{") and 'verdict="denied"' in k
               for k in wm), wm

    # A weight change changes the state ConfigMap only: the structure, and so the HAProxy
    # pods, stay as they are.
    first = obj["status"]["configHash"][:8]
    gen = state(c)["generation"]
    for w in (50, 80, 50):
        set_weights(c, w)
        obj = converged(c, f"myapp-v1={w},myapp-v2={100 - w}")
        st = eventually(lambda: (lambda s: s if s["routes"][0]["weight"] == w else None)(
            state(c)), f"the state to carry weight {w}")
        assert st["generation"] > gen
        gen = st["generation"]
        assert obj["status"]["configHash"][:8] == first
    assert kanary_events(c, "RolloutTriggered") == {}
    assert configmaps(c) == {f"{KANARY}-haproxy-{first}", STATE_CM}
    # A route that outgrows its slots changes the structure, which rolls.
    slots = state(c)["routes"][0]["slots"]
    c.apply(APP, slice_("myapp-v1-abcde", "myapp-v1", 8080,
                        [f"10.244.1.{i}" for i in range(1, slots + 2)], port_name="http"))
    current = eventually(
        lambda: (lambda h: h if h != first else None)(
            c.get("kanary", KANARY, "-n", APP)["status"]["configHash"][:8]),
        "a new structure for the grown route")
    assert state(c)["routes"][0]["slots"] > slots
    assert len(kanary_events(c, "RolloutTriggered")) == 1
    # No kubelet: the rollout never completes and the deployment controller keeps the old
    # ReplicaSets. Delete them as its history cleanup would; the controller then deletes the
    # ConfigMaps nothing mounts any more, and keeps the state.
    eventually(lambda: len(configmaps(c)) == 3, "the new structure ConfigMap")
    for rs in c.get("replicaset", "-n", APP, "-l", f"kanary.pyxida.io/name={KANARY}")["items"]:
        vols = rs["spec"]["template"]["spec"]["volumes"]
        if not any(v.get("configMap", {}).get("name", "").endswith(current) for v in vols):
            c.kubectl("delete", "replicaset", rs["metadata"]["name"], "-n", APP)
    eventually(lambda: configmaps(c) == {f"{KANARY}-haproxy-{current}", STATE_CM},
               "the superseded ConfigMaps to be deleted")

    # Not one request was refused, by the daemons' logs (at debug level every failed request
    # is logged); the API server's audit log says the same below.
    for d in release.daemons:
        d.alive()
    assert release.forbidden_lines() == []

    # Each identity holds exactly its rules ...
    for ns in (APP, NS):
        assert can_i_list(c, WEBHOOK_SA, ns) == WEBHOOK_RULES, ns
    assert can_i_list(c, CONTROLLER_SA, APP) == CONTROLLER_RULES
    assert can_i_list(c, CONTROLLER_SA, NS) == CONTROLLER_RULES | CONTROLLER_NS_RULES
    # ... so neither may read a Secret nor write outside what it needs.
    for sa in (WEBHOOK_SA, CONTROLLER_SA):
        for ns in (APP, NS, None):
            for verb in ("get", "list", "watch"):
                assert not can_i(c, sa, verb, "secrets", ns), (sa, verb, ns)
        for verb, resource in (("create", "pods"), ("create", "kanaries.kanary.pyxida.io"),
                               ("update", "kanaries.kanary.pyxida.io"),
                               ("delete", "kanaries.kanary.pyxida.io"),
                               ("delete", "services"), ("delete", "deployments.apps"),
                               ("update", "deployments.apps"), ("patch", "nodes"),
                               ("create", "leases.coordination.k8s.io"),
                               ("create", "clusterroles.rbac.authorization.k8s.io"),
                               ("escalate", "roles.rbac.authorization.k8s.io"),
                               ("bind", "roles.rbac.authorization.k8s.io"),
                               ("bind", "clusterroles.rbac.authorization.k8s.io"),
                               ("patch", "validatingwebhookconfigurations."
                                         "admissionregistration.k8s.io"),
                               ("update", "customresourcedefinitions.apiextensions.k8s.io"),
                               ("create", "serviceaccounts/token")):
            assert not can_i(c, sa, verb, resource, APP), (sa, verb, resource)
    for verb in ("create", "patch", "delete"):
        for resource in ("services", "configmaps", "endpointslices.discovery.k8s.io",
                         "events", "kanaries.kanary.pyxida.io/status"):
            assert not can_i(c, WEBHOOK_SA, verb, resource, APP), (verb, resource)
    assert can_i(c, CONTROLLER_SA, "update", "leases.coordination.k8s.io", NS, LEASE)
    assert not can_i(c, CONTROLLER_SA, "update", "leases.coordination.k8s.io", NS, "other")
    assert not can_i(c, CONTROLLER_SA, "get", "leases.coordination.k8s.io", APP, LEASE)
    # And the API server refuses them for real. Once these 403s are in its audit log, so is
    # every request the daemons made before them: these must be the only 403s there.
    provoked = []
    for sa, kubeconfig in ((WEBHOOK_SA, release.workdir / f"{WEBHOOK_SA}.kubeconfig"),
                           (CONTROLLER_SA, ctl_kubeconfig)):
        for ns in (NS, APP):
            proc = c.kubectl("--kubeconfig", kubeconfig, "get", "secrets", "-n", ns,
                             check=False)
            assert proc.returncode != 0 and "Forbidden" in proc.stderr, (sa, ns, proc.stderr)
            provoked.append((sa, ns, "secrets"))
    eventually(lambda: len(c.audit_403s(mark)) >= len(provoked),
               "the API server to audit the provoked 403s")
    assert c.audit_403s(mark) == sorted(provoked)

    # The agent's identity, with its real token (its 403s come after the audit check above): its own state ConfigMap (get, and a list
    # and a watch narrowed to it by name, as the agent makes them) and nothing else.
    agent = release.agent_kubeconfig(f"{KANARY}-haproxy")
    def as_agent(*args):
        return c.kubectl("--kubeconfig", agent, *args, check=False)
    base = f"/api/v1/namespaces/{APP}/configmaps"
    by_name = f"fieldSelector=metadata.name%3D{STATE_CM}"
    proc = as_agent("get", "configmap", STATE_CM, "-n", APP, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(json.loads(proc.stdout)["data"]["state.json"])["kanary"] == KANARY
    proc = as_agent("get", "--raw", f"{base}?{by_name}")
    assert proc.returncode == 0 and STATE_CM in proc.stdout, proc.stderr
    proc = as_agent("get", "--raw", f"{base}?{by_name}&watch=1&timeoutSeconds=1")
    assert proc.returncode == 0 and STATE_CM in proc.stdout, proc.stderr
    refused = [("get", "configmap", f"{KANARY}-haproxy-{current}", "-n", APP),
               ("get", "configmaps", "-n", APP),
               ("get", "--raw", f"{base}?watch=1&timeoutSeconds=1"),
               ("get", "secrets", "-n", APP),
               ("get", "kanary", KANARY, "-n", APP),
               ("get", "pods", "-n", APP),
               ("get", "endpointslices", "-n", APP),
               ("get", "configmap", STATE_CM, "-n", NS),
               ("patch", "configmap", STATE_CM, "-n", APP, "--type=merge", "-p",
                '{"data":{"x":"y"}}'),
               ("delete", "configmap", STATE_CM, "-n", APP)]
    for args in refused:
        proc = as_agent(*args)
        assert proc.returncode != 0 and "Forbidden" in proc.stderr, (args, proc.stderr)
    assert can_i_list(c, f"{KANARY}-haproxy", APP, sa_ns=APP) == {
        ("", "configmaps", (STATE_CM,), ("get", "list", "watch"))}
    assert wh.alive()


def test_helm_upgrade_keeps_the_webhook_ca(cluster, release):
    c = cluster

    def ca_bundles():
        return {kind: c.get(kind, RELEASE)["webhooks"][0]["clientConfig"]["caBundle"]
                for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration")}
    before = ca_bundles()
    ca_before = c.get("secret", "-n", NS, f"{RELEASE}-webhook-ca")["data"]
    tls_before = c.get("secret", "-n", NS, f"{RELEASE}-webhook-tls")["data"]
    leader = c.get("lease", "-n", NS, LEASE)["spec"].get("holderIdentity")
    out = c.helm("upgrade", RELEASE, CHART, "--namespace", NS, *release.values,
                 "--set", "controller.logLevel=4").stdout
    assert "REVISION: 2" in out, out
    after = ca_bundles()
    assert after == before
    assert set(after.values()) == {ca_before["tls.crt"]}
    assert c.get("secret", "-n", NS, f"{RELEASE}-webhook-ca")["data"] == ca_before
    # A new serving certificate, signed by the same CA, for the same names.
    tls = c.get("secret", "-n", NS, f"{RELEASE}-webhook-tls")["data"]
    assert tls["tls.crt"] != tls_before["tls.crt"]
    assert tls["ca.crt"] == ca_before["tls.crt"]
    (release.workdir / "ca.crt").write_bytes(base64.b64decode(tls["ca.crt"]))
    (release.workdir / "new.crt").write_bytes(base64.b64decode(tls["tls.crt"]))
    c.run("openssl", "verify", "-CAfile", release.workdir / "ca.crt", release.workdir / "new.crt")
    sans = c.run("openssl", "x509", "-in", release.workdir / "new.crt", "-noout", "-ext",
                 "subjectAltName").stdout
    assert "IP Address:127.0.0.1" in sans and f"DNS:{RELEASE}-webhook.{NS}.svc" in sans
    # The upgrade left the Lease's holder alone.
    assert c.get("lease", "-n", NS, LEASE)["spec"].get("holderIdentity") == leader
    # The webhook takes the new pair from its files (as from an updated Secret volume) and
    # the API server, with the caBundle it had, still trusts it.
    def reloads():
        m = samples(http_get(release.webhook_health, "/metrics")[1])
        return m.get('kanary_webhook_certificate_reloads_total{result="success"}', 0)
    before_reloads = reloads()
    release.secret_files(f"{RELEASE}-webhook-tls")
    eventually(lambda: reloads() > before_reloads, "the webhook to load the new certificate")
    set_weights(c, 60)
    converged(c, "myapp-v1=60,myapp-v2=40")
    assert release.forbidden_lines() == []


def test_helm_uninstall_leaves_only_the_crd(cluster, release):
    c = cluster
    assert release.stop_all() == []
    c.helm("uninstall", RELEASE, "--namespace", NS)
    skip = ("events", "events.events.k8s.io", "componentstatuses", "endpoints")

    def kinds(*args):
        out = c.kubectl("api-resources", "--verbs=list", "-o", "name", *args).stdout.split()
        return ",".join(t for t in out if t not in skip)
    every, namespaced = kinds(), kinds("--namespaced=true")

    def leftovers():
        """Objects with the release's label anywhere, and anything in the release namespace
        but its default ServiceAccount (Events aside: they expire on their own)."""
        labelled = c.kubectl("get", every, "--all-namespaces", "-o", "name",
                             "-l", f"app.kubernetes.io/instance={RELEASE}").stdout.split()
        in_ns = c.kubectl("get", namespaced, "-n", NS, "-o", "name").stdout.split()
        return labelled + [o for o in in_ns if o != "serviceaccount/default"]
    # Pods and ReplicaSets go through the garbage collector, a moment later.
    with contextlib.suppress(AssertionError):
        eventually(lambda: leftovers() == [], "nothing of the release")
    assert leftovers() == []
    for kind, name in (("clusterrole", f"{RELEASE}-webhook"),
                       ("clusterrole", f"{RELEASE}-controller"),
                       ("clusterrolebinding", f"{RELEASE}-controller"),
                       ("mutatingwebhookconfiguration", RELEASE),
                       ("validatingwebhookconfiguration", RELEASE)):
        assert c.get(kind, name, check=False) is None, (kind, name)
    assert c.get("lease", "-n", NS, LEASE, check=False) is None
    # The CRD stays (helm never deletes what crds/ installed), and so do the users' Kanaries
    # and what the controller made for them.
    assert c.get("crd", CRD_NAME)
    assert c.get("kanary", KANARY, "-n", APP)
    assert c.get("deployment", f"{KANARY}-haproxy", "-n", APP)


def test_an_existing_secret_from_make_certs_serves_the_webhook(cluster, tmp_path):
    c = cluster
    certs = tmp_path / "certs"
    c.run(MAKE_CERTS, "-o", certs, "--service", f"{RELEASE}-webhook", "--namespace", NS)
    c.kubectl("create", "secret", "generic", "my-webhook-tls", "-n", NS,
              "--type=kubernetes.io/tls", f"--from-file=tls.crt={certs / 'tls.crt'}",
              f"--from-file=tls.key={certs / 'tls.key'}", f"--from-file=ca.crt={certs / 'ca.crt'}")
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="kanary-chart-"))
    workdir.chmod(0o711)
    r = Release(c, workdir, confinement())
    try:
        # No caBundle given: the chart reads the Secret's ca.crt.
        c.helm("install", RELEASE, CHART, "--namespace", NS, *r.values,
               "--set", "certificates.mode=existingSecret",
               "--set", "certificates.existingSecret.name=my-webhook-tls")
        ca = base64.b64encode((certs / "ca.crt").read_bytes()).decode()
        for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
            assert c.get(kind, RELEASE)["webhooks"][0]["clientConfig"]["caBundle"] == ca
        dep = c.get("deployment", "-n", NS, f"{RELEASE}-webhook")
        assert dep["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] == \
            "my-webhook-tls"
        assert c.get("secret", "-n", NS, f"{RELEASE}-webhook-ca", check=False) is None
        r.secret_files("my-webhook-tls")
        r.start_webhook(r.kubeconfig(WEBHOOK_SA))
        # The API server reaches the webhook with that CA: a change is admitted and defaulted
        # again, a bad one refused by the webhook.
        c.kubectl("label", "kanary", KANARY, "-n", APP, "touched=yes")
        bad = c.get("kanary", KANARY, "-n", APP)
        bad["spec"]["routes"][1]["backend"]["servicePort"] = "grpc"
        for k in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            bad["metadata"].pop(k, None)
        bad.pop("status", None)
        proc = c.apply(APP, bad, check=False)
        assert proc.returncode == 1
        assert 'servicePort: Not found: "grpc"' in proc.stderr, proc.stderr
        assert r.forbidden_lines() == []
    finally:
        problems = r.stop_all()
        c.helm("uninstall", RELEASE, "--namespace", NS, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
        assert not problems, problems
    # The user's Secret is the user's: uninstall leaves it.
    assert c.get("secret", "-n", NS, "my-webhook-tls")


# ---- a namespaced install ----------------------------------------------------------------------


def admission_review(ns, name):
    """An AdmissionReview asking to create the example's Kanary in ns."""
    kanary = next(d for d in yaml.safe_load_all((EXAMPLES / "simple-stack.yaml").read_text())
                  if d and d["kind"] == "Kanary")
    kanary["metadata"] = {"name": name, "namespace": ns}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "6d1a5a3e-1f0c-4d47-9d38-4b7a3c2f0e11",
        "kind": {"group": "kanary.pyxida.io", "version": "v1alpha1", "kind": "Kanary"},
        "resource": {"group": "kanary.pyxida.io", "version": "v1alpha1",
                     "resource": "kanaries"},
        "name": name, "namespace": ns, "operation": "CREATE",
        "userInfo": {"username": "someone"}, "object": kanary}}


def test_namespaced_install_runs_the_example_as_the_charts_identities_without_a_403(cluster):
    c = cluster
    c.kubectl("create", "namespace", TEAM)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="kanary-chart-"))
    workdir.chmod(0o711)
    r = Release(c, workdir, confinement())
    only_team = [f"--namespace={TEAM}"]
    try:
        out = c.helm("install", RELEASE, CHART, "--namespace", NS, *r.values,
                     "--set", f"watchNamespace={TEAM}").stdout
        assert "STATUS: deployed" in out, out
        for kind in ("clusterrole", "clusterrolebinding"):
            for name in (WEBHOOK_SA, CONTROLLER_SA):
                assert c.get(kind, name, check=False) is None, (kind, name)
        # The daemons as the chart's Deployments run them in this mode.
        for name in (WEBHOOK_SA, CONTROLLER_SA):
            args = c.get("deployment", "-n", NS, name)["spec"]["template"]["spec"][
                "containers"][0]["args"]
            assert f"--namespace={TEAM}" in args, (name, args)

        mark = c.audit_mark()
        r.secret_files(f"{RELEASE}-webhook-tls")
        r.start_webhook(r.kubeconfig(WEBHOOK_SA), only_team)
        ctl_kubeconfig = r.kubeconfig(CONTROLLER_SA)
        r.start_controller(ctl_kubeconfig, 1, only_team)
        eventually(r.leader, "a leader")

        c.apply(TEAM, slice_("myapp-v1-abcde", "myapp-v1", 8080, ["10.244.1.1", "10.244.1.2"],
                             port_name="http"),
                slice_("myapp-v2-fghij", "myapp-v2", 9090, ["10.244.2.1"]))
        c.kubectl("apply", "-n", TEAM, "-f", EXAMPLES / "simple-stack.yaml")
        obj = c.get("kanary", KANARY, "-n", TEAM)
        assert obj["spec"]["port"] == 80 and obj["spec"]["proxy"] == {"replicas": 2}
        obj = converged(c, "myapp-v1=80,myapp-v2=20", TEAM)
        assert [(x["serviceName"], x["endpoints"]) for x in obj["status"]["routes"]] == \
            [("myapp-v1", 2), ("myapp-v2", 1)]
        set_weights(c, 50, TEAM)
        converged(c, "myapp-v1=50,myapp-v2=50", TEAM)
        # The webhook looks Services up in its namespace: a port no Service has is refused.
        bad = c.get("kanary", KANARY, "-n", TEAM)
        bad["spec"]["routes"][1]["backend"]["servicePort"] = "grpc"
        for k in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            bad["metadata"].pop(k, None)
        bad.pop("status", None)
        proc = c.apply(TEAM, bad, check=False)
        assert proc.returncode == 1 and 'servicePort: Not found: "grpc"' in proc.stderr, \
            proc.stderr

        # Not one request refused, by the daemons' logs (the API server's audit log below).
        for d in r.daemons:
            d.alive()
        assert r.forbidden_lines() == []

        # The rules hold in TEAM only (and the Lease's in the release namespace).
        assert can_i_list(c, WEBHOOK_SA, TEAM) == WEBHOOK_RULES
        assert can_i_list(c, CONTROLLER_SA, TEAM) == CONTROLLER_RULES
        assert can_i_list(c, CONTROLLER_SA, NS) == CONTROLLER_NS_RULES
        for sa in (WEBHOOK_SA, CONTROLLER_SA):
            assert can_i_list(c, sa, APP) == set(), sa
            assert not can_i(c, sa, "list", "services", None), sa
        # A Kanary of another namespace reaching the webhook anyway (its configurations'
        # namespaceSelector keeps them away) is answered with an error, so it is refused.
        tls = c.get("secret", "-n", NS, f"{RELEASE}-webhook-tls")["data"]
        (workdir / "ca.crt").write_bytes(base64.b64decode(tls["ca.crt"]))
        ctx = ssl.create_default_context(cafile=str(workdir / "ca.crt"))
        req = urllib.request.Request(f"https://127.0.0.1:{r.port}/validate",
                                     data=json.dumps(admission_review(APP, "elsewhere")).encode(),
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10, context=ctx)
        assert refused.value.code == 500
        eventually(lambda: f"Kanary {APP}/elsewhere: outside --namespace {TEAM}" in
                   r.webhook.text(), "the webhook to log why")

        # The controller's own token: a real 403 for a Service or a Deployment in another
        # namespace, while the same write in TEAM passes.
        writes = (("create", "service", "clusterip", "intruder", "--tcp=80:8080"),
                  ("create", "deployment", "intruder", "--image=haproxy:3.0"),
                  ("patch", "service", "myapp", "--type=merge", "-p",
                   '{"metadata":{"labels":{"owned":"no"}}}'))
        refusal = f'is forbidden: User "system:serviceaccount:{NS}:{CONTROLLER_SA}" cannot'
        for args in writes:
            proc = c.kubectl("--kubeconfig", ctl_kubeconfig, *args, "-n", APP, check=False)
            assert proc.returncode != 0 and refusal in proc.stderr, (args, proc.stderr)
            assert f'in the namespace "{APP}"' in proc.stderr, proc.stderr
        for args in writes[:2]:
            c.kubectl("--kubeconfig", ctl_kubeconfig, *args, "-n", TEAM, "--dry-run=server")
        proc = c.kubectl("--kubeconfig", workdir / f"{WEBHOOK_SA}.kubeconfig", "get",
                         "services", "-n", APP, check=False)
        assert proc.returncode != 0 and "Forbidden" in proc.stderr, proc.stderr
        # The API server audited exactly these refusals: every other request the daemons
        # made, all before them, was allowed.
        provoked = sorted([(CONTROLLER_SA, APP, "services"), (CONTROLLER_SA, APP, "deployments"),
                           (CONTROLLER_SA, APP, "services"), (WEBHOOK_SA, APP, "services")])
        eventually(lambda: len(c.audit_403s(mark)) >= len(provoked),
                   "the API server to audit the provoked 403s")
        assert c.audit_403s(mark) == provoked
    finally:
        problems = r.stop_all()
        c.helm("uninstall", RELEASE, "--namespace", NS, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
        assert not problems, problems


# ---- a bearer token over plain http ------------------------------------------------------------


class TokenSink(http.server.ThreadingHTTPServer):
    """A plain-HTTP listener on 127.0.0.1 that notes each Authorization header it is sent and
    answers 503. It stands in for nothing the API server does."""

    daemon_threads = True

    def __init__(self):
        self.seen = []
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                sink.seen.append(self.headers.get("Authorization"))
                body = b'{"kind":"Status","status":"Failure","code":503}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_PUT = do_POST = do_PATCH = do_GET

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.shutdown()
        self.server_close()


def test_the_daemons_send_a_token_to_plain_http_only_with_the_option(tmp_path):
    token = "kanary-chart-test-token-9b1e"
    certs = tmp_path / "certs"
    subprocess.run([str(MAKE_CERTS), "-o", str(certs)], check=True, capture_output=True,
                   timeout=COMMAND_TIMEOUT)
    sink = TokenSink()
    kubeconfig = tmp_path / "http.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "c", "cluster": {
            "server": f"http://127.0.0.1:{sink.server_address[1]}"}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}]}))
    daemons = {
        "webhook": [WEBHOOK, "serve", f"--kubeconfig={kubeconfig}",
                    f"--tls-cert-file={certs / 'tls.crt'}",
                    f"--tls-private-key-file={certs / 'tls.key'}", "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    f"--health-probe-bind-address=127.0.0.1:{free_port()}"],
        "controller": [CONTROLLER, "run", f"--kubeconfig={kubeconfig}", "--leader-elect=false",
                       f"--metrics-bind-address=127.0.0.1:{free_port()}",
                       f"--health-probe-bind-address=127.0.0.1:{free_port()}"],
    }
    try:
        for name, argv in daemons.items():
            # Refused at start, with the field and the way out, and nothing sent.
            proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                                  timeout=COMMAND_TIMEOUT)
            assert proc.returncode == 1, (name, proc.returncode, proc.stderr)
            assert 'users["u"].user.token: a bearer token is never sent to a plain http:// ' \
                'server' in proc.stderr, (name, proc.stderr)
            assert "--insecure-allow-http-token" in proc.stderr, (name, proc.stderr)
            assert sink.seen == [], name
            # With the option the token goes (here, to the sink).
            d = Daemon(name, [*argv, "--insecure-allow-http-token"], tmp_path, [])
            try:
                eventually(lambda: d.alive() and f"Bearer {token}" in sink.seen,
                           f"{name} to send its token")
            finally:
                d.stop()
            sink.seen.clear()
    finally:
        sink.stop()
