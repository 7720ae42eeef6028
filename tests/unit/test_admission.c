/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of admission: AdmissionReview in, verdict and patch out. */
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

#include "common/admission.h"
#include "common/buf.h"
#include "common/doc.h"
#include "common/limits.h"
#include "common/resolve.h"

/* What the cluster holds for these tests: the lookup hands it all to the catalog. */
static const char cluster_yaml[] =
    "apiVersion: v1\nkind: Service\nmetadata: {name: myapp-v1, namespace: shop}\n"
    "spec:\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: myapp-v2, namespace: shop}\n"
    "spec:\n  ports:\n  - {port: 9090, targetPort: 9090}\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: myapp-v1-a, namespace: shop, labels: {kubernetes.io/service-name: "
    "myapp-v1}}\n"
    "addressType: IPv4\nports:\n- {name: http, port: 8080}\n"
    "endpoints:\n- addresses: [10.0.0.1]\n  conditions: {ready: true}\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: myapp-v2-a, namespace: shop, labels: {kubernetes.io/service-name: "
    "myapp-v2}}\n"
    "addressType: IPv4\nports:\n- {port: 9090}\n"
    "endpoints:\n- addresses: [10.0.0.2]\n  conditions: {ready: true}\n";

#define VALID_SPEC                                                                                 \
	"{\"destination\":\"myapp\",\"routes\":["                                                  \
	"{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"http\"},\"weight\":80},"     \
	"{\"backend\":{\"serviceName\":\"myapp-v2\",\"servicePort\":9090},\"weight\":20}]}"

struct fake_lookup {
	struct json_object *docs;
	unsigned calls;
	int fail; /* returned by fill when not 0 */
	char last_ns[64];
};

static int fake_fill(void *ctx, const struct kanary *k, struct catalog *cat)
{
	struct fake_lookup *f = ctx;

	f->calls++;
	snprintf(f->last_ns, sizeof(f->last_ns), "%s", k->namespace);
	if (f->fail)
		return f->fail;
	for (size_t i = 0; i < json_object_array_length(f->docs); i++) {
		int r = catalog_add(cat, json_object_array_get_idx(f->docs, i), "default");
		if (r < 0)
			return r;
	}
	return 0;
}

struct fixture {
	struct fake_lookup fake;
	struct admission_lookup lookup;
	char *response;
	size_t len;
	struct json_object *parsed;
	struct admission_outcome out;
	char err[256];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct doc_err err;

	assert_non_null(f);
	assert_int_equal(doc_parse_stream(cluster_yaml, strlen(cluster_yaml), &f->fake.docs, &err),
	                 0);
	f->lookup.fill = fake_fill;
	f->lookup.ctx = &f->fake;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	json_object_put(f->fake.docs);
	json_object_put(f->parsed);
	free(f->response);
	free(f);
	return 0;
}

/*
 * An AdmissionReview for kanaries in namespace shop. object and old are JSON
 * text or NULL; name NULL leaves metadata.name out (generateName).
 */
static char *review(const char *operation, const char *name, const char *object_spec,
                    const char *old_spec, const char *extra_request_fields)
{
	struct buf b;
	char *text = NULL;

	buf_init(&b, KANARY_MAX_ADMISSION_BODY);
	assert_int_equal(
	    buf_printf(&b,
	               "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
	               "\"request\":{\"uid\":\"705ab4f5-6393-11e8-b7cc-42010a800002\","
	               "\"kind\":{\"group\":\"kanary.pyxida.io\",\"version\":\"v1alpha1\","
	               "\"kind\":\"Kanary\"},"
	               "\"resource\":{\"group\":\"kanary.pyxida.io\",\"version\":\"v1alpha1\","
	               "\"resource\":\"kanaries\"},"
	               "\"namespace\":\"shop\",\"operation\":\"%s\"%s%s%s",
	               operation, name ? ",\"name\":\"" : "", name ? name : "", name ? "\"" : ""),
	    0);
	if (extra_request_fields)
		assert_int_equal(buf_printf(&b, ",%s", extra_request_fields), 0);
	if (object_spec) {
		assert_int_equal(
		    buf_printf(&b,
		               ",\"object\":{\"apiVersion\":\"kanary.pyxida.io/v1alpha1\","
		               "\"kind\":\"Kanary\",\"metadata\":{%s%s%s\"labels\":{\"a\":\"b\"}},"
		               "\"spec\":%s}",
		               name ? "\"name\":\"" : "\"generateName\":\"ky-\",", name ? name : "",
		               name ? "\"," : "", object_spec),
		    0);
	}
	if (old_spec) {
		assert_int_equal(
		    buf_printf(&b,
		               ",\"oldObject\":{\"apiVersion\":\"kanary.pyxida.io/v1alpha1\","
		               "\"kind\":\"Kanary\",\"metadata\":{\"name\":\"%s\","
		               "\"namespace\":\"shop\"},\"spec\":%s}",
		               name ? name : "", old_spec),
		    0);
	}
	assert_int_equal(buf_puts(&b, "}}"), 0);
	assert_int_equal(buf_steal(&b, &text, NULL), 0);
	buf_finish(&b);
	return text;
}

