/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of backend resolution against Services and EndpointSlices. */
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
#include "common/kanary_check.h"
#include "common/doc.h"
#include "common/kanary.h"
#include "common/kerr.h"
#include "common/kobj.h"
#include "common/resolve.h"

static const char cluster[] =
    "apiVersion: v1\nkind: Service\nmetadata: {name: v1, namespace: shop}\n"
    "spec:\n  ports:\n  - {name: http, port: 80, targetPort: web}\n"
    "  - {name: udp, port: 53, protocol: UDP}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: v2, namespace: shop}\n"
    "spec:\n  ports:\n  - {port: 9090, targetPort: 9999}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: v3, namespace: shop}\n"
    "spec:\n  ports:\n  - {name: http, port: 81}\n"
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: v1, namespace: other}\n"
    "spec:\n  ports:\n  - {name: http, port: 80}\n"
    /* Two slices of v1; one pod in both, one not ready, one terminating, one FQDN. */
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: v1-a, namespace: shop, labels: {kubernetes.io/service-name: v1}}\n"
    "addressType: IPv4\nports:\n- {name: http, port: 8080}\n- {name: other, port: 7}\n"
    "endpoints:\n"
    "- addresses: [10.0.0.20]\n  conditions: {ready: true}\n"
    "  targetRef: {kind: Pod, name: pod-b}\n"
    "- addresses: [10.0.0.3]\n  targetRef: {kind: Pod, name: pod-a}\n"
    "- addresses: [10.0.0.4]\n  conditions: {ready: false}\n"
    "- addresses: [10.0.0.5]\n  conditions: {ready: true, terminating: true}\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: v1-b, namespace: shop, labels: {kubernetes.io/service-name: v1}}\n"
    "addressType: IPv4\nports:\n- {name: http, port: 8080}\n"
    "endpoints:\n- addresses: [10.0.0.20]\n- addresses: [not-an-ip]\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: v1-c, namespace: shop, labels: {kubernetes.io/service-name: v1}}\n"
    "addressType: FQDN\nports:\n- {name: http, port: 8080}\n"
    "endpoints:\n- addresses: [pod.example]\n"
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: v2-a, namespace: shop, labels: {kubernetes.io/service-name: v2}}\n"
    "addressType: IPv6\nports:\n- {port: 9999}\n"
    "endpoints:\n- addresses: ['fd00:0::1']\n- addresses: ['fd00::0:2']\n"
    /* A slice of another namespace's v1 must never be used for shop/v1. */
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
    "metadata: {name: v1-x, namespace: other, labels: {kubernetes.io/service-name: v1}}\n"
    "addressType: IPv4\nports:\n- {name: http, port: 8080}\n"
    "endpoints:\n- addresses: [10.9.9.9]\n"
    "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored}\n";

struct fixture {
	struct json_object *docs;
	struct catalog *cat;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct doc_err err;
	int added = 0;

	assert_non_null(f);
	assert_int_equal(doc_parse_stream(cluster, strlen(cluster), &f->docs, &err), 0);
	assert_int_equal(catalog_create(&f->cat), 0);
	for (size_t i = 0; i < json_object_array_length(f->docs); i++)
		added += catalog_add(f->cat, json_object_array_get_idx(f->docs, i), "default");
	assert_int_equal(added, 9); /* everything but the ConfigMap */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	catalog_destroy(f->cat);
	json_object_put(f->docs);
	free(f);
	return 0;
}

/* Checks a Kanary with these routes ("svc port weight" each) in namespace shop. */
static char *check(struct fixture *f, const char *routes, struct kanary **ret_k,
                   struct kanary_resolution *ret_res, unsigned *ret_defaulted)
{
	struct json_object *obj;
	struct kerr_list errs;
	struct buf b;
	char *text;

	buf_init(&b, 1 << 16);
	assert_int_equal(buf_printf(&b,
	                            "{\"apiVersion\": \"kanary.pyxida.io/v1alpha1\", \"kind\": "
	                            "\"Kanary\", \"metadata\": {\"name\": \"k\", \"namespace\": "
	                            "\"shop\"}, \"spec\": {\"destination\": \"front\", \"routes\": "
	                            "[%s]}}",
	                            routes),
	                 0);
	obj = json_tokener_parse(b.data);
	assert_non_null(obj);
	buf_reset(&b);
	kerr_init(&errs);
	assert_int_equal(kanary_check(obj, f->cat, KANARY_CHECK_REQUIRE_NAME, ret_k, ret_res,
	                              ret_defaulted, &errs),
	                 0);
	assert_int_equal(kerr_join(&errs, "\n", &b), 0);
	assert_int_equal(buf_steal(&b, &text, NULL), 0);
	kerr_finish(&errs);
	buf_finish(&b);
	json_object_put(obj);
	return text;
}

