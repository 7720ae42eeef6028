/* SPDX-License-Identifier: Apache-2.0 */
/* Rendering haproxy.cfg for one Kanary, deterministically, and its hash. */
#ifndef KANARY_RENDER_H
#define KANARY_RENDER_H

#include <stddef.h>

#include "common/kanary.h"
#include "common/resolve.h"

/* Where HAProxy listens inside its pod, and its process limits. */
struct render_options {
	/* "" binds every IPv4 address, "::" every IPv6 and IPv4 one; tests use 127.0.0.1 */
	const char *bind_address;
	int proxy_port;          /* the frontend; unprivileged so HAProxy runs as non-root */
	int probe_port;          /* /healthz and /ready */
	int metrics_port;        /* /metrics (Prometheus) */
	const char *runtime_dir; /* directory of the admin socket; NULL for none */
	int maxconn;
	int nbthread;          /* 0: unset, one thread per CPU HAProxy may run on */
	int hard_stop_after_s; /* below the pod's terminationGracePeriodSeconds */
};

#define RENDER_DEFAULT_PROXY_PORT   8080
#define RENDER_DEFAULT_PROBE_PORT   8404
#define RENDER_DEFAULT_METRICS_PORT 8405
/* The admin socket's directory; the Deployment mounts an emptyDir there. */
#define RENDER_DEFAULT_RUNTIME_DIR "/var/run/haproxy"
/*
 * HAProxy needs about 2 * maxconn file descriptors and refuses to start without
 * them. No fixed thread count: unset, HAProxy starts a thread per CPU it may
 * run on, where a fixed 2 is more than a one-CPU node has (HAProxy 3.0 warns
 * about it) and less than a larger node could use.
 */
#define RENDER_DEFAULT_MAXCONN         8000
#define RENDER_DEFAULT_NBTHREAD        0
#define RENDER_DEFAULT_HARD_STOP_AFTER 60
/*
 * Accepted ranges. 128 connections are the least: the probe and metrics
 * frontends keep 32 each, so a busy proxy still answers its probes. 64 threads
 * is HAProxy 2.6's default build limit.
 */
#define RENDER_MIN_MAXCONN  128
#define RENDER_MAX_MAXCONN  1000000
#define RENDER_MAX_NBTHREAD 64

/* The defaults the controller uses. */
void render_options_init(struct render_options *o);

/*
 * Server slots: a route's backend has a fixed number of servers the agent
 * points at its ready endpoints at runtime. Slots grow in steps with room to
 * spare and never shrink only because pods went away, so scaling a version
 * rolls HAProxy rarely: at least RENDER_MIN_SLOTS, at most RENDER_MAX_SLOTS.
 */
#define RENDER_MIN_SLOTS 16
#define RENDER_MAX_SLOTS KANARY_MAX_ENDPOINTS
/* Slot n of a route backend is server "s<n>", n from 1; fallback's is "r<route index>-s<n>". */
#define RENDER_SLOT_PREFIX "s"
/* Where an empty slot points: nothing listens on port 1, and the slot is disabled. */
#define RENDER_SLOT_PLACEHOLDER "127.0.0.1:1"
/*
 * The route map: draw ranges "lo:hi" to "route_<service>". HAProxy 2.6 loads
 * a map from a file and has no virtual maps (3.0's virt@), so it loads this
 * empty file and the agent fills it through the admin socket.
 */
#define RENDER_ROUTE_MAP "/dev/null"
/* HAProxy refuses server weights above this ("not within 0 and 256"). */
#define RENDER_MAX_SERVER_WEIGHT 256

/*
 * The slots a route needs for endpoints ready endpoints when it has current
 * slots now (0: none yet): current while they fit, else the next power of two
 * >= max(RENDER_MIN_SLOTS, 2 * endpoints). With 16 at least and doubling, a
 * version scaled pod by pod from 3 to 40 rolls once (16 -> 64), and a route
 * going 3 -> 10 -> 2 pods not at all; a slot costs two idle server entries.
 * Returns the slot count, or -1 for current outside 0..RENDER_MAX_SLOTS or
 * endpoints past RENDER_MAX_SLOTS.
 */
int render_slots(size_t endpoints, int current);

/*
 * The fallback backend's weight for each server of route i, from the route
 * weights and how many servers each has: w_i / n_i, scaled to integers
 * 1..RENDER_MAX_SERVER_WEIGHT (exact when that range allows), 0 for a route
 * of weight 0 or without servers. Returns 0, or -EINVAL (more than
 * KANARY_MAX_ROUTES routes, a weight outside 0..100, servers past
 * RENDER_MAX_SLOTS). ret_weights has n_routes entries.
 */
int render_fallback_weights(size_t n_routes, const int *weights, const size_t *servers,
                            int *ret_weights);

/*
 * Renders the structure of a valid, defaulted Kanary: haproxy.cfg with
 * one backend per route of slots[i] server slots, the frontend's draw through
 * the route map, a fallback backend tracking every slot, health checks, probe
 * and metrics frontends. Weights and endpoints are state, which the agent
 * applies at runtime: they never change these bytes (res is only checked for
 * its route count). The same input gives the same bytes.
 * Invalid input (-EINVAL): a NULL argument; route counts of k and res that
 * differ; a service name that is missing, not a DNS-1035 label or repeated; a
 * weight missing or outside 0..100; weights not summing to 100; a slot count
 * outside 1..RENDER_MAX_SLOTS; options out of range (ports 1..65535 and
 * distinct, bind_address "" or an IP literal, runtime_dir an absolute path of
 * [A-Za-z0-9/._-], maxconn RENDER_MIN_MAXCONN..RENDER_MAX_MAXCONN, nbthread 0
 * (unset) or 1..RENDER_MAX_NBTHREAD, hard_stop_after_s >= 1).
 * Returns 0, -EINVAL, -E2BIG past KANARY_MAX_CONFIG, -ENOMEM.
 * Ownership: *ret_text is the caller's (free()).
 */
int render_structure(const struct kanary *k, const struct kanary_resolution *res, const int *slots,
                     const struct render_options *o, char **ret_text, size_t *ret_len);

/*
 * render_structure with the slots a route would get with no slots before:
 * render_slots(its endpoints, 0). -E2BIG past KANARY_MAX_ENDPOINTS endpoints.
 */
int render_haproxy(const struct kanary *k, const struct kanary_resolution *res,
                   const struct render_options *o, char **ret_text, size_t *ret_len);

/* Lower-case hex SHA-256 of text (GnuTLS). ret_hex has room for 64 digits and the NUL. */
int render_hash(const char *text, size_t len, char ret_hex[65]);

#endif