/* Replaces the first `from` in text (which must be there) by `to`; frees text. */
static char *replace_once(char *text, const char *from, const char *to)
{
	char *at = strstr(text, from), *out;
	size_t n = strlen(text) - strlen(from) + strlen(to) + 1;

	assert_non_null(at);
	out = malloc(n);
	assert_non_null(out);
	snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	free(text);
	return out;
}

/* Runs admission_handle on body and, on success, parses the response into f->parsed. */
static int run(struct fixture *f, const char *body, size_t len, enum admission_op op)
{
	int r;

	free(f->response);
	f->response = NULL;
	json_object_put(f->parsed);
	f->parsed = NULL;
	memset(&f->out, 0, sizeof(f->out));
	f->err[0] = '\0';
	r = admission_handle(body, len, op, &f->lookup, &f->response, &f->len, &f->out, f->err,
	                     sizeof(f->err));
	if (r == 0) {
		assert_non_null(f->response);
		assert_int_equal(strlen(f->response), f->len);
		f->parsed = json_tokener_parse(f->response);
		assert_non_null(f->parsed);
	}
	return r;
}

static int run_text(struct fixture *f, const char *body, enum admission_op op)
{
	return run(f, body, strlen(body), op);
}

/* Runs a review built by review() and frees it. */
static int run_review(struct fixture *f, char *body, enum admission_op op)
{
	int r = run_text(f, body, op);

	free(body);
	return r;
}

static struct json_object *at(struct json_object *obj, const char *path)
{
	char part[64];

	/* path is dot-separated; a part of digits indexes an array. */
	while (obj && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		char *end;
		long idx;

		assert_true(n < sizeof(part));
		memcpy(part, path, n);
		part[n] = '\0';
		path += dot ? n + 1 : n;
		idx = strtol(part, &end, 10);
		if (*end == '\0' && json_object_is_type(obj, json_type_array))
			obj = json_object_array_get_idx(obj, (size_t)idx);
		else if (!json_object_object_get_ex(obj, part, &obj))
			obj = NULL;
	}
	return obj;
}

