/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The applied digest (common/applied.h, common/kobj_child.h) against a real
 * API server: for each child kind the controller renders (Deployment,
 * PodDisruptionBudget, Service), what the controller's field manager
 * applied, read back, has the digest of what was applied; a change by
 * someone else to a field it owns makes them differ; a field it does not
 * own does not. Run through tests/kube/run-cluster-tests.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/applied.h"
#include "common/buf.h"
#include "common/doc.h"
#include "common/json_field.h"
#include "common/kanary.h"
#include "common/kobj_child.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/limits.h"
#include "common/objects.h"
#include "common/render.h"

#define WAIT_S  60
#define MANAGER "kanary" /* the controller's field manager */
#define NS      "applied"
#define CFG     "global\n    maxconn 1000\n"
#define STATE   "{\"kanary\":\"shop\",\"generation\":1}"

static struct {
	struct kube_config *cfg;
	struct kube_client *c;
	const char *root;
	struct json_object *objs; /* objects_desired's answer for the Kanary "shop" */
} T;

static void check(int r, const struct kube_result *res, const char *what)
{
	if (r < 0)
		fail_msg("%s: %d %s (HTTP %d): %s", what, r, kube_reason_name(res->reason),
		         res->http_status, res->message);
}

static struct json_object *parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	if (!o)
		fail_msg("not JSON: %s", text);
	return o;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

/* The Kanary CRD from the chart, applied and served. */
static void install_crd(void)
{
	char file[600], p[KANARY_MAX_URL], coll[KANARY_MAX_URL], chunk[4096];
	struct json_object *docs, *got;
	struct doc_err derr;
	struct kube_result res;
	struct buf data;
	double until;
	size_t n;
	FILE *f;

	snprintf(file, sizeof(file), "%s/charts/kanary/crds/kanaries.yaml", T.root);
	f = fopen(file, "r");
	assert_non_null(f);
	buf_init(&data, KANARY_MAX_INPUT);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_int_equal(buf_append(&data, chunk, n), 0);
	fclose(f);
	assert_int_equal(doc_parse_stream(data.data, data.len, &docs, &derr), 0);
	buf_finish(&data);
	assert_int_equal(kube_path(p, sizeof(p), "apiextensions.k8s.io", "v1",
	                           "customresourcedefinitions", NULL, "kanaries.kanary.pyxida.io",
	                           NULL),
	                 0);
	check(kube_apply(T.c, p, json_object_array_get_idx(docs, 0), "kube-test", true, NULL, &res),
	      &res, "apply CRD");
	json_object_put(docs);
	/* Served once a LIST answers. */
	assert_int_equal(kube_path(coll, sizeof(coll), KANARY_GROUP, KANARY_VERSION_API, "kanaries",
	                           NS, NULL, NULL),
	                 0);
	until = now_s() + WAIT_S;
	while (kube_list(T.c, coll, NULL, &got, &res) < 0) {
		assert_true(now_s() < until);
		sleep_ms(100);
	}
	json_object_put(got);
}

/* The rendered child of kind (borrowed), and where it lives in the API. */
static struct json_object *child(const char *kind, char *path, size_t size)
{
	static const struct {
		const char *kind, *group, *resource;
	} where[] = {
	    {"Deployment", "apps", "deployments"},
	    {"PodDisruptionBudget", "policy", "poddisruptionbudgets"},
	    {"Service", "", "services"},
	};

	for (size_t i = 0; i < json_object_array_length(T.objs); i++) {
		struct json_object *o = json_object_array_get_idx(T.objs, i);

		if (strcmp(json_field_str(o, "kind"), kind) != 0)
			continue;
		for (size_t w = 0; w < sizeof(where) / sizeof(where[0]); w++)
			if (strcmp(where[w].kind, kind) == 0)
				assert_int_equal(
				    kube_path(
				        path, size, where[w].group, "v1", where[w].resource, NS,
				        json_field_str_path(o, JSON_FIELD_PATH("metadata", "name")),
				        NULL),
				    0);
		return o;
	}
	fail_msg("no %s rendered", kind);
	return NULL;
}

/* What the controller's Deployment and Service informers keep of them. */
static const char *const kept[] = {"spec.replicas", "spec.ports", NULL};
static const struct kobj_child_options opts = {
    .manager = MANAGER,
    .keep = kept,
    .text_label = "app.kubernetes.io/managed-by",
    .text_value = "kanary",
};

