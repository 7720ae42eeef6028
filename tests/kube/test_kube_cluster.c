/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of the Kubernetes client against a real control plane. */
/*
 * The client against a real control plane (tests/cluster/up, through
 * tests/kube/run-cluster-tests): requests and their typed errors, server-side
 * apply, watches and informers through API server restarts and 410s, token
 * rotation, RBAC refusals and Events.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/events.h"
#include "common/kube/informer.h"
#include "common/kube/watch.h"
#include "common/limits.h"

#define WAIT_S  60 /* for anything the control plane or an informer does asynchronously */
#define MANAGER "kube-test"

static struct {
	struct kube_config *cfg;
	struct kube_client *c;
	const char *ctl;
	const char *root;
	const char *cluster_dir;
	const char *api_server;
	char tmp[64];
} T;

/* ---- helpers ---- */

static struct json_object *J(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A JSON object from printf-style text; the test fails on a typo. Ownership: caller puts. */
static struct json_object *J(const char *fmt, ...)
{
	struct json_object *o;
	struct buf b;
	va_list ap;

	buf_init(&b, 1 << 20);
	va_start(ap, fmt);
	assert_int_equal(buf_vprintf(&b, fmt, ap), 0);
	va_end(ap);
	o = json_tokener_parse(b.data);
	if (!o)
		fail_msg("not JSON: %s", b.data);
	buf_finish(&b);
	return o;
}

/* A string at a dotted path ("metadata.resourceVersion"), or NULL. Borrowed. */
static const char *S(struct json_object *o, const char *dotted)
{
	char part[128];
	const char *p = dotted, *dot;
	struct json_object *v = o;

	while (v && *p) {
		dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		assert_true(len < sizeof(part));
		memcpy(part, p, len);
		part[len] = '\0';
		if (!json_object_object_get_ex(v, part, &v))
			return NULL;
		p = dot ? dot + 1 : p + len;
	}
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void path(char *out, const char *group, const char *version, const char *resource,
                 const char *ns, const char *name, const char *sub)
{
	assert_int_equal(kube_path(out, KANARY_MAX_URL, group, version, resource, ns, name, sub),
	                 0);
}

static void check(int r, const struct kube_result *res, const char *what)
{
	if (r < 0)
		fail_msg("%s: %d %s (HTTP %d): %s", what, r, kube_reason_name(res->reason),
		         res->http_status, res->message);
}

static void ns_create(const char *ns)
{
	struct json_object *o = J("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
	                          "\"metadata\":{\"name\":\"%s\"}}",
	                          ns);
	struct kube_result res;
	char p[KANARY_MAX_URL];

	path(p, NULL, "v1", "namespaces", NULL, NULL, NULL);
	check(kube_create(T.c, p, o, NULL, &res), &res, "create namespace");
	json_object_put(o);
}

static void cm_create(struct kube_client *c, const char *ns, const char *name, const char *labels,
                      const char *v, struct json_object **ret)
{
	struct json_object *o = J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
	                          "\"metadata\":{\"name\":\"%s\",\"labels\":{%s}},"
	                          "\"data\":{\"v\":\"%s\"}}",
	                          name, labels ? labels : "", v);
	struct kube_result res;
	char p[KANARY_MAX_URL];

	path(p, NULL, "v1", "configmaps", ns, NULL, NULL);
	check(kube_create(c, p, o, ret, &res), &res, "create configmap");
	json_object_put(o);
}

/* Sets data.v with a merge patch. */
static void cm_set(const char *ns, const char *name, const char *v)
{
	struct json_object *patch = J("{\"data\":{\"v\":\"%s\"}}", v);
	struct kube_result res;
	char p[KANARY_MAX_URL];

	path(p, NULL, "v1", "configmaps", ns, name, NULL);
	check(kube_patch(T.c, p, KUBE_PATCH_MERGE, patch, NULL, &res), &res, "patch configmap");
	json_object_put(patch);
}

static void cm_delete(const char *ns, const char *name)
{
	struct kube_result res;
	char p[KANARY_MAX_URL];

	path(p, NULL, "v1", "configmaps", ns, name, NULL);
	check(kube_delete(T.c, p, NULL, NULL, &res), &res, "delete configmap");
}

static void ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs tests/kube/cluster-ctl (which bounds its own waits). */
static void ctl(const char *fmt, ...)
{
	char args[512], cmd[1024];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "'%s' %s >&2", T.ctl, args);
	r = system(cmd);
	if (r != 0)
		fail_msg("%s: exit %d", cmd, r);
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

static void write_text(const char *file, const char *text)
{
	FILE *f = fopen(file, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Replaces file the way kubelet updates a projected token: a new inode renamed over it. */
static void replace_text(const char *file, const char *text)
{
	char tmp[800];

	snprintf(tmp, sizeof(tmp), "%s.new", file);
	write_text(tmp, text);
	assert_int_equal(rename(tmp, file), 0);
}

static struct kube_config *config_from_text(const char *name, const char *text)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg = NULL;
	char file[600];
	const char *p = file;
	int r;

	snprintf(file, sizeof(file), "%s/%s", T.tmp, name);
	write_text(file, text);
	r = kube_config_from_kubeconfig(&p, 1, NULL, &cfg, &err);
	if (r < 0)
		fail_msg("%s: %d %s", file, r, err.msg);
	return cfg;
}

/* ---- what an informer told its handlers ---- */

#define SEEN_MAX 4096

struct seen {
	pthread_mutex_t lock;
	char *lines[SEEN_MAX];
	size_t n;
};

static void seen_add(struct seen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void seen_add(struct seen *s, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->lock);
	if (s->n < SEEN_MAX)
		s->lines[s->n++] = strdup(line);
	pthread_mutex_unlock(&s->lock);
}

static const char *data_v(struct json_object *o)
{
	const char *v = o ? S(o, "data.v") : NULL;

	return v ? v : "-";
}

/*
 * Handlers run on the informer thread, where cmocka's asserts must not jump;
 * anything wrong is written down as a line no test waits for, and seen_finish
 * fails the test.
 */
static void on_add(void *ctx, const struct kube_obj *rec)
{
	struct json_object *obj = NULL;

	/* List items get their kind filled in, like watch events. */
	if (kube_obj_parse(rec, &obj) < 0 || !S(obj, "kind") ||
	    strcmp(S(obj, "metadata.name"), rec->name) != 0)
		seen_add(ctx, "BAD add %s", rec->key);
	seen_add(ctx, "add %s %s", rec->key, data_v(obj));
	json_object_put(obj);
}

static void on_update(void *ctx, const struct kube_obj *old_rec, const struct kube_obj *new_rec)
{
	struct json_object *old_obj = NULL, *new_obj = NULL;

	if (kube_obj_parse(old_rec, &old_obj) < 0 || kube_obj_parse(new_rec, &new_obj) < 0 ||
	    strcmp(old_rec->key, new_rec->key) != 0 || strcmp(old_rec->rv, new_rec->rv) == 0)
		seen_add(ctx, "BAD update");
	seen_add(ctx, "update %s %s->%s", new_rec->key, data_v(old_obj), data_v(new_obj));
	json_object_put(old_obj);
	json_object_put(new_obj);
}

static void on_delete(void *ctx, const struct kube_obj *rec, bool final_state_unknown)
{
	seen_add(ctx, "delete %s%s", rec->key, final_state_unknown ? " (final state unknown)" : "");
}

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
}

static void seen_finish(struct seen *s)
{
	bool bad = false;

	for (size_t i = 0; i < s->n; i++) {
		bad = bad || strncmp(s->lines[i], "BAD", 3) == 0;
		if (bad)
			fprintf(stderr, "  %s\n", s->lines[i]);
		free(s->lines[i]);
	}
	pthread_mutex_destroy(&s->lock);
	assert_false(bad);
}

static bool seen_has(struct seen *s, const char *line)
{
	bool found = false;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n && !found; i++)
		found = strcmp(s->lines[i], line) == 0;
	pthread_mutex_unlock(&s->lock);
	return found;
}

static void seen_dump(struct seen *s)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++)
		fprintf(stderr, "  seen: %s\n", s->lines[i]);
	pthread_mutex_unlock(&s->lock);
}

static void seen_wait(struct seen *s, const char *line)
{
	double until = now_s() + WAIT_S;

	while (!seen_has(s, line)) {
		if (now_s() > until) {
			seen_dump(s);
			fail_msg("no \"%s\" within %d s", line, WAIT_S);
		}
		sleep_ms(50);
	}
}

