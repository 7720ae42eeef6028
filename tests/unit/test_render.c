/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the haproxy.cfg structure renderer, checked by the real haproxy. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/kanary.h"
#include "common/limits.h"
#include "common/render.h"
#include "common/resolve.h"

extern char **environ;

/* ---- building the model by hand ---- */

struct route_spec {
	const char *service;
	int weight;
	size_t pods;
	bool ipv6;
};

struct model {
	struct kanary *k;
	struct kanary_resolution res;
};

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

/*
 * Route i gets pods addressed 10.<i+1>.<j/250>.<j%250+1> (or fd00:<i+1>::<j+1>)
 * on port 8080 + i, in that (sorted) order. Ownership: model_finish.
 */
static void model_init(struct model *m, const struct route_spec *rs, size_t n)
{
	struct kanary *k = calloc(1, sizeof(*k));

	assert_non_null(k);
	k->namespace = xstrdup("default");
	k->name = xstrdup("simple-kanary-rule");
	k->destination = xstrdup("myapp");
	k->port_set = true;
	k->port = 80;
	k->replicas_set = true;
	k->replicas = 2;
	memset(&m->res, 0, sizeof(m->res));
	for (size_t i = 0; i < n; i++) {
		struct kanary_route *r = &k->routes[i];
		struct kanary_resolved_route *rr = &m->res.routes[i];

		r->service_name = xstrdup(rs[i].service);
		r->port.set = true;
		r->port.number = 80;
		r->weight_set = true;
		r->weight = rs[i].weight;
		rr->service_found = true;
		rr->port_found = true;
		rr->service_port = 80;
		rr->port_name = xstrdup("");
		rr->target_port = 8080 + (int)i;
		if (rs[i].pods == 0)
			continue;
		rr->endpoints = calloc(rs[i].pods, sizeof(*rr->endpoints));
		assert_non_null(rr->endpoints);
		rr->n_endpoints = rs[i].pods;
		for (size_t j = 0; j < rs[i].pods; j++) {
			char addr[64];

			if (rs[i].ipv6)
				snprintf(addr, sizeof(addr), "fd00:%zx::%zx", i + 1, j + 1);
			else
				snprintf(addr, sizeof(addr), "10.%zu.%zu.%zu", i + 1, j / 250,
				         j % 250 + 1);
			rr->endpoints[j].address = xstrdup(addr);
			rr->endpoints[j].port = 8080 + (int)i;
		}
	}
	k->n_routes = n;
	k->n_routes_seen = n;
	m->res.n_routes = n;
	m->k = k;
}

static void model_finish(struct model *m)
{
	kanary_resolution_finish(&m->res);
	kanary_destroy(m->k);
}

static void test_options(struct render_options *o)
{
	render_options_init(o);
	o->bind_address = "127.0.0.1";
	o->maxconn = 1000;
}

/*
 * Not inlined: gcc 12 at -O2 and above then follows the address of the local
 * text into cmocka's assertions and warns of a dangling pointer that is not.
 */
__attribute__((noinline)) static char *render_ok(const struct model *m,
                                                 const struct render_options *o)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(render_haproxy(m->k, &m->res, o, &text, &len), 0);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	return text;
}

/* ---- the real haproxy ---- */

/* KANARY_HAPROXY (meson passes each haproxy under test), else haproxy on PATH. */
static const char *haproxy_path(void)
{
	const char *p = getenv("KANARY_HAPROXY");

	return p && p[0] ? p : "haproxy";
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return text;
}

/*
 * Runs `haproxy -c -V -f` on cfg: it must exit 0, say the configuration is
 * valid, and warn about nothing. -V because HAProxy 3.0 prints the "valid"
 * line only in verbose mode (2.6 prints it either way).
 */
