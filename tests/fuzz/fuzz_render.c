/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the renderer, given any Kanary that passes the checks. */
/*
 * The input is a manifest stream, as `kanary-controller render` reads it:
 * Kanaries, and Services and EndpointSlices standing in for the cluster.
 * Each Kanary that kanary_check accepts is rendered, and checked:
 * - render_haproxy succeeds, and twice gives the same bytes;
 * - the same stream with its documents in reverse order (the order a cache
 *   hands objects over is not the cluster's) gives the same bytes; a Service
 *   given twice counts once, its last copy, as catalog_add keeps it;
 * - the frontend draws rand(100) once and each route with a weight above 0
 *   owns one range of it as wide as its weight, the ranges in route order
 *   covering 0..99 exactly; each route has one backend; every endpoint
 *   appears as a server;
 * - render_hash gives 64 hex digits, objects_desired the four objects, and
 *   each is written by yamlout_document and reads back as itself;
 * - the other listener options (IPv6 wildcard, no admin socket, threads)
 *   render too.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/kanary.h"
#include "common/kanary_check.h"
#include "common/json_field.h"
#include "common/kerr.h"
#include "common/limits.h"
#include "common/objects.h"
#include "common/render.h"
#include "common/resolve.h"
#include "common/yamlout.h"
#include "tests/fuzz/fuzz.h"

/* Renders doc (a Kanary) against cat; NULL when it does not pass the checks. */
static char *render_checked(const struct json_object *doc, const struct catalog *cat,
                            const struct render_options *o, struct kanary **ret_k,
                            struct kanary_resolution *ret_res)
{
	struct kanary_resolution res;
	struct kerr_list errs;
	struct kanary *k = NULL;
	unsigned defaulted;
	char *cfg = NULL;
	size_t len = 0;
	int r;

	kerr_init(&errs);
	r = kanary_check(doc, cat, KANARY_CHECK_REQUIRE_NAME, &k, &res, &defaulted, &errs);
	FUZZ_CHECK(r == 0, "kanary_check: %d", r);
	if (!kerr_any(&errs)) {
		r = render_haproxy(k, &res, o, &cfg, &len);
		FUZZ_CHECK(r == 0, "render_haproxy of a checked Kanary: %d", r);
		FUZZ_CHECK(cfg && strlen(cfg) == len, "rendered length");
	}
	kerr_finish(&errs);
	if (cfg && ret_k) {
		*ret_k = k;
		*ret_res = res;
	} else {
		kanary_resolution_finish(&res);
		kanary_destroy(k);
	}
	return cfg;
}

/*
 * The structure of cfg against k's routes (issue #13): one draw of 100 through
 * the route map, each route's backend and its use_backend once, and no weight
 * and no endpoint in the text: those are state, which the agent applies.
 */
static void check_config(const char *cfg, const struct kanary *k,
                         const struct kanary_resolution *res)
{
	char needle[KANARY_MAX_NAME + 64];

	FUZZ_CHECK(strstr(cfg, "set-var(txn.draw) rand(100)\n"), "no draw of 100");
	FUZZ_CHECK(!strstr(cfg, "-m int "), "a draw range in the structure");
	for (size_t i = 0; i < k->n_routes; i++) {
		const struct kanary_route *rt = &k->routes[i];
		const char *p;

		snprintf(needle, sizeof(needle), "\nbackend route_%s\n", rt->service_name);
		p = strstr(cfg, needle);
		FUZZ_CHECK(p && !strstr(p + 1, needle), "backend of %s not once", rt->service_name);
		snprintf(needle, sizeof(needle), "    use_backend route_%s if ", rt->service_name);
		p = strstr(cfg, needle);
		FUZZ_CHECK(p && !strstr(p + 1, needle), "use_backend of %s not once",
		           rt->service_name);
		for (size_t j = 0; j < res->routes[i].n_endpoints; j++) {
			const struct kanary_endpoint *e = &res->routes[i].endpoints[j];

			snprintf(needle, sizeof(needle),
			         strchr(e->address, ':') ? " [%s]:%d\n" : " %s:%d\n", e->address,
			         e->port);
			FUZZ_CHECK(!strstr(cfg, needle), "endpoint%s in the structure", needle);
		}
	}
}

