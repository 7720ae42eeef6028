/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the watch stream splitter and event decoder (common/kube/watch.c). */
/*
 * The input is the body of a watch answer. It is fed to kube_lines_feed
 * twice: whole, and cut into pieces of pseudo-random sizes (drawn from the
 * input itself, so a finding replays), as libcurl hands a stream over.
 * Checked:
 * - both feeds give the same lines, the same result (0, or -E2BIG for a
 *   line past the ceiling, after which the stream is given up) and the same
 *   pending partial line; no line is empty or holds a newline;
 * - every line kube_event_parse accepts has a known type and a mapping with
 *   a resourceVersion (but for ERROR), kube_object_key's answer fits or says
 *   -E2BIG, and an ERROR's Status decodes (kube_result_from_status) to an
 *   error, never to success.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/kube/client.h"
#include "common/kube/watch.h"
#include "common/limits.h"
#include "tests/fuzz/fuzz.h"

/* Small enough that the fuzzer reaches it; the client's is KANARY_MAX_WATCH_LINE. */
#define FUZZ_MAX_LINE 1024

static void check_event(const char *line, size_t len)
{
	struct kube_event ev = {0};
	struct kube_result res;
	char key[KANARY_MAX_KEY + 1], small[8];
	int r;

	r = kube_event_parse(line, len, &ev);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG, "kube_event_parse: %d", r);
		FUZZ_CHECK(!ev.object, "an object from a refused line");
		return;
	}
	FUZZ_CHECK(strcmp(kube_event_type_name(ev.type), "UNKNOWN") != 0, "type %d", (int)ev.type);
	FUZZ_CHECK(json_object_is_type(ev.object, json_type_object), "object is not a mapping");
	if (ev.type == KUBE_EVENT_ERROR) {
		memset(&res, 0, sizeof(res));
		r = kube_result_from_status(ev.object, 0, &res);
		FUZZ_CHECK(r < 0 && res.reason != KUBE_REASON_NONE, "an ERROR event reads as %d",
		           r);
		FUZZ_CHECK(memchr(res.message, '\0', sizeof(res.message)) && res.message[0],
		           "Status message");
		FUZZ_CHECK(kube_reason_name(res.reason), "reason name");
	} else {
		FUZZ_CHECK(kube_object_resource_version(ev.object), "no resourceVersion");
	}
	r = kube_object_key(ev.object, key, sizeof(key));
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -E2BIG, "kube_object_key: %d", r);
	if (r == 0) {
		FUZZ_CHECK(strlen(key) < sizeof(key), "key length");
		r = kube_object_key(ev.object, small, sizeof(small));
		FUZZ_CHECK(r == 0 ? strlen(key) < sizeof(small) : r == -E2BIG,
		           "kube_object_key into 8 bytes: %d", r);
	}
	kube_event_finish(&ev);
	FUZZ_CHECK(!ev.object, "kube_event_finish");
}

/* Each line as <length>:<bytes>, so two runs compare with memcmp. */
static int take_line(void *ctx, const char *line, size_t len)
{
	struct buf *seen = ctx;

	FUZZ_CHECK(len > 0, "an empty line");
	FUZZ_CHECK(strlen(line) <= len && line[len] == '\0', "line not NUL-terminated");
	FUZZ_CHECK(!memchr(line, '\n', len), "a newline inside a line");
	FUZZ_CHECK(buf_printf(seen, "%zu:", len) == 0 && buf_append(seen, line, len) == 0,
	           "recording a line");
	check_event(line, len);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct kube_lines whole, pieces;
	struct buf seen_whole, seen_pieces;
	uint32_t state = 2166136261u;
	int r_whole, r_pieces = 0;

	/* The pieces' sizes: FNV-1a of the input, then a small LCG. */
	for (size_t i = 0; i < size; i++)
		state = (state ^ data[i]) * 16777619u;
	buf_init(&seen_whole, 64u * FUZZ_MAX_LINE + KANARY_MAX_INPUT);
	buf_init(&seen_pieces, 64u * FUZZ_MAX_LINE + KANARY_MAX_INPUT);
	kube_lines_init(&whole, FUZZ_MAX_LINE);
	kube_lines_init(&pieces, FUZZ_MAX_LINE);

	r_whole = kube_lines_feed(&whole, text, size, take_line, &seen_whole);
	FUZZ_CHECK(r_whole == 0 || r_whole == -E2BIG, "kube_lines_feed: %d", r_whole);
	for (size_t off = 0; off < size && r_pieces == 0;) {
		size_t n;

		state = state * 1103515245u + 12345u;
		n = 1 + (state >> 16) % (state & 1 ? 7 : 97);
		if (n > size - off)
			n = size - off;
		r_pieces = kube_lines_feed(&pieces, text + off, n, take_line, &seen_pieces);
		off += n;
	}
	FUZZ_CHECK(r_pieces == r_whole, "whole: %d, in pieces: %d", r_whole, r_pieces);
	FUZZ_CHECK(seen_whole.len == seen_pieces.len &&
	               (seen_whole.len == 0 ||
	                memcmp(seen_whole.data, seen_pieces.data, seen_whole.len) == 0),
	           "the lines differ when the stream comes in pieces");
	FUZZ_CHECK(kube_lines_pending(&whole) == kube_lines_pending(&pieces), "pending differs");
	FUZZ_CHECK(r_whole == 0 || !kube_lines_pending(&whole), "a partial line after -E2BIG");

	kube_lines_reset(&pieces);
	FUZZ_CHECK(!kube_lines_pending(&pieces), "pending after reset");
	kube_lines_finish(&pieces);
	kube_lines_finish(&whole);
	buf_finish(&seen_pieces);
	buf_finish(&seen_whole);
	return 0;
}
