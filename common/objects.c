/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes objects the controller applies for one Kanary. */
#include "common/objects.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "common/limits.h"

#define LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define LABEL_APP_NAME   "app.kubernetes.io/name"
#define LABEL_KANARY     KANARY_GROUP "/name"
#define ANNOT_HASH       KANARY_GROUP "/config-hash"

#define CONFIG_DIR  "/usr/local/etc/haproxy"
#define CONFIG_KEY  "haproxy.cfg"
#define CONFIG_PATH CONFIG_DIR "/" CONFIG_KEY

/*
 * The haproxy user of the official image (docker-library/haproxy: useradd
 * --uid 99, group 99). The image names its USER, which the kubelet cannot
 * check against runAsNonRoot, so the pod says the number.
 */
#define HAPROXY_UID 99

/* Kubernetes label values stop at 63 characters. */
#define LABEL_VALUE_MAX 63

void objects_options_init(struct objects_options *o)
{
	render_options_init(&o->render);
	o->image = OBJECTS_DEFAULT_IMAGE;
	o->agent_image = OBJECTS_DEFAULT_AGENT_IMAGE;
	o->agent_metrics_port = OBJECTS_DEFAULT_AGENT_METRICS_PORT;
	o->image_pull_policy = NULL;
	o->image_pull_secrets = NULL;
	o->n_image_pull_secrets = 0;
	o->prestop_sleep_s = OBJECTS_DEFAULT_PRESTOP_SLEEP;
	o->termination_grace_s =
	    OBJECTS_DEFAULT_PRESTOP_SLEEP + RENDER_DEFAULT_HARD_STOP_AFTER + OBJECTS_STOP_MARGIN;
	o->min_ready_s = OBJECTS_DEFAULT_MIN_READY;
}

bool objects_pull_policy_valid(const char *p)
{
	return p && (strcmp(p, "Always") == 0 || strcmp(p, "IfNotPresent") == 0 ||
	             strcmp(p, "Never") == 0);
}

bool objects_secret_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > KANARY_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		/* A part's first and last character: the name's ends, and around each dot. */
		bool edge = i == 0 || i == n - 1 || name[i - 1] == '.' || name[i + 1] == '.';

		if (c == '.' ? edge : !(alnum || (c == '-' && !edge)))
			return false;
	}
	return true;
}

int objects_configmap_name(const struct kanary *k, const char *hash, char *out, size_t size)
{
	int n;

	if (!k || !k->name || !hash || !out || strlen(hash) < 8)
		return -EINVAL;
	n = snprintf(out, size, "%s-haproxy-%.8s", k->name, hash);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= size || n > KANARY_MAX_NAME)
		return -E2BIG;
	return 0;
}

int objects_state_name(const struct kanary *k, char *out, size_t size)
{
	int n;

	if (!k || !k->name || !out)
		return -EINVAL;
	n = snprintf(out, size, "%s-haproxy-state", k->name);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= size || n > KANARY_MAX_NAME)
		return -E2BIG;
	return 0;
}

/*
 * Building json-c trees: the first failure sticks in *err, and every value
 * handed to jset/jpush is either added (the container takes the reference) or
 * put, so a half-built tree is freed by putting its root.
 */
static void jset(int *err, struct json_object *obj, const char *key, struct json_object *val)
{
	if (*err == 0 && obj && val && json_object_object_add(obj, key, val) == 0)
		return;
	if (*err == 0)
		*err = -ENOMEM;
	json_object_put(val);
}

static void jpush(int *err, struct json_object *arr, struct json_object *val)
{
	if (*err == 0 && arr && val && json_object_array_add(arr, val) == 0)
		return;
	if (*err == 0)
		*err = -ENOMEM;
	json_object_put(val);
}

static void jset_str(int *err, struct json_object *obj, const char *key, const char *s)
{
	jset(err, obj, key, json_object_new_string(s));
}

static void jset_int(int *err, struct json_object *obj, const char *key, int64_t v)
{
	jset(err, obj, key, json_object_new_int64(v));
}

