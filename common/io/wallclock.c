/* SPDX-License-Identifier: Apache-2.0 */
/* The wall clock as Kubernetes writes a metav1.Time: RFC 3339 in UTC, whole seconds. */
#include "common/io/wallclock.h"

#include <time.h>

void wallclock_rfc3339(char *out, size_t size)
{
	struct tm tm;
	time_t t = time(NULL);

	gmtime_r(&t, &tm);
	if (strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 && size)
		out[0] = '\0';
}
