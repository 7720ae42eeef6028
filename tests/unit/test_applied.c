/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the applied digest (common/applied.h) and the child records (common/kobj_child.h). */
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
#include "common/buf.h"
#include "common/json_field.h"
#include "common/kobj_child.h"

static struct json_object *parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	if (!o)
		fail_msg("not JSON: %s", text);
	return o;
}

/* The canonical text of v, for comparing. Ownership: the caller frees it. */
static char *canonical(const struct json_object *v)
{
	struct buf b;
	char *s;
	size_t n;

	buf_init(&b, 1 << 20);
	assert_int_equal(applied_canonical(v, &b), 0);
	assert_int_equal(buf_steal(&b, &s, &n), 0);
	return s;
}

/* obj projected onto fields, canonical, equals expect (canonical too). */
static void assert_projects(const char *obj, const char *fields, const char *expect)
{
	struct json_object *o = parse(obj), *f = parse(fields), *e = parse(expect), *p = NULL;
	char *got, *want;

	assert_int_equal(applied_project(o, f, &p), 0);
	got = canonical(p);
	want = canonical(e);
	assert_string_equal(got, want);
	free(got);
	free(want);
	json_object_put(p);
	json_object_put(o);
	json_object_put(f);
	json_object_put(e);
}

static void canonical_text_sorts_keys_and_is_compact(void **state)
{
	struct json_object *a = parse("{\"b\": {\"y\": [1, true, null], \"x\": \"q\\\"\\n/é\"},"
	                              " \"a\": -3, \"ab\": {}}");
	struct json_object *b = parse("{\"ab\":{},\"a\":-3,\"b\":{\"x\":\"q\\\"\\n/é\","
	                              "\"y\":[1,true,null]}}");
	char *ta = canonical(a), *tb = canonical(b);

	(void)state;
	assert_string_equal(ta, "{\"a\":-3,\"ab\":{},\"b\":{\"x\":\"q\\\"\\u000a/é\","
	                        "\"y\":[1,true,null]}}");
	assert_string_equal(ta, tb);
	free(ta);
	free(tb);
	json_object_put(a);
	json_object_put(b);
}

static void projection_takes_owned_members_only(void **state)
{
	(void)state;
	/* f: members, "." adds nothing, members owned by no one here are left out. */
	assert_projects("{\"spec\":{\"replicas\":2,\"paused\":false,\"strategy\":{\"type\":\"R\"}},"
	                "\"status\":{\"replicas\":1}}",
	                "{\"f:spec\":{\".\":{},\"f:replicas\":{}}}", "{\"spec\":{\"replicas\":2}}");
	/* An owned member the object no longer has is left out. */
	assert_projects("{\"spec\":{}}", "{\"f:spec\":{\"f:replicas\":{}}}", "{\"spec\":{}}");
}

static void projection_takes_a_leaf_whole(void **state)
{
	(void)state;
	/* No parts named: the live value whole (an empty object, a quantity, a map). */
	assert_projects("{\"v\":{\"emptyDir\":{},\"q\":\"64Mi\",\"m\":{\"a\":\"1\"}}}",
	                "{\"f:v\":{\"f:emptyDir\":{},\"f:q\":{},\"f:m\":{\".\":{}}}}",
	                "{\"v\":{\"emptyDir\":{},\"q\":\"64Mi\",\"m\":{\"a\":\"1\"}}}");
}

