/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's reading of state.json: the weights and each route's ready endpoints. */
#ifndef KANARY_CONTROLLER_AGENT_STATE_H
#define KANARY_CONTROLLER_AGENT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

/* An IPv6 literal in inet_ntop's form and its NUL (INET6_ADDRSTRLEN). */
#define AGENT_MAX_ADDRESS 46
/* "route_" and a DNS-1035 label, and the NUL. */
#define AGENT_MAX_BACKEND (6 + KANARY_MAX_DNS_LABEL + 1)

struct agent_endpoint {
	char address[AGENT_MAX_ADDRESS]; /* as inet_ntop writes it, so HAProxy shows the same */
	int port;
};

struct agent_route {
	char service[KANARY_MAX_DNS_LABEL + 1];
	char backend[AGENT_MAX_BACKEND]; /* route_<service> */
	int weight;
	int slots;
	struct agent_endpoint *endpoints; /* no two alike */
	size_t n_endpoints;
};

/* One state.json (STATE-FORMAT.md), checked. */
struct agent_state {
	char kanary[KANARY_MAX_NAME + 1];
	int64_t generation;
	char structure_hash[9];
	struct agent_route routes[KANARY_MAX_ROUTES];
	size_t n_routes;
};

/*
 * Reads state.json text into ret: {"kanary", "generation" (>= 0),
 * "structureHash" (8 lower-case hex digits), "routes": [{"backend" (a
 * DNS-1035 label, no two alike), "weight" (0..100; all summing to 100),
 * "slots" (1..RENDER_MAX_SLOTS), "endpoints": [{"address" (an IPv4 or IPv6
 * literal), "port" (1..65535)}]}] (1..KANARY_MAX_ROUTES routes, at most
 * KANARY_MAX_ENDPOINTS endpoints each)}. A repeated endpoint is kept once.
 * Unknown keys are ignored, so a newer controller may add some.
 * Returns 0; -EINVAL with a sentence in why (size bytes) for anything else,
 * -E2BIG past KANARY_MAX_STATE bytes, -ENOMEM.
 * Ownership: ret is caller storage, released with agent_state_finish.
 */
int agent_state_parse(const char *text, size_t len, struct agent_state *ret, char *why,
                      size_t size);
void agent_state_finish(struct agent_state *s);

#endif
