/* SPDX-License-Identifier: Apache-2.0 */
/* Writing a message for a person into a caller's fixed buffer. */
#include "common/errmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

void errmsg_format(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (!out || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(out, size, fmt, ap);
	va_end(ap);
}

int errmsg_einval(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (out && size) {
		va_start(ap, fmt);
		vsnprintf(out, size, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}
