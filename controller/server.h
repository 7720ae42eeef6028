/* SPDX-License-Identifier: Apache-2.0 */
/* The controller's plain HTTP server for /healthz, /readyz and /metrics. */
#ifndef KANARY_CONTROLLER_SERVER_H
#define KANARY_CONTROLLER_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/*
 * A plain HTTP server (libmicrohttpd, its own thread) for the probes and
 * /metrics: GET /healthz, GET /readyz, GET /metrics, each served when its
 * flag is given. Anything else is 404; methods but GET and HEAD are 405.
 */
#define SERVER_HEALTH  (1u << 0) /* /healthz and /readyz */
#define SERVER_METRICS (1u << 1) /* /metrics */

struct server_handlers {
	/* 0 when alive; else why not, in why. */
	int (*healthz)(void *ctx, char *why, size_t size);
	/* 0 when ready to work (informers synced); else why not, in why. */
	int (*readyz)(void *ctx, char *why, size_t size);
	/* The exposition text. */
	int (*metrics)(void *ctx, struct buf *out);
	void *ctx;
};

/*
 * Parses a Kubernetes-style bind address: ":8080" (every address), "127.0.0.1:8080",
 * "[::1]:8080", or "0" to turn the server off (*ret_off). Returns 0 or -EINVAL.
 */
int server_parse_bind(const char *s, bool *ret_off);

struct server;

/*
 * Starts serving on bind (a server_parse_bind address that is not "0").
 * Returns 0, -EINVAL for a bad address, -EADDRINUSE (or another errno) when
 * it cannot listen. Ownership: *ret is the caller's, freed with server_stop.
 */
int server_start(const char *bind, unsigned paths, const struct server_handlers *h,
                 struct server **ret);
/* Stops the thread and frees the server; NULL does nothing. */
void server_stop(struct server *s);

#endif
