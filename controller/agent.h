/* SPDX-License-Identifier: Apache-2.0 */
/* The agent: applies a Kanary's state to the HAProxy beside it through the admin socket. */
#ifndef KANARY_CONTROLLER_AGENT_H
#define KANARY_CONTROLLER_AGENT_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

struct agent_options {
	const char *socket_path; /* HAProxy's admin socket */
	char structure_hash[9];  /* hash8 of the configuration HAProxy runs */
	long socket_timeout_ms;  /* one runtime API command */
};

#define AGENT_DEFAULT_SOCKET_TIMEOUT_MS 5000L

struct agent;

/* Ownership: *ret is the caller's, freed with agent_destroy. Returns 0, -EINVAL, -ENOMEM. */
int agent_create(const struct agent_options *o, struct agent **ret);
/* NULL does nothing. */
void agent_destroy(struct agent *a);

/*
 * Hands the agent the newest state.json text (copied); the next agent_sync
 * reads it. Any thread. Returns 0, -E2BIG past KANARY_MAX_STATE, -ENOMEM.
 */
int agent_offer(struct agent *a, const char *text, size_t len);
/* True when a state was offered that agent_sync has not read yet. Any thread. */
bool agent_pending(struct agent *a);

/*
 * One pass, from one thread: reads HAProxy's runtime state back (`show
 * servers state`, `show map`) and the newest offered state. One that does
 * not parse is counted and not applied; one computed for another structure
 * than ours is applied when HAProxy has a backend for each of its routes
 * (a structure rolling: the slots HAProxy has are filled, endpoints past
 * them counted as unplaced, routes the state lacks get weight 0), else
 * counted and not applied: the state before stays in force. Then it sends
 * the commands that make HAProxy run the state (addresses first, and only
 * slots whose address took are enabled; the fallback's weights after the
 * route map's commit), reads back again and checks it does. Also after
 * HAProxy restarted, since each pass compares with what HAProxy runs.
 * Returns 0 when HAProxy runs the state, -EAGAIN with no state accepted
 * yet, else a negative errno (counted as an error and logged here; the next
 * pass tries again).
 */
int agent_sync(struct agent *a);

/* The generation HAProxy was last seen to run (0: none yet). Any thread. */
long long agent_applied_generation(struct agent *a);

/* Prometheus text: the agent's counters. Any thread. */
int agent_metrics(struct agent *a, struct buf *out);

#endif
