/* SPDX-License-Identifier: Apache-2.0 */
/* The state of one Kanary's HAProxy pods: computing it, keeping slots, telling changes apart. */
#include "controller/state.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "common/json_field.h"
#include "common/objects.h"
#include "common/render.h"

/* prev's route for backend, or NULL. Borrowed. */
static const struct json_object *prev_route(const struct json_object *prev, const char *backend)
{
	struct json_object *routes = json_field_get(prev, "routes");

	if (!routes || !json_object_is_type(routes, json_type_array))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(routes); i++) {
		const struct json_object *r = json_object_array_get_idx(routes, i);
		const char *b = json_field_str(r, "backend");

		if (b && strcmp(b, backend) == 0)
			return r;
	}
	return NULL;
}

int state_slots(const struct kanary *k, const struct kanary_resolution *res,
                const struct json_object *prev, int *ret_slots)
{
	if (!k || !res || !ret_slots || k->n_routes != res->n_routes)
		return -EINVAL;
	for (size_t i = 0; i < k->n_routes; i++) {
		const char *backend = k->routes[i].service_name;
		const struct json_object *pr = backend ? prev_route(prev, backend) : NULL;
		size_t n = res->routes[i].n_endpoints;
		int64_t have = 0;

		if (!backend)
			return -EINVAL;
		if (pr && (!json_field_int(pr, "slots", &have) || have < 0 || have > INT32_MAX))
			have = 0;
		/* Kept while the endpoints fit: never shrunk because pods went away. */
		if (have > RENDER_MAX_SLOTS)
			have = 0;
		ret_slots[i] = render_slots(n, (int)have);
		if (ret_slots[i] < 0)
			return -E2BIG;
	}
	return 0;
}

static int set(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v || json_object_object_add(o, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int push(struct json_object *a, struct json_object *v)
{
	if (!v || json_object_array_add(a, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *route_json(const struct kanary_route *kr,
                                      const struct kanary_resolved_route *rr, int slots)
{
	struct json_object *o = json_object_new_object();
	struct json_object *eps = json_object_new_array();
	int r = 0;

	if (!o || !eps) {
		json_object_put(o);
		json_object_put(eps);
		return NULL;
	}
	r |= set(o, "backend", json_object_new_string(kr->service_name));
	r |= set(o, "weight", json_object_new_int64(kr->weight));
	r |= set(o, "slots", json_object_new_int(slots));
	/* The resolution keeps them sorted and unique. */
	for (size_t j = 0; r == 0 && j < rr->n_endpoints; j++) {
		struct json_object *ep = json_object_new_object();

		if (!ep) {
			r = -ENOMEM;
			break;
		}
		r |= set(ep, "address", json_object_new_string(rr->endpoints[j].address));
		r |= set(ep, "port", json_object_new_int(rr->endpoints[j].port));
		r |= push(eps, ep);
	}
	r |= set(o, "endpoints", eps);
	if (r) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int64_t state_generation(const struct json_object *state)
{
	int64_t g = 0;

	if (!json_field_int(state, "generation", &g) || g < 0)
		return 0;
	return g;
}

/* a and b, generation aside. */
static bool same_content(const struct json_object *a, const struct json_object *b)
{
	if (!a || !b || !json_object_is_type(a, json_type_object) ||
	    !json_object_is_type(b, json_type_object))
		return false;
	if (json_object_object_length((struct json_object *)a) !=
	    json_object_object_length((struct json_object *)b))
		return false;
	json_object_object_foreach((struct json_object *)a, key, va)
	{
		struct json_object *vb;

		if (strcmp(key, "generation") == 0)
			continue;
		if (!json_object_object_get_ex(b, key, &vb) || !json_object_equal(va, vb))
			return false;
	}
	return true;
}

int state_build(const struct kanary *k, const struct kanary_resolution *res, const int *slots,
                const char *hash8, const struct json_object *prev, struct json_object **ret)
{
	struct json_object *st, *routes;
	int64_t gen;
	int r = 0;

	if (!k || !res || !slots || !hash8 || !ret || !k->name || k->n_routes != res->n_routes)
		return -EINVAL;
	for (size_t i = 0; i < k->n_routes; i++)
		if (!k->routes[i].service_name || slots[i] < 0 ||
		    res->routes[i].n_endpoints > (size_t)slots[i])
			return -EINVAL;
	st = json_object_new_object();
	routes = json_object_new_array();
	if (!st || !routes) {
		json_object_put(st);
		json_object_put(routes);
		return -ENOMEM;
	}
	r |= set(st, "kanary", json_object_new_string(k->name));
	r |= set(st, "generation", json_object_new_int64(0));
	r |= set(st, "structureHash", json_object_new_string_len(hash8, 8));
	for (size_t i = 0; r == 0 && i < k->n_routes; i++)
		r |= push(routes, route_json(&k->routes[i], &res->routes[i], slots[i]));
	r |= set(st, "routes", routes);
	if (r) {
		json_object_put(st);
		return -ENOMEM;
	}
	gen = state_generation(prev);
	if (!prev || !same_content(prev, st))
		gen++;
	if (gen < 1)
		gen = 1;
	if (set(st, "generation", json_object_new_int64(gen)) < 0) {
		json_object_put(st);
		return -ENOMEM;
	}
	*ret = st;
	return 0;
}

/* The routes' backends and slots, in order, and the structure hash: what rolls. */
static bool same_structure(const struct json_object *a, const struct json_object *b)
{
	struct json_object *ra = json_field_get(a, "routes"), *rb = json_field_get(b, "routes");
	const char *ha = json_field_str(a, "structureHash"),
	           *hb = json_field_str(b, "structureHash");

	if (!ha || !hb || strcmp(ha, hb) != 0 || !ra || !rb ||
	    !json_object_is_type(ra, json_type_array) ||
	    !json_object_is_type(rb, json_type_array) ||
	    json_object_array_length(ra) != json_object_array_length(rb))
		return false;
	for (size_t i = 0; i < json_object_array_length(ra); i++) {
		const struct json_object *x = json_object_array_get_idx(ra, i);
		const struct json_object *y = json_object_array_get_idx(rb, i);
		const char *bx = json_field_str(x, "backend"), *by = json_field_str(y, "backend");
		int64_t sx = -1, sy = -2;

		if (!bx || !by || strcmp(bx, by) != 0 || !json_field_int(x, "slots", &sx) ||
		    !json_field_int(y, "slots", &sy) || sx != sy)
			return false;
	}
	return true;
}

enum state_change state_diff(const struct json_object *prev, const struct json_object *next)
{
	if (!prev || !next || !same_structure(prev, next))
		return STATE_STRUCTURE;
	return same_content(prev, next) ? STATE_SAME : STATE_LIVE;
}

struct json_object *state_from_configmap(const struct json_object *cm)
{
	const char *text = json_field_str_path(cm, JSON_FIELD_PATH("data", OBJECTS_STATE_KEY));
	struct json_object *st;

	if (!text)
		return NULL;
	st = json_tokener_parse(text);
	if (st && !json_object_is_type(st, json_type_object)) {
		json_object_put(st);
		return NULL;
	}
	return st;
}
