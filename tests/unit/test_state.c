/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the state (controller/state.c): what changes live, what rolls, slot keeping. */
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

#include "common/kanary.h"
#include "common/render.h"
#include "common/resolve.h"
#include "controller/state.h"

#define HASH_A "aaaaaaaa"
#define HASH_B "bbbbbbbb"

struct fixture {
	struct kanary k;
	struct kanary_resolution res;
};

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

static void set_endpoints(struct fixture *f, size_t i, size_t n)
{
	struct kanary_resolved_route *rr = &f->res.routes[i];

	for (size_t j = 0; j < rr->n_endpoints; j++)
		free(rr->endpoints[j].address);
	free(rr->endpoints);
	rr->endpoints = n ? calloc(n, sizeof(*rr->endpoints)) : NULL;
	rr->n_endpoints = n;
	for (size_t j = 0; j < n; j++) {
		char a[32];

		snprintf(a, sizeof(a), "10.0.%zu.%zu", i, j + 1);
		rr->endpoints[j].address = xstrdup(a);
		rr->endpoints[j].port = 8080;
	}
}

/* Route i of f: service name and weight, n endpoints 10.0.<i>.<1..n>:8080. */
static void set_route(struct fixture *f, size_t i, const char *svc, int64_t weight, size_t n)
{
	free(f->k.routes[i].service_name);
	f->k.routes[i].service_name = xstrdup(svc);
	f->k.routes[i].weight = weight;
	f->k.routes[i].weight_set = true;
	set_endpoints(f, i, n);
	if (i + 1 > f->k.n_routes) {
		f->k.n_routes = f->res.n_routes = i + 1;
		f->k.n_routes_seen = i + 1;
	}
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->k.name = xstrdup("shop");
	f->k.namespace = xstrdup("default");
	set_route(f, 0, "shop-v1", 80, 3);
	set_route(f, 1, "shop-v2", 20, 2);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < KANARY_MAX_ROUTES; i++) {
		set_endpoints(f, i, 0);
		free(f->k.routes[i].service_name);
	}
	free(f->k.name);
	free(f->k.namespace);
	free(f);
	return 0;
}

/* The state of f against hash8 with slots kept from prev. Ownership: the caller's. */
static struct json_object *build(struct fixture *f, const char *hash8,
                                 const struct json_object *prev)
{
	int slots[KANARY_MAX_ROUTES];
	struct json_object *st = NULL;

	assert_int_equal(state_slots(&f->k, &f->res, prev, slots), 0);
	assert_int_equal(state_build(&f->k, &f->res, slots, hash8, prev, &st), 0);
	assert_non_null(st);
	return st;
}

static int64_t route_int(const struct json_object *st, size_t i, const char *key)
{
	struct json_object *routes, *v;

	assert_true(json_object_object_get_ex(st, "routes", &routes));
	assert_true(json_object_object_get_ex(json_object_array_get_idx(routes, i), key, &v));
	return json_object_get_int64(v);
}

/* The format of docs/agent.md (the state), field by field. */
static void test_format(void **state)
{
	struct fixture *f = *state;
	struct json_object *st = build(f, HASH_A, NULL);
	char buf[1024];

	snprintf(
	    buf, sizeof(buf),
	    "{\"kanary\":\"shop\",\"generation\":1,\"structureHash\":\"aaaaaaaa\",\"routes\":["
	    "{\"backend\":\"shop-v1\",\"weight\":80,\"slots\":%d,\"endpoints\":["
	    "{\"address\":\"10.0.0.1\",\"port\":8080},{\"address\":\"10.0.0.2\",\"port\":8080},"
	    "{\"address\":\"10.0.0.3\",\"port\":8080}]},"
	    "{\"backend\":\"shop-v2\",\"weight\":20,\"slots\":%d,\"endpoints\":["
	    "{\"address\":\"10.0.1.1\",\"port\":8080},{\"address\":\"10.0.1.2\",\"port\":8080}]}]}",
	    render_slots(3, 0), render_slots(2, 0));
	assert_string_equal(json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN), buf);
	assert_int_equal(state_generation(st), 1);
	json_object_put(st);
}

/* An endpoint change is state only: same slots, same structure, a new generation. */
static void test_endpoint_change_is_live(void **state)
{
	struct fixture *f = *state;
	struct json_object *a = build(f, HASH_A, NULL), *b, *c;

	set_endpoints(f, 0, 1);
	b = build(f, HASH_A, a);
	assert_int_equal(state_diff(a, b), STATE_LIVE);
	assert_int_equal(state_generation(b), 2);
	assert_int_equal(route_int(b, 0, "slots"), route_int(a, 0, "slots"));
	/* Rebuilt from the same input: the same state and generation. */
	c = build(f, HASH_A, b);
	assert_int_equal(state_diff(b, c), STATE_SAME);
	assert_int_equal(state_generation(c), 2);
	assert_true(json_object_equal(b, c));
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
}