static size_t seen_count(struct seen *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static struct kube_informer *informer_start(const char *collection, const char *labels,
                                            struct seen *s,
                                            const struct kube_informer_options *base)
{
	struct kube_informer_options o = {0};
	struct kube_informer *inf;

	if (base)
		o = *base;
	o.path = collection;
	o.label_selector = labels;
	o.component = "kube-test";
	if (s)
		o.handlers = (struct kube_informer_handlers){on_add, on_update, on_delete, s};
	assert_int_equal(kube_informer_create(T.cfg, &o, &inf), 0);
	assert_false(kube_informer_has_synced(inf));
	assert_int_equal(kube_informer_start(inf), 0);
	assert_int_equal(kube_informer_wait_synced(inf, WAIT_S * 1000L), 0);
	assert_true(kube_informer_has_synced(inf));
	return inf;
}

static void log_to_stderr(void *ctx, enum kube_log_level level, const char *msg)
{
	static const char *const names[] = {"debug", "info", "warning", "error"};

	if (level >= KUBE_LOG_INFO)
		fprintf(stderr, "  kube %s: %s\n", names[level], msg);
}

/* ---- requests ---- */

static void test_configmap_crud_round_trip(void **state)
{
	struct json_object *o, *got = NULL, *patch;
	struct kube_delete_options del = {.grace_period_s = -1};
	struct kube_result res;
	char coll[KANARY_MAX_URL], p[KANARY_MAX_URL];
	const char *rv1;
	char uid[64];

	ns_create("crud");
	cm_create(T.c, "crud", "one", NULL, "1", &got);
	assert_string_equal(S(got, "metadata.namespace"), "crud");
	snprintf(uid, sizeof(uid), "%s", S(got, "metadata.uid"));
	json_object_put(got);

	/* A second create is AlreadyExists (409), not Conflict. */
	path(coll, NULL, "v1", "configmaps", "crud", NULL, NULL);
	o = J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"one\"}}");
	assert_int_equal(kube_create(T.c, coll, o, NULL, &res), -EEXIST);
	assert_int_equal(res.reason, KUBE_REASON_ALREADY_EXISTS);
	assert_int_equal(res.http_status, 409);
	assert_non_null(strstr(res.message, "already exists"));
	json_object_put(o);

	path(p, NULL, "v1", "configmaps", "crud", "one", NULL);
	check(kube_get(T.c, p, &got, &res), &res, "get");
	assert_int_equal(res.http_status, 200);
	assert_string_equal(S(got, "data.v"), "1");
	rv1 = S(got, "metadata.resourceVersion");
	assert_non_null(rv1);

	/* PUT carries the resourceVersion it read. */
	json_object_object_add(json_object_object_get(got, "data"), "v",
	                       json_object_new_string("2"));
	o = NULL;
	check(kube_update(T.c, p, got, &o, &res), &res, "update");
	assert_string_equal(S(o, "data.v"), "2");
	assert_string_not_equal(S(o, "metadata.resourceVersion"), rv1);
	json_object_put(o);
	json_object_put(got);

	patch = J("{\"data\":{\"merged\":\"yes\"}}");
	check(kube_patch(T.c, p, KUBE_PATCH_MERGE, patch, &got, &res), &res, "merge patch");
	assert_string_equal(S(got, "data.v"), "2");
	assert_string_equal(S(got, "data.merged"), "yes");
	json_object_put(got);
	json_object_put(patch);

	/* JSON pointer escapes (~1 for '/') and a value that needs JSON escaping survive. */
	patch = J("[{\"op\":\"remove\",\"path\":\"/data/v\"},"
	          "{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{}},"
	          "{\"op\":\"add\",\"path\":\"/metadata/annotations/example.com~1note\","
	          "\"value\":\"a/b \\\"q\\\" é\"}]");
	check(kube_patch(T.c, p, KUBE_PATCH_JSON, patch, &got, &res), &res, "json patch");
	assert_null(S(got, "data.v"));
	assert_string_equal(
	    json_object_get_string(json_object_object_get(
	        json_object_object_get(json_object_object_get(got, "metadata"), "annotations"),
	        "example.com/note")),
	    "a/b \"q\" é");
	json_object_put(got);
	json_object_put(patch);

	patch = J("{\"metadata\":{\"labels\":{\"tier\":\"web\"}}}");
	check(kube_patch(T.c, p, KUBE_PATCH_STRATEGIC, patch, &got, &res), &res, "strategic");
	assert_string_equal(S(got, "metadata.labels.tier"), "web");
	json_object_put(got);
	json_object_put(patch);

	/* A failing JSON patch test is the server refusing our request, not a transport error. */
	patch = J("[{\"op\":\"test\",\"path\":\"/data/merged\",\"value\":\"no\"}]");
	assert_true(kube_patch(T.c, p, KUBE_PATCH_JSON, patch, NULL, &res) < 0);
	assert_true(res.http_status >= 400 && res.http_status < 500);
	json_object_put(patch);

	/* A delete precondition on the wrong uid is a Conflict; the right one deletes. */
	del.uid = "00000000-0000-0000-0000-000000000000";
	assert_int_equal(kube_delete(T.c, p, &del, NULL, &res), -EBUSY);
	assert_int_equal(res.reason, KUBE_REASON_CONFLICT);
	del.uid = uid;
	del.propagation = KUBE_PROPAGATION_BACKGROUND;
	check(kube_delete(T.c, p, &del, NULL, &res), &res, "delete");

	assert_int_equal(kube_get(T.c, p, &got, &res), -ENOENT);
	assert_int_equal(res.reason, KUBE_REASON_NOT_FOUND);
	assert_int_equal(res.http_status, 404);
	assert_non_null(strstr(res.message, "not found"));
	assert_int_equal(kube_delete(T.c, p, NULL, NULL, &res), -ENOENT);

	/* A name the API server refuses is Invalid (422), with its message. */
	o = J(
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"Bad_Name\"}}");
	assert_int_equal(kube_create(T.c, coll, o, NULL, &res), -EINVAL);
	assert_int_equal(res.reason, KUBE_REASON_INVALID);
	assert_int_equal(res.http_status, 422);
	assert_non_null(strstr(res.message, "Bad_Name"));
	json_object_put(o);

	/* A resource the server does not serve. */
	path(p, "nothing.example.com", "v1", "things", "crud", NULL, NULL);
	assert_int_equal(kube_get(T.c, p, &got, &res), -ENOENT);
	assert_int_equal(res.http_status, 404);
}

static void install_crd(void)
{
	char file[600], p[KANARY_MAX_URL], coll[KANARY_MAX_URL];
	struct json_object *docs, *got;
	struct doc_err derr;
	struct kube_result res;
	const char *status;
	struct buf data;
	double until;
	FILE *f;
	char chunk[4096];
	size_t n;

	snprintf(file, sizeof(file), "%s/charts/kanary/crds/kanaries.yaml", T.root);
	f = fopen(file, "r");
	assert_non_null(f);
	buf_init(&data, KANARY_MAX_INPUT);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_int_equal(buf_append(&data, chunk, n), 0);
	fclose(f);
	assert_int_equal(doc_parse_stream(data.data, data.len, &docs, &derr), 0);
	buf_finish(&data);

	path(p, "apiextensions.k8s.io", "v1", "customresourcedefinitions", NULL,
	     "kanaries.kanary.pyxida.io", NULL);
	check(kube_apply(T.c, p, json_object_array_get_idx(docs, 0), MANAGER, true, NULL, &res),
	      &res, "apply CRD");
	json_object_put(docs);

	until = now_s() + WAIT_S;
	for (;;) {
		struct json_object *conds, *cond;
		bool established = false;

		check(kube_get(T.c, p, &got, &res), &res, "get CRD");
		if (json_object_object_get_ex(json_object_object_get(got, "status"), "conditions",
		                              &conds) &&
		    json_object_is_type(conds, json_type_array)) {
			for (size_t i = 0; i < json_object_array_length(conds); i++) {
				cond = json_object_array_get_idx(conds, i);
				status = S(cond, "status");
				if (strcmp(S(cond, "type"), "Established") == 0 && status &&
				    strcmp(status, "True") == 0)
					established = true;
			}
		}
		json_object_put(got);
		if (established)
			break;
		assert_true(now_s() < until);
		sleep_ms(100);
	}
	/* Established, then served: discovery takes a moment more. */
	path(coll, "kanary.pyxida.io", "v1alpha1", "kanaries", "default", NULL, NULL);
	until = now_s() + WAIT_S;
	while (kube_list(T.c, coll, NULL, &got, &res) < 0) {
		assert_true(now_s() < until);
		sleep_ms(100);
	}
	json_object_put(got);
}

static const char kanary_fmt[] =
    "{\"apiVersion\":\"kanary.pyxida.io/v1alpha1\",\"kind\":\"Kanary\","
    "\"metadata\":{\"name\":\"%s\"},"
    "\"spec\":{\"destination\":\"web\",\"routes\":["
    "{\"backend\":{\"serviceName\":\"web-v1\",\"servicePort\":\"http\"},\"weight\":%d},"
    "{\"backend\":{\"serviceName\":\"web-v2\",\"servicePort\":8080},\"weight\":%d}]}}";

