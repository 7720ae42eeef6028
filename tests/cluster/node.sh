# The node of `tests/cluster/up --node`: containerd, kubelet, kube-proxy and the network that keeps
# every packet of the cluster on this machine. Sourced by up and down (after lib.sh), not run.
#
# Layout (every interface's name starts with "kny", which the guard rules match):
#   knynode   a bridge with no ports holding the node IP (/32); the API server binds to it, and
#             the Service range is routed to it, so a ClusterIP without a DNAT rule goes nowhere
#   knycni0   the pods' bridge (CNI bridge + host-local, no masquerade), gateway .1 of the pod range
#   knycli0   the host end of a veth whose other end is eth0 of the client network namespace,
#             which has routes to the pod range, the Service range and the node IP, and nothing else
# Only one node cluster runs on a machine at a time: the kubelet and containerd use fixed host
# paths (/run/containerd, /var/lib/kubelet/device-plugins, /var/log/containers).

NODE_NAME=kanary-node
NODE_IP=${KANARY_NODE_IP:-10.245.0.1}
POD_CIDR=${KANARY_POD_CIDR:-10.244.0.0/24}
CLIENT_CIDR=${KANARY_CLIENT_CIDR:-10.246.0.0/30}
NODE_MARKER=/run/kanary-node
NODE_BRIDGE=knynode
CNI_BRIDGE=knycni0
CLIENT_VETH=knycli0
CLIENT_NETNS=kanary-client
GUARD_CHAIN=KANARY-GUARD

# The sysctls that the kubelet or this script change; down puts back the values recorded here.
NODE_SYSCTLS=(net.ipv4.ip_forward kernel.panic kernel.panic_on_oops vm.overcommit_memory
	vm.panic_on_oom kernel.keys.root_maxkeys kernel.keys.root_maxbytes
	net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
	net.netfilter.nf_conntrack_max)

# Connection tracking entries the node may hold. Every connection the tests make, on loopback
# as well once kube-proxy has loaded connection tracking, keeps an entry for two minutes after
# it closes (TIME_WAIT), and the suites make tens of thousands a minute: at the kernel's
# default of 262,144 a full table dropped packets ("nf_conntrack: table full") and every probe
# on the node timed out. About 300 bytes an entry: a full 1,048,576 is about 300 MiB.
NODE_CONNTRACK_MAX=1048576

# Host paths the kubelet and containerd use whatever their configuration says; those that did
# not exist before up are removed by down.
NODE_HOST_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /var/lib/cni
	/var/run/netns)