static void projection_matches_list_items_by_key_in_the_lists_order(void **state)
{
	(void)state;
	/*
	 * Items by their key fields; the server's default (protocol) is a key
	 * field but not ours; an item nobody of ours named is left out; the
	 * list's order is kept whatever the set's.
	 */
	assert_projects(
	    "{\"ports\":[{\"name\":\"a\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080},"
	    "{\"name\":\"x\",\"port\":99,\"protocol\":\"UDP\"},"
	    "{\"name\":\"b\",\"port\":81,\"protocol\":\"TCP\",\"targetPort\":8081}]}",
	    "{\"f:ports\":{\".\":{},"
	    "\"k:{\\\"port\\\":81,\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},\"f:name\":{},"
	    "\"f:port\":{}},"
	    "\"k:{\\\"port\\\":80,\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},\"f:name\":{},"
	    "\"f:port\":{},\"f:targetPort\":{}}}}",
	    "{\"ports\":[{\"name\":\"a\",\"port\":80,\"targetPort\":8080},"
	    "{\"name\":\"b\",\"port\":81}]}");
	/* Nested: a container by name, its ports by their keys. */
	assert_projects(
	    "{\"containers\":[{\"name\":\"h\",\"image\":\"i\",\"imagePullPolicy\":\"A\","
	    "\"ports\":[{\"containerPort\":8080,\"protocol\":\"TCP\"}]}]}",
	    "{\"f:containers\":{\"k:{\\\"name\\\":\\\"h\\\"}\":{\".\":{},"
	    "\"f:image\":{},\"f:name\":{},\"f:ports\":{"
	    "\"k:{\\\"containerPort\\\":8080,\\\"protocol\\\":\\\"TCP\\\"}\":{"
	    "\".\":{},\"f:containerPort\":{}}}}}}",
	    "{\"containers\":[{\"name\":\"h\",\"image\":\"i\","
	    "\"ports\":[{\"containerPort\":8080}]}]}");
}

static void projection_matches_set_items_by_value_and_index(void **state)
{
	(void)state;
	assert_projects("{\"finalizers\":[\"a\",\"theirs\",\"b\"]}",
	                "{\"f:finalizers\":{\".\":{},\"v:\\\"b\\\"\":{},\"v:\\\"a\\\"\":{}}}",
	                "{\"finalizers\":[\"a\",\"b\"]}");
	assert_projects("{\"l\":[{\"x\":1,\"y\":2},{\"x\":3}]}", "{\"f:l\":{\"i:1\":{\"f:x\":{}}}}",
	                "{\"l\":[{\"x\":3}]}");
}

static void projection_refuses_a_malformed_key(void **state)
{
	struct json_object *o = parse("{\"l\":[{\"n\":1}]}"), *f = parse("{\"f:l\":{\"k:{n\":{}}}");
	struct json_object *p = NULL;

	(void)state;
	assert_int_equal(applied_project(o, f, &p), -EBADMSG);
	assert_null(p);
	json_object_put(o);
	json_object_put(f);
}