/*
 * The applied digest of the object at path as the informer's decoder
 * gives it, into out ("" when it has none).
 */
static void live_digest(const char *kind, const char *path, char out[65])
{
	struct json_object *live, *rec_obj;
	struct kube_result res;
	struct kube_obj *rec;
	const char *d;

	check(kube_get(T.c, path, &live, &res), &res, "get");
	assert_non_null(json_field_path(live, JSON_FIELD_PATH("metadata", "managedFields")));
	if (strcmp(kind, "Service") == 0)
		assert_int_equal(kobj_child_service_decode((void *)&opts, live, &rec), 0);
	else
		assert_int_equal(kobj_child_decode((void *)&opts, live, &rec), 0);
	json_object_put(live);
	assert_non_null(rec->text);
	/* The record keeps no managedFields, whatever the object had. */
	assert_null(strstr(rec->text, "managedFields"));
	assert_int_equal(kube_obj_parse(rec, &rec_obj), 0);
	d = json_field_str(rec_obj, KOBJ_CHILD_APPLIED);
	snprintf(out, 65, "%s", d ? d : "");
	json_object_put(rec_obj);
	kube_obj_unref(rec);
}

static void want_digest(struct json_object *want, char out[65])
{
	assert_int_equal(applied_digest_want(want, out), 0);
}

static void patch(const char *path, enum kube_patch_type type, const char *text)
{
	struct json_object *p = parse(text);
	struct kube_result res;

	check(kube_patch(T.c, path, type, p, NULL, &res), &res, text);
	json_object_put(p);
}

static void apply(const char *path, struct json_object *want)
{
	struct kube_result res;

	check(kube_apply(T.c, path, want, MANAGER, true, NULL, &res), &res, "apply");
}

/*
 * Applied, read back: equal. Someone else's change to a field nobody of
 * ours set: still equal. to_theirs, a change to a field we set: different,
 * until we apply again.
 */
static void applied_round_trip(const char *kind, enum kube_patch_type type, const char *to_theirs)
{
	char path[KANARY_MAX_URL], want_hex[65], live_hex[65];
	struct json_object *want = child(kind, path, sizeof(path));

	want_digest(want, want_hex);
	apply(path, want);
	live_digest(kind, path, live_hex);
	assert_string_equal(live_hex, want_hex);

	/* Applying the same again writes nothing and keeps the digest. */
	apply(path, want);
	live_digest(kind, path, live_hex);
	assert_string_equal(live_hex, want_hex);

	patch(path, KUBE_PATCH_MERGE,
	      "{\"metadata\":{\"annotations\":{\"someone/else\":\"x\"},"
	      "\"labels\":{\"someone-else\":\"y\"}}}");
	live_digest(kind, path, live_hex);
	assert_string_equal(live_hex, want_hex);

	patch(path, type, to_theirs);
	live_digest(kind, path, live_hex);
	assert_string_not_equal(live_hex, want_hex);

	apply(path, want);
	live_digest(kind, path, live_hex);
	assert_string_equal(live_hex, want_hex);
}

static void test_deployment_digest_matches_what_was_applied(void **state)
{
	(void)state;
	applied_round_trip("Deployment", KUBE_PATCH_MERGE, "{\"spec\":{\"replicas\":7}}");
}

static void test_deployment_image_changed_by_someone_else_is_seen(void **state)
{
	char path[KANARY_MAX_URL], want_hex[65], live_hex[65];
	struct json_object *want = child("Deployment", path, sizeof(path));
	const char *image = json_field_str(
	    json_object_array_get_idx(
	        json_field_path(want, JSON_FIELD_PATH("spec", "template", "spec", "containers")),
	        0),
	    "name");
	char text[512];

	(void)state;
	assert_non_null(image);
	want_digest(want, want_hex);
	apply(path, want);
	snprintf(text, sizeof(text),
	         "{\"spec\":{\"template\":{\"spec\":{\"containers\":"
	         "[{\"name\":\"%s\",\"image\":\"example.invalid/other:1\"}]}}}}",
	         image);
	patch(path, KUBE_PATCH_STRATEGIC, text);
	live_digest("Deployment", path, live_hex);
	assert_string_not_equal(live_hex, want_hex);
	apply(path, want);
	live_digest("Deployment", path, live_hex);
	assert_string_equal(live_hex, want_hex);
}

