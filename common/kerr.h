/* SPDX-License-Identifier: Apache-2.0 */
/* Field errors worded like the API server's, collected per object. */
#ifndef KANARY_KERR_H
#define KANARY_KERR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A list of problems found in one object, each with its field path, worded
 * like the API server's field errors:
 *   spec.routes[1].weight: Invalid value: 120: must be between 0 and 100
 * The library fills it; the daemons and tools decide how to show it.
 * At most KANARY_MAX_FIELD_ERRORS are kept; kerr_dropped() counts the rest.
 */
enum kerr_type {
	KERR_INVALID = 0, /* "Invalid value" */
	KERR_REQUIRED,    /* "Required value" */
	KERR_NOT_FOUND,   /* "Not found" */
	KERR_DUPLICATE,   /* "Duplicate value" */
	KERR_TOO_MANY,    /* "Too many" */
	KERR_FORBIDDEN,   /* "Forbidden" */
	KERR_UNREADABLE,  /* the input itself could not be read */
};

struct kerr_list {
	char **items;
	size_t n;
	size_t cap;
	size_t dropped;
	bool nomem;
};

void kerr_init(struct kerr_list *l);
void kerr_finish(struct kerr_list *l);
void kerr_reset(struct kerr_list *l);

/* The text of item i, valid until the list changes. */
const char *kerr_get(const struct kerr_list *l, size_t i);
size_t kerr_count(const struct kerr_list *l);
/* How many problems were found past the ceiling and not kept. */
size_t kerr_dropped(const struct kerr_list *l);
/* True when any problem was recorded (kept or dropped). */
bool kerr_any(const struct kerr_list *l);

/*
 * Records "<path>: <type>: <detail>" (Required, Forbidden) or
 * "<path>: <type>: <value>: <detail>" when value is not NULL. value is the
 * already formatted value (see kerr_fmt_*). An empty detail is left out.
 */
void kerr_add(struct kerr_list *l, enum kerr_type type, const char *path, const char *value,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Shorthands for the common cases. */
void kerr_required(struct kerr_list *l, const char *path);
void kerr_invalid_int(struct kerr_list *l, const char *path, int64_t v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void kerr_invalid_str(struct kerr_list *l, const char *path, const char *v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Formats a string value quoted and escaped, as the API server prints it,
 * cut after KANARY_MAX_ERROR_VALUE bytes with the cut marked: "abc..."(300 bytes).
 * Writes at most size bytes including the NUL.
 */
void kerr_fmt_str(char *out, size_t size, const char *s);

/* Appends every item joined by sep, plus a last "and N more" item when some were dropped. */
struct buf;
int kerr_join(const struct kerr_list *l, const char *sep, struct buf *out);

#endif