static void test_kanary_crud_and_status_subresource(void **state)
{
	struct json_object *o, *got, *status, *after;
	struct kube_result res;
	char coll[KANARY_MAX_URL], p[KANARY_MAX_URL];
	int64_t generation;

	install_crd();
	ns_create("ky");
	path(coll, "kanary.pyxida.io", "v1alpha1", "kanaries", "ky", NULL, NULL);
	path(p, "kanary.pyxida.io", "v1alpha1", "kanaries", "ky", "shop", NULL);

	o = J(kanary_fmt, "shop", 80, 20);
	check(kube_create(T.c, coll, o, &got, &res), &res, "create kanary");
	assert_int_equal(res.http_status, 201);
	json_object_put(o);
	json_object_put(got);

	/* The CRD's CEL rule refuses weights that do not sum to 100: Invalid, with its message. */
	o = J(kanary_fmt, "bad", 80, 40);
	assert_int_equal(kube_create(T.c, coll, o, NULL, &res), -EINVAL);
	assert_int_equal(res.reason, KUBE_REASON_INVALID);
	assert_non_null(strstr(res.message, "weights must sum to 100"));
	json_object_put(o);

	check(kube_get(T.c, p, &got, &res), &res, "get kanary");
	json_object_object_add(
	    json_object_array_get_idx(
	        json_object_object_get(json_object_object_get(got, "spec"), "routes"), 0),
	    "weight", json_object_new_int(70));
	json_object_object_add(
	    json_object_array_get_idx(
	        json_object_object_get(json_object_object_get(got, "spec"), "routes"), 1),
	    "weight", json_object_new_int(30));
	/* Status sent through the main resource is ignored... */
	json_object_object_add(got, "status", J("{\"summary\":\"ignored\"}"));
	check(kube_update(T.c, p, got, &after, &res), &res, "update kanary");
	assert_null(S(after, "status.summary"));
	generation = json_object_get_int64(
	    json_object_object_get(json_object_object_get(after, "metadata"), "generation"));
	assert_int_equal(generation, 2);
	json_object_put(got);

	/* ...and written through /status, which leaves the spec alone. */
	status =
	    J("{\"observedGeneration\":2,\"summary\":\"web-v1=70,web-v2=30\","
	      "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"Rendered\","
	      "\"message\":\"ok\",\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}]}");
	json_object_object_add(after, "status", status);
	json_object_object_add(json_object_object_get(after, "spec"), "destination",
	                       json_object_new_string("changed-by-status-write"));
	check(kube_update_status(T.c, p, after, &got, &res), &res, "update status");
	assert_string_equal(S(got, "status.summary"), "web-v1=70,web-v2=30");
	assert_string_equal(S(got, "spec.destination"), "web");
	json_object_put(got);
	json_object_put(after);

	check(kube_get(T.c, p, &got, &res), &res, "get kanary again");
	assert_string_equal(S(got, "status.summary"), "web-v1=70,web-v2=30");
	json_object_put(got);

	check(kube_delete(T.c, p, NULL, NULL, &res), &res, "delete kanary");
	assert_int_equal(kube_get(T.c, p, &got, &res), -ENOENT);
}

static struct json_object *applied_cm(const char *v)
{
	return J("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"applied\","
	         "\"labels\":{\"app.kubernetes.io/managed-by\":\"kanary\"}},"
	         "\"data\":{\"v\":\"%s\"}}",
	         v);
}

static void test_server_side_apply_is_idempotent(void **state)
{
	struct json_object *o, *first, *second, *mf, *other;
	struct kube_result res;
	char p[KANARY_MAX_URL], rv[KANARY_MAX_RESOURCE_VERSION + 1];
	bool found = false;

	ns_create("ssa");
	path(p, NULL, "v1", "configmaps", "ssa", "applied", NULL);
	o = applied_cm("1");
	check(kube_apply(T.c, p, o, MANAGER, true, &first, &res), &res, "first apply");
	assert_int_equal(res.http_status, 201);
	snprintf(rv, sizeof(rv), "%s", S(first, "metadata.resourceVersion"));
	mf = json_object_object_get(json_object_object_get(first, "metadata"), "managedFields");
	for (size_t i = 0; i < json_object_array_length(mf); i++) {
		struct json_object *e = json_object_array_get_idx(mf, i);
		if (strcmp(S(e, "manager"), MANAGER) == 0 &&
		    strcmp(S(e, "operation"), "Apply") == 0)
			found = true;
	}
	assert_true(found);
	json_object_put(first);

	/* The same apply again changes nothing, not even the resourceVersion. */
	check(kube_apply(T.c, p, o, MANAGER, true, &second, &res), &res, "second apply");
	assert_int_equal(res.http_status, 200);
	assert_string_equal(S(second, "metadata.resourceVersion"), rv);
	json_object_put(second);
	json_object_put(o);

	/* Another manager taking our field without force is a Conflict... */
	other = applied_cm("theirs");
	assert_int_equal(kube_apply(T.c, p, other, "someone-else", false, NULL, &res), -EBUSY);
	assert_int_equal(res.reason, KUBE_REASON_CONFLICT);
	assert_int_equal(res.http_status, 409);
	assert_non_null(strstr(res.message, "conflict"));
	/* ...and with force it wins. */
	check(kube_apply(T.c, p, other, "someone-else", true, &second, &res), &res, "force");
	assert_string_equal(S(second, "data.v"), "theirs");
	json_object_put(second);
	json_object_put(other);

	/* No manager: refused before anything is sent. */
	assert_int_equal(kube_apply(T.c, p, NULL, NULL, true, NULL, &res), -EINVAL);
	assert_int_equal(res.reason, KUBE_REASON_CLIENT);
}

static void test_stale_update_is_a_conflict(void **state)
{
	struct json_object *stale, *fresh, *out;
	struct kube_result res;
	char p[KANARY_MAX_URL];

	ns_create("stale");
	cm_create(T.c, "stale", "cm", NULL, "1", NULL);
	path(p, NULL, "v1", "configmaps", "stale", "cm", NULL);
	check(kube_get(T.c, p, &stale, &res), &res, "get");
	check(kube_get(T.c, p, &fresh, &res), &res, "get");
	json_object_object_add(json_object_object_get(fresh, "data"), "v",
	                       json_object_new_string("fresh"));
	check(kube_update(T.c, p, fresh, &out, &res), &res, "first update");
	json_object_put(out);
	json_object_put(fresh);

	json_object_object_add(json_object_object_get(stale, "data"), "v",
	                       json_object_new_string("stale"));
	assert_int_equal(kube_update(T.c, p, stale, &out, &res), -EBUSY);
	assert_int_equal(res.reason, KUBE_REASON_CONFLICT);
	assert_int_equal(res.http_status, 409);
	assert_non_null(strstr(res.message, "the object has been modified"));
	json_object_put(stale);

	check(kube_get(T.c, p, &out, &res), &res, "get after");
	assert_string_equal(S(out, "data.v"), "fresh");
	json_object_put(out);
}

static void test_list_follows_every_page(void **state)
{
	struct kube_list_options lo = {.label_selector = "batch in (p,q),tier!=db", .page_size = 5};
	struct json_object *list, *items;
	struct kube_result res;
	char coll[KANARY_MAX_URL], name[32];
	unsigned long before;

	ns_create("pages");
	for (int i = 0; i < 23; i++) {
		snprintf(name, sizeof(name), "p%02d", i);
		cm_create(T.c, "pages", name, "\"batch\":\"p\"", "x", NULL);
	}
	cm_create(T.c, "pages", "other", "\"batch\":\"z\"", "x", NULL);
	cm_create(T.c, "pages", "db", "\"batch\":\"p\",\"tier\":\"db\"", "x", NULL);
	path(coll, NULL, "v1", "configmaps", "pages", NULL, NULL);

	before = kube_client_requests(T.c);
	check(kube_list(T.c, coll, &lo, &list, &res), &res, "list");
	/* 23 items in pages of 5: 5 requests. */
	assert_int_equal(kube_client_requests(T.c) - before, 5);
	items = json_object_object_get(list, "items");
	assert_int_equal(json_object_array_length(items), 23);
	assert_string_equal(S(list, "kind"), "ConfigMapList");
	assert_non_null(S(list, "metadata.resourceVersion"));
	assert_null(S(list, "metadata.continue"));
	for (int i = 0; i < 23; i++) {
		snprintf(name, sizeof(name), "p%02d", i);
		assert_string_equal(S(json_object_array_get_idx(items, (size_t)i), "metadata.name"),
		                    name);
	}
	json_object_put(list);

	lo.page_size = -1;
	lo.field_selector = "metadata.name!=p00";
	before = kube_client_requests(T.c);
	check(kube_list(T.c, coll, &lo, &list, &res), &res, "unpaginated list");
	assert_int_equal(kube_client_requests(T.c) - before, 1);
	assert_int_equal(json_object_array_length(json_object_object_get(list, "items")), 22);
	json_object_put(list);
}

