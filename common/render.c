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

/* HAProxy refuses server weights above this ("not within 0 and 256"). */
#define RENDER_MAX_SERVER_WEIGHT 256
/* "ep-" + a 45-character IPv6 literal + "-65535" and the NUL, with room to spare. */
#define RENDER_MAX_SERVER_NAME 64
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

/* ---- the plan: what the configuration says, before any text ---- */

struct plan_server {
	char name[RENDER_MAX_SERVER_NAME]; /* ep-<address>-<port>, unique in its route */
	const char *address;               /* borrowed from the resolution */
	bool ipv6;
	int port;
};

struct plan_route {
	const char *service; /* borrowed from the Kanary */
	int weight;
	/* The draw values [lo, hi] that pick this route; only when weight > 0. */
	int lo, hi;
	/* Weight of each of its servers in the fallback backend; 0: not there. */
	int fallback_weight;
	struct plan_server *servers; /* resolution order */
	size_t n_servers;
};

/*
 * Everything the configuration decides, computed once: the draw thresholds,
 * the server names and addresses, the fallback weights. The text below is a
 * straight print of it, and a runtime-API updater can diff two plans.
 * It borrows strings from the Kanary and the resolution it was built from.
 */
struct plan {
	struct plan_route routes[KANARY_MAX_ROUTES];
	size_t n_routes;
};