static void assert_haproxy_accepts(const char *cfg)
{
	char cfg_path[] = "/tmp/kanary-render-XXXXXX";
	char out_path[] = "/tmp/kanary-render-out-XXXXXX";
	char opt_c[] = "-c", opt_v[] = "-V", opt_f[] = "-f";
	char *argv[] = {(char *)(uintptr_t)haproxy_path(), opt_c, opt_v, opt_f, cfg_path, NULL};
	posix_spawn_file_actions_t fa;
	int cfg_fd, out_fd, status, r;
	char *out;
	pid_t pid;

	cfg_fd = mkstemp(cfg_path);
	assert_true(cfg_fd >= 0);
	assert_int_equal(write(cfg_fd, cfg, strlen(cfg)), (ssize_t)strlen(cfg));
	assert_int_equal(close(cfg_fd), 0);
	out_fd = mkstemp(out_path);
	assert_true(out_fd >= 0);

	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, out_fd, STDERR_FILENO), 0);
	/* posix_spawnp: a bare "haproxy" is looked up on PATH. */
	r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		fail_msg("cannot run %s (%s): install haproxy or set KANARY_HAPROXY", argv[0],
		         strerror(r));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(out_fd);

	out = read_file(out_path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    !strstr(out, "Configuration file is valid") || strstr(out, "[WARNING]") ||
	    strstr(out, "[ALERT]"))
		print_error("%s -c -V refused or warned:\n%s\n---- config ----\n%s\n", argv[0], out,
		            cfg);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_non_null(strstr(out, "Configuration file is valid"));
	assert_null(strstr(out, "[WARNING]"));
	assert_null(strstr(out, "[ALERT]"));
	free(out);
	unlink(cfg_path);
	unlink(out_path);
}

