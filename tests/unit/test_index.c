/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the controller's indexes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "controller/index.h"
#include "controller/metrics.h"
#include "common/string_map.h"

static void string_map_puts_gets_replaces_and_removes(void **state)
{
	struct string_map m;
	void *old = NULL;
	int a = 1, b = 2;

	string_map_init(&m, 100000);
	assert_int_equal(string_map_put(&m, "x", &a, NULL), 0);
	assert_int_equal(string_map_put(&m, "x", &b, &old), 1);
	assert_ptr_equal(old, &a);
	assert_ptr_equal(string_map_get(&m, "x"), &b);
	/* Many keys: the table grows and keeps them all. */
	for (int i = 0; i < 5000; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(string_map_put(&m, k, NULL, NULL), 0);
	}
	assert_int_equal(string_map_size(&m), 5001);
	assert_true(string_map_contains(&m, "k4999"));
	assert_false(string_map_contains(&m, "k5000"));
	assert_int_equal(string_map_remove(&m, "k10", NULL), 0);
	assert_int_equal(string_map_remove(&m, "k10", NULL), -ENOENT);
	assert_int_equal(string_map_size(&m), 5000);
	string_map_finish(&m, NULL);
}

static void string_map_refuses_past_its_ceiling(void **state)
{
	struct string_map m;

	string_map_init(&m, 2);
	assert_int_equal(string_map_put(&m, "a", NULL, NULL), 0);
	assert_int_equal(string_map_put(&m, "b", NULL, NULL), 0);
	assert_int_equal(string_map_put(&m, "c", NULL, NULL), -E2BIG);
	assert_int_equal(string_map_put(&m, "a", NULL, NULL), 1); /* replacing is fine */
	assert_int_equal(string_map_put(&m, NULL, NULL, NULL), -EINVAL);
	string_map_finish(&m, NULL);
}

