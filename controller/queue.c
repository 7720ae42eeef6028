/* SPDX-License-Identifier: Apache-2.0 */
/* The rate-limited work queue of Kanary keys, as client-go's workqueue. */
#include "controller/queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/io/monotonic.h"
#include "common/limits.h"
#include "common/token_bucket.h"
#include "common/string_map.h"

/* A key held back until at; entries whose at no longer matches the waiting map are stale. */
struct delayed {
	long long at;
	unsigned long seq; /* FIFO among equal times */
	char *key;
};

struct queue {
	struct queue_options o;
	pthread_mutex_t lock;
	pthread_cond_t cond;

	/* The ready keys in order, a ring; each owned by the ring. */
	char **fifo;
	size_t fifo_head, fifo_len, fifo_cap;

	struct string_map dirty;      /* key -> NULL: queued, or to be queued at queue_done */
	struct string_map processing; /* key -> NULL */
	struct string_map waiting;    /* key -> long long *: when it is due */
	struct string_map failures;   /* key -> (uintptr_t) failures since forget */

	/* Min-heap on (at, seq), with stale entries skipped when popped. */
	struct delayed *heap;
	size_t heap_len, heap_cap;
	unsigned long seq;

	struct token_bucket retries_bucket; /* every retry takes a token */

	bool shutting_down;
	unsigned long adds, retries;
	size_t getters; /* in queue_get, waiting */
};

/* The clock when the options name none. */
static long long real_clock_ms(void *ctx)
{
	return monotonic_ms();
}

static long long now(const struct queue *q)
{
	return q->o.now_ms(q->o.clock_ctx);
}

int queue_create(const struct queue_options *o, struct queue **ret)
{
	pthread_condattr_t ca;
	struct queue *q;

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	if (o)
		q->o = *o;
	if (q->o.base_delay_ms <= 0)
		q->o.base_delay_ms = QUEUE_DEFAULT_BASE_DELAY_MS;
	if (q->o.max_delay_ms <= 0)
		q->o.max_delay_ms = QUEUE_DEFAULT_MAX_DELAY_MS;
	if (q->o.qps <= 0)
		q->o.qps = QUEUE_DEFAULT_QPS;
	if (q->o.burst <= 0)
		q->o.burst = QUEUE_DEFAULT_BURST;
	if (!q->o.now_ms)
		q->o.now_ms = real_clock_ms;
	string_map_init(&q->dirty, KANARY_MAX_QUEUE_KEYS);
	string_map_init(&q->processing, KANARY_MAX_QUEUE_KEYS);
	string_map_init(&q->waiting, KANARY_MAX_QUEUE_KEYS);
	string_map_init(&q->failures, KANARY_MAX_QUEUE_KEYS);
	token_bucket_init(&q->retries_bucket, q->o.qps, q->o.burst, now(q));
	if (pthread_mutex_init(&q->lock, NULL) != 0)
		goto out_free;
	/* Timed waits on the monotonic clock: a wall-clock jump must not stretch a delay. */
	if (pthread_condattr_init(&ca) != 0)
		goto out_lock;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&q->cond, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto out_lock;
	}
	pthread_condattr_destroy(&ca);
	*ret = q;
	return 0;
out_lock:
	pthread_mutex_destroy(&q->lock);
out_free:
	free(q);
	return -ENOMEM;
}

void queue_destroy(struct queue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->fifo_len; i++)
		free(q->fifo[(q->fifo_head + i) % q->fifo_cap]);
	free(q->fifo);
	for (size_t i = 0; i < q->heap_len; i++)
		free(q->heap[i].key);
	free(q->heap);
	string_map_finish(&q->dirty, NULL);
	string_map_finish(&q->processing, NULL);
	string_map_finish(&q->waiting, free);
	string_map_finish(&q->failures, NULL);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

/* ---- the ring of ready keys ---- */

static int fifo_push(struct queue *q, const char *key)
{
	char *copy;

	if (q->fifo_len == q->fifo_cap) {
		size_t cap = q->fifo_cap ? q->fifo_cap * 2 : 64;
		char **n = malloc(cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < q->fifo_len; i++)
			n[i] = q->fifo[(q->fifo_head + i) % q->fifo_cap];
		free(q->fifo);
		q->fifo = n;
		q->fifo_cap = cap;
		q->fifo_head = 0;
	}
	copy = strdup(key);
	if (!copy)
		return -ENOMEM;
	q->fifo[(q->fifo_head + q->fifo_len) % q->fifo_cap] = copy;
	q->fifo_len++;
	return 0;
}

static char *fifo_pop(struct queue *q)
{
	char *key = q->fifo[q->fifo_head];

	q->fifo_head = (q->fifo_head + 1) % q->fifo_cap;
	q->fifo_len--;
	return key;
}

