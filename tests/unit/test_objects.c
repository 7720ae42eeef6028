/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the desired Kubernetes objects. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/kanary.h"
#include "common/limits.h"
#include "common/objects.h"
#include "common/render.h"
#include "common/yamlout.h"

#define CFG   "global\n    maxconn 1000\n"
#define STATE "{\"kanary\":\"simple-kanary-rule\",\"generation\":1}"

/* Where each object is in objects_desired's answer. */
enum {
	I_CM = 0,
	I_STATE,
	I_SA,
	I_ROLE,
	I_RB,
	I_DEP,
	I_PDB,
	I_SVC,
	I_N,
};

struct fixture {
	struct kanary *k;
	struct objects_options o;
	char hash[65];
};

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct kanary *k = calloc(1, sizeof(*k));

	assert_non_null(f);
	assert_non_null(k);
	k->namespace = xstrdup("shop");
	k->name = xstrdup("simple-kanary-rule");
	k->uid = xstrdup("6f1c2b8e-1111-2222-3333-444455556666");
	k->destination = xstrdup("myapp");
	k->routes[0].service_name = xstrdup("myapp-v1");
	k->routes[0].weight_set = true;
	k->routes[0].weight = 100;
	k->n_routes = 1;
	k->n_routes_seen = 1;
	k->port_set = true;
	k->port = 80;
	k->replicas_set = true;
	k->replicas = 3;
	f->k = k;
	objects_options_init(&f->o);
	assert_int_equal(render_hash(CFG, strlen(CFG), f->hash), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kanary_destroy(f->k);
	free(f);
	return 0;
}

/* Borrowed value at a path of keys, array indices written as "0", "1"; NULL when absent. */
static struct json_object *jpath(struct json_object *o, const char *const *path)
{
	for (; *path && o; path++) {
		struct json_object *next = NULL;

		if (json_object_is_type(o, json_type_array)) {
			char *end;
			long i = strtol(*path, &end, 10);

			if (*end || i < 0 || (size_t)i >= json_object_array_length(o))
				return NULL;
			next = json_object_array_get_idx(o, (size_t)i);
		} else if (!json_object_object_get_ex(o, *path, &next)) {
			return NULL;
		}
		o = next;
	}
	return o;
}

#define J(o, ...) jpath((o), (const char *const[]){__VA_ARGS__, NULL})

static void assert_str_at(struct json_object *v, const char *want)
{
	assert_non_null(v);
	assert_true(json_object_is_type(v, json_type_string));
	assert_string_equal(json_object_get_string(v), want);
}

static void assert_int_at(struct json_object *v, int64_t want)
{
	assert_non_null(v);
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int64(v), want);
}

static void assert_bool_at(struct json_object *v, bool want)
{
	assert_non_null(v);
	assert_true(json_object_is_type(v, json_type_boolean));
	assert_int_equal(json_object_get_boolean(v), want);
}

/* Ownership: the caller puts the array. */
static struct json_object *desired_n(struct fixture *f, size_t n)
{
	struct json_object *objs = NULL;

	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), 0);
	assert_non_null(objs);
	assert_int_equal(json_object_array_length(objs), n);
	return objs;
}

static struct json_object *desired(struct fixture *f)
{
	return desired_n(f, I_N);
}

/* objs[i]; borrowed. */
static struct json_object *at(struct json_object *objs, size_t i)
{
	return json_object_array_get_idx(objs, i);
}

