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
 * Renders haproxy.cfg for a valid, defaulted Kanary and its resolution:
 * one backend per route, one random draw per connection with
 * cumulative thresholds, weight-0 routes never drawn, a fallback backend of
 * every pod with proportional weights and `track`, health checks, probe and
 * metrics frontends. The same input gives the same bytes.
 * Invalid input (-EINVAL): a NULL argument; route counts of k and res that
 * differ; a service name that is missing, not a DNS-1035 label or repeated; a
 * weight missing or outside 0..100; weights not summing to 100; an endpoint
 * that is not an IPv4/IPv6 literal with a port in 1..65535, or repeated;
 * options out of range (ports 1..65535 and distinct, bind_address "" or an IP
 * literal, runtime_dir an absolute path of [A-Za-z0-9/._-], maxconn
 * RENDER_MIN_MAXCONN..RENDER_MAX_MAXCONN, nbthread 0 (unset) or 1..RENDER_MAX_NBTHREAD,
 * hard_stop_after_s >= 1).
 * Returns 0, -EINVAL, -E2BIG past KANARY_MAX_CONFIG (or KANARY_MAX_ENDPOINTS
 * endpoints on a route), -ENOMEM.
 * Ownership: *ret_text is the caller's (free()).
 */
int render_haproxy(const struct kanary *k, const struct kanary_resolution *res,
                   const struct render_options *o, char **ret_text, size_t *ret_len);

/* Lower-case hex SHA-256 of text (GnuTLS). ret_hex has room for 64 digits and the NUL. */
int render_hash(const char *text, size_t len, char ret_hex[65]);

#endif