/* The number of times needle occurs in text. */
static size_t count(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void assert_has(const char *text, const char *line)
{
	if (!strstr(text, line))
		print_error("missing: %s\n---- config ----\n%s\n", line, text);
	assert_non_null(strstr(text, line));
}

/* Renders the routes, checks the config with haproxy and hands back the text. */
static char *render_routes(const struct route_spec *rs, size_t n)
{
	struct render_options o;
	struct model m;
	char *text;

	test_options(&o);
	model_init(&m, rs, n);
	text = render_ok(&m, &o);
	model_finish(&m);
	assert_haproxy_accepts(text);
	return text;
}

/* ---- the structure: slots, the route map, the fallback ---- */

static void test_structure_of_two_routes(void **state)
{
	static const struct route_spec rs[] = {{"myapp-v1", 80, 3, false},
	                                       {"myapp-v2", 20, 7, false}};
	char *t = render_routes(rs, 2);

	(void)state;
	/* One draw per connection, looked up in the route map the agent fills. */
	assert_has(t,
	           "\n    tcp-request content set-var(txn.draw) rand(100)\n"
	           "    tcp-request content set-var(txn.route) var(txn.draw),map_int(/dev/null)\n");
	assert_int_equal(count(t, "rand("), 1);
	assert_has(t, "\n    use_backend route_myapp-v1 if { var(txn.route) -m str route_myapp-v1 }"
	              " { nbsrv(route_myapp-v1) gt 0 }\n");
	assert_has(t, "\n    use_backend route_myapp-v2 if { var(txn.route) -m str route_myapp-v2 }"
	              " { nbsrv(route_myapp-v2) gt 0 }\n");
	assert_has(t, "\n    default_backend fallback\n");
	/* 3 and 7 endpoints: 16 slots each; disabled, at the placeholder. */
	assert_has(t, "\nbackend route_myapp-v1\n"
	              "    # Service myapp-v1: 16 server slots the agent fills with its ready"
	              " endpoints.\n"
	              "    balance roundrobin\n"
	              "    server s1 127.0.0.1:1 disabled\n");
	assert_has(t, "\n    server s16 127.0.0.1:1 disabled\n\nbackend route_myapp-v2\n");
	assert_has(t, "\n    server s16 127.0.0.1:1 disabled\n\nbackend fallback\n");
	assert_int_equal(count(t, " 127.0.0.1:1 disabled\n"), 16 + 16);
	/* The fallback tracks every slot, weight 0 until the agent sets it. */
	assert_has(t, "\n    default-server no-check\n"
	              "    server r0-s1 127.0.0.1:1 weight 0 track route_myapp-v1/s1\n");
	assert_has(t, "\n    server r1-s16 127.0.0.1:1 weight 0 track route_myapp-v2/s16\n");
	assert_int_equal(count(t, " weight 0 track "), 16 + 16);
	/* No endpoint address, no weight: they are state. */
	assert_null(strstr(t, "10.1.0.1"));
	assert_null(strstr(t, " 80"));
	free(t);
}

static void test_weight_zero_route_keeps_its_backend_and_slots(void **state)
{
	static const struct route_spec rs[] = {
	    {"stable", 70, 2, false}, {"dark", 0, 2, false}, {"canary", 30, 1, false}};
	char *t = render_routes(rs, 3);

	(void)state;
	/* A weight is state: the map leaves a route of weight 0 out at runtime. */
	assert_has(t, "use_backend route_dark if { var(txn.route) -m str route_dark }");
	assert_has(t, "\nbackend route_dark\n");
	assert_has(t, " track route_dark/s16\n");
	free(t);
}

static void test_sixteen_routes(void **state)
{
	struct route_spec rs[KANARY_MAX_ROUTES];
	char names[KANARY_MAX_ROUTES][16];
	char *t;

	(void)state;
	for (size_t i = 0; i < KANARY_MAX_ROUTES; i++) {
		snprintf(names[i], sizeof(names[i]), "svc-%zu", i);
		rs[i].service = names[i];
		rs[i].weight = i < 4 ? 10 : 5; /* 4 * 10 + 12 * 5 = 100 */
		rs[i].pods = i + 1;
		rs[i].ipv6 = i % 2;
	}
	t = render_routes(rs, KANARY_MAX_ROUTES);
	assert_has(t, "use_backend route_svc-0 if { var(txn.route) -m str route_svc-0 }");
	assert_has(t, "use_backend route_svc-15 if { var(txn.route) -m str route_svc-15 }");
	/* 16 endpoints: 32 slots. */
	assert_has(t, "\n    server r15-s32 127.0.0.1:1 weight 0 track route_svc-15/s32\n");
	free(t);
}

static void test_bind_addresses(void **state)
{
	static const struct route_spec rs[] = {{"v6", 60, 2, true}, {"v4", 40, 1, false}};
	struct render_options o;
	struct model m;
	char *t;

	(void)state;
	model_init(&m, rs, 2);
	test_options(&o);
	o.bind_address = "::";
	t = render_ok(&m, &o);
	assert_has(t, "\n    bind [::]:8080 v4v6\n");
	assert_has(t, "\n    bind [::]:8404 v4v6\n");
	assert_haproxy_accepts(t);
	free(t);
	o.bind_address = "::1";
	t = render_ok(&m, &o);
	assert_has(t, "\n    bind [::1]:8405\n");
	assert_haproxy_accepts(t);
	free(t);
	model_finish(&m);
}

static void test_nothing_resolved_still_renders(void **state)
{
	static const struct route_spec rs[] = {{"gone-a", 50, 0, false}, {"gone-b", 50, 0, false}};
	char *t = render_routes(rs, 2);

	(void)state;
	/* The least slots, so endpoints that come later need no rollout. */
	assert_int_equal(count(t, " 127.0.0.1:1 disabled\n"), 2 * RENDER_MIN_SLOTS);
	/* /ready: 503 before the agent's first state, then while the fallback has no server. */
	assert_has(t, "    http-request return status 503 content-type text/plain string"
	              " \"no-state\" if { path /ready } !{ int(0),map_int(/dev/null) -m found }\n"
	              "    http-request return status 200 content-type text/plain string"
	              " \"ready\" if { path /ready } { nbsrv(fallback) gt 0 }\n"
	              "    http-request return status 503 content-type text/plain string"
	              " \"no-usable-route\" if { path /ready }\n");
	free(t);
}

/* ---- slots and fallback weights ---- */

static void test_slots_grow_in_steps_and_never_shrink(void **state)
{
	static const struct {
		size_t endpoints;
		int current, want;
	} cases[] = {
	    {0, 0, 16},   {1, 0, 16},    {3, 0, 16},      {8, 0, 16},         {9, 0, 32},
	    {10, 16, 16}, {16, 16, 16},  {17, 16, 64},    {33, 64, 64},       {65, 64, 256},
	    {0, 32, 32},  {2, 128, 128}, {40, 0, 128},    {4096, 0, 4096},    {4096, 4096, 4096},
	    {5, 5, 5},    {6, 5, 16},    {2048, 0, 4096}, {4095, 2048, 4096},
	};
	int steps = 0, slots = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = render_slots(cases[i].endpoints, cases[i].current);

		if (got != cases[i].want)
			print_error("render_slots(%zu, %d) = %d, want %d\n", cases[i].endpoints,
			            cases[i].current, got, cases[i].want);
		assert_int_equal(got, cases[i].want);
	}
	assert_int_equal(render_slots(4097, 0), -1);
	assert_int_equal(render_slots(1, -1), -1);
	assert_int_equal(render_slots(1, RENDER_MAX_SLOTS + 1), -1);
	/* A version scaled pod by pod from 3 to 40 outgrows its slots once. */
	slots = render_slots(3, 0);
	for (size_t n = 4; n <= 40; n++) {
		int next = render_slots(n, slots);

		steps += next != slots;
		slots = next;
	}
	assert_int_equal(steps, 1);
	/* And back to 2 pods: the slots stay. */
	assert_int_equal(render_slots(2, slots), slots);
}