static void jset_bool(int *err, struct json_object *obj, const char *key, bool v)
{
	jset(err, obj, key, json_object_new_boolean(v));
}

/* The labels that pick the HAProxy pods of k; the selector of all three workload objects. */
static struct json_object *selector_labels(int *err, const struct kanary *k)
{
	struct json_object *l = json_object_new_object();

	jset_str(err, l, LABEL_KANARY, k->name);
	jset_str(err, l, LABEL_APP_NAME, "haproxy");
	return l;
}

static struct json_object *labels(int *err, const struct kanary *k)
{
	struct json_object *l = json_object_new_object();

	jset_str(err, l, LABEL_MANAGED_BY, "kanary");
	jset_str(err, l, LABEL_APP_NAME, "haproxy");
	jset_str(err, l, LABEL_KANARY, k->name);
	return l;
}

static struct json_object *match_labels(int *err, const struct kanary *k)
{
	struct json_object *s = json_object_new_object();

	jset(err, s, "matchLabels", selector_labels(err, k));
	return s;
}

/* The controller reference that makes deleting the Kanary delete the object. */
static struct json_object *owner_refs(int *err, const struct kanary *k)
{
	struct json_object *arr = json_object_new_array();
	struct json_object *ref = json_object_new_object();

	jset_str(err, ref, "apiVersion", KANARY_API_VERSION);
	jset_str(err, ref, "kind", KANARY_KIND);
	jset_str(err, ref, "name", k->name);
	jset_str(err, ref, "uid", k->uid);
	jset_bool(err, ref, "controller", true);
	jset_bool(err, ref, "blockOwnerDeletion", true);
	jpush(err, arr, ref);
	return arr;
}

/* apiVersion, kind and metadata, in that order, with the hash annotation when hash is set. */
static struct json_object *object_head(int *err, const struct kanary *k, const char *api_version,
                                       const char *kind, const char *name, const char *hash)
{
	struct json_object *obj = json_object_new_object();
	struct json_object *meta = json_object_new_object();

	jset_str(err, obj, "apiVersion", api_version);
	jset_str(err, obj, "kind", kind);
	jset_str(err, meta, "name", name);
	jset_str(err, meta, "namespace", k->namespace);
	jset(err, meta, "labels", labels(err, k));
	if (hash) {
		struct json_object *a = json_object_new_object();

		jset_str(err, a, ANNOT_HASH, hash);
		jset(err, meta, "annotations", a);
	}
	if (k->uid && k->uid[0])
		jset(err, meta, "ownerReferences", owner_refs(err, k));
	jset(err, obj, "metadata", meta);
	return obj;
}

static struct json_object *configmap(int *err, const struct kanary *k, const char *cm_name,
                                     const char *cfg, const char *hash)
{
	struct json_object *cm = object_head(err, k, "v1", "ConfigMap", cm_name, hash);
	struct json_object *data = json_object_new_object();

	/* Named by its hash and never edited: a pod keeps the file it started with. */
	jset_bool(err, cm, "immutable", true);
	jset_str(err, data, CONFIG_KEY, cfg);
	jset(err, cm, "data", data);
	return cm;
}

static struct json_object *str_array(int *err, const char *const *v);

/* Mutable: the controller rewrites it on every weight or endpoint change, and nothing rolls. */
static struct json_object *state_configmap(int *err, const struct kanary *k, const char *name,
                                           const char *state)
{
	struct json_object *cm = object_head(err, k, "v1", "ConfigMap", name, NULL);
	struct json_object *data = json_object_new_object();

	jset_str(err, data, OBJECTS_STATE_KEY, state);
	jset(err, cm, "data", data);
	return cm;
}

/* The agent's identity; its token is mounted only into the agent container. */
static struct json_object *service_account(int *err, const struct kanary *k, const char *name)
{
	struct json_object *sa = object_head(err, k, "v1", "ServiceAccount", name, NULL);

	/* The pod mounts a projected token into the agent alone. */
	jset_bool(err, sa, "automountServiceAccountToken", false);
	return sa;
}

