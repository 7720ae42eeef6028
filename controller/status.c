/* SPDX-License-Identifier: Apache-2.0 */
/* The Kanary's status and conditions, built from what one reconcile found. */
#include "controller/status.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/json_field.h"
#include "common/kerr.h"
#include "common/limits.h"
#include "controller/pods.h"

/* True when the resolver looked this route up (validation reports malformed ones). */
static bool route_well_formed(const struct kanary_route *r)
{
	if (!r->service_name || !kanary_is_dns1035_label(r->service_name) || !r->port.set)
		return false;
	if (r->port.is_name)
		return r->port.name && kanary_is_port_name(r->port.name);
	return r->port.number >= 1 && r->port.number <= 65535;
}

void status_classify(const struct kanary *k, const struct kanary_resolution *res,
                     const struct kerr_list *errs, struct status_problems *ret)
{
	struct status_problems p = {0};
	size_t total = kerr_count(errs) + kerr_dropped(errs), refs;

	for (size_t i = 0; k && res && i < k->n_routes && i < res->n_routes; i++) {
		if (!route_well_formed(&k->routes[i]))
			continue;
		if (!res->routes[i].service_found)
			p.missing_services++;
		else if (!res->routes[i].port_found)
			p.missing_ports++;
	}
	refs = p.missing_services + p.missing_ports;
	/* A resolution cut short (a ceiling) leaves routes unresolved with no error of their own. */
	if (refs > total) {
		p.missing_services = 0;
		p.missing_ports = 0;
		refs = 0;
	}
	p.other = total - refs;
	*ret = p;
}

/* ---- reading ---- */

