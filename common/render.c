/* SPDX-License-Identifier: Apache-2.0 */
/* Rendering haproxy.cfg for one Kanary, deterministically, and its hash. */
#include "common/render.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "common/buf.h"
#include "common/limits.h"

/*
 * Connections kept back from the global maxconn for each of the probe and
 * metrics frontends, so a saturated proxy still answers its liveness probe
 * (a failed liveness probe restarts the pod and cuts every session).
 */
#define RENDER_ADMIN_MAXCONN 32
_Static_assert(RENDER_MIN_MAXCONN >= 4 * RENDER_ADMIN_MAXCONN, "fe_main keeps the larger part");

void render_options_init(struct render_options *o)
{
	o->bind_address = "";
	o->proxy_port = RENDER_DEFAULT_PROXY_PORT;
	o->probe_port = RENDER_DEFAULT_PROBE_PORT;
	o->metrics_port = RENDER_DEFAULT_METRICS_PORT;
	o->runtime_dir = RENDER_DEFAULT_RUNTIME_DIR;
	o->maxconn = RENDER_DEFAULT_MAXCONN;
	o->nbthread = RENDER_DEFAULT_NBTHREAD;
	o->hard_stop_after_s = RENDER_DEFAULT_HARD_STOP_AFTER;
}

/* ---- slots and the fallback weights ---- */

int render_slots(size_t endpoints, int current)
{
	size_t slots = RENDER_MIN_SLOTS;

	if (current < 0 || current > RENDER_MAX_SLOTS || endpoints > RENDER_MAX_SLOTS)
		return -1;
	if (current > 0 && endpoints <= (size_t)current)
		return current;
	while (slots < 2 * endpoints && slots < RENDER_MAX_SLOTS)
		slots *= 2;
	return (int)slots;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/*
 * Each route that can be drawn and has servers keeps its share of the traffic
 * when every route is up, so a server of route r weighs w_r / n_r. The ratios
 * are scaled so the largest is the smallest integer that makes them all
 * exact; when that is above 256 the largest becomes 256 and the others are
 * rounded, never below 1 (a route that is drawn must stay reachable through
 * the fallback).
 */
int render_fallback_weights(size_t n_routes, const int *weights, const size_t *servers,
                            int *ret_weights)
{
	size_t m = SIZE_MAX;
	uint64_t wm, nm, scale = 1;
	bool exact = true;

	if (n_routes > KANARY_MAX_ROUTES || (n_routes && (!weights || !servers || !ret_weights)))
		return -EINVAL;
	for (size_t i = 0; i < n_routes; i++) {
		if (weights[i] < 0 || weights[i] > KANARY_MAX_WEIGHT ||
		    servers[i] > RENDER_MAX_SLOTS)
			return -EINVAL;
		ret_weights[i] = 0;
		if (weights[i] == 0 || servers[i] == 0)
			continue;
		/* i beats m when w_i / n_i > w_m / n_m. */
		if (m == SIZE_MAX ||
		    (uint64_t)weights[i] * servers[m] > (uint64_t)weights[m] * servers[i])
			m = i;
	}
	if (m == SIZE_MAX)
		return 0;
	wm = (uint64_t)weights[m];
	nm = servers[m];

	/* i / m = (w_i * n_m) / (n_i * w_m); the exact scale is the lcm of the denominators. */
	for (size_t i = 0; i < n_routes && exact; i++) {
		uint64_t num, den;

		if (weights[i] == 0 || servers[i] == 0)
			continue;
		num = (uint64_t)weights[i] * nm;
		den = (uint64_t)servers[i] * wm;
		den /= gcd_u64(num, den);
		scale = scale / gcd_u64(scale, den) * den;
		if (scale > RENDER_MAX_SERVER_WEIGHT)
			exact = false;
	}
	if (!exact)
		scale = RENDER_MAX_SERVER_WEIGHT;

	for (size_t i = 0; i < n_routes; i++) {
		uint64_t num, den, x;

		if (weights[i] == 0 || servers[i] == 0)
			continue;
		num = scale * (uint64_t)weights[i] * nm;
		den = (uint64_t)servers[i] * wm;
		x = (2 * num + den) / (2 * den); /* exact when the scale is, else rounded */
		if (x < 1)
			x = 1;
		if (x > RENDER_MAX_SERVER_WEIGHT)
			x = RENDER_MAX_SERVER_WEIGHT;
		ret_weights[i] = (int)x;
	}
	return 0;
}

/*
 * Checks what the structure is made of: k's routes (names DNS-1035 labels and
 * distinct, weights 0..100 summing to 100) and a slot count per route in
 * 1..RENDER_MAX_SLOTS. The weights are checked, not used: they are state.
 */
static int render_check_routes(const struct kanary *k, const int *slots)
{
	int sum = 0;

	if (k->n_routes == 0 || k->n_routes > KANARY_MAX_ROUTES || k->n_routes_seen > k->n_routes)
		return -EINVAL;
	for (size_t i = 0; i < k->n_routes; i++) {
		const struct kanary_route *kr = &k->routes[i];

		if (!kr->service_name || !kanary_is_dns1035_label(kr->service_name) ||
		    !kr->weight_set || kr->weight < 0 || kr->weight > KANARY_MAX_WEIGHT)
			return -EINVAL;
		if (slots[i] < 1 || slots[i] > RENDER_MAX_SLOTS)
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(k->routes[j].service_name, kr->service_name) == 0)
				return -EINVAL;
		sum += (int)kr->weight;
	}
	return sum == KANARY_WEIGHT_TOTAL ? 0 : -EINVAL;
}