/*
 * Read access to the one state ConfigMap. resourceNames admits a get, and a
 * list or watch whose fieldSelector is metadata.name=<that name>.
 */
static struct json_object *role(int *err, const struct kanary *k, const char *name,
                                const char *state_name)
{
	static const char *const groups[] = {"", NULL};
	static const char *const resources[] = {"configmaps", NULL};
	static const char *const verbs[] = {"get", "list", "watch", NULL};
	struct json_object *ro =
	    object_head(err, k, "rbac.authorization.k8s.io/v1", "Role", name, NULL);
	struct json_object *rules = json_object_new_array();
	struct json_object *rule = json_object_new_object();
	struct json_object *names = json_object_new_array();

	jset(err, rule, "apiGroups", str_array(err, groups));
	jset(err, rule, "resources", str_array(err, resources));
	jpush(err, names, json_object_new_string(state_name));
	jset(err, rule, "resourceNames", names);
	jset(err, rule, "verbs", str_array(err, verbs));
	jpush(err, rules, rule);
	jset(err, ro, "rules", rules);
	return ro;
}

static struct json_object *role_binding(int *err, const struct kanary *k, const char *name)
{
	struct json_object *rb =
	    object_head(err, k, "rbac.authorization.k8s.io/v1", "RoleBinding", name, NULL);
	struct json_object *ref = json_object_new_object();
	struct json_object *subjects = json_object_new_array();
	struct json_object *sub = json_object_new_object();

	jset_str(err, ref, "apiGroup", "rbac.authorization.k8s.io");
	jset_str(err, ref, "kind", "Role");
	jset_str(err, ref, "name", name);
	jset(err, rb, "roleRef", ref);
	jset_str(err, sub, "kind", "ServiceAccount");
	jset_str(err, sub, "name", name);
	jset_str(err, sub, "namespace", k->namespace);
	jpush(err, subjects, sub);
	jset(err, rb, "subjects", subjects);
	return rb;
}

static struct json_object *container_port(int *err, const char *name, int port)
{
	struct json_object *p = json_object_new_object();

	jset_str(err, p, "name", name);
	jset_int(err, p, "containerPort", port);
	jset_str(err, p, "protocol", "TCP");
	return p;
}

static struct json_object *http_probe(int *err, const char *path, int period, int failures)
{
	struct json_object *probe = json_object_new_object();
	struct json_object *get = json_object_new_object();

	jset_str(err, get, "path", path);
	jset_str(err, get, "port", "probe");
	jset(err, probe, "httpGet", get);
	jset_int(err, probe, "periodSeconds", period);
	jset_int(err, probe, "failureThreshold", failures);
	return probe;
}

static struct json_object *mount(int *err, const char *name, const char *path, bool ro)
{
	struct json_object *m = json_object_new_object();

	jset_str(err, m, "name", name);
	jset_str(err, m, "mountPath", path);
	if (ro)
		jset_bool(err, m, "readOnly", true);
	return m;
}

static struct json_object *empty_dir(int *err, const char *name, const char *medium,
                                     const char *size)
{
	struct json_object *v = json_object_new_object();
	struct json_object *ed = json_object_new_object();

	jset_str(err, v, "name", name);
	if (medium)
		jset_str(err, ed, "medium", medium);
	jset_str(err, ed, "sizeLimit", size);
	jset(err, v, "emptyDir", ed);
	return v;
}

static struct json_object *str_array(int *err, const char *const *v)
{
	struct json_object *arr = json_object_new_array();

	for (; *v; v++)
		jpush(err, arr, json_object_new_string(*v));
	return arr;
}