static void test_fallback_weights(void **state)
{
	static const struct {
		int w[3];
		size_t n[3];
		int want[3];
	} cases[] = {
	    /* 80/3 : 20/7 = 28 : 3 exactly. */
	    {{80, 20, 0}, {3, 7, 0}, {28, 3, 0}},
	    /* Measured in the research: 7+3 pods -> 12:7, 13+17 -> 153:13. */
	    {{80, 20, 0}, {7, 3, 0}, {12, 7, 0}},
	    {{90, 10, 0}, {13, 17, 0}, {153, 13, 0}},
	    /* 33/17 : 67/19 needs a scale of 1139: rounded, the largest 256. */
	    {{33, 67, 0}, {17, 19, 0}, {141, 256, 0}},
	    /* 99 : 0.1 cannot be exact within 256: the small route never 0. */
	    {{99, 1, 0}, {1, 10, 0}, {256, 1, 0}},
	    {{50, 30, 20}, {2, 3, 5}, {25, 10, 4}},
	    {{50, 50, 0}, {4, 4, 0}, {1, 1, 0}},
	    /* Weight 0 or no servers: 0; the only route with servers: 1. */
	    {{70, 0, 30}, {2, 2, 0}, {1, 0, 0}},
	    {{50, 50, 0}, {0, 0, 0}, {0, 0, 0}},
	};
	int got[3];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(render_fallback_weights(3, cases[i].w, cases[i].n, got), 0);
		for (size_t j = 0; j < 3; j++) {
			if (got[j] != cases[i].want[j])
				print_error("case %zu route %zu: %d, want %d\n", i, j, got[j],
				            cases[i].want[j]);
			assert_int_equal(got[j], cases[i].want[j]);
		}
	}
	{
		int w[1] = {101};
		size_t n[1] = {1};

		assert_int_equal(render_fallback_weights(1, w, n, got), -EINVAL);
		assert_int_equal(render_fallback_weights(KANARY_MAX_ROUTES + 1, w, n, got),
		                 -EINVAL);
	}
}

/* ---- global settings and the admin frontends ---- */

static void test_global_and_probe_sections(void **state)
{
	static const struct route_spec rs[] = {{"myapp-v1", 100, 1, false}};
	struct render_options o;
	struct model m;
	char *t;

	(void)state;
	model_init(&m, rs, 1);
	test_options(&o);
	o.runtime_dir = "/tmp/kanary-run";
	/* 1: HAProxy 3.0 warns about more threads than the CPUs it may run on. */
	o.nbthread = 1;
	o.hard_stop_after_s = 45;
	t = render_ok(&m, &o);
	assert_has(t, "global\n    log stdout format raw local0 info\n    maxconn 1000\n"
	              "    nbthread 1\n    hard-stop-after 45s\n"
	              "    stats socket /tmp/kanary-run/admin.sock mode 600 level admin"
	              " expose-fd listeners\n");
	assert_has(t, "\n    mode tcp\n");
	assert_has(t, "\n    option redispatch 1\n");
	assert_has(t, "\n    default-server check inter 2s");
	assert_has(t, "\n    bind 127.0.0.1:8080\n    maxconn 936\n");
	assert_has(t, "\ndefaults probes\n    mode http\n");
	assert_has(t, "\nfrontend health\n    bind 127.0.0.1:8404\n");
	assert_has(t, "\n    monitor-uri /healthz\n");
	assert_has(t, "\nfrontend metrics\n    bind 127.0.0.1:8405\n");
	assert_has(t, "\n    http-request use-service prometheus-exporter if { path /metrics }\n");
	assert_null(strstr(t, "\t"));
	assert_haproxy_accepts(t);
	free(t);

	/* No runtime directory, no admin socket; "" binds every address. */
	o.runtime_dir = NULL;
	o.bind_address = "";
	t = render_ok(&m, &o);
	assert_null(strstr(t, "stats socket"));
	assert_has(t, "\n    bind :8080\n");
	assert_haproxy_accepts(t);
	free(t);

	/*
	 * By default no thread count (HAProxy starts one per CPU it may run
	 * on), and no dontlognull, which in TCP mode would drop the log line of
	 * every connection where only the server speaks.
	 */
	test_options(&o);
	assert_int_equal(o.nbthread, 0);
	t = render_ok(&m, &o);
	assert_has(t, "global\n    log stdout format raw local0 info\n    maxconn 1000\n"
	              "    hard-stop-after 60s\n");
	assert_null(strstr(t, "nbthread"));
	assert_null(strstr(t, "dontlognull"));
	assert_has(t, "\n    option tcplog\n");
	assert_haproxy_accepts(t);
	free(t);
	/* Not given to haproxy: more threads than this machine's CPUs warn on 3.0. */
	o.nbthread = RENDER_MAX_NBTHREAD;
	t = render_ok(&m, &o);
	assert_has(t, "\n    maxconn 1000\n    nbthread 64\n    hard-stop-after 60s\n");
	free(t);
	model_finish(&m);
}

