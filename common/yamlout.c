/* SPDX-License-Identifier: Apache-2.0 */
/* Writing json-c objects out as YAML documents. */
#include "common/yamlout.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <yaml.h>

#include "common/buf.h"
#include "common/limits.h"

struct yout {
	yaml_emitter_t em;
	struct buf *out;
	int err; /* why the write handler refused, for the caller */
};

/* libyaml's output callback: 1 on success, 0 stops the emitter. */
static int yout_write(void *data, unsigned char *buffer, size_t size)
{
	struct yout *y = data;
	int r;

	r = buf_append(y->out, buffer, size);
	if (r < 0) {
		y->err = r;
		return 0;
	}
	return 1;
}

/* Emits ev, which libyaml frees whether or not it succeeds. */
static int yout_emit(struct yout *y, yaml_event_t *ev)
{
	if (yaml_emitter_emit(&y->em, ev))
		return 0;
	if (y->err)
		return y->err;
	return y->em.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
}

static bool yout_all_of(const char *s, size_t len, const char *set)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !strchr(set, s[i]))
			return false;
	return true;
}

/*
 * Numbers of YAML 1.2 and of YAML 1.1, which the Kubernetes tools read:
 * [-+] then 0x.., 0o.., 0b.., or digits with '_', '.', ':' (1_000, 0777,
 * 1:20, 1.5, and 10.244.1.11, a 1.1 float) and an exponent; also anything
 * that starts like a 1.1 timestamp (2001-12-14).
 */
static bool yout_is_number(const char *s, size_t len)
{
	size_t i = 0, m;
	bool digit = false;

	if (len >= 5 && yout_all_of(s, 4, "0123456789") && s[4] == '-')
		return true;
	if (s[0] == '-' || s[0] == '+')
		i++;
	if (len - i > 2 && s[i] == '0') {
		char b = s[i + 1];

		if (b == 'x' || b == 'X')
			return yout_all_of(s + i + 2, len - i - 2, "0123456789abcdefABCDEF_");
		if (b == 'o' || b == 'O')
			return yout_all_of(s + i + 2, len - i - 2, "01234567_");
		if (b == 'b' || b == 'B')
			return yout_all_of(s + i + 2, len - i - 2, "01_");
	}
	for (m = i; m < len && s[m] && strchr("0123456789_.:", s[m]); m++)
		digit = digit || (s[m] >= '0' && s[m] <= '9');
	if (m == i || (!digit && !yout_all_of(s + i, m - i, ".")))
		return false;
	if (m < len && (s[m] == 'e' || s[m] == 'E')) {
		m++;
		if (m < len && (s[m] == '-' || s[m] == '+'))
			m++;
		if (!yout_all_of(s + m, len - m, "0123456789"))
			return false;
		m = len;
	}
	return m == len;
}

/*
 * Plain scalars that a YAML 1.1 or 1.2 reader takes for null, a boolean or
 * a number; they must be quoted to stay strings. The word lists are matched
 * in any case, a superset of both schemas (yes, on, y are 1.1 booleans).
 */
static bool yout_plain_is_other_type(const char *s, size_t len)
{
	static const char *const words[] = {
	    "null", "~",    "true",  "false", "yes",  "no", "on", "off", "y",
	    "n",    ".inf", "-.inf", "+.inf", ".nan", "<<", "=",  NULL,
	};

	if (len == 0)
		return true;
	for (const char *const *w = words; *w; w++)
		if (strlen(*w) == len && strncasecmp(s, *w, len) == 0)
			return true;
	return yout_is_number(s, len);
}

static int yout_scalar(struct yout *y, const char *s, size_t len, bool plain_ok,
                       yaml_scalar_style_t style)
{
	yaml_event_t ev;

	if (len > INT_MAX)
		return -E2BIG;
	/* Fails on memory and on text that is not UTF-8. */
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)s, (int)len,
	                                  plain_ok, 1, style))
		return -EINVAL;
	return yout_emit(y, &ev);
}

/*
 * A string: multi-line text as a literal block (libyaml falls back to double
 * quotes when a block cannot hold it, e.g. trailing spaces), text that would
 * read back as another type single-quoted, the rest as libyaml sees fit.
 */
static int yout_string(struct yout *y, const char *s, size_t len)
{
	if (memchr(s, '\n', len))
		return yout_scalar(y, s, len, true, YAML_LITERAL_SCALAR_STYLE);
	if (yout_plain_is_other_type(s, len))
		return yout_scalar(y, s, len, false, YAML_ANY_SCALAR_STYLE);
	return yout_scalar(y, s, len, true, YAML_ANY_SCALAR_STYLE);
}