#define ROUTE(svc, port, w)                                                                        \
	"{\"backend\": {\"serviceName\": \"" svc "\", \"servicePort\": " port "}, \"weight\": " #w \
	"}"

static void ports_resolve_by_name_and_by_number(void **state)
{
	struct kanary_resolution res;
	struct kanary *k;
	unsigned d;
	char *errs =
	    check(*state, ROUTE("v1", "\"http\"", 80) "," ROUTE("v2", "9090", 20), &k, &res, &d);

	assert_string_equal(errs, "");
	assert_int_equal(res.n_routes, 2);
	assert_true(res.routes[0].port_found);
	assert_int_equal(res.routes[0].service_port, 80);
	assert_string_equal(res.routes[0].port_name, "http");
	assert_int_equal(res.routes[0].target_port, 8080); /* from the slice, not "web" */
	assert_int_equal(res.routes[1].service_port, 9090);
	assert_string_equal(res.routes[1].port_name, "");
	assert_int_equal(res.routes[1].target_port, 9999);
	/* Defaults: the first route's Service port number, and 2 proxies. */
	assert_int_equal(d, KANARY_DEFAULTED_PORT | KANARY_DEFAULTED_REPLICAS);
	assert_int_equal(k->port, 80);
	assert_int_equal(k->replicas, 2);
	kanary_resolution_finish(&res);
	kanary_destroy(k);
	free(errs);
}

static void only_ready_non_terminating_addresses_are_kept_sorted_once(void **state)
{
	struct kanary_resolution res;
	struct kanary *k;
	unsigned d;
	char *errs = check(*state, ROUTE("v1", "80", 50) "," ROUTE("v2", "9090", 50), &k, &res, &d);
	const struct kanary_resolved_route *r1 = &res.routes[0], *r2 = &res.routes[1];

	assert_string_equal(errs, "");
	assert_int_equal(r1->n_endpoints, 2);
	assert_string_equal(r1->endpoints[0].address, "10.0.0.3"); /* numeric order: 3 < 20 */
	assert_string_equal(r1->endpoints[0].name, "pod-a");
	assert_int_equal(r1->endpoints[0].port, 8080);
	assert_string_equal(r1->endpoints[1].address, "10.0.0.20");
	assert_int_equal(r2->n_endpoints, 2);
	assert_string_equal(r2->endpoints[0].address, "fd00::1"); /* canonical form */
	assert_string_equal(r2->endpoints[1].address, "fd00::2");
	assert_null(r2->endpoints[0].name);
	kanary_resolution_finish(&res);
	kanary_destroy(k);
	free(errs);
}

static void missing_services_and_ports_are_reported_per_route(void **state)
{
	struct kanary_resolution res;
	struct kanary *k;
	unsigned d;
	char *errs = check(*state,
	                   ROUTE("v1", "\"grpc\"", 25) "," ROUTE("v1x", "80", 25) "," ROUTE(
	                       "v2", "9091", 25) "," ROUTE("v1", "\"udp\"", 25),
	                   &k, &res, &d);

	/* Route 3 repeats v1: a duplicate, so it is not looked up a second time. */
	assert_string_equal(
	    errs, "spec.routes[3].backend.serviceName: Duplicate value: \"v1\": already "
	          "the backend of spec.routes[0]\n"
	          "spec.routes[0].backend.servicePort: Not found: \"grpc\": Service v1 has "
	          "no TCP port of that name\n"
	          "spec.routes[1].backend.serviceName: Not found: \"v1x\": no Service of "
	          "that name in namespace shop\n"
	          "spec.routes[2].backend.servicePort: Not found: 9091: Service v2 has no "
	          "TCP port with that number\n"
	          "spec.routes[3].backend.servicePort: Not found: \"udp\": Service v1 has "
	          "no TCP port of that name");
	assert_false(res.routes[1].service_found);
	assert_true(res.routes[0].service_found);
	assert_false(res.routes[0].port_found);
	/* No resolved first route: spec.port cannot be defaulted. */
	assert_int_equal(d, KANARY_DEFAULTED_REPLICAS);
	assert_false(k->port_set);
	kanary_resolution_finish(&res);
	kanary_destroy(k);
	free(errs);
}

