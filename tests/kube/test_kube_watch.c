/* SPDX-License-Identifier: Apache-2.0 */
/* The watch stream: lines split anywhere, over-long lines, garbage, event decoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/buf.h"
#include "common/kube/client.h"
#include "common/kube/watch.h"

#define MAX_LINES 16

struct collected {
	char *lines[MAX_LINES];
	size_t n;
	int stop_after; /* return 1 after this many lines; 0: never */
};

static int collect(void *ctx, const char *line, size_t len)
{
	struct collected *c = ctx;

	assert_int_equal(strlen(line), len);
	assert_true(c->n < MAX_LINES);
	c->lines[c->n++] = strdup(line);
	if (c->stop_after && (int)c->n == c->stop_after)
		return 1;
	return 0;
}

static void collected_free(struct collected *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->lines[i]);
	c->n = 0;
}

static const char stream[] =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\","
    "\"namespace\":\"ns\",\"resourceVersion\":\"10\"}}}\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\","
    "\"namespace\":\"ns\",\"resourceVersion\":\"11\"},\"data\":{\"k\":\"v\\n\"}}}\r\n"
    "\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":"
    "{\"resourceVersion\":\"12\"}}}\n"
    "{\"type\":\"DELETED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\","
    "\"namespace\":\"ns\",\"resourceVersion\":\"13\"}}}\n";

static void check_stream_lines(struct collected *c)
{
	struct kube_event ev;
	static const enum kube_event_type want[] = {KUBE_EVENT_ADDED, KUBE_EVENT_MODIFIED,
	                                            KUBE_EVENT_BOOKMARK, KUBE_EVENT_DELETED};
	static const char *const rv[] = {"10", "11", "12", "13"};

	assert_int_equal(c->n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(kube_event_parse(c->lines[i], strlen(c->lines[i]), &ev), 0);
		assert_int_equal(ev.type, want[i]);
		assert_string_equal(kube_object_resource_version(ev.object), rv[i]);
		kube_event_finish(&ev);
	}
}

/* Every split point of the stream, in two pieces, gives the same four events. */
static void test_lines_split_at_every_byte(void **state)
{
	size_t len = strlen(stream);

	for (size_t cut = 0; cut <= len; cut++) {
		struct kube_lines l;
		struct collected c = {0};

		kube_lines_init(&l, 4096);
		assert_int_equal(kube_lines_feed(&l, stream, cut, collect, &c), 0);
		assert_int_equal(kube_lines_feed(&l, stream + cut, len - cut, collect, &c), 0);
		assert_false(kube_lines_pending(&l));
		check_stream_lines(&c);
		collected_free(&c);
		kube_lines_finish(&l);
	}
}

/* Three pieces, every pair of cut points. */
static void test_lines_split_in_three_everywhere(void **state)
{
	size_t len = strlen(stream);

	for (size_t a = 0; a <= len; a += 3) {
		for (size_t b = a; b <= len; b += 5) {
			struct kube_lines l;
			struct collected c = {0};

			kube_lines_init(&l, 4096);
			assert_int_equal(kube_lines_feed(&l, stream, a, collect, &c), 0);
			assert_int_equal(kube_lines_feed(&l, stream + a, b - a, collect, &c), 0);
			assert_int_equal(kube_lines_feed(&l, stream + b, len - b, collect, &c), 0);
			check_stream_lines(&c);
			collected_free(&c);
			kube_lines_finish(&l);
		}
	}
}

static void test_lines_byte_by_byte(void **state)
{
	struct kube_lines l;
	struct collected c = {0};

	kube_lines_init(&l, 4096);
	for (size_t i = 0; stream[i]; i++)
		assert_int_equal(kube_lines_feed(&l, stream + i, 1, collect, &c), 0);
	check_stream_lines(&c);
	collected_free(&c);
	kube_lines_finish(&l);
}

