/* SPDX-License-Identifier: Apache-2.0 */
/* Resolving a Kanary's backends against the Services and EndpointSlices of the cluster. */
#include "common/resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/json_field.h"
#include "common/kerr.h"

#define SERVICE_NAME_LABEL "kubernetes.io/service-name"

struct catalog_entry {
	char *namespace;
	char *name; /* the Service's name, or the slice's service-name label */
	struct json_object *obj;
};

struct catalog_list {
	struct catalog_entry *items;
	size_t n, cap;
};

struct catalog {
	struct catalog_list services;
	struct catalog_list slices;
};

int catalog_create(struct catalog **ret)
{
	struct catalog *cat = calloc(1, sizeof(*cat));

	if (!cat)
		return -ENOMEM;
	*ret = cat;
	return 0;
}

static void catalog_list_finish(struct catalog_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].namespace);
		free(l->items[i].name);
		json_object_put(l->items[i].obj);
	}
	free(l->items);
}

void catalog_destroy(struct catalog *cat)
{
	if (!cat)
		return;
	catalog_list_finish(&cat->services);
	catalog_list_finish(&cat->slices);
	free(cat);
}

static bool is_kind(const struct json_object *obj, const char *api_version, const char *kind)
{
	const char *av = json_field_str(obj, "apiVersion");
	const char *k = json_field_str(obj, "kind");

	return av && k && strcmp(av, api_version) == 0 && strcmp(k, kind) == 0;
}

/* Takes a reference of its own on obj. */
static int catalog_list_add(struct catalog_list *l, const char *ns, const char *name,
                            struct json_object *obj, bool replace)
{
	struct catalog_entry *e;
	char *ns_copy, *name_copy;

	if (replace) {
		for (size_t i = 0; i < l->n; i++) {
			e = &l->items[i];
			if (strcmp(e->namespace, ns) == 0 && strcmp(e->name, name) == 0) {
				json_object_put(e->obj);
				e->obj = json_object_get(obj);
				return 0;
			}
		}
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		e = realloc(l->items, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->items = e;
		l->cap = cap;
	}
	ns_copy = strdup(ns);
	name_copy = strdup(name);
	if (!ns_copy || !name_copy) {
		free(ns_copy);
		free(name_copy);
		return -ENOMEM;
	}
	e = &l->items[l->n++];
	e->namespace = ns_copy;
	e->name = name_copy;
	e->obj = json_object_get(obj);
	return 0;
}

int catalog_add(struct catalog *cat, struct json_object *obj, const char *default_ns)
{
	const char *ns, *name;
	int r;

	if (!json_object_is_type(obj, json_type_object))
		return 0;
	ns = json_field_str_path(obj, JSON_FIELD_PATH("metadata", "namespace"));
	if (!ns || !ns[0])
		ns = default_ns;
	if (is_kind(obj, "v1", "Service")) {
		name = json_field_str_path(obj, JSON_FIELD_PATH("metadata", "name"));
		if (!name)
			return 0;
		r = catalog_list_add(&cat->services, ns, name, obj, true);
		return r < 0 ? r : 1;
	}
	if (is_kind(obj, "discovery.k8s.io/v1", "EndpointSlice")) {
		struct json_object *meta, *labels, *v;
		if (!json_object_object_get_ex(obj, "metadata", &meta) ||
		    !json_object_object_get_ex(meta, "labels", &labels) ||
		    !json_object_object_get_ex(labels, SERVICE_NAME_LABEL, &v) ||
		    !json_object_is_type(v, json_type_string))
			return 0;
		r = catalog_list_add(&cat->slices, ns, json_object_get_string(v), obj, false);
		return r < 0 ? r : 1;
	}
	return 0;
}

int catalog_create_from(const struct json_object *docs, const char *default_ns,
                        struct catalog **ret)
{
	struct catalog *cat;
	int r;

