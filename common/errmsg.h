/* SPDX-License-Identifier: Apache-2.0 */
/* Writing a message for a person into a caller's fixed buffer. */
#ifndef KANARY_ERRMSG_H
#define KANARY_ERRMSG_H

#include <stddef.h>

/*
 * printf into out[size], cut to fit; nothing when out is NULL or size is 0
 * (a caller that does not want the reason passes no buffer).
 */
void errmsg_format(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* errmsg_format, then -EINVAL: for `return errmsg_einval(why, size, "...", ...);`. */
int errmsg_einval(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
