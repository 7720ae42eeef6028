/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a decimal integer within a range, the whole string or nothing. */
#include "common/integer.h"

#include <errno.h>
#include <stdlib.h>

int integer_parse(const char *s, long min, long max, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}
