/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of apply_child: lookup, needs-apply and apply, on fabricated objects. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/applied.h"
#include "common/kobj_child.h"
#include "controller/apply.h"

#define UID "11111111-2222-3333-4444-555555555555"

/* A fake cluster: one cached object per kind at most, and a record of the applies. */
struct fake {
	struct json_object *cache[CHILD_N]; /* the cached child, or NULL */
	bool may_write;
	int apply_result; /* 0, or what apply fails with */
	int http_status;  /* the failure's HTTP status */
	int applies;
	bool last_force;
	long next_rv;
};

static int fake_lookup(void *ctx, enum child i, const char *ns, const char *name,
                       struct json_object **ret)
{
	struct fake *f = ctx;
	const char *have = NULL;
	struct json_object *md;

	assert_string_equal(ns, "shop");
	if (f->cache[i] && json_object_object_get_ex(f->cache[i], "metadata", &md))
		have = json_object_get_string(json_object_object_get(md, "name"));
	*ret = have && strcmp(have, name) == 0 ? json_object_get(f->cache[i]) : NULL;
	return 0;
}

static bool fake_may_write(void *ctx)
{
	struct fake *f = ctx;

	return f->may_write;
}

/* What the API server answers: want with a new resourceVersion and a default added. */
static int fake_apply(void *ctx, enum child i, const char *ns, const char *name,
                      struct json_object *want, bool force, struct json_object **ret_got,
                      struct apply_failure *ret_fail)
{
	struct fake *f = ctx;
	struct json_object *got = NULL, *md;
	char rv[32];

	f->applies++;
	f->last_force = force;
	if (f->apply_result < 0) {
		ret_fail->retry_after_s = 7;
		ret_fail->http_status = f->http_status;
		ret_fail->reason = "Conflict";
		snprintf(ret_fail->message, sizeof(ret_fail->message), "someone else's field");
		return f->apply_result;
	}
	assert_int_equal(json_object_deep_copy(want, &got, NULL), 0);
	json_object_object_get_ex(got, "metadata", &md);
	snprintf(rv, sizeof(rv), "%ld", ++f->next_rv);
	json_object_object_add(md, "resourceVersion", json_object_new_string(rv));
	json_object_object_add(got, "defaultedByServer", json_object_new_boolean(true));
	*ret_got = got;
	return 0;
}

struct world {
	struct fake f;
	struct apply_io io;
	struct child_memo memo[CHILD_N];
	char memo_hash[APPLY_HASH_SIZE];
	struct apply_run run;
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	w->f.may_write = true;
	w->f.next_rv = 100;
	w->io = (struct apply_io){
	    .lookup = fake_lookup, .may_write = fake_may_write, .apply = fake_apply, .ctx = &w->f};
	apply_run_init(&w->run);
	w->run.key = "shop/myapp";
	w->run.ns = "shop";
	w->run.uid = UID;
	w->run.hash = "bbbbbbbb";
	w->run.memo = w->memo;
	w->run.memo_hash = w->memo_hash;
	w->run.io = &w->io;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	for (size_t i = 0; i < CHILD_N; i++)
		json_object_put(w->f.cache[i]);
	apply_run_finish(&w->run);
	for (size_t i = 0; i < CHILD_N; i++)
		apply_memo_clear(&w->memo[i]);
	free(w);
	return 0;
}

static struct json_object *parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	return o;
}

#define OWNER_REF                                                                                  \
	"\"ownerReferences\":[{\"apiVersion\":\"kanary.pyxida.io/v1alpha1\",\"kind\":\"Kanary\","  \
	"\"name\":\"myapp\",\"uid\":\"" UID "\",\"controller\":true}]"

static struct json_object *want_configmap(void)
{
	return parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
	             "\"myapp-haproxy-bbbbbbbb\",\"namespace\":\"shop\"," OWNER_REF "},"
	             "\"data\":{\"haproxy.cfg\":\"global\\n\"}}");
}

