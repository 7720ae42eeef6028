/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the compact records caches keep: decoding, labels, references. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/json_field.h"
#include "common/kobj.h"

static struct json_object *J(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	return o;
}

static void service_keeps_ports_names_and_targets(void **state)
{
	struct json_object *obj =
	    J("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","
	      "\"namespace\":\"shop\",\"resourceVersion\":\"42\",\"uid\":\"u-1\","
	      "\"labels\":{\"app\":\"web\",\"tier\":\"front\"},\"annotations\":{\"big\":\"x\"}},"
	      "\"spec\":{\"clusterIP\":\"10.0.0.1\",\"ports\":["
	      "{\"name\":\"http\",\"port\":80,\"targetPort\":8080},"
	      "{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\",\"targetPort\":\"dns\"},"
	      "{\"port\":81},"
	      "\"not an object\"]}}");
	const struct kobj_service *svc;
	struct kube_obj *o;

	assert_int_equal(kobj_service_decode(NULL, obj, &o), 0);
	json_object_put(obj);
	svc = kobj_as_service(o);
	assert_non_null(svc);
	assert_null(kobj_as_slice(o));
	assert_string_equal(o->key, "shop/web");
	assert_string_equal(o->ns, "shop");
	assert_string_equal(o->name, "web");
	assert_string_equal(o->rv, "42");
	assert_string_equal(o->uid, "u-1");
	assert_string_equal(kube_obj_label(o, "app"), "web");
	assert_string_equal(kube_obj_label(o, "tier"), "front");
	assert_null(kube_obj_label(o, "big"));
	assert_null(o->text); /* no options: the text is not kept */
	assert_int_equal(svc->n_ports, 3);
	assert_string_equal(svc->ports[0].name, "http");
	assert_int_equal(svc->ports[0].port, 80);
	assert_int_equal(svc->ports[0].target_port, 8080);
	assert_true(svc->ports[0].tcp);
	assert_false(svc->ports[1].tcp);
	assert_int_equal(svc->ports[1].target_port, 0); /* named */
	assert_string_equal(svc->ports[2].name, "");
	assert_int_equal(svc->ports[2].target_port, -1); /* absent */
	kube_obj_unref(o);
}

static void service_keeps_its_text_when_labelled(void **state)
{
	const struct kobj_options opt = {.text_label = "managed", .text_value = "us"};
	struct json_object *mine = J("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\","
	                             "\"labels\":{\"managed\":\"us\"}},\"spec\":{\"type\":\"X\"}}");
	struct json_object *theirs = J("{\"metadata\":{\"name\":\"b\",\"namespace\":\"n\","
	                               "\"labels\":{\"managed\":\"them\"}}}");
	struct json_object *back = NULL;
	struct kube_obj *a, *b;

	assert_int_equal(kobj_service_decode((void *)&opt, mine, &a), 0);
	assert_int_equal(kobj_service_decode((void *)&opt, theirs, &b), 0);
	assert_non_null(a->text);
	assert_null(b->text);
	assert_int_equal(kube_obj_parse(a, &back), 0);
	assert_string_equal(json_field_str_path(back, JSON_FIELD_PATH("spec", "type")), "X");
	json_object_put(back);
	/* Without text, the metadata the record keeps. */
	assert_int_equal(kube_obj_parse(b, &back), 0);
	assert_string_equal(json_field_str_path(back, JSON_FIELD_PATH("metadata", "name")), "b");
	assert_string_equal(
	    json_field_str_path(back, JSON_FIELD_PATH("metadata", "labels", "managed")), "them");
	assert_null(json_field_path(back, JSON_FIELD_PATH("spec")));
	json_object_put(back);
	json_object_put(mine);
	json_object_put(theirs);
	kube_obj_unref(a);
	kube_obj_unref(b);
}

