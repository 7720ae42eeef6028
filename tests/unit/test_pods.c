/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the HAProxy pods' diagnosis. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/limits.h"
#include "controller/pods.h"

/* 2026-01-01T00:10:00Z, the time every case is diagnosed at. */
#define NOW_S        1767226200LL
#define LONG_AGO     "2026-01-01T00:00:00Z"
#define JUST_NOW     "2026-01-01T00:09:50Z"
#define IMAGE        "localhost/haproxy:nope"
#define NEVER_PULL   "Container image \\\"" IMAGE "\\\" is not present with pull policy of Never"
#define SPEC_HAPROXY "{\"containers\":[{\"name\":\"haproxy\",\"image\":\"" IMAGE "\"}]}"

/* A Pod named name with that status (JSON text), and the HAProxy container in its spec. */
static char *pod(const char *name, const char *status, const char *extra_meta)
{
	size_t size = 8192;
	char *s = malloc(size);
	int n;

	assert_non_null(s);
	n = snprintf(s, size,
	             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\","
	             "\"namespace\":\"default\",\"labels\":{\"app.kubernetes.io/name\":\"haproxy\","
	             "\"kanary.pyxida.io/name\":\"x\"}%s},\"spec\":" SPEC_HAPROXY ",\"status\":%s}",
	             name, extra_meta ? extra_meta : "", status);
	assert_true(n > 0 && (size_t)n < size);
	return s;
}

/* A PodList of the given pods (JSON texts, freed here), NULL-terminated. */
static struct json_object *list_of(char **pods)
{
	struct json_object *list = json_object_new_object();
	struct json_object *items = json_object_new_array();

	for (; *pods; pods++) {
		struct json_object *p = json_tokener_parse(*pods);

		assert_non_null(p);
		assert_int_equal(json_object_array_add(items, p), 0);
		free(*pods);
	}
	assert_int_equal(json_object_object_add(list, "apiVersion", json_object_new_string("v1")),
	                 0);
	assert_int_equal(json_object_object_add(list, "kind", json_object_new_string("PodList")),
	                 0);
	assert_int_equal(json_object_object_add(list, "items", items), 0);
	return list;
}

static void diagnose(char **pods, struct pods_diagnosis *d)
{
	struct json_object *list = list_of(pods);

	assert_int_equal(pods_diagnose(list, NOW_S, d), 0);
	json_object_put(list);
}

static const char waiting_never_pull[] =
    "{\"phase\":\"Pending\",\"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"True\"},"
    "{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"ContainersNotReady\","
    "\"lastTransitionTime\":\"" LONG_AGO "\"}],"
    "\"containerStatuses\":[{\"name\":\"haproxy\",\"image\":\"" IMAGE "\",\"ready\":false,"
    "\"restartCount\":0,\"state\":{\"waiting\":{\"reason\":\"ErrImageNeverPull\","
    "\"message\":\"" NEVER_PULL "\"}}}]}";

static const char running_ready[] =
    "{\"phase\":\"Running\",\"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"True\"},"
    "{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"" LONG_AGO "\"}],"
    "\"containerStatuses\":[{\"name\":\"haproxy\",\"image\":\"" IMAGE "\",\"ready\":true,"
    "\"restartCount\":0,\"state\":{\"running\":{\"startedAt\":\"" LONG_AGO "\"}}}]}";

static void pods_image_never_pulled(void **state)
{
	char *pods[] = {pod("x-haproxy-abc-123", waiting_never_pull, NULL), NULL};
	struct pods_diagnosis d;

	diagnose(pods, &d);
	assert_int_equal(d.verdict, PODS_IMAGE_PULL_FAILED);
	assert_string_equal(pods_reason(d.verdict), "HAProxyImagePullFailed");
	assert_int_equal(d.pods, 1);
	assert_int_equal(d.problem_pods, 1);
	/* The kubelet's message names the image already: it is not repeated. */
	assert_string_equal(
	    d.message, "pod x-haproxy-abc-123: container haproxy: ErrImageNeverPull: "
	               "Container image \"" IMAGE "\" is not present with pull policy of Never");
}