static struct json_object *want_deployment(const char *hash)
{
	char text[1024];

	snprintf(text, sizeof(text),
	         "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
	         "\"myapp-haproxy\",\"namespace\":\"shop\"," OWNER_REF "},\"spec\":{\"replicas\":2,"
	         "\"template\":{\"metadata\":{\"annotations\":{\"kanary.pyxida.io/config-hash\":"
	         "\"%s\"}}}}}",
	         hash);
	return parse(text);
}

static struct json_object *want_service(void)
{
	return parse("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"myapp\","
	             "\"namespace\":\"shop\"," OWNER_REF "},\"spec\":{\"ports\":[{\"port\":80}]}}");
}

/* Puts the server's answer to the last apply in the cache, as the watch would. */
static void cache_answer(struct world *w, enum child i, struct json_object *want)
{
	struct json_object *got = NULL, *md;
	char rv[32];

	json_object_put(w->f.cache[i]);
	assert_int_equal(json_object_deep_copy(want, &got, NULL), 0);
	json_object_object_get_ex(got, "metadata", &md);
	snprintf(rv, sizeof(rv), "%ld", w->f.next_rv);
	json_object_object_add(md, "resourceVersion", json_object_new_string(rv));
	w->f.cache[i] = got;
}

static void apply_child_creates_what_is_missing_without_force(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_configmap();

	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), 0);
	assert_int_equal(w->f.applies, 1);
	assert_false(w->f.last_force);
	assert_string_equal(w->memo[CHILD_CONFIGMAP].name, "myapp-haproxy-bbbbbbbb");
	assert_true(w->memo[CHILD_CONFIGMAP].rv_before == apply_rv_parse(""));
	assert_true(w->memo[CHILD_CONFIGMAP].rv_after == apply_rv_parse("101"));
	json_object_put(want);
}

static void apply_child_skips_its_own_write_seen_or_not(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_configmap();

	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), 0);
	/* The cache has not seen the write yet: still absent, and the memo says it is ours. */
	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), 0);
	assert_int_equal(w->f.applies, 1);
	/* The cache has it now, at the version our apply returned. */
	cache_answer(w, CHILD_CONFIGMAP, want);
	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), 0);
	assert_int_equal(w->f.applies, 1);
	json_object_put(want);
}

static void apply_child_skips_an_owned_superset(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_configmap();

	/* Written by an earlier process: no memo, but every wanted field is there. */
	cache_answer(w, CHILD_CONFIGMAP, want);
	json_object_object_add(w->f.cache[CHILD_CONFIGMAP], "immutable",
	                       json_object_new_boolean(true));
	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), 0);
	assert_int_equal(w->f.applies, 0);
	json_object_put(want);
}

/*
 * A cached Deployment as its informer keeps it: metadata, what reconcile
 * reads, and the digest of what we last applied (digest_of_want: the one
 * of want, else another).
 */
static struct json_object *reduced_deployment(struct json_object *want, bool digest_of_want)
{
	struct json_object *o =
	    parse("{\"metadata\":{\"name\":\"myapp-haproxy\",\"namespace\":\"shop\","
	          "\"resourceVersion\":\"42\"," OWNER_REF "},\"spec\":{\"replicas\":2}}");
	char hex[65];

	assert_int_equal(applied_digest_want(want, hex), 0);
	if (!digest_of_want)
		hex[0] = hex[0] == '0' ? '1' : '0';
	json_object_object_add(o, KOBJ_CHILD_APPLIED, json_object_new_string(hex));
	return o;
}

