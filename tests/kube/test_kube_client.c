/* SPDX-License-Identifier: Apache-2.0 */
/* The pure parts of the client: paths, queries, and errors decoded from metav1.Status. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