static void pods_image_pull_back_off_names_the_image(void **state)
{
	char *pods[] = {
	    pod("x-haproxy-abc-1",
	        "{\"phase\":\"Pending\",\"containerStatuses\":[{\"name\":\"haproxy\","
	        "\"image\":\"\",\"ready\":false,\"restartCount\":0,\"state\":{\"waiting\":{"
	        "\"reason\":\"ImagePullBackOff\",\"message\":\"Back-off pulling image\"}}}]}",
	        NULL),
	    NULL};
	struct pods_diagnosis d;

	diagnose(pods, &d);
	assert_int_equal(d.verdict, PODS_IMAGE_PULL_FAILED);
	/* No image in the container status: the spec's. */
	assert_string_equal(d.message, "pod x-haproxy-abc-1: container haproxy: ImagePullBackOff: "
	                               "Back-off pulling image (image " IMAGE ")");
}

static void pods_crash_loop_tells_the_last_exit(void **state)
{
	char *pods[] = {
	    pod("x-haproxy-abc-1",
	        "{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\","
	        "\"lastTransitionTime\":\"" LONG_AGO "\"}],\"containerStatuses\":[{"
	        "\"name\":\"haproxy\",\"image\":\"" IMAGE "\",\"ready\":false,\"restartCount\":5,"
	        "\"state\":{\"waiting\":{\"reason\":\"CrashLoopBackOff\",\"message\":\"back-off "
	        "1m20s restarting failed container=haproxy\"}},\"lastState\":{\"terminated\":{"
	        "\"exitCode\":1,\"reason\":\"Error\"}}}]}",
	        NULL),
	    NULL};
	struct pods_diagnosis d;

	diagnose(pods, &d);
	assert_int_equal(d.verdict, PODS_CRASH_LOOPING);
	assert_string_equal(pods_reason(d.verdict), "HAProxyCrashLooping");
	assert_string_equal(d.message,
	                    "pod x-haproxy-abc-1: container haproxy: CrashLoopBackOff: back-off "
	                    "1m20s restarting failed container=haproxy; last exit 1 (Error), 5 "
	                    "restarts (image " IMAGE ")");
}

static void pods_container_config_error(void **state)
{
	char *pods[] = {
	    pod("x-haproxy-abc-1",
	        "{\"phase\":\"Pending\",\"containerStatuses\":[{\"name\":\"haproxy\","
	        "\"image\":\"" IMAGE "\",\"state\":{\"waiting\":{\"reason\":"
	        "\"CreateContainerConfigError\",\"message\":\"configmap \\\"x-haproxy-1\\\" not "
	        "found\"}}}]}",
	        NULL),
	    NULL};
	struct pods_diagnosis d;

	diagnose(pods, &d);
	assert_int_equal(d.verdict, PODS_CONTAINER_FAILED);
	assert_string_equal(pods_reason(d.verdict), "HAProxyContainerFailed");
	assert_non_null(strstr(d.message, "CreateContainerConfigError: configmap \"x-haproxy-1\" "
	                                  "not found"));
}

static void pods_unschedulable(void **state)
{
	char *pods[] = {
	    pod("x-haproxy-abc-1",
	        "{\"phase\":\"Pending\",\"conditions\":[{\"type\":\"PodScheduled\",\"status\":"
	        "\"False\",\"reason\":\"Unschedulable\",\"message\":\"0/1 nodes are available: 1 "
	        "node(s) didn't match pod anti-affinity rules.\"}]}",
	        NULL),
	    NULL};
	struct pods_diagnosis d;

	diagnose(pods, &d);
	assert_int_equal(d.verdict, PODS_UNSCHEDULABLE);
	assert_string_equal(pods_reason(d.verdict), "HAProxyPodsUnschedulable");
	assert_string_equal(d.message,
	                    "pod x-haproxy-abc-1: not scheduled: Unschedulable: 0/1 nodes are "
	                    "available: 1 node(s) didn't match pod anti-affinity rules.");
}

static char *running_not_ready(const char *name, const char *since)
{
	char status[2048];
	int n = snprintf(status, sizeof(status),
	                 "{\"phase\":\"Running\",\"conditions\":[{\"type\":\"PodScheduled\","
	                 "\"status\":\"True\"},{\"type\":\"Ready\",\"status\":\"False\","
	                 "\"reason\":\"ContainersNotReady\",\"message\":\"containers with unready "
	                 "status: [haproxy]\",\"lastTransitionTime\":\"%s\"}],"
	                 "\"containerStatuses\":[{\"name\":\"haproxy\",\"image\":\"" IMAGE "\","
	                 "\"ready\":false,\"restartCount\":0,\"state\":{\"running\":{"
	                 "\"startedAt\":\"%s\"}}}]}",
	                 since, since);

	assert_true(n > 0 && (size_t)n < sizeof(status));
	return pod(name, status, NULL);
}