static void assert_common_metadata(struct json_object *obj, const char *api_version,
                                   const char *kind, const char *name, bool owned)
{
	const char *keys[3] = {NULL};
	size_t n = 0;

	/* apiVersion, kind, metadata come first, in that order. */
	json_object_object_foreach(obj, key, val)
	{
		(void)val;
		if (n < 3)
			keys[n++] = key;
	}
	assert_string_equal(keys[0], "apiVersion");
	assert_string_equal(keys[1], "kind");
	assert_string_equal(keys[2], "metadata");
	assert_str_at(J(obj, "apiVersion"), api_version);
	assert_str_at(J(obj, "kind"), kind);
	assert_str_at(J(obj, "metadata", "name"), name);
	assert_str_at(J(obj, "metadata", "namespace"), "shop");
	assert_str_at(J(obj, "metadata", "labels", "app.kubernetes.io/managed-by"), "kanary");
	assert_str_at(J(obj, "metadata", "labels", "app.kubernetes.io/name"), "haproxy");
	assert_str_at(J(obj, "metadata", "labels", "kanary.pyxida.io/name"), "simple-kanary-rule");
	if (!owned) {
		assert_null(J(obj, "metadata", "ownerReferences"));
		return;
	}
	assert_int_equal(json_object_array_length(J(obj, "metadata", "ownerReferences")), 1);
	assert_str_at(J(obj, "metadata", "ownerReferences", "0", "apiVersion"),
	              "kanary.pyxida.io/v1alpha1");
	assert_str_at(J(obj, "metadata", "ownerReferences", "0", "kind"), "Kanary");
	assert_str_at(J(obj, "metadata", "ownerReferences", "0", "name"), "simple-kanary-rule");
	assert_str_at(J(obj, "metadata", "ownerReferences", "0", "uid"),
	              "6f1c2b8e-1111-2222-3333-444455556666");
	assert_bool_at(J(obj, "metadata", "ownerReferences", "0", "controller"), true);
	assert_bool_at(J(obj, "metadata", "ownerReferences", "0", "blockOwnerDeletion"), true);
}

/* The selector picks exactly the HAProxy pods of this Kanary. */
static void assert_selector(struct json_object *sel)
{
	assert_non_null(sel);
	assert_int_equal(json_object_object_length(sel), 2);
	assert_str_at(J(sel, "kanary.pyxida.io/name"), "simple-kanary-rule");
	assert_str_at(J(sel, "app.kubernetes.io/name"), "haproxy");
}

static void test_objects_in_order(void **state)
{
	struct fixture *f = *state;
	struct json_object *objs = desired(f);
	char cm_name[64];

	snprintf(cm_name, sizeof(cm_name), "simple-kanary-rule-haproxy-%.8s", f->hash);
	assert_common_metadata(at(objs, I_CM), "v1", "ConfigMap", cm_name, true);
	assert_common_metadata(at(objs, I_STATE), "v1", "ConfigMap",
	                       "simple-kanary-rule-haproxy-state", true);
	assert_common_metadata(at(objs, I_SA), "v1", "ServiceAccount", "simple-kanary-rule-haproxy",
	                       true);
	assert_common_metadata(at(objs, I_ROLE), "rbac.authorization.k8s.io/v1", "Role",
	                       "simple-kanary-rule-haproxy", true);
	assert_common_metadata(at(objs, I_RB), "rbac.authorization.k8s.io/v1", "RoleBinding",
	                       "simple-kanary-rule-haproxy", true);
	assert_common_metadata(at(objs, I_DEP), "apps/v1", "Deployment",
	                       "simple-kanary-rule-haproxy", true);
	assert_common_metadata(at(objs, I_PDB), "policy/v1", "PodDisruptionBudget",
	                       "simple-kanary-rule-haproxy", true);
	assert_common_metadata(at(objs, I_SVC), "v1", "Service", "myapp", true);
	json_object_put(objs);
}

static void test_no_owner_reference_without_uid(void **state)
{
	struct fixture *f = *state;
	struct json_object *objs;

	free(f->k->uid);
	f->k->uid = NULL;
	objs = desired(f);
	for (size_t i = 0; i < I_N; i++)
		assert_null(J(json_object_array_get_idx(objs, i), "metadata", "ownerReferences"));
	json_object_put(objs);
}

static void test_configmap(void **state)
{
	struct fixture *f = *state;
	struct json_object *objs = desired(f);
	struct json_object *cm = at(objs, I_CM);

	assert_bool_at(J(cm, "immutable"), true);
	assert_str_at(J(cm, "data", "haproxy.cfg"), CFG);
	assert_int_equal(json_object_object_length(J(cm, "data")), 1);
	assert_str_at(J(cm, "metadata", "annotations", "kanary.pyxida.io/config-hash"), f->hash);
	json_object_put(objs);
}

