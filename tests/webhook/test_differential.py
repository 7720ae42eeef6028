"""`kanary-webhook check` against the real admission path, on generated variants.

A seeded generator writes hundreds of variants of Kanaries, valid and invalid: the style of
the document (block, flow, a whole document in flow style, JSON), the spelling of each scalar
(a weight as 80, 80.0, 8e1, "80", 8_0, 0x50, +80, 0120, 80.5, -1, 120, null, true; a port by name,
number, quoted number or float), repeated keys, anchors with merge keys, comments, document
separators, missing and unknown fields. Each variant goes to `kubectl apply --dry-run=server`
(the CRD with its schema and CEL rules, and kanary-webhook registered as mutating and validating
webhook, as in test_webhook.py) and to `kanary-webhook check` with the same Services in its
input. The verdicts must agree, and for a denial the field paths must too.

The API server stops at the first stage that refuses: the schema and CEL rules run before the
validating webhook, so when they refuse, the checks that need the cluster (does the Service
exist, has it that port) never run. check runs them all, so for such a denial it may name more
paths; the comparison then asks that every path the API server names is one check names, and
that check's extra paths are lookups only (DEFERRED_TO_WEBHOOK).

Run: /usr/bin/python3 -m pytest -v tests/webhook/test_differential.py
(KANARY_WEBHOOK names the kanary-webhook binary; KANARY_DIFFERENTIAL_SEED and
KANARY_DIFFERENTIAL_COUNT change the seed and the number of variants.)
"""

import json
import os
import pathlib
import random
import re
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_webhook import (  # noqa: E402,F401  (fixtures are used by name)
    API_VERSION,
    WEBHOOK,
    certs,
    cluster,
    registered,
    service,
    webhook,
)

SEED = int(os.environ.get("KANARY_DIFFERENTIAL_SEED", "20261130"))
COUNT = int(os.environ.get("KANARY_DIFFERENTIAL_COUNT", "600"))
BATCH = 150  # variants per kubectl call
NS = "differential"

# The Services in the cluster and in check's input.
SERVICES = [
    service("myapp-v1", NS, [{"name": "http", "port": 80, "targetPort": 8080}]),
    service("myapp-v2", NS, [{"port": 9090, "targetPort": 9090}]),
    service(
        "myapp-v3",
        NS,
        [{"name": "web", "port": 8080, "targetPort": 8080}, {"name": "admin", "port": 9091}],
    ),
]

# Paths check names that the API server cannot reach when its schema or CEL refused first:
# they come from looking up the backend Service and its port, which only the webhook does.
DEFERRED_TO_WEBHOOK = re.compile(r"^spec\.routes\[\d+\]\.backend\.(serviceName|servicePort)$")

# Differences left on purpose, with the reason (also in README.md, "Offline tools"): where
# check names a field more precisely than the CRD's CEL rule can, the path check names, the
# words of its message, and the path the API server names instead.
DELIBERATE = [
    (
        "a backend named twice: check names the second route's serviceName; the CEL rule "
        "over the list can only name spec.routes",
        re.compile(r"^spec\.routes\[\d+\]\.backend\.serviceName$"),
        "Duplicate value",
        "spec.routes",
    ),
]


# ---- the generator ----


class Raw(str):
    """A scalar written exactly as given."""


class Map(list):
    """A mapping as a list of (key, value) pairs, so a key may repeat; anchor names it."""

    def __init__(self, pairs=(), anchor=None):
        super().__init__(pairs)
        self.anchor = anchor


class Alias(str):
    """*name"""


def q(s):
    return Raw(json.dumps(s))


def spell_int(rng, n):
    """n written one of the ways kubectl reads as the number n."""
    forms = [str(n), f"{n}.0", f"+{n}", f"0x{n:x}", f"0o{n:o}", f"{n}.00"]
    if n > 0:
        forms.append(f"0{n:o}")  # a leading 0 is octal
    if n >= 10:
        s = str(n)
        forms += [s[:1] + "_" + s[1:], f"{n / 10:g}e1"]
        if n % 10 == 0:
            forms.append(f"{n // 10}e1")
    if n % 100 == 0 and n:
        forms.append(f"{n // 100}e2")
    return Raw(rng.choice(forms))


