/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KANARY_RENDER_H
#define KANARY_RENDER_H

#include <stddef.h>

#include "common/kanary.h"
#include "common/resolve.h"

/* Where HAProxy listens inside its pod, and its process limits. */
struct render_options {
	const char *bind_address; /* "" binds every address; tests use 127.0.0.1 */
	int proxy_port;		  /* the frontend; unprivileged so HAProxy runs as non-root */
	int probe_port;		  /* /healthz and /ready */
	int metrics_port;	  /* /metrics (Prometheus) */
	const char *runtime_dir;  /* directory of the admin socket; NULL for none */
	int maxconn;
	int nbthread;
	int hard_stop_after_s;	  /* below the pod's terminationGracePeriodSeconds */
};

#define RENDER_DEFAULT_PROXY_PORT   8080
#define RENDER_DEFAULT_PROBE_PORT   8404
#define RENDER_DEFAULT_METRICS_PORT 8405

/* The defaults the controller uses. */
void render_options_init(struct render_options *o);

/*
 * Renders haproxy.cfg for a valid, defaulted Kanary and its resolution
 * (DESIGN §4): one backend per route, one random draw per connection with
 * cumulative thresholds, weight-0 routes never drawn, a fallback backend of
 * every pod with proportional weights and `track`, health checks, probe and
 * metrics frontends. The same input gives the same bytes.
 * Returns 0, -EINVAL for an invalid input, -E2BIG past KANARY_MAX_CONFIG, -ENOMEM.
 * Ownership: *ret_text is the caller's (free()).
 */
int render_haproxy(const struct kanary *k, const struct kanary_resolution *res,
		   const struct render_options *o, char **ret_text, size_t *ret_len);

/* Lower-case hex SHA-256 of text (GnuTLS). ret_hex has room for 64 digits and the NUL. */
int render_hash(const char *text, size_t len, char ret_hex[65]);

#endif