/* ---- the text ---- */

/* The first append error sticks, so the printing code reads straight. */
struct out {
	struct buf b;
	int err;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (o->err)
		return;
	va_start(ap, fmt);
	r = buf_vprintf(&o->b, fmt, ap);
	va_end(ap);
	if (r < 0)
		o->err = r;
}

/*
 * The bind address: "" is every IPv4 address, as HAProxy reads ":port";
 * "::" is every IPv6 and IPv4 address on one socket; any other literal as is.
 */
static void out_bind(struct out *o, const struct render_options *opt, int port)
{
	const char *a = opt->bind_address;

	if (a[0] == '\0')
		outf(o, "    bind :%d\n", port);
	else if (strcmp(a, "::") == 0)
		outf(o, "    bind [::]:%d v4v6\n", port);
	else if (strchr(a, ':'))
		outf(o, "    bind [%s]:%d\n", a, port);
	else
		outf(o, "    bind %s:%d\n", a, port);
}

static void out_global(struct out *o, const struct render_options *opt)
{
	outf(o,
	     "# Rendered from a Kanary; every change is overwritten.\n"
	     "global\n"
	     "    log stdout format raw local0 info\n"
	     "    maxconn %d\n",
	     opt->maxconn);
	if (opt->nbthread > 0)
		outf(o, "    nbthread %d\n", opt->nbthread);
	outf(o, "    hard-stop-after %ds\n", opt->hard_stop_after_s);
	if (opt->runtime_dir) {
		outf(o,
		     "    stats socket %s/admin.sock mode 600 level admin expose-fd listeners\n"
		     "    stats timeout 30s\n",
		     opt->runtime_dir);
	}
	/*
	 * Detection: under traffic a server is marked down at its first failed
	 * connect (observe layer4, error-limit 1). A connection already sent to
	 * a route retries only inside it, so each failure the limit waits for
	 * can cost a client connection: error-limit 3 lost about 3/4 of a
	 * connection per dying pod, error-limit 1 about 1/3 (7 and 30 pods
	 * measured). The rise 2 checks bring a pod back within seconds. An
	 * idle server is marked down by the active checks within
	 * inter + (fall - 1) * fastinter, measured 3 s (6 s without
	 * fastinter). A drawn route without usable servers goes to fallback.
	 *
	 * No `option dontlognull`: in TCP mode it drops the log line of every
	 * connection whose client sent nothing, which is every connection of a
	 * protocol where the server speaks first (SMTP, MySQL), so the log
	 * would miss connections the metrics count.
	 */
	outf(o, "\n"
	        "defaults\n"
	        "    mode tcp\n"
	        "    log global\n"
	        "    option tcplog\n"
	        "    timeout connect 2s\n"
	        "    timeout client 1h\n"
	        "    timeout server 1h\n"
	        "    timeout client-fin 30s\n"
	        "    timeout server-fin 30s\n"
	        "    timeout check 2s\n"
	        "    retries 3\n"
	        "    option redispatch 1\n"
	        "    default-server check inter 2s fastinter 1s fall 3 rise 2"
	        " observe layer4 error-limit 1 on-error mark-down\n");
}

