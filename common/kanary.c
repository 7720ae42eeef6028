/* SPDX-License-Identifier: Apache-2.0 */
/* The Kanary model: reading one from JSON, defaulting it, checking what needs no lookup. */
#include "common/kanary.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/kerr.h"

/* Field paths are built from fixed keys and small indices; this is plenty. */
#define PATH_MAX_LEN 96

static const char dns1035_msg[] =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

bool kanary_is_dns1035_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > KANARY_MAX_DNS_LABEL)
		return false;
	if (!(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return s[n - 1] != '-';
}

/* The API server's IsValidPortName, one message per broken rule. */
static void port_name_problems(const char *s, const char *path, struct kerr_list *errs)
{
	size_t n = strlen(s);
	bool letter = false, alnum_dash = true;

	if (n == 0 || n > KANARY_MAX_PORT_NAME)
		kerr_invalid_str(errs, path, s, "must be no more than 15 characters");
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'a' && c <= 'z')
			letter = true;
		else if (!((c >= '0' && c <= '9') || c == '-'))
			alnum_dash = false;
	}
	if (!alnum_dash)
		kerr_invalid_str(
		    errs, path, s,
		    "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
	if (n > 0 && strstr(s, "--"))
		kerr_invalid_str(errs, path, s, "must not contain consecutive hyphens");
	if (!letter)
		kerr_invalid_str(errs, path, s, "must contain at least one letter (a-z)");
	if (n > 0 && (s[0] == '-' || s[n - 1] == '-'))
		kerr_invalid_str(errs, path, s, "must not begin or end with a hyphen");
}

bool kanary_is_port_name(const char *s)
{
	struct kerr_list l;
	bool ok;

	kerr_init(&l);
	port_name_problems(s, "", &l);
	ok = !kerr_any(&l);
	kerr_finish(&l);
	return ok;
}

bool kanary_is_kanary(const struct json_object *obj)
{
	struct json_object *v;
	const char *av;

	if (!json_object_is_type(obj, json_type_object))
		return false;
	if (!json_object_object_get_ex(obj, "kind", &v) ||
	    !json_object_is_type(v, json_type_string))
		return false;
	if (strcmp(json_object_get_string(v), KANARY_KIND) != 0)
		return false;
	if (!json_object_object_get_ex(obj, "apiVersion", &v) ||
	    !json_object_is_type(v, json_type_string))
		return false;
	av = json_object_get_string(v);
	return strncmp(av, KANARY_GROUP "/", strlen(KANARY_GROUP) + 1) == 0;
}

/* A short rendering of a value of the wrong type, for the error text. */
static void value_repr(const struct json_object *v, char *out, size_t size)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		snprintf(out, size, "null");
		break;
	case json_type_boolean:
		snprintf(out, size, "%s", json_object_get_boolean(v) ? "true" : "false");
		break;
	case json_type_double: {
		double d = json_object_get_double(v);
		if (isfinite(d))
			snprintf(out, size, "%.17g", d);
		else
			snprintf(out, size, "%s", isnan(d) ? "NaN" : (d > 0 ? "+Inf" : "-Inf"));
		break;
	}
	case json_type_int:
		snprintf(out, size, "%" PRId64, json_object_get_int64(v));
		break;
	case json_type_string:
		kerr_fmt_str(out, size, json_object_get_string((struct json_object *)v));
		break;
	case json_type_object:
		snprintf(out, size, "{...}");
		break;
	case json_type_array:
		snprintf(out, size, "[...](%zu items)", json_object_array_length(v));
		break;
	}
}

static void type_error(struct kerr_list *errs, const char *path, const struct json_object *v,
                       const char *want)
{
	char repr[KANARY_MAX_ERROR_VALUE * 4 + 48];

	value_repr(v, repr, sizeof(repr));
	kerr_add(errs, KERR_INVALID, path, repr, "must be %s", want);
}