def spell_weight(rng, n):
    if rng.random() < 0.78:
        return spell_int(rng, n)
    return rng.choice(
        [
            q(str(n)),
            Raw(f"{n}.5"),
            Raw("-1"),
            Raw("120"),
            Raw("null"),
            Raw("true"),
            Raw("~"),
            Raw("yes"),
            Raw(f"0{n}9"),  # 0809: not octal, so a float to kubectl
            Raw("1e2"),
            Raw(".inf"),  # JSON has no such number: kubectl refuses the file
            Raw("1e400"),  # out of range: a string to kubectl
            Raw("on"),
        ]
    )


PORTS = {
    "myapp-v1": [("name", "http"), ("num", 80)],
    "myapp-v2": [("num", 9090)],
    "myapp-v3": [("name", "web"), ("name", "admin"), ("num", 8080), ("num", 9091)],
}


def spell_port(rng, svc):
    choices = PORTS.get(svc, [("name", "http"), ("num", 80)])
    kind, value = rng.choice(choices)
    r = rng.random()
    if kind == "name":
        if r < 0.85:
            return rng.choice([Raw(value), q(value)])
        return rng.choice([Raw("nosuchport"), Raw("HTTP"), Raw("a-very-long-port-name")])
    if r < 0.7:
        return spell_int(rng, value)
    return rng.choice(
        [q(str(value)), Raw(f"{value}.5"), Raw("0"), Raw("70000"), Raw("-80"), Raw("null")]
    )


def gen_variant(rng, i):
    """One variant: (name, text, style)."""
    name = f"v{i:04d}"
    n_routes = rng.choice([1, 2, 2, 2, 3, 3])
    splits = {
        1: [[100], [100], [90], [0]],
        2: [[80, 20], [50, 50], [100, 0], [90, 20], [0, 0], [70, 30]],
        3: [[60, 30, 10], [34, 33, 33], [50, 50, 10], [100, 0, 0]],
    }[n_routes]
    weights = rng.choice(splits)
    services = rng.sample(["myapp-v1", "myapp-v2", "myapp-v3"], n_routes)
    if rng.random() < 0.06:
        services[-1] = "no-such-service"
    if n_routes > 1 and rng.random() < 0.05:
        services[-1] = services[0]  # a backend twice
    routes = []
    use_merge = n_routes > 1 and rng.random() < 0.2
    for j, (svc, w) in enumerate(zip(services, weights)):
        backend = Map([("serviceName", Raw(svc)), ("servicePort", spell_port(rng, svc))])
        if j == 0 and use_merge:
            backend.anchor = "b0"
        elif use_merge:
            backend = Map([("<<", Alias("b0"))] + list(backend))
        route = Map([("backend", backend), ("weight", spell_weight(rng, w))])
        if rng.random() < 0.3:
            route = Map(list(reversed(route)))
        routes.append(route)
    destination = "myapp" if rng.random() > 0.04 else services[0]  # a loop
    spec = Map([("destination", Raw(destination)), ("routes", routes)])
    if rng.random() < 0.2:
        spec.append(("port", spell_int(rng, rng.choice([80, 8080, 70000]))))
    if rng.random() < 0.15:
        spec.append(("proxy", Map([("replicas", spell_int(rng, rng.choice([1, 2, 3, 11])))])))
    # missing and unknown fields
    r = rng.random()
    if r < 0.04:
        spec[:] = [kv for kv in spec if kv[0] != "destination"]
    elif r < 0.08:
        route = rng.choice(routes)
        route[:] = [kv for kv in route if kv[0] != "weight"]
    elif r < 0.11:
        rng.choice(routes).append(("extra", Raw("1")))
    elif r < 0.13:
        spec.append(("unknownField", Raw("x")))
    # a repeated key: an earlier, different value that the last one overrides
    if rng.random() < 0.15:
        route = rng.choice(routes)
        for k, v in list(route):
            if k == "weight":
                route.insert(0, ("weight", Raw(rng.choice(["5", "abc", "null", "200"]))))
                break
    if rng.random() < 0.08:
        spec.insert(0, ("destination", Raw("first-value")))
    doc = Map(
        [
            ("apiVersion", Raw(API_VERSION)),
            ("kind", Raw("Kanary")),
            ("metadata", Map([("name", Raw(name)), ("namespace", Raw(NS))])),
            ("spec", spec),
        ]
    )
    style = rng.choice(["block", "block", "flow-spec", "flow-document", "json"])
    text = emit(doc, style, rng)
    if rng.random() < 0.25:
        text = "---\n" + text
    if rng.random() < 0.15:
        text = "# generated variant " + name + "\n" + text
    if rng.random() < 0.1:
        text = text + ("...\n" if style != "json" else "")
    return name, text, style