static void plan_finish(struct plan *p)
{
	for (size_t i = 0; i < p->n_routes; i++)
		free(p->routes[i].servers);
	p->n_routes = 0;
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
 * Per-server weights for the fallback backend: each route that can be drawn
 * and has servers keeps its share of the traffic when every route is up, so a
 * server of route r weighs w_r / n_r. The ratios are scaled so the largest is
 * the smallest integer that makes them all exact; when that is above 256 the
 * largest becomes 256 and the others are rounded, never below 1 (a route that
 * is drawn must stay reachable through the fallback).
 */
static void plan_fallback_weights(struct plan *p)
{
	size_t m = SIZE_MAX;
	uint64_t wm, nm, scale = 1;
	bool exact = true;

	for (size_t i = 0; i < p->n_routes; i++) {
		const struct plan_route *r = &p->routes[i];

		if (r->weight == 0 || r->n_servers == 0)
			continue;
		/* r beats m when w_r / n_r > w_m / n_m. */
		if (m == SIZE_MAX || (uint64_t)r->weight * p->routes[m].n_servers >
		                         (uint64_t)p->routes[m].weight * r->n_servers)
			m = i;
	}
	if (m == SIZE_MAX)
		return;
	wm = (uint64_t)p->routes[m].weight;
	nm = p->routes[m].n_servers;

	/* r / m = (w_r * n_m) / (n_r * w_m); the exact scale is the lcm of the denominators. */
	for (size_t i = 0; i < p->n_routes && exact; i++) {
		const struct plan_route *r = &p->routes[i];
		uint64_t num, den, g;

		if (r->weight == 0 || r->n_servers == 0)
			continue;
		num = (uint64_t)r->weight * nm;
		den = (uint64_t)r->n_servers * wm;
		g = gcd_u64(num, den);
		den /= g;
		scale = scale / gcd_u64(scale, den) * den;
		if (scale > RENDER_MAX_SERVER_WEIGHT)
			exact = false;
	}
	if (!exact)
		scale = RENDER_MAX_SERVER_WEIGHT;

	for (size_t i = 0; i < p->n_routes; i++) {
		struct plan_route *r = &p->routes[i];
		uint64_t num, den, x;

		if (r->weight == 0 || r->n_servers == 0)
			continue;
		num = scale * (uint64_t)r->weight * nm;
		den = (uint64_t)r->n_servers * wm;
		x = (2 * num + den) / (2 * den); /* exact when the scale is, else rounded */
		if (x < 1)
			x = 1;
		if (x > RENDER_MAX_SERVER_WEIGHT)
			x = RENDER_MAX_SERVER_WEIGHT;
		r->fallback_weight = (int)x;
	}
}

static int plan_server_cmp(const void *a, const void *b)
{
	const struct plan_server *const *x = a;
	const struct plan_server *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* -EINVAL when two servers of the route would get the same name; HAProxy refuses that. */
static int plan_check_unique(const struct plan_route *r)
{
	const struct plan_server **v;
	int ret = 0;

	if (r->n_servers < 2)
		return 0;
	v = calloc(r->n_servers, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < r->n_servers; i++)
		v[i] = &r->servers[i];
	qsort(v, r->n_servers, sizeof(*v), plan_server_cmp);
	for (size_t i = 1; i < r->n_servers; i++) {
		if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
			ret = -EINVAL;
			break;
		}
	}
	free(v);
	return ret;
}

/*
 * The server name is the address and port with every '.' (IPv4) or ':'
 * (IPv6) turned into '-': ep-10-244-1-11-8080, ep-fd00--1-8080. An IPv6
 * literal with an IPv4 tail keeps its dots, so no two addresses share a name.
 * Accepts only IPv4 and IPv6 literals, which also keeps the text of the
 * configuration free of anything the resolution did not mean.
 */
static int plan_server_init(struct plan_server *s, const struct kanary_endpoint *ep)
{
	unsigned char bin[sizeof(struct in6_addr)];
	size_t len, o = 0;
	int n;

	if (!ep->address || ep->port < 1 || ep->port > 65535)
		return -EINVAL;
	len = strlen(ep->address);
	if (len == 0 || len >= INET6_ADDRSTRLEN)
		return -EINVAL;
	if (inet_pton(AF_INET, ep->address, bin) == 1)
		s->ipv6 = false;
	else if (inet_pton(AF_INET6, ep->address, bin) == 1)
		s->ipv6 = true;
	else
		return -EINVAL;

	memcpy(s->name, "ep-", 3);
	o = 3;
	for (size_t i = 0; i < len; i++) {
		char c = ep->address[i];

		if (c == ':' || (c == '.' && !s->ipv6))
			c = '-';
		s->name[o++] = c;
	}
	n = snprintf(s->name + o, sizeof(s->name) - o, "-%d", ep->port);
	if (n < 0 || (size_t)n >= sizeof(s->name) - o)
		return -EINVAL;
	s->address = ep->address;
	s->port = ep->port;
	return 0;
}

/*
 * Builds the plan of k and res. Rejects with -EINVAL: a route count that
 * differs between them or is out of range, a missing or non-DNS-1035 or
 * repeated service name, a weight missing or outside 0..100, weights not
 * summing to 100, an endpoint that is not an IP literal with a port in
 * 1..65535. -E2BIG past KANARY_MAX_ENDPOINTS on a route; -ENOMEM.
 * Ownership: ret is caller storage, released with plan_finish.
 */
static int plan_build(const struct kanary *k, const struct kanary_resolution *res, struct plan *ret)
{
	struct plan p = {0};
	int sum = 0, r;

	if (k->n_routes != res->n_routes || k->n_routes == 0 || k->n_routes > KANARY_MAX_ROUTES ||
	    k->n_routes_seen > k->n_routes)
		return -EINVAL;
	for (size_t i = 0; i < k->n_routes; i++) {
		const struct kanary_route *kr = &k->routes[i];

		if (!kr->service_name || !kanary_is_dns1035_label(kr->service_name) ||
		    !kr->weight_set || kr->weight < 0 || kr->weight > KANARY_MAX_WEIGHT)
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(k->routes[j].service_name, kr->service_name) == 0)
				return -EINVAL;
		sum += (int)kr->weight;
	}
	if (sum != KANARY_WEIGHT_TOTAL)
		return -EINVAL;

	sum = 0;
	for (size_t i = 0; i < k->n_routes; i++) {
		const struct kanary_resolved_route *rr = &res->routes[i];
		struct plan_route *pr = &p.routes[i];

		p.n_routes = i + 1;
		pr->service = k->routes[i].service_name;
		pr->weight = (int)k->routes[i].weight;
		if (pr->weight > 0) {
			pr->lo = sum;
			pr->hi = sum + pr->weight - 1;
			sum += pr->weight;
		}
		if (rr->n_endpoints > KANARY_MAX_ENDPOINTS) {
			r = -E2BIG;
			goto out_finish_plan;
		}
		if (rr->n_endpoints == 0)
			continue;
		if (!rr->endpoints) {
			r = -EINVAL;
			goto out_finish_plan;
		}
		pr->servers = calloc(rr->n_endpoints, sizeof(*pr->servers));
		if (!pr->servers) {
			r = -ENOMEM;
			goto out_finish_plan;
		}
		pr->n_servers = rr->n_endpoints;
		for (size_t j = 0; j < rr->n_endpoints; j++) {
			r = plan_server_init(&pr->servers[j], &rr->endpoints[j]);
			if (r < 0)
				goto out_finish_plan;
		}
		r = plan_check_unique(pr);
		if (r < 0)
			goto out_finish_plan;
	}
	plan_fallback_weights(&p);
	*ret = p;
	return 0;

out_finish_plan:
	plan_finish(&p);
	return r;
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

/* "[addr]:port" for IPv6 (what HAProxy 2.6 reads), "addr:port" for IPv4. */
static void out_server_addr(struct out *o, const struct plan_server *s)
{
	if (s->ipv6)
		outf(o, "[%s]:%d", s->address, s->port);
	else
		outf(o, "%s:%d", s->address, s->port);
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

static void out_frontend(struct out *o, const struct plan *p, const struct render_options *opt)
{
	outf(o, "\nfrontend fe_main\n");
	out_bind(o, opt, opt->proxy_port);
	outf(o,
	     "    maxconn %d\n"
	     "    # One draw per connection; each route owns a range of it as wide as its weight.\n"
	     "    tcp-request content set-var(txn.route) rand(%d)\n",
	     opt->maxconn - 2 * RENDER_ADMIN_MAXCONN, KANARY_WEIGHT_TOTAL);
	for (size_t i = 0; i < p->n_routes; i++) {
		const struct plan_route *r = &p->routes[i];

		if (r->weight == 0)
			continue;
		outf(o,
		     "    use_backend route_%s if { var(txn.route) -m int %d:%d }"
		     " { nbsrv(route_%s) gt 0 }\n",
		     r->service, r->lo, r->hi, r->service);
	}
	outf(o, "    # The drawn route has no usable server.\n"
	        "    default_backend fallback\n");
}

static void out_route_backends(struct out *o, const struct plan *p)
{
	for (size_t i = 0; i < p->n_routes; i++) {
		const struct plan_route *r = &p->routes[i];

		outf(o, "\nbackend route_%s\n", r->service);
		if (r->weight > 0)
			outf(o, "    # Service %s, weight %d\n", r->service, r->weight);
		else
			outf(o, "    # Service %s, weight 0: never drawn\n", r->service);
		outf(o, "    balance roundrobin\n");
		for (size_t j = 0; j < r->n_servers; j++) {
			outf(o, "    server %s ", r->servers[j].name);
			out_server_addr(o, &r->servers[j]);
			outf(o, "\n");
		}
	}
}

static void out_fallback(struct out *o, const struct plan *p)
{
	outf(o,
	     "\nbackend fallback\n"
	     "    # Every server of the drawn routes, weighted by route weight / route servers.\n"
	     "    balance roundrobin\n"
	     "    # Health follows the route backends; track and check exclude each other.\n"
	     "    default-server no-check\n");
	for (size_t i = 0; i < p->n_routes; i++) {
		const struct plan_route *r = &p->routes[i];

		if (r->fallback_weight == 0)
			continue;
		for (size_t j = 0; j < r->n_servers; j++) {
			const struct plan_server *s = &r->servers[j];

			outf(o, "    server r%zu-%s ", i, s->name);
			out_server_addr(o, s);
			outf(o, " weight %d track route_%s/%s\n", r->fallback_weight, r->service,
			     s->name);
		}
	}
}

static void out_probes(struct out *o, const struct plan *p, const struct render_options *opt)
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
	     "    # Ready while one route that can be drawn has a usable server.\n",
	     RENDER_ADMIN_MAXCONN);
	for (size_t i = 0; i < p->n_routes; i++) {
		const struct plan_route *r = &p->routes[i];

		if (r->weight == 0)
			continue;
		outf(o,
		     "    http-request return status 200 content-type text/plain string \"ready\""
		     " if { path /ready } { nbsrv(route_%s) gt 0 }\n",
		     r->service);
	}
	outf(o, "    http-request return status 503 content-type text/plain"
	        " string \"no-usable-route\" if { path /ready }\n"
	        "\nfrontend metrics\n");
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

int render_haproxy(const struct kanary *k, const struct kanary_resolution *res,
                   const struct render_options *opt, char **ret_text, size_t *ret_len)
{
	struct plan p;
	struct out o;
	int r;

	if (!k || !res || !opt || !ret_text || !render_options_ok(opt))
		return -EINVAL;
	r = plan_build(k, res, &p);
	if (r < 0)
		return r;

	buf_init(&o.b, KANARY_MAX_CONFIG);
	o.err = 0;
	out_global(&o, opt);
	out_frontend(&o, &p, opt);
	out_route_backends(&o, &p);
	out_fallback(&o, &p);
	out_probes(&o, &p, opt);
	r = o.err;
	if (r == 0)
		r = buf_steal(&o.b, ret_text, ret_len);
	buf_finish(&o.b);
	plan_finish(&p);
	return r;
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