/* Reports keys of obj not in allowed (a NULL-terminated list), under prefix. */
static void unknown_fields(const struct json_object *obj, const char *prefix,
                           const char *const *allowed, struct kerr_list *errs)
{
	char path[PATH_MAX_LEN + 80];

	json_object_object_foreach((struct json_object *)obj, key, val)
	{
		const char *const *a;
		(void)val;
		for (a = allowed; *a; a++)
			if (strcmp(key, *a) == 0)
				break;
		if (*a)
			continue;
		snprintf(path, sizeof(path), "%s.%.64s%s", prefix, key,
		         strlen(key) > 64 ? "..." : "");
		kerr_add(errs, KERR_FORBIDDEN, path, NULL, "unknown field");
	}
}

/*
 * Reads a string field. Absent or null (the API server treats both alike):
 * *ret stays NULL, reported as Required when required. Wrong type: reported.
 * Returns 0, or -ENOMEM.
 */
static int get_string(const struct json_object *obj, const char *key, const char *path,
                      bool required, char **ret, struct kerr_list *errs)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !v) {
		if (required)
			kerr_required(errs, path);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string)) {
		type_error(errs, path, v, "a string");
		return 0;
	}
	*ret = strdup(json_object_get_string(v));
	return *ret ? 0 : -ENOMEM;
}

/* Reads an integer field into *ret, setting *ret_set; like get_string otherwise. */
static void get_int(const struct json_object *obj, const char *key, const char *path, bool required,
                    int64_t *ret, bool *ret_set, struct kerr_list *errs)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !v) {
		if (required)
			kerr_required(errs, path);
		return;
	}
	if (!json_object_is_type(v, json_type_int)) {
		type_error(errs, path, v, "an integer");
		return;
	}
	*ret = json_object_get_int64(v);
	*ret_set = true;
}

static int route_from_json(const struct json_object *obj, size_t i, struct kanary_route *r,
                           struct kerr_list *errs)
{
	static const char *const route_keys[] = {"backend", "weight", NULL};
	static const char *const backend_keys[] = {"serviceName", "servicePort", NULL};
	char path[PATH_MAX_LEN], sub[PATH_MAX_LEN + 32];
	struct json_object *backend, *port;
	int ret;

	snprintf(path, sizeof(path), "spec.routes[%zu]", i);
	if (!json_object_is_type(obj, json_type_object)) {
		type_error(errs, path, obj, "an object");
		return 0;
	}
	unknown_fields(obj, path, route_keys, errs);

	snprintf(sub, sizeof(sub), "%s.weight", path);
	get_int(obj, "weight", sub, true, &r->weight, &r->weight_set, errs);

	snprintf(sub, sizeof(sub), "%s.backend", path);
	if (!json_object_object_get_ex(obj, "backend", &backend) || !backend) {
		kerr_required(errs, sub);
		return 0;
	}
	if (!json_object_is_type(backend, json_type_object)) {
		type_error(errs, sub, backend, "an object");
		return 0;
	}
	unknown_fields(backend, sub, backend_keys, errs);

	snprintf(sub, sizeof(sub), "%s.backend.serviceName", path);
	ret = get_string(backend, "serviceName", sub, true, &r->service_name, errs);
	if (ret < 0)
		return ret;

	snprintf(sub, sizeof(sub), "%s.backend.servicePort", path);
	if (!json_object_object_get_ex(backend, "servicePort", &port) || !port) {
		kerr_required(errs, sub);
		return 0;
	}
	if (json_object_is_type(port, json_type_int)) {
		r->port.number = json_object_get_int64(port);
		r->port.set = true;
	} else if (json_object_is_type(port, json_type_string)) {
		r->port.name = strdup(json_object_get_string(port));
		if (!r->port.name)
			return -ENOMEM;
		r->port.is_name = true;
		r->port.set = true;
	} else {
		type_error(errs, sub, port, "an integer port number or a port name");
	}
	return 0;
}

