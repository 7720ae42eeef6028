/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client: paths, queries, errors decoded from metav1.Status, and what it
 * sends with a bearer token (to a loopback listener of this test's own).
 */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "common/buf.h"
#include "common/kube/client.h"
#include "common/limits.h"

static void test_paths(void **state)
{
	char p[KANARY_MAX_URL];

	assert_int_equal(kube_path(p, sizeof(p), NULL, "v1", "pods", NULL, NULL, NULL), 0);
	assert_string_equal(p, "/api/v1/pods");
	assert_int_equal(kube_path(p, sizeof(p), "", "v1", "configmaps", "ns", "cm", NULL), 0);
	assert_string_equal(p, "/api/v1/namespaces/ns/configmaps/cm");
	assert_int_equal(kube_path(p, sizeof(p), "kanary.pyxida.io", "v1alpha1", "kanaries", "team",
	                           "web", "status"),
	                 0);
	assert_string_equal(p,
	                    "/apis/kanary.pyxida.io/v1alpha1/namespaces/team/kanaries/web/status");
	assert_int_equal(kube_path(p, sizeof(p), "rbac.authorization.k8s.io", "v1", "clusterroles",
	                           NULL, "system:controller:x", NULL),
	                 0);
	assert_string_equal(
	    p, "/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Acontroller%3Ax");
	/* Segments are escaped, so a name cannot walk the path or add a query. */
	assert_int_equal(kube_path(p, sizeof(p), NULL, "v1", "pods", "ns", "a/b?c", NULL), 0);
	assert_string_equal(p, "/api/v1/namespaces/ns/pods/a%2Fb%3Fc");
	assert_int_equal(kube_path(p, sizeof(p), NULL, "v1", "pods", "ns", "..", NULL), -EINVAL);
	assert_int_equal(kube_path(p, sizeof(p), NULL, "v1", "pods", "", "x", NULL), -EINVAL);
	assert_int_equal(kube_path(p, sizeof(p), NULL, "v1", "pods", "ns", NULL, "status"),
	                 -EINVAL);
	assert_int_equal(kube_path(p, 12, NULL, "v1", "configmaps", NULL, NULL, NULL), -E2BIG);
	/* Exactly fitting (with its NUL) is fine. */
	assert_int_equal(kube_path(p, 13, NULL, "v1", "pods", NULL, NULL, NULL), 0);
}

static void test_query_values_are_escaped(void **state)
{
	struct buf q;

	buf_init(&q, KANARY_MAX_URL);
	assert_int_equal(kube_query_add(&q, "labelSelector", "app in (a,b),tier!=db"), 0);
	assert_int_equal(kube_query_add(&q, "continue", "eyJ2Ijo+/=="), 0);
	assert_int_equal(kube_query_add(&q, "fieldManager", "kanary"), 0);
	assert_string_equal(q.data, "labelSelector=app%20in%20%28a%2Cb%29%2Ctier%21%3Ddb"
	                            "&continue=eyJ2Ijo%2B%2F%3D%3D&fieldManager=kanary");
	buf_finish(&q);
}

static int decode(const char *body, int http, struct kube_result *res)
{
	struct json_object *o = body ? json_tokener_parse(body) : NULL;
	int r;

	r = kube_result_from_status(o, http, res);
	json_object_put(o);
	return r;
}

static void test_status_reasons(void **state)
{
	static const struct {
		const char *reason;
		int code;
		enum kube_reason want;
		int err;
	} cases[] = {
	    {"NotFound", 404, KUBE_REASON_NOT_FOUND, -ENOENT},
	    {"AlreadyExists", 409, KUBE_REASON_ALREADY_EXISTS, -EEXIST},
	    {"Conflict", 409, KUBE_REASON_CONFLICT, -EBUSY},
	    {"Gone", 410, KUBE_REASON_GONE, -ESTALE},
	    {"Expired", 410, KUBE_REASON_GONE, -ESTALE},
	    {"Forbidden", 403, KUBE_REASON_FORBIDDEN, -EACCES},
	    {"Unauthorized", 401, KUBE_REASON_UNAUTHORIZED, -EPERM},
	    {"Invalid", 422, KUBE_REASON_INVALID, -EINVAL},
	    {"BadRequest", 400, KUBE_REASON_BAD_REQUEST, -EINVAL},
	    {"TooManyRequests", 429, KUBE_REASON_TOO_MANY_REQUESTS, -EAGAIN},
	    {"Timeout", 504, KUBE_REASON_TIMEOUT, -ETIMEDOUT},
	    {"ServerTimeout", 500, KUBE_REASON_TIMEOUT, -ETIMEDOUT},
	    {"InternalError", 500, KUBE_REASON_INTERNAL, -EIO},
	    {"ServiceUnavailable", 503, KUBE_REASON_SERVICE_UNAVAILABLE, -EIO},
	    {"SomethingNew", 418, KUBE_REASON_UNKNOWN, -EIO},
	    {"", 404, KUBE_REASON_NOT_FOUND, -ENOENT},
	};
	struct kube_result res;
	char body[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(body, sizeof(body),
		         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
		         "\"message\":\"m%zu\",\"reason\":\"%s\",\"code\":%d}",
		         i, cases[i].reason, cases[i].code);
		assert_int_equal(decode(body, cases[i].code, &res), cases[i].err);
		assert_int_equal(res.reason, cases[i].want);
		assert_int_equal(res.http_status, cases[i].code);
		assert_int_equal(strncmp(res.message, "m", 1), 0);
	}
}

static void test_status_retry_after(void **state)
{
	struct kube_result res;

	assert_int_equal(decode("{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":"
	                        "\"TooManyRequests\",\"code\":429,\"message\":\"slow down\","
	                        "\"details\":{\"retryAfterSeconds\":7}}",
	                        429, &res),
	                 -EAGAIN);
	assert_int_equal(res.retry_after_s, 7);
	assert_string_equal(res.message, "slow down");
}

/* Without a Status body (a proxy's HTML, nothing at all) the code decides. */
static void test_status_missing(void **state)
{
	struct kube_result res;

	assert_int_equal(decode(NULL, 503, &res), -EIO);
	assert_int_equal(res.reason, KUBE_REASON_SERVICE_UNAVAILABLE);
	assert_int_equal(decode("{\"kind\":\"Pod\"}", 404, &res), -ENOENT);
	assert_int_equal(res.reason, KUBE_REASON_NOT_FOUND);
	assert_true(strlen(res.message) > 0);
	/* A Failure Status must never read as success, whatever its code says. */
	assert_int_equal(
	    decode("{\"kind\":\"Status\",\"status\":\"Failure\",\"code\":200}", 0, &res), -EIO);
	assert_int_equal(res.reason, KUBE_REASON_UNKNOWN);
}

static void test_status_long_message_is_marked(void **state)
{
	struct kube_result res;
	struct buf b;

	buf_init(&b, 1 << 16);
	assert_int_equal(buf_puts(&b, "{\"kind\":\"Status\",\"reason\":\"Invalid\",\"code\":422,"
	                              "\"message\":\""),
	                 0);
	for (int i = 0; i < 3000; i++)
		assert_int_equal(buf_puts(&b, "x"), 0);
	assert_int_equal(buf_puts(&b, "\"}"), 0);
	assert_int_equal(decode(b.data, 422, &res), -EINVAL);
	assert_int_equal(strlen(res.message), sizeof(res.message) - 1);
	assert_string_equal(res.message + sizeof(res.message) - 4, "...");
	buf_finish(&b);
}

static void test_reason_names(void **state)
{
	assert_string_equal(kube_reason_name(KUBE_REASON_CONFLICT), "Conflict");
	assert_string_equal(kube_reason_name(KUBE_REASON_TRANSPORT), "Transport");
	assert_string_equal(kube_reason_name((enum kube_reason)999), "Unknown");
	assert_int_equal(kube_reason_errno(KUBE_REASON_NONE), 0);
}

/* ---- the bearer token on the wire and in libcurl's memory ---- */

#define TOKEN "kanary-test-token-5f0c9a7e1d"

/*
 * Every block libcurl makes with its strdup (curl_slist_append copies each
 * header line so) is remembered; when libcurl frees one that still holds the
 * token, that is a copy of the secret left in freed memory.
 */
#define TRACKED_MAX 4096
static struct {
	pthread_mutex_t lock;
	void *blocks[TRACKED_MAX];
	size_t n;
	unsigned long with_token; /* strdup'd blocks that held the token when made */
	unsigned long freed_with_token;
} tracked = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *t_malloc(size_t size)
{
	return malloc(size);
}

static void *t_calloc(size_t n, size_t size)
{
	return calloc(n, size);
}

static void *t_realloc(void *p, size_t size)
{
	return realloc(p, size);
}

static char *t_strdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		return NULL;
	pthread_mutex_lock(&tracked.lock);
	if (tracked.n < TRACKED_MAX)
		tracked.blocks[tracked.n++] = p;
	if (strstr(p, TOKEN))
		tracked.with_token++;
	pthread_mutex_unlock(&tracked.lock);
	return p;
}

