/* SPDX-License-Identifier: Apache-2.0 */
/* Answering one AdmissionReview: check the Kanary in it, write the verdict and the patch. */
#include "common/admission.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
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
#include "common/utf8.h"

#define REVIEW_API_VERSION "admission.k8s.io/v1"

/*
 * Appends s as a JSON string, quoted and escaped (RFC 8259). Bytes that are
 * not UTF-8 (a message cut by its ceiling in the middle of a character) become
 * U+FFFD, so the answer is always JSON. len is s's length.
 */
static int json_str_len(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
	int r = buf_append(b, "\"", 1);

	while (r == 0 && p < end) {
		unsigned char c = *p;
		char esc[6] = {'\\', 0, 0, 0, 0, 0};
		size_t n = 2, seq = 1;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0x80) {
			seq = utf8_seq(p, end);
			if (seq) {
				p += seq;
				continue;
			}
			r = buf_append(b, run, (size_t)(p - run));
			if (r == 0)
				r = buf_append(b, "\xef\xbf\xbd", 3);
			run = ++p;
			continue;
		}
		switch (c) {
		case '"':
		case '\\':
			esc[1] = (char)c;
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		r = buf_append(b, run, (size_t)(p - run));
		if (r == 0)
			r = buf_append(b, esc, n);
		run = ++p;
	}
	if (r == 0)
		r = buf_append(b, run, (size_t)(p - run));
	if (r == 0)
		r = buf_append(b, "\"", 1);
	return r;
}

static int json_str(struct buf *b, const char *s)
{
	return json_str_len(b, s, strlen(s));
}

/*
 * The JSONPatch that writes what kanary_default filled in, as JSON text in
 * ret (caller storage).
 */
static int defaults_patch(const struct json_object *object, const struct kanary *k,
                          unsigned defaulted, struct buf *ret)
{
	struct json_object *spec = NULL, *proxy = NULL;
	const char *sep = "";
	int r;

	json_object_object_get_ex(object, "spec", &spec);
	if (spec)
		json_object_object_get_ex(spec, "proxy", &proxy);
	r = buf_puts(ret, "[");
	if (r == 0 && (defaulted & KANARY_DEFAULTED_PORT)) {
		r = buf_printf(ret, "{\"op\":\"add\",\"path\":\"/spec/port\",\"value\":%ld}",
		               (long)k->port);
		sep = ",";
	}
	if (r == 0 && (defaulted & KANARY_DEFAULTED_REPLICAS)) {
		if (json_object_is_type(proxy, json_type_object))
			r = buf_printf(ret,
			               "%s{\"op\":\"add\",\"path\":\"/spec/proxy/replicas\","
			               "\"value\":%ld}",
			               sep, (long)k->replicas);
		else
			r = buf_printf(ret,
			               "%s{\"op\":\"add\",\"path\":\"/spec/proxy\","
			               "\"value\":{\"replicas\":%ld}}",
			               sep, (long)k->replicas);
	}
	if (r == 0)
		r = buf_puts(ret, "]");
	return r;
}

/*
 * Warnings a user should see even when the Kanary is allowed; each is one
 * short line, appended to out as a JSON array element. Returns how many, or
 * -errno.
 */
static int add_warnings(const struct kanary *k, const struct kanary_resolution *res,
                        struct buf *out)
{
	char w[512];
	int n = 0, r = 0;

