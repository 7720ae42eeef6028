/* SPDX-License-Identifier: Apache-2.0 */
/* What a field manager last applied to an object, as a digest: server-side apply's own record. */
#include "common/applied.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/json_field.h"
#include "common/limits.h"
#include "common/render.h"

struct json_object *applied_fields(const struct json_object *obj, const char *manager)
{
	struct json_object *mfs =
	    json_field_path(obj, JSON_FIELD_PATH("metadata", "managedFields"));

	if (!manager || !json_object_is_type(mfs, json_type_array))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(mfs); i++) {
		const struct json_object *mf = json_object_array_get_idx(mfs, i);
		const char *m = json_field_str(mf, "manager"),
		           *op = json_field_str(mf, "operation");
		const char *sub = json_field_str(mf, "subresource"),
		           *type = json_field_str(mf, "fieldsType");
		struct json_object *fields = json_field_get(mf, "fieldsV1");

		if (m && strcmp(m, manager) == 0 && op && strcmp(op, "Apply") == 0 &&
		    (!sub || !*sub) && (!type || strcmp(type, "FieldsV1") == 0) &&
		    json_object_is_type(fields, json_type_object))
			return fields;
	}
	return NULL;
}

/* True when the set node has a member other than ".": it names parts, it is no leaf. */
static bool has_parts(const struct json_object *fields)
{
	json_object_object_foreach((struct json_object *)fields, k, v)
	{
		(void)v;
		if (strcmp(k, ".") != 0)
			return true;
	}
	return false;
}

/* Adds v to the array arr; false out of memory (v is dropped). */
static bool array_add(struct json_object *arr, struct json_object *v)
{
	if (json_object_array_add(arr, v) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

/* True when item is an object whose members named in keys have the same values. */
static bool key_match(const struct json_object *item, struct json_object *keys)
{
	if (!json_object_is_type(item, json_type_object) ||
	    !json_object_is_type(keys, json_type_object))
		return false;
	json_object_object_foreach(keys, k, v)
	{
		struct json_object *iv;

		if (!json_object_object_get_ex(item, k, &iv) || !json_object_equal(iv, v))
			return false;
	}
	return true;
}

/* A set node's key parsed ("k:{...}" or "v:..." without its prefix). */
static struct json_object *parse_key(const char *text)
{
	struct json_tokener *tok = json_tokener_new_ex(KANARY_MAX_DEPTH);
	struct json_object *v;

	if (!tok)
		return NULL;
	v = json_tokener_parse_ex(tok, text, (int)strlen(text));
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(v);
		v = NULL;
	}
	json_tokener_free(tok);
	return v;
}

/* The items of list obj named by the set node fields, in the list's order, into out. */
static int project_list(const struct json_object *obj, const struct json_object *fields,
                        struct json_object *out)
{
	size_t n = json_object_array_length(obj);
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct json_object *item = json_object_array_get_idx(obj, i);

		json_object_object_foreach((struct json_object *)fields, k, sub)
		{
			struct json_object *key = NULL, *part = NULL;
			bool match = false;

			if (strncmp(k, "k:", 2) == 0 || strncmp(k, "v:", 2) == 0) {
				key = parse_key(k + 2);
				if (!key) {
					r = -EBADMSG;
					break;
				}
				match = k[0] == 'k'
				            ? key_match(item, key)
				            : json_object_equal((struct json_object *)item, key);
				json_object_put(key);
			} else if (strncmp(k, "i:", 2) == 0) {
				char *end;
				long long at = strtoll(k + 2, &end, 10);

				match = end != k + 2 && !*end && at >= 0 && (size_t)at == i;
			}
			if (!match)
				continue;
			/* A set item ("v:") is its value; an item named by key or index has parts. */
			if (k[0] == 'v')
				part = json_object_get((struct json_object *)item);
			else
				r = applied_project(item, sub, &part);
			if (r == 0 && !array_add(out, part))
				r = -ENOMEM;
			break;
		}
	}
	return r;
}

int applied_project(const struct json_object *obj, const struct json_object *fields,
                    struct json_object **ret)
{
	struct json_object *out;
	int r = 0;

	if (!json_object_is_type(fields, json_type_object))
		return -EBADMSG;
	if (!has_parts(fields) || (!json_object_is_type(obj, json_type_object) &&
	                           !json_object_is_type(obj, json_type_array))) {
		*ret = json_object_get((struct json_object *)obj);
		return 0;
	}
	if (json_object_is_type(obj, json_type_array)) {
		out = json_object_new_array();
		if (!out)
			return -ENOMEM;
		r = project_list(obj, fields, out);
	} else {
		out = json_object_new_object();
		if (!out)
			return -ENOMEM;
		json_object_object_foreach((struct json_object *)fields, k, sub)
		{
			struct json_object *v, *part = NULL;

			if (strncmp(k, "f:", 2) != 0 || !json_object_object_get_ex(obj, k + 2, &v))
				continue;
			r = applied_project(v, sub, &part);
			if (r < 0)
				break;
			if (json_object_object_add(out, k + 2, part) != 0) {
				json_object_put(part);
				r = -ENOMEM;
				break;
			}
		}
	}
	if (r < 0) {
		json_object_put(out);
		return r;
	}
	*ret = out;
	return 0;
}