node_preflight() {
	[[ $(id -u) -eq 0 ]] || die "--node needs root (it runs containerd and the kubelet)"
	need containerd:containerd runc:runc iptables:iptables iptables-save:iptables \
		ip:iproute2 mount:mount nsenter:util-linux sysctl:procps
	[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
		die "the CNI plugins are missing; install the Debian package 'containernetworking-plugins'"
	local b
	for b in "$K8S_BIN_DIR"/{kubelet,kube-proxy,kube-scheduler} "$CRICTL_BIN_DIR/crictl"; do
		[[ -x $b ]] || die "$b is missing; run tests/cluster/build"
	done
	if [[ -e $NODE_MARKER ]]; then
		local other
		other=$(<"$NODE_MARKER")
		if [[ -d $other ]]; then
			die "a node cluster already runs from $other; stop it first: tests/cluster/down $other"
		fi
		note "removing the stale marker $NODE_MARKER (its state directory $other is gone)"
		rm -f "$NODE_MARKER"
	fi
	if ip link show "$CNI_BRIDGE" >/dev/null 2>&1 || ip netns list | grep -qw "$CLIENT_NETNS"; then
		die "$CNI_BRIDGE or the network namespace $CLIENT_NETNS exists but no node cluster is" \
			"recorded; remove them (ip link del $CNI_BRIDGE; ip netns del $CLIENT_NETNS)"
	fi
	[[ -d /sys/fs/cgroup/cpu ]] || [[ -f /sys/fs/cgroup/cgroup.controllers ]] ||
		die "no cgroup hierarchy is mounted at /sys/fs/cgroup"
}

# Records what down must put back: sysctls and host paths that did not exist.
node_record_host() {
	local k v p
	# kube-proxy loads connection tracking anyway; loaded now, its table size is recorded too.
	modprobe -q nf_conntrack 2>/dev/null || true
	: >"$S/node/sysctls"
	for k in "${NODE_SYSCTLS[@]}"; do
		v=$(sysctl -n "$k" 2>/dev/null) || continue
		printf '%s=%s\n' "$k" "$v" >>"$S/node/sysctls"
	done
	: >"$S/node/host-paths"
	for p in "${NODE_HOST_PATHS[@]}"; do
		[[ -e $p ]] || printf '%s\n' "$p" >>"$S/node/host-paths"
	done
	# Network namespaces that exist now are never touched by down.
	ls -1 /var/run/netns 2>/dev/null >"$S/node/netns-before" || true
}

node_guard_rules() { # add|del
	local t c chain
	if [[ $1 == add ]]; then
		for t in mangle filter; do
			iptables -w -t "$t" -N "$GUARD_CHAIN" 2>/dev/null || iptables -w -t "$t" -F "$GUARD_CHAIN"
			# The cluster's own interfaces and loopback; everything else is "leaving".
			iptables -w -t "$t" -A "$GUARD_CHAIN" -o kny+ -j RETURN
			iptables -w -t "$t" -A "$GUARD_CHAIN" -o lo -j RETURN
			for c in "$POD_CIDR" "$SERVICE_CIDR" "$CLIENT_CIDR" "$NODE_IP/32"; do
				iptables -w -t "$t" -A "$GUARD_CHAIN" -s "$c" -j DROP
				iptables -w -t "$t" -A "$GUARD_CHAIN" -d "$c" -j DROP
			done
		done
		# mangle is evaluated before filter and never touched by kube-proxy, which puts its
		# own jumps above position 1 of filter FORWARD and OUTPUT.
		iptables -w -t mangle -I FORWARD 1 -j "$GUARD_CHAIN"
		iptables -w -t mangle -I POSTROUTING 1 -j "$GUARD_CHAIN"
		iptables -w -t filter -I FORWARD 1 -j "$GUARD_CHAIN"
		iptables -w -t filter -I OUTPUT 1 -j "$GUARD_CHAIN"
	else
		for chain in mangle:FORWARD mangle:POSTROUTING filter:FORWARD filter:OUTPUT; do
			while iptables -w -t "${chain%%:*}" -D "${chain#*:}" -j "$GUARD_CHAIN" 2>/dev/null; do :; done
		done
		for t in mangle filter; do
			iptables -w -t "$t" -F "$GUARD_CHAIN" 2>/dev/null || true
			iptables -w -t "$t" -X "$GUARD_CHAIN" 2>/dev/null || true
		done
	fi
}

# The interfaces, routes, client namespace and guard rules; before any daemon starts.
node_network_up() {
	local gw client_host client_ns
	gw=$(cidr_host "$POD_CIDR" 1)
	client_host=$(cidr_host "$CLIENT_CIDR" 1)
	client_ns=$(cidr_host "$CLIENT_CIDR" 2)
	# The guard first: nothing below may open a way out before it is in place.
	node_guard_rules add
	sysctl -qw net.ipv4.ip_forward=1
	sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
	local ct_max
	if ct_max=$(sysctl -n net.netfilter.nf_conntrack_max 2>/dev/null) && ((ct_max < NODE_CONNTRACK_MAX)); then
		sysctl -qw net.netfilter.nf_conntrack_max=$NODE_CONNTRACK_MAX
	fi

	ip link add "$NODE_BRIDGE" type bridge
	ip addr add "$NODE_IP/32" dev "$NODE_BRIDGE"
	ip link set "$NODE_BRIDGE" up
	# Not a blackhole route: with one, connect() to a ClusterIP fails with EINVAL before the
	# DNAT of kube-proxy's OUTPUT rules; through a port-less bridge an unprogrammed ClusterIP
	# just times out.
	ip route add "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"

	# The pods' bridge exists before the first pod, so the pod range is never routed by
	# the default route, even for a moment.
	ip link add "$CNI_BRIDGE" type bridge
	ip addr add "$gw/${POD_CIDR#*/}" dev "$CNI_BRIDGE"
	ip link set "$CNI_BRIDGE" up

	ip netns add "$CLIENT_NETNS"
	ip link add "$CLIENT_VETH" type veth peer name "${CLIENT_VETH}p"
	ip link set "${CLIENT_VETH}p" netns "$CLIENT_NETNS"
	ip addr add "$client_host/${CLIENT_CIDR#*/}" dev "$CLIENT_VETH"
	ip link set "$CLIENT_VETH" up
	ip -n "$CLIENT_NETNS" link set "${CLIENT_VETH}p" name eth0
	ip -n "$CLIENT_NETNS" addr add "$client_ns/${CLIENT_CIDR#*/}" dev eth0
	ip -n "$CLIENT_NETNS" link set eth0 up
	ip -n "$CLIENT_NETNS" link set lo up
	# No default route: the namespace reaches the cluster's ranges and nothing else.
	ip -n "$CLIENT_NETNS" route add "$POD_CIDR" via "$client_host"
	ip -n "$CLIENT_NETNS" route add "$SERVICE_CIDR" via "$client_host"
	ip -n "$CLIENT_NETNS" route add "$NODE_IP/32" via "$client_host"
}

node_network_down() {
	local n
	ip netns del "$CLIENT_NETNS" 2>/dev/null || true
	for n in "$CLIENT_VETH" "$CNI_BRIDGE" "$NODE_BRIDGE"; do
		ip link del "$n" 2>/dev/null || true
	done
	# Pods' veths whose namespace outlived their sandbox.
	for n in $(ip -o link show master "$CNI_BRIDGE" 2>/dev/null | awk -F': ' '{sub("@.*", "", $2); print $2}'); do
		ip link del "$n" 2>/dev/null || true
	done
	node_guard_rules del
}

# Certificates of the node's components, signed by the cluster CA (run in $S/pki).
node_certs() {
	sign kubelet "/CN=system:node:$NODE_NAME" "subjectAltName=DNS:$NODE_NAME,IP:$NODE_IP\n\
keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
	sign kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" \
		"keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
	sign kube-proxy "/CN=system:kube-proxy" \
		"keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
	sign kube-scheduler "/CN=system:kube-scheduler" \
		"keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
	# The API server's client identity towards the kubelet (logs, exec, port-forward).
	sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" \
		"keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
	chmod 600 ./*.key
}

node_containerd_up() {
	local d=$S/node/containerd
	mkdir -p "$d/root" "$d/state" "$d/opt" "$S/node/cni/net.d" "$S/node/cni/ipam"
	cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
oom_score = 0
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[debug]
  level = "warn"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without CAP_SYS_RESOURCE runc cannot lower oom_score_adj, and every sandbox fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$S/node/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
EOF
	local gw
	gw=$(cidr_host "$POD_CIDR" 1)
	# Pods get routes to this cluster's ranges only, no default route.
	cat >"$S/node/cni/net.d/10-kanary.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "kanary",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$gw"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}, {"dst": "$NODE_IP/32"}, {"dst": "$CLIENT_CIDR"}],
        "dataDir": "$S/node/cni/ipam"
      }
    }
  ]
}
EOF
	launch containerd containerd --config "$d/config.toml"
	wait_until containerd "its socket" "$CRICTL_BIN_DIR/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" \
		--timeout 2s version
}

node_kubelet_up() {
	local k=$S/node/kubelet
	mkdir -p "$k" "$S/node/pod-logs" "$S/node/volume-plugins"
	# '/' is a private mount here; the kubelet needs mount propagation below its root.
	mount --bind "$k" "$k"
	mount --make-rshared "$k"
	printf '%s\n' "$k" >"$S/node/mounts"
	# No nameserver: pods resolve nothing, so no DNS query leaves the machine.
	printf 'options ndots:1\n' >"$S/node/resolv.conf"
	cat >"$S/node/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_healthz_port
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $S/pki/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $S/pki/kubelet.crt
tlsPrivateKeyFile: $S/pki/kubelet.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: true
oomScoreAdj: 0
resolvConf: $S/node/resolv.conf
podLogsDir: $S/node/pod-logs
volumePluginDir: $S/node/volume-plugins
# Images are loaded locally and can never be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
registerNode: true
nodeStatusUpdateFrequency: 2s
EOF
	launch kubelet "$K8S_BIN_DIR/kubelet" --config="$S/node/kubelet.yaml" \
		--kubeconfig="$S/kubelet.kubeconfig" --root-dir="$k" \
		--hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
}

node_kube_proxy_up() {
	cat >"$S/node/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $S/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$proxy_healthz_port
metricsBindAddress: 127.0.0.1:$proxy_metrics_port
oomScoreAdj: 0
nodePortAddresses: ["$NODE_IP/32"]
iptables: {localhostNodePorts: false, masqueradeAll: false}
# All zero: kube-proxy then writes no conntrack sysctl.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
	launch kube-proxy "$K8S_BIN_DIR/kube-proxy" --config="$S/node/kube-proxy.yaml"
}

node_scheduler_up() {
	launch kube-scheduler "$K8S_BIN_DIR/kube-scheduler" --kubeconfig="$S/kube-scheduler.kubeconfig" \
		--authentication-kubeconfig="$S/kube-scheduler.kubeconfig" \
		--authorization-kubeconfig="$S/kube-scheduler.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port="$sched_port" --leader-elect=false
	wait_until kube-scheduler "healthy /healthz" curl -sfk --max-time 5 "https://127.0.0.1:$sched_port/healthz"
}

node_ready() {
	[[ $("$KUBECTL" --kubeconfig="$S/admin.kubeconfig" get node "$NODE_NAME" \
		-o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

# ---- teardown (down) ----

# The KUBE-* chains kube-proxy --cleanup leaves: the kubelet's own (KUBE-FIREWALL,
# KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT), in IPv4 and IPv6. Jumps to them from the built-in
# chains go first, then the chains. Only one node cluster runs on a machine, so every KUBE-*
# chain is this node's.
node_kube_chains_del() {
	local cmd t rules
	for cmd in iptables ip6tables; do
		command -v "$cmd-restore" >/dev/null || continue
		for t in filter nat mangle; do
			rules=$("$cmd-save" -t "$t" 2>/dev/null) || continue
			grep -qE '^:KUBE-' <<<"$rules" || continue
			{
				printf '*%s\n' "$t"
				grep -E '^-A [A-Z]+ .*-j KUBE-' <<<"$rules" | grep -vE '^-A KUBE-' | sed 's/^-A /-D /'
				grep -oE '^:KUBE-[^ ]+' <<<"$rules" | sed 's/^:/-F /'
				grep -oE '^:KUBE-[^ ]+' <<<"$rules" | sed 's/^:/-X /'
				printf 'COMMIT\n'
			} | "$cmd-restore" -w -n || note "could not remove every KUBE-* chain of $cmd $t"
		done
	done
}

# node_down_workloads: the node's daemons and everything they made, in the order that lets
# each part clean up after itself. Then, once the API server is stopped (it talks to itself
# through the node IP), node_down_host removes the network and puts the host back. Both are
# safe on a half-started node; every step tolerates what is missing.
node_down_workloads() {
	local crictl=("$CRICTL_BIN_DIR/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 10s)
	local i m p

	# The kubelet first (nothing restarts pods after it), then every sandbox through CRI, which
	# stops its containers, runs CNI DEL and removes its network namespace.
	stop_daemon kubelet
	if [[ -S $CONTAINERD_SOCK ]] && [[ -x ${crictl[0]} ]]; then
		for i in 1 2 3; do
			[[ -z $("${crictl[@]}" pods -q 2>/dev/null) ]] && break
			"${crictl[@]}" rmp -fa >/dev/null 2>&1 || true
		done
		[[ -z $("${crictl[@]}" pods -q 2>/dev/null) ]] || note "some pod sandboxes were not removed"
	fi
	stop_daemon containerd
	# Shims outlive containerd by design; any left belong to this node's containers.
	for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null); do
		kill -KILL "$p" 2>/dev/null || true
	done
	stop_daemon kube-proxy
	if [[ -x $K8S_BIN_DIR/kube-proxy ]]; then
		"$K8S_BIN_DIR/kube-proxy" --cleanup >"$S/log/kube-proxy-cleanup.log" 2>&1 || true
	fi
	node_kube_chains_del

	# Mounts below the state directory (the kubelet's root, pod volumes, containerd's rootfs
	# and shm), deepest first; then the network namespaces this node created.
	for i in 1 2 3; do
		m=$(awk -v s="$S/" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r)
		[[ -n $m ]] || break
		while read -r p; do
			umount "$p" 2>/dev/null || umount -l "$p" 2>/dev/null || true
		done <<<"$m"
	done
	if [[ -d /var/run/netns ]]; then
		for p in /var/run/netns/cni-*; do
			[[ -e $p ]] || continue
			grep -qxF "${p##*/}" "$S/node/netns-before" 2>/dev/null && continue
			umount "$p" 2>/dev/null || umount -l "$p" 2>/dev/null || true
			rm -f "$p"
		done
	fi
}

node_down_host() {
	local p k v
	node_network_down

	# The kubelet's cgroups (empty once every pod is gone).
	for p in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
		[[ -d $p ]] || continue
		find "$p" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	# Host paths that did not exist before up.
	if [[ -f $S/node/host-paths ]]; then
		while read -r p; do
			[[ -n $p ]] || continue
			if awk -v s="$p" '$2 == s || index($2, s "/") == 1 {f = 1} END {exit !f}' /proc/mounts; then
				note "$p still has mounts; leaving it"
				continue
			fi
			rm -rf -- "$p"
		done <"$S/node/host-paths"
	fi
	if [[ -f $S/node/sysctls ]]; then
		while IFS== read -r k v; do
			[[ -n $k ]] && sysctl -qw "$k=$v" 2>/dev/null || true
		done <"$S/node/sysctls"
	fi
	if [[ -f $NODE_MARKER && $(<"$NODE_MARKER") == "$S" ]]; then
		rm -f "$NODE_MARKER"
	fi
}
