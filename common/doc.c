/* SPDX-License-Identifier: Apache-2.0 */
#include "common/doc.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <yaml.h>

#include "common/limits.h"

static void doc_errf(struct doc_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void doc_errf(struct doc_err *e, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

/* ---- YAML ---- */

struct yreader {
	yaml_parser_t parser;
	yaml_event_t ev;
	bool have_ev;
	struct doc_err *err;
};

static int yreader_next(struct yreader *y)
{
	if (y->have_ev) {
		yaml_event_delete(&y->ev);
		y->have_ev = false;
	}
	if (!yaml_parser_parse(&y->parser, &y->ev)) {
		doc_errf(y->err, "line %zu, column %zu: %s%s%s", y->parser.problem_mark.line + 1,
		         y->parser.problem_mark.column + 1,
		         y->parser.problem ? y->parser.problem : "malformed YAML",
		         y->parser.context ? " " : "", y->parser.context ? y->parser.context : "");
		return -EINVAL;
	}
	y->have_ev = true;
	return 0;
}

static bool str_in(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

/* Integer forms: [-+]?[0-9]+, 0x[0-9a-fA-F]+, 0o[0-7]+. */
static bool parse_yaml_int(const char *s, int64_t *ret, bool *overflow)
{
	const char *p = s;
	int base = 10;
	bool neg = false;
	uint64_t v = 0, lim;

	*overflow = false;
	if (*p == '-' || *p == '+') {
		neg = *p == '-';
		p++;
	}
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o') && !neg && s[0] != '+') {
		base = p[1] == 'x' ? 16 : 8;
		p += 2;
	}
	if (!*p)
		return false;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; *p; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A' + 10);
		else
			return false;
		if (d >= (unsigned)base)
			return false;
		if (v > (lim - d) / (unsigned)base)
			*overflow = true;
		else
			v = v * (unsigned)base + d;
	}
	if (*overflow)
		return true;
	*ret = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* Float forms of the core schema, including .inf and .nan. */
static bool parse_yaml_float(const char *s, double *ret)
{
	static const char *const pinf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
	static const char *const ninf[] = {"-.inf", "-.Inf", "-.INF", NULL};
	static const char *const nan_[] = {".nan", ".NaN", ".NAN", NULL};
	const char *p = s;
	bool digits = false;
	char *end;

	if (str_in(s, pinf)) {
		*ret = INFINITY;
		return true;
	}
	if (str_in(s, ninf)) {
		*ret = -INFINITY;
		return true;
	}
	if (str_in(s, nan_)) {
		*ret = NAN;
		return true;
	}
	if (*p == '-' || *p == '+')
		p++;
	while (*p >= '0' && *p <= '9') {
		p++;
		digits = true;
	}
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			p++;
			digits = true;
		}
	}
	if (!digits)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p)
		return false;
	errno = 0;
	*ret = strtod(s, &end);
	return *end == '\0';
}