static void pods_running_not_ready_after_the_grace(void **state)
{
	char *pods[] = {running_not_ready("x-haproxy-abc-1", LONG_AGO), NULL};
	char *fresh[] = {running_not_ready("x-haproxy-abc-2", JUST_NOW), NULL};
	struct pods_diagnosis d;

	diagnose(pods, &d);
	assert_int_equal(d.verdict, PODS_NOT_READY);
	assert_string_equal(pods_reason(d.verdict), "HAProxyPodsNotReady");
	assert_string_equal(d.message, "pod x-haproxy-abc-1: running, not ready for over 30s: "
	                               "containers with unready status: [haproxy]");
	/* Ten seconds after its start it is still starting. */
	diagnose(fresh, &d);
	assert_int_equal(d.verdict, PODS_STARTING);
	assert_string_equal(d.message, "");
}

static void pods_all_fine_or_starting(void **state)
{
	char *pods[] = {
	    pod("x-haproxy-abc-1", running_ready, NULL),
	    pod("x-haproxy-abc-2",
	        "{\"phase\":\"Pending\",\"conditions\":[{\"type\":\"PodScheduled\",\"status\":"
	        "\"True\"}],\"containerStatuses\":[{\"name\":\"haproxy\",\"image\":\"" IMAGE "\","
	        "\"state\":{\"waiting\":{\"reason\":\"ContainerCreating\"}}}]}",
	        NULL),
	    /* Stored and never scheduled (no scheduler wrote PodScheduled yet). */
	    pod("x-haproxy-abc-3", "{\"phase\":\"Pending\"}", NULL),
	    pod("x-haproxy-abc-4", "{}", NULL), NULL};
	struct pods_diagnosis d;

	diagnose(pods, &d);
	assert_int_equal(d.verdict, PODS_STARTING);
	assert_null(pods_reason(d.verdict));
	assert_int_equal(d.pods, 4);
	assert_int_equal(d.problem_pods, 0);
	assert_string_equal(d.message, "");
}

static void pods_empty_list_and_bad_input(void **state)
{
	char *none[] = {NULL};
	struct json_object *arr = json_object_new_array();
	struct json_object *str = json_object_new_string("pods");
	struct json_object *no_items = json_object_new_object();
	struct pods_diagnosis d;

	diagnose(none, &d);
	assert_int_equal(d.verdict, PODS_STARTING);
	assert_int_equal(d.pods, 0);
	assert_string_equal(d.message, "");
	/* A bare array is a list too. */
	assert_int_equal(pods_diagnose(arr, NOW_S, &d), 0);
	assert_int_equal(d.pods, 0);
	assert_int_equal(pods_diagnose(str, NOW_S, &d), -EINVAL);
	assert_int_equal(pods_diagnose(no_items, NOW_S, &d), -EINVAL);
	assert_int_equal(pods_diagnose(NULL, NOW_S, &d), -EINVAL);
	json_object_put(arr);
	json_object_put(str);
	json_object_put(no_items);
}

static void pods_being_deleted_are_left_out(void **state)
{
	char *pods[] = {
	    pod("x-haproxy-old-1", waiting_never_pull, ",\"deletionTimestamp\":\"" LONG_AGO "\""),
	    pod("x-haproxy-new-1", running_ready, NULL), NULL};
	struct pods_diagnosis d;

	diagnose(pods, &d);
	assert_int_equal(d.verdict, PODS_STARTING);
	assert_int_equal(d.pods, 1);
}

static void pods_worst_first_then_by_name(void **state)
{
	char *pods[] = {running_not_ready("x-haproxy-a", LONG_AGO),
	                pod("x-haproxy-c", waiting_never_pull, NULL),
	                pod("x-haproxy-b", waiting_never_pull, NULL),
	                pod("x-haproxy-d", running_ready, NULL), NULL};
	struct pods_diagnosis d;
	const char *b, *c, *a;

	diagnose(pods, &d);
	assert_int_equal(d.verdict, PODS_IMAGE_PULL_FAILED);
	assert_int_equal(d.problem_pods, 3);
	b = strstr(d.message, "pod x-haproxy-b: ");
	c = strstr(d.message, "; pod x-haproxy-c: ");
	a = strstr(d.message, "; pod x-haproxy-a: running, not ready");
	assert_true(b == d.message);
	assert_non_null(c);
	assert_non_null(a);
	assert_true(c < a);
}