/* The objects of k written as YAML, each reading back as itself. */
static void check_objects(const struct kanary *k, const char *cfg)
{
	struct objects_options o;
	struct json_object *objs = NULL;
	char hash[65];
	int r;

	r = render_hash(cfg, strlen(cfg), hash);
	FUZZ_CHECK(r == 0 && strlen(hash) == 64 && strspn(hash, "0123456789abcdef") == 64,
	           "render_hash: %d", r);
	objects_options_init(&o);
	/* The state text stands in for state.json: any text round-trips the same. */
	r = objects_desired(k, cfg, hash, cfg, &o, &objs);
	FUZZ_CHECK(r == 0, "objects_desired: %d", r);
	/* Structure, state, ServiceAccount, Role, RoleBinding, Deployment, PDB, Service. */
	FUZZ_CHECK(json_object_array_length(objs) == 8, "%zu objects",
	           json_object_array_length(objs));
	for (size_t i = 0; i < json_object_array_length(objs); i++) {
		struct json_object *obj = json_object_array_get_idx(objs, i), *back = NULL;
		struct doc_err err = {{0}};
		struct buf out;

		buf_init(&out, KANARY_MAX_OUTPUT);
		r = yamlout_document(obj, &out);
		FUZZ_CHECK(r == 0, "yamlout_document of object %zu: %d", i, r);
		r = doc_parse_stream(out.data, out.len, &back, &err);
		FUZZ_CHECK(r == 0 && json_object_array_length(back) == 1 &&
		               json_object_equal(obj, json_object_array_get_idx(back, 0)),
		           "object %zu does not read back: %s\n%s", i, err.msg, out.data);
		json_object_put(back);
		buf_finish(&out);
	}
	json_object_put(objs);
}

/* A Service's namespace and name; false for any other document. */
static bool service_of(const struct json_object *d, const char **ret_ns, const char **ret_name)
{
	const char *av = json_field_str(d, "apiVersion"), *kind = json_field_str(d, "kind");
	const char *ns = json_field_str_path(d, JSON_FIELD_PATH("metadata", "namespace"));
	const char *name = json_field_str_path(d, JSON_FIELD_PATH("metadata", "name"));

	if (!av || !kind || !name || strcmp(av, "v1") != 0 || strcmp(kind, "Service") != 0)
		return false;
	*ret_ns = ns && ns[0] ? ns : "default";
	*ret_name = name;
	return true;
}

/* docs last to first, each Service only in its last copy. Ownership: caller puts it. */
static struct json_object *reverse_stream(const struct json_object *docs)
{
	struct json_object *rev = json_object_new_array();
	const char *ns, *name, *ns2, *name2;

	FUZZ_CHECK(rev, "json_object_new_array");
	for (size_t i = json_object_array_length(docs); i > 0; i--) {
		struct json_object *d = json_object_array_get_idx(docs, i - 1);
		bool dup = false;

		if (service_of(d, &ns, &name)) {
			for (size_t j = 0; !dup && j < json_object_array_length(rev); j++)
				dup = service_of(json_object_array_get_idx(rev, j), &ns2, &name2) &&
				      strcmp(ns, ns2) == 0 && strcmp(name, name2) == 0;
		}
		if (!dup)
			json_object_array_add(rev, json_object_get(d));
	}
	return rev;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *docs = NULL, *reversed;
	struct catalog *cat = NULL, *cat_rev = NULL;
	struct render_options o, other;
	struct doc_err err = {{0}};
	size_t n;
	int r;

	if (doc_parse_stream((const char *)data, size, &docs, &err) < 0)
		return 0;
	n = json_object_array_length(docs);
	reversed = reverse_stream(docs);
	r = catalog_create_from(docs, "default", &cat);
	FUZZ_CHECK(r == 0, "catalog_create_from: %d", r);
	r = catalog_create_from(reversed, "default", &cat_rev);
	FUZZ_CHECK(r == 0, "catalog_create_from (reversed): %d", r);
	render_options_init(&o);
	render_options_init(&other);
	other.bind_address = "::";
	other.runtime_dir = NULL;
	other.nbthread = 2;

	for (size_t i = 0; i < n; i++) {
		const struct json_object *d = json_object_array_get_idx(docs, i);
		struct kanary_resolution res;
		struct kanary *k = NULL;
		char *cfg, *cfg2, *cfg_rev, *cfg_other;

		if (!kanary_is_kanary(d))
			continue;
		cfg = render_checked(d, cat, &o, &k, &res);
		if (!cfg)
			continue;
		cfg2 = render_checked(d, cat, &o, NULL, NULL);
		FUZZ_CHECK(cfg2 && strcmp(cfg, cfg2) == 0, "two renders differ");
		cfg_rev = render_checked(d, cat_rev, &o, NULL, NULL);
		FUZZ_CHECK(cfg_rev && strcmp(cfg, cfg_rev) == 0,
		           "the stream reversed renders differently:\n%s\n----\n%s", cfg,
		           cfg_rev ? cfg_rev : "(not rendered)");
		cfg_other = render_checked(d, cat, &other, NULL, NULL);
		FUZZ_CHECK(cfg_other, "other options do not render");
		check_config(cfg, k, &res);
		check_objects(k, cfg);
		free(cfg_other);
		free(cfg_rev);
		free(cfg2);
		free(cfg);
		kanary_resolution_finish(&res);
		kanary_destroy(k);
	}
	catalog_destroy(cat_rev);
	catalog_destroy(cat);
	json_object_put(reversed);
	json_object_put(docs);
	return 0;
}
