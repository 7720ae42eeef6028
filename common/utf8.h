/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 well-formedness (RFC 3629), for JSON (RFC 8259) and manifests. */
#ifndef KANARY_UTF8_H
#define KANARY_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * form, no surrogate, nothing past U+10FFFF), or 0 when there is none. p < end.
 */
size_t utf8_seq(const unsigned char *p, const unsigned char *end);

/* Whether text[0..len) is UTF-8 throughout. */
bool utf8_valid(const char *text, size_t len);

#endif