static void test_deployment(void **state)
{
	struct fixture *f = *state;
	struct json_object *objs = desired(f);
	struct json_object *d = at(objs, I_DEP);
	struct json_object *pod = J(d, "spec", "template", "spec");
	struct json_object *c = J(pod, "containers", "0");
	struct json_object *args = J(c, "args");
	static const char *const want_args[] = {"-W", "-db", "-f",
	                                        "/usr/local/etc/haproxy/haproxy.cfg"};

	assert_int_at(J(d, "spec", "replicas"), 3);
	assert_int_at(J(d, "spec", "minReadySeconds"), OBJECTS_DEFAULT_MIN_READY);
	assert_int_at(J(d, "spec", "revisionHistoryLimit"), OBJECTS_REVISION_HISTORY_LIMIT);
	assert_selector(J(d, "spec", "selector", "matchLabels"));
	assert_str_at(J(d, "spec", "strategy", "type"), "RollingUpdate");
	assert_int_at(J(d, "spec", "strategy", "rollingUpdate", "maxSurge"), 1);
	assert_int_at(J(d, "spec", "strategy", "rollingUpdate", "maxUnavailable"), 0);

	/* The template carries the selector's labels and the config hash. */
	assert_str_at(J(d, "spec", "template", "metadata", "labels", "kanary.pyxida.io/name"),
	              "simple-kanary-rule");
	assert_str_at(J(d, "spec", "template", "metadata", "labels", "app.kubernetes.io/name"),
	              "haproxy");
	assert_str_at(
	    J(d, "spec", "template", "metadata", "annotations", "kanary.pyxida.io/config-hash"),
	    f->hash);

	/* Stopping: preStop sleep, then hard-stop-after, all inside the grace period. */
	assert_int_at(J(pod, "terminationGracePeriodSeconds"), f->o.termination_grace_s);
	assert_true(f->o.termination_grace_s >
	            f->o.prestop_sleep_s + f->o.render.hard_stop_after_s);
	assert_int_at(J(c, "lifecycle", "preStop", "sleep", "seconds"), f->o.prestop_sleep_s);

	/* Non-root, read-only, nothing extra. */
	assert_bool_at(J(pod, "securityContext", "runAsNonRoot"), true);
	assert_int_at(J(pod, "securityContext", "runAsUser"), 99);
	assert_str_at(J(pod, "securityContext", "seccompProfile", "type"), "RuntimeDefault");
	assert_bool_at(J(c, "securityContext", "allowPrivilegeEscalation"), false);
	assert_bool_at(J(c, "securityContext", "readOnlyRootFilesystem"), true);
	assert_str_at(J(c, "securityContext", "capabilities", "drop", "0"), "ALL");

	assert_str_at(J(pod, "affinity", "podAntiAffinity",
	                "preferredDuringSchedulingIgnoredDuringExecution", "0", "podAffinityTerm",
	                "topologyKey"),
	              "kubernetes.io/hostname");
	assert_selector(J(pod, "affinity", "podAntiAffinity",
	                  "preferredDuringSchedulingIgnoredDuringExecution", "0", "podAffinityTerm",
	                  "labelSelector", "matchLabels"));

	assert_str_at(J(c, "name"), "haproxy");
	assert_str_at(J(c, "image"), OBJECTS_DEFAULT_IMAGE);
	/* No pull policy unless asked: Kubernetes' default for the tag applies. */
	assert_null(J(c, "imagePullPolicy"));
	assert_str_at(J(c, "command", "0"), "haproxy");
	assert_int_equal(json_object_array_length(args), 4);
	for (size_t i = 0; i < 4; i++)
		assert_str_at(json_object_array_get_idx(args, i), want_args[i]);
	assert_str_at(J(c, "ports", "0", "name"), "proxy");
	assert_int_at(J(c, "ports", "0", "containerPort"), RENDER_DEFAULT_PROXY_PORT);
	assert_str_at(J(c, "ports", "1", "name"), "probe");
	assert_int_at(J(c, "ports", "1", "containerPort"), RENDER_DEFAULT_PROBE_PORT);
	assert_str_at(J(c, "ports", "2", "name"), "metrics");
	assert_int_at(J(c, "ports", "2", "containerPort"), RENDER_DEFAULT_METRICS_PORT);
	assert_str_at(J(c, "readinessProbe", "httpGet", "path"), "/ready");
	assert_str_at(J(c, "readinessProbe", "httpGet", "port"), "probe");
	assert_int_at(J(c, "readinessProbe", "periodSeconds"), 2);
	assert_int_at(J(c, "readinessProbe", "failureThreshold"), 2);
	assert_str_at(J(c, "livenessProbe", "httpGet", "path"), "/healthz");
	assert_int_at(J(c, "livenessProbe", "periodSeconds"), 10);
	assert_int_at(J(c, "livenessProbe", "failureThreshold"), 3);
	assert_non_null(J(c, "resources", "requests", "cpu"));
	assert_non_null(J(c, "resources", "requests", "memory"));

	/* The config comes from this render's ConfigMap, read-only; writable dirs are emptyDirs. */
	assert_str_at(J(pod, "volumes", "0", "name"), "config");
	assert_str_at(J(pod, "volumes", "0", "configMap", "name"),
	              json_object_get_string(J(at(objs, I_CM), "metadata", "name")));
	assert_str_at(J(c, "volumeMounts", "0", "name"), "config");
	assert_str_at(J(c, "volumeMounts", "0", "mountPath"), "/usr/local/etc/haproxy");
	assert_bool_at(J(c, "volumeMounts", "0", "readOnly"), true);
	assert_str_at(J(c, "volumeMounts", "1", "mountPath"), RENDER_DEFAULT_RUNTIME_DIR);
	assert_non_null(J(pod, "volumes", "1", "emptyDir"));
	assert_str_at(J(c, "volumeMounts", "2", "mountPath"), "/tmp");
	assert_non_null(J(pod, "volumes", "2", "emptyDir"));
	json_object_put(objs);
}