static void t_free(void *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&tracked.lock);
	for (size_t i = 0; i < tracked.n; i++) {
		if (tracked.blocks[i] == p) {
			if (strstr(p, TOKEN))
				tracked.freed_with_token++;
			tracked.blocks[i] = tracked.blocks[--tracked.n];
			break;
		}
	}
	pthread_mutex_unlock(&tracked.lock);
	free(p);
}

/*
 * A plain-HTTP listener on 127.0.0.1 that answers every request with 200 {}
 * and keeps the last request's head and a count, so a test sees exactly what
 * the client sent. It stands in for nothing the API server does.
 */
static struct {
	int fd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;
	unsigned long requests;
	char last[8192];
} sink = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static void sink_conn(int c)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                             "Content-Length: 2\r\n\r\n{}";
	char head[8192];
	size_t len = 0;
	ssize_t n;
	char *end;

	for (;;) {
		n = recv(c, head + len, sizeof(head) - 1 - len, 0);
		if (n <= 0)
			return;
		len += (size_t)n;
		head[len] = '\0';
		while ((end = strstr(head, "\r\n\r\n"))) {
			size_t used = (size_t)(end + 4 - head);

			pthread_mutex_lock(&sink.lock);
			memcpy(sink.last, head, used);
			sink.last[used] = '\0';
			sink.requests++;
			pthread_mutex_unlock(&sink.lock);
			if (send(c, answer, sizeof(answer) - 1, MSG_NOSIGNAL) < 0)
				return;
			memmove(head, head + used, len - used + 1);
			len -= used;
		}
		if (len == sizeof(head) - 1)
			return;
	}
}