static void slice_keeps_usable_endpoints_with_their_conditions(void **state)
{
	struct json_object *obj = J(
	    "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
	    "\"metadata\":{\"name\":\"web-abc\",\"namespace\":\"shop\","
	    "\"labels\":{\"kubernetes.io/service-name\":\"web\"}},"
	    "\"addressType\":\"IPv6\","
	    "\"ports\":[{\"name\":\"http\",\"port\":8080},{\"name\":\"q\",\"protocol\":\"SCTP\","
	    "\"port\":9}],"
	    "\"endpoints\":["
	    "{\"addresses\":[\"2001:DB8::0001\",\"2001:db8::9\"],\"targetRef\":{\"name\":\"p1\"}},"
	    "{\"addresses\":[\"2001:db8::2\"],\"conditions\":{\"ready\":false}},"
	    "{\"addresses\":[\"2001:db8::3\"],\"conditions\":{\"ready\":true,\"terminating\":true}}"
	    ","
	    "{\"addresses\":[\"10.0.0.1\"]},"
	    "{\"addresses\":[]},"
	    "{\"conditions\":{}}]}");
	const struct kobj_slice *sl;
	struct kube_obj *o;

	assert_int_equal(kobj_slice_decode(NULL, obj, &o), 0);
	json_object_put(obj);
	sl = kobj_as_slice(o);
	assert_non_null(sl);
	assert_string_equal(o->key, "shop/web-abc");
	assert_string_equal(sl->service, "web");
	assert_true(sl->ip);
	assert_int_equal(sl->n_ports, 2);
	assert_string_equal(sl->ports[0].name, "http");
	assert_int_equal(sl->ports[0].port, 8080);
	assert_true(sl->ports[0].tcp);
	assert_false(sl->ports[1].tcp);
	/* An IPv4 address in an IPv6 slice and endpoints without addresses are never usable. */
	assert_int_equal(sl->n_endpoints, 3);
	assert_string_equal(sl->endpoints[0].address, "2001:db8::1"); /* canonical, first */
	assert_string_equal(sl->endpoints[0].target_name, "p1");
	assert_true(sl->endpoints[0].ready);
	assert_false(sl->endpoints[0].terminating);
	assert_false(sl->endpoints[1].ready);
	assert_null(sl->endpoints[1].target_name);
	assert_true(sl->endpoints[2].ready);
	assert_true(sl->endpoints[2].terminating);
	kube_obj_unref(o);
}

static void fqdn_slice_and_unlabelled_slice(void **state)
{
	struct json_object *obj = J("{\"metadata\":{\"name\":\"f\",\"namespace\":\"n\"},"
	                            "\"addressType\":\"FQDN\",\"endpoints\":[{\"addresses\":"
	                            "[\"a.example\"]}]}");
	const struct kobj_slice *sl;
	struct kube_obj *o;

	assert_int_equal(kobj_slice_decode(NULL, obj, &o), 0);
	sl = kobj_as_slice(o);
	assert_false(sl->ip);
	assert_null(sl->service);
	assert_int_equal(sl->n_endpoints, 0);
	assert_null(o->labels);
	kube_obj_unref(o);
	json_object_put(obj);
}

static void default_record_keeps_the_text_and_a_cluster_scoped_key(void **state)
{
	struct json_object *obj = J("{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"n1\"},"
	                            "\"data\":{\"v\":\"\\u00e9\\n\"}}");
	struct json_object *back = NULL;
	struct kube_obj *o;

	assert_int_equal(kube_obj_new(obj, sizeof(*o), 0, true, &o, NULL), 0);
	assert_string_equal(o->key, "n1");
	assert_string_equal(o->ns, "");
	assert_string_equal(o->rv, "");
	assert_int_equal(kube_obj_parse(o, &back), 0);
	assert_true(json_object_equal(obj, back));
	json_object_put(back);
	kube_obj_unref(o);
	json_object_put(obj);
}

static void nameless_objects_are_refused(void **state)
{
	struct json_object *obj = J("{\"metadata\":{\"namespace\":\"n\"}}");
	struct kube_obj *o = NULL;

	assert_int_equal(kobj_service_decode(NULL, obj, &o), -EBADMSG);
	assert_int_equal(kobj_slice_decode(NULL, obj, &o), -EBADMSG);
	assert_int_equal(kube_obj_new(obj, sizeof(*o), 0, true, &o, NULL), -EBADMSG);
	assert_null(o);
	json_object_put(obj);
}

static int destroyed;

static void count_destroy(struct kube_obj *o)
{
	destroyed++;
	free(o);
}

static void *ref_unref_many(void *arg)
{
	for (int i = 0; i < 100000; i++)
		kube_obj_unref(kube_obj_ref(arg));
	return NULL;
}

/* Readers on many threads take and drop references: the count stays exact. */
static void references_are_atomic(void **state)
{
	struct json_object *obj = J("{\"metadata\":{\"name\":\"x\",\"namespace\":\"n\"}}");
	pthread_t t[4];
	struct kube_obj *o;

	assert_int_equal(kube_obj_new(obj, sizeof(*o), 0, false, &o, NULL), 0);
	o->destroy = count_destroy;
	destroyed = 0;
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, ref_unref_many, o), 0);
	for (size_t i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(destroyed, 0);
	assert_ptr_equal(kube_obj_ref(o), o);
	kube_obj_unref(o);
	assert_int_equal(destroyed, 0);
	kube_obj_unref(o);
	assert_int_equal(destroyed, 1);
	kube_obj_unref(NULL);
	assert_null(kube_obj_ref(NULL));
	json_object_put(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(service_keeps_ports_names_and_targets),
	    cmocka_unit_test(service_keeps_its_text_when_labelled),
	    cmocka_unit_test(slice_keeps_usable_endpoints_with_their_conditions),
	    cmocka_unit_test(fqdn_slice_and_unlabelled_slice),
	    cmocka_unit_test(default_record_keeps_the_text_and_a_cluster_scoped_key),
	    cmocka_unit_test(nameless_objects_are_refused),
	    cmocka_unit_test(references_are_atomic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