static void test_pdb_and_service(void **state)
{
	struct fixture *f = *state;
	struct json_object *objs = desired(f);
	struct json_object *pdb = at(objs, I_PDB);
	struct json_object *svc = at(objs, I_SVC);

	assert_int_at(J(pdb, "spec", "maxUnavailable"), 1);
	assert_null(J(pdb, "spec", "minAvailable"));
	assert_selector(J(pdb, "spec", "selector", "matchLabels"));

	assert_str_at(J(svc, "spec", "type"), "ClusterIP");
	assert_selector(J(svc, "spec", "selector"));
	assert_int_equal(json_object_array_length(J(svc, "spec", "ports")), 1);
	assert_str_at(J(svc, "spec", "ports", "0", "name"), "tcp");
	assert_int_at(J(svc, "spec", "ports", "0", "port"), 80);
	/* Names the container port, which the Deployment declares. */
	assert_str_at(J(svc, "spec", "ports", "0", "targetPort"), "proxy");
	assert_str_at(
	    J(at(objs, I_DEP), "spec", "template", "spec", "containers", "0", "ports", "0", "name"),
	    "proxy");
	json_object_put(objs);
}

static void test_options_flow_through(void **state)
{
	struct fixture *f = *state;
	struct json_object *objs, *c;

	f->o.image = "registry.example/haproxy:2.8";
	f->o.image_pull_policy = "Never";
	f->o.render.proxy_port = 10080;
	f->o.prestop_sleep_s = 5;
	f->o.render.hard_stop_after_s = 30;
	f->o.termination_grace_s = 40;
	f->o.min_ready_s = 7;
	objs = desired(f);
	c = J(at(objs, I_DEP), "spec", "template", "spec", "containers", "0");
	assert_str_at(J(c, "image"), "registry.example/haproxy:2.8");
	assert_str_at(J(c, "imagePullPolicy"), "Never");
	assert_int_at(J(c, "ports", "0", "containerPort"), 10080);
	assert_int_at(J(c, "lifecycle", "preStop", "sleep", "seconds"), 5);
	assert_int_at(
	    J(at(objs, I_DEP), "spec", "template", "spec", "terminationGracePeriodSeconds"), 40);
	assert_int_at(J(at(objs, I_DEP), "spec", "minReadySeconds"), 7);
	json_object_put(objs);
}

static void test_deterministic(void **state)
{
	struct fixture *f = *state;
	struct json_object *a = desired(f);
	struct json_object *b = desired(f);

	assert_true(json_object_equal(a, b));
	assert_string_equal(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN),
	                    json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
	json_object_put(a);
	json_object_put(b);
}

/* What the render tool prints reads back as the same objects. */
static void test_yaml_round_trip(void **state)
{
	struct fixture *f = *state;
	struct json_object *objs = desired(f);
	struct json_object *docs = NULL;
	struct doc_err err = {{0}};
	struct buf out;

	buf_init(&out, KANARY_MAX_OUTPUT);
	for (size_t i = 0; i < json_object_array_length(objs); i++)
		assert_int_equal(yamlout_document(json_object_array_get_idx(objs, i), &out), 0);
	assert_int_equal(doc_parse_stream(out.data, out.len, &docs, &err), 0);
	assert_true(json_object_equal(objs, docs));
	/* haproxy.cfg comes out as a readable block. */
	assert_non_null(strstr(out.data, "\n  haproxy.cfg: |\n    global\n        maxconn 1000\n"));
	json_object_put(docs);
	json_object_put(objs);
	buf_finish(&out);
}