static struct json_object *haproxy_container(int *err, const struct objects_options *o)
{
	static const char *const command[] = {"haproxy", NULL};
	/* Master-worker (-W) forwards the stop signal to the worker; -db stays in the foreground. */
	static const char *const args[] = {"-W", "-db", "-f", CONFIG_PATH, NULL};
	static const char *const drop[] = {"ALL", NULL};
	struct json_object *c = json_object_new_object();
	struct json_object *ports = json_object_new_array();
	struct json_object *lc = json_object_new_object();
	struct json_object *pre = json_object_new_object();
	struct json_object *sleep = json_object_new_object();
	struct json_object *res = json_object_new_object();
	struct json_object *req = json_object_new_object();
	struct json_object *sc = json_object_new_object();
	struct json_object *caps = json_object_new_object();
	struct json_object *mounts = json_object_new_array();

	jset_str(err, c, "name", "haproxy");
	jset_str(err, c, "image", o->image);
	if (o->image_pull_policy)
		jset_str(err, c, "imagePullPolicy", o->image_pull_policy);
	jset(err, c, "command", str_array(err, command));
	jset(err, c, "args", str_array(err, args));
	jpush(err, ports, container_port(err, "proxy", o->render.proxy_port));
	jpush(err, ports, container_port(err, "probe", o->render.probe_port));
	jpush(err, ports, container_port(err, "metrics", o->render.metrics_port));
	jset(err, c, "ports", ports);
	/* /ready turns 503 when no route that can be drawn has a usable server. */
	jset(err, c, "readinessProbe", http_probe(err, "/ready", 2, 2));
	jset(err, c, "livenessProbe", http_probe(err, "/healthz", 10, 3));
	/*
	 * Stopping without cutting sessions. The endpoint removal and the stop
	 * run in parallel, and HAProxy closes its listeners on the first stop
	 * signal, so the pod first keeps accepting for prestop_sleep_s while
	 * kube-proxy and load balancers drop it. The kubelet then sends the
	 * image's STOPSIGNAL: SIGUSR1 in the official image, a soft stop that
	 * lets established sessions finish, cut by hard-stop-after at the
	 * latest, before terminationGracePeriodSeconds ends in SIGKILL. An image
	 * without STOPSIGNAL SIGUSR1 gets SIGTERM, which cuts every session:
	 * custom images must keep it. The sleep action needs no shell in the
	 * image and runs the same with a read-only root (Kubernetes >= 1.30).
	 */
	jset_int(err, sleep, "seconds", o->prestop_sleep_s);
	jset(err, pre, "sleep", sleep);
	jset(err, lc, "preStop", pre);
	jset(err, c, "lifecycle", lc);
	jset_str(err, req, "cpu", "100m");
	jset_str(err, req, "memory", "64Mi");
	jset(err, res, "requests", req);
	jset(err, c, "resources", res);
	jset_bool(err, sc, "allowPrivilegeEscalation", false);
	jset_bool(err, sc, "readOnlyRootFilesystem", true);
	jset(err, caps, "drop", str_array(err, drop));
	jset(err, sc, "capabilities", caps);
	jset(err, c, "securityContext", sc);
	jpush(err, mounts, mount(err, "config", CONFIG_DIR, true));
	jpush(err, mounts, mount(err, "run", o->render.runtime_dir, false));
	jpush(err, mounts, mount(err, "tmp", "/tmp", false));
	jset(err, c, "volumeMounts", mounts);
	return c;
}

/*
 * The agent: watches the state ConfigMap and applies it through HAProxy's
 * admin socket in the shared runtime directory. The only container with a
 * token.
 */
