/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 well-formedness (RFC 3629), for JSON (RFC 8259) and manifests. */
#include <stdint.h>
#include <string.h>

#include "common/utf8.h"

/*
 * The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * form, no surrogate, nothing past U+10FFFF), or 0 when there is none. p < end.
 */
size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = *p, lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * Whether text is UTF-8 throughout (RFC 8259 section 8.1). Runs of ASCII, all
 * of a real AdmissionReview but a few names, go eight bytes at a time: json-c's
 * own check costs a fifth of the parse.
 */
bool utf8_valid(const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text, *end = p + len;

	while (p < end) {
		uint64_t w;
		size_t n;

		if ((size_t)(end - p) >= sizeof(w)) {
			memcpy(&w, p, sizeof(w));
			if (!(w & UINT64_C(0x8080808080808080))) {
				p += sizeof(w);
				continue;
			}
		}
		n = utf8_seq(p, end);
		if (n == 0)
			return false;
		p += n;
	}
	return true;
}