static void out_frontend(struct out *o, const struct kanary *k, const struct render_options *opt)
{
	outf(o, "\nfrontend fe_main\n");
	out_bind(o, opt, opt->proxy_port);
	outf(o,
	     "    maxconn %d\n"
	     "    # One draw per connection; the map gives each route a range of it as wide as\n"
	     "    # its weight. The agent replaces the map whole at runtime (prepare, add,\n"
	     "    # commit); it starts empty, so no route is drawn before the first state.\n"
	     "    tcp-request content set-var(txn.draw) rand(%d)\n"
	     "    tcp-request content set-var(txn.route) var(txn.draw),map_int(%s)\n",
	     opt->maxconn - 2 * RENDER_ADMIN_MAXCONN, KANARY_WEIGHT_TOTAL, RENDER_ROUTE_MAP);
	for (size_t i = 0; i < k->n_routes; i++) {
		const char *svc = k->routes[i].service_name;

		outf(o,
		     "    use_backend route_%s if { var(txn.route) -m str route_%s }"
		     " { nbsrv(route_%s) gt 0 }\n",
		     svc, svc, svc);
	}
	outf(o, "    # No route drawn yet, or the drawn route has no usable server.\n"
	        "    default_backend fallback\n");
}

/*
 * A slot is a server the agent points at an endpoint at runtime (set server
 * addr, health, state). Until then it is disabled, at an address nothing
 * listens on, so it takes no traffic and no health check.
 */
static void out_route_backends(struct out *o, const struct kanary *k, const int *slots)
{
	for (size_t i = 0; i < k->n_routes; i++) {
		const char *svc = k->routes[i].service_name;

		outf(o,
		     "\nbackend route_%s\n"
		     "    # Service %s: %d server slots the agent fills with its ready endpoints.\n"
		     "    balance roundrobin\n",
		     svc, svc, slots[i]);
		for (int j = 1; j <= slots[i]; j++)
			outf(o,
			     "    server " RENDER_SLOT_PREFIX "%d " RENDER_SLOT_PLACEHOLDER
			     " disabled\n",
			     j);
	}
}

static void out_fallback(struct out *o, const struct kanary *k, const int *slots)
{
	outf(o, "\nbackend fallback\n"
	        "    # Every slot of every route; the agent sets each one's address as its\n"
	        "    # route's and its weight to route weight / route endpoints (0: not drawn).\n"
	        "    balance roundrobin\n"
	        "    # Health and maintenance follow the route backends; track and check exclude\n"
	        "    # each other.\n"
	        "    default-server no-check\n");
	for (size_t i = 0; i < k->n_routes; i++) {
		for (int j = 1; j <= slots[i]; j++)
			outf(o,
			     "    server r%zu-" RENDER_SLOT_PREFIX "%d " RENDER_SLOT_PLACEHOLDER
			     " weight 0 track route_%s/" RENDER_SLOT_PREFIX "%d\n",
			     i, j, k->routes[i].service_name, j);
	}
}

static void out_probes(struct out *o, const struct render_options *opt)
{
	outf(o, "\n"
	        "defaults probes\n"
	        "    mode http\n"
	        "    timeout client 5s\n"
	        "    timeout http-request 5s\n"
	        "    timeout connect 2s\n"
	        "    timeout server 5s\n"
	        "\nfrontend health\n");
	out_bind(o, opt, opt->probe_port);
	outf(o,
	     "    maxconn %d\n"
	     "    monitor-uri /healthz\n"
	     "    # Not ready before the agent has put in the first state (draw 0 always belongs\n"
	     "    # to a route then), so a new pod never takes traffic with empty slots; then\n"
	     "    # ready while a route that can be drawn has a usable server (the fallback\n"
	     "    # weighs the servers of the others 0).\n"
	     "    http-request return status 503 content-type text/plain string \"no-state\""
	     " if { path /ready } !{ int(0),map_int(%s) -m found }\n"
	     "    http-request return status 200 content-type text/plain string \"ready\""
	     " if { path /ready } { nbsrv(fallback) gt 0 }\n"
	     "    http-request return status 503 content-type text/plain"
	     " string \"no-usable-route\" if { path /ready }\n"
	     "\nfrontend metrics\n",
	     RENDER_ADMIN_MAXCONN, RENDER_ROUTE_MAP);
	out_bind(o, opt, opt->metrics_port);
	outf(o,
	     "    maxconn %d\n"
	     "    http-request use-service prometheus-exporter if { path /metrics }\n",
	     RENDER_ADMIN_MAXCONN);
}

