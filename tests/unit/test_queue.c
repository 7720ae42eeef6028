/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the work queue. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "controller/queue.h"

/* A clock the test moves by hand. */
static long long fake_now(void *ctx)
{
	return *(long long *)ctx;
}

static struct queue *fake_queue(long long *clock, long base_ms, double qps, int burst)
{
	struct queue_options o = {
	    .base_delay_ms = base_ms,
	    .max_delay_ms = 1000,
	    .qps = qps,
	    .burst = burst,
	    .now_ms = fake_now,
	    .clock_ctx = clock,
	};
	struct queue *q = NULL;

	assert_int_equal(queue_create(&o, &q), 0);
	return q;
}

/* Takes the next ready key, which must be want, and marks it done. */
static void expect_key(struct queue *q, const char *want)
{
	char *key = NULL;

	assert_int_equal(queue_try_get(q, &key), 0);
	assert_string_equal(key, want);
	queue_done(q, key);
	free(key);
}

static void expect_empty(struct queue *q)
{
	char *key = NULL;

	assert_int_equal(queue_try_get(q, &key), -EAGAIN);
}

static void queue_hands_out_keys_in_order_once_each(void **state)
{
	long long t = 0;
	struct queue *q = fake_queue(&t, 5, 10, 100);

	assert_int_equal(queue_add(q, "ns/a"), 0);
	assert_int_equal(queue_add(q, "ns/b"), 0);
	assert_int_equal(queue_add(q, "ns/a"), 0);
	expect_key(q, "ns/a");
	expect_key(q, "ns/b");
	expect_empty(q);
	queue_destroy(q);
}

static void queue_never_gives_one_key_to_two_workers(void **state)
{
	long long t = 0;
	struct queue *q = fake_queue(&t, 5, 10, 100);
	char *key = NULL;

	assert_int_equal(queue_add(q, "ns/a"), 0);
	assert_int_equal(queue_try_get(q, &key), 0);
	/* Changed while a worker holds it: waits for that worker. */
	assert_int_equal(queue_add(q, "ns/a"), 0);
	assert_int_equal(queue_add(q, "ns/a"), 0);
	expect_empty(q);
	queue_done(q, key);
	free(key);
	expect_key(q, "ns/a");
	expect_empty(q);
	queue_destroy(q);
}

static void queue_add_after_waits_and_the_first_change_of_a_burst_sets_the_time(void **state)
{
	long long t = 0;
	struct queue *q = fake_queue(&t, 5, 10, 100);
	struct queue_stats st;

	assert_int_equal(queue_add_after(q, "ns/a", 1000), 0);
	t = 400;
	assert_int_equal(queue_add_after(q, "ns/a", 1000), 0);
	t = 900;
	assert_int_equal(queue_add_after(q, "ns/a", 1000), 0);
	queue_stats(q, &st);
	assert_int_equal(st.waiting, 1);
	t = 999;
	expect_empty(q);
	t = 1000;
	expect_key(q, "ns/a");
	/* The burst made one reconcile. */
	t = 5000;
	expect_empty(q);
	queue_destroy(q);
}

static void queue_add_after_keeps_the_earlier_time(void **state)
{
	long long t = 0;
	struct queue *q = fake_queue(&t, 5, 10, 100);

	assert_int_equal(queue_add_after(q, "ns/a", 1000), 0);
	assert_int_equal(queue_add_after(q, "ns/a", 100), 0);
	t = 100;
	expect_key(q, "ns/a");
	t = 2000;
	expect_empty(q);
	queue_destroy(q);
}

static void queue_zero_delay_is_an_add(void **state)
{
	long long t = 0;
	struct queue *q = fake_queue(&t, 5, 10, 100);

	assert_int_equal(queue_add_after(q, "ns/a", 0), 0);
	expect_key(q, "ns/a");
	queue_destroy(q);
}

static void queue_backs_off_exponentially_per_key_until_forgotten(void **state)
{
	long long t = 0;
	struct queue *q = fake_queue(&t, 5, 1000, 1000);
	const long long want[] = {5, 10, 20, 40, 80};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		long long start = t;
		long delay = -1;

		assert_int_equal(queue_add_rate_limited(q, "ns/a", &delay), 0);
		assert_int_equal(delay, want[i]);
		assert_int_equal(queue_requeues(q, "ns/a"), i + 1);
		t = start + want[i] - 1;
		expect_empty(q);
		t = start + want[i];
		expect_key(q, "ns/a");
	}
	queue_forget(q, "ns/a");
	assert_int_equal(queue_requeues(q, "ns/a"), 0);
	assert_int_equal(queue_add_rate_limited(q, "ns/a", NULL), 0);
	t += 5;
	expect_key(q, "ns/a");
	queue_destroy(q);
}

static void queue_backoff_is_capped(void **state)
{
	long long t = 0;
	struct queue *q = fake_queue(&t, 5, 1000, 1000);

	for (int i = 0; i < 40; i++)
		assert_int_equal(queue_add_rate_limited(q, "ns/a", NULL), 0);
	/* The first retry is due at 5 ms; the later ones were later and did not move it. */
	t = 5;
	expect_key(q, "ns/a");
	assert_int_equal(queue_add_rate_limited(q, "ns/a", NULL), 0);
	t = 5 + 999;
	expect_empty(q);
	t = 5 + 1000; /* max_delay_ms */
	expect_key(q, "ns/a");
	queue_destroy(q);
}

