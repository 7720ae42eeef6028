/* SPDX-License-Identifier: Apache-2.0 */
/* Answering one AdmissionReview: check the Kanary in it, write the verdict and the patch. */
#include "common/admission.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/errmsg.h"
#include "common/kanary_check.h"
#include "common/json_field.h"
#include "common/kerr.h"
#include "common/limits.h"
#include "common/resolve.h"

#define REVIEW_API_VERSION "admission.k8s.io/v1"

/* The JSONPatch that writes what kanary_default filled in. Ownership: caller puts *ret. */
static int defaults_patch(const struct json_object *object, const struct kanary *k,
                          unsigned defaulted, struct json_object **ret)
{
	struct json_object *ops, *op, *spec = NULL, *proxy = NULL;

	ops = json_object_new_array();
	if (!ops)
		return -ENOMEM;
	json_object_object_get_ex(object, "spec", &spec);
	if (spec)
		json_object_object_get_ex(spec, "proxy", &proxy);
	if (defaulted & KANARY_DEFAULTED_PORT) {
		op = json_object_new_object();
		json_object_object_add(op, "op", json_object_new_string("add"));
		json_object_object_add(op, "path", json_object_new_string("/spec/port"));
		json_object_object_add(op, "value", json_object_new_int64(k->port));
		json_object_array_add(ops, op);
	}
	if (defaulted & KANARY_DEFAULTED_REPLICAS) {
		op = json_object_new_object();
		json_object_object_add(op, "op", json_object_new_string("add"));
		if (json_object_is_type(proxy, json_type_object)) {
			json_object_object_add(op, "path",
			                       json_object_new_string("/spec/proxy/replicas"));
			json_object_object_add(op, "value", json_object_new_int64(k->replicas));
		} else {
			struct json_object *v = json_object_new_object();
			json_object_object_add(v, "replicas", json_object_new_int64(k->replicas));
			json_object_object_add(op, "path", json_object_new_string("/spec/proxy"));
			json_object_object_add(op, "value", v);
		}
		json_object_array_add(ops, op);
	}
	*ret = ops;
	return 0;
}

/* Warnings a user should see even when the Kanary is allowed; each is one short line. */
static void add_warnings(const struct kanary *k, const struct kanary_resolution *res,
                         struct json_object *warnings)
{
	char w[512];

	for (size_t i = 0; i < k->n_routes; i++) {
		const struct kanary_route *r = &k->routes[i];
		if (r->weight_set && r->weight == 0) {
			snprintf(w, sizeof(w),
			         "spec.routes[%zu]: weight 0: Service %s gets no new connections",
			         i, r->service_name ? r->service_name : "?");
			json_object_array_add(warnings, json_object_new_string(w));
		}
		if (i < res->n_routes && res->routes[i].port_found &&
		    res->routes[i].n_endpoints == 0 && r->weight_set && r->weight > 0) {
			snprintf(w, sizeof(w),
			         "spec.routes[%zu].backend: Service %s has no ready endpoints; its "
			         "share goes to the other routes until it has",
			         i, r->service_name);
			json_object_array_add(warnings, json_object_new_string(w));
		}
	}
}

/*
 * The metav1.CauseType of a field error, from the type word kerr put after the
 * path ("Invalid value: ..."), as the API server names them; NULL for none.
 */
static const char *cause_reason(const char *text)
{
	static const struct {
		const char *prefix, *reason;
	} map[] = {
	    {"Invalid value", "FieldValueInvalid"}, {"Required value", "FieldValueRequired"},
	    {"Not found", "FieldValueNotFound"},    {"Duplicate value", "FieldValueDuplicate"},
	    {"Too many", "FieldValueTooMany"},      {"Forbidden", "FieldValueForbidden"},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		size_t n = strlen(map[i].prefix);
		if (strncmp(text, map[i].prefix, n) == 0 && (text[n] == ':' || text[n] == '\0'))
			return map[i].reason;
	}
	return NULL;
}