static struct json_object *agent_container(int *err, const struct kanary *k, const char *state_name,
                                           const struct objects_options *o)
{
	static const char *const command[] = {"/usr/local/bin/kanary-controller", NULL};
	static const char *const drop[] = {"ALL", NULL};
	struct json_object *c = json_object_new_object();
	struct json_object *args = json_object_new_array();
	struct json_object *ports = json_object_new_array();
	struct json_object *res = json_object_new_object();
	struct json_object *req = json_object_new_object();
	struct json_object *sc = json_object_new_object();
	struct json_object *caps = json_object_new_object();
	struct json_object *mounts = json_object_new_array();
	char sock[256], bind[32];

	snprintf(sock, sizeof(sock), "%s/admin.sock", o->render.runtime_dir);
	snprintf(bind, sizeof(bind), ":%d", o->agent_metrics_port);
	jset_str(err, c, "name", "agent");
	jset_str(err, c, "image", o->agent_image);
	if (o->image_pull_policy)
		jset_str(err, c, "imagePullPolicy", o->image_pull_policy);
	jset(err, c, "command", str_array(err, command));
	jpush(err, args, json_object_new_string("agent"));
	jpush(err, args, json_object_new_string("--kanary"));
	jpush(err, args, json_object_new_string(k->name));
	jpush(err, args, json_object_new_string("--namespace"));
	jpush(err, args, json_object_new_string(k->namespace));
	jpush(err, args, json_object_new_string("--state-configmap"));
	jpush(err, args, json_object_new_string(state_name));
	jpush(err, args, json_object_new_string("--socket"));
	jpush(err, args, json_object_new_string(sock));
	jpush(err, args, json_object_new_string("--metrics-bind"));
	jpush(err, args, json_object_new_string(bind));
	jset(err, c, "args", args);
	jpush(err, ports, container_port(err, "agent-metrics", o->agent_metrics_port));
	jset(err, c, "ports", ports);
	jset_str(err, req, "cpu", "10m");
	jset_str(err, req, "memory", "16Mi");
	jset(err, res, "requests", req);
	jset(err, c, "resources", res);
	jset_bool(err, sc, "allowPrivilegeEscalation", false);
	jset_bool(err, sc, "readOnlyRootFilesystem", true);
	jset(err, caps, "drop", str_array(err, drop));
	jset(err, sc, "capabilities", caps);
	jset(err, c, "securityContext", sc);
	/* The structure HAProxy runs: the agent hashes it to know which state fits. */
	jpush(err, mounts, mount(err, "config", CONFIG_DIR, true));
	jpush(err, mounts, mount(err, "run", o->render.runtime_dir, false));
	jpush(err, mounts, mount(err, "agent-token", OBJECTS_AGENT_TOKEN_DIR, true));
	jset(err, c, "volumeMounts", mounts);
	return c;
}

/* A bound, expiring token with the cluster CA and the namespace, as the kubelet mounts it. */
static struct json_object *token_volume(int *err)
{
	struct json_object *v = json_object_new_object();
	struct json_object *proj = json_object_new_object();
	struct json_object *sources = json_object_new_array();
	struct json_object *tok = json_object_new_object(), *tsrc = json_object_new_object();
	struct json_object *ca = json_object_new_object(), *casrc = json_object_new_object();
	struct json_object *caitems = json_object_new_array(), *caitem = json_object_new_object();
	struct json_object *ns = json_object_new_object(), *nssrc = json_object_new_object();
	struct json_object *nsitems = json_object_new_array(), *nsitem = json_object_new_object();
	struct json_object *fref = json_object_new_object();

	jset_str(err, v, "name", "agent-token");
	jset_str(err, tsrc, "path", "token");
	jset_int(err, tsrc, "expirationSeconds", OBJECTS_AGENT_TOKEN_TTL);
	jset(err, tok, "serviceAccountToken", tsrc);
	jpush(err, sources, tok);
	jset_str(err, casrc, "name", "kube-root-ca.crt");
	jset_str(err, caitem, "key", "ca.crt");
	jset_str(err, caitem, "path", "ca.crt");
	jpush(err, caitems, caitem);
	jset(err, casrc, "items", caitems);
	jset(err, ca, "configMap", casrc);
	jpush(err, sources, ca);
	jset_str(err, fref, "apiVersion", "v1");
	jset_str(err, fref, "fieldPath", "metadata.namespace");
	jset_str(err, nsitem, "path", "namespace");
	jset(err, nsitem, "fieldRef", fref);
	jpush(err, nsitems, nsitem);
	jset(err, nssrc, "items", nsitems);
	jset(err, ns, "downwardAPI", nssrc);
	jpush(err, sources, ns);
	jset(err, proj, "sources", sources);
	jset(err, v, "projected", proj);
	return v;
}

