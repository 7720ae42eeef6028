/* SPDX-License-Identifier: Apache-2.0 */
/* Standard base64 (with padding) both ways, through GnuTLS's codec. */
#ifndef KANARY_BASE64_H
#define KANARY_BASE64_H

#include <stddef.h>

struct buf;

/* Appends the base64 of in[0..len) to out: padded, no line breaks. -E2BIG past out's ceiling. */
int base64_encode(const void *in, size_t len, struct buf *out);

/*
 * Appends the bytes that the NUL-terminated base64 text in stands for to out.
 * White space (space, tab, CR, LF) between characters is skipped. Rejects other
 * bytes and missing or misplaced padding with -EINVAL; -E2BIG when the result
 * is longer than max bytes or does not fit out's ceiling.
 */
int base64_decode(const char *in, size_t max, struct buf *out);

#endif
