/* SPDX-License-Identifier: Apache-2.0 */
/* Runs one golden AdmissionReview through admission and prints the answer. */
/*
 * admission-golden CASE_DIR: runs one golden AdmissionReview case through
 * admission_handle, exactly as the server does, and prints what the API
 * server would get:
 *
 *   HTTP <status>
 *   <the AdmissionReview response, pretty-printed, or the error text>
 *   [# patch, decoded:
 *    <the JSONPatch, pretty-printed>]
 *
 * CASE_DIR holds request.json (the body, byte for byte), optionally `path`
 * ("validate" or "mutate"; default validate) and cluster.yaml (the Services
 * and EndpointSlices the lookup finds). tests/webhook/golden-run compares the
 * output with CASE_DIR/expected.out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/admission.h"
#include "common/io/file_read.h"
#include "common/io/input.h"
#include "common/limits.h"
#include "common/resolve.h"

#define PRETTY (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)

static int read_path(const char *dir, const char *name, char **ret, size_t *ret_len)
{
	char path[KANARY_MAX_PATH];
	int fd, r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = file_read_fd(fd, KANARY_MAX_ADMISSION_BODY + 1, ret, ret_len);
	close(fd);
	return r;
}

static int fill_all(void *ctx, const struct kanary *k, struct catalog *cat)
{
	struct json_object *docs = ctx;

	(void)k;
	for (size_t i = 0; docs && i < json_object_array_length(docs); i++) {
		int r = catalog_add(cat, json_object_array_get_idx(docs, i), "default");
		if (r < 0)
			return r;
	}
	return 0;
}

/* Standard base64, padded; -EINVAL for anything else. Ownership: *ret is the caller's. */
static int b64_decode(const char *in, char **ret)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	char *out = malloc(n + 1);
	unsigned v = 0;
	int bits = 0;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *p;
		if (in[i] == '=')
			break;
		p = strchr(tbl, in[i]);
		if (!p || !*p) {
			free(out);
			return -EINVAL;
		}
		v = (v << 6) | (unsigned)(p - tbl);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((v >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	*ret = out;
	return 0;
}

static void print_patch(struct json_object *review)
{
	struct json_object *resp, *patch, *decoded;
	char *text = NULL;

	if (!json_object_object_get_ex(review, "response", &resp) ||
	    !json_object_object_get_ex(resp, "patch", &patch))
		return;
	if (b64_decode(json_object_get_string(patch), &text) < 0) {
		printf("# patch: not base64\n");
		return;
	}
	decoded = json_tokener_parse(text);
	printf("# patch, decoded:\n%s\n",
	       decoded ? json_object_to_json_string_ext(decoded, PRETTY) : "(not JSON)");
	json_object_put(decoded);
	free(text);
}

int main(int argc, char **argv)
{
	struct admission_lookup lookup = {.fill = fill_all};
	struct admission_outcome out;
	struct json_object *docs = NULL, *parsed;
	char *body = NULL, *op_text = NULL, *response = NULL, err[1024] = "";
	enum admission_op op = ADMISSION_VALIDATE;
	size_t len = 0, op_len = 0, resp_len = 0;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CASE_DIR\n", argv[0]);
		return 2;
	}
	r = read_path(argv[1], "request.json", &body, &len);
	if (r < 0) {
		fprintf(stderr, "%s/request.json: %s\n", argv[1], strerror(-r));
		return 2;
	}
	if (read_path(argv[1], "path", &op_text, &op_len) == 0 &&
	    strncmp(op_text, "mutate", 6) == 0)
		op = ADMISSION_MUTATE;
	free(op_text);
	{
		char cluster[KANARY_MAX_PATH];
		const char *paths[1] = {cluster};
		struct input_err ierr;
		snprintf(cluster, sizeof(cluster), "%s/cluster.yaml", argv[1]);
		if (access(cluster, R_OK) == 0 &&
		    input_load("admission-golden", paths, 1, &docs, &ierr) < 0) {
			fprintf(stderr, "%s\n", ierr.msg);
			free(body);
			return 2;
		}
	}
	lookup.ctx = docs;
	r = admission_handle(body, len, op, &lookup, &response, &resp_len, &out, err, sizeof(err));
	if (r == 0) {
		parsed = json_tokener_parse(response);
		printf("HTTP 200\n%s\n", parsed ? json_object_to_json_string_ext(parsed, PRETTY)
		                                : "(response is not JSON)");
		print_patch(parsed);
		json_object_put(parsed);
	} else {
		printf("HTTP %d\n%s\n", r == -EINVAL ? 400 : 500, err[0] ? err : strerror(-r));
	}
	free(response);
	free(body);
	json_object_put(docs);
	return 0;
}
