# SPDX-License-Identifier: Apache-2.0
"""A network namespace for the data-plane tests' backends, reached only through a veth pair.

`BackendNet` creates the namespace `kny-dp-<pid>` and a veth pair `knydp<pid>`
(host) / `knydp<pid>n` (namespace), picks a free /24 of 10.248.0.0/16 (a range
no other suite uses: the node cluster has 10.244-10.246 and 10.0.0.0/24), gives
the host end .1 and the namespace end every backend address, and routes only that
/24 through the veth: the host has the connected route and, beneath it, an
`unreachable` route for the same /24, so that if the veth ever vanished the
range would still not follow the default route off the machine; the namespace has
no default route at all. Before anything is created it checks that nothing on the
host routes or owns any address of that /24, and after creation that the kernel
routes every backend address through the veth.

Listening sockets are made inside the namespace by a short-lived thread that
enters it with setns(2) (a network namespace is per thread) and leaves: a socket
keeps the namespace it was created in, so the test's selector thread serves them
from the host namespace. haproxy runs on the host and connects to them across
the veth, as a node's proxy reaches pod IPs.

`close()` deletes the namespace, the veth and the route whatever happened; on
start, leftovers of a test process that no longer exists (killed before its
cleanup ran) are removed the same way. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN).
"""

import ctypes
import ipaddress
import json
import os
import re
import subprocess
import threading

CLONE_NEWNET = 0x40000000
RANGE = ipaddress.ip_network("10.248.0.0/16")
NETNS_DIR = "/run/netns"
GUARD_METRIC = 4000
NAME = re.compile(r"^kny-dp-(\d+)$")


def ip(*args, check=True, input=None):
    """One `ip` command; its stdout. Fails with its stderr."""
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, input=input)
    if check and out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} exited {out.returncode}: {out.stderr.strip()}")
    return out.stdout


def why_not_root():
    """None when this process may create namespaces and links, else why not."""
    if os.geteuid() != 0:
        return "the backends' network namespace needs root (ip netns add, veth); CI runs as root"
    if subprocess.run(["ip", "-V"], capture_output=True).returncode != 0:
        return "ip (iproute2) is not installed"
    return None


def names(pid):
    return f"kny-dp-{pid}", f"knydp{pid}", f"knydp{pid}n"


def remove(pid, subnet=None):
    """Deletes the veth, unreachable route and namespace of test process pid, in the reverse
    order of creation (so the route outlives the veth and the namespace the route); quiet
    when absent."""
    netns, veth, _ = names(pid)
    ip("link", "del", veth, check=False)  # deletes the peer in the namespace too
    if subnet is not None:
        ip("route", "del", "unreachable", str(subnet), "metric", str(GUARD_METRIC), check=False)
    ip("netns", "del", netns, check=False)


def remove_stale():
    """Removes what a test process that was killed before its cleanup left behind.

    A guard route exists only while its test's namespace does (created after it, deleted
    before it), so once no namespace of a live test is left, every guard route is stale.
    """
    live = False
    for entry in sorted(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else []:
        m = NAME.match(entry)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            remove(int(m.group(1)))
        elif m:
            live = True
    if live:
        return
    for route in json.loads(ip("-j", "route", "show", "type", "unreachable") or "[]"):
        dst = route.get("dst", "")
        if route.get("metric") == GUARD_METRIC and "/" in dst and ipaddress.ip_network(dst).subnet_of(RANGE):
            ip("route", "del", "unreachable", dst, "metric", str(GUARD_METRIC), check=False)


def host_addresses_in(net):
    """Every address/prefix of the host in net, as "a.b.c.d/n"."""
    found = []
    for link in json.loads(ip("-j", "addr", "show") or "[]"):
        for a in link.get("addr_info", []):
            if a.get("family") == "inet" and ipaddress.ip_address(a["local"]) in net:
                found.append(f"{a['local']}/{a['prefixlen']}")
    return found


def routed_elsewhere(subnet):
    """The host's routes (all tables) and addresses that overlap subnet, other than default routes."""
    clashes = []
    for route in json.loads(ip("-j", "route", "show", "table", "all") or "[]"):
        dst = route.get("dst", "")
        if dst in ("default", "") or ":" in dst:
            continue
        net = ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False)
        if net.overlaps(subnet):
            clashes.append(f"route {dst} {route.get('type', '')} dev {route.get('dev', '-')}"
                           f" table {route.get('table', 'main')}")
    clashes += [f"address {a}" for a in host_addresses_in(subnet)]
    return clashes