/* status for a denial: code 422, reason Invalid, every field error in message and causes. */
static int denial_status(const struct kanary *k, const struct kerr_list *errs,
                         struct json_object *response)
{
	struct json_object *status, *details, *causes;
	struct buf msg;
	int r;

	buf_init(&msg, KANARY_MAX_OUTPUT);
	r = buf_printf(&msg, "Kanary %s/%s is invalid: ", k->namespace,
	               k->name && k->name[0] ? k->name : "<generated>");
	if (r == 0)
		r = kerr_join(errs, "; ", &msg);
	if (r < 0) {
		buf_finish(&msg);
		return r;
	}
	status = json_object_new_object();
	details = json_object_new_object();
	causes = json_object_new_array();
	json_object_object_add(status, "status", json_object_new_string("Failure"));
	json_object_object_add(status, "code", json_object_new_int(422));
	json_object_object_add(status, "reason", json_object_new_string("Invalid"));
	json_object_object_add(status, "message", json_object_new_string(msg.data));
	for (size_t i = 0; i < kerr_count(errs); i++) {
		const char *e = kerr_get(errs, i), *colon = strstr(e, ": ");
		const char *reason = cause_reason(colon ? colon + 2 : e);
		struct json_object *c = json_object_new_object();
		if (reason)
			json_object_object_add(c, "reason", json_object_new_string(reason));
		json_object_object_add(c, "message", json_object_new_string(colon ? colon + 2 : e));
		if (colon)
			json_object_object_add(c, "field",
			                       json_object_new_string_len(e, (int)(colon - e)));
		json_object_array_add(causes, c);
	}
	/* kubectl prints `The Kanary "<name>" is invalid:` and then each cause. */
	if (k->name && k->name[0])
		json_object_object_add(details, "name", json_object_new_string(k->name));
	json_object_object_add(details, "group", json_object_new_string(KANARY_GROUP));
	json_object_object_add(details, "kind", json_object_new_string(KANARY_KIND));
	json_object_object_add(details, "causes", causes);
	json_object_object_add(status, "details", details);
	json_object_object_add(response, "status", status);
	buf_finish(&msg);
	return 0;
}

/* Takes response; builds the whole AdmissionReview text. */
static int write_review(struct json_object *response, char **ret, size_t *ret_len)
{
	struct json_object *review = json_object_new_object();
	const char *text;
	size_t len;

	json_object_object_add(review, "apiVersion", json_object_new_string(REVIEW_API_VERSION));
	json_object_object_add(review, "kind", json_object_new_string("AdmissionReview"));
	json_object_object_add(review, "response", response);
	text = json_object_to_json_string_length(
	    review, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!text) {
		json_object_put(review);
		return -ENOMEM;
	}
	*ret = strndup(text, len);
	json_object_put(review);
	if (!*ret)
		return -ENOMEM;
	*ret_len = len;
	return 0;
}

static bool is_kanaries(const struct json_object *req)
{
	struct json_object *res;
	const char *group, *resource, *sub;

	if (!json_object_object_get_ex(req, "resource", &res))
		return false;
	group = json_field_str(res, "group");
	resource = json_field_str(res, "resource");
	sub = json_field_str(req, "subResource");
	return group && resource && strcmp(group, KANARY_GROUP) == 0 &&
	       strcmp(resource, "kanaries") == 0 && (!sub || !sub[0]);
}

/* "namespace/name" from the request itself, for the outcome of any request. */
static void request_key(const struct json_object *req, char *out, size_t size)
{
	const char *ns = json_field_str(req, "namespace"), *name = json_field_str(req, "name");

	snprintf(out, size, "%s/%s", ns ? ns : "", name ? name : "");
}

/* An UPDATE that leaves spec as it was: labels, annotations, finalizers, status. */
static bool spec_unchanged(const struct json_object *req)
{
	struct json_object *obj, *old, *a = NULL, *b = NULL;

	if (!json_object_object_get_ex(req, "object", &obj) ||
	    !json_object_object_get_ex(req, "oldObject", &old) || !old)
		return false;
	json_object_object_get_ex(obj, "spec", &a);
	json_object_object_get_ex(old, "spec", &b);
	return json_object_equal(a, b) == 1;
}