static void queue_overall_bucket_limits_retries_of_many_keys(void **state)
{
	long long t = 0;
	struct queue *q = fake_queue(&t, 1, 1, 2); /* 1 qps, burst 2 */

	assert_int_equal(queue_add_rate_limited(q, "ns/a", NULL), 0);
	assert_int_equal(queue_add_rate_limited(q, "ns/b", NULL), 0);
	assert_int_equal(queue_add_rate_limited(q, "ns/c", NULL), 0);
	t = 1;
	expect_key(q, "ns/a");
	expect_key(q, "ns/b");
	expect_empty(q);
	t = 999;
	expect_empty(q);
	t = 1000;
	expect_key(q, "ns/c");
	queue_destroy(q);
}

static void queue_shutdown_refuses_work(void **state)
{
	long long t = 0;
	struct queue *q = fake_queue(&t, 5, 10, 100);
	char *key = NULL;

	assert_int_equal(queue_add(q, "ns/a"), 0);
	queue_shutdown(q);
	assert_true(queue_shutting_down(q));
	assert_int_equal(queue_get(q, &key), -ESHUTDOWN);
	assert_int_equal(queue_try_get(q, &key), -ESHUTDOWN);
	assert_int_equal(queue_add(q, "ns/b"), -ESHUTDOWN);
	assert_int_equal(queue_add_after(q, "ns/b", 10), -ESHUTDOWN);
	assert_int_equal(queue_add_rate_limited(q, "ns/b", NULL), -ESHUTDOWN);
	queue_destroy(q);
}

struct taker {
	struct queue *q;
	char *key;
	int r;
};

static void *take(void *arg)
{
	struct taker *tk = arg;

	tk->r = queue_get(tk->q, &tk->key);
	return NULL;
}

/* Until n workers wait inside queue_get; bounded: a hang fails the test by its timeout. */
static void wait_for_getters(struct queue *q, size_t n)
{
	struct queue_stats st;

	for (long i = 0; i < 100000000L; i++) {
		queue_stats(q, &st);
		if (st.getters == n)
			return;
		sched_yield();
	}
	fail_msg("no worker waits in queue_get");
}

static void queue_get_waits_for_a_delayed_key_on_the_real_clock(void **state)
{
	struct queue *q = NULL;
	struct taker tk = {0};
	pthread_t th;

	assert_int_equal(queue_create(NULL, &q), 0);
	tk.q = q;
	assert_int_equal(pthread_create(&th, NULL, take, &tk), 0);
	assert_int_equal(queue_add_after(q, "ns/late", 50), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(tk.r, 0);
	assert_string_equal(tk.key, "ns/late");
	queue_done(q, tk.key);
	free(tk.key);

	/* A waiting worker is woken by shutdown. */
	tk.key = NULL;
	assert_int_equal(pthread_create(&th, NULL, take, &tk), 0);
	wait_for_getters(q, 1);
	queue_shutdown(q);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(tk.r, -ESHUTDOWN);
	queue_destroy(q);
}

static void queue_counts_for_metrics(void **state)
{
	long long t = 0;
	struct queue *q = fake_queue(&t, 5, 10, 100);
	struct queue_stats st;
	char *key = NULL;

	assert_int_equal(queue_add(q, "ns/a"), 0);
	assert_int_equal(queue_add(q, "ns/b"), 0);
	assert_int_equal(queue_add_after(q, "ns/c", 100), 0);
	assert_int_equal(queue_try_get(q, &key), 0);
	queue_stats(q, &st);
	assert_int_equal(st.depth, 1);
	assert_int_equal(st.waiting, 1);
	assert_int_equal(st.processing, 1);
	assert_int_equal(st.adds, 2);
	queue_done(q, key);
	free(key);
	queue_destroy(q);
}

static void queue_destroy_frees_waiting_keys(void **state)
{
	long long t = 0;
	struct queue *q = fake_queue(&t, 5, 10, 100);

	for (int i = 0; i < 200; i++) {
		char key[32];

		snprintf(key, sizeof(key), "ns/k%d", i);
		assert_int_equal(queue_add(q, key), 0);
		assert_int_equal(queue_add_after(q, key, 10 + i), 0);
		assert_int_equal(queue_add_rate_limited(q, key, NULL), 0);
	}
	queue_destroy(q);
	queue_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(queue_hands_out_keys_in_order_once_each),
	    cmocka_unit_test(queue_never_gives_one_key_to_two_workers),
	    cmocka_unit_test(queue_add_after_waits_and_the_first_change_of_a_burst_sets_the_time),
	    cmocka_unit_test(queue_add_after_keeps_the_earlier_time),
	    cmocka_unit_test(queue_zero_delay_is_an_add),
	    cmocka_unit_test(queue_backs_off_exponentially_per_key_until_forgotten),
	    cmocka_unit_test(queue_backoff_is_capped),
	    cmocka_unit_test(queue_overall_bucket_limits_retries_of_many_keys),
	    cmocka_unit_test(queue_shutdown_refuses_work),
	    cmocka_unit_test(queue_get_waits_for_a_delayed_key_on_the_real_clock),
	    cmocka_unit_test(queue_counts_for_metrics),
	    cmocka_unit_test(queue_destroy_frees_waiting_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
