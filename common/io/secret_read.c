/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a file that holds a secret without leaving copies; explicit_bzero wipes them. */
#define _DEFAULT_SOURCE
#include "common/io/secret_read.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/limits.h"

void secret_free(char *s, size_t len)
{
	if (!s)
		return;
	explicit_bzero(s, len);
	free(s);
}

/* depth counts from the value given; one level more for a stream's array of documents. */
static void wipe_json(struct json_object *v, int depth)
{
	if (!v || depth > KANARY_MAX_DEPTH + 1)
		return;
	switch (json_object_get_type(v)) {
	case json_type_string:
		/* json-c hands out its own storage of the string: writable heap memory. */
		explicit_bzero((char *)(uintptr_t)json_object_get_string(v),
		               (size_t)json_object_get_string_len(v));
		break;
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(v); i++)
			wipe_json(json_object_array_get_idx(v, i), depth + 1);
		break;
	case json_type_object: {
		json_object_object_foreach(v, key, val)
		{
			(void)key;
			wipe_json(val, depth + 1);
		}
		break;
	}
	default:
		break;
	}
}

void secret_wipe_json(struct json_object *v)
{
	wipe_json(v, 0);
}

int secret_read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	struct stat st;
	size_t cap, len = 0;
	char *data, *bigger;
	ssize_t n;
	int r;

	if (fstat(fd, &st) == -1)
		return -errno;
	/* The file's size and one for the NUL, so a regular file is read into one block. */
	cap = st.st_size > 0 && (size_t)st.st_size < max ? (size_t)st.st_size + 1 : 4096;
	if (cap > max + 1)
		cap = max + 1;
	data = malloc(cap);
	if (!data)
		return -ENOMEM;
	for (;;) {
		if (len + 1 == cap) {
			/* Full: grow by hand, so the old block is wiped, not just freed. */
			if (cap == max + 1) {
				/* Exactly max bytes is fine; one more is not. */
				char extra;

				n = read(fd, &extra, 1);
				if (n == 0)
					break;
				if (n == -1 && errno == EINTR)
					continue;
				r = n == -1 ? -errno : -E2BIG;
				explicit_bzero(&extra, sizeof(extra));
				goto out_wipe;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			bigger = malloc(cap);
			if (!bigger) {
				r = -ENOMEM;
				goto out_wipe;
			}
			memcpy(bigger, data, len);
			explicit_bzero(data, len);
			free(data);
			data = bigger;
		}
		n = read(fd, data + len, cap - 1 - len);
		if (n == 0)
			break;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = -errno;
			goto out_wipe;
		}
		len += (size_t)n;
	}
	data[len] = '\0';
	*ret = data;
	if (ret_len)
		*ret_len = len;
	return 0;
out_wipe:
	secret_free(data, len);
	return r;
}
