# SPDX-License-Identifier: Apache-2.0
"""Data-plane test: the agent beside an HAProxy whose structure is not the state's.

While a structural change rolls (a route outgrowing its slots, an option
changed), the controller writes the new state, computed for the new
structure, before the new HAProxy pods exist: the old pods read a state whose
structureHash is not theirs. The agent applies such a state when its HAProxy
has a backend for every route the state names, filling the slots it has and
counting the endpoints left over; it refuses one naming a route its HAProxy
lacks, and the state in force stays.

The real haproxy runs a structure of 16 slots per route rendered by
`kanary-controller render --config-only`; `render --state-only
--previous-state` gives the states the controller would write next (a route
grown to 20 endpoints, hence more slots and another structure hash; then a
route added); `kanary-controller agent --state-file` applies them as the
sidecar does. Pods, client and haproxy are test_dataplane.py's, on loopback.
"""

import contextlib
import json
import re
import shutil
import tempfile
import time

from test_dataplane import (CONNECTIONS, Haproxy, Route, admin, assert_split, controller,  # noqa: F401
                            drive, free_ports, healthy_stream, http_get, render, report,
                            start_pods, structure_hash, write_state, assert_loopback_only)

SMALL_SLOTS = 16
V1_PODS = 20  # more than SMALL_SLOTS: the state that has them all is for a larger structure
# The second route on 8 pods, so no pod takes thousands of connections in a few seconds.
ROUTES_SMALL = [Route("myapp-v1", 80, 3), Route("myapp-v2", 20, 8)]
ROUTES_GROWN = [Route("myapp-v1", 50, V1_PODS), Route("myapp-v2", 50, 8)]
ROUTES_ADDED = [Route("myapp-v1", 40, V1_PODS), Route("myapp-v2", 40, 8), Route("myapp-v3", 20, 1)]
POLL_DEADLINE_S = 20.0


def metric(body, name, labels=""):
    """The value of one sample of the agent's /metrics, as an int."""
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", body, re.M)
    assert m, f"/metrics has no {name}{labels}:\n{body}"
    return int(float(m.group(1)))


def route_map(hap):
    """{key: backend} of the route map haproxy runs."""
    out = {}
    for line in admin(hap.socket, "show map /dev/null").splitlines():
        f = line.split()
        if len(f) == 3:
            out[f[1]] = f[2]
    return out


class States:
    """The structure haproxy runs and the states the controller would write, for one set of ports."""

    def __init__(self, controller, workdir, by_service, ports, runtime_dir):
        self.workdir = workdir

        def stream(name, routes, pods_of):
            return healthy_stream(workdir / name, routes, {r.service: pods_of(r) for r in routes})

        small = stream("small.yaml", ROUTES_SMALL, lambda r: by_service[r.service][:r.pods])
        grown = stream("grown.yaml", ROUTES_GROWN, lambda r: by_service[r.service])
        added = stream("added.yaml", ROUTES_ADDED, lambda r: by_service[r.service])
        self.cfg = render(controller, small, ports, runtime_dir)
        self.hash = structure_hash(self.cfg)
        self.small = json.loads(render(controller, small, ports, runtime_dir, "--state-only"))
        assert self.small["structureHash"] == self.hash
        assert [r["slots"] for r in self.small["routes"]] == [SMALL_SLOTS, SMALL_SLOTS]
        prev = self.save("small.json", self.small)
        grown_cfg = render(controller, grown, ports, runtime_dir, previous=prev)
        self.grown = json.loads(render(controller, grown, ports, runtime_dir, "--state-only",
                                       previous=prev))
        assert self.grown["structureHash"] == structure_hash(grown_cfg) != self.hash
        assert self.grown["routes"][0]["slots"] > SMALL_SLOTS
        assert len(self.grown["routes"][0]["endpoints"]) == V1_PODS
        prev = self.save("grown.json", self.grown)
        self.added = json.loads(render(controller, added, ports, runtime_dir, "--state-only",
                                       previous=prev))
        assert self.added["structureHash"] not in (self.hash, self.grown["structureHash"])
        for st in (self.small, self.grown, self.added):
            assert_loopback_only(self.cfg, st)

    def save(self, name, state):
        path = self.workdir / name
        path.write_text(json.dumps(state))
        return path