static void apply_child_trusts_the_applied_digest_of_a_reduced_child(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_deployment("bbbbbbbb");

	/*
	 * Written by an earlier process: no memo, and the record holds no
	 * template: only the digest tells it is what we would apply.
	 */
	w->f.cache[CHILD_DEPLOYMENT] = reduced_deployment(want, true);
	assert_int_equal(apply_child(&w->run, CHILD_DEPLOYMENT, want), 0);
	assert_int_equal(w->f.applies, 0);
	assert_false(w->run.rolled);
	/* Someone took a field of ours since: the digest differs, it is taken back. */
	json_object_put(w->f.cache[CHILD_DEPLOYMENT]);
	w->f.cache[CHILD_DEPLOYMENT] = reduced_deployment(want, false);
	assert_int_equal(apply_child(&w->run, CHILD_DEPLOYMENT, want), 0);
	assert_int_equal(w->f.applies, 1);
	assert_true(w->f.last_force);
	assert_true(w->memo[CHILD_DEPLOYMENT].rv_before == apply_rv_parse("42"));
	json_object_put(want);
}

static void apply_child_takes_back_a_changed_owned_child_with_force(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_service(), *spec, *ports;

	cache_answer(w, CHILD_SERVICE, want);
	json_object_object_get_ex(w->f.cache[CHILD_SERVICE], "spec", &spec);
	json_object_object_get_ex(spec, "ports", &ports);
	json_object_object_add(json_object_array_get_idx(ports, 0), "port",
	                       json_object_new_int(81));
	assert_int_equal(apply_child(&w->run, CHILD_SERVICE, want), 0);
	assert_int_equal(w->f.applies, 1);
	assert_true(w->f.last_force);
	assert_true(w->memo[CHILD_SERVICE].rv_before == apply_rv_parse("100"));
	assert_string_equal(w->run.conflict, "");
	json_object_put(want);
}

static void apply_child_leaves_a_foreign_configmap_and_retries(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_configmap();

	w->f.cache[CHILD_CONFIGMAP] = parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
	                                    "\"metadata\":{\"name\":\"myapp-haproxy-bbbbbbbb\","
	                                    "\"resourceVersion\":\"9\"}}");
	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), -EEXIST);
	assert_int_equal(w->f.applies, 0);
	/* Someone else's: a permanent conflict, named. */
	assert_string_equal(w->run.failed_reason, APPLY_REASON_CONFLICT);
	assert_string_equal(w->run.failed,
	                    "ConfigMap myapp-haproxy-bbbbbbbb exists and is not controlled by this "
	                    "Kanary; it is left alone until it is deleted or handed over");
	json_object_put(want);
}

static void apply_child_waits_for_the_collector_on_an_earlier_kanarys_child(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_configmap();

	w->f.cache[CHILD_CONFIGMAP] =
	    parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
	          "\"myapp-haproxy-bbbbbbbb\",\"resourceVersion\":\"9\",\"ownerReferences\":[{"
	          "\"apiVersion\":\"kanary.pyxida.io/v1alpha1\",\"kind\":\"Kanary\",\"name\":"
	          "\"myapp\",\"uid\":\"00000000-0000-0000-0000-000000000000\",\"controller\":"
	          "true}]}}");
	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), -EEXIST);
	assert_int_equal(w->f.applies, 0);
	assert_null(w->run.failed_reason);
	assert_non_null(strstr(w->run.failed, "earlier Kanary"));
	json_object_put(want);
}

static void apply_child_tells_permanent_failures_from_transient_ones(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_configmap();
	const struct {
		int status;
		const char *reason;
	} cases[] = {
	    {409, APPLY_REASON_CONFLICT},
	    {403, APPLY_REASON_FORBIDDEN},
	    {422, APPLY_REASON_INVALID},
	    {400, APPLY_REASON_INVALID},
	    {500, NULL},
	    {503, NULL},
	    {429, NULL},
	    {0, NULL},
	    {401, NULL},
	};

	w->f.apply_result = -EIO;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		apply_run_init(&w->run);
		w->f.http_status = cases[i].status;
		assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), -EIO);
		if (cases[i].reason)
			assert_string_equal(w->run.failed_reason, cases[i].reason);
		else
			assert_null(w->run.failed_reason);
		assert_string_equal(w->run.failed,
		                    "cannot apply ConfigMap myapp-haproxy-bbbbbbbb: Conflict: "
		                    "someone else's field");
	}
	assert_true(apply_is_failure_reason("ApplyForbidden"));
	assert_false(apply_is_failure_reason("ServiceConflict"));
	assert_false(apply_is_failure_reason(NULL));
	json_object_put(want);
}