/* ---- the heap of delayed keys ---- */

static bool before(const struct delayed *a, const struct delayed *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_swap(struct queue *q, size_t i, size_t j)
{
	struct delayed t = q->heap[i];

	q->heap[i] = q->heap[j];
	q->heap[j] = t;
}

static int heap_push(struct queue *q, const char *key, long long at)
{
	size_t i;
	char *copy;

	if (q->heap_len == q->heap_cap) {
		size_t cap = q->heap_cap ? q->heap_cap * 2 : 64;
		struct delayed *n = realloc(q->heap, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		q->heap = n;
		q->heap_cap = cap;
	}
	copy = strdup(key);
	if (!copy)
		return -ENOMEM;
	i = q->heap_len++;
	q->heap[i] = (struct delayed){.at = at, .seq = q->seq++, .key = copy};
	while (i > 0 && before(&q->heap[i], &q->heap[(i - 1) / 2])) {
		heap_swap(q, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	return 0;
}

/* Removes the root; the caller owns its key. */
static struct delayed heap_pop(struct queue *q)
{
	struct delayed top = q->heap[0];
	size_t i = 0;

	q->heap[0] = q->heap[--q->heap_len];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < q->heap_len && before(&q->heap[l], &q->heap[m]))
			m = l;
		if (r < q->heap_len && before(&q->heap[r], &q->heap[m]))
			m = r;
		if (m == i)
			break;
		heap_swap(q, i, m);
		i = m;
	}
	return top;
}

/* ---- adding ---- */

static int add_locked(struct queue *q, const char *key)
{
	int r;

	if (string_map_contains(&q->dirty, key))
		return 0;
	r = string_map_put(&q->dirty, key, NULL, NULL);
	if (r < 0)
		return r;
	q->adds++;
	/* In a worker now: queue_done puts it back. */
	if (string_map_contains(&q->processing, key))
		return 0;
	r = fifo_push(q, key);
	if (r < 0) {
		string_map_remove(&q->dirty, key, NULL);
		return r;
	}
	pthread_cond_signal(&q->cond);
	return 0;
}

/* Moves every delayed key that is due into the ready ring; returns when the next one is due. */
static long long promote_due(struct queue *q, long long t)
{
	while (q->heap_len > 0 && q->heap[0].at <= t) {
		struct delayed d = heap_pop(q);
		long long *due = string_map_get(&q->waiting, d.key);

		/* Stale: an earlier time replaced this entry, and was promoted already or waits. */
		if (due && *due == d.at) {
			string_map_remove(&q->waiting, d.key, NULL);
			free(due);
			/* Out of memory, the key is dropped; its next event or the resync brings it back. */
			(void)add_locked(q, d.key);
		}
		free(d.key);
	}
	return q->heap_len > 0 ? q->heap[0].at : -1;
}

static int add_after_locked(struct queue *q, const char *key, long delay_ms)
{
	long long at, *due;
	int r;

	if (delay_ms <= 0)
		return add_locked(q, key);
	at = now(q) + delay_ms;
	due = string_map_get(&q->waiting, key);
	if (due) {
		if (*due <= at)
			return 0; /* the earlier time wins: a burst waits for its first change */
		r = heap_push(q, key, at);
		if (r < 0)
			return r;
		*due = at;
	} else {
		due = malloc(sizeof(*due));
		if (!due)
			return -ENOMEM;
		*due = at;
		r = string_map_put(&q->waiting, key, due, NULL);
		if (r < 0) {
			free(due);
			return r;
		}
		r = heap_push(q, key, at);
		if (r < 0) {
			string_map_remove(&q->waiting, key, NULL);
			free(due);
			return r;
		}
	}
	/* A worker may sleep until a later time. */
	pthread_cond_broadcast(&q->cond);
	return 0;
}

int queue_add(struct queue *q, const char *key)
{
	int r;

	pthread_mutex_lock(&q->lock);
	r = q->shutting_down ? -ESHUTDOWN : add_locked(q, key);
	pthread_mutex_unlock(&q->lock);
	return r;
}

int queue_add_after(struct queue *q, const char *key, long delay_ms)
{
	int r;

	pthread_mutex_lock(&q->lock);
	r = q->shutting_down ? -ESHUTDOWN : add_after_locked(q, key, delay_ms);
	pthread_mutex_unlock(&q->lock);
	return r;
}

/* Per-key exponential backoff: base * 2^failures, capped; counts this failure. */
static long item_delay(struct queue *q, const char *key)
{
	uintptr_t n = (uintptr_t)string_map_get(&q->failures, key);
	double d = (double)q->o.base_delay_ms;

	for (uintptr_t i = 0; i < n && d < (double)q->o.max_delay_ms; i++)
		d *= 2;
	if (d > (double)q->o.max_delay_ms)
		d = (double)q->o.max_delay_ms;
	/* Out of memory, the count stays put: the delay is still bounded below by base. */
	(void)string_map_put(&q->failures, key, (void *)(n + 1), NULL);
	return (long)d;
}

/* The overall token bucket: each retry takes a token, and waits when none is left. */
static long bucket_delay(struct queue *q)
{
	return token_bucket_reserve(&q->retries_bucket, now(q));
}

int queue_add_rate_limited(struct queue *q, const char *key, long *ret_delay_ms)
{
	long a, b;
	int r;

	pthread_mutex_lock(&q->lock);
	if (q->shutting_down) {
		r = -ESHUTDOWN;
	} else {
		a = item_delay(q, key);
		b = bucket_delay(q);
		q->retries++;
		r = add_after_locked(q, key, a > b ? a : b);
		if (r == 0 && ret_delay_ms)
			*ret_delay_ms = a > b ? a : b;
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

unsigned queue_requeues(struct queue *q, const char *key)
{
	uintptr_t n;

	pthread_mutex_lock(&q->lock);
	n = (uintptr_t)string_map_get(&q->failures, key);
	pthread_mutex_unlock(&q->lock);
	return (unsigned)n;
}

void queue_forget(struct queue *q, const char *key)
{
	pthread_mutex_lock(&q->lock);
	string_map_remove(&q->failures, key, NULL);
	pthread_mutex_unlock(&q->lock);
}

/* ---- taking ---- */

static int take_locked(struct queue *q, char **ret_key)
{
	char *key;
	int r;

	key = fifo_pop(q);
	r = string_map_put(&q->processing, key, NULL, NULL);
	if (r < 0) {
		/* Put it back at the end; the worker retries later. */
		q->fifo[(q->fifo_head + q->fifo_len) % q->fifo_cap] = key;
		q->fifo_len++;
		return r;
	}
	string_map_remove(&q->dirty, key, NULL);
	*ret_key = key;
	return 0;
}

static struct timespec ms_to_timespec(long long ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
	                      .tv_nsec = (long)(ms % 1000) * 1000000L};

	return ts;
}

int queue_get(struct queue *q, char **ret_key)
{
	int r;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		long long next;

		if (q->shutting_down) {
			r = -ESHUTDOWN;
			break;
		}
		next = promote_due(q, now(q));
		if (q->fifo_len > 0) {
			r = take_locked(q, ret_key);
			break;
		}
		q->getters++;
		if (next < 0 || q->o.now_ms != real_clock_ms) {
			/*
			 * With a test clock, time only moves when the test moves it;
			 * waiting on the real clock would still wake on adds and shutdown.
			 */
			if (next < 0) {
				pthread_cond_wait(&q->cond, &q->lock);
			} else {
				struct timespec ts = monotonic_after_ms(10);

				pthread_cond_timedwait(&q->cond, &q->lock, &ts);
			}
		} else {
			struct timespec ts = ms_to_timespec(next);

			pthread_cond_timedwait(&q->cond, &q->lock, &ts);
		}
		q->getters--;
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

int queue_try_get(struct queue *q, char **ret_key)
{
	int r;

	pthread_mutex_lock(&q->lock);
	if (q->shutting_down) {
		r = -ESHUTDOWN;
	} else {
		promote_due(q, now(q));
		r = q->fifo_len > 0 ? take_locked(q, ret_key) : -EAGAIN;
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

void queue_done(struct queue *q, const char *key)
{
	pthread_mutex_lock(&q->lock);
	string_map_remove(&q->processing, key, NULL);
	if (string_map_contains(&q->dirty, key)) {
		if (fifo_push(q, key) < 0)
			string_map_remove(&q->dirty, key,
			                  NULL); /* lost; the next event brings it back */
		else
			pthread_cond_signal(&q->cond);
	}
	pthread_mutex_unlock(&q->lock);
}

void queue_shutdown(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->shutting_down = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

bool queue_shutting_down(struct queue *q)
{
	bool s;

	pthread_mutex_lock(&q->lock);
	s = q->shutting_down;
	pthread_mutex_unlock(&q->lock);
	return s;
}

void queue_stats(struct queue *q, struct queue_stats *ret)
{
	pthread_mutex_lock(&q->lock);
	promote_due(q, now(q));
	ret->depth = q->fifo_len;
	ret->waiting = string_map_size(&q->waiting);
	ret->processing = string_map_size(&q->processing);
	ret->adds = q->adds;
	ret->retries = q->retries;
	ret->getters = q->getters;
	pthread_mutex_unlock(&q->lock);
}