	for (size_t i = 0; r == 0 && i < k->n_routes; i++) {
		const struct kanary_route *rt = &k->routes[i];
		if (rt->weight_set && rt->weight == 0) {
			snprintf(w, sizeof(w),
			         "spec.routes[%zu]: weight 0: Service %s gets no new connections",
			         i, rt->service_name ? rt->service_name : "?");
			r = buf_puts(out, n++ ? "," : "");
			if (r == 0)
				r = json_str(out, w);
		}
		if (r == 0 && i < res->n_routes && res->routes[i].port_found &&
		    res->routes[i].n_endpoints == 0 && rt->weight_set && rt->weight > 0) {
			snprintf(w, sizeof(w),
			         "spec.routes[%zu].backend: Service %s has no ready endpoints; its "
			         "share goes to the other routes until it has",
			         i, rt->service_name);
			r = buf_puts(out, n++ ? "," : "");
			if (r == 0)
				r = json_str(out, w);
		}
	}
	return r < 0 ? r : n;
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

/* ,"status":{...} for a denial: code 422, reason Invalid, every field error in message and causes. */
static int denial_status(const struct kanary *k, const struct kerr_list *errs, struct buf *out)
{
	struct buf msg;
	int r;

	buf_init(&msg, KANARY_MAX_OUTPUT);
	r = buf_printf(&msg, "Kanary %s/%s is invalid: ", k->namespace,
	               k->name && k->name[0] ? k->name : "<generated>");
	if (r == 0)
		r = kerr_join(errs, "; ", &msg);
	if (r == 0)
		r = buf_puts(out, ",\"status\":{\"status\":\"Failure\",\"code\":422,"
		                  "\"reason\":\"Invalid\",\"message\":");
	if (r == 0)
		r = json_str_len(out, msg.data, msg.len);
	buf_finish(&msg);
	/* kubectl prints `The Kanary "<name>" is invalid:` and then each cause. */
	if (r == 0)
		r = buf_puts(out, ",\"details\":{");
	if (r == 0 && k->name && k->name[0]) {
		r = buf_puts(out, "\"name\":");
		if (r == 0)
			r = json_str(out, k->name);
		if (r == 0)
			r = buf_puts(out, ",");
	}
	if (r == 0)
		r = buf_puts(out, "\"group\":\"" KANARY_GROUP "\",\"kind\":\"" KANARY_KIND
		                  "\",\"causes\":[");
	for (size_t i = 0; r == 0 && i < kerr_count(errs); i++) {
		const char *e = kerr_get(errs, i), *colon = strstr(e, ": ");
		const char *text = colon ? colon + 2 : e, *reason = cause_reason(text);
		r = buf_puts(out, i ? ",{" : "{");
		if (r == 0 && reason)
			r = buf_printf(out, "\"reason\":\"%s\",", reason);
		if (r == 0)
			r = buf_puts(out, "\"message\":");
		if (r == 0)
			r = json_str(out, text);
		if (r == 0 && colon) {
			r = buf_puts(out, ",\"field\":");
			if (r == 0)
				r = json_str_len(out, e, (size_t)(colon - e));
		}
		if (r == 0)
			r = buf_puts(out, "}");
	}
	if (r == 0)
		r = buf_puts(out, "]}}");
	return r;
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
                         const struct admission_lookup *lookup, struct buf *response,
                         struct admission_outcome *out, char *err, size_t err_size)
{
	struct json_object *object, *meta;
	struct buf warnings, patch;
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
	/* The review is this request's own tree: the namespace is added to it in place. */
	if (ns && ns[0] && json_object_object_get_ex(object, "metadata", &meta) &&
	    json_object_is_type(meta, json_type_object) && !json_field_str(meta, "namespace") &&
	    json_object_object_add(meta, "namespace", json_object_new_string(ns)) < 0)
		return -ENOMEM;

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