static void test_connection_reuse_and_user_agent(void **state)
{
	struct kube_client *c;
	struct json_object *got, *mf;
	struct kube_result res;
	char p[KANARY_MAX_URL];

	assert_int_equal(
	    kube_client_create(T.cfg, &(struct kube_client_options){.component = "kube-test"}, &c),
	    0);
	ns_create("reuse");
	path(p, NULL, "v1", "namespaces", NULL, "reuse", NULL);
	for (int i = 0; i < 20; i++) {
		check(kube_get(c, p, &got, &res), &res, "get");
		json_object_put(got);
	}
	/* An error answer does not cost the connection either. */
	path(p, NULL, "v1", "namespaces", NULL, "no-such-namespace", NULL);
	assert_int_equal(kube_get(c, p, &got, &res), -ENOENT);
	assert_int_equal(kube_client_connections(c), 1);
	assert_int_equal(kube_client_requests(c), 21);

	/* Without a fieldManager the server names the manager after our User-Agent. */
	cm_create(c, "reuse", "ua", NULL, "1", &got);
	mf = json_object_object_get(json_object_object_get(got, "metadata"), "managedFields");
	assert_string_equal(S(json_object_array_get_idx(mf, 0), "manager"), "kanary-kube-test");
	json_object_put(got);
	assert_int_equal(kube_client_connections(c), 1);
	kube_client_destroy(c);
}