	r = catalog_create(&cat);
	for (size_t i = 0; r >= 0 && i < json_object_array_length(docs); i++)
		r = catalog_add(cat, json_object_array_get_idx(docs, i), default_ns);
	if (r < 0) {
		catalog_destroy(cat);
		return r;
	}
	*ret = cat;
	return 0;
}

const struct json_object *catalog_service(const struct catalog *cat, const char *ns,
                                          const char *name)
{
	for (size_t i = 0; i < cat->services.n; i++) {
		const struct catalog_entry *e = &cat->services.items[i];
		if (strcmp(e->namespace, ns) == 0 && strcmp(e->name, name) == 0)
			return e->obj;
	}
	return NULL;
}

static void resolved_route_finish(struct kanary_resolved_route *rr)
{
	for (size_t i = 0; i < rr->n_endpoints; i++) {
		free(rr->endpoints[i].address);
		free(rr->endpoints[i].name);
	}
	free(rr->endpoints);
	free(rr->port_name);
	memset(rr, 0, sizeof(*rr));
}

void kanary_resolution_finish(struct kanary_resolution *res)
{
	for (size_t i = 0; i < res->n_routes; i++)
		resolved_route_finish(&res->routes[i]);
	res->n_routes = 0;
}

/* Name of a Service or slice port; an absent name is "". */
static const char *port_name_of(const struct json_object *port)
{
	const char *n = json_field_str(port, "name");

	return n ? n : "";
}

static bool is_tcp(const struct json_object *port)
{
	const char *p = json_field_str(port, "protocol");

	return !p || strcmp(p, "TCP") == 0;
}

/*
 * Finds the Service port the route names; borrowed, or NULL. A port without a
 * number in 1..65535 (the API server never stores one; a hand-written input
 * may hold one) is no port: nothing could be defaulted or rendered from it.
 */
static const struct json_object *find_service_port(const struct json_object *svc,
                                                   const struct kanary_port_ref *ref)
{
	struct json_object *spec, *ports;
	int64_t num;

	if (!json_object_object_get_ex(svc, "spec", &spec) ||
	    !json_object_object_get_ex(spec, "ports", &ports) ||
	    !json_object_is_type(ports, json_type_array))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(ports); i++) {
		const struct json_object *p = json_object_array_get_idx(ports, i);
		if (!json_object_is_type(p, json_type_object) || !is_tcp(p) ||
		    !json_field_int(p, "port", &num) || num < 1 || num > 65535)
			continue;
		if (ref->is_name && strcmp(port_name_of(p), ref->name) == 0)
			return p;
		if (!ref->is_name && num == ref->number)
			return p;
	}
	return NULL;
}

/* Endpoint order: IPv4 before IPv6, then by address bytes, then port. */
static int endpoint_cmp(const void *a, const void *b)
{
	const struct kanary_endpoint *x = a, *y = b;
	unsigned char bx[16], by[16];
	bool x6 = strchr(x->address, ':') != NULL, y6 = strchr(y->address, ':') != NULL;
	int c;

	if (x6 != y6)
		return x6 ? 1 : -1;
	if (inet_pton(x6 ? AF_INET6 : AF_INET, x->address, bx) == 1 &&
	    inet_pton(y6 ? AF_INET6 : AF_INET, y->address, by) == 1)
		c = memcmp(bx, by, x6 ? 16 : 4);
	else
		c = strcmp(x->address, y->address);
	if (c)
		return c;
	return (x->port > y->port) - (x->port < y->port);
}

/* Canonical text of an IP literal of the given slice addressType, or false. */
static bool canonical_address(const char *type, const char *in, char *out, size_t size)
{
	unsigned char bin[16];
	int af;

	if (strcmp(type, "IPv4") == 0)
		af = AF_INET;
	else if (strcmp(type, "IPv6") == 0)
		af = AF_INET6;
	else
		return false; /* FQDN endpoints carry no address HAProxy can use without DNS */
	if (inet_pton(af, in, bin) != 1)
		return false;
	return inet_ntop(af, bin, out, (socklen_t)size) != NULL;
}

