/* SPDX-License-Identifier: Apache-2.0 */
/* The Kanary model: reading one from JSON, defaulting it, checking what needs no lookup. */
#ifndef KANARY_KANARY_H
#define KANARY_KANARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

struct json_object;
struct kerr_list;

#define KANARY_GROUP       "kanary.pyxida.io"
#define KANARY_VERSION_API "v1alpha1"
#define KANARY_API_VERSION KANARY_GROUP "/" KANARY_VERSION_API
#define KANARY_KIND        "Kanary"

/* spec.routes[].backend.servicePort: an integer or an IANA service name. */
struct kanary_port_ref {
	bool set;     /* present and of a usable type */
	bool is_name; /* name holds a string; otherwise number */
	char *name;
	int64_t number;
};

struct kanary_route {
	char *service_name; /* NULL when missing or not a string */
	struct kanary_port_ref port;
	bool weight_set; /* present and an integer */
	int64_t weight;
};

/*
 * One Kanary, as read from its JSON form. Fields that were missing or of the
 * wrong type are left unset and reported by kanary_from_json, so validation
 * can go on and report every other problem too.
 */
struct kanary {
	char *namespace; /* "default" when the object has none */
	char *name;
	char *uid;
	int64_t generation;
	char *destination;
	struct kanary_route routes[KANARY_MAX_ROUTES];
	size_t n_routes;      /* routes kept (at most KANARY_MAX_ROUTES) */
	size_t n_routes_seen; /* routes in the object; more than kept means too many */
	bool port_set;
	int64_t port;
	bool replicas_set;
	int64_t replicas;
};

/* True when obj's apiVersion and kind name a Kanary (any version of our group). */
bool kanary_is_kanary(const struct json_object *obj);

/*
 * Reads a Kanary from its JSON form. Missing required fields (null counts as
 * missing), wrong types and unknown spec fields go into errs with their field
 * paths; the model keeps whatever was readable. Returns 0, or -ENOMEM (the
 * model is then not written).
 * Ownership: *ret is the caller's, freed with kanary_destroy.
 */
int kanary_from_json(const struct json_object *obj, struct kanary **ret, struct kerr_list *errs);
void kanary_destroy(struct kanary *k);

/*
 * Checks the values kanary_from_json could read, everything that needs no
 * lookup: DNS-1035 names, the
 * destination not being a backend, no backend twice, ports, weights 0..100
 * summing to 100 with one above 0, replicas. Appends every problem to errs.
 */
void kanary_validate(const struct kanary *k, struct kerr_list *errs);

/* "myapp-v1=80,myapp-v2=20" in route order. Ownership: caller frees *ret. */
int kanary_summary(const struct kanary *k, char **ret);

/* Name checks shared with the CRD's patterns. */
bool kanary_is_dns1035_label(const char *s);
bool kanary_is_port_name(const char *s);

#endif
