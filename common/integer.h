/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a decimal integer within a range, the whole string or nothing. */
#ifndef KANARY_INTEGER_H
#define KANARY_INTEGER_H

/*
 * s as a decimal integer (strtol's syntax: leading blanks and a sign
 * allowed) in [min, max]. -EINVAL for anything else, nothing after the
 * digits included; *ret untouched then.
 */
int integer_parse(const char *s, long min, long max, long *ret);

#endif