/* The state ConfigMap: mutable, the state text under state.json, nothing else. */
static void test_state_configmap(void **state)
{
	struct fixture *f = *state;
	struct json_object *objs = desired(f);
	struct json_object *cm = at(objs, I_STATE);
	char name[KANARY_MAX_NAME + 1], small[8];

	assert_null(J(cm, "immutable"));
	assert_null(J(cm, "metadata", "annotations"));
	assert_str_at(J(cm, "data", OBJECTS_STATE_KEY), STATE);
	assert_int_equal(json_object_object_length(J(cm, "data")), 1);
	json_object_put(objs);
	assert_int_equal(objects_state_name(f->k, name, sizeof(name)), 0);
	assert_string_equal(name, "simple-kanary-rule-haproxy-state");
	assert_int_equal(objects_state_name(f->k, small, sizeof(small)), -E2BIG);
	assert_int_equal(objects_state_name(NULL, name, sizeof(name)), -EINVAL);

	/* Without a state text, no state ConfigMap; everything else stays. */
	assert_int_equal(objects_desired(f->k, CFG, f->hash, NULL, &f->o, &objs), 0);
	assert_int_equal(json_object_array_length(objs), I_N - 1);
	assert_str_at(J(at(objs, 1), "kind"), "ServiceAccount");
	json_object_put(objs);
}

/* The agent's identity may get, list and watch its state ConfigMap and nothing else. */
static void test_agent_rbac(void **state)
{
	struct fixture *f = *state;
	struct json_object *objs = desired(f);
	struct json_object *sa = at(objs, I_SA), *role = at(objs, I_ROLE), *rb = at(objs, I_RB);
	struct json_object *rule = J(role, "rules", "0");
	static const char *const verbs[] = {"get", "list", "watch"};

	assert_bool_at(J(sa, "automountServiceAccountToken"), false);
	assert_int_equal(json_object_array_length(J(role, "rules")), 1);
	assert_int_equal(json_object_array_length(J(rule, "apiGroups")), 1);
	assert_str_at(J(rule, "apiGroups", "0"), "");
	assert_int_equal(json_object_array_length(J(rule, "resources")), 1);
	assert_str_at(J(rule, "resources", "0"), "configmaps");
	assert_int_equal(json_object_array_length(J(rule, "resourceNames")), 1);
	assert_str_at(J(rule, "resourceNames", "0"), "simple-kanary-rule-haproxy-state");
	assert_int_equal(json_object_array_length(J(rule, "verbs")), 3);
	for (size_t i = 0; i < 3; i++)
		assert_str_at(json_object_array_get_idx(J(rule, "verbs"), i), verbs[i]);
	assert_str_at(J(rb, "roleRef", "apiGroup"), "rbac.authorization.k8s.io");
	assert_str_at(J(rb, "roleRef", "kind"), "Role");
	assert_str_at(J(rb, "roleRef", "name"), "simple-kanary-rule-haproxy");
	assert_int_equal(json_object_array_length(J(rb, "subjects")), 1);
	assert_str_at(J(rb, "subjects", "0", "kind"), "ServiceAccount");
	assert_str_at(J(rb, "subjects", "0", "name"), "simple-kanary-rule-haproxy");
	assert_str_at(J(rb, "subjects", "0", "namespace"), "shop");
	json_object_put(objs);
}

/* Index of the volume or mount named name in arr; -1 when none. */
static int named(struct json_object *arr, const char *name)
{
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		struct json_object *n = J(json_object_array_get_idx(arr, i), "name");

		if (n && strcmp(json_object_get_string(n), name) == 0)
			return (int)i;
	}
	return -1;
}

/*
 * The agent sidecar: the Kanary image, its arguments, the admin socket's
 * directory shared with HAProxy, and the only token of the pod.
 */
