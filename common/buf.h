/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer with a hard ceiling. */
#ifndef KANARY_BUF_H
#define KANARY_BUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * A growable byte buffer with a hard ceiling (curl's dynbuf idea). Appending
 * past the ceiling fails with -E2BIG and leaves the buffer as it was; the text
 * is always NUL-terminated when len > 0.
 */
struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

/* Caller storage; no allocation until the first append. */
void buf_init(struct buf *b, size_t max);
/* Frees the storage; the buffer may be used again after buf_init. */
void buf_finish(struct buf *b);
void buf_reset(struct buf *b);

int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/*
 * Hands the NUL-terminated text to the caller, who frees it with free(); the
 * buffer is left empty. An empty buffer yields an allocated "".
 */
int buf_steal(struct buf *b, char **ret_text, size_t *ret_len);

#endif