static int spec_from_json(const struct json_object *spec, struct kanary *k, struct kerr_list *errs)
{
	static const char *const spec_keys[] = {"destination", "routes", "port", "proxy", NULL};
	static const char *const proxy_keys[] = {"replicas", NULL};
	struct json_object *routes, *proxy;
	size_t n;
	int r;

	unknown_fields(spec, "spec", spec_keys, errs);
	r = get_string(spec, "destination", "spec.destination", true, &k->destination, errs);
	if (r < 0)
		return r;
	get_int(spec, "port", "spec.port", false, &k->port, &k->port_set, errs);

	if (json_object_object_get_ex(spec, "proxy", &proxy) && proxy) {
		if (json_object_is_type(proxy, json_type_object)) {
			unknown_fields(proxy, "spec.proxy", proxy_keys, errs);
			get_int(proxy, "replicas", "spec.proxy.replicas", false, &k->replicas,
			        &k->replicas_set, errs);
		} else {
			type_error(errs, "spec.proxy", proxy, "an object");
		}
	}

	if (!json_object_object_get_ex(spec, "routes", &routes) || !routes) {
		kerr_required(errs, "spec.routes");
		return 0;
	}
	if (!json_object_is_type(routes, json_type_array)) {
		type_error(errs, "spec.routes", routes, "a list");
		return 0;
	}
	n = json_object_array_length(routes);
	k->n_routes_seen = n;
	if (n == 0)
		kerr_add(errs, KERR_REQUIRED, "spec.routes", NULL, "at least 1 route is required");
	if (n > KANARY_MAX_ROUTES) {
		/* Reading past the ceiling would only repeat the same message per route. */
		kerr_add(errs, KERR_TOO_MANY, "spec.routes", NULL,
		         "%zu: must have at most %d items", n, KANARY_MAX_ROUTES);
		n = KANARY_MAX_ROUTES;
	}
	for (size_t i = 0; i < n; i++) {
		r = route_from_json(json_object_array_get_idx(routes, i), i, &k->routes[i], errs);
		k->n_routes = i + 1;
		if (r < 0)
			return r;
	}
	return 0;
}

int kanary_from_json(const struct json_object *obj, struct kanary **ret, struct kerr_list *errs)
{
	struct json_object *meta, *spec, *v;
	struct kanary *k;
	int r = 0;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	if (!json_object_is_type(obj, json_type_object)) {
		type_error(errs, "<root>", obj, "an object");
		goto out_default_ns;
	}
	if (json_object_object_get_ex(obj, "metadata", &meta) &&
	    json_object_is_type(meta, json_type_object)) {
		r = get_string(meta, "name", "metadata.name", false, &k->name, errs);
		if (r == 0)
			r = get_string(meta, "namespace", "metadata.namespace", false,
			               &k->namespace, errs);
		if (r == 0)
			r = get_string(meta, "uid", "metadata.uid", false, &k->uid, errs);
		if (r < 0)
			goto out_destroy;
		if (json_object_object_get_ex(meta, "generation", &v) &&
		    json_object_is_type(v, json_type_int))
			k->generation = json_object_get_int64(v);
	}
	if (!json_object_object_get_ex(obj, "spec", &spec) || !spec) {
		kerr_required(errs, "spec");
	} else if (!json_object_is_type(spec, json_type_object)) {
		type_error(errs, "spec", spec, "an object");
	} else {
		r = spec_from_json(spec, k, errs);
		if (r < 0)
			goto out_destroy;
	}
out_default_ns:
	if (!k->namespace || !k->namespace[0]) {
		free(k->namespace);
		k->namespace = strdup("default");
		if (!k->namespace) {
			r = -ENOMEM;
			goto out_destroy;
		}
	}
	*ret = k;
	return 0;

out_destroy:
	kanary_destroy(k);
	return r;
}

void kanary_destroy(struct kanary *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n_routes; i++) {
		free(k->routes[i].service_name);
		free(k->routes[i].port.name);
	}
	free(k->namespace);
	free(k->name);
	free(k->uid);
	free(k->destination);
	free(k);
}

static void check_dns1035(const char *s, const char *path, struct kerr_list *errs)
{
	if (strlen(s) > KANARY_MAX_DNS_LABEL)
		kerr_invalid_str(errs, path, s, "must be no more than 63 characters");
	else if (!kanary_is_dns1035_label(s))
		kerr_invalid_str(errs, path, s, "%s", dns1035_msg);
}