static void test_lines_partial_tail_is_pending(void **state)
{
	struct kube_lines l;
	struct collected c = {0};

	kube_lines_init(&l, 4096);
	assert_int_equal(kube_lines_feed(&l, "{\"type\":\"ADD", 12, collect, &c), 0);
	assert_int_equal(c.n, 0);
	assert_true(kube_lines_pending(&l));
	kube_lines_reset(&l);
	assert_false(kube_lines_pending(&l));
	assert_int_equal(kube_lines_feed(&l, "x\n", 2, collect, &c), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.lines[0], "x");
	collected_free(&c);
	kube_lines_finish(&l);
}

/* A line of exactly the ceiling passes; one byte more is refused, in one piece or many. */
static void test_lines_ceiling(void **state)
{
	enum { MAX = 64 };
	char line[MAX + 2];
	struct kube_lines l;
	struct collected c = {0};

	memset(line, 'x', sizeof(line));
	line[MAX] = '\n';
	kube_lines_init(&l, MAX);
	assert_int_equal(kube_lines_feed(&l, line, MAX + 1, collect, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(strlen(c.lines[0]), MAX);
	collected_free(&c);

	memset(line, 'x', sizeof(line));
	line[MAX + 1] = '\n';
	assert_int_equal(kube_lines_feed(&l, line, MAX + 2, collect, &c), -E2BIG);
	assert_int_equal(c.n, 0);
	kube_lines_finish(&l);

	/* Split over many small chunks, the line still trips the ceiling. */
	kube_lines_init(&l, MAX);
	int r = 0;
	for (size_t i = 0; i < MAX + 1 && r == 0; i++)
		r = kube_lines_feed(&l, "y", 1, collect, &c);
	assert_int_equal(r, -E2BIG);
	assert_int_equal(c.n, 0);
	/* The splitter is usable again once the caller drops the stream. */
	kube_lines_reset(&l);
	assert_int_equal(kube_lines_feed(&l, "ok\n", 3, collect, &c), 0);
	assert_int_equal(c.n, 1);
	collected_free(&c);
	kube_lines_finish(&l);
}

static void test_lines_handler_stops_feeding(void **state)
{
	struct kube_lines l;
	struct collected c = {.stop_after = 1};

	kube_lines_init(&l, 4096);
	assert_int_equal(kube_lines_feed(&l, "a\nb\nc\n", 6, collect, &c), 1);
	assert_int_equal(c.n, 1);
	collected_free(&c);
	kube_lines_finish(&l);
}

static int parse(const char *s)
{
	struct kube_event ev;
	int r;

	r = kube_event_parse(s, strlen(s), &ev);
	if (r == 0)
		kube_event_finish(&ev);
	return r;
}

static void test_event_garbage_is_refused(void **state)
{
	static const char *const bad[] = {
	    "not json",
	    "{",
	    "{\"type\":\"ADDED\"",
	    "[]",
	    "42",
	    "\"ADDED\"",
	    "{}",
	    "{\"type\":\"ADDED\"}",
	    "{\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
	    "{\"type\":\"ADDED\",\"object\":[]}",
	    "{\"type\":\"ADDED\",\"object\":\"x\"}",
	    "{\"type\":7,\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
	    "{\"type\":\"CREATED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
	    "{\"type\":\"added\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}",
	    /* Every event but ERROR needs a resourceVersion to resume from. */
	    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}",
	    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":5}}}",
	    /* Two values on one line, or trailing bytes. */
	    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}{}",
	    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}} x",
	    "\xff\xfe\x00",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i]) != -EBADMSG)
			fail_msg("accepted: %s", bad[i]);
	}
	/* White space after the value is fine. */
	assert_int_equal(
	    parse("{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":\"1\"}}}  "),
	    0);
}

