/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the YAML/JSON stream reader, the Kanary model and the YAML writer. */
/*
 * The input is a manifest stream, as `check` and `render` read it. Checked:
 * - doc_parse_stream_warn either fails with -EINVAL or -E2BIG and a message,
 *   or gives an array of documents;
 * - every document yamlout_document can write (a string that is not UTF-8
 *   it refuses) reads back as the same value (so yamlout quotes every string
 *   that would read as another type, and writes numbers exactly);
 * - every Kanary goes through kanary_check (read, validate, resolve against
 *   the Services and EndpointSlices of the same stream, default) and
 *   kanary_summary; one without errors has its defaults filled in, 1 to
 *   KANARY_MAX_ROUTES routes and weights summing to 100.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/kanary.h"
#include "common/kanary_check.h"
#include "common/kerr.h"
#include "common/limits.h"
#include "common/resolve.h"
#include "common/yamlout.h"
#include "tests/fuzz/fuzz.h"

static void count_warning(void *ctx, const char *msg)
{
	size_t *n = ctx;

	FUZZ_CHECK(msg && msg[0], "an empty warning");
	(*n)++;
}

/* obj written as YAML reads back as obj. */
static void check_round_trip(const struct json_object *obj)
{
	struct json_object *back = NULL;
	struct doc_err err = {{0}};
	struct buf out;
	int r;

	buf_init(&out, KANARY_MAX_OUTPUT);
	r = yamlout_document(obj, &out);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -E2BIG, "yamlout_document: %d", r);
	if (r < 0)
		goto out_finish;
	r = doc_parse_stream(out.data, out.len, &back, &err);
	FUZZ_CHECK(r == 0, "yamlout's output does not read back (%s):\n%s", err.msg, out.data);
	FUZZ_CHECK(json_object_array_length(back) == 1, "%zu documents read back from:\n%s",
	           json_object_array_length(back), out.data);
	FUZZ_CHECK(json_object_equal((struct json_object *)obj, json_object_array_get_idx(back, 0)),
	           "read back as another value:\n%s\nwas:\n%s", out.data,
	           json_object_to_json_string((struct json_object *)obj));
	json_object_put(back);
out_finish:
	buf_finish(&out);
}

static void check_kanary(const struct json_object *obj, const struct catalog *cat)
{
	struct kanary_resolution res;
	struct kerr_list errs;
	struct kanary *k = NULL;
	unsigned defaulted = 0;
	struct buf joined;
	char *summary = NULL;
	int64_t sum = 0;
	int r;

	kerr_init(&errs);
	r = kanary_check(obj, cat, KANARY_CHECK_REQUIRE_NAME, &k, &res, &defaulted, &errs);
	FUZZ_CHECK(r == 0, "kanary_check: %d", r);
	buf_init(&joined, KANARY_MAX_OUTPUT);
	FUZZ_CHECK(kerr_join(&errs, "; ", &joined) == 0, "kerr_join failed");
	FUZZ_CHECK(kerr_any(&errs) == (joined.len > 0), "kerr_any and the joined text disagree");
	buf_finish(&joined);
	r = kanary_summary(k, &summary);
	FUZZ_CHECK(r == 0, "kanary_summary: %d", r);
	free(summary);
	FUZZ_CHECK(k->namespace && k->namespace[0], "no namespace");
	if (!kerr_any(&errs)) {
		FUZZ_CHECK(k->name && k->name[0], "a valid Kanary without a name");
		FUZZ_CHECK(k->destination, "a valid Kanary without a destination");
		FUZZ_CHECK(k->port_set && k->port >= 1 && k->port <= 65535, "port not defaulted");
		FUZZ_CHECK(k->replicas_set, "replicas not defaulted");
		FUZZ_CHECK(k->n_routes >= 1 && k->n_routes <= KANARY_MAX_ROUTES &&
		               k->n_routes == k->n_routes_seen && res.n_routes == k->n_routes,
		           "%zu routes (%zu seen, %zu resolved)", k->n_routes, k->n_routes_seen,
		           res.n_routes);
		for (size_t i = 0; i < k->n_routes; i++) {
			FUZZ_CHECK(k->routes[i].weight_set && k->routes[i].weight >= 0 &&
			               k->routes[i].weight <= KANARY_MAX_WEIGHT,
			           "route %zu weight", i);
			FUZZ_CHECK(res.routes[i].service_found && res.routes[i].port_found,
			           "route %zu unresolved", i);
			sum += k->routes[i].weight;
		}
		FUZZ_CHECK(sum == KANARY_WEIGHT_TOTAL, "weights sum to %lld", (long long)sum);
	}
	kanary_resolution_finish(&res);
	kanary_destroy(k);
	kerr_finish(&errs);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *docs = NULL;
	struct doc_err err = {{0}};
	struct catalog *cat = NULL;
	size_t warnings = 0;
	const struct doc_warner warner = {.fn = count_warning, .ctx = &warnings};
	int r;

	r = doc_parse_stream_warn((const char *)data, size, &warner, &docs, &err);
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL || r == -E2BIG, "doc_parse_stream_warn: %d", r);
		FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL, "unterminated message");
		FUZZ_CHECK(r != -EINVAL || err.msg[0], "-EINVAL without a message");
		return 0;
	}
	FUZZ_CHECK(json_object_is_type(docs, json_type_array), "not an array");
	r = catalog_create_from(docs, "default", &cat);
	FUZZ_CHECK(r == 0, "catalog_create_from: %d", r);
	for (size_t i = 0; i < json_object_array_length(docs); i++) {
		const struct json_object *d = json_object_array_get_idx(docs, i);

		FUZZ_CHECK(d && !json_object_is_type(d, json_type_null), "document %zu is null", i);
		check_round_trip(d);
		if (kanary_is_kanary(d))
			check_kanary(d, cat);
	}
	catalog_destroy(cat);
	json_object_put(docs);
	return 0;
}