static const char *str(struct json_object *root, const char *path)
{
	struct json_object *v = at(root, path);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static bool allowed(struct fixture *f)
{
	struct json_object *v = at(f->parsed, "response.allowed");

	assert_non_null(v);
	assert_true(json_object_is_type(v, json_type_boolean));
	return json_object_get_boolean(v);
}

/* The decoded JSONPatch of the response, parsed; NULL when it has none. */
static struct json_object *decoded_patch(struct fixture *f)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *b64 = str(f->parsed, "response.patch");
	char out[4096];
	size_t o = 0, n;
	unsigned v = 0;
	int bits = 0;

	if (!b64)
		return NULL;
	assert_string_equal(str(f->parsed, "response.patchType"), "JSONPatch");
	n = strlen(b64);
	assert_int_equal(n % 4, 0);
	for (size_t i = 0; i < n && b64[i] != '='; i++) {
		const char *p = strchr(tbl, b64[i]);
		assert_non_null(p);
		v = (v << 6) | (unsigned)(p - tbl);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			assert_true(o < sizeof(out) - 1);
			out[o++] = (char)((v >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return json_tokener_parse(out);
}

static void response_echoes_uid_and_review_type(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(
	    run_review(f, review("CREATE", "ky", VALID_SPEC, NULL, NULL), ADMISSION_VALIDATE), 0);
	assert_string_equal(str(f->parsed, "apiVersion"), "admission.k8s.io/v1");
	assert_string_equal(str(f->parsed, "kind"), "AdmissionReview");
	assert_string_equal(str(f->parsed, "response.uid"), "705ab4f5-6393-11e8-b7cc-42010a800002");
	assert_true(allowed(f));
	assert_null(at(f->parsed, "response.status"));
	assert_null(at(f->parsed, "response.warnings"));
	assert_int_equal(f->out.verdict, ADMISSION_ALLOWED);
	assert_string_equal(f->out.key, "shop/ky");
	assert_int_equal(f->fake.calls, 1);
	/* The object carried no namespace: the request's is used for the lookups. */
	assert_string_equal(f->fake.last_ns, "shop");
}

static void validate_denies_weights_over_100(void **state)
{
	struct fixture *f = *state;
	const char *spec =
	    "{\"destination\":\"myapp\",\"routes\":["
	    "{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"http\"},\"weight\":90},"
	    "{\"backend\":{\"serviceName\":\"myapp-v2\",\"servicePort\":9090},\"weight\":20}]}";
	struct json_object *causes;

	assert_int_equal(
	    run_review(f, review("CREATE", "ky", spec, NULL, NULL), ADMISSION_VALIDATE), 0);
	assert_false(allowed(f));
	assert_int_equal(f->out.verdict, ADMISSION_DENIED);
	assert_int_equal(json_object_get_int(at(f->parsed, "response.status.code")), 422);
	assert_string_equal(str(f->parsed, "response.status.status"), "Failure");
	assert_string_equal(str(f->parsed, "response.status.reason"), "Invalid");
	assert_string_equal(str(f->parsed, "response.status.message"),
	                    "Kanary shop/ky is invalid: spec.routes: Invalid value: 110: the "
	                    "weights of all routes must sum to 100");
	assert_string_equal(str(f->parsed, "response.status.details.name"), "ky");
	assert_string_equal(str(f->parsed, "response.status.details.group"), "kanary.pyxida.io");
	assert_string_equal(str(f->parsed, "response.status.details.kind"), "Kanary");
	causes = at(f->parsed, "response.status.details.causes");
	assert_int_equal(json_object_array_length(causes), 1);
	assert_string_equal(str(causes, "0.field"), "spec.routes");
	assert_string_equal(str(causes, "0.reason"), "FieldValueInvalid");
	assert_string_equal(str(causes, "0.message"),
	                    "Invalid value: 110: the weights of all routes must sum to 100");
}

/*
 * The answer is written as text, not printed from a tree: quotes, backslashes,
 * control characters and non-ASCII from the request come back escaped or as
 * they were, and the answer parses to the same strings.
 */
static void answers_escape_what_the_request_carried(void **state)
{
	struct fixture *f = *state;
	const char *spec = "{\"destination\":\"a\\\"b\\\\c\\u0001\\n\\u00fc\\t\","
	                   "\"routes\":[{\"backend\":{\"serviceName\":\"myapp-v1\","
	                   "\"servicePort\":\"http\"},\"weight\":100}]}";
	struct json_object *causes;
	const char *msg;

	assert_int_equal(run_review(f,
	                            replace_once(review("CREATE", "ky", spec, NULL, NULL),
	                                         "705ab4f5", "\\\"\\u001f\\/\xe2\x82\xac"),
	                            ADMISSION_VALIDATE),
	                 0);
	assert_false(allowed(f));
	assert_string_equal(str(f->parsed, "response.uid"),
	                    "\"\x1f/\xe2\x82\xac-6393-11e8-b7cc-42010a800002");
	causes = at(f->parsed, "response.status.details.causes");
	assert_string_equal(str(causes, "0.field"), "spec.destination");
	msg = str(causes, "0.message");
	/* kerr quotes the value as the API server does; the answer carries that text as it is. */
	assert_non_null(strstr(msg, "\"a\\\"b\\\\c\\u0001\\n\xc3\xbc\\u0009\""));
	/* No raw control character reaches the text of the answer. */
	for (const char *p = f->response; *p; p++)
		assert_true((unsigned char)*p >= 0x20);
}

static void validate_lists_every_field_error(void **state)
{
	struct fixture *f = *state;
	const char *spec =
	    "{\"destination\":\"myapp\",\"routes\":["
	    "{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"grpc\"},\"weight\":120},"
	    "{\"backend\":{\"serviceName\":\"nowhere\",\"servicePort\":80},\"weight\":20}]}";
	struct json_object *causes;
	const char *msg;

	assert_int_equal(
	    run_review(f, review("CREATE", "ky", spec, NULL, NULL), ADMISSION_VALIDATE), 0);
	assert_false(allowed(f));
	msg = str(f->parsed, "response.status.message");
	assert_non_null(msg);
	assert_non_null(strstr(msg, "spec.routes[0].weight: Invalid value: 120"));
	assert_non_null(strstr(msg, "spec.routes[0].backend.servicePort: Not found: \"grpc\""));
	assert_non_null(strstr(msg, "spec.routes[1].backend.serviceName: Not found: \"nowhere\""));
	causes = at(f->parsed, "response.status.details.causes");
	assert_int_equal(json_object_array_length(causes), 3);
	for (size_t i = 0; i < 3; i++) {
		struct json_object *c = json_object_array_get_idx(causes, i);
		assert_non_null(str(c, "field"));
		assert_non_null(str(c, "reason"));
		assert_non_null(str(c, "message"));
	}
	assert_string_equal(str(causes, "0.reason"), "FieldValueInvalid");
	assert_string_equal(str(causes, "2.reason"), "FieldValueNotFound");
}

static void validate_denies_missing_service_and_unknown_port(void **state)
{
	struct fixture *f = *state;
	const char *spec =
	    "{\"destination\":\"myapp\",\"routes\":["
	    "{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"admin\"},\"weight\":50},"
	    "{\"backend\":{\"serviceName\":\"myapp-v3\",\"servicePort\":80},\"weight\":50}]}";

	assert_int_equal(
	    run_review(f, review("CREATE", "ky", spec, NULL, NULL), ADMISSION_VALIDATE), 0);
	assert_false(allowed(f));
	assert_string_equal(str(f->parsed, "response.status.details.causes.0.field"),
	                    "spec.routes[0].backend.servicePort");
	assert_string_equal(str(f->parsed, "response.status.details.causes.1.field"),
	                    "spec.routes[1].backend.serviceName");
}

static void mutate_patches_defaults(void **state)
{
	struct fixture *f = *state;
	struct json_object *patch;

	assert_int_equal(
	    run_review(f, review("CREATE", "ky", VALID_SPEC, NULL, NULL), ADMISSION_MUTATE), 0);
	assert_true(allowed(f));
	assert_true(f->out.patched);
	patch = decoded_patch(f);
	assert_non_null(patch);
	assert_string_equal(
	    json_object_to_json_string_ext(patch,
	                                   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    "[{\"op\":\"add\",\"path\":\"/spec/port\",\"value\":80},"
	    "{\"op\":\"add\",\"path\":\"/spec/proxy\",\"value\":{\"replicas\":2}}]");
	json_object_put(patch);
	/* No warnings from /mutate: /validate gives them, and kubectl would print them twice. */
	assert_null(at(f->parsed, "response.warnings"));
}

static void mutate_adds_replicas_inside_an_existing_proxy(void **state)
{
	struct fixture *f = *state;
	const char *spec = "{\"destination\":\"myapp\",\"port\":8080,\"proxy\":{},\"routes\":["
	                   "{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"http\"},"
	                   "\"weight\":100}]}";
	struct json_object *patch;

	assert_int_equal(run_review(f, review("CREATE", "ky", spec, NULL, NULL), ADMISSION_MUTATE),
	                 0);
	patch = decoded_patch(f);
	assert_non_null(patch);
	assert_string_equal(json_object_to_json_string_ext(
	                        patch, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	                    "[{\"op\":\"add\",\"path\":\"/spec/proxy/replicas\",\"value\":2}]");
	json_object_put(patch);
}

static void mutate_leaves_explicit_values(void **state)
{
	struct fixture *f = *state;
	const char *spec =
	    "{\"destination\":\"myapp\",\"port\":8080,\"proxy\":{\"replicas\":3},\"routes\":["
	    "{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"http\"},\"weight\":100}]"
	    "}";

	assert_int_equal(run_review(f, review("CREATE", "ky", spec, NULL, NULL), ADMISSION_MUTATE),
	                 0);
	assert_true(allowed(f));
	assert_false(f->out.patched);
	assert_null(at(f->parsed, "response.patch"));
	assert_null(at(f->parsed, "response.patchType"));
}

static void mutate_never_patches_an_invalid_kanary(void **state)
{
	struct fixture *f = *state;
	/* A malformed spec.proxy must reach /validate as written, not be replaced. */
	const char *spec = "{\"destination\":\"myapp\",\"proxy\":\"big\",\"routes\":["
	                   "{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"http\"},"
	                   "\"weight\":100}]}";

	assert_int_equal(run_review(f, review("CREATE", "ky", spec, NULL, NULL), ADMISSION_MUTATE),
	                 0);
	assert_true(allowed(f));
	assert_false(f->out.patched);
	assert_null(at(f->parsed, "response.patch"));

	/* Nor one without a spec, where "add /spec/port" could not even apply. */
	assert_int_equal(run_text(f,
	                          "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
	                          "\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"operation\":"
	                          "\"CREATE\",\"namespace\":\"shop\",\"resource\":{\"group\":"
	                          "\"kanary.pyxida.io\",\"version\":\"v1alpha1\",\"resource\":"
	                          "\"kanaries\"},\"object\":{\"apiVersion\":\"kanary.pyxida.io/"
	                          "v1alpha1\",\"kind\":\"Kanary\",\"metadata\":{\"name\":\"x\"}}}}",
	                          ADMISSION_MUTATE),
	                 0);
	assert_true(allowed(f));
	assert_null(at(f->parsed, "response.patch"));
}

static void update_with_unchanged_spec_is_admitted_unchecked(void **state)
{
	struct fixture *f = *state;

	/* The Services are gone (the lookup fails), yet a label change goes through. */
	f->fake.fail = -EIO;
	assert_int_equal(
	    run_review(f, review("UPDATE", "ky", VALID_SPEC, VALID_SPEC, NULL), ADMISSION_VALIDATE),
	    0);
	assert_true(allowed(f));
	assert_int_equal(f->out.verdict, ADMISSION_UNCHANGED);
	assert_string_equal(f->out.key, "shop/ky");
	assert_int_equal(f->fake.calls, 0);
	assert_int_equal(
	    run_review(f, review("UPDATE", "ky", VALID_SPEC, VALID_SPEC, NULL), ADMISSION_MUTATE),
	    0);
	assert_true(allowed(f));
	assert_null(at(f->parsed, "response.patch"));
	assert_int_equal(f->fake.calls, 0);
}

static void update_that_breaks_the_sum_is_denied(void **state)
{
	struct fixture *f = *state;
	const char *spec =
	    "{\"destination\":\"myapp\",\"routes\":["
	    "{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"http\"},\"weight\":80},"
	    "{\"backend\":{\"serviceName\":\"myapp-v2\",\"servicePort\":9090},\"weight\":30}]}";

	assert_int_equal(
	    run_review(f, review("UPDATE", "ky", spec, VALID_SPEC, NULL), ADMISSION_VALIDATE), 0);
	assert_false(allowed(f));
	assert_int_equal(f->out.verdict, ADMISSION_DENIED);
	assert_int_equal(f->fake.calls, 1);
}

static void delete_status_and_other_resources_are_not_checked(void **state)
{
	struct fixture *f = *state;

	f->fake.fail = -EIO;
	assert_int_equal(
	    run_review(f, review("DELETE", "ky", NULL, VALID_SPEC, NULL), ADMISSION_VALIDATE), 0);
	assert_true(allowed(f));
	assert_int_equal(f->out.verdict, ADMISSION_NOT_HANDLED);

	assert_int_equal(run_review(f,
	                            review("UPDATE", "ky", "{\"destination\":\"bad_name\"}",
	                                   VALID_SPEC, "\"subResource\":\"status\""),
	                            ADMISSION_VALIDATE),
	                 0);
	assert_true(allowed(f));
	assert_int_equal(f->out.verdict, ADMISSION_NOT_HANDLED);

	assert_int_equal(run_text(f,
	                          "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":"
	                          "\"AdmissionReview\",\"request\":{\"uid\":\"u2\",\"operation\":"
	                          "\"CREATE\",\"resource\":{\"group\":\"\",\"version\":\"v1\","
	                          "\"resource\":\"configmaps\"},\"object\":{}}}",
	                          ADMISSION_VALIDATE),
	                 0);
	assert_true(allowed(f));
	assert_string_equal(str(f->parsed, "response.uid"), "u2");
	assert_int_equal(f->fake.calls, 0);
}

static void warnings_for_weight_zero_and_no_endpoints(void **state)
{
	struct fixture *f = *state;
	struct doc_err err;
	struct json_object *w;
	const char *spec =
	    "{\"destination\":\"myapp\",\"routes\":["
	    "{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"http\"},\"weight\":100},"
	    "{\"backend\":{\"serviceName\":\"myapp-v2\",\"servicePort\":9090},\"weight\":0}]}";
	static const char services_only[] =
	    "apiVersion: v1\nkind: Service\nmetadata: {name: myapp-v1, namespace: shop}\n"
	    "spec:\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n"
	    "---\napiVersion: v1\nkind: Service\nmetadata: {name: myapp-v2, namespace: shop}\n"
	    "spec:\n  ports:\n  - {port: 9090, targetPort: 9090}\n";

	json_object_put(f->fake.docs);
	assert_int_equal(
	    doc_parse_stream(services_only, strlen(services_only), &f->fake.docs, &err), 0);
	assert_int_equal(
	    run_review(f, review("CREATE", "ky", spec, NULL, NULL), ADMISSION_VALIDATE), 0);
	assert_true(allowed(f));
	w = at(f->parsed, "response.warnings");
	assert_non_null(w);
	assert_int_equal(json_object_array_length(w), 2);
	assert_int_equal(f->out.n_warnings, 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(w, 0)),
	                    "spec.routes[0].backend: Service myapp-v1 has no ready endpoints; its "
	                    "share goes to the other routes until it has");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(w, 1)),
	                    "spec.routes[1]: weight 0: Service myapp-v2 gets no new connections");
}

static void generate_name_create_is_checked(void **state)
{
	struct fixture *f = *state;
	const char *spec =
	    "{\"destination\":\"myapp\",\"routes\":["
	    "{\"backend\":{\"serviceName\":\"myapp-v1\",\"servicePort\":\"http\"},\"weight\":50}]}";

	assert_int_equal(
	    run_review(f, review("CREATE", NULL, VALID_SPEC, NULL, NULL), ADMISSION_VALIDATE), 0);
	assert_true(allowed(f));
	assert_string_equal(f->out.key, "shop/");
	assert_int_equal(
	    run_review(f, review("CREATE", NULL, spec, NULL, NULL), ADMISSION_VALIDATE), 0);
	assert_false(allowed(f));
	assert_non_null(strstr(str(f->parsed, "response.status.message"),
	                       "Kanary shop/<generated> is invalid: "));
	assert_null(at(f->parsed, "response.status.details.name"));
}

static void lookup_failure_is_an_error_not_a_verdict(void **state)
{
	struct fixture *f = *state;

	f->fake.fail = -ETIMEDOUT;
	assert_int_equal(
	    run_review(f, review("CREATE", "ky", VALID_SPEC, NULL, NULL), ADMISSION_VALIDATE),
	    -EIO);
	assert_null(f->response);
	assert_int_equal(f->out.verdict, ADMISSION_LOOKUP_FAILED);
	assert_string_equal(f->out.key, "shop/ky");
	assert_non_null(strstr(f->err, "looking up the Services of shop/ky"));
}

static void malformed_bodies_are_refused(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	    "",
	    "{",
	    "not json",
	    "{\"a\":1} trailing",
	    "{\"a\":1}{\"b\":2}",
	    "[1,2,3]",
	    "42",
	    "null",
	    "{}",
	    "{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\","
	    "\"request\":{\"uid\":\"u\"}}",
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\"}",
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
	    "\"request\":{\"operation\":\"CREATE\"}}",
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
	    "\"request\":{\"uid\":7}}",
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\",\"request\":{\"uid\":\"u\"}}",
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
	    "\"request\":[]}",
	    /* A Kanary CREATE without an object to check. */
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
	    "\"request\":{\"uid\":\"u\",\"operation\":\"CREATE\",\"resource\":{\"group\":"
	    "\"kanary.pyxida.io\",\"version\":\"v1alpha1\",\"resource\":\"kanaries\"}}}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(run_text(f, bad[i], ADMISSION_VALIDATE), -EINVAL);
		assert_null(f->response);
		assert_true(f->err[0] != '\0');
	}
	/* An embedded NUL ends the text json-c reads; what follows must not be ignored. */
	assert_int_equal(run(f, "{}\0{}", 5, ADMISSION_VALIDATE), -EINVAL);
	assert_int_equal(f->fake.calls, 0);
}

/*
 * RFC 8259: JSON text is UTF-8. A body whose strings are not is refused whole,
 * wherever the bad bytes are, so they are never echoed into a 200 answer that
 * would itself not be JSON.
 */
static void strings_that_are_not_utf8_are_refused(void **state)
{
	struct fixture *f = *state;
	static const char *const bad_bytes[] = {
	    "\x80",                 /* a continuation byte alone */
	    "\xc3(",                /* a two-byte sequence cut short */
	    "\xe2\x82",             /* a three-byte sequence cut short at the end */
	    "\xff",                 /* never in UTF-8 */
	    "\xf8\x88\x80\x80\x80", /* a five-byte form */
	    "\xc0\xaf",             /* an overlong '/' */
	    "\xe0\x80\xaf",         /* the same in three bytes */
	    "\xed\xa0\x80",         /* a surrogate, U+D800 */
	    "\xf4\x90\x80\x80",     /* past U+10FFFF */
	    "ok\xe2\x82\xac"
	    "but\xe2", /* valid, then cut short */
	};
	char bad[64], label[80], *body;

	for (size_t i = 0; i < sizeof(bad_bytes) / sizeof(bad_bytes[0]); i++) {
		snprintf(bad, sizeof(bad), "ky%s", bad_bytes[i]);
		snprintf(label, sizeof(label), "\"a\":\"%s\"", bad);
		/* In the uid, echoed in every answer. */
		body =
		    replace_once(review("CREATE", "ky", VALID_SPEC, NULL, NULL), "705ab4f5", bad);
		assert_int_equal(run_review(f, body, ADMISSION_VALIDATE), -EINVAL);
		assert_non_null(strstr(f->err, "not valid UTF-8"));
		/* In the name, quoted in messages. */
		body = review("CREATE", bad, VALID_SPEC, NULL, NULL);
		assert_int_equal(run_review(f, body, ADMISSION_MUTATE), -EINVAL);
		assert_non_null(strstr(f->err, "not valid UTF-8"));
		/* In a label value, which admission never reads. */
		body = replace_once(review("CREATE", "ky", VALID_SPEC, NULL, NULL), "\"a\":\"b\"",
		                    label);
		assert_int_equal(run_review(f, body, ADMISSION_VALIDATE), -EINVAL);
		assert_null(f->response);
		assert_non_null(strstr(f->err, "not valid UTF-8"));
	}
	assert_int_equal(f->fake.calls, 0);
	/* Valid UTF-8 beyond ASCII is JSON like any other, and comes back as it was sent. */
	body = review("CREATE", "ky", VALID_SPEC, NULL, NULL);
	body = replace_once(body, "705ab4f5", "uid-\xc3\xbc-\xe2\x82\xac-\xf0\x9f\x90\xa6");
	assert_int_equal(run_review(f, body, ADMISSION_VALIDATE), 0);
	assert_string_equal(
	    json_object_get_string(at(f->parsed, "response.uid")),
	    "uid-\xc3\xbc-\xe2\x82\xac-\xf0\x9f\x90\xa6-6393-11e8-b7cc-42010a800002");
}

static void trailing_newline_is_accepted(void **state)
{
	struct fixture *f = *state;
	char *body = review("CREATE", "ky", VALID_SPEC, NULL, NULL);
	struct buf b;

	/* The API server's JSON encoder ends the body with a newline. */
	buf_init(&b, KANARY_MAX_ADMISSION_BODY);
	assert_int_equal(buf_printf(&b, "  %s\n\r\n", body), 0);
	free(body);
	assert_int_equal(run(f, b.data, b.len, ADMISSION_VALIDATE), 0);
	assert_true(allowed(f));
	buf_finish(&b);
}

static void body_over_the_ceiling_is_refused(void **state)
{
	struct fixture *f = *state;
	size_t len = KANARY_MAX_ADMISSION_BODY + 1;
	char *body = malloc(len);

	assert_non_null(body);
	memset(body, ' ', len);
	assert_int_equal(run(f, body, len, ADMISSION_VALIDATE), -EINVAL);
	assert_non_null(strstr(f->err, "over"));
	free(body);
}

static void deep_nesting_is_refused(void **state)
{
	struct fixture *f = *state;
	struct buf b;

	buf_init(&b, KANARY_MAX_ADMISSION_BODY);
	for (int i = 0; i < KANARY_MAX_DEPTH + 10; i++)
		assert_int_equal(buf_puts(&b, "{\"a\":"), 0);
	assert_int_equal(buf_puts(&b, "1"), 0);
	for (int i = 0; i < KANARY_MAX_DEPTH + 10; i++)
		assert_int_equal(buf_puts(&b, "}"), 0);
	assert_int_equal(run(f, b.data, b.len, ADMISSION_VALIDATE), -EINVAL);
	buf_finish(&b);
}

static void patch_base64_round_trips_every_length(void **state)
{
	struct fixture *f = *state;
	/* Ports of 1, 2 and 3 digits move the patch length through every value mod 3. */
	static const char *const ports[] = {"http", "80", "808"};
	static const char services[] =
	    "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: shop}\n"
	    "spec:\n  ports:\n  - {name: http, port: 7}\n  - {port: 80}\n  - {port: 808}\n"
	    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
	    "metadata: {name: a-1, namespace: shop, labels: {kubernetes.io/service-name: a}}\n"
	    "addressType: IPv4\nports:\n- {name: http, port: 7}\n"
	    "endpoints:\n- addresses: [10.0.0.1]\n";
	struct doc_err err;

	json_object_put(f->fake.docs);
	assert_int_equal(doc_parse_stream(services, strlen(services), &f->fake.docs, &err), 0);
	for (size_t i = 0; i < 3; i++) {
		char spec[256], want[128];
		struct json_object *patch, *v;
		bool number = ports[i][0] >= '0' && ports[i][0] <= '9';
		snprintf(spec, sizeof(spec),
		         "{\"destination\":\"d\",\"proxy\":{\"replicas\":2},\"routes\":["
		         "{\"backend\":{\"serviceName\":\"a\",\"servicePort\":%s%s%s},"
		         "\"weight\":100}]}",
		         number ? "" : "\"", ports[i], number ? "" : "\"");
		assert_int_equal(
		    run_review(f, review("CREATE", "ky", spec, NULL, NULL), ADMISSION_MUTATE), 0);
		patch = decoded_patch(f);
		assert_non_null(patch);
		v = at(patch, "0.value");
		snprintf(want, sizeof(want), "%s", number ? ports[i] : "7");
		assert_int_equal(json_object_get_int(v), strtol(want, NULL, 10));
		json_object_put(patch);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(response_echoes_uid_and_review_type, setup, teardown),
	    cmocka_unit_test_setup_teardown(validate_denies_weights_over_100, setup, teardown),
	    cmocka_unit_test_setup_teardown(answers_escape_what_the_request_carried, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(validate_lists_every_field_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(validate_denies_missing_service_and_unknown_port, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(mutate_patches_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(mutate_adds_replicas_inside_an_existing_proxy, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(mutate_leaves_explicit_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(mutate_never_patches_an_invalid_kanary, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(update_with_unchanged_spec_is_admitted_unchecked, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(update_that_breaks_the_sum_is_denied, setup, teardown),
	    cmocka_unit_test_setup_teardown(delete_status_and_other_resources_are_not_checked,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(warnings_for_weight_zero_and_no_endpoints, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(generate_name_create_is_checked, setup, teardown),
	    cmocka_unit_test_setup_teardown(lookup_failure_is_an_error_not_a_verdict, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(malformed_bodies_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(strings_that_are_not_utf8_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(trailing_newline_is_accepted, setup, teardown),
	    cmocka_unit_test_setup_teardown(body_over_the_ceiling_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(deep_nesting_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(patch_base64_round_trips_every_length, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
