/* SPDX-License-Identifier: Apache-2.0 */
/* A token bucket: a burst, then a steady rate, on a clock the caller reads. */
#ifndef KANARY_TOKEN_BUCKET_H
#define KANARY_TOKEN_BUCKET_H

#include <stdbool.h>

/* Caller storage; times are the caller's monotonic milliseconds. */
struct token_bucket {
	double per_s; /* tokens added per second */
	double burst; /* the most it holds, and what it starts with */
	double tokens;
	long long at_ms;
};

void token_bucket_init(struct token_bucket *b, double per_s, double burst, long long now_ms);

/* Takes one token when one is there; false (nothing taken) when not. */
bool token_bucket_try_take(struct token_bucket *b, long long now_ms);

/*
 * Takes one token whether or not it is there yet (the count goes below zero)
 * and returns how many milliseconds to wait until it is: 0 when it was there.
 */
long token_bucket_reserve(struct token_bucket *b, long long now_ms);

#endif