/* The shortest text that reads back as the same double, and as a float, not an int. */
static int yout_double(struct yout *y, double d)
{
	char text[40];
	int n = 0;

	/* JSON holds no infinity or NaN, nor does the reader (or kubectl) take .inf back. */
	if (!isfinite(d))
		return -EINVAL;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(text, sizeof(text), "%.*g", prec, d);
		if (n < 0 || (size_t)n >= sizeof(text))
			return -EINVAL;
		if (strtod(text, NULL) == d)
			break;
	}
	/* "1" would read back as an int, "1e+300" as a string in YAML 1.1: add ".0". */
	if (!strchr(text, '.')) {
		char *e = strpbrk(text, "eE");
		size_t at = e ? (size_t)(e - text) : (size_t)n;

		if ((size_t)n + 2 >= sizeof(text))
			return -EINVAL;
		memmove(text + at + 2, text + at, (size_t)n - at + 1);
		memcpy(text + at, ".0", 2);
		n += 2;
	}
	return yout_scalar(y, text, (size_t)n, true, YAML_PLAIN_SCALAR_STYLE);
}

static int yout_node(struct yout *y, const struct json_object *obj, int depth)
{
	yaml_event_t ev;
	char text[24];
	int n, r;

	if (depth > KANARY_MAX_DEPTH)
		return -EINVAL;
	switch (json_object_get_type(obj)) {
	case json_type_null:
		return yout_scalar(y, "null", 4, true, YAML_PLAIN_SCALAR_STYLE);
	case json_type_boolean:
		if (json_object_get_boolean(obj))
			return yout_scalar(y, "true", 4, true, YAML_PLAIN_SCALAR_STYLE);
		return yout_scalar(y, "false", 5, true, YAML_PLAIN_SCALAR_STYLE);
	case json_type_int:
		/* json-c keeps values past INT64_MAX as uint64 and clamps the int64 view. */
		if (json_object_get_int64(obj) == INT64_MAX)
			n = snprintf(text, sizeof(text), "%" PRIu64, json_object_get_uint64(obj));
		else
			n = snprintf(text, sizeof(text), "%" PRId64, json_object_get_int64(obj));
		if (n < 0 || (size_t)n >= sizeof(text))
			return -EINVAL;
		return yout_scalar(y, text, (size_t)n, true, YAML_PLAIN_SCALAR_STYLE);
	case json_type_double:
		return yout_double(y, json_object_get_double(obj));
	case json_type_string:
		return yout_string(y, json_object_get_string((struct json_object *)(uintptr_t)obj),
		                   (size_t)json_object_get_string_len(obj));
	case json_type_array:
		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		                                          YAML_BLOCK_SEQUENCE_STYLE))
			return -ENOMEM;
		r = yout_emit(y, &ev);
		for (size_t i = 0; r == 0 && i < json_object_array_length(obj); i++)
			r = yout_node(y, json_object_array_get_idx(obj, i), depth + 1);
		if (r < 0)
			return r;
		if (!yaml_sequence_end_event_initialize(&ev))
			return -ENOMEM;
		return yout_emit(y, &ev);
	case json_type_object:
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
		                                         YAML_BLOCK_MAPPING_STYLE))
			return -ENOMEM;
		r = yout_emit(y, &ev);
		if (r < 0)
			return r;
		/* Insertion order: json-c keeps it, so the caller decides the key order. */
		json_object_object_foreach(obj, key, val)
		{
			r = yout_string(y, key, strlen(key));
			if (r == 0)
				r = yout_node(y, val, depth + 1);
			if (r < 0)
				return r;
		}
		if (!yaml_mapping_end_event_initialize(&ev))
			return -ENOMEM;
		return yout_emit(y, &ev);
	}
	return -EINVAL;
}

int yamlout_document(const struct json_object *obj, struct buf *out)
{
	struct yout y = {.out = out};
	yaml_event_t ev;
	size_t start = out->len;
	int r;

	if (!yaml_emitter_initialize(&y.em))
		return -ENOMEM;
	yaml_emitter_set_output(&y.em, yout_write, &y);
	yaml_emitter_set_encoding(&y.em, YAML_UTF8_ENCODING);
	yaml_emitter_set_unicode(&y.em, 1);
	yaml_emitter_set_indent(&y.em, 2);
	/* Never fold long lines: haproxy.cfg lines stay whole. */
	yaml_emitter_set_width(&y.em, -1);
	yaml_emitter_set_break(&y.em, YAML_LN_BREAK);

	r = -ENOMEM;
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING))
		goto out_delete_emitter;
	r = yout_emit(&y, &ev);
	if (r < 0)
		goto out_delete_emitter;
	r = -ENOMEM;
	if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0))
		goto out_delete_emitter;
	r = yout_emit(&y, &ev);
	if (r < 0)
		goto out_delete_emitter;
	r = yout_node(&y, obj, 0);
	if (r < 0)
		goto out_delete_emitter;
	r = -ENOMEM;
	if (!yaml_document_end_event_initialize(&ev, 1))
		goto out_delete_emitter;
	r = yout_emit(&y, &ev);
	if (r < 0)
		goto out_delete_emitter;
	r = -ENOMEM;
	if (!yaml_stream_end_event_initialize(&ev))
		goto out_delete_emitter;
	r = yout_emit(&y, &ev);

out_delete_emitter:
	yaml_emitter_delete(&y.em);
	/* A document is appended whole or not at all. */
	if (r < 0 && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	return r;
}
