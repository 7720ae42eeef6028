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
#include "common/kobj.h"
#include "common/kerr.h"

struct catalog_entry {
	char *namespace;
	const char *name; /* the Service's name, or the slice's service-name label (in obj) */
	const struct kube_obj *obj;
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
		kube_obj_unref(l->items[i].obj);
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

/* Takes a reference of its own on obj; name points into obj. */
static int catalog_list_add(struct catalog_list *l, const char *ns, const char *name,
                            const struct kube_obj *obj, bool replace)
{
	struct catalog_entry *e;
	char *ns_copy;

	if (replace) {
		for (size_t i = 0; i < l->n; i++) {
			e = &l->items[i];
			if (strcmp(e->namespace, ns) == 0 && strcmp(e->name, name) == 0) {
				kube_obj_unref(e->obj);
				e->obj = kube_obj_ref(obj);
				e->name = name;
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
	if (!ns_copy)
		return -ENOMEM;
	e = &l->items[l->n++];
	e->namespace = ns_copy;
	e->name = name;
	e->obj = kube_obj_ref(obj);
	return 0;
}

int catalog_add_obj(struct catalog *cat, const struct kube_obj *o, const char *default_ns)
{
	const struct kobj_slice *sl;
	const char *ns = o->ns[0] ? o->ns : default_ns;
	int r;

	if (kobj_as_service(o)) {
		r = catalog_list_add(&cat->services, ns, o->name, o, true);
		return r < 0 ? r : 1;
	}
	sl = kobj_as_slice(o);
	if (sl && sl->service) {
		r = catalog_list_add(&cat->slices, ns, sl->service, o, false);
		return r < 0 ? r : 1;
	}
	return 0;
}

int catalog_add(struct catalog *cat, struct json_object *obj, const char *default_ns)
{
	struct kube_obj *o = NULL;
	int r;

	if (!json_object_is_type(obj, json_type_object))
		return 0;
	if (is_kind(obj, "v1", "Service"))
		r = kobj_service_decode(NULL, obj, &o);
	else if (is_kind(obj, "discovery.k8s.io/v1", "EndpointSlice"))
		r = kobj_slice_decode(NULL, obj, &o);
	else
		return 0;
	if (r == -EBADMSG)
		return 0; /* no name: nothing to find it by */
	if (r < 0)
		return r;
	r = catalog_add_obj(cat, o, default_ns);
	kube_obj_unref(o);
	return r;
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

const struct kobj_service *catalog_service(const struct catalog *cat, const char *ns,
                                           const char *name)
{
	for (size_t i = 0; i < cat->services.n; i++) {
		const struct catalog_entry *e = &cat->services.items[i];
		if (strcmp(e->namespace, ns) == 0 && strcmp(e->name, name) == 0)
			return kobj_as_service(e->obj);
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

/*
 * Finds the TCP Service port the route names; borrowed, or NULL. A port without a
 * number in 1..65535 (the API server never stores one; a hand-written input
 * may hold one) is no port: nothing could be defaulted or rendered from it.
 */
static const struct kobj_service_port *find_service_port(const struct kobj_service *svc,
                                                         const struct kanary_port_ref *ref)
{
	for (size_t i = 0; i < svc->n_ports; i++) {
		const struct kobj_service_port *p = &svc->ports[i];
		if (!p->tcp || p->port < 1 || p->port > 65535)
			continue;
		if (ref->is_name && strcmp(p->name, ref->name) == 0)
			return p;
		if (!ref->is_name && p->port == ref->number)
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
static int slice_endpoints(const struct kobj_slice *slice, const char *port_name,
                           struct ep_list *eps, int *target_port)
{
	int64_t port = -1;
	int r;

	if (!slice->ip)
		return 0;
	for (size_t i = 0; i < slice->n_ports; i++) {
		const struct kobj_slice_port *p = &slice->ports[i];
		if (p->tcp && strcmp(p->name, port_name) == 0 && p->port >= 1 && p->port <= 65535) {
			port = p->port;
			break;
		}
	}
	if (port < 0)
		return 0;
	if (*target_port == 0)
		*target_port = (int)port;
	for (size_t i = 0; i < slice->n_endpoints; i++) {
		const struct kobj_endpoint *ep = &slice->endpoints[i];
		/* The API says a missing ready condition means unknown, to be read as ready. */
		if (!ep->ready || ep->terminating)
			continue;
		r = ep_list_add(eps, ep->address, (int)port, ep->target_name);
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
	const struct kobj_service *svc;
	const struct kobj_service_port *port;
	char path[96], value[KANARY_MAX_ERROR_VALUE * 4 + 48];
	struct ep_list eps = {0};
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
	if (port->port >= 1 && port->port <= 65535)
		rr->service_port = (int)port->port;
	rr->port_name = strdup(port->name);
	if (!rr->port_name)
		return -ENOMEM;

	for (size_t s = 0; s < cat->slices.n; s++) {
		const struct catalog_entry *e = &cat->slices.items[s];
		if (strcmp(e->namespace, k->namespace) != 0 ||
		    strcmp(e->name, route->service_name) != 0)
			continue;
		r = slice_endpoints(kobj_as_slice(e->obj), rr->port_name, &eps, &rr->target_port);
		if (r < 0)
			goto out_free_eps;
	}
	if (rr->target_port == 0) {
		/* No slice yet: a numeric targetPort, or the port itself when none is given. */
		if (port->target_port < 0)
			rr->target_port = rr->service_port;
		else
			rr->target_port = port->target_port;
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