static void expect_members(struct index *idx, enum index_rel rel, const char *group,
                           const char *want)
{
	char **keys = NULL;
	size_t n = 0;
	struct buf b;

	buf_init(&b, 4096);
	assert_int_equal(index_members(idx, rel, group, &keys, &n), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(buf_printf(&b, "%s%s", i ? " " : "", keys[i]), 0);
	assert_string_equal(b.len ? b.data : "", want);
	index_keys_free(keys, n);
	buf_finish(&b);
}

static void index_maps_services_to_the_kanaries_naming_them(void **state)
{
	const char *const a[] = {"ns/myapp", "ns/v1", "ns/v2"};
	const char *const b[] = {"ns/other", "ns/v2"};
	const char *const a2[] = {"ns/myapp", "ns/v1", "ns/v3"};
	struct index *idx = NULL;

	assert_int_equal(index_create(&idx), 0);
	assert_int_equal(index_set(idx, INDEX_REFS, "ns/a", a, 3), 0);
	assert_int_equal(index_set(idx, INDEX_REFS, "ns/b", b, 2), 0);
	expect_members(idx, INDEX_REFS, "ns/v2", "ns/a ns/b");
	expect_members(idx, INDEX_REFS, "ns/v1", "ns/a");
	/* A spec change replaces what the Kanary names. */
	assert_int_equal(index_set(idx, INDEX_REFS, "ns/a", a2, 3), 0);
	expect_members(idx, INDEX_REFS, "ns/v2", "ns/b");
	expect_members(idx, INDEX_REFS, "ns/v3", "ns/a");
	expect_members(idx, INDEX_REFS, NULL, "ns/a ns/b");
	index_remove(idx, INDEX_REFS, "ns/b");
	expect_members(idx, INDEX_REFS, "ns/v2", "");
	expect_members(idx, INDEX_REFS, "ns/other", "");
	/* Relations are separate. */
	expect_members(idx, INDEX_REPLICASETS, "ns/v1", "");
	index_destroy(idx);
	index_destroy(NULL);
}

static void index_follows_a_member_that_changes_group(void **state)
{
	const char *const v1[] = {"ns/v1"};
	const char *const v2[] = {"ns/v2"};
	struct index *idx = NULL;

	assert_int_equal(index_create(&idx), 0);
	assert_int_equal(index_set(idx, INDEX_REPLICASETS, "ns/s1", v1, 1), 0);
	assert_int_equal(index_set(idx, INDEX_REPLICASETS, "ns/s2", v1, 1), 0);
	expect_members(idx, INDEX_REPLICASETS, "ns/v1", "ns/s1 ns/s2");
	assert_int_equal(index_set(idx, INDEX_REPLICASETS, "ns/s2", v2, 1), 0);
	expect_members(idx, INDEX_REPLICASETS, "ns/v1", "ns/s1");
	expect_members(idx, INDEX_REPLICASETS, "ns/v2", "ns/s2");
	assert_int_equal(index_set(idx, INDEX_REPLICASETS, "ns/s1", NULL, 0), 0);
	expect_members(idx, INDEX_REPLICASETS, "ns/v1", "");
	index_destroy(idx);
}

static void metrics_render_counts_histogram_and_routes(void **state)
{
	const struct metrics_route routes[] = {{"myapp-v1", 80, 3}, {"myapp-v2", 20, 0}};
	struct metrics *m = NULL;
	struct buf out;
	char esc[16];

	assert_int_equal(metrics_create(&m), 0);
	metrics_reconciled(m, METRICS_SUCCESS, 0.003);
	metrics_reconciled(m, METRICS_SUCCESS, 0.2);
	metrics_reconciled(m, METRICS_ERROR, 100);
	assert_int_equal(metrics_set_routes(m, "default/rule", routes, 2), 0);
	buf_init(&out, 1 << 20);
	assert_int_equal(metrics_render(m, NULL, NULL, &out), 0);
	assert_non_null(
	    strstr(out.data, "kanary_controller_reconcile_total{result=\"success\"} 2\n"));
	assert_non_null(
	    strstr(out.data, "kanary_controller_reconcile_total{result=\"error\"} 1\n"));
	assert_non_null(strstr(out.data, "kanary_controller_reconcile_errors_total 1\n"));
	assert_non_null(strstr(
	    out.data, "kanary_controller_reconcile_duration_seconds_bucket{le=\"0.005\"} 1\n"));
	assert_non_null(strstr(
	    out.data, "kanary_controller_reconcile_duration_seconds_bucket{le=\"0.25\"} 2\n"));
	assert_non_null(
	    strstr(out.data, "kanary_controller_reconcile_duration_seconds_bucket{le=\"60\"} 2\n"));
	assert_non_null(strstr(
	    out.data, "kanary_controller_reconcile_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(out.data,
	                       "kanary_route_weight{namespace=\"default\",kanary=\"rule\","
	                       "service=\"myapp-v1\"} 80\n"));
	assert_non_null(strstr(out.data, "kanary_route_ready_endpoints{namespace=\"default\","
	                                 "kanary=\"rule\",service=\"myapp-v2\"} 0\n"));
	/* A deleted Kanary's series go away. */
	metrics_forget(m, "default/rule");
	buf_reset(&out);
	assert_int_equal(metrics_render(m, NULL, NULL, &out), 0);
	assert_null(strstr(out.data, "kanary=\"rule\""));

	/* Series at their own size: names up to 63 characters, replaced by fewer routes. */
	{
		static const char long_name[] =
		    "s23456789012345678901234567890123456789012345678901234567890123";
		const struct metrics_route three[] = {
		    {.service = long_name, .weight = 10, .endpoints = 1},
		    {.service = "b", .weight = 20, .endpoints = 2},
		    {.service = "c", .weight = 70, .endpoints = 3},
		};
		const struct metrics_route one[] = {
		    {.service = "only", .weight = 100, .endpoints = 4}};
		const struct metrics_route too_long[] = {
		    {.service = "s234567890123456789012345678901234567890123456789012345678901234",
		     .weight = 100}};

		assert_int_equal(metrics_set_routes(m, "ns/k", three, 3), 0);
		buf_reset(&out);
		assert_int_equal(metrics_render(m, NULL, NULL, &out), 0);
		assert_non_null(strstr(out.data,
		                       "kanary_route_weight{namespace=\"ns\",kanary=\"k\","
		                       "service=\"s23456789012345678901234567890123456789"
		                       "012345678901234567890123\"} 10\n"));
		assert_non_null(strstr(out.data, "kanary_route_ready_endpoints{namespace=\"ns\","
		                                 "kanary=\"k\",service=\"c\"} 3\n"));
		assert_int_equal(metrics_set_routes(m, "ns/k", one, 1), 0);
		buf_reset(&out);
		assert_int_equal(metrics_render(m, NULL, NULL, &out), 0);
		assert_null(strstr(out.data, "service=\"b\""));
		assert_non_null(strstr(out.data,
		                       "kanary_route_weight{namespace=\"ns\",kanary=\"k\","
		                       "service=\"only\"} 100\n"));
		/* A name past 63 characters is refused and the series in force stays. */
		assert_int_equal(metrics_set_routes(m, "ns/k", too_long, 1), -E2BIG);
		buf_reset(&out);
		assert_int_equal(metrics_render(m, NULL, NULL, &out), 0);
		assert_non_null(strstr(out.data, "service=\"only\"} 100\n"));
	}
	buf_finish(&out);
	metrics_destroy(m);

	assert_int_equal(metrics_escape("a\"b\\c\n", esc, sizeof(esc)), 0);
	assert_string_equal(esc, "a\\\"b\\\\c\\n");
	assert_int_equal(metrics_escape("0123456789abcdef", esc, sizeof(esc)), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(string_map_puts_gets_replaces_and_removes),
	    cmocka_unit_test(string_map_refuses_past_its_ceiling),
	    cmocka_unit_test(index_maps_services_to_the_kanaries_naming_them),
	    cmocka_unit_test(index_follows_a_member_that_changes_group),
	    cmocka_unit_test(metrics_render_counts_histogram_and_routes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