static void test_pdb_digest_matches_what_was_applied(void **state)
{
	char path[KANARY_MAX_URL];
	struct json_object *want = child("PodDisruptionBudget", path, sizeof(path));
	struct json_object *spec = json_field_get(want, "spec");

	(void)state;
	/* Whichever of the two the renderer sets. */
	applied_round_trip("PodDisruptionBudget", KUBE_PATCH_MERGE,
	                   json_field_get(spec, "minAvailable")
	                       ? "{\"spec\":{\"minAvailable\":\"13%\"}}"
	                       : "{\"spec\":{\"maxUnavailable\":\"13%\"}}");
}

static void test_service_digest_matches_what_was_applied(void **state)
{
	(void)state;
	applied_round_trip("Service", KUBE_PATCH_MERGE,
	                   "{\"metadata\":{\"labels\":{\"app.kubernetes.io/managed-by\":\"kanary\","
	                   "\"kanary.pyxida.io/name\":\"somebody\"}}}");
}

/* ---- setup ---- */

static int group_setup(void **state)
{
	struct kube_config_err err = {{0}};
	struct json_object *kanary, *got;
	struct objects_options o;
	struct kube_result res;
	struct kanary *k;
	char p[KANARY_MAX_URL], hash[65];

	(void)state;
	T.root = getenv("KANARY_SOURCE_ROOT");
	if (!T.root || !getenv("KUBECONFIG")) {
		fprintf(stderr, "run me through tests/kube/run-cluster-tests\n");
		return -1;
	}
	if (kube_global_init() < 0 || kube_config_load(NULL, NULL, &T.cfg, &err) < 0) {
		fprintf(stderr, "config: %s\n", err.msg);
		return -1;
	}
	if (kube_client_create(T.cfg, &(struct kube_client_options){.component = "kube-test"},
	                       &T.c) < 0)
		return -1;
	kube_path(p, sizeof(p), NULL, "v1", "namespaces", NULL, NULL, NULL);
	kanary = parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
	               "\"metadata\":{\"name\":\"" NS "\"}}");
	check(kube_create(T.c, p, kanary, NULL, &res), &res, "create namespace");
	json_object_put(kanary);
	install_crd();

	/* A real owner: the garbage collector would take children of a missing one. */
	kanary = parse("{\"apiVersion\":\"" KANARY_GROUP "/" KANARY_VERSION_API "\","
	               "\"kind\":\"Kanary\",\"metadata\":{\"name\":\"shop\"},"
	               "\"spec\":{\"destination\":\"web\",\"routes\":["
	               "{\"backend\":{\"serviceName\":\"web-v1\",\"servicePort\":80},"
	               "\"weight\":100}]}}");
	kube_path(p, sizeof(p), KANARY_GROUP, KANARY_VERSION_API, "kanaries", NS, NULL, NULL);
	check(kube_create(T.c, p, kanary, &got, &res), &res, "create Kanary");
	json_object_put(kanary);

	k = calloc(1, sizeof(*k));
	assert_non_null(k);
	k->namespace = xstrdup(NS);
	k->name = xstrdup("shop");
	k->uid = xstrdup(json_field_str_path(got, JSON_FIELD_PATH("metadata", "uid")));
	json_object_put(got);
	k->destination = xstrdup("web");
	k->routes[0].service_name = xstrdup("web-v1");
	k->routes[0].weight_set = true;
	k->routes[0].weight = 100;
	k->n_routes = 1;
	k->n_routes_seen = 1;
	k->port_set = true;
	k->port = 80;
	k->replicas_set = true;
	k->replicas = 3;
	objects_options_init(&o);
	if (render_hash(CFG, strlen(CFG), hash) < 0 ||
	    objects_desired(k, CFG, hash, STATE, &o, &T.objs) < 0)
		return -1;
	kanary_destroy(k);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	json_object_put(T.objs);
	kube_client_destroy(T.c);
	kube_config_destroy(T.cfg);
	kube_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deployment_digest_matches_what_was_applied),
	    cmocka_unit_test(test_deployment_image_changed_by_someone_else_is_seen),
	    cmocka_unit_test(test_pdb_digest_matches_what_was_applied),
	    cmocka_unit_test(test_service_digest_matches_what_was_applied),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