static void apply_child_reports_a_foreign_service_as_a_conflict(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_service();

	w->f.cache[CHILD_SERVICE] = parse("{\"apiVersion\":\"v1\",\"kind\":\"Service\","
	                                  "\"metadata\":{\"name\":\"myapp\",\"resourceVersion\":"
	                                  "\"9\"}}");
	assert_int_equal(apply_child(&w->run, CHILD_SERVICE, want), 0);
	assert_int_equal(w->f.applies, 0);
	assert_non_null(strstr(w->run.conflict, "Service myapp exists and is not owned"));
	json_object_put(want);
}

static void apply_child_reports_a_refused_new_service_as_a_conflict(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_service();

	w->f.apply_result = -EBUSY;
	assert_int_equal(apply_child(&w->run, CHILD_SERVICE, want), 0);
	assert_int_equal(w->f.applies, 1);
	assert_non_null(strstr(w->run.conflict, "managed by someone else"));
	assert_null(w->memo[CHILD_SERVICE].name);
	json_object_put(want);
}

static void apply_child_passes_other_failures_on_with_retry_after(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_configmap();

	w->f.apply_result = -EBUSY;
	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), -EBUSY);
	assert_int_equal(w->run.retry_after_s, 7);
	assert_string_equal(w->run.conflict, "");
	assert_null(w->memo[CHILD_CONFIGMAP].name);
	json_object_put(want);
}

static void apply_child_writes_nothing_when_it_may_not(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_configmap();

	w->f.may_write = false;
	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), -ECANCELED);
	assert_int_equal(w->f.applies, 0);
	json_object_put(want);
}

static void apply_child_tells_a_deployment_rollout(void **state)
{
	struct world *w = *state;
	struct json_object *old = want_deployment("aaaaaaaa"), *want = want_deployment("bbbbbbbb");

	cache_answer(w, CHILD_DEPLOYMENT, old);
	assert_int_equal(apply_child(&w->run, CHILD_DEPLOYMENT, want), 0);
	assert_int_equal(w->f.applies, 1);
	assert_true(w->run.rolled);
	assert_string_equal(w->run.rolled_from, "aaaaaaaa");
	assert_string_equal(w->memo_hash, "bbbbbbbb");
	/* The freshest view is the server's answer to the apply. */
	assert_non_null(w->run.deployment);
	assert_non_null(json_object_object_get(w->run.deployment, "defaultedByServer"));
	assert_string_equal(apply_template_hash(w->run.deployment), "bbbbbbbb");
	json_object_put(old);
	json_object_put(want);
}

static void apply_child_keeps_the_cached_deployment_when_nothing_changes(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_deployment("bbbbbbbb");

	cache_answer(w, CHILD_DEPLOYMENT, want);
	assert_int_equal(apply_child(&w->run, CHILD_DEPLOYMENT, want), 0);
	assert_int_equal(w->f.applies, 0);
	assert_false(w->run.rolled);
	assert_ptr_equal(w->run.deployment, w->f.cache[CHILD_DEPLOYMENT]);
	json_object_put(want);
}

static void apply_child_refuses_an_object_without_a_name(void **state)
{
	struct world *w = *state;
	struct json_object *want = parse("{\"kind\":\"ConfigMap\",\"metadata\":{}}");

	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), -EINVAL);
	assert_int_equal(w->f.applies, 0);
	json_object_put(want);
}

