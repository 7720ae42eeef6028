/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes objects the controller applies for one Kanary. */
#ifndef KANARY_OBJECTS_H
#define KANARY_OBJECTS_H

#include "common/kanary.h"
#include "common/render.h"

struct json_object;

struct objects_options {
	struct render_options render;
	const char *image; /* HAProxy image */
	/* The Kanary image that runs the agent sidecar (`kanary-controller agent`). */
	const char *agent_image;
	int agent_metrics_port; /* the agent's /metrics in the pod */
	/* "Always", "IfNotPresent" or "Never"; NULL leaves Kubernetes' default. */
	const char *image_pull_policy;
	/*
	 * Secrets of the Kanary's namespace the kubelet pulls both images of a
	 * HAProxy pod with (HAProxy's and the agent's), in this order; none when
	 * n_image_pull_secrets is 0. Borrowed.
	 */
	const char *const *image_pull_secrets;
	size_t n_image_pull_secrets;
	int termination_grace_s; /* > preStop + hard-stop-after */
	int prestop_sleep_s;
	int min_ready_s;
};

/*
 * The current HAProxy LTS line that the tests run (2.6 still works: every
 * rendered configuration passes `haproxy -c` on both).
 */
#define OBJECTS_DEFAULT_IMAGE "haproxy:3.0"
/* The chart passes the controller's own image; this is the chart's default name. */
#define OBJECTS_DEFAULT_AGENT_IMAGE        "kanary:0.1.0"
#define OBJECTS_DEFAULT_AGENT_METRICS_PORT 8406
/* Where the agent finds its token, as in-cluster clients look for it. */
#define OBJECTS_AGENT_TOKEN_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* The agent's token lives an hour; the kubelet renews it at 80%. */
#define OBJECTS_AGENT_TOKEN_TTL 3600
/* Seconds the pod keeps accepting after it is told to stop, while endpoints drain. */
#define OBJECTS_DEFAULT_PRESTOP_SLEEP 15
/* At least one health-check interval, so a new pod has checked its servers. */
#define OBJECTS_DEFAULT_MIN_READY 5
/* termination_grace_s must be at least prestop + hard-stop-after + this. */
#define OBJECTS_STOP_MARGIN 5
/*
 * Old ReplicaSets kept once scaled to 0: none. The controller owns the pod
 * template (a `kubectl rollout undo` is reverted at the next reconcile), so
 * history serves no rollback; and each old ReplicaSet would keep its own
 * ConfigMap alive. With none, the deployment controller deletes the old
 * ReplicaSet when the rollout completes, and the superseded ConfigMap goes
 * with it.
 */
#define OBJECTS_REVISION_HISTORY_LIMIT 0

void objects_options_init(struct objects_options *o);

/* Whether p is a pull policy Kubernetes takes: Always, IfNotPresent or Never. */
bool objects_pull_policy_valid(const char *p);

/*
 * Whether name can name a Secret: a DNS-1123 subdomain (at most 253
 * characters of a-z, 0-9, '-' and '.', dot-separated parts each starting and
 * ending with a letter or digit), as Kubernetes checks object names.
 */
bool objects_secret_name_valid(const char *name);

/*
 * Whether the options make objects that Kubernetes and HAProxy take, so a
 * daemon can refuse them at start instead of failing every Kanary: 0, or
 * -EINVAL with *ret_why (when ret_why is not NULL; static text) saying what is
 * wrong, for the cases objects_desired lists below.
 */
int objects_options_check(const struct objects_options *o, const char **ret_why);

/*
 * The objects the controller applies for k, in this order:
 * ConfigMap <name>-haproxy-<hash8> (immutable, data haproxy.cfg: the
 * structure), ConfigMap <name>-haproxy-state (data state.json, the weights and
 * endpoints the agent applies) when state is not NULL, ServiceAccount, Role
 * and RoleBinding <name>-haproxy (the agent may get, list and watch the state
 * ConfigMap and nothing else), Deployment <name>-haproxy (HAProxy and the
 * agent sidecar, the token mounted only into the agent, and the image pull
 * Secrets of o in its pod template when there are any),
 * PodDisruptionBudget <name>-haproxy and Service <destination>.
 * Each carries the managed-by and kanary.pyxida.io/name labels and, when k has
 * a uid, a controller ownerReference to it.
 * k must be valid and defaulted (spec.port and spec.proxy.replicas set), cfg
 * its rendered structure and hash that text's 64-digit render_hash; state is
 * the state.json text (NULL leaves the state ConfigMap out).
 * Returns 0; -EINVAL for a NULL argument, an unset or out-of-range field, a
 * hash that is not 64 lower-case hex digits, options out of range (an empty
 * image or agent image, a pull policy objects_pull_policy_valid refuses,
 * more than KANARY_MAX_PULL_SECRETS image pull Secrets, one whose name
 * objects_secret_name_valid refuses or that is named twice, a
 * runtime_dir that is not absolute or is /tmp or the config directory or is
 * unset, an agent metrics port out of 1..65535 or equal to another port,
 * termination_grace_s below prestop_sleep_s + hard_stop_after_s +
 * OBJECTS_STOP_MARGIN); -E2BIG when k's name is longer than a label value
 * (63); -ENOMEM.
 * Ownership: *ret is a new json-c array the caller puts.
 */
int objects_desired(const struct kanary *k, const char *cfg, const char *hash, const char *state,
                    const struct objects_options *o, struct json_object **ret);

/* "<name>-haproxy-state": the agent's state ConfigMap. -E2BIG when it does not fit. */
int objects_state_name(const struct kanary *k, char *out, size_t size);

/* The data key of the state ConfigMap. */
#define OBJECTS_STATE_KEY "state.json"

/* "<name>-haproxy-<first 8 hex digits of hash>" into out; -E2BIG when it does not fit. */
int objects_configmap_name(const struct kanary *k, const char *hash, char *out, size_t size);

#endif