static struct json_object *pod_spec(int *err, const struct kanary *k, const char *cm_name,
                                    const char *name, const char *state_name,
                                    const struct objects_options *o)
{
	struct json_object *spec = json_object_new_object();
	struct json_object *sc = json_object_new_object();
	struct json_object *seccomp = json_object_new_object();
	struct json_object *aff = json_object_new_object();
	struct json_object *anti = json_object_new_object();
	struct json_object *pref = json_object_new_array();
	struct json_object *wterm = json_object_new_object();
	struct json_object *term = json_object_new_object();
	struct json_object *containers = json_object_new_array();
	struct json_object *vols = json_object_new_array();
	struct json_object *cmvol = json_object_new_object();
	struct json_object *cmsrc = json_object_new_object();

	jset_int(err, spec, "terminationGracePeriodSeconds", o->termination_grace_s);
	/*
	 * HAProxy never talks to the API server, and needs no Service variables.
	 * The agent's identity is the pod's; its token is a projected volume
	 * mounted into the agent alone.
	 */
	jset_str(err, spec, "serviceAccountName", name);
	jset_bool(err, spec, "automountServiceAccountToken", false);
	jset_bool(err, spec, "enableServiceLinks", false);
	jset_bool(err, sc, "runAsNonRoot", true);
	jset_int(err, sc, "runAsUser", HAPROXY_UID);
	jset_int(err, sc, "runAsGroup", HAPROXY_UID);
	jset_str(err, seccomp, "type", "RuntimeDefault");
	jset(err, sc, "seccompProfile", seccomp);
	jset(err, spec, "securityContext", sc);
	/* Spread over nodes when there are enough of them; never block scheduling. */
	jset_int(err, wterm, "weight", 100);
	jset_str(err, term, "topologyKey", "kubernetes.io/hostname");
	jset(err, term, "labelSelector", match_labels(err, k));
	jset(err, wterm, "podAffinityTerm", term);
	jpush(err, pref, wterm);
	jset(err, anti, "preferredDuringSchedulingIgnoredDuringExecution", pref);
	jset(err, aff, "podAntiAffinity", anti);
	jset(err, spec, "affinity", aff);
	/* Both images; each Secret must exist in the Kanary's namespace. */
	if (o->n_image_pull_secrets > 0) {
		struct json_object *secrets = json_object_new_array();

		for (size_t i = 0; i < o->n_image_pull_secrets; i++) {
			struct json_object *ref = json_object_new_object();

			jset_str(err, ref, "name", o->image_pull_secrets[i]);
			jpush(err, secrets, ref);
		}
		jset(err, spec, "imagePullSecrets", secrets);
	}
	jpush(err, containers, haproxy_container(err, o));
	jpush(err, containers, agent_container(err, k, state_name, o));
	jset(err, spec, "containers", containers);
	jset_str(err, cmvol, "name", "config");
	jset_str(err, cmsrc, "name", cm_name);
	jset(err, cmvol, "configMap", cmsrc);
	jpush(err, vols, cmvol);
	/* The admin socket and /tmp: the root filesystem is read-only. */
	jpush(err, vols, empty_dir(err, "run", "Memory", "1Mi"));
	jpush(err, vols, empty_dir(err, "tmp", NULL, "16Mi"));
	jpush(err, vols, token_volume(err));
	jset(err, spec, "volumes", vols);
	return spec;
}

