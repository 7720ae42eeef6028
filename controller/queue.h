/* SPDX-License-Identifier: Apache-2.0 */
/* The rate-limited work queue of Kanary keys, as client-go's workqueue. */
#ifndef KANARY_CONTROLLER_QUEUE_H
#define KANARY_CONTROLLER_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The work queue of client-go (util/workqueue), for "namespace/name" keys:
 *   - a key waiting in the queue is there once (the dirty set), however
 *     often it is added;
 *   - a key handed to a worker is in the processing set until queue_done; if
 *     it is added meanwhile it is queued again at queue_done, so one key is
 *     never in two workers;
 *   - queue_add_after holds a key back; a key already held back keeps the
 *     earlier of its two times, which is what coalesces a burst: the first
 *     change of a burst fixes when the one reconcile runs;
 *   - queue_add_rate_limited waits the larger of a per-key exponential backoff
 *     (base * 2^failures, capped) and an overall token bucket (qps, burst);
 *     queue_forget clears the key's failures.
 * Every function is thread-safe. Keys are copied.
 */

struct queue_options {
	long base_delay_ms; /* 0: QUEUE_DEFAULT_BASE_DELAY_MS */
	long max_delay_ms;  /* 0: QUEUE_DEFAULT_MAX_DELAY_MS */
	double qps;         /* 0: QUEUE_DEFAULT_QPS */
	int burst;          /* 0: QUEUE_DEFAULT_BURST */
	/* Milliseconds on a monotonic clock; NULL: CLOCK_MONOTONIC. Tests pass their own. */
	long long (*now_ms)(void *ctx);
	void *clock_ctx;
};

/* client-go's DefaultControllerRateLimiter. */
#define QUEUE_DEFAULT_BASE_DELAY_MS 5L
#define QUEUE_DEFAULT_MAX_DELAY_MS  1000000L
#define QUEUE_DEFAULT_QPS           10.0
#define QUEUE_DEFAULT_BURST         100

struct queue;

/* Ownership: *ret is the caller's, freed with queue_destroy. */
int queue_create(const struct queue_options *o, struct queue **ret);
/* Frees everything; queue_shutdown first when workers may still wait. NULL does nothing. */
void queue_destroy(struct queue *q);

/* Returns 0, -ENOMEM, -E2BIG past KANARY_MAX_QUEUE_KEYS, -ESHUTDOWN after queue_shutdown. */
int queue_add(struct queue *q, const char *key);
/* delay_ms <= 0 is queue_add. */
int queue_add_after(struct queue *q, const char *key, long delay_ms);
/* ret_delay_ms (may be NULL): how long the key is held back, for the log. */
int queue_add_rate_limited(struct queue *q, const char *key, long *ret_delay_ms);
/* How often key failed since its last queue_forget. */
unsigned queue_requeues(struct queue *q, const char *key);
void queue_forget(struct queue *q, const char *key);

/*
 * Waits for a key and marks it processing. Returns 0 with *ret_key (the
 * caller's to free, after queue_done), or -ESHUTDOWN once the queue is shut
 * down: keys still waiting are not handed out any more, so a worker stops
 * after the key it holds.
 */
int queue_get(struct queue *q, char **ret_key);
/* queue_get without waiting: -EAGAIN when no key is ready. */
int queue_try_get(struct queue *q, char **ret_key);
/* The worker finished key; requeues it when it was added meanwhile. */
void queue_done(struct queue *q, const char *key);

/* Wakes every waiting queue_get with -ESHUTDOWN; later adds are refused. */
void queue_shutdown(struct queue *q);
bool queue_shutting_down(struct queue *q);

struct queue_stats {
	size_t depth;          /* ready keys waiting for a worker */
	size_t waiting;        /* keys held back (add_after, rate limited) */
	size_t processing;     /* keys in workers */
	unsigned long adds;    /* queue_add calls that queued a key */
	unsigned long retries; /* queue_add_rate_limited calls */
	size_t getters;        /* queue_get calls waiting for a key */
};

void queue_stats(struct queue *q, struct queue_stats *ret);

#endif