static void a_service_without_slices_has_no_endpoints(void **state)
{
	struct kanary_resolution res;
	struct kanary *k;
	unsigned d;
	char *errs = check(*state, ROUTE("v3", "\"http\"", 100), &k, &res, &d);

	assert_string_equal(errs, "");
	assert_int_equal(res.routes[0].n_endpoints, 0);
	assert_int_equal(res.routes[0].target_port, 81); /* no targetPort: the port itself */
	kanary_resolution_finish(&res);
	kanary_destroy(k);
	free(errs);
}

static void endpoints_past_the_ceiling_are_an_error(void **state)
{
	struct json_object *slice, *eps, *obj;
	struct kanary_resolution res;
	struct kerr_list errs;
	struct catalog *cat;
	struct kanary *k;
	char addr[32];

	assert_int_equal(catalog_create(&cat), 0);
	obj = json_tokener_parse("{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": "
	                         "{\"name\": \"big\"}, \"spec\": {\"ports\": [{\"port\": 80}]}}");
	assert_int_equal(catalog_add(cat, obj, "default"), 1);
	json_object_put(obj);
	slice = json_tokener_parse("{\"apiVersion\": \"discovery.k8s.io/v1\", \"kind\": "
	                           "\"EndpointSlice\", \"metadata\": {\"name\": \"big-1\", "
	                           "\"labels\": {\"kubernetes.io/service-name\": \"big\"}}, "
	                           "\"addressType\": \"IPv4\", \"ports\": [{\"port\": 80}]}");
	eps = json_object_new_array();
	for (int i = 0; i < KANARY_MAX_ENDPOINTS + 1; i++) {
		struct json_object *ep = json_object_new_object(), *a = json_object_new_array();
		snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 250, i % 250 + 1);
		json_object_array_add(a, json_object_new_string(addr));
		json_object_object_add(ep, "addresses", a);
		json_object_array_add(eps, ep);
	}
	json_object_object_add(slice, "endpoints", eps);
	assert_int_equal(catalog_add(cat, slice, "default"), 1);
	json_object_put(slice);
	obj = json_tokener_parse(
	    "{\"apiVersion\": \"kanary.pyxida.io/v1alpha1\", \"kind\": "
	    "\"Kanary\", \"metadata\": {\"name\": \"k\"}, \"spec\": "
	    "{\"destination\": \"front\", \"routes\": [" ROUTE("big", "80", 100) "]}}");
	kerr_init(&errs);
	assert_int_equal(kanary_from_json(obj, &k, &errs), 0);
	assert_int_equal(kanary_resolve(k, cat, &res, &errs), -E2BIG);
	assert_int_equal(kerr_count(&errs), 1);
	assert_non_null(strstr(kerr_get(&errs, 0), "Too many: 4097"));
	kerr_finish(&errs);
	kanary_destroy(k);
	json_object_put(obj);
	catalog_destroy(cat);
}

static void later_services_replace_earlier_ones(void **state)
{
	struct catalog *cat;
	struct json_object *a = json_tokener_parse(
	    "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"s\"}}");
	struct json_object *b = json_tokener_parse(
	    "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"s\"}, "
	    "\"spec\": {\"ports\": [{\"port\": 80}]}}");

	assert_int_equal(catalog_create(&cat), 0);
	assert_int_equal(catalog_add(cat, a, "ns"), 1);
	assert_int_equal(catalog_add(cat, b, "ns"), 1);
	/* b's record, the only one with a port */
	assert_non_null(catalog_service(cat, "ns", "s"));
	assert_int_equal(catalog_service(cat, "ns", "s")->n_ports, 1);
	assert_null(catalog_service(cat, "default", "s"));
	catalog_destroy(cat);
	catalog_destroy(NULL);
	json_object_put(a);
	json_object_put(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ports_resolve_by_name_and_by_number),
	    cmocka_unit_test(only_ready_non_terminating_addresses_are_kept_sorted_once),
	    cmocka_unit_test(missing_services_and_ports_are_reported_per_route),
	    cmocka_unit_test(a_service_without_slices_has_no_endpoints),
	    cmocka_unit_test(endpoints_past_the_ceiling_are_an_error),
	    cmocka_unit_test(later_services_replace_earlier_ones),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
