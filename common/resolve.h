/* SPDX-License-Identifier: Apache-2.0 */
/* Resolving a Kanary's backends against the Services and EndpointSlices of the cluster. */
#ifndef KANARY_RESOLVE_H
#define KANARY_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/kanary.h"

struct json_object;
struct kerr_list;

/*
 * The cluster objects a Kanary is checked and rendered against: Services and
 * EndpointSlices. The check and render tools fill it from their input stream;
 * the daemons from their caches. It holds compact records (common/kobj.h):
 * a cache's are borrowed with a reference, never copied.
 */
struct catalog;
struct kube_obj;
struct kobj_service;

/* Ownership: the caller destroys the catalog; catalog_destroy(NULL) does nothing. */
int catalog_create(struct catalog **ret);
void catalog_destroy(struct catalog *cat);

/*
 * Adds obj when it is a v1 Service or a discovery.k8s.io/v1 EndpointSlice (in
 * namespace default_ns when it names none) and returns 1; returns 0 and keeps
 * nothing for any other kind. A Service that is already there is replaced.
 * obj is decoded into a record (kobj_service_decode, kobj_slice_decode);
 * the catalog keeps nothing of obj itself.
 */
int catalog_add(struct catalog *cat, struct json_object *obj, const char *default_ns);

/*
 * Adds a Service or EndpointSlice record (in namespace default_ns when it
 * names none) and returns 1; 0 for a record of another type.
 * Ownership: takes a reference of its own on o (kube_obj_ref).
 */
int catalog_add_obj(struct catalog *cat, const struct kube_obj *o, const char *default_ns);

/*
 * A new catalog holding every Service and EndpointSlice of docs, a json-c
 * array (catalog_add on each item). Returns 0 or -ENOMEM.
 * Ownership: *ret is the caller's (catalog_destroy).
 */
int catalog_create_from(const struct json_object *docs, const char *default_ns,
                        struct catalog **ret);

/* Borrowed; NULL when absent. */
const struct kobj_service *catalog_service(const struct catalog *cat, const char *ns,
                                           const char *name);

struct kanary_endpoint {
	char *address; /* IPv4 or IPv6 literal */
	int port;      /* the target port on that address */
	char *name;    /* targetRef name, or NULL */
};

/* One route resolved against its Service and EndpointSlices. */
struct kanary_resolved_route {
	bool service_found;
	bool port_found;
	int service_port;                  /* number of the matched Service port */
	char *port_name;                   /* its name; "" when unnamed */
	int target_port;                   /* from the slices, else a numeric targetPort, else 0 */
	struct kanary_endpoint *endpoints; /* ready, not terminating, sorted, unique */
	size_t n_endpoints;
};

struct kanary_resolution {
	struct kanary_resolved_route routes[KANARY_MAX_ROUTES];
	size_t n_routes;
};

/*
 * Resolves each route of k (which should have passed kanary_validate) against
 * cat: its Service must exist in k's namespace and have the port, by name for
 * a string and by port number for an integer. Endpoints come from the
 * EndpointSlices labelled kubernetes.io/service-name=<service>, the port
 * matched by the Service port's name; only ready, non-terminating IPv4/IPv6
 * addresses, first address of each endpoint, sorted and de-duplicated.
 * A missing Service or port goes into errs (field path on the route) and
 * leaves that route unresolved; the others are still resolved.
 * Returns 0, -E2BIG (more than KANARY_MAX_ENDPOINTS endpoints on one route,
 * also reported in errs) or -ENOMEM.
 * Ownership: ret is caller storage, released with kanary_resolution_finish.
 */
int kanary_resolve(const struct kanary *k, const struct catalog *cat, struct kanary_resolution *ret,
                   struct kerr_list *errs);
void kanary_resolution_finish(struct kanary_resolution *res);

/*
 * Fills spec.port (the first route's Service port number) and
 * spec.proxy.replicas (KANARY_DEFAULT_REPLICAS) when unset. spec.port is left
 * unset when the first route did not resolve. Returns a bit mask of what was
 * filled in (KANARY_DEFAULTED_*).
 */
#define KANARY_DEFAULTED_PORT     (1u << 0)
#define KANARY_DEFAULTED_REPLICAS (1u << 1)
unsigned kanary_default(struct kanary *k, const struct kanary_resolution *res);

#endif
