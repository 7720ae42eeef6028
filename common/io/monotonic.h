/* SPDX-License-Identifier: Apache-2.0 */
/* The monotonic clock: now, a deadline ahead, and time elapsed. */
#ifndef KANARY_IO_MONOTONIC_H
#define KANARY_IO_MONOTONIC_H

#include <time.h>

/* CLOCK_MONOTONIC now, as a timespec. */
struct timespec monotonic_now(void);

/* CLOCK_MONOTONIC now, in milliseconds. */
long long monotonic_ms(void);

/* CLOCK_MONOTONIC ms from now, for pthread_cond_timedwait on a monotonic condition. */
struct timespec monotonic_after_ms(long ms);

/* Milliseconds from a to b (negative when b is earlier). */
long long monotonic_ms_between(struct timespec a, struct timespec b);

/* Seconds since start, with a fraction. */
double monotonic_seconds_since(struct timespec start);

#endif
