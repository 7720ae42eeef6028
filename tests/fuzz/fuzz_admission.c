/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: an AdmissionReview body for /validate or /mutate, as the webhook answers it. */
/*
 * Built twice: fuzz_validate (FUZZ_MUTATE 0) and fuzz_mutate (FUZZ_MUTATE 1).
 * The input is the request body; admission_handle answers it exactly as
 * webhook/server.c does, with the Services and EndpointSlices of
 * tests/fuzz/cluster.yaml standing in for the cache (a Kanary named
 * "lookup-fails" makes the lookup fail, as an unreachable API server does).
 * Checked:
 * - the result is 0 (200), -EINVAL (400, with a message) or -EIO (500); a
 *   body that is not UTF-8 gets 400;
 * - a 200 answer is one strict JSON object (UTF-8 validated) holding an
 *   AdmissionReview response with the request's uid and allowed, and a
 *   denial (only from /validate) carries a 422 status with causes;
 * - /mutate's patch is base64 of a JSONPatch of "add" operations on
 *   /spec/port, /spec/proxy or /spec/proxy/replicas; the object with the
 *   patch applied is allowed by /validate and patched no further by /mutate,
 *   as the API server runs them one after the other.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/admission.h"
#include "common/base64.h"
#include "common/buf.h"
#include "common/doc.h"
#include "common/io/file_read.h"
#include "common/json_field.h"
#include "common/limits.h"
#include "common/resolve.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_MUTATE
#error "FUZZ_MUTATE must be 0 (/validate) or 1 (/mutate)"
#endif

static struct json_object *cluster;

/* Items of an array; 0 for anything else (json-c asserts on a non-array). */
static size_t items(const struct json_object *v)
{
	return json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
}

static int fill_cluster(void *ctx, const struct kanary *k, struct catalog *cat)
{
	(void)ctx;
	if (k->name && strcmp(k->name, "lookup-fails") == 0)
		return -ETIMEDOUT;
	for (size_t i = 0; i < json_object_array_length(cluster); i++) {
		int r = catalog_add(cat, json_object_array_get_idx(cluster, i), "default");
		if (r < 0)
			return r;
	}
	return 0;
}

static const struct admission_lookup lookup = {.fill = fill_cluster};

/* Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t j = 1; j <= n; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* The answer, read back strictly. Ownership: the caller puts the result. */
static struct json_object *parse_answer(const char *text, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *v;

	FUZZ_CHECK(tok, "json_tokener_new");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	v = json_tokener_parse_ex(tok, text, (int)len);
	FUZZ_CHECK(json_tokener_get_error(tok) == json_tokener_success &&
	               json_tokener_get_parse_end(tok) == len,
	           "the 200 answer is not one JSON object (%s): %.*s",
	           json_tokener_error_desc(json_tokener_get_error(tok)), (int)len, text);
	json_tokener_free(tok);
	FUZZ_CHECK(json_object_is_type(v, json_type_object), "the answer is not an object");
	return v;
}

/* The decoded JSONPatch of a response, or NULL. Ownership: the caller puts it. */
static struct json_object *decode_patch(const struct json_object *resp)
{
	const char *b64 = json_field_str(resp, "patch"), *type = json_field_str(resp, "patchType");
	struct json_object *ops;
	struct buf raw;

	if (!b64) {
		FUZZ_CHECK(!type, "patchType without a patch");
		return NULL;
	}
	FUZZ_CHECK(type && strcmp(type, "JSONPatch") == 0, "patchType %s", type ? type : "unset");
	buf_init(&raw, KANARY_MAX_OUTPUT);
	FUZZ_CHECK(base64_decode(b64, KANARY_MAX_OUTPUT, &raw) == 0, "patch is not base64");
	ops = raw.data ? json_tokener_parse(raw.data) : NULL;
	FUZZ_CHECK(items(ops) > 0, "patch is not a non-empty JSON array: %s",
	           raw.data ? raw.data : "");
	buf_finish(&raw);
	return ops;
}

/* Applies the "add" operations mutate writes to object (in place). */
static void apply_patch(struct json_object *object, const struct json_object *ops)
{
	struct json_object *spec = json_field_get(object, "spec"), *proxy;

	FUZZ_CHECK(json_object_is_type(spec, json_type_object), "patched object has no spec");
	for (size_t i = 0; i < json_object_array_length(ops); i++) {
		struct json_object *op = json_object_array_get_idx(ops, i);
		const char *kind = json_field_str(op, "op"), *path = json_field_str(op, "path");
		struct json_object *value = json_field_get(op, "value");

		FUZZ_CHECK(kind && strcmp(kind, "add") == 0 && path && value, "patch op %zu", i);
		value = json_object_get(value);
		if (strcmp(path, "/spec/port") == 0) {
			json_object_object_add(spec, "port", value);
		} else if (strcmp(path, "/spec/proxy") == 0) {
			FUZZ_CHECK(
			    !json_object_is_type(json_field_get(spec, "proxy"), json_type_object),
			    "replaces an existing spec.proxy");
			json_object_object_add(spec, "proxy", value);
		} else if (strcmp(path, "/spec/proxy/replicas") == 0) {
			proxy = json_field_get(spec, "proxy");
			FUZZ_CHECK(json_object_is_type(proxy, json_type_object),
			           "/spec/proxy/replicas without spec.proxy");
			json_object_object_add(proxy, "replicas", value);
		} else {
			FUZZ_CHECK(false, "patch path %s", path);
		}
	}
}