static void pods_many_are_cut_and_counted(void **state)
{
	enum { N = 40 };
	char *pods[N + 1];
	char name[64], tail[64];
	struct pods_diagnosis d;
	size_t listed = 0;
	const char *p;

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "x-haproxy-abc-%02d", i);
		pods[i] = pod(name, waiting_never_pull, NULL);
	}
	pods[N] = NULL;
	diagnose(pods, &d);
	assert_int_equal(d.verdict, PODS_IMAGE_PULL_FAILED);
	assert_int_equal(d.problem_pods, N);
	assert_true(strlen(d.message) <= KANARY_MAX_POD_DIAGNOSIS);
	for (p = d.message; (p = strstr(p, "pod x-haproxy-abc-")) != NULL; p++)
		listed++;
	assert_true(listed > 1 && listed < N);
	snprintf(tail, sizeof(tail), "; ... and %zu more pods", N - listed);
	assert_true(strlen(d.message) > strlen(tail));
	assert_string_equal(d.message + strlen(d.message) - strlen(tail), tail);
}

static void pods_a_long_kubelet_message_is_cut_and_marked(void **state)
{
	char status[4096], msg[2001];
	struct pods_diagnosis d;
	char *pods[2];

	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	snprintf(status, sizeof(status),
	         "{\"phase\":\"Pending\",\"containerStatuses\":[{\"name\":\"haproxy\","
	         "\"image\":\"" IMAGE "\",\"state\":{\"waiting\":{\"reason\":\"ErrImagePull\","
	         "\"message\":\"%s\"}}}]}",
	         msg);
	pods[0] = pod("x-haproxy-abc-1", status, NULL);
	pods[1] = NULL;
	diagnose(pods, &d);
	assert_int_equal(d.verdict, PODS_IMAGE_PULL_FAILED);
	assert_true(strlen(d.message) < KANARY_MAX_POD_DIAGNOSIS);
	assert_string_equal(d.message + strlen(d.message) - 3, "...");
	assert_non_null(strstr(d.message, "pod x-haproxy-abc-1: container haproxy: ErrImagePull: "
	                                  "mmm"));
}

/* ---- looking again at a rollout that waits ---- */

/* A monotonic clock well past 0, in ms; the schedule only compares. */
#define T0_MS 1000000LL

static void recheck_delays_double_up_to_the_cap(void **state)
{
	(void)state;
	assert_int_equal(pods_recheck_delay_ms(0), 5000);
	assert_int_equal(pods_recheck_delay_ms(1), 10000);
	assert_int_equal(pods_recheck_delay_ms(2), 20000);
	assert_int_equal(pods_recheck_delay_ms(5), 160000);
	assert_int_equal(pods_recheck_delay_ms(6), PODS_RECHECK_MAX_MS);
	assert_int_equal(pods_recheck_delay_ms(200), PODS_RECHECK_MAX_MS);
	assert_int_equal(pods_recheck_delay_ms(~0u), PODS_RECHECK_MAX_MS);
}

/* Each look-again that is due and finds the same waits twice as long, up to the cap. */
static void recheck_the_same_stuck_rollout_backs_off(void **state)
{
	static const long want[] = {5000,   10000,  20000,  40000, 80000,
	                            160000, 300000, 300000, 300000};
	struct pods_recheck r = {0};
	int64_t now = T0_MS;
	bool told;

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		long d = pods_recheck_next(&r, 42, now, &told);

		assert_int_equal(d, want[i]);
		/* Told when the delay is new: not again once it stays at the cap. */
		assert_true(told == (i == 0 || want[i] != want[i - 1]));
		now += d; /* the work queue runs it then */
	}
}