static void test_agent_container(void **state)
{
	struct fixture *f = *state;
	struct json_object *objs, *pod, *hap, *agent, *vols, *v, *args;
	static const char *const want_args[] = {"agent",
	                                        "--kanary",
	                                        "simple-kanary-rule",
	                                        "--namespace",
	                                        "shop",
	                                        "--state-configmap",
	                                        "simple-kanary-rule-haproxy-state",
	                                        "--socket",
	                                        "/var/run/haproxy/admin.sock",
	                                        "--metrics-bind",
	                                        ":8406"};
	char idx[8];
	int i;

	f->o.agent_image = "registry.example/kanary:1.2";
	f->o.image_pull_policy = "IfNotPresent";
	objs = desired(f);
	pod = J(at(objs, I_DEP), "spec", "template", "spec");
	hap = J(pod, "containers", "0");
	agent = J(pod, "containers", "1");
	vols = J(pod, "volumes");
	assert_int_equal(json_object_array_length(J(pod, "containers")), 2);
	assert_str_at(J(pod, "serviceAccountName"), "simple-kanary-rule-haproxy");
	/* No container gets the automatic token; the agent mounts a projected one. */
	assert_bool_at(J(pod, "automountServiceAccountToken"), false);
	assert_str_at(J(agent, "name"), "agent");
	assert_str_at(J(agent, "image"), "registry.example/kanary:1.2");
	assert_str_at(J(agent, "imagePullPolicy"), "IfNotPresent");
	assert_str_at(J(agent, "command", "0"), "/usr/local/bin/kanary-controller");
	args = J(agent, "args");
	assert_int_equal(json_object_array_length(args), sizeof(want_args) / sizeof(*want_args));
	for (size_t j = 0; j < sizeof(want_args) / sizeof(*want_args); j++)
		assert_str_at(json_object_array_get_idx(args, j), want_args[j]);
	assert_str_at(J(agent, "ports", "0", "name"), "agent-metrics");
	assert_int_at(J(agent, "ports", "0", "containerPort"), OBJECTS_DEFAULT_AGENT_METRICS_PORT);
	assert_bool_at(J(agent, "securityContext", "allowPrivilegeEscalation"), false);
	assert_bool_at(J(agent, "securityContext", "readOnlyRootFilesystem"), true);
	assert_str_at(J(agent, "securityContext", "capabilities", "drop", "0"), "ALL");

	/* The socket's directory: one emptyDir in both containers. */
	i = named(J(agent, "volumeMounts"), "run");
	assert_true(i >= 0);
	snprintf(idx, sizeof(idx), "%d", i);
	assert_str_at(J(agent, "volumeMounts", idx, "mountPath"), RENDER_DEFAULT_RUNTIME_DIR);
	assert_true(named(J(hap, "volumeMounts"), "run") >= 0);
	i = named(vols, "run");
	assert_true(i >= 0);
	snprintf(idx, sizeof(idx), "%d", i);
	assert_non_null(J(vols, idx, "emptyDir"));

	/* The structure HAProxy runs, read-only, at the same path. */
	i = named(J(agent, "volumeMounts"), "config");
	assert_true(i >= 0);
	snprintf(idx, sizeof(idx), "%d", i);
	assert_str_at(J(agent, "volumeMounts", idx, "mountPath"), "/usr/local/etc/haproxy");
	assert_bool_at(J(agent, "volumeMounts", idx, "readOnly"), true);

	/* The token: projected, expiring, with the CA and the namespace, in the agent alone. */
	assert_true(named(J(hap, "volumeMounts"), "agent-token") < 0);
	i = named(J(agent, "volumeMounts"), "agent-token");
	assert_true(i >= 0);
	snprintf(idx, sizeof(idx), "%d", i);
	assert_str_at(J(agent, "volumeMounts", idx, "mountPath"),
	              "/var/run/secrets/kubernetes.io/serviceaccount");
	assert_bool_at(J(agent, "volumeMounts", idx, "readOnly"), true);
	i = named(vols, "agent-token");
	assert_true(i >= 0);
	snprintf(idx, sizeof(idx), "%d", i);
	v = J(vols, idx, "projected", "sources");
	assert_int_equal(json_object_array_length(v), 3);
	assert_str_at(J(v, "0", "serviceAccountToken", "path"), "token");
	assert_int_at(J(v, "0", "serviceAccountToken", "expirationSeconds"),
	              OBJECTS_AGENT_TOKEN_TTL);
	assert_str_at(J(v, "1", "configMap", "name"), "kube-root-ca.crt");
	assert_str_at(J(v, "1", "configMap", "items", "0", "path"), "ca.crt");
	assert_str_at(J(v, "2", "downwardAPI", "items", "0", "fieldRef", "fieldPath"),
	              "metadata.namespace");
	assert_str_at(J(v, "2", "downwardAPI", "items", "0", "path"), "namespace");
	json_object_put(objs);

	/* Its metrics port may not take one of HAProxy's. */
	f->o.agent_metrics_port = f->o.render.probe_port;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	f->o.agent_metrics_port = 0;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	objects_options_init(&f->o);
	f->o.agent_image = "";
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
}