static void apply_child_kind_knows_the_four_kinds(void **state)
{
	enum child c;

	assert_true(apply_child_kind("Deployment", &c));
	assert_int_equal(c, CHILD_DEPLOYMENT);
	assert_true(apply_child_kind("PodDisruptionBudget", &c));
	assert_int_equal(c, CHILD_PDB);
	assert_string_equal(apply_child_def(CHILD_PDB)->resource, "poddisruptionbudgets");
	assert_false(apply_child_kind("Secret", &c));
	assert_false(apply_child_kind(NULL, &c));
}

/*
 * The ConfigMap cache is metadata-only (PartialObjectMetadata): an owned
 * ConfigMap whose metadata is what we would write is left alone, without a
 * write, even after a restart (an empty memo); one whose labels drifted is
 * applied again.
 */
static void apply_child_compares_only_the_metadata_of_a_configmap(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_configmap();

	w->f.cache[CHILD_CONFIGMAP] =
	    parse("{\"apiVersion\":\"meta.k8s.io/v1\",\"kind\":\"PartialObjectMetadata\","
	          "\"metadata\":{\"name\":\"myapp-haproxy-bbbbbbbb\",\"namespace\":\"shop\","
	          "\"resourceVersion\":\"7\"," OWNER_REF "}}");
	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), 0);
	assert_int_equal(w->f.applies, 0);
	json_object_object_add(json_object_object_get(want, "metadata"), "labels",
	                       parse("{\"app\":\"x\"}"));
	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), 0);
	assert_int_equal(w->f.applies, 1);
	assert_true(w->f.last_force);
	json_object_put(want);
}

/*
 * A resourceVersion too long for the memo is remembered as one that matches
 * nothing: a child deleted after our write (absent, "" in the cache) is
 * written again rather than taken for our write not yet seen.
 */
static void apply_child_remembers_an_overlong_resource_version_as_no_match(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_configmap();
	char rv[28]; /* 27 digits: past int64 */

	memset(rv, '9', sizeof(rv) - 1);
	rv[sizeof(rv) - 1] = '\0';
	/* The cached ConfigMap lacks a label we want: it needs a write. */
	json_object_object_add(json_object_object_get(want, "metadata"), "labels",
	                       parse("{\"app\":\"x\"}"));
	w->f.cache[CHILD_CONFIGMAP] = parse(
	    "{\"apiVersion\":\"meta.k8s.io/v1\",\"kind\":\"PartialObjectMetadata\","
	    "\"metadata\":{\"name\":\"myapp-haproxy-bbbbbbbb\",\"namespace\":\"shop\"," OWNER_REF
	    "}}");
	json_object_object_add(json_object_object_get(w->f.cache[CHILD_CONFIGMAP], "metadata"),
	                       "resourceVersion", json_object_new_string(rv));
	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), 0);
	assert_int_equal(w->f.applies, 1);
	assert_true(w->memo[CHILD_CONFIGMAP].rv_before == APPLY_RV_NEVER);
	/* Deleted meanwhile: absent from the cache, so it is written again. */
	json_object_put(w->f.cache[CHILD_CONFIGMAP]);
	w->f.cache[CHILD_CONFIGMAP] = NULL;
	assert_int_equal(apply_child(&w->run, CHILD_CONFIGMAP, want), 0);
	assert_int_equal(w->f.applies, 2);
	json_object_put(want);
}