/* A look woken by something else before the look-again is due keeps the schedule. */
static void recheck_an_early_look_keeps_the_schedule(void **state)
{
	struct pods_recheck r = {0};
	bool told;

	(void)state;
	assert_int_equal(pods_recheck_next(&r, 7, T0_MS, &told), 5000);
	assert_true(told);
	assert_int_equal(pods_recheck_next(&r, 7, T0_MS + 5000, &told), 10000);
	/* Our own status write, an EndpointSlice: woken at once, twice, nothing doubles. */
	assert_int_equal(pods_recheck_next(&r, 7, T0_MS + 5100, &told), 10000);
	assert_false(told);
	assert_int_equal(pods_recheck_next(&r, 7, T0_MS + 9000, &told), 10000);
	assert_false(told);
	/* The look-again itself, scheduled at T0 + 5 s for 10 s. */
	assert_int_equal(pods_recheck_next(&r, 7, T0_MS + 15000, &told), 20000);
	assert_true(told);
	/* Late (a busy worker) still counts as due. */
	assert_int_equal(pods_recheck_next(&r, 7, T0_MS + 60000, &told), 40000);
	assert_true(told);
	/* A queue that ran it within the same second (its clock in ms, ours rounded) too. */
	assert_int_equal(pods_recheck_next(&r, 7, T0_MS + 100999, &told), 80000);
	assert_int_equal(pods_recheck_next(&r, 7, T0_MS + 180999, NULL), 160000);
}

/* Anything different starts again at the first delay. */
static void recheck_a_change_starts_again(void **state)
{
	struct pods_recheck r = {0};
	int64_t now = T0_MS;
	bool told;

	(void)state;
	for (int i = 0; i < 4; i++)
		now += pods_recheck_next(&r, 7, now, NULL);
	assert_int_equal(pods_recheck_delay_ms(r.step), 40000);
	/* Seen at once (a watch event), long before the look-again is due. */
	assert_int_equal(pods_recheck_next(&r, 8, now + 100, &told), 5000);
	assert_true(told);
	assert_int_equal(pods_recheck_next(&r, 8, now + 5100, &told), 10000);
	assert_true(told);
	/* Back to what it was: that is a change too. */
	assert_int_equal(pods_recheck_next(&r, 7, now + 6000, &told), 5000);
	assert_true(told);
	/* All zero is no look yet: the first look schedules the first delay. */
	r = (struct pods_recheck){0};
	assert_int_equal(pods_recheck_next(&r, 7, now, &told), 5000);
	assert_true(told);
}

static void recheck_prints_tell_what_was_seen(void **state)
{
	const char *a[] = {"False", "HAProxyImagePullFailed", "pod p: ...", "3", "1234"};
	const char *b[] = {"False", "HAProxyImagePullFailed", "pod p: ...", "3", "1235"};
	const char *c[] = {"False", "HAProxyImagePullFailed", "pod p: ...", "3", NULL};
	const char *d[] = {"False", "HAProxyImagePullFailed", "pod p: ...", "3", ""};
	const char *split1[] = {"ab", "c"}, *split2[] = {"a", "bc"};

	(void)state;
	assert_int_equal(pods_recheck_print(a, 5), pods_recheck_print(a, 5));
	assert_int_not_equal(pods_recheck_print(a, 5), pods_recheck_print(b, 5));
	assert_int_equal(pods_recheck_print(c, 5), pods_recheck_print(d, 5));
	assert_int_not_equal(pods_recheck_print(split1, 2), pods_recheck_print(split2, 2));
	assert_int_not_equal(pods_recheck_print(NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pods_image_never_pulled),
	    cmocka_unit_test(pods_image_pull_back_off_names_the_image),
	    cmocka_unit_test(pods_crash_loop_tells_the_last_exit),
	    cmocka_unit_test(pods_container_config_error),
	    cmocka_unit_test(pods_unschedulable),
	    cmocka_unit_test(pods_running_not_ready_after_the_grace),
	    cmocka_unit_test(pods_all_fine_or_starting),
	    cmocka_unit_test(pods_empty_list_and_bad_input),
	    cmocka_unit_test(pods_being_deleted_are_left_out),
	    cmocka_unit_test(pods_worst_first_then_by_name),
	    cmocka_unit_test(pods_many_are_cut_and_counted),
	    cmocka_unit_test(pods_a_long_kubelet_message_is_cut_and_marked),
	    cmocka_unit_test(recheck_delays_double_up_to_the_cap),
	    cmocka_unit_test(recheck_the_same_stuck_rollout_backs_off),
	    cmocka_unit_test(recheck_an_early_look_keeps_the_schedule),
	    cmocka_unit_test(recheck_a_change_starts_again),
	    cmocka_unit_test(recheck_prints_tell_what_was_seen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