/* A listening socket that never answers: a TLS handshake to it hangs. */
static int silent_listener(int *ret_port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

static void test_transport_timeout_tls_and_auth_errors(void **state)
{
	struct kube_config *cfg;
	struct kube_client *c;
	struct json_object *got;
	struct kube_result res;
	char text[2048];
	double t0;
	int fd, port;

	/* Nobody listens: Transport. */
	cfg = config_from_text("refused", "current-context: x\nclusters:\n- name: c\n  cluster:\n"
	                                  "    server: https://127.0.0.1:1\ncontexts:\n- name: x\n"
	                                  "  context:\n    cluster: c\n");
	assert_int_equal(kube_client_create(cfg, NULL, &c), 0);
	assert_int_equal(kube_get(c, "/api/v1/namespaces", &got, &res), -ECONNREFUSED);
	assert_int_equal(res.reason, KUBE_REASON_TRANSPORT);
	assert_int_equal(res.http_status, 0);
	kube_client_destroy(c);
	kube_config_destroy(cfg);

	/* Someone listens and never answers: our request timeout. */
	fd = silent_listener(&port);
	snprintf(
	    text, sizeof(text),
	    "current-context: x\nclusters:\n- name: c\n  cluster:\n"
	    "    server: https://127.0.0.1:%d\ncontexts:\n- name: x\n  context:\n    cluster: c\n",
	    port);
	cfg = config_from_text("silent", text);
	assert_int_equal(
	    kube_client_create(cfg, &(struct kube_client_options){.request_timeout_ms = 500}, &c),
	    0);
	/*
	 * The reason says our 500 ms request timeout ended it (not the peer, not a
	 * transport error); a request that hung would be the test's own timeout.
	 */
	t0 = now_s();
	assert_int_equal(kube_get(c, "/api/v1/namespaces", &got, &res), -ETIMEDOUT);
	assert_int_equal(res.reason, KUBE_REASON_TIMEOUT);
	assert_int_equal(res.http_status, 0);
	fprintf(stderr, "  silent server: timed out after %.2f s\n", now_s() - t0);
	kube_client_destroy(c);
	kube_config_destroy(cfg);
	close(fd);

	/* The real server with a CA that did not sign it: a TLS failure, reported as Transport. */
	snprintf(text, sizeof(text),
	         "current-context: x\nclusters:\n- name: c\n  cluster:\n    server: %s\n"
	         "    certificate-authority: %s/pki/front-proxy-ca.crt\n"
	         "contexts:\n- name: x\n  context:\n    cluster: c\n",
	         T.api_server, T.cluster_dir);
	cfg = config_from_text("wrong-ca", text);
	assert_int_equal(kube_client_create(cfg, NULL, &c), 0);
	assert_int_equal(kube_get(c, "/api/v1/namespaces", &got, &res), -ECONNREFUSED);
	assert_int_equal(res.reason, KUBE_REASON_TRANSPORT);
	fprintf(stderr, "  wrong CA: %s\n", res.message);
	kube_client_destroy(c);
	kube_config_destroy(cfg);

	/* The right CA and a token the server does not know: Unauthorized. */
	snprintf(text, sizeof(text),
	         "current-context: x\nclusters:\n- name: c\n  cluster:\n    server: %s\n"
	         "    certificate-authority: %s/pki/ca.crt\n"
	         "users:\n- name: u\n  user:\n    token: not-a-real-token\n"
	         "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n",
	         T.api_server, T.cluster_dir);
	cfg = config_from_text("bad-token", text);
	assert_int_equal(kube_client_create(cfg, NULL, &c), 0);
	assert_int_equal(kube_get(c, "/api/v1/namespaces", &got, &res), -EPERM);
	assert_int_equal(res.reason, KUBE_REASON_UNAUTHORIZED);
	assert_int_equal(res.http_status, 401);
	kube_client_destroy(c);
	kube_config_destroy(cfg);
}

/* ---- watches and informers ---- */

static void test_watch_sees_create_update_delete(void **state)
{
	double t0;
	struct kube_informer *inf;
	struct kube_informer_stats st;
	struct json_object *got;
	const struct kube_obj **all;
	size_t n_all;
	struct seen s;
	char coll[KANARY_MAX_URL];

	ns_create("watch");
	cm_create(T.c, "watch", "early", "\"app\":\"w\"", "0", NULL);
	seen_init(&s);
	path(coll, NULL, "v1", "configmaps", "watch", NULL, NULL);
	inf = informer_start(coll, "app=w", &s, NULL);
	/* What existed before comes from the LIST. */
	assert_true(seen_has(&s, "add watch/early 0"));

	cm_create(T.c, "watch", "one", "\"app\":\"w\"", "1", NULL);
	seen_wait(&s, "add watch/one 1");
	assert_int_equal(kube_informer_get(inf, "watch/one", &got), 0);
	assert_string_equal(S(got, "data.v"), "1");
	/* By default the cache keeps the object whole. */
	assert_true(json_object_object_get_ex(json_object_object_get(got, "metadata"),
	                                      "managedFields", NULL));
	json_object_put(got);

	cm_set("watch", "one", "2");
	seen_wait(&s, "update watch/one 1->2");
	assert_int_equal(kube_informer_get(inf, "watch/one", &got), 0);
	assert_string_equal(S(got, "data.v"), "2");
	json_object_put(got);

	cm_delete("watch", "one");
	seen_wait(&s, "delete watch/one");
	assert_int_equal(kube_informer_get(inf, "watch/one", &got), -ENOENT);

	assert_int_equal(kube_informer_list(inf, &all, &n_all), 0);
	assert_int_equal(n_all, 1);
	assert_string_equal(all[0]->name, "early");
	assert_string_equal(all[0]->key, "watch/early");
	assert_string_equal(kube_obj_label(all[0], "app"), "w");
	kube_objs_unref(all, n_all);

	kube_informer_stats(inf, &st);
	assert_true(st.synced);
	assert_int_equal(st.lists, 1);
	assert_int_equal(st.events, 3);
	assert_int_equal(st.objects, 1);
	/*
	 * Stopping abandons the idle watch: libcurl polls the stop flag about once a
	 * second. An informer that did not stop would hang here until the test's
	 * timeout; how long it took is printed, not asserted.
	 */
	t0 = now_s();
	kube_informer_destroy(inf);
	fprintf(stderr, "  informer stopped in %.2f s\n", now_s() - t0);
	seen_finish(&s);
}

static void test_informer_is_scoped_by_namespace_and_label(void **state)
{
	struct json_object *got;
	struct kube_informer *inf;
	struct seen s;
	char coll[KANARY_MAX_URL];

	ns_create("scope-a");
	ns_create("scope-b");
	seen_init(&s);
	path(coll, NULL, "v1", "configmaps", "scope-a", NULL, NULL);
	inf = informer_start(coll, "app.kubernetes.io/managed-by=kanary", &s, NULL);

	cm_create(T.c, "scope-b", "other-ns", "\"app.kubernetes.io/managed-by\":\"kanary\"", "x",
	          NULL);
	cm_create(T.c, "scope-a", "no-label", NULL, "x", NULL);
	cm_create(T.c, "scope-a", "mine", "\"app.kubernetes.io/managed-by\":\"kanary\"", "x", NULL);
	seen_wait(&s, "add scope-a/mine x");
	/* The two others were created first; had they matched, they would have come first. */
	assert_int_equal(seen_count(&s), 1);
	kube_informer_destroy(inf);
	seen_finish(&s);

	/* Every namespace: the path without one. And this time without managedFields. */
	seen_init(&s);
	path(coll, NULL, "v1", "configmaps", NULL, NULL, NULL);
	inf = informer_start(coll, "app.kubernetes.io/managed-by=kanary", &s,
	                     &(struct kube_informer_options){.drop_managed_fields = true});
	assert_true(seen_has(&s, "add scope-a/mine x"));
	assert_int_equal(kube_informer_get(inf, "scope-a/mine", &got), 0);
	assert_false(json_object_object_get_ex(json_object_object_get(got, "metadata"),
	                                       "managedFields", NULL));
	json_object_put(got);
	assert_true(seen_has(&s, "add scope-b/other-ns x"));
	assert_false(seen_has(&s, "add scope-a/no-label x"));
	kube_informer_destroy(inf);
	seen_finish(&s);
}

/*
 * A metadata-only informer (client-go's metadata informer): the LIST's items
 * and the watch's objects are PartialObjectMetadata, with labels and
 * resourceVersions but no data.
 */
static void test_metadata_only_informer_gets_no_data(void **state)
{
	const struct kube_informer_options o = {.metadata_only = true};
	struct kube_informer *inf;
	struct json_object *got;
	struct seen s;
	char coll[KANARY_MAX_URL];

	ns_create("meta");
	cm_create(T.c, "meta", "listed", "\"app\":\"m\"", "1", NULL);
	seen_init(&s);
	path(coll, NULL, "v1", "configmaps", "meta", NULL, NULL);
	inf = informer_start(coll, NULL, &s, &o);
	assert_true(seen_has(&s, "add meta/listed -"));
	cm_create(T.c, "meta", "watched", "\"app\":\"m\"", "2", NULL);
	seen_wait(&s, "add meta/watched -");
	cm_set("meta", "watched", "3");
	seen_wait(&s, "update meta/watched -->-");
	assert_int_equal(kube_informer_get(inf, "meta/watched", &got), 0);
	assert_string_equal(S(got, "kind"), "PartialObjectMetadata");
	assert_string_equal(S(got, "apiVersion"), "meta.k8s.io/v1");
	assert_string_equal(S(got, "metadata.labels.app"), "m");
	assert_null(json_object_object_get(got, "data"));
	json_object_put(got);
	assert_int_equal(kube_informer_get(inf, "meta/listed", &got), 0);
	assert_string_equal(S(got, "kind"), "PartialObjectMetadata");
	assert_null(json_object_object_get(got, "data"));
	json_object_put(got);
	kube_informer_destroy(inf);
	seen_finish(&s);

	/* An empty PartialObjectMetadataList has "items": null; it is an empty list all the same. */
	ns_create("meta-empty");
	seen_init(&s);
	path(coll, NULL, "v1", "configmaps", "meta-empty", NULL, NULL);
	inf = informer_start(coll, NULL, &s, &o);
	cm_create(T.c, "meta-empty", "later", NULL, "1", NULL);
	seen_wait(&s, "add meta-empty/later -");
	kube_informer_destroy(inf);
	seen_finish(&s);
}

/* ---- compact records and the Service -> EndpointSlices index ---- */

static void slice_create(const char *ns, const char *name, const char *svc, const char *addr)
{
	struct json_object *o =
	    J("{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
	      "\"metadata\":{\"name\":\"%s\",\"labels\":"
	      "{\"kubernetes.io/service-name\":\"%s\"}},"
	      "\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\","
	      "\"port\":8080}],\"endpoints\":[{\"addresses\":[\"%s\"],"
	      "\"conditions\":{\"ready\":true}}]}",
	      name, svc, addr);
	struct kube_result res;
	char p[KANARY_MAX_URL];

	path(p, "discovery.k8s.io", "v1", "endpointslices", ns, NULL, NULL);
	check(kube_create(T.c, p, o, NULL, &res), &res, "create endpointslice");
	json_object_put(o);
}

/* The keys of the cached slices of Service svc, space-separated. */
static void slices_of(struct kube_informer *inf, const char *svc, char *out, size_t size)
{
	const struct kube_obj **objs = NULL;
	size_t n = 0, len = 0;

	out[0] = '\0';
	assert_int_equal(kube_informer_by_index(inf, KUBE_INDEX_SLICE_SERVICE, svc, &objs, &n), 0);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", i ? " " : "", objs[i]->name);
	kube_objs_unref(objs, n);
}

/* Polls until the slices of svc are want. */
static void slices_wait(struct kube_informer *inf, const char *svc, const char *want)
{
	double until = now_s() + WAIT_S;
	char got[512];

	for (;;) {
		slices_of(inf, svc, got, sizeof(got));
		if (strcmp(got, want) == 0)
			return;
		if (now_s() > until)
			fail_msg("slices of %s: \"%s\", not \"%s\", after %d s", svc, got, want,
			         WAIT_S);
		sleep_ms(50);
	}
}

/*
 * An informer with the EndpointSlice decoder and the Service index, as the
 * webhook and the controller run it: a LIST of one item per page fills it,
 * the watch keeps it, and a slice that changes Service moves in the index.
 */
static void test_informer_decodes_and_indexes_endpoint_slices(void **state)
{
	struct kube_informer_options o = {.decode = kobj_slice_decode, .page_size = 1};
	const struct kobj_slice *sl;
	const struct kube_obj *rec;
	struct kube_informer *inf;
	struct kube_informer_stats st;
	struct json_object *patch;
	struct kube_result res;
	char coll[KANARY_MAX_URL], p[KANARY_MAX_URL];

	ns_create("slices");
	slice_create("slices", "web-1", "web", "10.1.0.1");
	slice_create("slices", "web-2", "web", "10.1.0.2");
	slice_create("slices", "api-1", "api", "10.1.0.3");
	o.indexers[KUBE_INDEX_SLICE_SERVICE] = kube_index_slice_service;
	path(coll, "discovery.k8s.io", "v1", "endpointslices", "slices", NULL, NULL);
	inf = informer_start(coll, NULL, NULL, &o);
	kube_informer_stats(inf, &st);
	assert_int_equal(st.lists, 1);
	assert_int_equal(st.objects, 3);
	slices_wait(inf, "slices/web", "web-1 web-2");
	slices_wait(inf, "slices/api", "api-1");

	/* The record: what resolution reads, and no JSON text. */
	assert_int_equal(kube_informer_get_obj(inf, "slices/web-2", &rec), 0);
	sl = kobj_as_slice(rec);
	assert_non_null(sl);
	assert_null(rec->text);
	assert_string_equal(sl->service, "web");
	assert_int_equal(sl->n_ports, 1);
	assert_int_equal(sl->ports[0].port, 8080);
	assert_int_equal(sl->n_endpoints, 1);
	assert_string_equal(sl->endpoints[0].address, "10.1.0.2");
	assert_true(sl->endpoints[0].ready);

	/* web-2 moves to api: out of one, into the other; the record borrowed stays valid. */
	patch = J("{\"metadata\":{\"labels\":{\"kubernetes.io/service-name\":\"api\"}}}");
	path(p, "discovery.k8s.io", "v1", "endpointslices", "slices", "web-2", NULL);
	check(kube_patch(T.c, p, KUBE_PATCH_MERGE, patch, NULL, &res), &res, "patch slice");
	json_object_put(patch);
	slices_wait(inf, "slices/web", "web-1");
	slices_wait(inf, "slices/api", "api-1 web-2");
	assert_string_equal(sl->service, "web");
	kube_obj_unref(rec);

	slice_create("slices", "web-3", "web", "10.1.0.4");
	slices_wait(inf, "slices/web", "web-1 web-3");
	path(p, "discovery.k8s.io", "v1", "endpointslices", "slices", "web-1", NULL);
	check(kube_delete(T.c, p, NULL, NULL, &res), &res, "delete slice");
	slices_wait(inf, "slices/web", "web-3");
	assert_int_equal(kube_informer_get_obj(inf, "slices/web-1", &rec), -ENOENT);
	assert_int_equal(kube_informer_by_index(inf, 1, "slices/web", NULL, NULL), -EINVAL);
	kube_informer_destroy(inf);
}

static int count_bookmarks(void *ctx, const struct kube_event *ev)
{
	int *n = ctx;

	if (ev->type == KUBE_EVENT_BOOKMARK)
		(*n)++;
	return 0;
}

/* What the writer thread and the watching test share. */
struct writer {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;   /* the watch has ended: stop writing */
	int written; /* 0 once a write succeeded, else the last error */
};

/*
 * ConfigMaps in "elsewhere", with a client of this thread's own, until the
 * watch ends: whenever the watch got going, writes land during it. The wait
 * between writes is on the condition variable, so the end stops it at once.
 */
static void *write_elsewhere(void *arg)
{
	struct writer *w = arg;
	struct kube_client *c;
	bool done = false;

	if (kube_client_create(T.cfg, NULL, &c) < 0)
		return NULL;
	for (int i = 0; !done; i++) {
		char text[128];
		struct json_object *o;
		struct timespec until;
		int r = -ENOMEM;

		/* No cmocka assert here: it must not jump out of another thread. */
		snprintf(text, sizeof(text),
		         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
		         "\"w0-%d\"}}",
		         i);
		o = json_tokener_parse(text);
		if (o)
			r = kube_create(c, "/api/v1/namespaces/elsewhere/configmaps", o, NULL,
			                NULL);

		json_object_put(o);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&w->lock);
		if (w->written != 0)
			w->written = r;
		if (!w->done)
			pthread_cond_timedwait(&w->cond, &w->lock, &until);
		done = w->done;
		pthread_mutex_unlock(&w->lock);
	}
	kube_client_destroy(c);
	return NULL;
}

