/* SPDX-License-Identifier: Apache-2.0 */
/* The monotonic clock: now, a deadline ahead, and time elapsed. */
#include "common/io/monotonic.h"

struct timespec monotonic_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

long long monotonic_ms(void)
{
	struct timespec ts = monotonic_now();

	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec monotonic_after_ms(long ms)
{
	struct timespec ts = monotonic_now();

	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

long long monotonic_ms_between(struct timespec a, struct timespec b)
{
	return (long long)(b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
}

double monotonic_seconds_since(struct timespec start)
{
	struct timespec now = monotonic_now();

	return (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
}
