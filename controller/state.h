/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The state of one Kanary's HAProxy pods (issue #13, docs/agent.md): the
 * weights and each route's ready endpoints, which the agent applies through
 * HAProxy's admin socket, apart from the structure (the hash-named
 * configuration with a fixed number of server slots per route), which rolls.
 */
#ifndef KANARY_CONTROLLER_STATE_H
#define KANARY_CONTROLLER_STATE_H

#include <stdint.h>

#include "common/kanary.h"
#include "common/resolve.h"

struct json_object;

/*
 * The slot count of each of k's routes, into ret_slots (k->n_routes
 * entries): a route prev (the state in force, NULL when none) knows keeps its
 * slots as long as its endpoints fit them, so they never shrink because pods
 * went away; a new route, or one that outgrew its slots, gets
 * render_slots(endpoints, slots it had). Returns 0, -EINVAL, or -E2BIG past
 * RENDER_MAX_SLOTS endpoints on a route.
 */
int state_slots(const struct kanary *k, const struct kanary_resolution *res,
                const struct json_object *prev, int *ret_slots);

/*
 * The state.json of k against structure hash8 (the first 8 digits of the
 * structure's hash) with slots: {"kanary","generation","structureHash",
 * "routes":[{"backend","weight","slots","endpoints":[{"address","port"}]}]}.
 * generation is prev's when nothing else differs, prev's + 1 when something
 * does, 1 without prev. Returns 0, -EINVAL, -ENOMEM.
 * Ownership: *ret is the caller's (json_object_put).
 */
int state_build(const struct kanary *k, const struct kanary_resolution *res, const int *slots,
                const char *hash8, const struct json_object *prev, struct json_object **ret);

/* What tells two states apart. */
enum state_change {
	STATE_SAME = 0,  /* nothing but, at most, the generation */
	STATE_LIVE,      /* weights or endpoints: the agent applies it, nothing rolls */
	STATE_STRUCTURE, /* routes, slots or the structure: a new structure rolls */
};

/* How next differs from prev (NULL: STATE_STRUCTURE). */
enum state_change state_diff(const struct json_object *prev, const struct json_object *next);

/* The generation of a state; 0 when it has none. */
int64_t state_generation(const struct json_object *state);

/*
 * The state held in a ConfigMap (data["state.json"] parsed); NULL when the
 * ConfigMap is NULL or holds none that parses as an object.
 * Ownership: the result is the caller's.
 */
struct json_object *state_from_configmap(const struct json_object *cm);

#endif