/*
 * The server ends a watch at timeoutSeconds, sending a bookmark 2 s before
 * when the resourceVersion moved; an informer then watches again from
 * there, without a LIST.
 */
static void test_watch_ends_on_time_with_bookmarks(void **state)
{
	struct kube_watch_options wo = {.bookmarks = true, .timeout_s = 4};
	struct kube_informer_options o = {.watch_timeout_min_s = 3, .watch_timeout_max_s = 4};
	struct kube_informer *inf;
	struct kube_informer_stats st;
	struct json_object *list;
	struct kube_result res;
	struct seen s;
	char coll[KANARY_MAX_URL], rv[KANARY_MAX_RESOURCE_VERSION + 1];
	double t0, until;
	struct writer w = {.written = -1};
	int bookmarks = 0;
	pthread_t writer;

	ns_create("bookmarks");
	ns_create("elsewhere");
	cm_create(T.c, "bookmarks", "a", NULL, "1", NULL);
	path(coll, NULL, "v1", "configmaps", "bookmarks", NULL, NULL);
	check(kube_list(T.c, coll, NULL, &list, &res), &res, "list");
	snprintf(rv, sizeof(rv), "%s", S(list, "metadata.resourceVersion"));
	json_object_put(list);

	/*
	 * A bookmark says "nothing for you up to here", so the server sends one
	 * only when its resourceVersion moved during the watch: a write this
	 * watch does not see, from another thread and client.
	 */
	wo.resource_version = rv;
	t0 = now_s();
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	assert_int_equal(pthread_create(&writer, NULL, write_elsewhere, &w), 0);
	check(kube_watch(T.c, coll, &wo, count_bookmarks, &bookmarks, &res), &res, "watch");
	pthread_mutex_lock(&w.lock);
	w.done = true;
	pthread_cond_signal(&w.cond);
	pthread_mutex_unlock(&w.lock);
	pthread_join(writer, NULL);
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	assert_int_equal(w.written, 0);
	fprintf(stderr, "  watch with timeoutSeconds=4 ended after %.1f s with %d bookmark(s)\n",
	        now_s() - t0, bookmarks);
	/*
	 * The server ended the watch by itself (kube_watch returned 0, nothing here
	 * cancels it), and it ended at timeoutSeconds, not early: the server sends
	 * a bookmark only at the end of a watch's time, 2 s before it. So the
	 * bookmark is the proof, not a clock.
	 */
	assert_true(bookmarks >= 1);

	seen_init(&s);
	inf = informer_start(coll, NULL, &s, &o);
	until = now_s() + WAIT_S;
	for (int i = 1;; i++) {
		char name[16];

		kube_informer_stats(inf, &st);
		if (st.watch_ends >= 2 && st.bookmarks >= 1)
			break;
		assert_true(now_s() < until);
		snprintf(name, sizeof(name), "w%d", i);
		cm_create(T.c, "elsewhere", name, NULL, "1", NULL);
		sleep_ms(500);
	}
	assert_int_equal(st.lists, 1);
	assert_int_equal(st.failures, 0);
	cm_create(T.c, "bookmarks", "b", NULL, "1", NULL);
	seen_wait(&s, "add bookmarks/b 1");
	kube_informer_destroy(inf);
	seen_finish(&s);
}

static const struct kube_informer_options quick_backoff = {
    .backoff_initial_ms = 200,
    .backoff_max_ms = 2000,
};

static void test_watch_survives_apiserver_restart(void **state)
{
	struct kube_informer *inf;
	struct kube_informer_stats st;
	struct seen s;
	char coll[KANARY_MAX_URL];
	double until;

	ns_create("restart");
	cm_create(T.c, "restart", "before", NULL, "1", NULL);
	seen_init(&s);
	path(coll, NULL, "v1", "configmaps", "restart", NULL, NULL);
	inf = informer_start(coll, NULL, &s, &quick_backoff);
	assert_true(seen_has(&s, "add restart/before 1"));

	ctl("stop-apiserver");
	/* Down until the informer has seen it fail, however long that takes. */
	until = now_s() + WAIT_S;
	for (;;) {
		kube_informer_stats(inf, &st);
		if (st.failures >= 1)
			break;
		assert_true(now_s() < until);
		sleep_ms(50);
	}
	ctl("start-apiserver");

	cm_create(T.c, "restart", "after", NULL, "1", NULL);
	cm_set("restart", "before", "2");
	seen_wait(&s, "add restart/after 1");
	seen_wait(&s, "update restart/before 1->2");
	kube_informer_stats(inf, &st);
	fprintf(stderr,
	        "  after restart: %lu lists (%lu after 410), %lu watches, %lu failures, %lu "
	        "backoffs\n",
	        st.lists, st.relists_gone, st.watches, st.failures, st.backoffs);
	assert_true(st.failures >= 1);
	assert_true(st.watches >= 2);
	kube_informer_destroy(inf);
	seen_finish(&s);
}

static int watch_nothing(void *ctx, const struct kube_event *ev)
{
	return 0;
}

/*
 * An object deleted while the informer could not watch (here: behind the
 * API server's back, with etcd compacted) is found by the relist that the
 * 410 forces, and reported deleted with its final state unknown.
 */

/* What kube_list_each handed over: pages, items, the largest page, restarts. */
struct page_count {
	size_t pages, items, largest, restarts;
};

static int count_page(void *ctx, struct json_object *page, bool restart)
{
	struct page_count *pc = ctx;
	size_t n = json_object_array_length(json_object_object_get(page, "items"));

	if (restart) {
		pc->restarts++;
		pc->pages = pc->items = pc->largest = 0;
	}
	pc->pages++;
	pc->items += n;
	if (n > pc->largest)
		pc->largest = n;
	return 0;
}

static void test_relist_after_410_reports_what_vanished(void **state)
{
	struct kube_watch_options wo = {.timeout_s = 5};
	struct kube_list_options lo = {0};
	struct kube_request req = {.method = KUBE_GET, .query = "limit=1"};
	struct kube_informer *inf;
	struct kube_informer_stats st;
	struct json_object *got, *page;
	struct kube_result res;
	struct seen s;
	char coll[KANARY_MAX_URL], rv[KANARY_MAX_RESOURCE_VERSION + 1], cont[KANARY_MAX_CONTINUE];

	ns_create("gone");
	cm_create(T.c, "gone", "keep", NULL, "1", NULL);
	cm_create(T.c, "gone", "vanish", NULL, "1", NULL);
	seen_init(&s);
	path(coll, NULL, "v1", "configmaps", "gone", NULL, NULL);
	inf = informer_start(coll, NULL, &s, &quick_backoff);
	assert_true(seen_has(&s, "add gone/keep 1"));
	assert_true(seen_has(&s, "add gone/vanish 1"));

	/* A first page and its continue token, and a resourceVersion from before. */
	req.path = coll;
	check(kube_request(T.c, &req, &page, &res), &res, "first page");
	snprintf(cont, sizeof(cont), "%s", S(page, "metadata.continue"));
	snprintf(rv, sizeof(rv), "%s", S(page, "metadata.resourceVersion"));
	json_object_put(page);

	ctl("stop-apiserver");
	ctl("etcd-delete /registry/configmaps/gone/vanish");
	ctl("etcd-compact");
	ctl("start-apiserver");

	seen_wait(&s, "delete gone/vanish (final state unknown)");
	kube_informer_stats(inf, &st);
	assert_true(st.relists_gone >= 1);
	assert_int_equal(kube_informer_get(inf, "gone/keep", &got), 0);
	json_object_put(got);
	assert_int_equal(kube_informer_get(inf, "gone/vanish", &got), -ENOENT);
	/* And it goes on watching. */
	cm_create(T.c, "gone", "later", NULL, "1", NULL);
	seen_wait(&s, "add gone/later 1");
	kube_informer_destroy(inf);
	seen_finish(&s);

	/* The old resourceVersion is Gone for a plain watch too. */
	wo.resource_version = rv;
	assert_int_equal(kube_watch(T.c, coll, &wo, watch_nothing, NULL, &res), -ESTALE);
	assert_int_equal(res.reason, KUBE_REASON_GONE);
	fprintf(stderr, "  watch from %s: %d %s\n", rv, res.http_status, res.message);

	/*
	 * An expired continue token: the LIST starts over from the start, still
	 * page by page (never the whole collection in one answer).
	 */
	lo.continue_token = cont;
	lo.page_size = 1;
	check(kube_list(T.c, coll, &lo, &got, &res), &res, "list from an expired token");
	assert_int_equal(json_object_array_length(json_object_object_get(got, "items")), 2);
	json_object_put(got);
	{
		struct page_count pc = {0};

		check(kube_list_each(T.c, coll, &lo, count_page, &pc, &res), &res,
		      "list page by page from an expired token");
		assert_int_equal(pc.restarts, 1);
		assert_int_equal(pc.items, 2);
		assert_int_equal(pc.pages, 2);
		assert_int_equal(pc.largest, 1);
	}
}

/* ---- credentials ---- */