static bool render_port_ok(int port)
{
	return port >= 1 && port <= 65535;
}

/* Only an absolute path of plain characters goes into the configuration. */
static bool render_dir_ok(const char *d)
{
	size_t n = strlen(d);

	if (n < 2 || n > 100 || d[0] != '/' || d[n - 1] == '/')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = d[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '/' || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool render_options_ok(const struct render_options *o)
{
	unsigned char bin[sizeof(struct in6_addr)];

	if (!o->bind_address)
		return false;
	if (o->bind_address[0] != '\0' && inet_pton(AF_INET, o->bind_address, bin) != 1 &&
	    inet_pton(AF_INET6, o->bind_address, bin) != 1)
		return false;
	if (!render_port_ok(o->proxy_port) || !render_port_ok(o->probe_port) ||
	    !render_port_ok(o->metrics_port) || o->proxy_port == o->probe_port ||
	    o->proxy_port == o->metrics_port || o->probe_port == o->metrics_port)
		return false;
	if (o->runtime_dir && !render_dir_ok(o->runtime_dir))
		return false;
	if (o->maxconn < RENDER_MIN_MAXCONN || o->maxconn > RENDER_MAX_MAXCONN)
		return false;
	return o->nbthread >= 0 && o->nbthread <= RENDER_MAX_NBTHREAD && o->hard_stop_after_s >= 1;
}

int render_structure(const struct kanary *k, const struct kanary_resolution *res, const int *slots,
                     const struct render_options *opt, char **ret_text, size_t *ret_len)
{
	struct out o;
	int r;

	if (!k || !res || !slots || !opt || !ret_text || !render_options_ok(opt) ||
	    k->n_routes != res->n_routes)
		return -EINVAL;
	r = render_check_routes(k, slots);
	if (r < 0)
		return r;

	buf_init(&o.b, KANARY_MAX_CONFIG);
	o.err = 0;
	out_global(&o, opt);
	out_frontend(&o, k, opt);
	out_route_backends(&o, k, slots);
	out_fallback(&o, k, slots);
	out_probes(&o, opt);
	r = o.err;
	if (r == 0)
		r = buf_steal(&o.b, ret_text, ret_len);
	buf_finish(&o.b);
	return r;
}

int render_haproxy(const struct kanary *k, const struct kanary_resolution *res,
                   const struct render_options *opt, char **ret_text, size_t *ret_len)
{
	int slots[KANARY_MAX_ROUTES];

	if (!k || !res || k->n_routes != res->n_routes || k->n_routes > KANARY_MAX_ROUTES)
		return -EINVAL;
	for (size_t i = 0; i < res->n_routes; i++) {
		if (res->routes[i].n_endpoints > KANARY_MAX_ENDPOINTS)
			return -E2BIG;
		slots[i] = render_slots(res->routes[i].n_endpoints, 0);
		if (slots[i] < 0)
			return -E2BIG;
	}
	return render_structure(k, res, slots, opt, ret_text, ret_len);
}

int render_hash(const char *text, size_t len, char ret_hex[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char digest[32];

	if ((!text && len > 0) || !ret_hex)
		return -EINVAL;
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, text, len, digest) < 0)
		return -EIO;
	for (size_t i = 0; i < sizeof(digest); i++) {
		ret_hex[2 * i] = hex[digest[i] >> 4];
		ret_hex[2 * i + 1] = hex[digest[i] & 0xf];
	}
	ret_hex[64] = '\0';
	return 0;
}