static struct json_object *deployment(int *err, const struct kanary *k, const char *name,
                                      const char *cm_name, const char *state_name, const char *hash,
                                      const struct objects_options *o)
{
	struct json_object *d = object_head(err, k, "apps/v1", "Deployment", name, NULL);
	struct json_object *spec = json_object_new_object();
	struct json_object *strategy = json_object_new_object();
	struct json_object *ru = json_object_new_object();
	struct json_object *tmpl = json_object_new_object();
	struct json_object *tmeta = json_object_new_object();
	struct json_object *annot = json_object_new_object();

	jset_int(err, spec, "replicas", k->replicas);
	/* No history: a superseded ReplicaSet and its ConfigMap go after the rollout. */
	jset_int(err, spec, "revisionHistoryLimit", OBJECTS_REVISION_HISTORY_LIMIT);
	/* At least one check interval, so a new pod has checked its servers once. */
	jset_int(err, spec, "minReadySeconds", o->min_ready_s);
	jset(err, spec, "selector", match_labels(err, k));
	/* A new pod is ready before an old one goes: capacity never drops. */
	jset_str(err, strategy, "type", "RollingUpdate");
	jset_int(err, ru, "maxSurge", 1);
	jset_int(err, ru, "maxUnavailable", 0);
	jset(err, strategy, "rollingUpdate", ru);
	jset(err, spec, "strategy", strategy);
	jset(err, tmeta, "labels", labels(err, k));
	jset_str(err, annot, ANNOT_HASH, hash);
	jset(err, tmeta, "annotations", annot);
	jset(err, tmpl, "metadata", tmeta);
	jset(err, tmpl, "spec", pod_spec(err, k, cm_name, name, state_name, o));
	jset(err, spec, "template", tmpl);
	jset(err, d, "spec", spec);
	return d;
}

/*
 * maxUnavailable 1 rather than minAvailable: it allows one voluntary eviction
 * at a time whatever the replica count, where minAvailable 1 would let a drain
 * take all but one of many pods at once, and block it for good with one
 * replica. AlwaysAllow lets a drain evict pods that are not ready anyway
 * (every HAProxy pod is unready when no route has a usable server).
 */
static struct json_object *pdb(int *err, const struct kanary *k, const char *name)
{
	struct json_object *p = object_head(err, k, "policy/v1", "PodDisruptionBudget", name, NULL);
	struct json_object *spec = json_object_new_object();

	jset_int(err, spec, "maxUnavailable", 1);
	jset(err, spec, "selector", match_labels(err, k));
	jset_str(err, spec, "unhealthyPodEvictionPolicy", "AlwaysAllow");
	jset(err, p, "spec", spec);
	return p;
}

static struct json_object *service(int *err, const struct kanary *k)
{
	struct json_object *s = object_head(err, k, "v1", "Service", k->destination, NULL);
	struct json_object *spec = json_object_new_object();
	struct json_object *ports = json_object_new_array();
	struct json_object *port = json_object_new_object();

	jset_str(err, spec, "type", "ClusterIP");
	jset(err, spec, "selector", selector_labels(err, k));
	jset_str(err, port, "name", "tcp");
	jset_str(err, port, "protocol", "TCP");
	jset_int(err, port, "port", k->port);
	/* By name: the pods of an older ReplicaSet may listen on another number. */
	jset_str(err, port, "targetPort", "proxy");
	jpush(err, ports, port);
	jset(err, spec, "ports", ports);
	jset(err, s, "spec", spec);
	return s;
}

static bool objects_hash_ok(const char *hash)
{
	size_t n = strlen(hash);

	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((hash[i] >= '0' && hash[i] <= '9') || (hash[i] >= 'a' && hash[i] <= 'f')))
			return false;
	return true;
}