static void test_event_nesting_past_depth_is_refused(void **state)
{
	struct buf b;
	struct kube_event ev;

	buf_init(&b, 1 << 20);
	assert_int_equal(
	    buf_puts(&b, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"resourceVersion\":"
	                 "\"1\"},\"x\":"),
	    0);
	for (int i = 0; i < 200; i++)
		assert_int_equal(buf_puts(&b, "["), 0);
	for (int i = 0; i < 200; i++)
		assert_int_equal(buf_puts(&b, "]"), 0);
	assert_int_equal(buf_puts(&b, "}}"), 0);
	assert_int_equal(kube_event_parse(b.data, b.len, &ev), -EBADMSG);
	buf_finish(&b);
}

static void test_event_error_carries_status(void **state)
{
	static const char line[] =
	    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
	    "\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: "
	    "5 (90)\",\"reason\":\"Expired\",\"code\":410}}";
	struct kube_result res;
	struct kube_event ev;

	assert_int_equal(kube_event_parse(line, strlen(line), &ev), 0);
	assert_int_equal(ev.type, KUBE_EVENT_ERROR);
	assert_int_equal(kube_result_from_status(ev.object, 0, &res), -ESTALE);
	assert_int_equal(res.reason, KUBE_REASON_GONE);
	assert_int_equal(res.http_status, 410);
	assert_string_equal(res.message, "too old resource version: 5 (90)");
	kube_event_finish(&ev);
}

static void test_object_key(void **state)
{
	struct json_object *o;
	char key[32];

	o = json_tokener_parse("{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\"}}");
	assert_int_equal(kube_object_key(o, key, sizeof(key)), 0);
	assert_string_equal(key, "ns/a");
	assert_int_equal(kube_object_key(o, key, 4), -E2BIG);
	json_object_put(o);
	o = json_tokener_parse("{\"metadata\":{\"name\":\"cluster-wide\"}}");
	assert_int_equal(kube_object_key(o, key, sizeof(key)), 0);
	assert_string_equal(key, "cluster-wide");
	json_object_put(o);
	o = json_tokener_parse("{\"metadata\":{\"namespace\":\"ns\"}}");
	assert_int_equal(kube_object_key(o, key, sizeof(key)), -EINVAL);
	json_object_put(o);
}

static int count_lines(void *ctx, const char *line, size_t len)
{
	size_t *n = ctx;
	struct kube_event ev;

	if (kube_event_parse(line, len, &ev) == 0)
		kube_event_finish(&ev);
	(*n)++;
	return 0;
}

/* Random bytes: nothing crashes, nothing leaks, every line is parsed or refused. */
static void test_random_garbage(void **state)
{
	uint64_t x = 0x243F6A8885A308D3ULL;
	char chunk[257];
	struct kube_lines l;
	size_t n = 0;
	int r;

	kube_lines_init(&l, 512);
	for (int round = 0; round < 2000; round++) {
		size_t len = 0;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		len = (size_t)(x % sizeof(chunk));
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* Mostly JSON-ish bytes, some newlines, some anything. */
			static const char alphabet[] = "{}[]\":,0123456789abctrueflsn \n\r\\";
			chunk[i] =
			    (x & 0x700) ? alphabet[x % (sizeof(alphabet) - 1)] : (char)(x & 0xff);
		}
		r = kube_lines_feed(&l, chunk, len, count_lines, &n);
		assert_true(r == 0 || r == -E2BIG);
	}
	assert_true(n > 0);
	kube_lines_finish(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines_split_at_every_byte),
	    cmocka_unit_test(test_lines_split_in_three_everywhere),
	    cmocka_unit_test(test_lines_byte_by_byte),
	    cmocka_unit_test(test_lines_partial_tail_is_pending),
	    cmocka_unit_test(test_lines_ceiling),
	    cmocka_unit_test(test_lines_handler_stops_feeding),
	    cmocka_unit_test(test_event_garbage_is_refused),
	    cmocka_unit_test(test_event_nesting_past_depth_is_refused),
	    cmocka_unit_test(test_event_error_carries_status),
	    cmocka_unit_test(test_object_key),
	    cmocka_unit_test(test_random_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