class BackendNet:
    """The namespace, its veth, the /24; addresses handed out per Service."""

    def __init__(self, pid=None):
        self.pid = pid or os.getpid()
        self.netns, self.veth, self.peer = names(self.pid)
        self.subnet = None
        self._next = 10  # .1 host end, .2 namespace end; backends from .10
        self._created = False

    def open(self, addresses=120):
        """Creates the namespace with `addresses` backend addresses; cleans up on failure."""
        remove_stale()
        start = self.pid % 250
        for i in range(250):
            candidate = ipaddress.ip_network(f"10.248.{(start + i) % 250 + 1}.0/24")
            if not routed_elsewhere(candidate):
                self.subnet = candidate
                break
        else:
            raise RuntimeError("every /24 of 10.248.0.0/16 is routed or used on this host")
        hosts = list(self.subnet.hosts())
        self.host_address, self.ns_address = str(hosts[0]), str(hosts[1])
        self.backends = [str(h) for h in hosts[9:9 + addresses]]
        self._created = True
        try:
            ip("netns", "add", self.netns)
            # The guard before the veth: from here on the range never follows the default route.
            ip("route", "add", "unreachable", str(self.subnet), "metric", str(GUARD_METRIC))
            ip("link", "add", self.veth, "type", "veth", "peer", "name", self.peer, "netns", self.netns)
            ip("addr", "add", f"{self.host_address}/24", "dev", self.veth)
            ip("link", "set", self.veth, "up")
            batch = [f"addr add {a}/24 dev {self.peer}" for a in [self.ns_address] + self.backends]
            batch += [f"link set {self.peer} up", "link set lo up"]
            ip("-n", self.netns, "-batch", "-", input="\n".join(batch) + "\n")
            self.check_routes()
        except BaseException:
            self.close()
            raise
        return self

    def check_routes(self):
        """Fails unless the kernel sends every backend address (and nothing else of
        the /24 but .1) through the veth, and the namespace has no other way out."""
        for address in [self.ns_address] + self.backends:
            route = json.loads(ip("-j", "route", "get", address))[0]
            assert route.get("dev") == self.veth and route.get("type", "unicast") == "unicast", \
                f"{address} is routed {route}, not through {self.veth}"
        routes = json.loads(ip("-n", self.netns, "-j", "route", "show") or "[]")
        assert [r.get("dst") for r in routes] == [str(self.subnet)], \
            f"routes in {self.netns}: {routes}"

    def take(self, count):
        """count backend addresses not handed out before."""
        if self._next - 10 + count > len(self.backends):
            raise RuntimeError(f"only {len(self.backends)} backend addresses in {self.netns}")
        first = self._next - 10
        self._next += count
        return self.backends[first:first + count]

    def inside(self, fn):
        """fn() run on a thread inside the namespace; its result (the thread then ends)."""
        result = {}

        def run():
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(os.path.join(NETNS_DIR, self.netns), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns {self.netns}: {os.strerror(err)}")
                finally:
                    os.close(fd)
                result["value"] = fn()
            except BaseException as e:  # handed to the caller
                result["error"] = e

        thread = threading.Thread(target=run, name=f"in-{self.netns}", daemon=True)
        thread.start()
        thread.join(30)
        if "error" in result:
            raise result["error"]
        if "value" not in result:
            raise RuntimeError(f"nothing came back from inside {self.netns}")
        return result["value"]

    def close(self):
        """Deletes the namespace, the veth and the route; safe to call twice."""
        if self._created:
            remove(self.pid, self.subnet)
            self._created = False

    def leftovers(self):
        """What of this test's network is still on the host (empty after close)."""
        left = []
        if os.path.exists(os.path.join(NETNS_DIR, self.netns)):
            left.append(f"netns {self.netns}")
        if ip("link", "show", self.veth, check=False):
            left.append(f"link {self.veth}")
        if self.subnet is not None and routed_elsewhere(self.subnet):
            left += routed_elsewhere(self.subnet)
        return left