static void rbac_reader(const char *ns, const char *sa)
{
	struct json_object *o;
	struct kube_result res;
	char p[KANARY_MAX_URL];

	path(p, NULL, "v1", "serviceaccounts", ns, NULL, NULL);
	o = J("{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":\"%s\"}}",
	      sa);
	check(kube_create(T.c, p, o, NULL, &res), &res, "create serviceaccount");
	json_object_put(o);
	if (strcmp(sa, "reader") != 0)
		return;
	path(p, "rbac.authorization.k8s.io", "v1", "roles", ns, NULL, NULL);
	o = J("{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"Role\","
	      "\"metadata\":{\"name\":\"cm-reader\"},\"rules\":[{\"apiGroups\":[\"\"],"
	      "\"resources\":[\"configmaps\"],\"verbs\":[\"get\",\"list\",\"watch\"]}]}");
	check(kube_create(T.c, p, o, NULL, &res), &res, "create role");
	json_object_put(o);
	path(p, "rbac.authorization.k8s.io", "v1", "rolebindings", ns, NULL, NULL);
	o = J("{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"RoleBinding\","
	      "\"metadata\":{\"name\":\"cm-reader\"},\"roleRef\":{\"apiGroup\":"
	      "\"rbac.authorization.k8s.io\",\"kind\":\"Role\",\"name\":\"cm-reader\"},"
	      "\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"%s\",\"namespace\":\"%s\"}]}",
	      sa, ns);
	check(kube_create(T.c, p, o, NULL, &res), &res, "create rolebinding");
	json_object_put(o);
}

/* A fresh bound token for the ServiceAccount (TokenRequest). Ownership: caller frees. */
static char *sa_token(const char *ns, const char *sa)
{
	struct json_object *o, *got;
	struct kube_result res;
	char p[KANARY_MAX_URL];
	char *token;

	path(p, NULL, "v1", "serviceaccounts", ns, sa, "token");
	o = J("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\","
	      "\"spec\":{\"expirationSeconds\":600}}");
	check(kube_create(T.c, p, o, &got, &res), &res, "token request");
	token = strdup(S(got, "status.token"));
	json_object_put(got);
	json_object_put(o);
	return token;
}

/* The in-cluster configuration, with the token file rewritten under a running client. */
static void test_token_file_rewritten_under_running_client(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg;
	struct kube_client *c;
	struct json_object *got;
	struct kube_result res;
	char sa_dir[600], file[700], cmd[1400], coll[KANARY_MAX_URL];
	const char *port;
	char *token;
	unsigned long reads;

	ns_create("rotate");
	rbac_reader("rotate", "reader");
	cm_create(T.c, "rotate", "cm", NULL, "1", NULL);

	snprintf(sa_dir, sizeof(sa_dir), "%s/serviceaccount", T.tmp);
	assert_int_equal(mkdir(sa_dir, 0700), 0);
	snprintf(cmd, sizeof(cmd), "cp '%s/pki/ca.crt' '%s/ca.crt'", T.cluster_dir, sa_dir);
	assert_int_equal(system(cmd), 0);
	snprintf(file, sizeof(file), "%s/namespace", sa_dir);
	write_text(file, "rotate");
	snprintf(file, sizeof(file), "%s/token", sa_dir);
	token = sa_token("rotate", "reader");
	write_text(file, token);
	free(token);

	port = strrchr(T.api_server, ':');
	assert_non_null(port);
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port + 1, 1);
	assert_int_equal(kube_config_in_cluster(sa_dir, &cfg, &err), 0);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	assert_string_equal(cfg->namespace, "rotate");
	assert_int_equal(kube_client_create(cfg, NULL, &c), 0);

	path(coll, NULL, "v1", "configmaps", "rotate", NULL, NULL);
	check(kube_list(c, coll, NULL, &got, &res), &res, "list with the first token");
	json_object_put(got);
	reads = cfg->token_reads;

	/*
	 * The file now holds a token the server refuses: the first request once
	 * the file is looked at again uses it. A request looks at most once per
	 * KUBE_TOKEN_CHECK_MS; the last look is moved back by that much rather
	 * than waited for.
	 */
	replace_text(file, "expired-or-revoked");
	cfg->token_checked_ms -= KUBE_TOKEN_CHECK_MS;
	assert_int_equal(kube_list(c, coll, NULL, &got, &res), -EPERM);
	assert_int_equal(res.reason, KUBE_REASON_UNAUTHORIZED);
	assert_int_equal(cfg->token_reads, reads + 1);

	/* And a new valid token, rewritten in place this time. */
	token = sa_token("rotate", "reader");
	write_text(file, token);
	free(token);
	cfg->token_checked_ms -= KUBE_TOKEN_CHECK_MS;
	check(kube_list(c, coll, NULL, &got, &res), &res, "list with the rotated token");
	json_object_put(got);
	assert_int_equal(cfg->token_reads, reads + 2);

	/* The reader may not write: Forbidden, not Unauthorized. */
	cm_create(T.c, "rotate", "cm2", NULL, "1", NULL);
	path(coll, NULL, "v1", "configmaps", "rotate", "cm2", NULL);
	assert_int_equal(kube_delete(c, coll, NULL, NULL, &res), -EACCES);
	assert_int_equal(res.reason, KUBE_REASON_FORBIDDEN);
	kube_client_destroy(c);
	kube_config_destroy(cfg);
}

static void test_restricted_service_account_gets_forbidden(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg;
	struct kube_client *c;
	struct json_object *got;
	struct kube_result res;
	char file[600], cmd[1400], coll[KANARY_MAX_URL];
	const char *p = file;

	ns_create("locked");
	rbac_reader("locked", "nobody");
	snprintf(file, sizeof(file), "%s/nobody.kubeconfig", T.tmp);
	snprintf(cmd, sizeof(cmd),
	         "'%s/tests/cluster/sa-kubeconfig' -n locked -o '%s' "
	         "--duration 10m nobody >&2",
	         T.root, file);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(kube_config_from_kubeconfig(&p, 1, NULL, &cfg, &err), 0);
	assert_string_equal(cfg->namespace, "locked");
	assert_int_equal(kube_client_create(cfg, NULL, &c), 0);

	path(coll, NULL, "v1", "configmaps", "locked", NULL, NULL);
	assert_int_equal(kube_list(c, coll, NULL, &got, &res), -EACCES);
	assert_int_equal(res.reason, KUBE_REASON_FORBIDDEN);
	assert_int_equal(res.http_status, 403);
	assert_non_null(strstr(res.message, "system:serviceaccount:locked:nobody"));
	assert_non_null(strstr(res.message, "forbidden"));
	kube_client_destroy(c);
	kube_config_destroy(cfg);
}

/* ---- events ---- */

static struct json_object *events_about(const char *ns, const char *name)
{
	char sel[128], coll[KANARY_MAX_URL];
	struct kube_list_options lo = {.field_selector = sel};
	struct kube_result res;
	struct json_object *list;

	snprintf(sel, sizeof(sel), "involvedObject.name=%s", name);
	path(coll, NULL, "v1", "events", ns, NULL, NULL);
	check(kube_list(T.c, coll, &lo, &list, &res), &res, "list events");
	return list;
}

static struct json_object *event_with_reason(struct json_object *list, const char *reason)
{
	struct json_object *items = json_object_object_get(list, "items");

	for (size_t i = 0; i < json_object_array_length(items); i++)
		if (strcmp(S(json_object_array_get_idx(items, i), "reason"), reason) == 0)
			return json_object_array_get_idx(items, i);
	return NULL;
}