/*
 * Checks the Kanary of req and fills response. The object's namespace comes
 * from request.namespace when the object has none (CREATE before defaulting).
 */
static int review_kanary(struct json_object *req, enum admission_op op,
                         const struct admission_lookup *lookup, struct json_object *response,
                         struct admission_outcome *out, char *err, size_t err_size)
{
	struct json_object *object, *meta, *warnings, *patch = NULL;
	struct kanary_resolution res;
	struct kanary *peek = NULL, *k = NULL;
	struct catalog *cat = NULL;
	struct kerr_list errs, scratch;
	const char *ns = json_field_str(req, "namespace");
	unsigned defaulted = 0;
	int r;

	if (!json_object_object_get_ex(req, "object", &object) ||
	    !json_object_is_type(object, json_type_object)) {
		errmsg_format(err, err_size, "request.object is missing or not an object");
		return -EINVAL;
	}
	object = json_object_get(object);
	if (ns && ns[0] && json_object_object_get_ex(object, "metadata", &meta) &&
	    json_object_is_type(meta, json_type_object) && !json_field_str(meta, "namespace")) {
		struct json_object *copy = NULL;
		if (json_object_deep_copy(object, &copy, NULL) != 0) {
			json_object_put(object);
			return -ENOMEM;
		}
		json_object_put(object);
		object = copy;
		json_object_object_get_ex(object, "metadata", &meta);
		json_object_object_add(meta, "namespace", json_object_new_string(ns));
	}

	kerr_init(&errs);
	kerr_init(&scratch);
	r = catalog_create(&cat);
	if (r < 0)
		goto out_finish;
	/* The lookup needs the backend names: read once without keeping the verdict. */
	r = kanary_from_json(object, &peek, &scratch);
	if (r < 0)
		goto out_finish;
	snprintf(out->key, sizeof(out->key), "%s/%s", peek->namespace,
	         peek->name ? peek->name : "");
	if (lookup && lookup->fill) {
		r = lookup->fill(lookup->ctx, peek, cat);
		if (r < 0) {
			errmsg_format(err, err_size, "looking up the Services of %s: %s", out->key,
			              strerror(-r));
			out->verdict = ADMISSION_LOOKUP_FAILED;
			r = -EIO;
			goto out_finish;
		}
	}
	r = kanary_check(object, cat, 0, &k, &res, &defaulted, &errs);
	if (r < 0)
		goto out_finish;

	warnings = json_object_new_array();
	if (!warnings) {
		r = -ENOMEM;
		goto out_finish_res;
	}
	if (op == ADMISSION_VALIDATE) {
		add_warnings(k, &res, warnings);
		if (kerr_any(&errs)) {
			out->verdict = ADMISSION_DENIED;
			json_object_object_add(response, "allowed", json_object_new_boolean(0));
			r = denial_status(k, &errs, response);
		} else {
			out->verdict = ADMISSION_ALLOWED;
			json_object_object_add(response, "allowed", json_object_new_boolean(1));
		}
	} else {
		/*
		 * Mutation never denies: /validate, which runs after it, reports the
		 * errors. It only defaults a Kanary with none, so a patch can neither
		 * fail on a missing spec nor write over a malformed spec.proxy that
		 * validation should still see and name.
		 */
		out->verdict = ADMISSION_ALLOWED;
		json_object_object_add(response, "allowed", json_object_new_boolean(1));
		if (defaulted && !kerr_any(&errs))
			r = defaults_patch(object, k, defaulted, &patch);
	}
	if (r == 0 && patch) {
		const char *text = json_object_to_json_string_ext(
		    patch, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		struct buf b64;
		buf_init(&b64, KANARY_MAX_OUTPUT);
		r = text ? base64_encode(text, strlen(text), &b64) : -ENOMEM;
		if (r == 0) {
			json_object_object_add(response, "patchType",
			                       json_object_new_string("JSONPatch"));
			json_object_object_add(response, "patch",
			                       json_object_new_string(b64.data ? b64.data : ""));
			out->patched = true;
		}
		buf_finish(&b64);
		json_object_put(patch);
	}
	out->n_warnings = json_object_array_length(warnings);
	if (out->n_warnings)
		json_object_object_add(response, "warnings", warnings);
	else
		json_object_put(warnings);
out_finish_res:
	kanary_resolution_finish(&res);
out_finish:
	kanary_destroy(k);
	kanary_destroy(peek);
	catalog_destroy(cat);
	kerr_finish(&scratch);
	kerr_finish(&errs);
	json_object_put(object);
	return r;
}

int admission_handle(const char *body, size_t len, enum admission_op op,
                     const struct admission_lookup *lookup, char **ret_response, size_t *ret_len,
                     struct admission_outcome *ret_outcome, char *ret_err, size_t err_size)
{
	struct admission_outcome out = {.verdict = ADMISSION_NOT_HANDLED};
	struct json_object *review = NULL, *req, *response;
	struct json_tokener *tok;
	const char *uid, *operation, *av, *kind;
	int r;

