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
#include "common/strtab.h"

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

/*
 * A kept text leaves out the metadata the record holds once (name,
 * namespace, resourceVersion, uid, labels); parsing puts it back, so a
 * reader sees the object as it came.
 */
static void text_leaves_out_what_the_record_holds(void **state)
{
	static const char *const kept_text =
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
	    "\"name\":\"shop-haproxy-0123456789\",\"namespace\":\"shop\","
	    "\"uid\":\"0b0d6a5e-9d3c-4c59-9b4e-2f3b1c6d7e8f\",\"resourceVersion\":\"4242\","
	    "\"labels\":{\"app.kubernetes.io/managed-by\":\"kanary\",\"kanary.pyxida.io/name\":"
	    "\"shop\"},\"annotations\":{\"a\":\"b\"},\"generation\":3},\"data\":{\"k\":\"v\"}}";
	struct json_object *obj = J(kept_text), *back = NULL, *md;
	struct kube_obj *o;

	assert_int_equal(kube_obj_new(obj, sizeof(*o), 0, true, &o, NULL), 0);
	assert_int_equal(o->text_omits, KUBE_OBJ_TEXT_IDENTITY | KUBE_OBJ_TEXT_LABELS);
	assert_non_null(o->text);
	assert_null(strstr(o->text, "shop-haproxy-0123456789"));
	assert_null(strstr(o->text, "0b0d6a5e"));
	assert_null(strstr(o->text, "4242"));
	assert_null(strstr(o->text, "managed-by"));
	assert_non_null(strstr(o->text, "\"annotations\""));
	assert_int_equal(kube_obj_parse(o, &back), 0);
	/* The same object, members in any order. */
	assert_true(json_object_equal(back, obj));
	md = json_field_get(back, "metadata");
	assert_string_equal(json_field_str(md, "uid"), "0b0d6a5e-9d3c-4c59-9b4e-2f3b1c6d7e8f");
	json_object_put(back);
	kube_obj_unref(o);
	json_object_put(obj);

	/* A label value that is not a string stays in the text, as it came. */
	obj = J("{\"metadata\":{\"name\":\"x\",\"labels\":{\"a\":\"1\",\"b\":2}}}");
	assert_int_equal(kube_obj_new(obj, sizeof(*o), 0, true, &o, NULL), 0);
	assert_int_equal(o->text_omits, KUBE_OBJ_TEXT_IDENTITY);
	assert_int_equal(kube_obj_parse(o, &back), 0);
	assert_true(json_object_equal(back, obj));
	json_object_put(back);
	kube_obj_unref(o);
	json_object_put(obj);

	/* A cluster-scoped object without resourceVersion or uid comes back without them. */
	obj = J("{\"metadata\":{\"name\":\"c\"},\"spec\":{}}");
	assert_int_equal(kube_obj_new(obj, sizeof(*o), 0, true, &o, NULL), 0);
	assert_int_equal(kube_obj_parse(o, &back), 0);
	assert_true(json_object_equal(back, obj));
	json_object_put(back);
	kube_obj_unref(o);
	json_object_put(obj);
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

/* The shared strings no record holds any more are gone: the table is empty between tests. */
static void assert_table_empty(void)
{
	struct strtab_stats st;

	strtab_stats(&st);
	assert_int_equal(st.strings, 0);
	assert_int_equal(st.refs, 0);
}

static struct json_object *scale_service(const char *name)
{
	char text[512];

	snprintf(text, sizeof(text),
	         "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"scale\","
	         "\"labels\":{\"app\":\"%s\",\"app.kubernetes.io/managed-by\":\"Helm\"}},"
	         "\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080},"
	         "{\"port\":81}]}}",
	         name, name);
	return J(text);
}

static struct json_object *scale_slice(const char *name, const char *service)
{
	char text[512];

	snprintf(text, sizeof(text),
	         "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"scale\",\"labels\":{"
	         "\"endpointslice.kubernetes.io/managed-by\":\"endpointslice-controller.k8s.io\","
	         "\"kubernetes.io/service-name\":\"%s\",\"app\":\"%s\"}},\"addressType\":\"IPv4\","
	         "\"ports\":[{\"name\":\"http\",\"port\":8080}],"
	         "\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"targetRef\":{\"name\":\"p\"}}]}",
	         name, service, service);
	return J(text);
}

static struct kube_obj *decode(kube_decode_fn fn, struct json_object *obj)
{
	struct kube_obj *o = NULL;

	assert_int_equal(fn(NULL, obj, &o), 0);
	json_object_put(obj);
	return o;
}

/*
 * Two Services and two slices with the same namespace, labels and port
 * names point at one copy of each; what is unique to an object stays in
 * its record.
 */
static void records_share_repeated_strings(void **state)
{
	struct kube_obj *a = decode(kobj_service_decode, scale_service("svc-1"));
	struct kube_obj *b = decode(kobj_service_decode, scale_service("svc-2"));
	struct kube_obj *c = decode(kobj_slice_decode, scale_slice("svc-1-x", "svc-1"));
	struct kube_obj *d = decode(kobj_slice_decode, scale_slice("svc-2-y", "svc-2"));
	const struct kobj_service *sa = kobj_as_service(a), *sb = kobj_as_service(b);
	const struct kobj_slice *sc = kobj_as_slice(c), *sd = kobj_as_slice(d);
	struct strtab_stats st;

	assert_string_equal(a->ns, "scale");
	assert_ptr_equal(a->ns, b->ns);
	assert_ptr_equal(a->ns, c->ns);
	assert_ptr_equal(a->ns, d->ns);
	assert_true(strtab_owns(a->ns));
	/* Label keys and values that repeat. */
	assert_ptr_equal(a->labels[2], b->labels[2]);
	assert_string_equal(a->labels[2], "app.kubernetes.io/managed-by");
	assert_ptr_equal(kube_obj_label(a, "app.kubernetes.io/managed-by"),
	                 kube_obj_label(b, "app.kubernetes.io/managed-by"));
	assert_true(strtab_owns(kube_obj_label(a, "app.kubernetes.io/managed-by")));
	assert_ptr_equal(a->labels[0], b->labels[0]); /* "app" */
	assert_ptr_equal(c->labels[0], d->labels[0]);
	assert_ptr_equal(kube_obj_label(c, "endpointslice.kubernetes.io/managed-by"),
	                 kube_obj_label(d, "endpointslice.kubernetes.io/managed-by"));
	/* A value equal to the object's name is its name; the key's tail is the name. */
	assert_string_equal(kube_obj_label(a, "app"), "svc-1");
	assert_ptr_equal(kube_obj_label(a, "app"), a->name);
	assert_string_equal(a->key, "scale/svc-1");
	assert_ptr_equal(a->name, a->key + strlen("scale/"));
	/* The slice's Service name is its label's value, kept once, in the record. */
	assert_string_equal(sc->service, "svc-1");
	assert_ptr_equal(sc->service, kube_obj_label(c, KOBJ_SERVICE_NAME_LABEL));
	assert_false(strtab_owns(sc->service));
	/* The slice's copy of its Service's label "app" is that text too. */
	assert_ptr_equal(kube_obj_label(c, "app"), sc->service);
	assert_true(sc->service > (const char *)c && sc->service < (const char *)c + c->size);
	/* Port names, across Services and slices; an unnamed port is the shared "". */
	assert_ptr_equal(sa->ports[0].name, sb->ports[0].name);
	assert_ptr_equal(sa->ports[0].name, sc->ports[0].name);
	assert_ptr_equal(sa->ports[0].name, sd->ports[0].name);
	assert_string_equal(sa->ports[0].name, "http");
	assert_string_equal(sa->ports[1].name, "");
	assert_ptr_equal(sa->ports[1].name, sb->ports[1].name);
	/* Unique to the object: in its record. */
	assert_false(strtab_owns(sc->endpoints[0].address));
	assert_false(strtab_owns(a->uid));
	/*
	 * "scale", "app", "app.kubernetes.io/managed-by", "Helm", "http",
	 * "endpointslice.kubernetes.io/managed-by",
	 * "endpointslice-controller.k8s.io", "kubernetes.io/service-name".
	 */
	strtab_stats(&st);
	assert_int_equal(st.strings, 8);
	assert_int_equal(st.refs, 4 + 2 * 3 + 2 * 4 + 4); /* namespaces, labels, ports */
	kube_obj_unref(a);
	kube_obj_unref(b);
	kube_obj_unref(c);
	kube_obj_unref(d);
	assert_table_empty();
}

/* The last record that holds a shared string frees it, and not before. */
static void last_unref_frees_shared_strings(void **state)
{
	struct kube_obj *a = decode(kobj_service_decode, scale_service("svc-1"));
	struct kube_obj *b = decode(kobj_slice_decode, scale_slice("svc-1-x", "svc-1"));
	const struct kube_obj *held = kube_obj_ref(a);
	struct strtab_stats st;
	const char *again;

	kube_obj_unref(a); /* the reference taken above still holds it */
	strtab_stats(&st);
	assert_int_equal(st.strings, 8);
	kube_obj_unref(b);
	strtab_stats(&st);
	/* Gone with the slice: its two label keys and the managed-by value. */
	assert_int_equal(st.strings, 5);
	assert_string_equal(held->ns, "scale");
	assert_string_equal(kobj_as_service(held)->ports[0].name, "http");
	again = strtab_intern("scale");
	assert_ptr_equal(again, held->ns);
	kube_obj_unref(held);
	strtab_stats(&st);
	assert_int_equal(st.strings, 1);
	assert_int_equal(st.refs, 1);
	strtab_release(again);
	assert_table_empty();
	/* "" and NULL are one static copy that holds nothing. */
	assert_ptr_equal(strtab_intern(""), strtab_intern(NULL));
	assert_true(strtab_owns(strtab_intern("")));
	strtab_release(strtab_intern(""));
	strtab_release(NULL);
	assert_table_empty();
}

#define INTERN_THREADS 4
#define INTERN_ROUNDS  20000
#define INTERN_TEXTS   40

static const char *shared_first[INTERN_TEXTS];

/* Takes and drops references on texts other threads take too; every copy is the first one. */
static void *intern_release_many(void *arg)
{
	size_t seed = (size_t)(uintptr_t)arg;
	char text[32];
	bool ok = true;

	for (size_t i = 0; i < INTERN_ROUNDS; i++) {
		size_t k = (i * 7 + seed) % (INTERN_TEXTS * 2);
		const char *s;

		snprintf(text, sizeof(text), "text-%zu", k);
		s = strtab_intern(text);
		ok = ok && s && strcmp(s, text) == 0;
		/* The first half is held by the test all along: always the same copy. */
		if (k < INTERN_TEXTS)
			ok = ok && s == shared_first[k];
		strtab_release(s);
	}
	return ok ? arg : NULL;
}

/* Threads intern and release the same texts at once: counts stay exact, nothing leaks. */
static void intern_and_release_from_threads(void **state)
{
	pthread_t t[INTERN_THREADS];
	struct strtab_stats st;
	char text[32];

	for (size_t k = 0; k < INTERN_TEXTS; k++) {
		snprintf(text, sizeof(text), "text-%zu", k);
		shared_first[k] = strtab_intern(text);
		assert_non_null(shared_first[k]);
	}
	for (size_t i = 0; i < INTERN_THREADS; i++)
		assert_int_equal(
		    pthread_create(&t[i], NULL, intern_release_many, (void *)(uintptr_t)(i + 1)),
		    0);
	for (size_t i = 0; i < INTERN_THREADS; i++) {
		void *res;

		assert_int_equal(pthread_join(t[i], &res), 0);
		assert_ptr_equal(res, (void *)(uintptr_t)(i + 1));
	}
	strtab_stats(&st);
	assert_int_equal(st.strings, INTERN_TEXTS);
	assert_int_equal(st.refs, INTERN_TEXTS);
	for (size_t k = 0; k < INTERN_TEXTS; k++)
		strtab_release(shared_first[k]);
	assert_table_empty();
}

#define DECODE_ROUNDS 2000

static void *decode_unref_many(void *arg)
{
	const char *ns = NULL;
	bool ok = true;

	for (size_t i = 0; i < DECODE_ROUNDS; i++) {
		struct kube_obj *o = NULL;
		struct json_object *obj = scale_slice("s", "svc");

		ok = ok && kobj_slice_decode(NULL, obj, &o) == 0;
		json_object_put(obj);
		if (!o)
			break;
		ok = ok && strcmp(o->ns, "scale") == 0 &&
		     strcmp(kobj_as_slice(o)->ports[0].name, "http") == 0;
		if (!ns)
			ns = strtab_intern(o->ns);
		ok = ok && o->ns == ns; /* held below: the same copy every time */
		kube_obj_unref(o);
	}
	strtab_release(ns);
	return ok ? arg : NULL;
}

/* Informers decode on their own threads: records made and dropped at once share correctly. */
static void records_decoded_on_many_threads(void **state)
{
	pthread_t t[INTERN_THREADS];

	for (size_t i = 0; i < INTERN_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, decode_unref_many, (void *)(i + 1)),
		                 0);
	for (size_t i = 0; i < INTERN_THREADS; i++) {
		void *res;

		assert_int_equal(pthread_join(t[i], &res), 0);
		assert_ptr_equal(res, (void *)(i + 1));
	}
	assert_table_empty();
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
	    cmocka_unit_test(text_leaves_out_what_the_record_holds),
	    cmocka_unit_test(references_are_atomic),
	    cmocka_unit_test(records_share_repeated_strings),
	    cmocka_unit_test(last_unref_frees_shared_strings),
	    cmocka_unit_test(intern_and_release_from_threads),
	    cmocka_unit_test(records_decoded_on_many_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