static void validate_route(const struct kanary *k, size_t i, struct kerr_list *errs)
{
	const struct kanary_route *r = &k->routes[i];
	char path[PATH_MAX_LEN];

	snprintf(path, sizeof(path), "spec.routes[%zu].backend.serviceName", i);
	if (r->service_name) {
		check_dns1035(r->service_name, path, errs);
		for (size_t j = 0; j < i; j++) {
			if (k->routes[j].service_name &&
			    strcmp(k->routes[j].service_name, r->service_name) == 0) {
				char value[KANARY_MAX_ERROR_VALUE * 4 + 48];
				kerr_fmt_str(value, sizeof(value), r->service_name);
				kerr_add(errs, KERR_DUPLICATE, path, value,
				         "already the backend of spec.routes[%zu]", j);
				break;
			}
		}
	}

	snprintf(path, sizeof(path), "spec.routes[%zu].backend.servicePort", i);
	if (r->port.set && r->port.is_name)
		port_name_problems(r->port.name, path, errs);
	else if (r->port.set && (r->port.number < 1 || r->port.number > 65535))
		kerr_invalid_int(errs, path, r->port.number,
		                 "must be between 1 and 65535, inclusive");

	snprintf(path, sizeof(path), "spec.routes[%zu].weight", i);
	if (r->weight_set && (r->weight < 0 || r->weight > KANARY_MAX_WEIGHT))
		kerr_invalid_int(errs, path, r->weight, "must be between 0 and %d",
		                 KANARY_MAX_WEIGHT);
}

void kanary_validate(const struct kanary *k, struct kerr_list *errs)
{
	bool sum_known = true;
	int64_t sum = 0;

	if (k->destination)
		check_dns1035(k->destination, "spec.destination", errs);

	for (size_t i = 0; k->destination && i < k->n_routes; i++) {
		if (k->routes[i].service_name &&
		    strcmp(k->destination, k->routes[i].service_name) == 0) {
			kerr_invalid_str(
			    errs, "spec.destination", k->destination,
			    "must not name a backend Service (spec.routes[%zu].backend."
			    "serviceName), or traffic would loop",
			    i);
			break;
		}
	}

	for (size_t i = 0; i < k->n_routes; i++) {
		const struct kanary_route *r = &k->routes[i];
		validate_route(k, i, errs);
		if (!r->weight_set || r->weight < 0 || r->weight > KANARY_MAX_WEIGHT)
			sum_known = false;
		else
			sum += r->weight;
	}
	/*
	 * The sum only means something when every weight was read and in range.
	 * Weights of 0..100 that sum to 100 always include one above 0, so that
	 * rule (at least one route above 0) needs no check of its own.
	 */
	if (k->n_routes > 0 && k->n_routes_seen <= KANARY_MAX_ROUTES && sum_known &&
	    sum != KANARY_WEIGHT_TOTAL)
		kerr_invalid_int(errs, "spec.routes", sum,
		                 "the weights of all routes must sum to %d", KANARY_WEIGHT_TOTAL);

	if (k->port_set && (k->port < 1 || k->port > 65535))
		kerr_invalid_int(errs, "spec.port", k->port,
		                 "must be between 1 and 65535, inclusive");
	if (k->replicas_set && (k->replicas < 1 || k->replicas > KANARY_MAX_REPLICAS))
		kerr_invalid_int(errs, "spec.proxy.replicas", k->replicas,
		                 "must be between 1 and %d", KANARY_MAX_REPLICAS);
}

int kanary_summary(const struct kanary *k, char **ret)
{
	struct buf b;
	int r = 0;

	buf_init(&b, 4096);
	for (size_t i = 0; i < k->n_routes && r == 0; i++)
		r = buf_printf(&b, "%s%s=%" PRId64, i ? "," : "",
		               k->routes[i].service_name ? k->routes[i].service_name : "?",
		               k->routes[i].weight_set ? k->routes[i].weight : 0);
	if (r == 0)
		r = buf_steal(&b, ret, NULL);
	buf_finish(&b);
	return r;
}
