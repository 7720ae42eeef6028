/* SPDX-License-Identifier: Apache-2.0 */
/* What the agent must tell HAProxy to reach a state: a pure diff of state and runtime. */
#ifndef KANARY_CONTROLLER_AGENT_PLAN_H
#define KANARY_CONTROLLER_AGENT_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "controller/agent_state.h"

/* "r15-s4096" and more; a longer server name is not one of ours. */
#define AGENT_MAX_SERVER 32
/* A map key "lo:hi" of draws 0..99. */
#define AGENT_MAX_MAP_KEY 16

/* One server as `show servers state` tells it. */
struct agent_server {
	char backend[AGENT_MAX_BACKEND];
	char name[AGENT_MAX_SERVER];
	char address[AGENT_MAX_ADDRESS];
	int port;
	bool maint; /* forced or inherited maintenance: no new connection */
	int weight; /* the user weight (srv_uweight) */
};

struct agent_map_entry {
	char key[AGENT_MAX_MAP_KEY];
	char value[AGENT_MAX_BACKEND];
};

/* What HAProxy runs now, read back through the admin socket. */
struct agent_runtime {
	struct agent_server *servers;
	size_t n_servers;
	struct agent_map_entry *map;
	size_t n_map;
};

/*
 * Reads the answer of `show servers state` (a version line, a "# be_id
 * be_name srv_id srv_name srv_addr ..." header naming the columns, one line
 * per server) into rt's servers, replacing them. Servers of backends or with
 * names too long to be ours are skipped. Returns 0, -EINVAL (no header, a
 * line short of the header's columns), -ENOMEM.
 */
int agent_runtime_parse_servers(const char *text, struct agent_runtime *rt);
/*
 * Reads `show map` ("0x<id> <key> <value>" lines) into rt's map. Returns 0,
 * -EINVAL (a line of another form, such as an error message), -ENOMEM.
 */
int agent_runtime_parse_map(const char *text, struct agent_runtime *rt);
void agent_runtime_finish(struct agent_runtime *rt);

/*
 * The runtime API commands that turn rt into st, in steps so no connection
 * meets a half-applied change and no slot goes live at an address it does
 * not have:
 *   addr: slots (and the fallback servers tracking them) that must point at
 *     another endpoint get its address; a live slot goes to maintenance
 *     first, so it never serves at an address the state no longer names.
 *     Nothing in this step enables a slot: the caller reads HAProxy back and
 *     builds the plan again, and only slots whose address (and their fallback
 *     server's) took are enabled by the next plan's fill;
 *   fill: slots at their endpoint's address still in maintenance are enabled
 *     (health up, then ready);
 *   map: when the split differs, the whole route map, which the caller
 *     replaces atomically (prepare map, add map @version, commit map);
 *   weights: the fallback servers' weights, after the map commit so the
 *     fallback never balances with ratios of a split not yet in force;
 *   drain: slots whose endpoint went away go to maintenance, so they get no
 *     new connection while the ones they have go on.
 * An endpoint keeps the slot it has; a new one takes the lowest free slot.
 * The slots are the ones HAProxy has (read back), whatever st's "slots"
 * says: a state computed for a larger structure fills the slots that exist
 * and counts the endpoints left over in unplaced. Route backends HAProxy has
 * and st does not name (a route removed) are not in the map and their
 * fallback servers get weight 0.
 * Commands are lines ending in '\n'; map entries "<lo>:<hi> <backend>\n".
 */
struct agent_plan {
	struct buf addr;
	size_t n_addr;
	struct buf fill;
	size_t n_fill;
	bool map_update;
	struct buf map;
	struct buf weights;
	size_t n_weights;
	struct buf drain;
	size_t n_drain;
	size_t unplaced; /* endpoints with no slot left: the structure is too small */
};

void agent_plan_init(struct agent_plan *p);
void agent_plan_finish(struct agent_plan *p);

/*
 * True when HAProxy runs a route backend (read back into rt) for every
 * route st names: st can be applied to rt's structure, even one st was not
 * computed for. Otherwise false, with a sentence in why.
 */
bool agent_plan_compatible(const struct agent_state *st, const struct agent_runtime *rt, char *why,
                           size_t size);

/*
 * Builds the plan from st to rt into p (agent_plan_init'ed; reset first).
 * -ENOENT with a sentence in why when rt lacks a route backend st names (see
 * agent_plan_compatible), -EINVAL with one when rt's servers are not a
 * structure's (a slot or its fallback server missing), -E2BIG past
 * KANARY_MAX_AGENT_COMMANDS, -ENOMEM.
 */
int agent_plan_build(const struct agent_state *st, const struct agent_runtime *rt,
                     struct agent_plan *p, char *why, size_t size);

/* True when rt already is st (up to endpoints with no slot). */
bool agent_plan_empty(const struct agent_plan *p);

#endif
