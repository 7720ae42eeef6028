/* SPDX-License-Identifier: Apache-2.0 */
/* Field errors worded like the API server's, collected per object. */
#include "common/kerr.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"

static const char *const kerr_names[] = {
    [KERR_INVALID] = "Invalid value", [KERR_REQUIRED] = "Required value",
    [KERR_NOT_FOUND] = "Not found",   [KERR_DUPLICATE] = "Duplicate value",
    [KERR_TOO_MANY] = "Too many",     [KERR_FORBIDDEN] = "Forbidden",
    [KERR_UNREADABLE] = "Unreadable",
};

void kerr_init(struct kerr_list *l)
{
	l->items = NULL;
	l->n = 0;
	l->cap = 0;
	l->dropped = 0;
	l->nomem = false;
}

void kerr_finish(struct kerr_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	kerr_init(l);
}

void kerr_reset(struct kerr_list *l)
{
	kerr_finish(l);
}

const char *kerr_get(const struct kerr_list *l, size_t i)
{
	return i < l->n ? l->items[i] : NULL;
}

size_t kerr_count(const struct kerr_list *l)
{
	return l->n;
}

size_t kerr_dropped(const struct kerr_list *l)
{
	return l->dropped;
}

bool kerr_any(const struct kerr_list *l)
{
	return l->n > 0 || l->dropped > 0 || l->nomem;
}

/* Takes ownership of text. Past the ceiling (or out of memory) it is counted, not kept. */
static void kerr_push(struct kerr_list *l, char *text)
{
	char **p;
	size_t cap;

	if (!text) {
		l->nomem = true;
		l->dropped++;
		return;
	}
	if (l->n >= KANARY_MAX_FIELD_ERRORS) {
		free(text);
		l->dropped++;
		return;
	}
	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 8;
		p = realloc(l->items, cap * sizeof(*p));
		if (!p) {
			free(text);
			l->nomem = true;
			l->dropped++;
			return;
		}
		l->items = p;
		l->cap = cap;
	}
	l->items[l->n++] = text;
}

static void kerr_vadd(struct kerr_list *l, enum kerr_type type, const char *path, const char *value,
                      const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void kerr_vadd(struct kerr_list *l, enum kerr_type type, const char *path, const char *value,
                      const char *fmt, va_list ap)
{
	struct buf b;
	char *text = NULL;
	int r;

	struct buf detail;

	buf_init(&b, 64 * 1024);
	buf_init(&detail, 64 * 1024);
	r = buf_vprintf(&detail, fmt, ap);
	if (r == 0)
		r = buf_printf(&b, "%s: %s", path, kerr_names[type]);
	if (r == 0 && value)
		r = buf_printf(&b, ": %s", value);
	/* An empty detail is left out: "spec.routes: Required value". */
	if (r == 0 && detail.len > 0)
		r = buf_printf(&b, ": %s", detail.data);
	if (r == 0)
		r = buf_steal(&b, &text, NULL);
	buf_finish(&detail);
	buf_finish(&b);
	kerr_push(l, r == 0 ? text : NULL);
}

void kerr_add(struct kerr_list *l, enum kerr_type type, const char *path, const char *value,
              const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kerr_vadd(l, type, path, value, fmt, ap);
	va_end(ap);
}

void kerr_required(struct kerr_list *l, const char *path)
{
	kerr_add(l, KERR_REQUIRED, path, NULL, "%s", "");
}

void kerr_invalid_int(struct kerr_list *l, const char *path, int64_t v, const char *fmt, ...)
{
	char value[32];
	va_list ap;

	snprintf(value, sizeof(value), "%" PRId64, v);
	va_start(ap, fmt);
	kerr_vadd(l, KERR_INVALID, path, value, fmt, ap);
	va_end(ap);
}

void kerr_invalid_str(struct kerr_list *l, const char *path, const char *v, const char *fmt, ...)
{
	char value[KANARY_MAX_ERROR_VALUE * 4 + 48];
	va_list ap;

	kerr_fmt_str(value, sizeof(value), v);
	va_start(ap, fmt);
	kerr_vadd(l, KERR_INVALID, path, value, fmt, ap);
	va_end(ap);
}

void kerr_fmt_str(char *out, size_t size, const char *s)
{
	size_t len = strlen(s), o = 0, i;
	int n;

	if (size < 48) {
		if (size)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (i = 0; i < len && i < KANARY_MAX_ERROR_VALUE; i++) {
		unsigned char c = (unsigned char)s[i];
		/* Worst case per byte is \u00XX: 6 bytes; keep room for the tail. */
		if (o + 6 + 40 >= size)
			break;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	if (i < len)
		n = snprintf(out + o, size - o, "...\"(%zu bytes)", len);
	else
		n = snprintf(out + o, size - o, "\"");
	(void)n;
}

int kerr_join(const struct kerr_list *l, const char *sep, struct buf *out)
{
	int r = 0;

	for (size_t i = 0; i < l->n && r == 0; i++) {
		if (i > 0)
			r = buf_puts(out, sep);
		if (r == 0)
			r = buf_puts(out, l->items[i]);
	}
	if (r == 0 && l->dropped > 0)
		r = buf_printf(out, "%sand %zu more error%s not shown", l->n ? sep : "", l->dropped,
		               l->dropped == 1 ? "" : "s");
	return r;
}
