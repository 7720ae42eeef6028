# Shared by tests/cluster/{build,up,down,sa-kubeconfig}; sourced, not run.
#
# The pinned versions live in the wrapper modules' go.mod files (k8s/, etcd/, helm/);
# everything below derives from them, so bumping a version is done in one place
# (`tests/cluster/build --repin COMPONENT=VERSION`).

CLUSTER_SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KANARY_CACHE_DIR=${KANARY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kanary}

die() {
	printf '%s: error: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

note() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

need() {
	local cmd pkg
	for cmd in "$@"; do
		pkg=${cmd#*:}
		cmd=${cmd%%:*}
		command -v "$cmd" >/dev/null 2>&1 ||
			die "'$cmd' not found; install the Debian package '$pkg'"
	done
}

# cidr_host CIDR N: the N-th address of an IPv4 range (N counted from the network address).
cidr_host() {
	local net=${1%/*} a b c d n
	IFS=. read -r a b c d <<<"$net"
	n=$(((a << 24 | b << 16 | c << 8 | d) + $2))
	printf '%d.%d.%d.%d\n' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255))
}

# The version a wrapper go.mod requires for MODULE, without the leading v.
required_version() {
	local gomod=$1 module=$2 v
	v=$(awk -v m="$module" '($1 == m || ($1 == "require" && $2 == m)) && $0 !~ /=>/ {
		print ($1 == "require") ? $3 : $2; exit }' "$gomod")
	[[ -n $v ]] || die "$gomod does not require $module"
	printf '%s\n' "${v#v}"
}

K8S_VERSION=$(required_version "$CLUSTER_SRC_DIR/k8s/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(required_version "$CLUSTER_SRC_DIR/etcd/go.mod" go.etcd.io/etcd/server/v3)
HELM_VERSION=$(required_version "$CLUSTER_SRC_DIR/helm/go.mod" helm.sh/helm/v3)
CRICTL_VERSION=$(required_version "$CLUSTER_SRC_DIR/crictl/go.mod" sigs.k8s.io/cri-tools)

K8S_BIN_DIR=$KANARY_CACHE_DIR/kubernetes-$K8S_VERSION/bin
ETCD_BIN_DIR=$KANARY_CACHE_DIR/etcd-$ETCD_VERSION/bin
HELM_BIN_DIR=$KANARY_CACHE_DIR/helm-$HELM_VERSION/bin
CRICTL_BIN_DIR=$KANARY_CACHE_DIR/crictl-$CRICTL_VERSION/bin
