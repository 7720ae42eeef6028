/* SPDX-License-Identifier: Apache-2.0 */
/* A token bucket: a burst, then a steady rate, on a clock the caller reads. */
#include "common/token_bucket.h"

void token_bucket_init(struct token_bucket *b, double per_s, double burst, long long now_ms)
{
	b->per_s = per_s;
	b->burst = burst;
	b->tokens = burst;
	b->at_ms = now_ms;
}

static void refill(struct token_bucket *b, long long now_ms)
{
	b->tokens += (double)(now_ms - b->at_ms) * b->per_s / 1000.0;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
	b->at_ms = now_ms;
}

bool token_bucket_try_take(struct token_bucket *b, long long now_ms)
{
	refill(b, now_ms);
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

long token_bucket_reserve(struct token_bucket *b, long long now_ms)
{
	refill(b, now_ms);
	b->tokens -= 1.0;
	return b->tokens >= 0 ? 0 : (long)(-b->tokens * 1000.0 / b->per_s);
}
