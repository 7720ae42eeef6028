/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a duration flag ("1500ms", "15s", "10m", "1h") into milliseconds. */
#include "common/duration.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int duration_parse(const char *s, long max_ms, long *ret_ms)
{
	static const struct {
		const char *unit;
		long ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60L * 1000}, {"h", 3600L * 1000}};
	char *end;
	long v;

	if (strcmp(s, "0") == 0) {
		*ret_ms = 0;
		return 0;
	}
	/* strtol would take a sign or leading blanks; a duration has neither. */
	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || end == s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			if (v > max_ms / units[i].ms)
				return -ERANGE;
			*ret_ms = v * units[i].ms;
			return 0;
		}
	}
	return -EINVAL;
}
