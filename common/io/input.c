/* SPDX-License-Identifier: Apache-2.0 */
/* Loading the offline tools' input files and standard input as one list of documents. */
#include "common/io/input.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/io/file_read.h"
#include "common/limits.h"

static bool is_list(const struct json_object *doc)
{
	struct json_object *kind, *items;

	return json_object_is_type(doc, json_type_object) &&
	       json_object_object_get_ex(doc, "kind", &kind) &&
	       json_object_is_type(kind, json_type_string) &&
	       strcmp(json_object_get_string(kind), "List") == 0 &&
	       json_object_object_get_ex(doc, "items", &items) &&
	       json_object_is_type(items, json_type_array);
}

/* Appends docs' values to out, a List's items in its place. Takes nothing from docs. */
static int append_docs(struct json_object *out, struct json_object *docs)
{
	for (size_t i = 0; i < json_object_array_length(docs); i++) {
		struct json_object *d = json_object_array_get_idx(docs, i), *items;
		if (is_list(d)) {
			json_object_object_get_ex(d, "items", &items);
			for (size_t j = 0; j < json_object_array_length(items); j++) {
				struct json_object *it = json_object_array_get_idx(items, j);
				if (json_object_array_add(out, json_object_get(it)) != 0) {
					json_object_put(it);
					return -ENOMEM;
				}
			}
			continue;
		}
		if (json_object_array_add(out, json_object_get(d)) != 0) {
			json_object_put(d);
			return -ENOMEM;
		}
	}
	return 0;
}

struct input_warn_ctx {
	const char *prog;
	const char *file;
};

/* A reader's warning, on standard error: "<prog>: <file>: warning: line 6, ...". */
static void input_warn(void *ctx, const char *msg)
{
	const struct input_warn_ctx *w = ctx;

	fprintf(stderr, "%s: %s: warning: %s\n", w->prog, w->file, msg);
}

static int load_one(const char *prog, const char *path, struct json_object *out,
                    struct input_err *err)
{
	struct json_object *docs = NULL;
	struct doc_err derr = {{0}};
	const char *shown = strcmp(path, "-") == 0 ? "<stdin>" : path;
	char *data = NULL;
	size_t len = 0;
	int fd, r;

	if (strcmp(path, "-") == 0) {
		fd = STDIN_FILENO;
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd == -1) {
			r = -errno;
			snprintf(err->msg, sizeof(err->msg), "%s: %s", shown, strerror(-r));
			return r;
		}
	}
	r = file_read_fd(fd, KANARY_MAX_INPUT, &data, &len);
	if (fd != STDIN_FILENO)
		(void)close(fd);
	if (r == -E2BIG) {
		snprintf(err->msg, sizeof(err->msg), "%s: larger than the limit of %u bytes", shown,
		         KANARY_MAX_INPUT);
		return r;
	}
	if (r < 0) {
		snprintf(err->msg, sizeof(err->msg), "%s: %s", shown, strerror(-r));
		return r;
	}
	struct input_warn_ctx wctx = {.prog = prog, .file = shown};
	struct doc_warner warner = {.fn = input_warn, .ctx = &wctx};
	r = doc_parse_stream_warn(data, len, &warner, &docs, &derr);
	free(data);
	if (r < 0) {
		snprintf(err->msg, sizeof(err->msg), "%s: %s", shown,
		         r == -ENOMEM ? "out of memory" : derr.msg);
		return r;
	}
	r = append_docs(out, docs);
	json_object_put(docs);
	if (r < 0)
		snprintf(err->msg, sizeof(err->msg), "%s: out of memory", shown);
	return r;
}

int input_load(const char *prog, const char *const *paths, size_t n, struct json_object **ret_docs,
               struct input_err *ret_err)
{
	static const char *const stdin_only[] = {"-"};
	struct json_object *out;
	int r;

	if (n == 0) {
		paths = stdin_only;
		n = 1;
	}
	out = json_object_new_array();
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = load_one(prog, paths[i], out, ret_err);
		if (r < 0) {
			json_object_put(out);
			return r;
		}
	}
	*ret_docs = out;
	return 0;
}