@contextlib.contextmanager
def running(controller, workdir, by_service, first_state):
    """haproxy on the 16-slot structure, its agent given first_state(States) at start."""
    runtime_dir = tempfile.mkdtemp(prefix="kanary-st-", dir="/tmp")
    try:
        for _ in range(5):
            ports = free_ports(4)
            states = States(controller, workdir, by_service, ports, runtime_dir)
            hap = Haproxy(controller, states.cfg, first_state(states), ports, workdir, runtime_dir)
            try:
                if hap.start():
                    break
            except BaseException:
                print(f"haproxy log (tail):\n{hap.log_tail()}\nagent log (tail):\n{hap.agent_log_tail()}")
                hap.stop()
                raise
        else:
            raise AssertionError("haproxy could not bind free ports five times in a row")
        try:
            yield hap, states
        except BaseException:
            print(f"haproxy log (tail):\n{hap.log_tail()}\nagent log (tail):\n{hap.agent_log_tail()}")
            raise
        finally:
            hap.stop()
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)


def wait_metric(hap, name, labels, want):
    """Polls the agent's /metrics until name{labels} is want."""
    deadline = time.monotonic() + POLL_DEADLINE_S
    seen = None
    while time.monotonic() < deadline:
        seen = metric(hap.agent_metrics(), name, labels)
        if seen == want:
            return
        time.sleep(0.02)
    raise AssertionError(f"{name}{labels} is {seen} after {POLL_DEADLINE_S} s, want {want}:\n"
                         f"{hap.agent_log_tail()}")


def assert_grown_state_runs(hap, states, pods, label=None):
    """The grown state in force on the small structure: 16 of 20 placed, weights exact, /ready 200;
    with a label, the split measured over CONNECTIONS connections too."""
    v1 = {f"{e['address']}:{e['port']}" for e in states.grown["routes"][0]["endpoints"]}
    live = hap.live_addresses("route_myapp-v1")
    assert len(live) == SMALL_SLOTS and set(live) <= v1, f"route_myapp-v1 live slots: {live}"
    assert route_map(hap) == {"0:49": "route_myapp-v1", "50:99": "route_myapp-v2"}
    body = hap.agent_metrics()
    assert metric(body, "kanary_agent_unplaced_endpoints") == V1_PODS - SMALL_SLOTS
    assert metric(body, "kanary_agent_applied_generation") == states.grown["generation"]
    assert metric(body, "kanary_agent_state_generation") == states.grown["generation"]
    assert http_get(hap.probe_port, "/ready")[0] == 200
    if label is None:
        return None
    tally = drive(hap.address, CONNECTIONS)
    pct = report(label, tally, pods, [r.service for r in ROUTES_ADDED])
    assert_split(pct, ROUTES_GROWN, tally)
    served = {name for name in tally.answers if pods.service_of(name) == "myapp-v1"}
    assert len(served) <= SMALL_SLOTS, f"{len(served)} myapp-v1 pods answered through 16 slots"
    return pct


def test_old_structure_applies_a_grown_state_and_refuses_an_added_route(controller, tmp_path):
    pods, by_service = start_pods(ROUTES_ADDED)
    with pods, running(controller, tmp_path, by_service, lambda s: s.small) as (hap, states):
        # The controller's next state is for a larger structure: applied to the slots there are.
        hap.apply(states.grown)
        assert metric(hap.agent_metrics(), "kanary_agent_states_rejected_total",
                      '{reason="structure"}') == 0
        assert_grown_state_runs(hap, states, pods)

        # A route added: this HAProxy has no backend for it; refused, the grown state stays. One
        # measured split (the grown state's 50/50, not the first state's 80/20) shows both.
        write_state(hap.state_path, states.added)
        wait_metric(hap, "kanary_agent_states_rejected_total", '{reason="structure"}', 1)
        pct = assert_grown_state_runs(hap, states, pods, "grown state on 16 slots, route-added state refused: 50/50")
        assert pct.get("myapp-v3", 0.0) == 0.0

        # The next state for that structure is refused too, logged once for its hash.
        write_state(hap.state_path, dict(states.added, generation=states.added["generation"] + 1))
        wait_metric(hap, "kanary_agent_states_rejected_total", '{reason="structure"}', 2)
        log = hap.agent_log_path.read_text(errors="replace")
        refusals = [l for l in log.splitlines()
                    if "not applied" in l and states.added["structureHash"] in l]
        assert len(refusals) == 1, f"logged {len(refusals)} times:\n{log}"
        assert "myapp-v3" in refusals[0]
        assert metric(hap.agent_metrics(), "kanary_agent_state_generation") == states.grown["generation"]


def test_fresh_haproxy_given_a_grown_state_becomes_ready(controller, tmp_path):
    pods, by_service = start_pods(ROUTES_ADDED)
    with pods, running(controller, tmp_path, by_service, lambda s: s.grown) as (hap, states):
        # Haproxy.start waited for /ready 200: the state got in although its hash is not ours
        # (the split it gives is measured in the test above).
        assert_grown_state_runs(hap, states, pods)
        assert metric(hap.agent_metrics(), "kanary_agent_states_rejected_total",
                      '{reason="structure"}') == 0