static bool condition(const struct json_object *ep, const char *key, bool absent)
{
	struct json_object *conds, *v;

	if (!json_object_object_get_ex(ep, "conditions", &conds) ||
	    !json_object_object_get_ex(conds, key, &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return absent;
	return json_object_get_boolean(v);
}

struct ep_list {
	struct kanary_endpoint *items;
	size_t n, cap;
	size_t seen; /* usable endpoints found, kept or not */
};

static int ep_list_add(struct ep_list *l, const char *address, int port, const char *name)
{
	struct kanary_endpoint *e;

	if (++l->seen > KANARY_MAX_ENDPOINTS)
		return 0; /* counted; the caller reports the ceiling */
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		e = realloc(l->items, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->items = e;
		l->cap = cap;
	}
	e = &l->items[l->n];
	e->address = strdup(address);
	e->name = name ? strdup(name) : NULL;
	e->port = port;
	if (!e->address || (name && !e->name)) {
		free(e->address);
		free(e->name);
		return -ENOMEM;
	}
	l->n++;
	return 0;
}

/* Adds the usable endpoints of one slice, for the Service port named port_name. */
static int slice_endpoints(const struct json_object *slice, const char *port_name,
                           struct ep_list *eps, int *target_port)
{
	struct json_object *ports, *endpoints, *addrs, *ref;
	const char *type = json_field_str(slice, "addressType");
	int64_t port = -1;
	char addr[INET6_ADDRSTRLEN];
	int r;

	if (!type || !json_object_object_get_ex(slice, "ports", &ports) ||
	    !json_object_is_type(ports, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(ports); i++) {
		const struct json_object *p = json_object_array_get_idx(ports, i);
		int64_t num;
		if (json_object_is_type(p, json_type_object) && is_tcp(p) &&
		    strcmp(port_name_of(p), port_name) == 0 && json_field_int(p, "port", &num) &&
		    num >= 1 && num <= 65535) {
			port = num;
			break;
		}
	}
	if (port < 0)
		return 0;
	if (*target_port == 0)
		*target_port = (int)port;
	if (!json_object_object_get_ex(slice, "endpoints", &endpoints) ||
	    !json_object_is_type(endpoints, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(endpoints); i++) {
		const struct json_object *ep = json_object_array_get_idx(endpoints, i);
		const struct json_object *a0;
		const char *name = NULL;
		if (!json_object_is_type(ep, json_type_object))
			continue;
		/* The API says a missing ready condition means unknown, to be read as ready. */
		if (!condition(ep, "ready", true) || condition(ep, "terminating", false))
			continue;
		if (!json_object_object_get_ex(ep, "addresses", &addrs) ||
		    !json_object_is_type(addrs, json_type_array) ||
		    json_object_array_length(addrs) == 0)
			continue;
		/* Addresses of one endpoint are fungible; the API lets consumers use the first. */
		a0 = json_object_array_get_idx(addrs, 0);
		if (!json_object_is_type(a0, json_type_string) ||
		    !canonical_address(type, json_object_get_string((struct json_object *)a0), addr,
		                       sizeof(addr)))
			continue;
		if (json_object_object_get_ex(ep, "targetRef", &ref))
			name = json_field_str(ref, "name");
		r = ep_list_add(eps, addr, (int)port, name);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Sorts and drops repeats of the same address and port (one pod in two slices). */
static void ep_list_normalize(struct ep_list *l)
{
	size_t o = 0;

	if (l->n == 0)
		return;
	qsort(l->items, l->n, sizeof(*l->items), endpoint_cmp);
	for (size_t i = 1; i < l->n; i++) {
		if (endpoint_cmp(&l->items[o], &l->items[i]) == 0) {
			free(l->items[i].address);
			free(l->items[i].name);
			continue;
		}
		l->items[++o] = l->items[i];
	}
	l->n = o + 1;
}

static int resolve_route(const struct kanary *k, size_t i, const struct catalog *cat,
                         struct kanary_resolved_route *rr, struct kerr_list *errs)
{
	const struct kanary_route *route = &k->routes[i];
	const struct json_object *svc, *port;
	char path[96], value[KANARY_MAX_ERROR_VALUE * 4 + 48];
	struct ep_list eps = {0};
	int64_t num;
	int r;

	/* A route whose names or port are malformed was reported by validation already. */
	if (!route->service_name || !kanary_is_dns1035_label(route->service_name) ||
	    !route->port.set ||
	    (route->port.is_name ? !kanary_is_port_name(route->port.name)
	                         : route->port.number < 1 || route->port.number > 65535))
		return 0;
	svc = catalog_service(cat, k->namespace, route->service_name);
	if (!svc) {
		snprintf(path, sizeof(path), "spec.routes[%zu].backend.serviceName", i);
		kerr_fmt_str(value, sizeof(value), route->service_name);
		kerr_add(errs, KERR_NOT_FOUND, path, value,
		         "no Service of that name in namespace %s", k->namespace);
		return 0;
	}
	rr->service_found = true;
	port = find_service_port(svc, &route->port);
	if (!port) {
		snprintf(path, sizeof(path), "spec.routes[%zu].backend.servicePort", i);
		if (route->port.is_name) {
			kerr_fmt_str(value, sizeof(value), route->port.name);
			kerr_add(errs, KERR_NOT_FOUND, path, value,
			         "Service %s has no TCP port of that name", route->service_name);
		} else {
			snprintf(value, sizeof(value), "%" PRId64, route->port.number);
			kerr_add(errs, KERR_NOT_FOUND, path, value,
			         "Service %s has no TCP port with that number",
			         route->service_name);
		}
		return 0;
	}
	rr->port_found = true;
	if (json_field_int(port, "port", &num) && num >= 1 && num <= 65535)
		rr->service_port = (int)num;
	rr->port_name = strdup(port_name_of(port));
	if (!rr->port_name)
		return -ENOMEM;

	for (size_t s = 0; s < cat->slices.n; s++) {
		const struct catalog_entry *e = &cat->slices.items[s];
		if (strcmp(e->namespace, k->namespace) != 0 ||
		    strcmp(e->name, route->service_name) != 0)
			continue;
		r = slice_endpoints(e->obj, rr->port_name, &eps, &rr->target_port);
		if (r < 0)
			goto out_free_eps;
	}
	if (rr->target_port == 0) {
		struct json_object *tp;
		/* No slice yet: a numeric targetPort, or the port itself when none is given. */
		if (!json_object_object_get_ex(port, "targetPort", &tp))
			rr->target_port = rr->service_port;
		else if (json_object_is_type(tp, json_type_int) && json_object_get_int64(tp) >= 1 &&
		         json_object_get_int64(tp) <= 65535)
			rr->target_port = (int)json_object_get_int64(tp);
	}
	if (eps.seen > KANARY_MAX_ENDPOINTS) {
		snprintf(path, sizeof(path), "spec.routes[%zu].backend.serviceName", i);
		kerr_add(errs, KERR_TOO_MANY, path, NULL,
		         "%zu: Service %s has more ready endpoints than the %d Kanary supports",
		         eps.seen, route->service_name, KANARY_MAX_ENDPOINTS);
		r = -E2BIG;
		goto out_free_eps;
	}
	ep_list_normalize(&eps);
	rr->endpoints = eps.items;
	rr->n_endpoints = eps.n;
	return 0;

out_free_eps:
	for (size_t j = 0; j < eps.n; j++) {
		free(eps.items[j].address);
		free(eps.items[j].name);
	}
	free(eps.items);
	return r;
}

int kanary_resolve(const struct kanary *k, const struct catalog *cat, struct kanary_resolution *ret,
                   struct kerr_list *errs)
{
	struct kanary_resolution res;
	int r = 0, first = 0;

	memset(&res, 0, sizeof(res));
	for (size_t i = 0; i < k->n_routes; i++) {
		r = resolve_route(k, i, cat, &res.routes[i], errs);
		res.n_routes = i + 1;
		if (r == -ENOMEM) {
			kanary_resolution_finish(&res);
			return r;
		}
		if (r < 0 && first == 0)
			first = r;
	}
	if (first < 0) {
		kanary_resolution_finish(&res);
		return first;
	}
	*ret = res;
	return 0;
}

unsigned kanary_default(struct kanary *k, const struct kanary_resolution *res)
{
	unsigned done = 0;

	if (!k->port_set && res->n_routes > 0 && res->routes[0].port_found &&
	    res->routes[0].service_port > 0) {
		k->port = res->routes[0].service_port;
		k->port_set = true;
		done |= KANARY_DEFAULTED_PORT;
	}
	if (!k->replicas_set) {
		k->replicas = KANARY_DEFAULT_REPLICAS;
		k->replicas_set = true;
		done |= KANARY_DEFAULTED_REPLICAS;
	}
	return done;
}