int objects_options_check(const struct objects_options *o, const char **ret_why)
{
	const char *why = NULL;

	if (!o->image || !o->image[0] || !o->agent_image || !o->agent_image[0])
		why = "the HAProxy image and the agent image must be named";
	else if (o->render.proxy_port < 1 || o->render.proxy_port > 65535 ||
	         o->render.probe_port < 1 || o->render.probe_port > 65535 ||
	         o->render.metrics_port < 1 || o->render.metrics_port > 65535 ||
	         o->agent_metrics_port < 1 || o->agent_metrics_port > 65535)
		why = "a port is out of 1..65535";
	else if (o->agent_metrics_port == o->render.proxy_port ||
	         o->agent_metrics_port == o->render.probe_port ||
	         o->agent_metrics_port == o->render.metrics_port)
		why = "the agent's metrics port is one of HAProxy's ports";
	else if (o->image_pull_policy && !objects_pull_policy_valid(o->image_pull_policy))
		why = "the pull policy is not Always, IfNotPresent or Never";
	else if (o->n_image_pull_secrets > KANARY_MAX_PULL_SECRETS ||
	         (o->n_image_pull_secrets > 0 && !o->image_pull_secrets))
		why = "too many image pull Secrets";
	else if (o->prestop_sleep_s < 0 || o->min_ready_s < 0 || o->render.hard_stop_after_s < 1)
		why = "a stop or readiness time is out of range";
	/*
	 * The agent needs the admin socket: without one the route map stays
	 * empty, /ready answers 503 for ever and every connection would go to
	 * the fallback's disabled slots.
	 */
	else if (!o->render.runtime_dir || !o->render.runtime_dir[0])
		why = "a runtime directory is needed: the agent applies the state through the "
		      "admin socket there";
	/* Its emptyDir must not sit on another mount. */
	else if (o->render.runtime_dir[0] != '/' || strcmp(o->render.runtime_dir, "/tmp") == 0 ||
	         strcmp(o->render.runtime_dir, CONFIG_DIR) == 0)
		why = "the runtime directory is not absolute, or is /tmp or " CONFIG_DIR;
	/* The soft stop must end before the kubelet's SIGKILL. */
	else if ((int64_t)o->termination_grace_s <
	         (int64_t)o->prestop_sleep_s + o->render.hard_stop_after_s + OBJECTS_STOP_MARGIN)
		why = "the grace period ends before the preStop sleep and hard-stop-after";
	for (size_t i = 0; !why && i < o->n_image_pull_secrets; i++) {
		if (!objects_secret_name_valid(o->image_pull_secrets[i]))
			why = "an image pull Secret's name is not a DNS-1123 subdomain";
		for (size_t j = 0; !why && j < i; j++)
			if (strcmp(o->image_pull_secrets[i], o->image_pull_secrets[j]) == 0)
				why = "an image pull Secret is named twice";
	}
	if (!why)
		return 0;
	if (ret_why)
		*ret_why = why;
	return -EINVAL;
}

int objects_desired(const struct kanary *k, const char *cfg, const char *hash, const char *state,
                    const struct objects_options *o, struct json_object **ret)
{
	char cm_name[KANARY_MAX_NAME + 1], name[KANARY_MAX_NAME + 1],
	    state_name[KANARY_MAX_NAME + 1];
	struct json_object *arr;
	int n, r, err = 0;

	if (!k || !cfg || !hash || !o || !ret || !k->name || !k->name[0] || !k->namespace ||
	    !k->destination || !k->port_set || k->port < 1 || k->port > 65535 || !k->replicas_set ||
	    k->replicas < 1 || k->replicas > KANARY_MAX_REPLICAS || !objects_hash_ok(hash) ||
	    objects_options_check(o, NULL) < 0)
		return -EINVAL;
	/* The name is also a label value. */
	if (strlen(k->name) > LABEL_VALUE_MAX)
		return -E2BIG;
	r = objects_configmap_name(k, hash, cm_name, sizeof(cm_name));
	if (r < 0)
		return r;
	r = objects_state_name(k, state_name, sizeof(state_name));
	if (r < 0)
		return r;
	n = snprintf(name, sizeof(name), "%s-haproxy", k->name);
	if (n < 0 || (size_t)n >= sizeof(name))
		return -E2BIG;

	arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	jpush(&err, arr, configmap(&err, k, cm_name, cfg, hash));
	if (state)
		jpush(&err, arr, state_configmap(&err, k, state_name, state));
	jpush(&err, arr, service_account(&err, k, name));
	jpush(&err, arr, role(&err, k, name, state_name));
	jpush(&err, arr, role_binding(&err, k, name));
	jpush(&err, arr, deployment(&err, k, name, cm_name, state_name, hash, o));
	jpush(&err, arr, pdb(&err, k, name));
	jpush(&err, arr, service(&err, k));
	if (err) {
		json_object_put(arr);
		return err;
	}
	*ret = arr;
	return 0;
}