/* The HAProxy pod template names the pull Secrets given, in order, and none by default. */
static void test_image_pull_secrets(void **state)
{
	static const char *const secrets[] = {"regcred", "mirror.example-2"};
	struct fixture *f = *state;
	struct json_object *none, *objs, *pod;

	none = desired(f);
	assert_non_null(J(at(none, I_DEP), "spec", "template", "spec", "containers"));
	assert_null(J(at(none, I_DEP), "spec", "template", "spec", "imagePullSecrets"));

	f->o.image_pull_secrets = secrets;
	f->o.n_image_pull_secrets = 2;
	objs = desired(f);
	pod = J(at(objs, I_DEP), "spec", "template", "spec");
	assert_int_equal(json_object_array_length(J(pod, "imagePullSecrets")), 2);
	assert_str_at(J(pod, "imagePullSecrets", "0", "name"), "regcred");
	assert_str_at(J(pod, "imagePullSecrets", "1", "name"), "mirror.example-2");
	assert_int_equal(json_object_object_length(J(pod, "imagePullSecrets", "0")), 1);
	/* The pod's, so both containers pull with them: HAProxy and the agent. */
	assert_int_equal(json_object_array_length(J(pod, "containers")), 2);
	/* Nothing else changes: not the Deployment's other fields, not the other objects. */
	json_object_object_del(pod, "imagePullSecrets");
	for (size_t i = 0; i < I_N; i++)
		assert_true(json_object_equal(at(objs, i), at(none, i)));
	json_object_put(objs);
	json_object_put(none);
}

static void test_secret_names(void **state)
{
	static const char *const good[] = {"a", "regcred", "my-secret.v2", "0", "a.b.c", "a-b"};
	static const char *const bad[] = {"",     "Regcred", "-a",   "a-",  ".a",  "a.",
	                                  "a..b", "a.-b",    "a-.b", "a_b", "a b", "a/b"};
	static const char *dup[] = {"regcred", "regcred"};
	static const char *one_bad[] = {"regcred", "Bad"};
	struct fixture *f = *state;
	struct json_object *sentinel = json_object_new_object();
	struct json_object *objs = sentinel;
	const char *many[KANARY_MAX_PULL_SECRETS + 1];
	char names[KANARY_MAX_PULL_SECRETS + 1][8];
	char longest[KANARY_MAX_NAME + 2];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(objects_secret_name_valid(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(objects_secret_name_valid(bad[i]));
	assert_false(objects_secret_name_valid(NULL));
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	assert_false(objects_secret_name_valid(longest));
	longest[KANARY_MAX_NAME] = '\0';
	assert_true(objects_secret_name_valid(longest));

	/* objects_desired refuses what the flag would: a bad name, a name twice, too many. */
	f->o.image_pull_secrets = one_bad;
	f->o.n_image_pull_secrets = 2;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	f->o.image_pull_secrets = dup;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	for (size_t i = 0; i <= KANARY_MAX_PULL_SECRETS; i++) {
		snprintf(names[i], sizeof(names[i]), "s%zu", i);
		many[i] = names[i];
	}
	f->o.image_pull_secrets = many;
	f->o.n_image_pull_secrets = KANARY_MAX_PULL_SECRETS + 1;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	f->o.image_pull_secrets = NULL;
	f->o.n_image_pull_secrets = 1;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	assert_ptr_equal(objs, sentinel);
	json_object_put(sentinel);
	f->o.image_pull_secrets = many;
	f->o.n_image_pull_secrets = KANARY_MAX_PULL_SECRETS;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), 0);
	json_object_put(objs);
}