/* What we apply: a Deployment-like object. */
static const char want_text[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
    "\"metadata\":{\"name\":\"d\",\"namespace\":\"n\",\"labels\":{\"app\":\"x\"}},"
    "\"spec\":{\"replicas\":2,\"template\":{\"spec\":{\"containers\":[{\"name\":\"h\","
    "\"image\":\"i:1\",\"ports\":[{\"containerPort\":8080}]}],"
    "\"volumes\":[{\"name\":\"run\",\"emptyDir\":{}}]}}}}";

/*
 * What the API server has after applying it under manager "kanary": defaults,
 * another manager's annotation, a status, and managedFields. value and label
 * let a test change what the live object holds.
 */
static struct json_object *live(const char *image, const char *replicas_manager)
{
	char text[4096];
	bool ours = strcmp(replicas_manager, "kanary") == 0;

	snprintf(
	    text, sizeof(text),
	    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\","
	    "\"namespace\":\"n\",\"uid\":\"u\",\"resourceVersion\":\"7\",\"generation\":3,"
	    "\"labels\":{\"app\":\"x\"},\"annotations\":{\"theirs\":\"t\"},"
	    "\"managedFields\":["
	    "{\"manager\":\"kanary\",\"operation\":\"Update\",\"fieldsType\":\"FieldsV1\","
	    "\"fieldsV1\":{\"f:spec\":{\"f:paused\":{}}}},"
	    "{\"manager\":\"kanary\",\"operation\":\"Apply\",\"subresource\":\"status\","
	    "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:status\":{}}},"
	    "{\"manager\":\"kanary\",\"operation\":\"Apply\",\"fieldsType\":\"FieldsV1\","
	    "\"fieldsV1\":{\"f:metadata\":{\"f:labels\":{\"f:app\":{}}},"
	    "\"f:spec\":{%s\"f:template\":{\"f:spec\":{"
	    "\"f:containers\":{\"k:{\\\"name\\\":\\\"h\\\"}\":{\".\":{},\"f:image\":{},"
	    "\"f:name\":{},\"f:ports\":{"
	    "\"k:{\\\"containerPort\\\":8080,\\\"protocol\\\":\\\"TCP\\\"}\":{\".\":{},"
	    "\"f:containerPort\":{}}}}},"
	    "\"f:volumes\":{\"k:{\\\"name\\\":\\\"run\\\"}\":{\".\":{},\"f:emptyDir\":{},"
	    "\"f:name\":{}}}}}}}},"
	    "{\"manager\":\"other\",\"operation\":\"Update\",\"fieldsType\":\"FieldsV1\","
	    "\"fieldsV1\":{\"f:metadata\":{\"f:annotations\":{\"f:theirs\":{}}}%s}}]},"
	    "\"spec\":{\"replicas\":%d,\"progressDeadlineSeconds\":600,"
	    "\"template\":{\"spec\":{\"containers\":[{\"name\":\"h\",\"image\":\"%s\","
	    "\"imagePullPolicy\":\"IfNotPresent\","
	    "\"ports\":[{\"containerPort\":8080,\"protocol\":\"TCP\"}]}],"
	    "\"volumes\":[{\"name\":\"run\",\"emptyDir\":{}}],\"dnsPolicy\":\"ClusterFirst\"}}},"
	    "\"status\":{\"observedGeneration\":3,\"replicas\":2}}",
	    ours ? "\"f:replicas\":{}," : "", ours ? "" : ",\"f:spec\":{\"f:replicas\":{}}",
	    ours ? 2 : 5, image);
	return parse(text);
}

static void digest_of_our_apply_read_back_equals_the_digest_of_what_we_applied(void **state)
{
	struct json_object *want = parse(want_text), *l = live("i:1", "kanary");
	char w[65], d[65];

	(void)state;
	assert_int_equal(applied_digest_want(want, w), 0);
	assert_int_equal(applied_digest_live(l, "kanary", d), 0);
	assert_string_equal(d, w);
	assert_int_equal(strlen(d), 64);
	json_object_put(want);
	json_object_put(l);
}

static void digest_changes_with_a_field_we_own_and_not_with_theirs(void **state)
{
	struct json_object *want = parse(want_text), *l;
	char w[65], d[65];

	(void)state;
	assert_int_equal(applied_digest_want(want, w), 0);
	/* A value of ours changed (the set still names it). */
	l = live("i:2", "kanary");
	assert_int_equal(applied_digest_live(l, "kanary", d), 0);
	assert_string_not_equal(d, w);
	json_object_put(l);
	/* replicas taken over by another manager: no longer in our set. */
	l = live("i:1", "other");
	assert_int_equal(applied_digest_live(l, "kanary", d), 0);
	assert_string_not_equal(d, w);
	json_object_put(l);
	/* Their annotation changed: nothing of ours. */
	l = live("i:1", "kanary");
	json_object_object_add(json_field_path(l, JSON_FIELD_PATH("metadata", "annotations")),
	                       "theirs", json_object_new_string("changed"));
	assert_int_equal(applied_digest_live(l, "kanary", d), 0);
	assert_string_equal(d, w);
	json_object_put(l);
	/* What we would apply changes: so does its digest. */
	json_object_object_add(json_field_get(want, "spec"), "replicas", json_object_new_int(3));
	assert_int_equal(applied_digest_want(want, d), 0);
	assert_string_not_equal(d, w);
	json_object_put(want);
}

static void no_apply_entry_of_the_manager_has_no_digest(void **state)
{
	struct json_object *l = live("i:1", "kanary");
	char d[65];

	(void)state;
	/* Only its Update and status entries: neither is what it applied. */
	assert_int_equal(applied_digest_live(l, "other", d), -ENOENT);
	assert_int_equal(applied_digest_live(l, "nobody", d), -ENOENT);
	assert_null(applied_fields(l, NULL));
	json_object_put(l);
}

static const char *const kept[] = {"spec.replicas", "spec.template.spec.volumes",
                                   "status.observedGeneration", "spec.nothing.here", NULL};

static void child_record_keeps_what_is_read_and_the_digest(void **state)
{
	const struct kobj_child_options o = {.manager = "kanary", .keep = kept};
	struct json_object *want = parse(want_text), *l = live("i:1", "kanary"), *back;
	struct kube_obj *rec;
	char w[65];

	(void)state;
	assert_int_equal(applied_digest_want(want, w), 0);
	assert_int_equal(kobj_child_decode((void *)&o, l, &rec), 0);
	assert_string_equal(rec->key, "n/d");
	assert_string_equal(kube_obj_label(rec, "app"), "x");
	assert_int_equal(kube_obj_parse(rec, &back), 0);
	assert_string_equal(json_field_str(back, KOBJ_CHILD_APPLIED), w);
	assert_null(json_field_path(back, JSON_FIELD_PATH("metadata", "managedFields")));
	assert_null(json_field_path(back, JSON_FIELD_PATH("metadata", "annotations")));
	assert_null(
	    json_field_path(back, JSON_FIELD_PATH("spec", "template", "spec", "containers")));
	assert_null(json_field_get(back, "kind"));
	assert_non_null(
	    json_field_path(back, JSON_FIELD_PATH("spec", "template", "spec", "volumes")));
	assert_int_equal(json_field_int_or(json_field_get(back, "spec"), "replicas", -1), 2);
	assert_int_equal(
	    json_field_int_or(json_field_get(back, "status"), "observedGeneration", -1), 3);
	assert_int_equal(json_field_int_or(json_field_get(back, "metadata"), "generation", -1), 3);
	assert_string_equal(json_field_str_path(back, JSON_FIELD_PATH("metadata", "uid")), "u");
	assert_true(rec->text_len < 400);
	json_object_put(back);
	kube_obj_unref(rec);
	json_object_put(want);
	json_object_put(l);
}

/* Our destination Service as the API server has it, labelled managed-by by. */
static struct json_object *service(const char *by)
{
	char text[1024];

	snprintf(text, sizeof(text),
	         "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"labels\":"
	         "{\"managed-by\":\"%s\"},\"managedFields\":[{\"manager\":\"kanary\","
	         "\"operation\":\"Apply\",\"fieldsV1\":{\"f:spec\":{\"f:ports\":{"
	         "\"k:{\\\"port\\\":80,\\\"protocol\\\":\\\"TCP\\\"}\":{\"f:port\":{}}}}}}]},"
	         "\"spec\":{\"clusterIP\":\"10.0.0.1\",\"ports\":[{\"name\":\"http\","
	         "\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080}]}}",
	         by);
	return parse(text);
}

static void child_service_record_is_a_service_and_others_keep_no_text(void **state)
{
	static const char *const ports[] = {"spec.ports", NULL};
	const struct kobj_child_options o = {
	    .manager = "kanary", .keep = ports, .text_label = "managed-by", .text_value = "kanary"};
	struct json_object *obj, *back;
	const struct kobj_service *s;
	struct kube_obj *rec;

	(void)state;
	obj = service("kanary");
	assert_int_equal(kobj_child_service_decode((void *)&o, obj, &rec), 0);
	s = kobj_as_service(rec);
	assert_non_null(s);
	assert_int_equal(s->n_ports, 1);
	assert_int_equal(s->ports[0].port, 80);
	assert_int_equal(s->ports[0].target_port, 8080);
	assert_non_null(rec->text);
	assert_int_equal(kube_obj_parse(rec, &back), 0);
	assert_non_null(json_field_str(back, KOBJ_CHILD_APPLIED));
	assert_null(json_field_path(back, JSON_FIELD_PATH("spec", "clusterIP")));
	json_object_put(back);
	kube_obj_unref(rec);
	json_object_put(obj);

	obj = service("someone");
	assert_int_equal(kobj_child_service_decode((void *)&o, obj, &rec), 0);
	assert_non_null(kobj_as_service(rec));
	assert_null(rec->text);
	kube_obj_unref(rec);
	json_object_put(obj);
}

static void a_record_without_a_manager_keeps_no_digest(void **state)
{
	static const char *const volumes[] = {
	    "spec.template.spec.volumes[].name",
	    "spec.template.spec.containers[].ports[].containerPort",
	    "spec.template.spec.nothing[].x", "status[].x", NULL};
	const struct kobj_child_options o = {.keep = volumes};
	struct json_object *l = live("i:1", "kanary"), *back, *vols, *c, *port;
	struct kube_obj *rec;

	(void)state;
	/* A ReplicaSet's: only what the garbage collector reads. */
	assert_int_equal(kobj_child_decode((void *)&o, l, &rec), 0);
	assert_int_equal(kube_obj_parse(rec, &back), 0);
	assert_null(json_field_get(back, KOBJ_CHILD_APPLIED));
	assert_null(json_field_get(back, "status"));
	assert_null(json_field_path(back, JSON_FIELD_PATH("spec", "replicas")));
	/* Each item of a list keeps its place and only the rest of the path. */
	vols = json_field_path(back, JSON_FIELD_PATH("spec", "template", "spec", "volumes"));
	assert_int_equal(json_object_array_length(vols), 1);
	assert_string_equal(json_field_str(json_object_array_get_idx(vols, 0), "name"), "run");
	assert_null(json_field_get(json_object_array_get_idx(vols, 0), "emptyDir"));
	c = json_object_array_get_idx(
	    json_field_path(back, JSON_FIELD_PATH("spec", "template", "spec", "containers")), 0);
	port = json_object_array_get_idx(json_field_get(c, "ports"), 0);
	assert_null(json_field_get(c, "image"));
	assert_int_equal(json_field_int_or(port, "containerPort", -1), 8080);
	assert_null(json_field_get(port, "protocol"));
	json_object_put(back);
	kube_obj_unref(rec);
	json_object_put(l);
}

static void trimmed_record_drops_kubectls_copy_and_managed_fields(void **state)
{
	static const char *const dropped[] = {KOBJ_KUBECTL_LAST_APPLIED, NULL};
	struct json_object *k =
	    parse("{\"apiVersion\":\"kanary.pyxida.io/v1alpha1\",\"kind\":\"Kanary\",\"metadata\":{"
	          "\"name\":\"k\",\"namespace\":\"n\",\"annotations\":{"
	          "\"kubectl.kubernetes.io/last-applied-configuration\":\"{\\\"spec\\\":{}}\"},"
	          "\"managedFields\":[{\"manager\":\"kubectl\"}]},\"spec\":{\"destination\":\"d\"},"
	          "\"status\":{\"configHash\":\"h\"}}");
	struct json_object *back;
	struct kube_obj *rec;

	(void)state;
	assert_int_equal(kobj_trimmed_decode((void *)dropped, k, &rec), 0);
	assert_int_equal(kube_obj_parse(rec, &back), 0);
	assert_null(json_field_path(back, JSON_FIELD_PATH("metadata", "annotations")));
	assert_null(json_field_path(back, JSON_FIELD_PATH("metadata", "managedFields")));
	assert_string_equal(json_field_str(back, "kind"), "Kanary");
	assert_string_equal(json_field_str_path(back, JSON_FIELD_PATH("spec", "destination")), "d");
	assert_string_equal(json_field_str_path(back, JSON_FIELD_PATH("status", "configHash")),
	                    "h");
	json_object_put(back);
	kube_obj_unref(rec);
	json_object_put(k);
}

/* An object without metadata, or whose metadata is not a mapping, is refused, not a crash. */
static void trimmed_record_refuses_an_object_without_metadata(void **state)
{
	static const char *const texts[] = {
	    "{\"kind\":\"Kanary\"}",
	    "{\"metadata\":\"not a mapping\"}",
	    "{\"metadata\":[{\"name\":\"k\"}]}",
	    "{\"metadata\":null}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct json_object *o = parse(texts[i]);
		struct kube_obj *rec = NULL;

		assert_int_equal(kobj_trimmed_decode(NULL, o, &rec), -EBADMSG);
		assert_null(rec);
		json_object_put(o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(canonical_text_sorts_keys_and_is_compact),
	    cmocka_unit_test(projection_takes_owned_members_only),
	    cmocka_unit_test(projection_takes_a_leaf_whole),
	    cmocka_unit_test(projection_matches_list_items_by_key_in_the_lists_order),
	    cmocka_unit_test(projection_matches_set_items_by_value_and_index),
	    cmocka_unit_test(projection_refuses_a_malformed_key),
	    cmocka_unit_test(digest_of_our_apply_read_back_equals_the_digest_of_what_we_applied),
	    cmocka_unit_test(digest_changes_with_a_field_we_own_and_not_with_theirs),
	    cmocka_unit_test(no_apply_entry_of_the_manager_has_no_digest),
	    cmocka_unit_test(child_record_keeps_what_is_read_and_the_digest),
	    cmocka_unit_test(child_service_record_is_a_service_and_others_keep_no_text),
	    cmocka_unit_test(a_record_without_a_manager_keeps_no_digest),
	    cmocka_unit_test(trimmed_record_drops_kubectls_copy_and_managed_fields),
	    cmocka_unit_test(trimmed_record_refuses_an_object_without_metadata),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