static const char *const yaml_nulls[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const yaml_trues[] = {"true", "True", "TRUE", NULL};
static const char *const yaml_falses[] = {"false", "False", "FALSE", NULL};

/* Builds the json-c value of the scalar event now in y->ev. */
static int yaml_scalar(struct yreader *y, struct json_object **ret)
{
	const yaml_event_t *ev = &y->ev;
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	struct json_object *o = NULL;
	bool overflow;
	int64_t i;
	double d;

	if (strlen(s) != len) {
		doc_errf(y->err, "line %zu, column %zu: NUL byte inside a scalar",
		         ev->start_mark.line + 1, ev->start_mark.column + 1);
		return -EINVAL;
	}
	if (tag && strcmp(tag, "!") == 0)
		tag = NULL, plain = false;
	if (tag && strcmp(tag, YAML_STR_TAG) == 0) {
		o = json_object_new_string_len(s, (int)len);
	} else if (tag && strcmp(tag, YAML_NULL_TAG) == 0) {
		*ret = NULL;
		return 0;
	} else if ((tag && strcmp(tag, YAML_BOOL_TAG) == 0) ||
	           (!tag && plain && (str_in(s, yaml_trues) || str_in(s, yaml_falses)))) {
		if (!str_in(s, yaml_trues) && !str_in(s, yaml_falses))
			goto bad_tagged;
		o = json_object_new_boolean(str_in(s, yaml_trues));
	} else if ((tag && strcmp(tag, YAML_INT_TAG) == 0) ||
	           (!tag && plain && parse_yaml_int(s, &i, &overflow))) {
		if (!parse_yaml_int(s, &i, &overflow))
			goto bad_tagged;
		if (overflow) {
			/* Past int64: keep it as a number so range checks still see it. */
			if (!parse_yaml_float(s, &d))
				goto bad_tagged;
			o = json_object_new_double(d);
		} else {
			o = json_object_new_int64(i);
		}
	} else if ((tag && strcmp(tag, YAML_FLOAT_TAG) == 0) ||
	           (!tag && plain && parse_yaml_float(s, &d))) {
		if (!parse_yaml_float(s, &d))
			goto bad_tagged;
		o = json_object_new_double(d);
	} else if (!tag && plain && str_in(s, yaml_nulls)) {
		*ret = NULL;
		return 0;
	} else {
		o = json_object_new_string_len(s, (int)len);
	}
	if (!o)
		return -ENOMEM;
	*ret = o;
	return 0;

bad_tagged:
	doc_errf(y->err, "line %zu, column %zu: %s is not a valid %s", ev->start_mark.line + 1,
	         ev->start_mark.column + 1, len > 40 ? "value" : s, tag ? tag : "scalar");
	return -EINVAL;
}

static int yaml_node(struct yreader *y, int depth, struct json_object **ret);

/* The current event is MAPPING_START; consumes through MAPPING_END. */
static int yaml_mapping(struct yreader *y, int depth, struct json_object **ret)
{
	struct json_object *map, *val;
	char *key;
	size_t line, col;
	int r;

	map = json_object_new_object();
	if (!map)
		return -ENOMEM;
	for (;;) {
		r = yreader_next(y);
		if (r < 0)
			goto out_put_map;
		if (y->ev.type == YAML_MAPPING_END_EVENT)
			break;
		line = y->ev.start_mark.line + 1;
		col = y->ev.start_mark.column + 1;
		if (y->ev.type == YAML_ALIAS_EVENT) {
			doc_errf(y->err, "line %zu, column %zu: aliases are not supported", line,
			         col);
			r = -EINVAL;
			goto out_put_map;
		}
		if (y->ev.type != YAML_SCALAR_EVENT) {
			doc_errf(y->err, "line %zu, column %zu: mapping keys must be scalars", line,
			         col);
			r = -EINVAL;
			goto out_put_map;
		}
		if (y->ev.data.scalar.anchor) {
			doc_errf(y->err, "line %zu, column %zu: anchors are not supported", line,
			         col);
			r = -EINVAL;
			goto out_put_map;
		}
		if (strlen((const char *)y->ev.data.scalar.value) != y->ev.data.scalar.length) {
			doc_errf(y->err, "line %zu, column %zu: NUL byte inside a key", line, col);
			r = -EINVAL;
			goto out_put_map;
		}
		if (json_object_object_get_ex(map, (const char *)y->ev.data.scalar.value, NULL)) {
			doc_errf(y->err, "line %zu, column %zu: duplicate key \"%.64s\"", line, col,
			         (const char *)y->ev.data.scalar.value);
			r = -EINVAL;
			goto out_put_map;
		}
		key = strdup((const char *)y->ev.data.scalar.value);
		if (!key) {
			r = -ENOMEM;
			goto out_put_map;
		}
		r = yreader_next(y);
		if (r == 0)
			r = yaml_node(y, depth + 1, &val);
		if (r < 0) {
			free(key);
			goto out_put_map;
		}
		/* json_object_object_add takes the reference to val. */
		r = json_object_object_add(map, key, val);
		free(key);
		if (r != 0) {
			json_object_put(val);
			r = -ENOMEM;
			goto out_put_map;
		}
	}
	*ret = map;
	return 0;

out_put_map:
	json_object_put(map);
	return r;
}

/* The current event is SEQUENCE_START; consumes through SEQUENCE_END. */
static int yaml_sequence(struct yreader *y, int depth, struct json_object **ret)
{
	struct json_object *arr, *val;
	int r;

	arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	for (;;) {
		r = yreader_next(y);
		if (r < 0)
			goto out_put_arr;
		if (y->ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		r = yaml_node(y, depth + 1, &val);
		if (r < 0)
			goto out_put_arr;
		if (json_object_array_add(arr, val) != 0) {
			json_object_put(val);
			r = -ENOMEM;
			goto out_put_arr;
		}
	}
	*ret = arr;
	return 0;

out_put_arr:
	json_object_put(arr);
	return r;
}

/* Builds the node whose first event is the current one. */
static int yaml_node(struct yreader *y, int depth, struct json_object **ret)
{
	const yaml_event_t *ev = &y->ev;
	const char *anchor = NULL;

	if (depth > KANARY_MAX_DEPTH) {
		doc_errf(y->err, "line %zu, column %zu: nested deeper than %d levels",
		         ev->start_mark.line + 1, ev->start_mark.column + 1, KANARY_MAX_DEPTH);
		return -EINVAL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		anchor = (const char *)ev->data.scalar.anchor;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = (const char *)ev->data.sequence_start.anchor;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = (const char *)ev->data.mapping_start.anchor;
		break;
	case YAML_ALIAS_EVENT:
		doc_errf(y->err, "line %zu, column %zu: aliases are not supported",
		         ev->start_mark.line + 1, ev->start_mark.column + 1);
		return -EINVAL;
	default:
		doc_errf(y->err, "line %zu, column %zu: unexpected YAML event",
		         ev->start_mark.line + 1, ev->start_mark.column + 1);
		return -EINVAL;
	}
	if (anchor) {
		doc_errf(y->err, "line %zu, column %zu: anchors are not supported",
		         ev->start_mark.line + 1, ev->start_mark.column + 1);
		return -EINVAL;
	}
	if (ev->type == YAML_SCALAR_EVENT)
		return yaml_scalar(y, ret);
	if (ev->type == YAML_SEQUENCE_START_EVENT)
		return yaml_sequence(y, depth, ret);
	return yaml_mapping(y, depth, ret);
}

static int doc_parse_yaml(const char *data, size_t len, struct json_object *docs,
                          struct doc_err *err)
{
	struct yreader y = {.err = err};
	struct json_object *val;
	size_t ndocs = 0;
	int r;

	if (!yaml_parser_initialize(&y.parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)data, len);
	for (;;) {
		r = yreader_next(&y);
		if (r < 0)
			goto out_delete;
		if (y.ev.type == YAML_STREAM_END_EVENT)
			break;
		if (y.ev.type != YAML_DOCUMENT_START_EVENT)
			continue; /* STREAM_START */
		if (++ndocs > KANARY_MAX_DOCUMENTS) {
			doc_errf(err, "more than %d documents in one stream", KANARY_MAX_DOCUMENTS);
			r = -EINVAL;
			goto out_delete;
		}
		r = yreader_next(&y);
		if (r == 0)
			r = yaml_node(&y, 1, &val);
		if (r < 0)
			goto out_delete;
		r = yreader_next(&y); /* DOCUMENT_END */
		if (r < 0) {
			json_object_put(val);
			goto out_delete;
		}
		if (val && json_object_array_add(docs, val) != 0) {
			json_object_put(val);
			r = -ENOMEM;
			goto out_delete;
		}
	}
	r = 0;
out_delete:
	if (y.have_ev)
		yaml_event_delete(&y.ev);
	yaml_parser_delete(&y.parser);
	return r;
}

/* ---- JSON ---- */

static void line_col(const char *data, size_t off, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (data[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* One or more JSON texts separated by white space. */
static int doc_parse_json(const char *data, size_t len, struct json_object *docs,
                          struct doc_err *err)
{
	struct json_tokener *tok;
	struct json_object *val;
	enum json_tokener_error jerr;
	size_t off = 0, line, col, ndocs = 0;
	int r = 0;

	if (len > INT32_MAX)
		return -E2BIG;
	tok = json_tokener_new_ex(KANARY_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	for (;;) {
		while (off < len && (data[off] == ' ' || data[off] == '\n' || data[off] == '\r' ||
		                     data[off] == '\t'))
			off++;
		if (off == len)
			break;
		if (++ndocs > KANARY_MAX_DOCUMENTS) {
			doc_errf(err, "more than %d documents in one stream", KANARY_MAX_DOCUMENTS);
			r = -EINVAL;
			break;
		}
		/*
		 * Strict mode refuses whatever follows a complete value, so a first,
		 * lenient pass finds where this value ends and a strict pass reads
		 * exactly that slice.
		 */
		json_tokener_reset(tok);
		json_tokener_set_flags(tok, 0);
		val = json_tokener_parse_ex(tok, data + off, (int)(len - off));
		jerr = json_tokener_get_error(tok);
		if (jerr == json_tokener_success) {
			size_t end = json_tokener_get_parse_end(tok);
			json_object_put(val);
			json_tokener_reset(tok);
			json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
			val = json_tokener_parse_ex(tok, data + off, (int)end);
			jerr = json_tokener_get_error(tok);
		}
		if (jerr == json_tokener_continue) {
			/* Input ended inside a value: no more bytes will come. */
			json_tokener_parse_ex(tok, "", 1);
			jerr = json_tokener_get_error(tok);
			if (jerr == json_tokener_success)
				jerr = json_tokener_error_parse_eof;
		}
		if (jerr != json_tokener_success) {
			line_col(data, off + json_tokener_get_parse_end(tok), &line, &col);
			doc_errf(err, "line %zu, column %zu: %s", line, col,
			         jerr == json_tokener_error_depth ? "nested too deeply"
			                                          : json_tokener_error_desc(jerr));
			json_object_put(val);
			r = -EINVAL;
			break;
		}
		off += json_tokener_get_parse_end(tok);
		if (val && json_object_array_add(docs, val) != 0) {
			json_object_put(val);
			r = -ENOMEM;
			break;
		}
	}
	json_tokener_free(tok);
	return r;
}

int doc_parse_stream(const char *data, size_t len, struct json_object **ret_docs,
                     struct doc_err *ret_err)
{
	struct json_object *docs;
	size_t i = 0;
	int r;

	if (len > KANARY_MAX_INPUT) {
		doc_errf(ret_err, "input is %zu bytes, over the limit of %u", len,
		         KANARY_MAX_INPUT);
		return -E2BIG;
	}
	if (memchr(data, '\0', len)) {
		doc_errf(ret_err, "input contains a NUL byte");
		return -EINVAL;
	}
	docs = json_object_new_array();
	if (!docs)
		return -ENOMEM;
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
		i++;
	if (i < len && (data[i] == '{' || data[i] == '['))
		r = doc_parse_json(data + i, len - i, docs, ret_err);
	else
		r = doc_parse_yaml(data, len, docs, ret_err);
	if (r < 0) {
		json_object_put(docs);
		return r;
	}
	*ret_docs = docs;
	return 0;
}
