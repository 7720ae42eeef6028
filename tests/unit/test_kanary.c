/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the Kanary model: reading, defaulting, validation. */
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
#include "common/doc.h"
#include "common/kanary.h"
#include "common/kerr.h"

#define HEAD "apiVersion: kanary.pyxida.io/v1alpha1\nkind: Kanary\nmetadata: {name: k}\n"

/* Reads the one document in yaml into a Kanary, validates it, and returns every error joined. */
static char *errors_of(const char *yaml, struct kanary **ret_k)
{
	struct json_object *docs;
	struct doc_err derr;
	struct kerr_list errs;
	struct kanary *k = NULL;
	struct buf b;
	char *text;

	assert_int_equal(doc_parse_stream(yaml, strlen(yaml), &docs, &derr), 0);
	assert_int_equal(json_object_array_length(docs), 1);
	kerr_init(&errs);
	assert_int_equal(kanary_from_json(json_object_array_get_idx(docs, 0), &k, &errs), 0);
	kanary_validate(k, &errs);
	buf_init(&b, 1 << 20);
	assert_int_equal(kerr_join(&errs, "\n", &b), 0);
	assert_int_equal(buf_steal(&b, &text, NULL), 0);
	buf_finish(&b);
	kerr_finish(&errs);
	json_object_put(docs);
	if (ret_k)
		*ret_k = k;
	else
		kanary_destroy(k);
	return text;
}

static void assert_errors(const char *yaml, const char *want)
{
	char *got = errors_of(yaml, NULL);

	if (strcmp(got, want) != 0)
		fail_msg("errors differ\n--- want\n%s\n--- got\n%s\n", want, got);
	free(got);
}

static void valid_kanary_is_read_whole(void **state)
{
	struct kanary *k;
	char *errs = errors_of("apiVersion: kanary.pyxida.io/v1alpha1\nkind: Kanary\n"
	                       "metadata:\n  name: k\n  namespace: shop\n  uid: u-1\n"
	                       "  generation: 4\n"
	                       "spec:\n  destination: myapp\n  port: 8080\n"
	                       "  proxy: {replicas: 3}\n  routes:\n"
	                       "  - backend: {serviceName: myapp-v1, servicePort: http}\n"
	                       "    weight: 80\n"
	                       "  - backend: {serviceName: myapp-v2, servicePort: 9090}\n"
	                       "    weight: 20\n",
	                       &k);
	char *summary;

	assert_string_equal(errs, "");
	assert_string_equal(k->namespace, "shop");
	assert_string_equal(k->name, "k");
	assert_string_equal(k->uid, "u-1");
	assert_int_equal(k->generation, 4);
	assert_string_equal(k->destination, "myapp");
	assert_true(k->port_set);
	assert_int_equal(k->port, 8080);
	assert_int_equal(k->replicas, 3);
	assert_int_equal(k->n_routes, 2);
	assert_true(k->routes[0].port.is_name);
	assert_string_equal(k->routes[0].port.name, "http");
	assert_false(k->routes[1].port.is_name);
	assert_int_equal(k->routes[1].port.number, 9090);
	assert_int_equal(kanary_summary(k, &summary), 0);
	assert_string_equal(summary, "myapp-v1=80,myapp-v2=20");
	free(summary);
	free(errs);
	kanary_destroy(k);
}

static void namespace_defaults_to_default(void **state)
{
	struct kanary *k;
	char *errs =
	    errors_of(HEAD "spec:\n  destination: d\n  routes:\n"
	                   "  - backend: {serviceName: a, servicePort: 80}\n    weight: 100\n",
	              &k);

	assert_string_equal(errs, "");
	assert_string_equal(k->namespace, "default");
	assert_false(k->port_set);
	assert_false(k->replicas_set);
	free(errs);
	kanary_destroy(k);
}

static void weights_must_sum_to_100(void **state)
{
	assert_errors(HEAD "spec:\n  destination: d\n  routes:\n"
	                   "  - backend: {serviceName: a, servicePort: 80}\n    weight: 90\n"
	                   "  - backend: {serviceName: b, servicePort: 80}\n    weight: 20\n",
	              "spec.routes: Invalid value: 110: the weights of all routes must sum to 100");
	assert_errors(HEAD "spec:\n  destination: d\n  routes:\n"
	                   "  - backend: {serviceName: a, servicePort: 80}\n    weight: 0\n",
	              "spec.routes: Invalid value: 0: the weights of all routes must sum to 100");
}

static void weights_must_be_integers_in_range(void **state)
{
	assert_errors(HEAD "spec:\n  destination: d\n  routes:\n"
	                   "  - backend: {serviceName: a, servicePort: 80}\n    weight: 120\n"
	                   "  - backend: {serviceName: b, servicePort: 80}\n    weight: -20\n",
	              "spec.routes[0].weight: Invalid value: 120: must be between 0 and 100\n"
	              "spec.routes[1].weight: Invalid value: -20: must be between 0 and 100");
	assert_errors(HEAD "spec:\n  destination: d\n  routes:\n"
	                   "  - backend: {serviceName: a, servicePort: 80}\n    weight: \"80\"\n"
	                   "  - backend: {serviceName: b, servicePort: 80}\n    weight: 20.5\n",
	              "spec.routes[0].weight: Invalid value: \"80\": must be an integer\n"
	              "spec.routes[1].weight: Invalid value: 20.5: must be an integer");
}