def emit_flow(node, json_keys=False):
    if isinstance(node, Map):
        anchor = f"&{node.anchor} " if node.anchor else ""
        items = []
        for k, v in node:
            key = json.dumps(k) if json_keys and k != "<<" else k
            items.append(f"{key}: {emit_flow(v, json_keys)}")
        return anchor + "{" + ", ".join(items) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(emit_flow(v, json_keys) for v in node) + "]"
    if isinstance(node, Alias):
        return f"*{node}"
    return str(node)


def emit_block(node, indent, rng):
    pad = "  " * indent
    lines = []
    if isinstance(node, Map):
        for k, v in node:
            comment = "  # note" if rng.random() < 0.05 else ""
            if isinstance(v, Map) and v:
                anchor = f" &{v.anchor}" if v.anchor else ""
                lines.append(f"{pad}{k}:{anchor}{comment}")
                lines.append(emit_block(v, indent + 1, rng))
            elif isinstance(v, list) and not isinstance(v, Map) and v:
                lines.append(f"{pad}{k}:{comment}")
                lines.append(emit_block(v, indent, rng))
            else:
                lines.append(f"{pad}{k}: {emit_flow(v)}{comment}")
        return "\n".join(lines)
    for item in node:
        if isinstance(item, Map) and item:
            body = emit_block(item, indent + 1, rng).split("\n")
            first = body[0][len(pad) + 2 :]
            lines.append(f"{pad}- {first}")
            lines.extend(body[1:])
        else:
            lines.append(f"{pad}- {emit_flow(item)}")
    return "\n".join(lines)


def emit(doc, style, rng):
    if style == "block":
        return emit_block(doc, 0, rng) + "\n"
    if style == "flow-spec":
        top = Map([(k, v) for k, v in doc if k != "spec"])
        spec = dict(doc)["spec"] if any(k == "spec" for k, _ in doc) else None
        return emit_block(top, 0, rng) + "\nspec: " + emit_flow(spec) + "\n"
    if style == "flow-document":
        return emit_flow(doc) + "\n"
    return emit_flow(doc, json_keys=True) + "\n"


def variants():
    rng = random.Random(SEED)
    return [gen_variant(rng, i) for i in range(COUNT)]


# ---- the two verdicts ----

PATH = re.compile(r"^(spec(?:\.[A-Za-z]+|\[\d+\])*|metadata\.[A-Za-z]+|apiVersion|kind)\b")


def paths_of(messages, deliberate=()):
    out = set()
    for m in messages:
        m = m.strip()
        hit = PATH.match(m)
        if not hit:
            out.add("<" + m[:60] + ">")
            continue
        path = hit.group(1)
        for _, pattern, words, server_path in deliberate:
            if pattern.match(path) and words in m:
                path = server_path
        out.add(path)
    return out