/* ---- determinism and the hash ---- */

static void test_same_input_same_bytes_and_hash(void **state)
{
	static const struct route_spec rs[] = {{"myapp-v1", 80, 3, false},
	                                       {"myapp-v2", 20, 2, true}};
	struct render_options o;
	struct model m;
	char h1[65], h2[65], h3[65];
	char *a, *b;

	(void)state;
	model_init(&m, rs, 2);
	test_options(&o);
	a = render_ok(&m, &o);
	b = render_ok(&m, &o);
	assert_string_equal(a, b);
	assert_int_equal(render_hash(a, strlen(a), h1), 0);
	assert_int_equal(render_hash(b, strlen(b), h2), 0);
	assert_string_equal(h1, h2);
	assert_int_equal(strlen(h1), 64);
	free(b);

	/* Weights and endpoints within the slots are state: same bytes, same hash. */
	m.k->routes[0].weight = 50;
	m.k->routes[1].weight = 50;
	b = render_ok(&m, &o);
	assert_string_equal(a, b);
	free(b);
	{
		const int slots[2] = {16, 16}, more[2] = {64, 16};

		m.res.routes[0].n_endpoints = 1;
		assert_int_equal(render_structure(m.k, &m.res, slots, &o, &b, NULL), 0);
		assert_string_equal(a, b);
		free(b);
		/* Other slots (a route outgrew its own) are another structure. */
		assert_int_equal(render_structure(m.k, &m.res, more, &o, &b, NULL), 0);
		assert_int_equal(render_hash(b, strlen(b), h3), 0);
		assert_string_not_equal(h1, h3);
		free(b);
		m.res.routes[0].n_endpoints = 3;
	}
	free(a);
	model_finish(&m);
}