static void every_problem_is_reported_with_its_path(void **state)
{
	assert_errors(HEAD "spec:\n  destination: a\n  colour: blue\n  port: 0\n"
	                   "  proxy: {replicas: 0}\n  routes:\n"
	                   "  - backend: {serviceName: a, servicePort: Http}\n    weight: 50\n"
	                   "  - backend: {serviceName: a, servicePort: 70000}\n    weight: 50\n"
	                   "  - weight: 0\n",
	              "spec.colour: Forbidden: unknown field\n"
	              "spec.routes[2].backend: Required value\n"
	              "spec.destination: Invalid value: \"a\": must not name a backend Service "
	              "(spec.routes[0].backend.serviceName), or traffic would loop\n"
	              "spec.routes[0].backend.servicePort: Invalid value: \"Http\": must contain "
	              "only alpha-numeric characters (a-z, 0-9), and hyphens (-)\n"
	              "spec.routes[1].backend.serviceName: Duplicate value: \"a\": already the "
	              "backend of spec.routes[0]\n"
	              "spec.routes[1].backend.servicePort: Invalid value: 70000: must be between 1 "
	              "and 65535, inclusive\n"
	              "spec.port: Invalid value: 0: must be between 1 and 65535, inclusive\n"
	              "spec.proxy.replicas: Invalid value: 0: must be between 1 and 10");
}

static void missing_spec_and_fields_are_required(void **state)
{
	assert_errors(HEAD, "spec: Required value");
	assert_errors(HEAD "spec:\n  destination: null\n  routes:\n  - weight: null\n"
	                   "    backend: {serviceName: a, servicePort: null}\n",
	              "spec.destination: Required value\n"
	              "spec.routes[0].weight: Required value\n"
	              "spec.routes[0].backend.servicePort: Required value");
	assert_errors(HEAD "spec:\n  destination: d\n  routes: []\n",
	              "spec.routes: Required value: at least 1 route is required");
}

static void thousands_of_routes_give_one_error_not_thousands(void **state)
{
	struct buf y;
	char *got;

	buf_init(&y, 1 << 22);
	assert_int_equal(buf_puts(&y, HEAD "spec:\n  destination: d\n  routes:\n"), 0);
	for (int i = 0; i < 3000; i++)
		assert_int_equal(buf_printf(&y,
		                            "  - backend: {serviceName: s%d, servicePort: 80}\n"
		                            "    weight: 0\n",
		                            i),
		                 0);
	got = errors_of(y.data, NULL);
	assert_string_equal(got, "spec.routes: Too many: 3000: must have at most 16 items");
	free(got);
	buf_finish(&y);
}

static void names_follow_dns1035_and_iana(void **state)
{
	assert_true(kanary_is_dns1035_label("myapp-v1"));
	assert_false(kanary_is_dns1035_label("1app"));
	assert_false(kanary_is_dns1035_label("app-"));
	assert_false(kanary_is_dns1035_label("App"));
	assert_false(kanary_is_dns1035_label(""));
	assert_true(kanary_is_dns1035_label(
	    "a23456789012345678901234567890123456789012345678901234567890123"));
	assert_false(kanary_is_dns1035_label(
	    "a234567890123456789012345678901234567890123456789012345678901234"));
	assert_true(kanary_is_port_name("http"));
	assert_true(kanary_is_port_name("h2c-8080"));
	assert_false(kanary_is_port_name("8080"));
	assert_false(kanary_is_port_name("a--b"));
	assert_false(kanary_is_port_name("-a"));
	assert_false(kanary_is_port_name("abcdefghijklmnop"));
	assert_false(kanary_is_port_name(""));
}

static void only_our_group_is_a_kanary(void **state)
{
	struct json_object *o = json_tokener_parse(
	    "{\"apiVersion\": \"kanary.pyxida.io/v1alpha1\", \"kind\": \"Kanary\"}");
	struct json_object *other =
	    json_tokener_parse("{\"apiVersion\": \"example.com/v1\", \"kind\": \"Kanary\"}");

	assert_true(kanary_is_kanary(o));
	assert_false(kanary_is_kanary(other));
	json_object_put(o);
	json_object_put(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(valid_kanary_is_read_whole),
	    cmocka_unit_test(namespace_defaults_to_default),
	    cmocka_unit_test(weights_must_sum_to_100),
	    cmocka_unit_test(weights_must_be_integers_in_range),
	    cmocka_unit_test(every_problem_is_reported_with_its_path),
	    cmocka_unit_test(missing_spec_and_fields_are_required),
	    cmocka_unit_test(thousands_of_routes_give_one_error_not_thousands),
	    cmocka_unit_test(names_follow_dns1035_and_iana),
	    cmocka_unit_test(only_our_group_is_a_kanary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