/* etcd's resourceVersions are decimal int64; anything else matches nothing, not even itself. */
static void apply_rv_parse_keeps_only_decimal_versions(void **state)
{
	(void)state;
	assert_true(apply_rv_parse("") == 0);
	assert_true(apply_rv_parse(NULL) == 0);
	assert_true(apply_rv_parse("0") == 1);
	assert_true(apply_rv_parse("101") == 102);
	assert_true(apply_rv_parse("9999999999999999999") == 10000000000000000000ULL);
	assert_true(apply_rv_equal(apply_rv_parse("101"), apply_rv_parse("101")));
	assert_false(apply_rv_equal(apply_rv_parse("101"), apply_rv_parse("1010")));
	assert_false(apply_rv_equal(apply_rv_parse(""), apply_rv_parse("0")));
	assert_true(apply_rv_parse("10000000000000000000") == APPLY_RV_NEVER); /* 20 digits */
	assert_true(apply_rv_parse("12a") == APPLY_RV_NEVER);
	assert_true(apply_rv_parse("-1") == APPLY_RV_NEVER);
	assert_true(apply_rv_parse("007") == APPLY_RV_NEVER);
	assert_true(apply_rv_parse(" 7") == APPLY_RV_NEVER);
	assert_false(apply_rv_equal(apply_rv_parse("abc"), apply_rv_parse("abc")));
	assert_false(apply_rv_equal(APPLY_RV_NEVER, APPLY_RV_NEVER));
}

/*
 * A write is remembered: the same want at the version we wrote is skipped even
 * when the cache lacks a field of it; a different want (another digest) writes.
 */
static void apply_child_remembers_a_write_by_its_digest(void **state)
{
	struct world *w = *state;
	struct json_object *want = want_service(), *other = want_service(), *spec, *ports;

	assert_int_equal(apply_child(&w->run, CHILD_SERVICE, want), 0);
	assert_int_equal(w->f.applies, 1);
	/* The cache now has our write at its version, without one field of want. */
	cache_answer(w, CHILD_SERVICE, want);
	json_object_object_add(json_object_object_get(w->f.cache[CHILD_SERVICE], "metadata"),
	                       "resourceVersion", json_object_new_string("101"));
	json_object_object_get_ex(w->f.cache[CHILD_SERVICE], "spec", &spec);
	json_object_object_get_ex(spec, "ports", &ports);
	json_object_object_add(json_object_array_get_idx(ports, 0), "port",
	                       json_object_new_int(81));
	assert_int_equal(apply_child(&w->run, CHILD_SERVICE, want), 0);
	assert_int_equal(w->f.applies, 1);
	/* Another want: another digest, written. */
	json_object_object_get_ex(other, "spec", &spec);
	json_object_object_get_ex(spec, "ports", &ports);
	json_object_object_add(json_object_array_get_idx(ports, 0), "port",
	                       json_object_new_int(82));
	assert_int_equal(apply_child(&w->run, CHILD_SERVICE, other), 0);
	assert_int_equal(w->f.applies, 2);
	json_object_put(want);
	json_object_put(other);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(apply_child_creates_what_is_missing_without_force),
	    T(apply_child_skips_its_own_write_seen_or_not),
	    T(apply_child_skips_an_owned_superset),
	    T(apply_child_takes_back_a_changed_owned_child_with_force),
	    T(apply_child_trusts_the_applied_digest_of_a_reduced_child),
	    T(apply_child_leaves_a_foreign_configmap_and_retries),
	    T(apply_child_waits_for_the_collector_on_an_earlier_kanarys_child),
	    T(apply_child_tells_permanent_failures_from_transient_ones),
	    T(apply_child_reports_a_foreign_service_as_a_conflict),
	    T(apply_child_reports_a_refused_new_service_as_a_conflict),
	    T(apply_child_passes_other_failures_on_with_retry_after),
	    T(apply_child_writes_nothing_when_it_may_not),
	    T(apply_child_tells_a_deployment_rollout),
	    T(apply_child_keeps_the_cached_deployment_when_nothing_changes),
	    T(apply_child_refuses_an_object_without_a_name),
	    T(apply_child_compares_only_the_metadata_of_a_configmap),
	    T(apply_child_remembers_an_overlong_resource_version_as_no_match),
	    cmocka_unit_test(apply_child_kind_knows_the_four_kinds),
	    cmocka_unit_test(apply_rv_parse_keeps_only_decimal_versions),
	    T(apply_child_remembers_a_write_by_its_digest),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
