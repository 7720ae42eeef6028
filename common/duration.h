/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a duration flag ("1500ms", "15s", "10m", "1h") into milliseconds. */
#ifndef KANARY_DURATION_H
#define KANARY_DURATION_H

/*
 * A Go-style duration with exactly one unit: a whole number followed by ms, s,
 * m or h; "0" alone is zero. Rejects a bare number other than 0, a sign, a
 * fraction, white space and several units (-EINVAL), and more than max_ms
 * (-ERANGE). Whether zero is acceptable is the caller's decision.
 */
int duration_parse(const char *s, long max_ms, long *ret_ms);

#endif
