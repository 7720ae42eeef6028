/* SPDX-License-Identifier: Apache-2.0 */
/* Reading YAML and JSON streams into json-c documents, as kubectl reads a manifest. */
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
#include "common/utf8.h"

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

/* An anchored node of the current document, kept to expand its aliases. */
struct yanchor {
	char *name;
	struct json_object *val; /* owned reference; NULL for a null node */
	size_t nodes;            /* nodes in val, the cost of one alias to it */
};

struct yreader {
	yaml_parser_t parser;
	yaml_event_t ev;
	bool have_ev;
	struct doc_err *err;
	const struct doc_warner *warn;
	struct yanchor *anchors;
	size_t n_anchors, cap_anchors;
	size_t nodes;       /* nodes built so far in this stream, aliases expanded */
	size_t alias_nodes; /* of which by aliases */
};

static void doc_warnf(struct yreader *y, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void doc_warnf(struct yreader *y, const char *fmt, ...)
{
	char msg[KANARY_MAX_DOC_MESSAGE];
	va_list ap;

	if (!y->warn || !y->warn->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	y->warn->fn(y->warn->ctx, msg);
}

static void yreader_drop_anchors(struct yreader *y)
{
	for (size_t i = 0; i < y->n_anchors; i++) {
		free(y->anchors[i].name);
		json_object_put(y->anchors[i].val);
	}
	y->n_anchors = 0;
}

/*
 * Remembers val (a new reference is taken) under name; a later anchor of the
 * same name hides an earlier one, as YAML says.
 */
static int yreader_add_anchor(struct yreader *y, const char *name, struct json_object *val,
                              size_t nodes)
{
	struct yanchor *a;

	if (y->n_anchors == y->cap_anchors) {
		size_t cap = y->cap_anchors ? y->cap_anchors * 2 : 8;
		if (cap > KANARY_MAX_ANCHORS)
			cap = KANARY_MAX_ANCHORS;
		if (y->n_anchors == cap) {
			doc_errf(y->err, "more than %d anchors in one document",
			         KANARY_MAX_ANCHORS);
			return -EINVAL;
		}
		a = realloc(y->anchors, cap * sizeof(*a));
		if (!a)
			return -ENOMEM;
		y->anchors = a;
		y->cap_anchors = cap;
	}
	a = &y->anchors[y->n_anchors];
	a->name = strdup(name);
	if (!a->name)
		return -ENOMEM;
	a->val = json_object_get(val);
	a->nodes = nodes;
	y->n_anchors++;
	return 0;
}

/*
 * The value of the alias event now in y->ev: a deep copy of the anchored node,
 * counted against KANARY_MAX_ALIAS_NODES (go-yaml bounds alias expansion the
 * same way, so an alias bomb is refused by size, not by feature).
 * Ownership: *ret is a new reference (or NULL for a null node).
 */
static int yreader_alias(struct yreader *y, struct json_object **ret)
{
	const char *name = (const char *)y->ev.data.alias.anchor;
	size_t line = y->ev.start_mark.line + 1, col = y->ev.start_mark.column + 1;
	struct json_object *copy = NULL;

	for (size_t i = y->n_anchors; i-- > 0;) {
		const struct yanchor *a = &y->anchors[i];
		if (strcmp(a->name, name) != 0)
			continue;
		if (a->nodes > KANARY_MAX_ALIAS_NODES - y->alias_nodes) {
			doc_errf(y->err,
			         "line %zu, column %zu: aliases expand to more than %u nodes", line,
			         col, KANARY_MAX_ALIAS_NODES);
			return -EINVAL;
		}
		y->alias_nodes += a->nodes;
		y->nodes += a->nodes;
		if (a->val && json_object_deep_copy(a->val, &copy, NULL) != 0)
			return -ENOMEM;
		*ret = copy;
		return 0;
	}
	doc_errf(y->err, "line %zu, column %zu: unknown anchor \"%.64s\"", line, col, name);
	return -EINVAL;
}

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

/*
 * Plain scalars are read as kubectl reads them (sigs.k8s.io/yaml over go-yaml
 * v2, YAML 1.1 flavoured), measured with kubectl 1.35: see README.md, "Offline
 * tools". A scalar that starts with a digit, a sign or a dot is a number when,
 * with every '_' taken out, it is an integer in Go's base-prefix syntax (0x, 0o,
 * 0b, a leading 0 for octal) or a decimal float; anything else is a string.
 */
enum yscalar {
	YSCALAR_STRING = 0,
	YSCALAR_NULL,
	YSCALAR_BOOL,
	YSCALAR_INT,
	YSCALAR_FLOAT,
	YSCALAR_NOT_FINITE, /* .inf, .nan: kubectl cannot put them in JSON */
};

static const char *const yaml_nulls[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const yaml_trues[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                         "True", "TRUE", "on",  "On",  "ON",  NULL};
static const char *const yaml_falses[] = {"n",     "N",     "no",  "No",  "NO",  "false",
                                          "False", "FALSE", "off", "Off", "OFF", NULL};
static const char *const yaml_not_finite[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf",
                                              "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
                                              ".NaN",  ".NAN",  NULL};

/* Go's strconv.ParseInt(s, 0, 64) with its range error; s has no '_'. */
static bool parse_go_int(const char *s, int64_t *ret, bool *ret_overflow)
{
	const char *p = s;
	unsigned base = 10;
	bool neg = false, overflow = false;
	uint64_t v = 0, lim;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (!*p)
		return false;
	if (p[0] == '0') {
		char c = (char)(p[1] | 0x20);
		if (p[1] && p[2] && (c == 'x' || c == 'o' || c == 'b')) {
			base = c == 'x' ? 16 : c == 'o' ? 8 : 2;
			p += 2;
		} else {
			base = 8;
			p++;
		}
	}
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; *p; p++) {
		unsigned d;
		char c = (char)(*p | 0x20);
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		if (d >= base)
			return false;
		if (overflow || v > (lim - d) / base)
			overflow = true;
		else
			v = v * base + d;
	}
	*ret_overflow = overflow;
	if (!overflow)
		*ret = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* go-yaml's float pattern: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_yaml_float(const char *s)
{
	const char *p = s;
	bool digits = false;

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
	return *p == '\0';
}

/*
 * What kubectl makes of the plain scalar s: its kind, and the number in
 * *ret_i or *ret_d. A number past int64 is a float; a float out of range
 * (1e400) is a string, as in go-yaml.
 */
static enum yscalar resolve_plain(const char *s, int64_t *ret_i, double *ret_d)
{
	char num[KANARY_MAX_NUMBER + 1];
	size_t n = 0;
	bool overflow;
	char *end;

	if (str_in(s, yaml_nulls))
		return YSCALAR_NULL;
	if (str_in(s, yaml_trues) || str_in(s, yaml_falses))
		return YSCALAR_BOOL;
	if (str_in(s, yaml_not_finite))
		return YSCALAR_NOT_FINITE;
	if (!strchr("+-.0123456789", s[0]))
		return YSCALAR_STRING;
	for (const char *p = s; *p; p++) {
		if (*p == '_')
			continue;
		if (n == KANARY_MAX_NUMBER)
			return YSCALAR_STRING;
		num[n++] = *p;
	}
	num[n] = '\0';
	if (parse_go_int(num, ret_i, &overflow)) {
		if (!overflow)
			return YSCALAR_INT;
		errno = 0;
		*ret_d = strtod(num[0] == '+' ? num + 1 : num, &end);
		/* Only decimal digits get here past int64 in practice; others stay strings. */
		if (*end == '\0' && errno == 0)
			return YSCALAR_FLOAT;
		return YSCALAR_STRING;
	}
	if (!is_yaml_float(num))
		return YSCALAR_STRING;
	errno = 0;
	*ret_d = strtod(num, &end);
	if (*end != '\0' || errno == ERANGE || !isfinite(*ret_d))
		return YSCALAR_STRING;
	return YSCALAR_FLOAT;
}

/*
 * A number as it reaches the API server: kubectl writes a float64 that is a
 * whole number below 1e21 without a fraction, so the server reads an integer.
 * Ownership: returns a new reference, or NULL when out of memory.
 */
static struct json_object *number_json(double d)
{
	if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double)(int64_t)d)
		return json_object_new_int64((int64_t)d);
	return json_object_new_double(d);
}

/*
 * Builds the json-c value of the scalar event now in y->ev. A key keeps a
 * whole float a float: kubectl prints a float key as Go formats it (1e+06).
 */
static int yaml_scalar(struct yreader *y, bool as_key, struct json_object **ret)
{
	const yaml_event_t *ev = &y->ev;
	const char *s = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	struct json_object *o = NULL;
	enum yscalar kind = YSCALAR_STRING;
	int64_t i = 0;
	double d = 0;

	if (strlen(s) != len) {
		doc_errf(y->err, "line %zu, column %zu: NUL byte inside a scalar",
		         ev->start_mark.line + 1, ev->start_mark.column + 1);
		return -EINVAL;
	}
	y->nodes++;
	if (tag && (strcmp(tag, YAML_NULL_TAG) == 0 || strcmp(tag, YAML_BOOL_TAG) == 0 ||
	            strcmp(tag, YAML_INT_TAG) == 0 || strcmp(tag, YAML_FLOAT_TAG) == 0)) {
		/* A tag names what the text must resolve to, quoted or not. */
		kind = resolve_plain(s, &i, &d);
		if (strcmp(tag, YAML_FLOAT_TAG) == 0 && kind == YSCALAR_INT) {
			d = (double)i;
			kind = YSCALAR_FLOAT;
		}
		if ((strcmp(tag, YAML_NULL_TAG) == 0 && kind != YSCALAR_NULL) ||
		    (strcmp(tag, YAML_BOOL_TAG) == 0 && kind != YSCALAR_BOOL) ||
		    (strcmp(tag, YAML_INT_TAG) == 0 && kind != YSCALAR_INT) ||
		    (strcmp(tag, YAML_FLOAT_TAG) == 0 && kind != YSCALAR_FLOAT &&
		     kind != YSCALAR_NOT_FINITE))
			goto bad_tagged;
	} else if (!tag && plain) {
		kind = resolve_plain(s, &i, &d);
	}
	/* Any other tag (!!str, !, !custom, !!timestamp) or a quoted scalar: a string. */
	switch (kind) {
	case YSCALAR_NULL:
		*ret = NULL;
		return 0;
	case YSCALAR_BOOL:
		o = json_object_new_boolean(str_in(s, yaml_trues));
		break;
	case YSCALAR_INT:
		o = json_object_new_int64(i);
		break;
	case YSCALAR_FLOAT:
		o = as_key ? json_object_new_double(d) : number_json(d);
		break;
	case YSCALAR_NOT_FINITE:
		doc_errf(
		    y->err,
		    "line %zu, column %zu: %s is not a number JSON can hold (kubectl refuses it "
		    "too)",
		    ev->start_mark.line + 1, ev->start_mark.column + 1, s);
		return -EINVAL;
	case YSCALAR_STRING:
		o = json_object_new_string_len(s, (int)len);
		break;
	}
	if (!o)
		return -ENOMEM;
	*ret = o;
	return 0;

bad_tagged:
	doc_errf(y->err, "line %zu, column %zu: %s is not a valid %s", ev->start_mark.line + 1,
	         ev->start_mark.column + 1, len > 40 ? "value" : s, tag);
	return -EINVAL;
}

static int yaml_node(struct yreader *y, int depth, struct json_object **ret);

/*
 * The key a scalar or alias event makes, as kubectl writes it into JSON: the
 * resolved value printed (yes -> "true", 0x10 -> "16", 1e3 -> "1000").
 * *ret_merge says the key is the merge key, a plain "<<". A null key, or a
 * mapping or sequence as a key, is refused (kubectl refuses them too).
 * Ownership: *ret_key is the caller's (free()).
 */
static int yaml_key(struct yreader *y, char **ret_key, bool *ret_merge)
{
	size_t line = y->ev.start_mark.line + 1, col = y->ev.start_mark.column + 1;
	struct json_object *k = NULL;
	const char *anchor = NULL;
	char buf[64];
	const char *text = NULL;
	size_t before = y->nodes;
	int r;

	*ret_merge = false;
	if (y->ev.type == YAML_SCALAR_EVENT) {
		const char *tag = (const char *)y->ev.data.scalar.tag;
		anchor = (const char *)y->ev.data.scalar.anchor;
		if (y->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    strcmp((const char *)y->ev.data.scalar.value, "<<") == 0 &&
		    (!tag || strcmp(tag, "tag:yaml.org,2002:merge") == 0)) {
			*ret_merge = true;
			*ret_key = NULL;
			return 0;
		}
		r = yaml_scalar(y, true, &k);
	} else if (y->ev.type == YAML_ALIAS_EVENT) {
		r = yreader_alias(y, &k);
	} else {
		doc_errf(y->err, "line %zu, column %zu: mapping keys must be scalars", line, col);
		return -EINVAL;
	}
	if (r < 0)
		return r;
	if (anchor) {
		r = yreader_add_anchor(y, anchor, k, y->nodes - before);
		if (r < 0)
			goto out_put;
	}
	switch (json_object_get_type(k)) {
	case json_type_string:
		text = json_object_get_string(k);
		break;
	case json_type_boolean:
		text = json_object_get_boolean(k) ? "true" : "false";
		break;
	case json_type_int:
		snprintf(buf, sizeof(buf), "%" PRId64, json_object_get_int64(k));
		text = buf;
		break;
	case json_type_double: {
		/* Go's strconv.FormatFloat(f, 'g', -1, 64): shortest digits, %e past 1e21. */
		double d = json_object_get_double(k);
		int prec = 1;
		for (; prec < 17; prec++) {
			snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
			if (strtod(buf, NULL) == d)
				break;
		}
		/* The decimal exponent, from the %e text just printed. */
		int exp10 = (int)strtol(strchr(buf, 'e') + 1, NULL, 10);
		if (exp10 < -4 || exp10 >= 6)
			snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
		else
			snprintf(buf, sizeof(buf), "%.*f",
			         prec - 1 - exp10 > 0 ? prec - 1 - exp10 : 0, d);
		text = buf;
		break;
	}
	default:
		doc_errf(y->err, "line %zu, column %zu: a mapping key must not be %s", line, col,
		         k ? "a mapping or a sequence" : "null");
		r = -EINVAL;
		goto out_put;
	}
	*ret_key = strdup(text);
	r = *ret_key ? 0 : -ENOMEM;
out_put:
	json_object_put(k);
	return r;
}

/* Copies every entry of src into map, over what map holds (go-yaml merges in place). */
static int merge_into(struct json_object *map, struct json_object *src)
{
	json_object_object_foreach(src, k, v)
	{
		/* json_object_object_add takes the new reference to v. */
		if (json_object_object_add(map, k, json_object_get(v)) != 0) {
			json_object_put(v);
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * The value of a merge key "<<" is in val: a mapping, or a sequence of
 * mappings of which the first wins. Takes nothing from val.
 */
static int yaml_merge(struct yreader *y, struct json_object *map, struct json_object *val,
                      size_t line, size_t col)
{
	if (json_object_is_type(val, json_type_object))
		return merge_into(map, val);
	if (json_object_is_type(val, json_type_array)) {
		for (size_t i = json_object_array_length(val); i-- > 0;)
			if (!json_object_is_type(json_object_array_get_idx(val, i),
			                         json_type_object))
				goto bad;
		for (size_t i = json_object_array_length(val); i-- > 0;) {
			int r = merge_into(map, json_object_array_get_idx(val, i));
			if (r < 0)
				return r;
		}
		return 0;
	}
bad:
	doc_errf(y->err,
	         "line %zu, column %zu: a merge key (<<) needs a mapping or a sequence of "
	         "mappings",
	         line, col);
	return -EINVAL;
}

/*
 * The current event is MAPPING_START; consumes through MAPPING_END. A key
 * written twice keeps its last value, as kubectl does, with a warning; a merge
 * key copies its mapping's entries in, over the entries before it.
 */
static int yaml_mapping(struct yreader *y, int depth, struct json_object **ret)
{
	struct json_object *map, *seen, *val;
	char *key;
	size_t line, col;
	bool merge;
	int r;

	y->nodes++;
	map = json_object_new_object();
	if (!map)
		return -ENOMEM;
	/* The keys written in this mapping (not merged in), for the repeated-key warning. */
	seen = json_object_new_object();
	if (!seen) {
		r = -ENOMEM;
		goto out_put_map;
	}
	for (;;) {
		r = yreader_next(y);
		if (r < 0)
			goto out_put_seen;
		if (y->ev.type == YAML_MAPPING_END_EVENT)
			break;
		line = y->ev.start_mark.line + 1;
		col = y->ev.start_mark.column + 1;
		r = yaml_key(y, &key, &merge);
		if (r < 0)
			goto out_put_seen;
		r = yreader_next(y);
		if (r == 0)
			r = yaml_node(y, depth + 1, &val);
		if (r < 0) {
			free(key);
			goto out_put_seen;
		}
		if (merge) {
			r = yaml_merge(y, map, val, line, col);
			json_object_put(val);
			if (r < 0)
				goto out_put_seen;
			continue;
		}
		if (json_object_object_get_ex(seen, key, NULL))
			doc_warnf(
			    y,
			    "line %zu, column %zu: key \"%.64s\" repeated in one mapping; the "
			    "last one is used",
			    line, col, key);
		else if (json_object_object_add(seen, key, NULL) != 0)
			r = -ENOMEM;
		/* json_object_object_add takes the reference to val. */
		if (r == 0 && json_object_object_add(map, key, val) != 0)
			r = -ENOMEM;
		free(key);
		if (r != 0) {
			json_object_put(val);
			goto out_put_seen;
		}
	}
	json_object_put(seen);
	*ret = map;
	return 0;

out_put_seen:
	json_object_put(seen);
out_put_map:
	json_object_put(map);
	return r;
}

/* The current event is SEQUENCE_START; consumes through SEQUENCE_END. */
static int yaml_sequence(struct yreader *y, int depth, struct json_object **ret)
{
	struct json_object *arr, *val;
	int r;

	y->nodes++;
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
	struct json_object *val = NULL;
	const char *anchor_ev = NULL;
	char *anchor = NULL;
	size_t before = y->nodes;
	int r;

	if (depth > KANARY_MAX_DEPTH) {
		doc_errf(y->err, "line %zu, column %zu: nested deeper than %d levels",
		         ev->start_mark.line + 1, ev->start_mark.column + 1, KANARY_MAX_DEPTH);
		return -EINVAL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		anchor_ev = (const char *)ev->data.scalar.anchor;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor_ev = (const char *)ev->data.sequence_start.anchor;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor_ev = (const char *)ev->data.mapping_start.anchor;
		break;
	case YAML_ALIAS_EVENT:
		return yreader_alias(y, ret);
	default:
		doc_errf(y->err, "line %zu, column %zu: unexpected YAML event",
		         ev->start_mark.line + 1, ev->start_mark.column + 1);
		return -EINVAL;
	}
	/* The event is replaced while the node is read: keep the anchor's name. */
	if (anchor_ev) {
		anchor = strdup(anchor_ev);
		if (!anchor)
			return -ENOMEM;
	}
	if (ev->type == YAML_SCALAR_EVENT)
		r = yaml_scalar(y, false, &val);
	else if (ev->type == YAML_SEQUENCE_START_EVENT)
		r = yaml_sequence(y, depth, &val);
	else
		r = yaml_mapping(y, depth, &val);
	if (r == 0 && anchor) {
		r = yreader_add_anchor(y, anchor, val, y->nodes - before);
		if (r < 0)
			json_object_put(val);
	}
	free(anchor);
	if (r == 0)
		*ret = val;
	return r;
}

static int doc_parse_yaml(const char *data, size_t len, const struct doc_warner *warn,
                          struct json_object *docs, struct doc_err *err)
{
	struct yreader y = {.err = err, .warn = warn};
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
		yreader_drop_anchors(&y);
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
	yreader_drop_anchors(&y);
	free(y.anchors);
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
			json_tokener_set_flags(tok,
			                       JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
			val = json_tokener_parse_ex(tok, data + off, (int)end);
			jerr = json_tokener_get_error(tok);
		}
		if (jerr == json_tokener_continue) {
			/*
			 * Input ended inside a value: no more bytes will come. The NUL
			 * ends a number at the end of the input, which then comes back
			 * (and is put: the stream is refused all the same).
			 */
			json_object_put(json_tokener_parse_ex(tok, "", 1));
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

/*
 * kubectl sends what it decoded re-encoded by Go, which writes a whole float64
 * below 1e21 as an integer: 80.0 arrives as 80. Does the same to every number
 * of v, in place.
 */
/*
 * Whether child is a number to pass through number_json, and its value:
 * every float, and an integer past INT64_MAX, which json-c keeps as an
 * unsigned one but Go reads as a float64 (as the YAML reader does too).
 */
static bool json_renumber(struct json_object *child, double *ret)
{
	if (json_object_is_type(child, json_type_double)) {
		*ret = json_object_get_double(child);
		return true;
	}
	if (json_object_is_type(child, json_type_int) &&
	    json_object_get_uint64(child) > (uint64_t)INT64_MAX) {
		*ret = (double)json_object_get_uint64(child);
		return true;
	}
	return false;
}

static int json_whole_numbers(struct json_object *v, int depth)
{
	double d;

	if (depth > KANARY_MAX_DEPTH)
		return 0;
	if (json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, k, child)
		{
			if (json_renumber(child, &d)) {
				struct json_object *n = number_json(d);
				/* Replacing the value of an existing key keeps the iteration valid. */
				if (!n || json_object_object_add(v, k, n) != 0) {
					json_object_put(n);
					return -ENOMEM;
				}
			} else if (json_whole_numbers(child, depth + 1) < 0) {
				return -ENOMEM;
			}
		}
	} else if (json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct json_object *child = json_object_array_get_idx(v, i);
			if (json_renumber(child, &d)) {
				struct json_object *n = number_json(d);
				if (!n || json_object_array_put_idx(v, i, n) != 0) {
					json_object_put(n);
					return -ENOMEM;
				}
			} else if (json_whole_numbers(child, depth + 1) < 0) {
				return -ENOMEM;
			}
		}
	}
	return 0;
}

int doc_parse_stream(const char *data, size_t len, struct json_object **ret_docs,
                     struct doc_err *ret_err)
{
	return doc_parse_stream_warn(data, len, NULL, ret_docs, ret_err);
}

int doc_parse_stream_warn(const char *data, size_t len, const struct doc_warner *warn,
                          struct json_object **ret_docs, struct doc_err *ret_err)
{
	struct json_object *docs;
	size_t i = 0;
	int r = -EINVAL;

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
	/*
	 * JSON when the text is JSON; otherwise (YAML flow style, a comment, 0x10...)
	 * YAML, of which JSON is a subset, as kubectl falls back. Text that is not
	 * UTF-8 goes to YAML too, which refuses it and says where.
	 */
	if (i < len && (data[i] == '{' || data[i] == '[') && utf8_valid(data + i, len - i)) {
		r = doc_parse_json(data + i, len - i, docs, ret_err);
		if (r == 0)
			r = json_whole_numbers(docs, 0);
		if (r == -EINVAL) {
			json_object_put(docs);
			docs = json_object_new_array();
			if (!docs)
				return -ENOMEM;
		}
	}
	if (r == -EINVAL)
		r = doc_parse_yaml(data, len, warn, docs, ret_err);
	if (r < 0) {
		json_object_put(docs);
		return r;
	}
	*ret_docs = docs;
	return 0;
}