	buf_init(&warnings, KANARY_MAX_OUTPUT);
	buf_init(&patch, KANARY_MAX_OUTPUT);
	if (op == ADMISSION_VALIDATE) {
		r = add_warnings(k, &res, &warnings);
		if (r >= 0) {
			out->n_warnings = (size_t)r;
			r = 0;
		}
		if (r == 0 && kerr_any(&errs)) {
			out->verdict = ADMISSION_DENIED;
			r = buf_puts(response, ",\"allowed\":false");
			if (r == 0)
				r = denial_status(k, &errs, response);
		} else if (r == 0) {
			out->verdict = ADMISSION_ALLOWED;
			r = buf_puts(response, ",\"allowed\":true");
		}
	} else {
		/*
		 * Mutation never denies: /validate, which runs after it, reports the
		 * errors. It only defaults a Kanary with none, so a patch can neither
		 * fail on a missing spec nor write over a malformed spec.proxy that
		 * validation should still see and name.
		 */
		out->verdict = ADMISSION_ALLOWED;
		r = buf_puts(response, ",\"allowed\":true");
		if (r == 0 && defaulted && !kerr_any(&errs))
			r = defaults_patch(object, k, defaulted, &patch);
	}
	if (r == 0 && patch.len) {
		r = buf_puts(response, ",\"patchType\":\"JSONPatch\",\"patch\":\"");
		if (r == 0)
			r = base64_encode(patch.data, patch.len, response);
		if (r == 0)
			r = buf_puts(response, "\"");
		if (r == 0)
			out->patched = true;
	}
	if (r == 0 && out->n_warnings) {
		r = buf_puts(response, ",\"warnings\":[");
		if (r == 0)
			r = buf_append(response, warnings.data, warnings.len);
		if (r == 0)
			r = buf_puts(response, "]");
	}
	buf_finish(&patch);
	buf_finish(&warnings);
	kanary_resolution_finish(&res);
out_finish:
	kanary_destroy(k);
	kanary_destroy(peek);
	catalog_destroy(cat);
	kerr_finish(&scratch);
	kerr_finish(&errs);
	return r;
}

int admission_handle(const char *body, size_t len, enum admission_op op,
                     const struct admission_lookup *lookup, char **ret_response, size_t *ret_len,
                     struct admission_outcome *ret_outcome, char *ret_err, size_t err_size)
{
	struct admission_outcome out = {.verdict = ADMISSION_NOT_HANDLED};
	struct json_object *review = NULL, *req;
	struct json_tokener *tok;
	struct buf response;
	const char *uid, *operation, *av, *kind;
	int r;

	if (len > KANARY_MAX_ADMISSION_BODY) {
		errmsg_format(ret_err, err_size, "body over %u bytes", KANARY_MAX_ADMISSION_BODY);
		return -EINVAL;
	}
	/* RFC 8259: JSON is UTF-8; a string that is not must never be echoed into an answer. */
	if (!utf8_valid(body, len)) {
		errmsg_format(
		    ret_err, err_size,
		    "body is not one JSON object: a string is not valid UTF-8 (RFC 8259)");
		return -EINVAL;
	}
	tok = json_tokener_new_ex(KANARY_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	review = json_tokener_parse_ex(tok, body, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		errmsg_format(ret_err, err_size, "body is not one JSON object: %s",
		              e == json_tokener_success    ? "data after the object"
		              : e == json_tokener_continue ? "the body ends before the object does"
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

	/* The answer is written as text as it is decided: no tree built only to be printed. */
	buf_init(&response, KANARY_MAX_OUTPUT);
	r = buf_puts(&response, "{\"apiVersion\":\"" REVIEW_API_VERSION
	                        "\",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":");
	if (r == 0)
		r = json_str(&response, uid);
	request_key(req, out.key, sizeof(out.key));
	operation = json_field_str(req, "operation");
	if (r < 0) {
		/* Out of memory already: nothing more to write. */
	} else if (!operation || !is_kanaries(req) ||
	           (strcmp(operation, "CREATE") != 0 && strcmp(operation, "UPDATE") != 0)) {
		/* The webhook configuration never sends these; allow rather than block. */
		r = buf_puts(&response, ",\"allowed\":true");
	} else if (strcmp(operation, "UPDATE") == 0 && spec_unchanged(req)) {
		/* A Service deleted later must never block a label or finalizer change. */
		out.verdict = ADMISSION_UNCHANGED;
		r = buf_puts(&response, ",\"allowed\":true");
	} else {
		r = review_kanary(req, op, lookup, &response, &out, ret_err, err_size);
	}
	if (r == 0)
		r = buf_puts(&response, "}}");
	if (r == 0)
		r = buf_steal(&response, ret_response, ret_len);
	buf_finish(&response);
	json_object_put(review);
	if (r == 0 || r == -EIO)
		*ret_outcome = out;
	return r;
}