	if (len > KANARY_MAX_ADMISSION_BODY) {
		errmsg_format(ret_err, err_size, "body over %u bytes", KANARY_MAX_ADMISSION_BODY);
		return -EINVAL;
	}
	tok = json_tokener_new_ex(KANARY_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	/* RFC 8259: JSON is UTF-8; a string that is not must never be echoed into an answer. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	review = json_tokener_parse_ex(tok, body, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		errmsg_format(ret_err, err_size, "body is not one JSON object: %s",
		              e == json_tokener_success    ? "data after the object"
		              : e == json_tokener_continue ? "the body ends before the object does"
		              : e == json_tokener_error_parse_utf8_string
		                  ? "a string is not valid UTF-8 (RFC 8259)"
		                  : json_tokener_error_desc(e));
		json_tokener_free(tok);
		json_object_put(review);
		return -EINVAL;
	}
	json_tokener_free(tok);

	av = json_field_str(review, "apiVersion");
	kind = json_field_str(review, "kind");
	if (!av || strcmp(av, REVIEW_API_VERSION) != 0 || !kind ||
	    strcmp(kind, "AdmissionReview") != 0 ||
	    !json_object_object_get_ex(review, "request", &req) ||
	    !json_object_is_type(req, json_type_object) || !(uid = json_field_str(req, "uid"))) {
		errmsg_format(ret_err, err_size,
		              "body is not an %s AdmissionReview with a request and its uid",
		              REVIEW_API_VERSION);
		json_object_put(review);
		return -EINVAL;
	}

	response = json_object_new_object();
	if (!response) {
		json_object_put(review);
		return -ENOMEM;
	}
	json_object_object_add(response, "uid", json_object_new_string(uid));
	request_key(req, out.key, sizeof(out.key));
	operation = json_field_str(req, "operation");
	if (!operation || !is_kanaries(req) ||
	    (strcmp(operation, "CREATE") != 0 && strcmp(operation, "UPDATE") != 0)) {
		/* The webhook configuration never sends these; allow rather than block. */
		json_object_object_add(response, "allowed", json_object_new_boolean(1));
		r = 0;
	} else if (strcmp(operation, "UPDATE") == 0 && spec_unchanged(req)) {
		/* A Service deleted later must never block a label or finalizer change. */
		out.verdict = ADMISSION_UNCHANGED;
		json_object_object_add(response, "allowed", json_object_new_boolean(1));
		r = 0;
	} else {
		r = review_kanary(req, op, lookup, response, &out, ret_err, err_size);
	}
	if (r == 0)
		r = write_review(response, ret_response, ret_len);
	else
		json_object_put(response);
	json_object_put(review);
	if (r == 0 || r == -EIO)
		*ret_outcome = out;
	return r;
}