const struct json_object *status_condition(const struct json_object *status, const char *type)
{
	struct json_object *conds;

	if (!status || !json_object_object_get_ex(status, "conditions", &conds) ||
	    !json_object_is_type(conds, json_type_array))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(conds); i++) {
		const struct json_object *c = json_object_array_get_idx(conds, i);
		const char *t = json_field_str(c, "type");

		if (t && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

static bool same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

bool status_condition_changed(const struct json_object *old_status,
                              const struct json_object *new_status, const char *type)
{
	const struct json_object *a = status_condition(old_status, type);
	const struct json_object *b = status_condition(new_status, type);

	if (!a || !b)
		return a != b;
	return !same_str(json_field_str(a, "status"), json_field_str(b, "status")) ||
	       !same_str(json_field_str(a, "reason"), json_field_str(b, "reason")) ||
	       !same_str(json_field_str(a, "message"), json_field_str(b, "message"));
}

bool status_waits_on_rollout(const struct json_object *status)
{
	const struct json_object *c = status_condition(status, STATUS_COND_READY);
	const char *reason = json_field_str(c, "reason");

	if (!c || !same_str(json_field_str(c, "status"), "False") || !reason)
		return false;
	if (strcmp(reason, STATUS_REASON_ROLLOUT) == 0)
		return true;
	for (int v = PODS_NOT_READY; v <= PODS_IMAGE_PULL_FAILED; v++)
		if (same_str(reason, pods_reason((enum pods_verdict)v)))
			return true;
	return false;
}

const char *status_config_hash(const struct json_object *status)
{
	return json_field_str(status, "configHash");
}

/* ---- building ---- */

struct cond {
	const char *type;
	const char *status;
	const char *reason;
	char message[KANARY_MAX_STATUS_MESSAGE];
};

static void cond_set(struct cond *c, const char *type, const char *status, const char *reason,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void cond_set(struct cond *c, const char *type, const char *status, const char *reason,
                     const char *fmt, ...)
{
	va_list ap;
	int n;

	c->type = type;
	c->status = status;
	c->reason = reason;
	va_start(ap, fmt);
	n = vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
	/* A message for a person; mark the cut rather than fail the status. */
	if (n >= (int)sizeof(c->message))
		memcpy(c->message + sizeof(c->message) - 4, "...", 4);
}

static int cond_json(const struct cond *c, int64_t generation, const struct json_object *old_status,
                     const char *now, struct json_object *conds)
{
	const struct json_object *old = status_condition(old_status, c->type);
	const char *since = now;
	struct json_object *o;

	/* metav1 SetStatusCondition: the transition time moves with the status only. */
	if (old && same_str(json_field_str(old, "status"), c->status) &&
	    json_field_str(old, "lastTransitionTime"))
		since = json_field_str(old, "lastTransitionTime");
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	if (json_object_object_add(o, "type", json_object_new_string(c->type)) ||
	    json_object_object_add(o, "status", json_object_new_string(c->status)) ||
	    json_object_object_add(o, "observedGeneration", json_object_new_int64(generation)) ||
	    json_object_object_add(o, "lastTransitionTime", json_object_new_string(since)) ||
	    json_object_object_add(o, "reason", json_object_new_string(c->reason)) ||
	    json_object_object_add(o, "message", json_object_new_string(c->message)) ||
	    json_object_array_add(conds, o)) {
		json_object_put(o);
		return -ENOMEM;
	}
	return 0;
}

static const char *short_hash(const char *hash, char out[9])
{
	if (!hash || strlen(hash) < 8)
		return NULL;
	memcpy(out, hash, 8);
	out[8] = '\0';
	return out;
}

/* True when some route that can be drawn (weight above 0) has a ready endpoint. */
static bool any_drawable_endpoint(const struct kanary *k, const struct kanary_resolution *res)
{
	for (size_t i = 0; i < k->n_routes && i < res->n_routes; i++)
		if (k->routes[i].weight_set && k->routes[i].weight > 0 &&
		    res->routes[i].n_endpoints > 0)
			return true;
	return false;
}

static void decide(const struct status_facts *f, const char *kept_hash, struct cond *ready,
                   struct cond *refs)
{
	const struct status_problems *p = &f->problems;
	const char *errors = f->errors ? f->errors : "";
	const char *refs_reason =
	    p->missing_services ? STATUS_REASON_BACKEND_NOT_FOUND : STATUS_REASON_PORT_NOT_FOUND;
	char h8[9], kept8[9];
	char keeps[64];

	if (short_hash(kept_hash, kept8))
		snprintf(keeps, sizeof(keeps), "HAProxy keeps configuration %s", kept8);
	else
		snprintf(keeps, sizeof(keeps), "nothing is applied yet");

	if (p->missing_services + p->missing_ports > 0)
		cond_set(refs, STATUS_COND_RESOLVED_REFS, "False", refs_reason, "%s", errors);
	else if (p->other > 0)
		cond_set(refs, STATUS_COND_RESOLVED_REFS, "Unknown", STATUS_REASON_INVALID_SPEC,
		         "the spec is invalid; references are checked once it is valid");
	else
		cond_set(refs, STATUS_COND_RESOLVED_REFS, "True", STATUS_REASON_RESOLVED_REFS,
		         "every backend Service and port exists");

	if (p->other > 0)
		cond_set(ready, STATUS_COND_READY, "False", STATUS_REASON_INVALID_SPEC, "%s; %s",
		         errors, keeps);
	else if (p->missing_services + p->missing_ports > 0)
		cond_set(ready, STATUS_COND_READY, "False", refs_reason, "%s; %s", errors, keeps);
	else if (f->conflict)
		cond_set(ready, STATUS_COND_READY, "False", STATUS_REASON_SERVICE_CONFLICT,
		         "%s; retrying with backoff", f->conflict);
	else if (f->apply_reason)
		cond_set(ready, STATUS_COND_READY, "False", f->apply_reason,
		         "%s; %s; retrying with backoff",
		         f->apply_message ? f->apply_message : "cannot apply a child", keeps);
	else if (!any_drawable_endpoint(f->k, f->res))
		cond_set(ready, STATUS_COND_READY, "False", STATUS_REASON_NO_ENDPOINTS,
		         "no route with weight above 0 has a ready endpoint, so HAProxy refuses "
		         "connections");
	else if (f->rollout != STATUS_ROLLOUT_DONE && f->pods_reason && f->pods_message)
		cond_set(ready, STATUS_COND_READY, "False", f->pods_reason,
		         "Deployment %s-haproxy cannot roll out configuration %s: %s",
		         f->k->name ? f->k->name : "", short_hash(f->config_hash, h8) ? h8 : "?",
		         f->pods_message);
	else if (f->rollout != STATUS_ROLLOUT_DONE)
		cond_set(ready, STATUS_COND_READY, "False", STATUS_REASON_ROLLOUT,
		         "waiting for Deployment %s-haproxy to roll out configuration %s",
		         f->k->name ? f->k->name : "", short_hash(f->config_hash, h8) ? h8 : "?");
	else
		cond_set(ready, STATUS_COND_READY, "True", STATUS_REASON_READY,
		         "HAProxy serves configuration %s behind Service %s",
		         short_hash(f->config_hash, h8) ? h8 : "?",
		         f->k->destination ? f->k->destination : "");
}

static int add_route(struct json_object *routes, const struct kanary_route *route,
                     const struct kanary_resolved_route *rr)
{
	struct json_object *o = json_object_new_object();
	struct json_object *tp = NULL;

	if (!o)
		return -ENOMEM;
	if (rr->target_port > 0)
		tp = json_object_new_int(rr->target_port);
	else if (rr->port_name && rr->port_name[0])
		tp = json_object_new_string(rr->port_name);
	if (json_object_object_add(
	        o, "serviceName",
	        json_object_new_string(route->service_name ? route->service_name : "")) ||
	    json_object_object_add(o, "weight",
	                           json_object_new_int64(route->weight_set ? route->weight : 0)) ||
	    (tp && json_object_object_add(o, "targetPort", tp)) ||
	    json_object_object_add(o, "endpoints",
	                           json_object_new_int64((int64_t)rr->n_endpoints)) ||
	    json_object_array_add(routes, o)) {
		json_object_put(o);
		return -ENOMEM;
	}
	return 0;
}

/* Copies key from old_status into st, when present. */
static int keep_field(struct json_object *st, const struct json_object *old_status, const char *key)
{
	struct json_object *v, *copy = NULL;

	if (!old_status || !json_object_object_get_ex(old_status, key, &v))
		return 0;
	if (json_object_deep_copy(v, &copy, NULL) != 0)
		return -ENOMEM;
	if (json_object_object_add(st, key, copy)) {
		json_object_put(copy);
		return -ENOMEM;
	}
	return 0;
}

static int in_force(const struct status_facts *f, const struct json_object *old_status,
                    struct json_object *st)
{
	struct json_object *routes;
	char *summary = NULL;
	int r;

	if (!f->applied) {
		r = keep_field(st, old_status, "routes");
		if (r == 0)
			r = keep_field(st, old_status, "summary");
		if (r == 0)
			r = keep_field(st, old_status, "configHash");
		return r;
	}
	routes = json_object_new_array();
	if (!routes || json_object_object_add(st, "routes", routes))
		goto out_nomem;
	for (size_t i = 0; i < f->k->n_routes && i < f->res->n_routes; i++) {
		r = add_route(routes, &f->k->routes[i], &f->res->routes[i]);
		if (r < 0)
			return r;
	}
	r = kanary_summary(f->k, &summary);
	if (r < 0)
		return r;
	r = json_object_object_add(st, "summary", json_object_new_string(summary)) ||
	            json_object_object_add(st, "configHash", json_object_new_string(f->config_hash))
	        ? -ENOMEM
	        : 0;
	free(summary);
	return r;
out_nomem:
	json_object_put(routes);
	return -ENOMEM;
}

int status_build(const struct status_facts *f, const struct json_object *old_status,
                 struct json_object **ret)
{
	struct json_object *st, *conds;
	struct cond ready, refs;
	int r;

	if (!f || !f->k || !f->res || !f->now || (f->applied && !f->config_hash))
		return -EINVAL;
	decide(f, f->applied ? f->config_hash : status_config_hash(old_status), &ready, &refs);
	st = json_object_new_object();
	if (!st)
		return -ENOMEM;
	conds = json_object_new_array();
	if (json_object_object_add(st, "observedGeneration",
	                           json_object_new_int64(f->generation)) ||
	    !conds || json_object_object_add(st, "conditions", conds)) {
		json_object_put(conds);
		r = -ENOMEM;
		goto out_put;
	}
	r = cond_json(&ready, f->generation, old_status, f->now, conds);
	if (r == 0)
		r = cond_json(&refs, f->generation, old_status, f->now, conds);
	if (r == 0)
		r = in_force(f, old_status, st);
	if (r < 0)
		goto out_put;
	*ret = st;
	return 0;
out_put:
	json_object_put(st);
	return r;
}

/* The routes array of a status, borrowed, or NULL. */
static const struct json_object *routes_of(const struct json_object *status)
{
	struct json_object *v;

	if (!status || !json_object_object_get_ex(status, "routes", &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

size_t status_newly_empty(const struct json_object *old_status,
                          const struct json_object *new_status,
                          void (*fn)(void *ctx, const char *service, int64_t weight), void *ctx)
{
	const struct json_object *nr = routes_of(new_status), *orr = routes_of(old_status);
	size_t n = 0;

	for (size_t i = 0; nr && i < json_object_array_length(nr); i++) {
		const struct json_object *route = json_object_array_get_idx(nr, i);
		const char *svc = json_field_str(route, "serviceName");
		int64_t w = json_field_int_or(route, "weight", 0);
		bool was_empty = false;

		if (!svc || w <= 0 || json_field_int_or(route, "endpoints", 0) > 0)
			continue;
		for (size_t j = 0; orr && j < json_object_array_length(orr); j++) {
			const struct json_object *o = json_object_array_get_idx(orr, j);

			if (same_str(json_field_str(o, "serviceName"), svc) &&
			    json_field_int_or(o, "weight", 0) > 0 &&
			    json_field_int_or(o, "endpoints", 0) == 0)
				was_empty = true;
		}
		if (was_empty)
			continue;
		n++;
		if (fn)
			fn(ctx, svc, w);
	}
	return n;
}