/*
 * Runs body through admission_handle and checks the answer. Returns the
 * parsed answer for a 200, else NULL. Ownership: the caller puts it.
 */
static struct json_object *handle(const char *body, size_t len, enum admission_op op,
                                  struct admission_outcome *ret_out)
{
	struct json_object *answer = NULL, *resp, *allowed, *status;
	struct admission_outcome out;
	char err[KANARY_MAX_KUBE_MESSAGE] = "", *text = NULL;
	const char *uid;
	size_t text_len = 0;
	int r;

	r = admission_handle(body, len, op, &lookup, &text, &text_len, &out, err, sizeof(err));
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EIO, "admission_handle: %d", r);
	FUZZ_CHECK(memchr(err, '\0', sizeof(err)), "unterminated message");
	/* RFC 8259: JSON is UTF-8; a body that is not is refused with 400. */
	FUZZ_CHECK(r == -EINVAL || utf8_valid((const unsigned char *)body, len),
	           "a body that is not UTF-8 answered with %d", r);
	if (r < 0) {
		FUZZ_CHECK(err[0], "an error answer without a message");
		FUZZ_CHECK(r != -EIO || out.verdict == ADMISSION_LOOKUP_FAILED, "500 verdict %d",
		           (int)out.verdict);
		return NULL;
	}
	FUZZ_CHECK(text && strlen(text) == text_len, "answer length");
	FUZZ_CHECK(out.verdict != ADMISSION_LOOKUP_FAILED, "200 with a failed lookup");
	answer = parse_answer(text, text_len);
	free(text);
	resp = json_field_get(answer, "response");
	FUZZ_CHECK(json_object_is_type(resp, json_type_object), "no response");
	uid = json_field_str(resp, "uid");
	FUZZ_CHECK(uid, "no uid in the response");
	allowed = json_field_get(resp, "allowed");
	FUZZ_CHECK(json_object_is_type(allowed, json_type_boolean), "allowed is not a boolean");
	status = json_field_get(resp, "status");
	if (out.verdict == ADMISSION_DENIED) {
		FUZZ_CHECK(op == ADMISSION_VALIDATE, "/mutate denied");
		FUZZ_CHECK(!json_object_get_boolean(allowed), "denied but allowed");
		FUZZ_CHECK(json_field_int_or(status, "code", 0) == 422, "denial without code 422");
		FUZZ_CHECK(items(json_field_path(status, JSON_FIELD_PATH("details", "causes"))) > 0,
		           "denial without causes");
	} else {
		FUZZ_CHECK(json_object_get_boolean(allowed), "verdict %d but not allowed",
		           (int)out.verdict);
		FUZZ_CHECK(!status, "a status on an allowed answer");
	}
	FUZZ_CHECK(out.patched == (json_field_get(resp, "patch") != NULL), "patched flag");
	FUZZ_CHECK(!out.patched || op == ADMISSION_MUTATE, "/validate patched");
	FUZZ_CHECK(out.n_warnings == items(json_field_get(resp, "warnings")), "warning count");
	*ret_out = out;
	return answer;
}

/* /mutate's patch applied, then /validate and /mutate again, as the API server runs them. */
static void check_mutation(const char *body, size_t len, const struct json_object *answer)
{
	struct json_object *review, *ops, *object, *again;
	struct admission_outcome out;
	struct json_tokener *tok;
	const char *text;

	ops = decode_patch(json_field_get(answer, "response"));
	if (!ops)
		return;
	tok = json_tokener_new_ex(KANARY_MAX_DEPTH);
	FUZZ_CHECK(tok, "json_tokener_new_ex");
	review = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	FUZZ_CHECK(review, "a patched body does not parse again");
	object = json_field_path(review, JSON_FIELD_PATH("request", "object"));
	apply_patch(object, ops);
	json_object_put(ops);
	text = json_object_to_json_string_ext(review, JSON_C_TO_STRING_PLAIN);

	again = handle(text, strlen(text), ADMISSION_VALIDATE, &out);
	FUZZ_CHECK(again && out.verdict == ADMISSION_ALLOWED,
	           "/validate does not allow what /mutate patched: %s", text);
	json_object_put(again);
	again = handle(text, strlen(text), ADMISSION_MUTATE, &out);
	FUZZ_CHECK(again && !out.patched, "/mutate patches its own patch again: %s", text);
	json_object_put(again);
	json_object_put(review);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct doc_err err = {{0}};
	char *text;
	size_t len;
	int r;

	(void)argc;
	(void)argv;
	r = file_read_path(FUZZ_CLUSTER, KANARY_MAX_INPUT, &text, &len);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", FUZZ_CLUSTER, strerror(-r));
		exit(2);
	}
	r = doc_parse_stream(text, len, &cluster, &err);
	free(text);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", FUZZ_CLUSTER, err.msg);
		exit(2);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const enum admission_op op = FUZZ_MUTATE ? ADMISSION_MUTATE : ADMISSION_VALIDATE;
	struct admission_outcome out;
	struct json_object *answer;

	answer = handle((const char *)data, size, op, &out);
	if (answer && op == ADMISSION_MUTATE && out.patched)
		check_mutation((const char *)data, size, answer);
	json_object_put(answer);
	return 0;
}