static int put_string(struct buf *out, const char *s)
{
	const char *run = s;
	int r;

	r = buf_puts(out, "\"");
	for (const char *p = s; r == 0 && *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		r = buf_append(out, run, (size_t)(p - run));
		if (r == 0)
			r = c == '"' || c == '\\' ? buf_printf(out, "\\%c", c)
			                          : buf_printf(out, "\\u%04x", c);
		run = p + 1;
	}
	if (r == 0)
		r = buf_puts(out, run);
	return r == 0 ? buf_puts(out, "\"") : r;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int put_object(const struct json_object *v, struct buf *out)
{
	size_t n = (size_t)json_object_object_length(v), i = 0;
	const char **keys;
	int r;

	if (n == 0)
		return buf_puts(out, "{}");
	keys = calloc(n, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	json_object_object_foreach((struct json_object *)v, k, child)
	{
		(void)child;
		keys[i++] = k;
	}
	qsort(keys, n, sizeof(*keys), cmp_key);
	r = buf_puts(out, "{");
	for (i = 0; r == 0 && i < n; i++) {
		if (i)
			r = buf_puts(out, ",");
		if (r == 0)
			r = put_string(out, keys[i]);
		if (r == 0)
			r = buf_puts(out, ":");
		if (r == 0)
			r = applied_canonical(json_field_get(v, keys[i]), out);
	}
	free(keys);
	return r == 0 ? buf_puts(out, "}") : r;
}

int applied_canonical(const struct json_object *v, struct buf *out)
{
	int r;

	switch (json_object_get_type(v)) {
	case json_type_object:
		return put_object(v, out);
	case json_type_array:
		r = buf_puts(out, "[");
		for (size_t i = 0; r == 0 && i < json_object_array_length(v); i++) {
			if (i)
				r = buf_puts(out, ",");
			if (r == 0)
				r = applied_canonical(json_object_array_get_idx(v, i), out);
		}
		return r == 0 ? buf_puts(out, "]") : r;
	case json_type_string:
		return put_string(out, json_object_get_string((struct json_object *)v));
	case json_type_int:
		return buf_printf(out, "%" PRId64, json_object_get_int64(v));
	case json_type_double:
		return buf_printf(out, "%.17g", json_object_get_double(v));
	case json_type_boolean:
		return buf_puts(out, json_object_get_boolean(v) ? "true" : "false");
	case json_type_null:
		break;
	}
	return buf_puts(out, "null");
}

static int digest(const struct json_object *v, char ret_hex[65])
{
	struct buf b;
	int r;

	buf_init(&b, KANARY_MAX_WATCH_LINE);
	r = applied_canonical(v, &b);
	if (r == 0)
		r = render_hash(b.len ? b.data : "", b.len, ret_hex);
	buf_finish(&b);
	return r;
}

int applied_digest_live(const struct json_object *live, const char *manager, char ret_hex[65])
{
	const struct json_object *fields = applied_fields(live, manager);
	struct json_object *proj = NULL;
	int r;

	if (!fields)
		return -ENOENT;
	r = applied_project(live, fields, &proj);
	if (r == 0)
		r = digest(proj, ret_hex);
	json_object_put(proj);
	return r;
}

int applied_digest_want(const struct json_object *want, char ret_hex[65])
{
	struct json_object *copy = json_object_new_object(), *md = NULL;
	int r = -ENOMEM;

	if (!copy)
		return -ENOMEM;
	/* A shallow copy: members are shared, only the top and metadata are new. */
	json_object_object_foreach((struct json_object *)want, k, v)
	{
		if (strcmp(k, "apiVersion") == 0 || strcmp(k, "kind") == 0)
			continue;
		if (strcmp(k, "metadata") == 0 && json_object_is_type(v, json_type_object)) {
			md = json_object_new_object();
			if (!md)
				goto out;
			json_object_object_foreach(v, mk, mv)
			{
				if (strcmp(mk, "name") == 0 || strcmp(mk, "namespace") == 0)
					continue;
				if (json_object_object_add(md, mk, json_object_get(mv)) != 0) {
					json_object_put(mv);
					goto out;
				}
			}
			if (json_object_object_length(md) == 0)
				continue;
			if (json_object_object_add(copy, k, md) != 0)
				goto out;
			md = NULL;
			continue;
		}
		if (json_object_object_add(copy, k, json_object_get(v)) != 0) {
			json_object_put(v);
			goto out;
		}
	}
	r = digest(copy, ret_hex);
out:
	json_object_put(md);
	json_object_put(copy);
	return r;
}