static void test_refused_input(void **state)
{
	struct fixture *f = *state;
	struct json_object *sentinel = json_object_new_object();
	struct json_object *objs = sentinel;
	char long_name[KANARY_MAX_DNS_LABEL + 2];
	const char *why;
	char *saved;

	assert_int_equal(objects_desired(NULL, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	assert_int_equal(objects_desired(f->k, NULL, f->hash, STATE, &f->o, &objs), -EINVAL);
	assert_int_equal(objects_desired(f->k, CFG, NULL, STATE, &f->o, &objs), -EINVAL);
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, NULL, &objs), -EINVAL);
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, NULL), -EINVAL);
	/* Not a full lower-case hash. */
	assert_int_equal(objects_desired(f->k, CFG, "abc", STATE, &f->o, &objs), -EINVAL);
	f->hash[0] = 'A';
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	f->hash[0] = '0';
	/* Not defaulted. */
	f->k->port_set = false;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	f->k->port_set = true;
	f->k->replicas_set = false;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	f->k->replicas_set = true;
	/* The soft stop would outlive the grace period. */
	f->o.termination_grace_s = f->o.prestop_sleep_s + f->o.render.hard_stop_after_s;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	objects_options_init(&f->o);
	f->o.image = "";
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	objects_options_init(&f->o);
	/* Pull policies are case-sensitive words of Kubernetes. */
	f->o.image_pull_policy = "never";
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	assert_false(objects_pull_policy_valid("never"));
	assert_false(objects_pull_policy_valid(""));
	assert_false(objects_pull_policy_valid(NULL));
	assert_true(objects_pull_policy_valid("Always") &&
	            objects_pull_policy_valid("IfNotPresent") &&
	            objects_pull_policy_valid("Never"));
	objects_options_init(&f->o);
	/*
	 * No runtime directory: no admin socket, so no agent could fill the
	 * route map, /ready would stay 503 and every connection go to the
	 * fallback. Refused, unset or empty, with the reason.
	 */
	f->o.render.runtime_dir = NULL;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	why = NULL;
	assert_int_equal(objects_options_check(&f->o, &why), -EINVAL);
	assert_string_equal(why, "a runtime directory is needed: the agent applies the state "
	                         "through the admin socket there");
	f->o.render.runtime_dir = "";
	why = NULL;
	assert_int_equal(objects_options_check(&f->o, &why), -EINVAL);
	assert_non_null(strstr(why, "a runtime directory is needed"));
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	objects_options_init(&f->o);
	/* The admin socket's emptyDir would sit on /tmp's. */
	f->o.render.runtime_dir = "/tmp";
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	/* What a daemon checks at start says why, and is what objects_desired refuses. */
	why = NULL;
	assert_int_equal(objects_options_check(&f->o, &why), -EINVAL);
	assert_non_null(strstr(why, "runtime directory"));
	objects_options_init(&f->o);
	f->o.agent_metrics_port = f->o.render.proxy_port;
	assert_int_equal(objects_options_check(&f->o, &why), -EINVAL);
	assert_string_equal(why, "the agent's metrics port is one of HAProxy's ports");
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -EINVAL);
	objects_options_init(&f->o);
	why = "untouched";
	assert_int_equal(objects_options_check(&f->o, &why), 0);
	assert_string_equal(why, "untouched");
	assert_int_equal(objects_options_check(&f->o, NULL), 0);
	objects_options_init(&f->o);
	/* A name that cannot be a label value. */
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	saved = f->k->name;
	f->k->name = long_name;
	assert_int_equal(objects_desired(f->k, CFG, f->hash, STATE, &f->o, &objs), -E2BIG);
	f->k->name = saved;
	assert_ptr_equal(objs, sentinel);
	json_object_put(sentinel);
}

static void test_configmap_name(void **state)
{
	struct fixture *f = *state;
	char name[KANARY_MAX_NAME + 1], small[16];
	char *saved = f->k->name;
	char longest[KANARY_MAX_NAME + 2];
	size_t fit = KANARY_MAX_NAME - strlen("-haproxy-") - 8;

	assert_int_equal(objects_configmap_name(f->k, "0123456789abcdef", name, sizeof(name)), 0);
	assert_string_equal(name, "simple-kanary-rule-haproxy-01234567");
	assert_int_equal(objects_configmap_name(f->k, f->hash, small, sizeof(small)), -E2BIG);
	assert_int_equal(objects_configmap_name(f->k, "0123", name, sizeof(name)), -EINVAL);

	/* name + "-haproxy-" + 8 fits 253 exactly, and one more does not. */
	memset(longest, 'a', fit);
	longest[fit] = '\0';
	f->k->name = longest;
	assert_int_equal(objects_configmap_name(f->k, f->hash, name, sizeof(name)), 0);
	assert_int_equal(strlen(name), KANARY_MAX_NAME);
	longest[fit] = 'a';
	longest[fit + 1] = '\0';
	assert_int_equal(objects_configmap_name(f->k, f->hash, name, sizeof(name)), -E2BIG);
	f->k->name = saved;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_objects_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_owner_reference_without_uid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_configmap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deployment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pdb_and_service, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_options_flow_through, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_yaml_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_configmap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_agent_rbac, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_agent_container, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_image_pull_secrets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secret_names, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_input, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_configmap_name, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