static void *sink_serve(void *arg)
{
	int c = (int)(intptr_t)arg;

	sink_conn(c);
	close(c);
	return NULL;
}

/*
 * Each connection on a thread of its own: a stray client of the machine
 * that happens to connect to this ephemeral port (a retrying client of a
 * server that had it before) must not hold up the test's requests.
 */
static void *sink_main(void *arg)
{
	int c;

	(void)arg;
	while ((c = accept(sink.fd, NULL, NULL)) >= 0) {
		pthread_t t;

		if (pthread_create(&t, NULL, sink_serve, (void *)(intptr_t)c) != 0) {
			close(c);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

static int sink_start(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);

	sink.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sink.fd < 0 || bind(sink.fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(sink.fd, 8) < 0 || getsockname(sink.fd, (struct sockaddr *)&a, &alen) < 0)
		return -1;
	sink.port = ntohs(a.sin_port);
	return pthread_create(&sink.thread, NULL, sink_main, NULL) == 0 ? 0 : -1;
}

static int sink_stop(void **state)
{
	/* Wakes the blocked accept; the client's connection is closed by then. */
	shutdown(sink.fd, SHUT_RDWR);
	pthread_join(sink.thread, NULL);
	close(sink.fd);
	return 0;
}

static unsigned long sink_requests(char *last, size_t size)
{
	unsigned long n;

	pthread_mutex_lock(&sink.lock);
	n = sink.requests;
	if (last)
		snprintf(last, size, "%s", sink.last);
	pthread_mutex_unlock(&sink.lock);
	return n;
}

/* A kubeconfig naming the sink over http:// with the token, loaded with or without the option. */
static int load_http_config(bool allow, struct kube_config **ret, struct kube_config_err *err)
{
	const struct kube_config_options o = {.kubeconfig = NULL, .allow_http_token = allow};
	char path[] = "/tmp/kanary-client-test.XXXXXX";
	struct kube_config_options with_path = o;
	FILE *f;
	int fd, r;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f,
	        "current-context: x\n"
	        "clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:%d\n"
	        "users:\n- name: u\n  user:\n    token: " TOKEN "\n"
	        "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n",
	        sink.port);
	assert_int_equal(fclose(f), 0);
	with_path.kubeconfig = path;
	r = kube_config_load_options(&with_path, ret, err);
	unlink(path);
	return r;
}

/*
 * Over plain http:// the token goes out only with the option; a config that
 * says no (kube_config refuses to load one, so the test flips the flag) is
 * stopped before any byte is sent.
 */
static void test_token_over_http_only_when_allowed(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg = NULL;
	struct kube_client *c = NULL;
	struct kube_result res;
	char last[8192];
	unsigned long before;

	assert_int_equal(load_http_config(false, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "plain http://"));
	assert_non_null(strstr(err.msg, "--insecure-allow-http-token"));

	if (load_http_config(true, &cfg, &err) < 0)
		fail_msg("load: %s", err.msg);
	assert_int_equal(kube_client_create(cfg, NULL, &c), 0);
	before = sink_requests(NULL, 0);
	assert_int_equal(kube_get(c, "/api/v1/namespaces/default", NULL, &res), 0);
	assert_int_equal(sink_requests(last, sizeof(last)), before + 1);
	assert_non_null(strstr(last, "\r\nAuthorization: Bearer " TOKEN "\r\n"));

	cfg->allow_http_token = false;
	assert_int_equal(kube_get(c, "/api/v1/namespaces/default", NULL, &res), -EINVAL);
	assert_int_equal(res.reason, KUBE_REASON_CLIENT);
	assert_non_null(strstr(res.message, "plain http://"));
	assert_int_equal(sink_requests(NULL, 0), before + 1);
	kube_client_destroy(c);
	kube_config_destroy(cfg);
}

/*
 * libcurl's copy of the Authorization line (curl_slist_append strdups it) is
 * wiped before the list is freed, request after request, streams included.
 */
static void test_header_copies_of_the_token_are_wiped(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg = NULL;
	struct kube_client *c = NULL;
	struct kube_result res;
	const struct kube_request post = {
	    .method = KUBE_POST, .path = "/api/v1/namespaces", .body = "{}", .body_len = 2};
	unsigned long made;

	if (load_http_config(true, &cfg, &err) < 0)
		fail_msg("load: %s", err.msg);
	assert_int_equal(kube_client_create(cfg, NULL, &c), 0);
	pthread_mutex_lock(&tracked.lock);
	made = tracked.with_token;
	pthread_mutex_unlock(&tracked.lock);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(kube_get(c, "/api/v1/namespaces/default", NULL, &res), 0);
		assert_int_equal(kube_request(c, &post, NULL, &res), 0);
	}
	kube_client_destroy(c);
	kube_config_destroy(cfg);
	pthread_mutex_lock(&tracked.lock);
	/* The tracking saw the copies (10 requests, one header list each) ... */
	assert_true(tracked.with_token - made >= 10);
	/* ... and not one was freed still holding the token. */
	assert_int_equal(tracked.freed_with_token, 0);
	pthread_mutex_unlock(&tracked.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths),
	    cmocka_unit_test(test_query_values_are_escaped),
	    cmocka_unit_test(test_status_reasons),
	    cmocka_unit_test(test_status_retry_after),
	    cmocka_unit_test(test_status_missing),
	    cmocka_unit_test(test_status_long_message_is_marked),
	    cmocka_unit_test(test_reason_names),
	    cmocka_unit_test(test_token_over_http_only_when_allowed),
	    cmocka_unit_test(test_header_copies_of_the_token_are_wiped),
	};
	int r;

	/* Before anything starts libcurl: its strdup and free are the tracking ones. */
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, t_malloc, t_free, t_realloc, t_strdup,
	                         t_calloc) != CURLE_OK)
		return 1;
	r = cmocka_run_group_tests(tests, sink_start, sink_stop);
	curl_global_cleanup();
	return r;
}