static void test_events_aggregate_repeats(void **state)
{
	struct kube_recorder *rec;
	struct kube_recorder_stats st;
	struct json_object *cm, *list, *ev;
	struct kube_result res;
	char p[KANARY_MAX_URL];
	int r = 0;

	ns_create("events");
	cm_create(T.c, "events", "subject", NULL, "1", &cm);
	/* A created object comes back without kind; the recorder needs it. */
	json_object_object_add(cm, "kind", json_object_new_string("ConfigMap"));
	json_object_object_add(cm, "apiVersion", json_object_new_string("v1"));
	assert_int_equal(
	    kube_recorder_create(T.cfg,
	                         &(struct kube_recorder_options){.component = "kanary-kube-test",
	                                                         .host = "test-host"},
	                         &rec),
	    0);
	assert_int_equal(kube_recorder_start(rec), 0);

	for (int i = 0; i < 3; i++)
		assert_int_equal(kube_record(rec, cm, KUBE_RECORD_WARNING, "InvalidSpec",
		                             "spec.routes[%d].weight: must be 0..100", 1),
		                 0);
	assert_int_equal(kube_record(rec, cm, KUBE_RECORD_NORMAL, "Rendered", "config %s", "abc"),
	                 0);
	/* Queued; the recorder's thread writes them. */
	assert_int_equal(kube_recorder_flush(rec, 60000), 0);

	list = events_about("events", "subject");
	assert_int_equal(json_object_array_length(json_object_object_get(list, "items")), 2);
	ev = event_with_reason(list, "InvalidSpec");
	assert_non_null(ev);
	assert_int_equal(json_object_get_int(json_object_object_get(ev, "count")), 3);
	assert_string_equal(S(ev, "type"), "Warning");
	assert_string_equal(S(ev, "message"), "spec.routes[1].weight: must be 0..100");
	assert_string_equal(S(ev, "source.component"), "kanary-kube-test");
	assert_string_equal(S(ev, "source.host"), "test-host");
	assert_string_equal(S(ev, "involvedObject.kind"), "ConfigMap");
	assert_string_equal(S(ev, "involvedObject.uid"), S(cm, "metadata.uid"));
	assert_true(strcmp(S(ev, "lastTimestamp"), S(ev, "firstTimestamp")) >= 0);
	ev = event_with_reason(list, "Rendered");
	assert_int_equal(json_object_get_int(json_object_object_get(ev, "count")), 1);
	assert_string_equal(S(ev, "type"), "Normal");

	/* The Event expired or was deleted: the next repeat starts a new one. */
	path(p, NULL, "v1", "events", "events",
	     S(event_with_reason(list, "InvalidSpec"), "metadata.name"), NULL);
	check(kube_delete(T.c, p, NULL, NULL, &res), &res, "delete event");
	json_object_put(list);
	assert_int_equal(kube_record(rec, cm, KUBE_RECORD_WARNING, "InvalidSpec",
	                             "spec.routes[%d].weight: must be 0..100", 1),
	                 0);
	assert_int_equal(kube_recorder_flush(rec, 60000), 0);
	list = events_about("events", "subject");
	ev = event_with_reason(list, "InvalidSpec");
	assert_int_equal(json_object_get_int(json_object_object_get(ev, "count")), 1);
	json_object_put(list);

	kube_recorder_stats(rec, &st);
	assert_int_equal(st.created, 3);
	assert_int_equal(st.patched, 2);

	/* The spam filter: 25 per object, then dropped (5 used above). */
	for (int i = 5; i < KUBE_EVENT_BURST && r == 0; i++)
		r = kube_record(rec, cm, KUBE_RECORD_NORMAL, "Burst", "event %d", i);
	assert_int_equal(r, 0);
	assert_int_equal(kube_record(rec, cm, KUBE_RECORD_NORMAL, "Burst", "one too many"), 0);
	assert_int_equal(kube_recorder_flush(rec, 60000), 0);
	kube_recorder_stats(rec, &st);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.queue_dropped, 0);
	assert_int_equal(st.queued, 0);

	/* An object without a kind cannot be named in an Event. */
	json_object_object_del(cm, "kind");
	assert_int_equal(kube_record(rec, cm, KUBE_RECORD_NORMAL, "X", "y"), -EINVAL);
	json_object_put(cm);
	kube_recorder_destroy(rec);
}

/* ---- endurance ---- */

/*
 * Bytes allocated, over every arena. A watch being set up holds tens of
 * kilobytes for a moment (TLS, buffers), so take the least of a few samples:
 * what stays between watches.
 */
static size_t heap_in_use(void)
{
	size_t least = SIZE_MAX;

	for (int i = 0; i < 25; i++) {
		struct mallinfo2 mi = mallinfo2();

		if (mi.uordblks + mi.hblkhd < least)
			least = mi.uordblks + mi.hblkhd;
		sleep_ms(2);
	}
	return least;
}

/*
 * 1,000 watch reconnects: each watch is cut by our own deadline, which is an
 * ordinary end of a watch, so each is a full new TLS connection and request.
 * Leaks are for valgrind and LeakSanitizer to find; the heap in use is
 * printed every tenth of the way, to show it stays flat once warm.
 */
static void test_watch_reconnects_1000_times_without_leaking(void **state)
{
	const char *env = getenv("KANARY_KUBE_RECONNECT_DEADLINE_MS");
	struct kube_informer_options o = {
	    .watch_deadline_ms = env ? strtol(env, NULL, 10) : 40,
	    .backoff_initial_ms = 1,
	    .backoff_max_ms = 1,
	};
	struct kube_informer *inf;
	struct kube_informer_stats st;
	struct seen s;
	char coll[KANARY_MAX_URL];
	size_t heap_end;
	double t0 = now_s(), until = t0 + 900;
	const char *n_env = getenv("KANARY_KUBE_RECONNECTS");
	int reconnects = n_env ? (int)strtol(n_env, NULL, 10) : 1000;
	size_t checkpoints[10] = {0};
	unsigned long next_checkpoint = 1;

	ns_create("reconnect");
	cm_create(T.c, "reconnect", "steady", NULL, "1", NULL);
	seen_init(&s);
	path(coll, NULL, "v1", "configmaps", "reconnect", NULL, NULL);
	inf = informer_start(coll, NULL, &s, &o);
	for (;;) {
		kube_informer_stats(inf, &st);
		if (next_checkpoint < 10 &&
		    st.watches >= next_checkpoint * (unsigned long)reconnects / 10)
			checkpoints[next_checkpoint++] = heap_in_use();
		if (st.watches >= (unsigned long)reconnects + 1)
			break;
		if (now_s() > until)
			fail_msg("only %lu watches in 900 s", st.watches);
		sleep_ms(20);
	}
	heap_end = heap_in_use();
	/* Still watching after all that. */
	cm_set("reconnect", "steady", "2");
	seen_wait(&s, "update reconnect/steady 1->2");
	kube_informer_stats(inf, &st);
	fprintf(stderr, "  %lu watches (%lu ended by the deadline, %lu failed) in %.1f s\n",
	        st.watches, st.watch_ends, st.failures, now_s() - t0);
	/* Under valgrind mallinfo2 sees valgrind's allocator, not ours: nothing to show. */
	if (heap_end > 0) {
		for (int i = 1; i < 10; i++)
			fprintf(stderr, "  heap in use after %d watches: %zu bytes\n",
			        i * reconnects / 10, checkpoints[i]);
		fprintf(stderr, "  heap in use after %d watches: %zu bytes\n", reconnects,
		        heap_end);
	}
	assert_int_equal(st.lists, 1);
	kube_informer_destroy(inf);
	seen_finish(&s);
}

/* ---- setup ---- */

static int group_setup(void **state)
{
	struct kube_config_err err = {{0}};
	static struct kube_logger logger = {log_to_stderr, NULL};

	T.ctl = getenv("KANARY_KUBE_CTL");
	T.root = getenv("KANARY_SOURCE_ROOT");
	T.cluster_dir = getenv("KANARY_CLUSTER_DIR");
	T.api_server = getenv("KANARY_API_SERVER");
	if (!T.ctl || !T.root || !T.cluster_dir || !T.api_server || !getenv("KUBECONFIG")) {
		fprintf(stderr, "run me through tests/kube/run-cluster-tests\n");
		return -1;
	}
	snprintf(T.tmp, sizeof(T.tmp), "/tmp/kanary-kube-cluster.XXXXXX");
	if (!mkdtemp(T.tmp))
		return -1;
	if (kube_global_init() < 0 || kube_config_load(NULL, NULL, &T.cfg, &err) < 0) {
		fprintf(stderr, "config: %s\n", err.msg);
		return -1;
	}
	kube_config_set_logger(T.cfg, &logger);
	return kube_client_create(T.cfg, &(struct kube_client_options){.component = "kube-test"},
	                          &T.c);
}

static int group_teardown(void **state)
{
	char cmd[128];

	kube_client_destroy(T.c);
	kube_config_destroy(T.cfg);
	kube_global_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.tmp);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_configmap_crud_round_trip),
	    cmocka_unit_test(test_kanary_crud_and_status_subresource),
	    cmocka_unit_test(test_server_side_apply_is_idempotent),
	    cmocka_unit_test(test_stale_update_is_a_conflict),
	    cmocka_unit_test(test_list_follows_every_page),
	    cmocka_unit_test(test_connection_reuse_and_user_agent),
	    cmocka_unit_test(test_transport_timeout_tls_and_auth_errors),
	    cmocka_unit_test(test_watch_sees_create_update_delete),
	    cmocka_unit_test(test_informer_is_scoped_by_namespace_and_label),
	    cmocka_unit_test(test_informer_decodes_and_indexes_endpoint_slices),
	    cmocka_unit_test(test_metadata_only_informer_gets_no_data),
	    cmocka_unit_test(test_watch_ends_on_time_with_bookmarks),
	    cmocka_unit_test(test_watch_survives_apiserver_restart),
	    cmocka_unit_test(test_relist_after_410_reports_what_vanished),
	    cmocka_unit_test(test_token_file_rewritten_under_running_client),
	    cmocka_unit_test(test_restricted_service_account_gets_forbidden),
	    cmocka_unit_test(test_events_aggregate_repeats),
	    cmocka_unit_test(test_watch_reconnects_1000_times_without_leaking),
	};

	/* KANARY_KUBE_TEST_FILTER=test_watch_* runs a subset (a cmocka glob). */
	if (getenv("KANARY_KUBE_TEST_FILTER"))
		cmocka_set_test_filter(getenv("KANARY_KUBE_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