static void test_hash_is_lower_case_sha256(void **state)
{
	char hex[65];

	(void)state;
	assert_int_equal(render_hash("abc", 3, hex), 0);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(render_hash("", 0, hex), 0);
	assert_string_equal(hex,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* ---- refused input ---- */

/* render_haproxy must fail with want and leave the out-parameters alone. */
static void assert_render_fails(const struct model *m, const struct render_options *o, int want)
{
	static char untouched[] = "untouched";
	char *text = untouched;
	size_t len = 12345;

	assert_int_equal(render_haproxy(m->k, &m->res, o, &text, &len), want);
	assert_string_equal(text, "untouched");
	assert_int_equal(len, 12345);
}

static void test_invalid_input(void **state)
{
	static const struct route_spec rs[] = {{"myapp-v1", 80, 2, false},
	                                       {"myapp-v2", 20, 2, false}};
	struct render_options o;
	struct model m;
	char *text = NULL;
	size_t len;

	(void)state;
	model_init(&m, rs, 2);
	test_options(&o);
	assert_int_equal(render_haproxy(NULL, &m.res, &o, &text, &len), -EINVAL);
	assert_int_equal(render_haproxy(m.k, NULL, &o, &text, &len), -EINVAL);
	assert_int_equal(render_haproxy(m.k, &m.res, NULL, &text, &len), -EINVAL);
	assert_int_equal(render_haproxy(m.k, &m.res, &o, NULL, &len), -EINVAL);
	assert_null(text);

	/* Route counts that differ. */
	m.res.n_routes = 1;
	assert_render_fails(&m, &o, -EINVAL);
	m.res.n_routes = 2;

	/* Weights: sum 90, sum 110, out of range, unset. */
	m.k->routes[1].weight = 10;
	assert_render_fails(&m, &o, -EINVAL);
	m.k->routes[1].weight = 30;
	assert_render_fails(&m, &o, -EINVAL);
	m.k->routes[0].weight = 120;
	m.k->routes[1].weight = -20;
	assert_render_fails(&m, &o, -EINVAL);
	m.k->routes[0].weight = 80;
	m.k->routes[1].weight = 20;
	m.k->routes[1].weight_set = false;
	assert_render_fails(&m, &o, -EINVAL);
	m.k->routes[1].weight_set = true;

	/* Service names: repeated, not a DNS-1035 label, missing. */
	free(m.k->routes[1].service_name);
	m.k->routes[1].service_name = xstrdup("myapp-v1");
	assert_render_fails(&m, &o, -EINVAL);
	free(m.k->routes[1].service_name);
	m.k->routes[1].service_name = xstrdup("My_App\nglobal");
	assert_render_fails(&m, &o, -EINVAL);
	free(m.k->routes[1].service_name);
	m.k->routes[1].service_name = NULL;
	assert_render_fails(&m, &o, -EINVAL);
	m.k->routes[1].service_name = xstrdup("myapp-v2");

	/* Slots out of range. */
	{
		const int zero[2] = {8, 0}, big[2] = {8, RENDER_MAX_SLOTS + 1};

		assert_int_equal(render_structure(m.k, &m.res, zero, &o, &text, &len), -EINVAL);
		assert_int_equal(render_structure(m.k, &m.res, big, &o, &text, &len), -EINVAL);
		assert_int_equal(render_structure(m.k, &m.res, NULL, &o, &text, &len), -EINVAL);
		assert_null(text);
	}

	/* Options. */
	o.proxy_port = 0;
	assert_render_fails(&m, &o, -EINVAL);
	o.proxy_port = o.probe_port;
	assert_render_fails(&m, &o, -EINVAL);
	test_options(&o);
	o.bind_address = "0.0.0.0 ssl crt /x";
	assert_render_fails(&m, &o, -EINVAL);
	o.bind_address = NULL;
	assert_render_fails(&m, &o, -EINVAL);
	test_options(&o);
	o.runtime_dir = "relative/dir";
	assert_render_fails(&m, &o, -EINVAL);
	o.runtime_dir = "/run/with space";
	assert_render_fails(&m, &o, -EINVAL);
	test_options(&o);
	o.maxconn = RENDER_MIN_MAXCONN - 1;
	assert_render_fails(&m, &o, -EINVAL);
	test_options(&o);
	o.nbthread = -1;
	assert_render_fails(&m, &o, -EINVAL);
	o.nbthread = RENDER_MAX_NBTHREAD + 1;
	assert_render_fails(&m, &o, -EINVAL);
	test_options(&o);
	o.hard_stop_after_s = 0;
	assert_render_fails(&m, &o, -EINVAL);
	model_finish(&m);
}

/* Past KANARY_MAX_CONFIG: -E2BIG, never a cut configuration. */
static void test_config_ceiling(void **state)
{
	struct route_spec rs[KANARY_MAX_ROUTES];
	char names[KANARY_MAX_ROUTES][16];
	struct render_options o;
	struct model m;

	(void)state;
	for (size_t i = 0; i < KANARY_MAX_ROUTES; i++) {
		snprintf(names[i], sizeof(names[i]), "svc-%zu", i);
		rs[i].service = names[i];
		rs[i].weight = i < 4 ? 10 : 5;
		rs[i].pods = KANARY_MAX_ENDPOINTS;
		rs[i].ipv6 = true;
	}
	model_init(&m, rs, KANARY_MAX_ROUTES);
	test_options(&o);
	assert_render_fails(&m, &o, -E2BIG);

	/* More endpoints on one route than the resolution may hold. */
	m.res.routes[0].n_endpoints = KANARY_MAX_ENDPOINTS + 1;
	assert_render_fails(&m, &o, -E2BIG);
	m.res.routes[0].n_endpoints = KANARY_MAX_ENDPOINTS;
	model_finish(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_structure_of_two_routes),
	    cmocka_unit_test(test_weight_zero_route_keeps_its_backend_and_slots),
	    cmocka_unit_test(test_sixteen_routes),
	    cmocka_unit_test(test_bind_addresses),
	    cmocka_unit_test(test_nothing_resolved_still_renders),
	    cmocka_unit_test(test_slots_grow_in_steps_and_never_shrink),
	    cmocka_unit_test(test_fallback_weights),
	    cmocka_unit_test(test_global_and_probe_sections),
	    cmocka_unit_test(test_same_input_same_bytes_and_hash),
	    cmocka_unit_test(test_hash_is_lower_case_sha256),
	    cmocka_unit_test(test_invalid_input),
	    cmocka_unit_test(test_config_ceiling),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
