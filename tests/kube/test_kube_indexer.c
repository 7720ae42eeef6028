/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the informers' indexer: the Service -> EndpointSlices index. */
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

#include "common/kobj.h"
#include "common/kube/indexer.h"

static struct kube_obj *slice(const char *ns, const char *name, const char *svc)
{
	char text[512];
	struct json_object *obj;
	struct kube_obj *o;

	if (svc)
		snprintf(text, sizeof(text),
		         "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"labels\":"
		         "{\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\"}",
		         name, ns, svc);
	else
		snprintf(text, sizeof(text),
		         "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"}}", name, ns);
	obj = json_tokener_parse(text);
	assert_non_null(obj);
	assert_int_equal(kobj_slice_decode(NULL, obj, &o), 0);
	json_object_put(obj);
	return o;
}

/* The keys of the records with value, space-separated, as one string. */
static void expect(const struct kube_indexer *ix, const char *value, const char *want)
{
	const struct kube_obj **objs = NULL;
	char got[1024] = "";
	size_t n = 0;

	assert_int_equal(kube_indexer_get(ix, KUBE_INDEX_SLICE_SERVICE, value, &objs, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(got, " ");
		strcat(got, objs[i]->key);
	}
	kube_objs_unref(objs, n);
	assert_string_equal(got, want);
}

static void slices_are_found_by_their_service(void **state)
{
	const kube_index_fn fns[] = {kube_index_slice_service};
	struct kube_obj *a = slice("ns", "web-b", "web"), *b = slice("ns", "web-a", "web");
	struct kube_obj *c = slice("other", "web-c", "web"), *d = slice("ns", "api-1", "api");
	struct kube_obj *e = slice("ns", "bare", NULL), *a2 = slice("ns", "web-b", "api");
	const struct kube_obj **objs;
	struct kube_indexer ix;
	size_t n;

	assert_int_equal(kube_indexer_init(&ix, fns, 1), 0);
	assert_int_equal(kube_indexer_get(&ix, 1, "ns/web", &objs, &n), -EINVAL);
	for (struct kube_obj **o = (struct kube_obj *[]){a, b, c, d, e, NULL}; *o; o++)
		assert_int_equal(kube_indexer_add(&ix, *o), 0);
	expect(&ix, "ns/web", "ns/web-a ns/web-b"); /* sorted by key */
	expect(&ix, "other/web", "other/web-c");
	expect(&ix, "ns/api", "ns/api-1");
	expect(&ix, "ns/none", "");

	/* An update that moves web-b to api: the old record out, the new one in. */
	kube_indexer_remove(&ix, a);
	assert_int_equal(kube_indexer_add(&ix, a2), 0);
	expect(&ix, "ns/web", "ns/web-a");
	expect(&ix, "ns/api", "ns/api-1 ns/web-b");

	/* The records handed out are references of their own: they outlive the index. */
	assert_int_equal(kube_indexer_get(&ix, KUBE_INDEX_SLICE_SERVICE, "ns/api", &objs, &n), 0);
	assert_int_equal(n, 2);
	kube_indexer_remove(&ix, d);
	kube_obj_unref(d);
	assert_string_equal(objs[0]->key, "ns/api-1");
	kube_objs_unref(objs, n);
	expect(&ix, "ns/api", "ns/web-b");

	kube_indexer_clear(&ix);
	expect(&ix, "ns/web", "");
	kube_indexer_finish(&ix);
	for (struct kube_obj **o = (struct kube_obj *[]){a, b, c, e, a2, NULL}; *o; o++)
		kube_obj_unref(*o);
}

static void the_index_function_skips_other_records(void **state)
{
	char values[2][KUBE_INDEX_VALUE_MAX + 1];
	struct json_object *obj =
	    json_tokener_parse("{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"labels\":"
	                       "{\"kubernetes.io/service-name\":\"web\"}}}");
	struct kube_obj *svc, *sl = slice("n", "s", "web");

	assert_int_equal(kobj_service_decode(NULL, obj, &svc), 0);
	/* A Service with the label is not a slice. */
	assert_int_equal(kube_index_slice_service(svc, values, 2), 0);
	assert_int_equal(kube_index_slice_service(sl, values, 0), 0);
	assert_int_equal(kube_index_slice_service(sl, values, 2), 1);
	assert_string_equal(values[0], "n/web");
	kube_obj_unref(svc);
	kube_obj_unref(sl);
	json_object_put(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(slices_are_found_by_their_service),
	    cmocka_unit_test(the_index_function_skips_other_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