def check_verdict(tmp, name, text):
    """(allowed, paths, output) from kanary-webhook check."""
    f = tmp / f"{name}.yaml"
    f.write_text(text)
    p = subprocess.run(
        [str(WEBHOOK), "check", "-f", str(tmp / "services.yaml"), "-f", str(f)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    out = p.stdout.strip()
    assert p.returncode in (0, 1, 2), f"check exited {p.returncode} on {name}:\n{p.stderr}"
    for bad in ("Sanitizer", "runtime error:"):
        assert bad not in p.stderr, f"'{bad}' from check on {name}:\n{p.stderr}"
    if p.returncode == 2:
        return None, {"<unreadable>"}, p.stderr
    m = re.match(rf"^{NS}/{name}: (allowed|denied: (.*))$", out, re.S)
    assert m, f"unexpected check output for {name}:\n{out}\n{p.stderr}"
    if m.group(1) == "allowed":
        return True, set(), out
    return False, paths_of(m.group(2).split("; "), DELIBERATE), out


NOT_CHECKED = "some validation rules were not checked"


def server_messages(text):
    """The field errors in one kubectl error line."""
    unknown = re.findall(r'unknown field "([^"]+)"', text)
    if unknown:
        return unknown
    m = re.search(r"denied the request: (?:Kanary \S+ is invalid: )?(.*)$", text)
    if not m:
        m = re.search(r"is invalid: (.*)$", text)
    body = (m.group(1) if m else text).strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    # Errors are joined by ", " (schema) or "; " (the webhook), each after its field path.
    parts = re.split(r"(?:, |; )(?=(?:spec|metadata|apiVersion|kind|<nil>)[.\[: ])", body)
    return [p for p in parts if NOT_CHECKED not in p]


def server_verdicts(cluster, files):
    """{name: (allowed, paths, text)} from one kubectl apply --dry-run=server of many files."""
    args = ["apply", "--dry-run=server"]
    for f in files:
        args += ["-f", str(f)]
    p = cluster.kubectl(*args, check=False, timeout=600)
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^kanary\.kanary\.pyxida\.io/(v\d{4}) (created|configured|unchanged)", line)
        if m:
            out[m.group(1)] = (True, set(), line)
    for line in p.stderr.splitlines():
        # kubectl gathers the files it cannot decode into one line.
        unreadable = re.findall(r"error parsing \S*/(v\d{4})\.yaml", line)
        for name in unreadable:
            out[name] = (None, {"<unreadable>"}, line)
        m = re.search(r"/(v\d{4})\.yaml\b", line)
        if m and not unreadable:
            out[m.group(1)] = (False, paths_of(server_messages(line)), line)
    return out, p


def stage(text):
    """Which stage of the API server refused: decode, schema (with CEL) or webhook."""
    if "strict decoding error" in text or "cannot be handled as" in text:
        return "decode"
    if "admission webhook" in text:
        return "webhook"
    return "schema"


def under_routes(paths):
    return any(p.startswith("spec.routes") for p in paths)


def agree(server, offline):
    """Same verdict; for a denial, the same field paths, up to what the stages explain."""
    s_allowed, s_paths, s_text = server
    c_allowed, c_paths, _ = offline
    if s_allowed != c_allowed:
        return False
    if s_allowed in (True, None):
        return True
    where = stage(s_text)
    if where == "webhook":
        return s_paths == c_paths
    if where == "decode" or NOT_CHECKED in s_text:
        # Strict decoding names only the unknown fields and stops; a schema error (a
        # required field, a wrong type) keeps the CEL rules from running. check goes on.
        return s_paths <= c_paths
    # Schema and CEL: the lookups never ran; CEL's rules over the whole list (sum, one
    # above 0, unique backends) are reported at spec.routes, where check, finding a weight
    # out of range, leaves the sum alone.
    c = {p for p in c_paths if not DEFERRED_TO_WEBHOOK.match(p) or p in s_paths}
    if s_paths - {"spec.routes"} != c - {"spec.routes"}:
        return False
    return ("spec.routes" in s_paths) <= under_routes(c)


@pytest.fixture(scope="module")
def namespace(cluster, registered):
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    cluster.apply(SERVICES)
    return NS


def test_generated_variants_agree_with_the_api_server(cluster, namespace, tmp_path):
    (tmp_path / "services.yaml").write_text(yaml.safe_dump_all(SERVICES))
    vs = variants()
    server = {}
    for start in range(0, len(vs), BATCH):
        files = []
        for name, text, _ in vs[start : start + BATCH]:
            f = tmp_path / f"{name}.yaml"
            f.write_text(text)
            files.append(f)
        got, proc = server_verdicts(cluster, files)
        server.update(got)
        missing = [name for name, _, _ in vs[start : start + BATCH] if name not in server]
        other = [ln for ln in proc.stderr.splitlines() if not re.search(r"/v\d{4}\.yaml", ln)]
        assert not missing, f"no kubectl verdict for {missing[:10]}:\n" + "\n".join(other[:20])

    disagreements = []
    tally = {"allowed": 0, "denied": 0, "unreadable": 0}
    for name, text, style in vs:
        offline = check_verdict(tmp_path, name, text)
        s = server[name]
        tally[{True: "allowed", False: "denied", None: "unreadable"}[s[0]]] += 1
        if not agree(s, offline):
            disagreements.append(
                f"--- {name} ({style})\n{text}server: {s[2]}\ncheck:  {offline[2]}\n"
            )
    print(f"{len(vs)} variants (seed {SEED}): {tally}; disagreements: {len(disagreements)}")
    report = os.environ.get("KANARY_DIFFERENTIAL_REPORT")
    if report:
        pathlib.Path(report).write_text("\n".join(disagreements))
    assert not disagreements, (
        f"{len(disagreements)} of {len(vs)} variants disagree:\n" + "\n".join(disagreements[:15])
    )
