/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the secret reader and wiper (common/io/secret_read.c): what
 * the reader returns and its ceiling, and that every string of a parsed
 * stream is wiped. Every path that fails after allocating is here too, so that
 * ASan and valgrind see that none of them leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/doc.h"
#include "common/io/secret_read.h"
#include "common/limits.h"

/* A temporary file holding len bytes of data, opened for reading and already unlinked. */
static int file_with(const void *data, size_t len)
{
	char path[] = "/tmp/kanary-secret-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* A pipe holding len bytes of a pattern, its writing end closed: fstat says size 0. */
static int pipe_with(size_t len)
{
	int p[2];
	char c;

	assert_int_equal(pipe(p), 0);
	assert_true(len <= 65536); /* the pipe's buffer holds it all */
	for (size_t i = 0; i < len; i++) {
		c = (char)('a' + i % 26);
		assert_int_equal(write(p[1], &c, 1), 1);
	}
	close(p[1]);
	return p[0];
}

static void reads_a_file_whole_and_terminates_it(void **state)
{
	static const char key[] = "-----BEGIN PRIVATE KEY-----\nMC4CAQAw\0after-a-nul\n";
	char *got = NULL;
	size_t len = 0;
	int fd = file_with(key, sizeof(key) - 1);

	assert_int_equal(secret_read_fd(fd, 4096, &got, &len), 0);
	assert_int_equal(len, sizeof(key) - 1);
	assert_memory_equal(got, key, len);
	assert_int_equal(got[len], '\0');
	secret_free(got, len);
	close(fd);
}

static void reads_an_empty_file_as_empty_text(void **state)
{
	char *got = NULL;
	size_t len = 1;
	int fd = file_with("", 0);

	assert_int_equal(secret_read_fd(fd, 4096, &got, NULL), 0);
	assert_string_equal(got, "");
	secret_free(got, 0);
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(secret_read_fd(fd, 4096, &got, &len), 0);
	assert_int_equal(len, 0);
	secret_free(got, len);
	close(fd);
}

static void takes_exactly_the_ceiling_and_refuses_one_byte_more(void **state)
{
	char data[101], *got = NULL, *untouched = (char *)(uintptr_t)0x1;
	size_t len = 7;
	int fd;

	memset(data, 's', sizeof(data));
	fd = file_with(data, 100);
	assert_int_equal(secret_read_fd(fd, 100, &got, &len), 0);
	assert_int_equal(len, 100);
	assert_memory_equal(got, data, 100);
	secret_free(got, len);
	close(fd);

	/* One more: -E2BIG, nothing written to the out-parameters, nothing leaked. */
	fd = file_with(data, 101);
	got = untouched;
	len = 7;
	assert_int_equal(secret_read_fd(fd, 100, &got, &len), -E2BIG);
	assert_ptr_equal(got, untouched);
	assert_int_equal(len, 7);
	close(fd);
}

/* A pipe has no size: the buffer starts at 4 KiB and grows, each old block wiped and freed. */
static void grows_for_what_fstat_does_not_size(void **state)
{
	char *got = NULL;
	size_t len = 0;
	int fd = pipe_with(20000);

	assert_int_equal(secret_read_fd(fd, 65536, &got, &len), 0);
	assert_int_equal(len, 20000);
	for (size_t i = 0; i < len; i++)
		if (got[i] != (char)('a' + i % 26))
			fail_msg("byte %zu is %d", i, got[i]);
	assert_int_equal(got[len], '\0');
	secret_free(got, len);
	close(fd);

	/* Grown up to the ceiling and past it: -E2BIG after several blocks, none leaked. */
	fd = pipe_with(20000);
	assert_int_equal(secret_read_fd(fd, 10000, &got, &len), -E2BIG);
	close(fd);
}

static void a_read_error_is_returned_and_frees_the_buffer(void **state)
{
	char *got = NULL;
	int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	/* A directory: fstat works (so the buffer exists), read fails. */
	assert_true(fd >= 0);
	assert_int_equal(secret_read_fd(fd, 4096, &got, NULL), -EISDIR);
	assert_null(got);
	close(fd);

	/* No descriptor at all: fstat fails first. */
	assert_int_equal(secret_read_fd(-1, 4096, &got, NULL), -EBADF);
	assert_null(got);
}

static void secret_free_takes_null(void **state)
{
	secret_free(NULL, 0);
	secret_free(NULL, 100);
}

/* The strings of v not all zero bytes, counted through arrays and objects. */
static int strings_left(struct json_object *v)
{
	int n = 0;

	switch (json_object_get_type(v)) {
	case json_type_string: {
		const char *s = json_object_get_string(v);

		for (int i = 0; i < json_object_get_string_len(v); i++)
			if (s[i]) {
				n++;
				break;
			}
		break;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(v); i++)
			n += strings_left(json_object_array_get_idx(v, i));
		break;
	case json_type_object: {
		json_object_object_foreach(v, key, val)
		{
			(void)key;
			n += strings_left(val);
		}
		break;
	}
	default:
		break;
	}
	return n;
}

/*
 * A stream of three documents: a kubeconfig whose secret is not in
 * users[].user (an auth-provider's config), a second one, and one that is
 * not a mapping (a file kube_config refuses as "not a mapping"). Every string
 * of every document is wiped, down to the deepest the parser accepts; keys and
 * numbers stay.
 */
static void wipes_every_string_of_every_document(void **state)
{
	static const char stream[] =
	    "users:\n- name: u\n  user:\n    auth-provider:\n      name: oidc\n"
	    "      config: {id-token: secret-one, refresh-token: secret-two}\n"
	    "    token: secret-three\n"
	    "---\nusers:\n- name: v\n  user: {password: secret-four, port: 443}\n"
	    "---\n- secret-five\n- [secret-six, {k: secret-seven}]\n";
	struct json_object *docs, *deep, *v;
	struct doc_err err = {{0}};
	char *text;
	size_t len = 0, cap = 8 * KANARY_MAX_DEPTH + 64;
	int depth;

	assert_int_equal(doc_parse_stream(stream, sizeof(stream) - 1, &docs, &err), 0);
	assert_int_equal(json_object_array_length(docs), 3);
	assert_int_equal(strings_left(docs), 10);
	secret_wipe_json(docs);
	assert_int_equal(strings_left(docs), 0);
	/* Keys and numbers stay. */
	v = json_object_array_get_idx(docs, 1);
	assert_true(json_object_object_get_ex(v, "users", &v));
	v = json_object_object_get(json_object_array_get_idx(v, 0), "user");
	assert_int_equal(json_object_get_int(json_object_object_get(v, "port")), 443);
	json_object_put(docs);

	/* As deep as the parser goes: a string inside KANARY_MAX_DEPTH - 1 flow sequences. */
	text = malloc(cap);
	assert_non_null(text);
	for (depth = 0; depth < KANARY_MAX_DEPTH - 1; depth++)
		text[len++] = '[';
	len += (size_t)snprintf(text + len, cap - len, "deep-secret");
	for (depth = 0; depth < KANARY_MAX_DEPTH - 1; depth++)
		text[len++] = ']';
	text[len] = '\0';
	if (doc_parse_stream(text, len, &deep, &err) != 0)
		fail_msg("the deepest stream the parser takes: %s", err.msg);
	assert_int_equal(strings_left(deep), 1);
	secret_wipe_json(deep);
	assert_int_equal(strings_left(deep), 0);
	json_object_put(deep);
	free(text);

	secret_wipe_json(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(reads_a_file_whole_and_terminates_it),
	    cmocka_unit_test(reads_an_empty_file_as_empty_text),
	    cmocka_unit_test(takes_exactly_the_ceiling_and_refuses_one_byte_more),
	    cmocka_unit_test(grows_for_what_fstat_does_not_size),
	    cmocka_unit_test(a_read_error_is_returned_and_frees_the_buffer),
	    cmocka_unit_test(secret_free_takes_null),
	    cmocka_unit_test(wipes_every_string_of_every_document),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
