/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the Kanary status builder. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/buf.h"
#include "common/kanary_check.h"
#include "common/kerr.h"
#include "controller/pods.h"
#include "controller/status.h"

static const char svc_v1[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"myapp-v1\","
    "\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80,"
    "\"targetPort\":8080}]}}";
static const char svc_v2[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"myapp-v2\","
    "\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"port\":9090}]}}";
static const char slice_v1[] =
    "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":{"
    "\"name\":\"myapp-v1-x\",\"namespace\":\"default\",\"labels\":{"
    "\"kubernetes.io/service-name\":\"myapp-v1\"}},\"addressType\":\"IPv4\",\"ports\":[{"
    "\"name\":\"http\",\"port\":8080}],\"endpoints\":[{\"addresses\":[\"10.1.0.1\"]},"
    "{\"addresses\":[\"10.1.0.2\"]}]}";
static const char kanary_80_20[] =
    "{\"apiVersion\":\"kanary.pyxida.io/v1alpha1\",\"kind\":\"Kanary\",\"metadata\":{"
    "\"name\":\"rule\",\"namespace\":\"default\",\"uid\":\"u-1\",\"generation\":3},"
    "\"spec\":{\"destination\":\"myapp\",\"routes\":["
    "{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"http\"},\"weight\":80},"
    "{\"backend\":{\"serviceName\":\"myapp-v2\",\"servicePort\":9090},\"weight\":20}]}}";

#define HASH_A "aaaaaaaa11111111111111111111111111111111111111111111111111111111"
#define HASH_B "bbbbbbbb22222222222222222222222222222222222222222222222222222222"

/* One Kanary checked against a catalog of the given objects (JSON texts, NULL-terminated). */
struct checked {
	struct kanary *k;
	struct kanary_resolution res;
	struct kerr_list errs;
	struct status_problems problems;
	struct buf text;
};

static void check(struct checked *c, const char *kanary, const char *const *objs)
{
	struct json_object *obj = json_tokener_parse(kanary);
	struct catalog *cat = NULL;
	unsigned defaulted;

	assert_non_null(obj);
	assert_int_equal(catalog_create(&cat), 0);
	for (; *objs; objs++) {
		struct json_object *o = json_tokener_parse(*objs);

		assert_non_null(o);
		assert_int_equal(catalog_add(cat, o, "default"), 1);
		json_object_put(o);
	}
	kerr_init(&c->errs);
	assert_int_equal(
	    kanary_check(obj, cat, KANARY_CHECK_REQUIRE_NAME, &c->k, &c->res, &defaulted, &c->errs),
	    0);
	status_classify(c->k, &c->res, &c->errs, &c->problems);
	buf_init(&c->text, 1 << 16);
	if (kerr_any(&c->errs))
		assert_int_equal(kerr_join(&c->errs, "; ", &c->text), 0);
	catalog_destroy(cat);
	json_object_put(obj);
}

static void checked_finish(struct checked *c)
{
	kanary_resolution_finish(&c->res);
	kanary_destroy(c->k);
	kerr_finish(&c->errs);
	buf_finish(&c->text);
}

static struct status_facts facts_of(const struct checked *c, bool applied, const char *hash,
                                    enum status_rollout rollout, const char *now)
{
	struct status_facts f = {
	    .generation = c->k->generation,
	    .k = c->k,
	    .res = &c->res,
	    .problems = c->problems,
	    .errors = c->text.len ? c->text.data : NULL,
	    .applied = applied,
	    .config_hash = hash,
	    .rollout = rollout,
	    .now = now,
	};
	return f;
}

static const char *cond_field(const struct json_object *st, const char *type, const char *key)
{
	const struct json_object *c = status_condition(st, type);
	struct json_object *v;

	if (!c || !json_object_object_get_ex(c, key, &v))
		return NULL;
	return json_object_get_string(v);
}

static void status_classify_tells_missing_services_ports_and_other_errors(void **state)
{
	const char *const only_v1[] = {svc_v1, slice_v1, NULL};
	const char *const v2_wrong_port[] = {
	    svc_v1,
	    "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"myapp-v2\","
	    "\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"port\":1234}]}}",
	    NULL};
	const char *const both[] = {svc_v1, svc_v2, NULL};
	const char *bad_weights =
	    "{\"apiVersion\":\"kanary.pyxida.io/v1alpha1\",\"kind\":\"Kanary\",\"metadata\":{"
	    "\"name\":\"rule\",\"namespace\":\"default\"},\"spec\":{\"destination\":\"myapp\","
	    "\"routes\":[{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"http\"},"
	    "\"weight\":70},{\"backend\":{\"serviceName\":\"nope\",\"servicePort\":1},"
	    "\"weight\":20}]}}";
	struct checked c;

	check(&c, kanary_80_20, only_v1);
	assert_int_equal(c.problems.missing_services, 1);
	assert_int_equal(c.problems.missing_ports, 0);
	assert_int_equal(c.problems.other, 0);
	checked_finish(&c);

	check(&c, kanary_80_20, v2_wrong_port);
	assert_int_equal(c.problems.missing_services, 0);
	assert_int_equal(c.problems.missing_ports, 1);
	assert_int_equal(c.problems.other, 0);
	checked_finish(&c);

	check(&c, kanary_80_20, both);
	assert_int_equal(c.problems.missing_services + c.problems.missing_ports + c.problems.other,
	                 0);
	checked_finish(&c);

	check(&c, bad_weights, both);
	assert_int_equal(c.problems.missing_services, 1);
	assert_int_equal(c.problems.other, 1);
	checked_finish(&c);
}

static void status_ready_once_the_rollout_is_done(void **state)
{
	const char *const objs[] = {svc_v1, svc_v2, slice_v1, NULL};
	struct json_object *st = NULL, *st2 = NULL, *routes;
	struct status_facts f;
	struct checked c;

	check(&c, kanary_80_20, objs);
	f = facts_of(&c, true, HASH_A, STATUS_ROLLOUT_PROGRESSING, "2026-01-01T00:00:00Z");
	assert_int_equal(status_build(&f, NULL, &st), 0);
	assert_string_equal(cond_field(st, STATUS_COND_READY, "status"), "False");
	assert_string_equal(cond_field(st, STATUS_COND_READY, "reason"), STATUS_REASON_ROLLOUT);
	assert_string_equal(cond_field(st, STATUS_COND_RESOLVED_REFS, "status"), "True");
	assert_string_equal(cond_field(st, STATUS_COND_RESOLVED_REFS, "reason"),
	                    STATUS_REASON_RESOLVED_REFS);
	assert_string_equal(status_config_hash(st), HASH_A);
	assert_true(json_object_object_get_ex(st, "routes", &routes));
	assert_string_equal(json_object_to_json_string_ext(routes, JSON_C_TO_STRING_PLAIN),
	                    "[{\"serviceName\":\"myapp-v1\",\"weight\":80,\"targetPort\":8080,"
	                    "\"endpoints\":2},{\"serviceName\":\"myapp-v2\",\"weight\":20,"
	                    "\"targetPort\":9090,\"endpoints\":0}]");

	f = facts_of(&c, true, HASH_A, STATUS_ROLLOUT_DONE, "2026-01-01T00:01:00Z");
	assert_int_equal(status_build(&f, st, &st2), 0);
	assert_string_equal(cond_field(st2, STATUS_COND_READY, "status"), "True");
	assert_string_equal(cond_field(st2, STATUS_COND_READY, "reason"), STATUS_REASON_READY);
	/* Ready moved; ResolvedRefs kept its transition time. */
	assert_string_equal(cond_field(st2, STATUS_COND_READY, "lastTransitionTime"),
	                    "2026-01-01T00:01:00Z");
	assert_string_equal(cond_field(st2, STATUS_COND_RESOLVED_REFS, "lastTransitionTime"),
	                    "2026-01-01T00:00:00Z");
	assert_true(status_condition_changed(st, st2, STATUS_COND_READY));
	assert_false(status_condition_changed(st, st2, STATUS_COND_RESOLVED_REFS));
	json_object_put(st2);
	json_object_put(st);
	checked_finish(&c);
}

static void status_tells_why_the_pods_hold_the_rollout(void **state)
{
	const char *const objs[] = {svc_v1, svc_v2, slice_v1, NULL};
	struct json_object *st = NULL, *st2 = NULL;
	struct status_facts f;
	struct checked c;

	check(&c, kanary_80_20, objs);
	f = facts_of(&c, true, HASH_A, STATUS_ROLLOUT_PROGRESSING, "2026-01-01T00:00:00Z");
	assert_int_equal(status_build(&f, NULL, &st), 0);
	assert_true(status_waits_on_rollout(st));
	json_object_put(st);

	f.pods_reason = pods_reason(PODS_IMAGE_PULL_FAILED);
	f.pods_message = "pod rule-haproxy-1: container haproxy: ErrImageNeverPull: no";
	assert_int_equal(status_build(&f, NULL, &st), 0);
	assert_string_equal(cond_field(st, STATUS_COND_READY, "status"), "False");
	assert_string_equal(cond_field(st, STATUS_COND_READY, "reason"), "HAProxyImagePullFailed");
	assert_string_equal(cond_field(st, STATUS_COND_READY, "message"),
	                    "Deployment rule-haproxy cannot roll out configuration aaaaaaaa: pod "
	                    "rule-haproxy-1: container haproxy: ErrImageNeverPull: no");
	assert_true(status_waits_on_rollout(st));

	/* Once the Deployment rolled, what the pods said before does not matter. */
	f = facts_of(&c, true, HASH_A, STATUS_ROLLOUT_DONE, "2026-01-01T00:01:00Z");
	f.pods_reason = pods_reason(PODS_NOT_READY);
	f.pods_message = "stale";
	assert_int_equal(status_build(&f, st, &st2), 0);
	assert_string_equal(cond_field(st2, STATUS_COND_READY, "status"), "True");
	assert_false(status_waits_on_rollout(st2));
	assert_false(status_waits_on_rollout(NULL));
	json_object_put(st2);
	json_object_put(st);
	checked_finish(&c);
}

static void status_same_facts_give_the_same_status(void **state)
{
	const char *const objs[] = {svc_v1, svc_v2, slice_v1, NULL};
	struct json_object *st = NULL, *again = NULL;
	struct status_facts f;
	struct checked c;

	check(&c, kanary_80_20, objs);
	f = facts_of(&c, true, HASH_A, STATUS_ROLLOUT_DONE, "2026-01-01T00:00:00Z");
	assert_int_equal(status_build(&f, NULL, &st), 0);
	/* A resync an hour later changes nothing, so nothing is written. */
	f.now = "2026-01-01T01:00:00Z";
	assert_int_equal(status_build(&f, st, &again), 0);
	assert_true(json_object_equal(st, again));
	json_object_put(again);
	json_object_put(st);
	checked_finish(&c);
}

static void status_missing_backend_keeps_what_is_in_force(void **state)
{
	const char *const all[] = {svc_v1, svc_v2, slice_v1, NULL};
	const char *const only_v1[] = {svc_v1, slice_v1, NULL};
	struct json_object *good = NULL, *bad = NULL, *r1, *r2;
	struct status_facts f;
	struct checked c;
	const char *msg;

	check(&c, kanary_80_20, all);
	f = facts_of(&c, true, HASH_A, STATUS_ROLLOUT_DONE, "2026-01-01T00:00:00Z");
	assert_int_equal(status_build(&f, NULL, &good), 0);
	checked_finish(&c);

	check(&c, kanary_80_20, only_v1);
	f = facts_of(&c, false, NULL, STATUS_ROLLOUT_DONE, "2026-01-01T00:05:00Z");
	assert_int_equal(status_build(&f, good, &bad), 0);
	assert_string_equal(cond_field(bad, STATUS_COND_RESOLVED_REFS, "status"), "False");
	assert_string_equal(cond_field(bad, STATUS_COND_RESOLVED_REFS, "reason"),
	                    STATUS_REASON_BACKEND_NOT_FOUND);
	assert_string_equal(cond_field(bad, STATUS_COND_READY, "reason"),
	                    STATUS_REASON_BACKEND_NOT_FOUND);
	msg = cond_field(bad, STATUS_COND_READY, "message");
	assert_non_null(strstr(msg, "spec.routes[1].backend.serviceName: Not found"));
	assert_non_null(strstr(msg, "HAProxy keeps configuration aaaaaaaa"));
	/* What is in force did not change. */
	assert_string_equal(status_config_hash(bad), HASH_A);
	assert_true(json_object_object_get_ex(good, "routes", &r1));
	assert_true(json_object_object_get_ex(bad, "routes", &r2));
	assert_true(json_object_equal(r1, r2));
	assert_true(status_condition_changed(good, bad, STATUS_COND_RESOLVED_REFS));
	json_object_put(bad);
	json_object_put(good);
	checked_finish(&c);
}

static void status_first_reconcile_of_an_unresolvable_kanary(void **state)
{
	const char *const none[] = {NULL};
	struct json_object *st = NULL;
	struct status_facts f;
	struct checked c;

	check(&c, kanary_80_20, none);
	f = facts_of(&c, false, NULL, STATUS_ROLLOUT_PROGRESSING, "2026-01-01T00:00:00Z");
	assert_int_equal(status_build(&f, NULL, &st), 0);
	assert_non_null(
	    strstr(cond_field(st, STATUS_COND_READY, "message"), "nothing is applied yet"));
	assert_null(status_config_hash(st));
	assert_false(json_object_object_get_ex(st, "routes", NULL));
	json_object_put(st);
	checked_finish(&c);
}

static void status_reports_conflict_and_no_endpoints(void **state)
{
	const char *const no_slices[] = {svc_v1, svc_v2, NULL};
	const char *const objs[] = {svc_v1, svc_v2, slice_v1, NULL};
	struct json_object *st = NULL;
	struct status_facts f;
	struct checked c;

	check(&c, kanary_80_20, objs);
	f = facts_of(&c, true, HASH_A, STATUS_ROLLOUT_DONE, "2026-01-01T00:00:00Z");
	f.conflict = "Service myapp exists and is not owned by this Kanary";
	assert_int_equal(status_build(&f, NULL, &st), 0);
	assert_string_equal(cond_field(st, STATUS_COND_READY, "reason"),
	                    STATUS_REASON_SERVICE_CONFLICT);
	assert_string_equal(cond_field(st, STATUS_COND_READY, "message"),
	                    "Service myapp exists and is not owned by this Kanary; retrying with "
	                    "backoff");
	json_object_put(st);
	checked_finish(&c);

	check(&c, kanary_80_20, no_slices);
	f = facts_of(&c, true, HASH_B, STATUS_ROLLOUT_DONE, "2026-01-01T00:00:00Z");
	assert_int_equal(status_build(&f, NULL, &st), 0);
	assert_string_equal(cond_field(st, STATUS_COND_READY, "reason"),
	                    STATUS_REASON_NO_ENDPOINTS);
	json_object_put(st);
	checked_finish(&c);
}

static void status_reports_a_permanent_apply_failure_and_keeps_what_is_in_force(void **state)
{
	const char *const objs[] = {svc_v1, svc_v2, slice_v1, NULL};
	struct json_object *good = NULL, *bad = NULL, *again = NULL, *r1, *r2;
	struct status_facts f;
	struct checked c;

	check(&c, kanary_80_20, objs);
	f = facts_of(&c, true, HASH_A, STATUS_ROLLOUT_DONE, "2026-01-01T00:00:00Z");
	assert_int_equal(status_build(&f, NULL, &good), 0);
	f = facts_of(&c, false, NULL, STATUS_ROLLOUT_DONE, "2026-01-01T00:05:00Z");
	f.apply_reason = "ApplyConflict";
	f.apply_message = "Deployment myapp-haproxy exists and is not controlled by this Kanary";
	assert_int_equal(status_build(&f, good, &bad), 0);
	assert_string_equal(cond_field(bad, STATUS_COND_READY, "status"), "False");
	assert_string_equal(cond_field(bad, STATUS_COND_READY, "reason"), "ApplyConflict");
	assert_string_equal(cond_field(bad, STATUS_COND_READY, "message"),
	                    "Deployment myapp-haproxy exists and is not controlled by this Kanary; "
	                    "HAProxy keeps configuration aaaaaaaa; retrying with backoff");
	assert_string_equal(cond_field(bad, STATUS_COND_READY, "lastTransitionTime"),
	                    "2026-01-01T00:05:00Z");
	assert_string_equal(cond_field(bad, STATUS_COND_RESOLVED_REFS, "status"), "True");
	assert_string_equal(status_config_hash(bad), HASH_A);
	assert_true(json_object_object_get_ex(good, "routes", &r1));
	assert_true(json_object_object_get_ex(bad, "routes", &r2));
	assert_true(json_object_equal(r1, r2));
	/* The next retry fails the same way: the same status, so nothing to write or tell. */
	f.now = "2026-01-01T00:09:00Z";
	assert_int_equal(status_build(&f, bad, &again), 0);
	assert_true(json_object_equal(bad, again));
	assert_false(status_condition_changed(bad, again, STATUS_COND_READY));
	json_object_put(again);
	json_object_put(bad);
	json_object_put(good);
	checked_finish(&c);
}

static void status_invalid_spec_is_not_a_reference_problem(void **state)
{
	const char *const objs[] = {svc_v1, svc_v2, NULL};
	const char *bad =
	    "{\"apiVersion\":\"kanary.pyxida.io/v1alpha1\",\"kind\":\"Kanary\",\"metadata\":{"
	    "\"name\":\"rule\",\"namespace\":\"default\"},\"spec\":{\"destination\":\"myapp\","
	    "\"routes\":[{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"http\"},"
	    "\"weight\":70}]}}";
	struct json_object *st = NULL;
	struct status_facts f;
	struct checked c;

	check(&c, bad, objs);
	f = facts_of(&c, false, NULL, STATUS_ROLLOUT_PROGRESSING, "2026-01-01T00:00:00Z");
	assert_int_equal(status_build(&f, NULL, &st), 0);
	assert_string_equal(cond_field(st, STATUS_COND_READY, "reason"),
	                    STATUS_REASON_INVALID_SPEC);
	assert_string_equal(cond_field(st, STATUS_COND_RESOLVED_REFS, "status"), "Unknown");
	json_object_put(st);
	checked_finish(&c);
}

static void count_empty(void *ctx, const char *service, int64_t weight)
{
	assert_string_equal(service, "myapp-v2");
	assert_int_equal(weight, 20);
	(*(int *)ctx)++;
}

static void status_tells_a_route_going_empty_once(void **state)
{
	struct json_object *had = json_tokener_parse(
	    "{\"routes\":[{\"serviceName\":\"myapp-v1\",\"weight\":80,\"endpoints\":2},"
	    "{\"serviceName\":\"myapp-v2\",\"weight\":20,\"endpoints\":1}]}");
	struct json_object *empty = json_tokener_parse(
	    "{\"routes\":[{\"serviceName\":\"myapp-v1\",\"weight\":80,\"endpoints\":2},"
	    "{\"serviceName\":\"myapp-v2\",\"weight\":20,\"endpoints\":0}]}");
	int n = 0;

	assert_int_equal(status_newly_empty(had, empty, count_empty, &n), 1);
	assert_int_equal(n, 1);
	assert_int_equal(status_newly_empty(empty, empty, count_empty, &n), 0);
	assert_int_equal(status_newly_empty(NULL, empty, count_empty, &n), 1);
	assert_int_equal(status_newly_empty(empty, had, NULL, NULL), 0);
	json_object_put(had);
	json_object_put(empty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(status_classify_tells_missing_services_ports_and_other_errors),
	    cmocka_unit_test(status_ready_once_the_rollout_is_done),
	    cmocka_unit_test(status_tells_why_the_pods_hold_the_rollout),
	    cmocka_unit_test(status_same_facts_give_the_same_status),
	    cmocka_unit_test(status_missing_backend_keeps_what_is_in_force),
	    cmocka_unit_test(status_first_reconcile_of_an_unresolvable_kanary),
	    cmocka_unit_test(status_reports_conflict_and_no_endpoints),
	    cmocka_unit_test(status_reports_a_permanent_apply_failure_and_keeps_what_is_in_force),
	    cmocka_unit_test(status_invalid_spec_is_not_a_reference_problem),
	    cmocka_unit_test(status_tells_a_route_going_empty_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