/* A weight change is state only. */
static void test_weight_change_is_live(void **state)
{
	struct fixture *f = *state;
	struct json_object *a = build(f, HASH_A, NULL), *b;

	f->k.routes[0].weight = 50;
	f->k.routes[1].weight = 50;
	b = build(f, HASH_A, a);
	assert_int_equal(state_diff(a, b), STATE_LIVE);
	assert_int_equal(route_int(b, 0, "weight"), 50);
	assert_int_equal(state_generation(b), 2);
	json_object_put(a);
	json_object_put(b);
}

/* A route added or removed is structural. */
static void test_route_added_is_structural(void **state)
{
	struct fixture *f = *state;
	struct json_object *a = build(f, HASH_A, NULL), *b, *c;

	f->k.routes[1].weight = 10;
	set_route(f, 2, "shop-v3", 10, 1);
	b = build(f, HASH_B, a);
	assert_int_equal(state_diff(a, b), STATE_STRUCTURE);
	/* The routes it had keep their slots. */
	assert_int_equal(route_int(b, 0, "slots"), route_int(a, 0, "slots"));
	assert_int_equal(route_int(b, 2, "slots"), render_slots(1, 0));
	assert_int_equal(state_generation(b), 2);
	/* And removed again. */
	f->k.n_routes = f->res.n_routes = f->k.n_routes_seen = 2;
	f->k.routes[1].weight = 20;
	c = build(f, HASH_A, b);
	assert_int_equal(state_diff(b, c), STATE_STRUCTURE);
	assert_int_equal(state_diff(NULL, c), STATE_STRUCTURE);
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
}

/* Slots grow when a route outgrows them (structural) and never shrink when pods go. */
static void test_slots_grow_and_stay(void **state)
{
	struct fixture *f = *state;
	struct json_object *a = build(f, HASH_A, NULL), *b, *c, *d;
	int64_t s0 = route_int(a, 0, "slots");

	assert_true(s0 >= 3);
	/* Up to the slots it has: live. */
	set_endpoints(f, 0, (size_t)s0);
	b = build(f, HASH_A, a);
	assert_int_equal(route_int(b, 0, "slots"), s0);
	assert_int_equal(state_diff(a, b), STATE_LIVE);
	/* One more: more slots, a new structure. */
	set_endpoints(f, 0, (size_t)s0 + 1);
	c = build(f, HASH_B, b);
	assert_true(route_int(c, 0, "slots") > s0);
	assert_int_equal(route_int(c, 0, "slots"), render_slots((size_t)s0 + 1, (int)s0));
	assert_int_equal(state_diff(b, c), STATE_STRUCTURE);
	/* Down to 1: the slots stay, so nothing rolls. */
	set_endpoints(f, 0, 1);
	d = build(f, HASH_B, c);
	assert_int_equal(route_int(d, 0, "slots"), route_int(c, 0, "slots"));
	assert_int_equal(state_diff(c, d), STATE_LIVE);
	/* 3 -> 40 pods rolls at most twice. */
	{
		struct json_object *prev = json_object_get(a), *next;
		int rolls = 0;

		for (size_t n = 3; n <= 40; n++) {
			set_endpoints(f, 0, n);
			next = build(f, HASH_A, prev);
			if (route_int(next, 0, "slots") != route_int(prev, 0, "slots"))
				rolls++;
			json_object_put(prev);
			prev = next;
		}
		assert_true(rolls <= 2);
		json_object_put(prev);
	}
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
	json_object_put(d);
}

static void test_from_configmap_and_refused(void **state)
{
	struct fixture *f = *state;
	struct json_object *cm = json_tokener_parse(
	    "{\"data\":{\"state.json\":\"{\\\"generation\\\":7,\\\"routes\\\":[]}\"}}");
	struct json_object *st = state_from_configmap(cm), *bad;
	int slots[KANARY_MAX_ROUTES] = {1, 1};
	struct json_object *out = NULL;

	assert_non_null(st);
	assert_int_equal(state_generation(st), 7);
	json_object_put(st);
	json_object_put(cm);
	bad = json_tokener_parse("{\"data\":{\"state.json\":\"[1]\"}}");
	assert_null(state_from_configmap(bad));
	json_object_put(bad);
	assert_null(state_from_configmap(NULL));
	/* More endpoints than slots. */
	assert_int_equal(state_build(&f->k, &f->res, slots, HASH_A, NULL, &out), -EINVAL);
	assert_null(out);
	assert_int_equal(state_build(&f->k, &f->res, NULL, HASH_A, NULL, &out), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_format, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_endpoint_change_is_live, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_weight_change_is_live, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_route_added_is_structural, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_slots_grow_and_stay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_from_configmap_and_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
