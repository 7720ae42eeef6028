/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the agent's pure parts: reading state.json, reading HAProxy back, the plan. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "controller/agent_plan.h"
#include "controller/agent_state.h"

#define STATE_80_20                                                                                \
	"{\"kanary\":\"split\",\"generation\":3,\"structureHash\":\"0123abcd\",\"routes\":["       \
	"{\"backend\":\"v1\",\"weight\":80,\"slots\":4,\"endpoints\":["                            \
	"{\"address\":\"10.0.0.2\",\"port\":8080},{\"address\":\"10.0.0.1\",\"port\":8080}]},"     \
	"{\"backend\":\"v2\",\"weight\":20,\"slots\":4,\"endpoints\":["                            \
	"{\"address\":\"fd00:0::1\",\"port\":9090}]}]}\n"

static void parse_ok(const char *text, struct agent_state *st)
{
	char why[256] = "";
	int r = agent_state_parse(text, strlen(text), st, why, sizeof(why));

	if (r != 0)
		print_error("agent_state_parse: %d %s\n", r, why);
	assert_int_equal(r, 0);
}

static void parse_fails(const char *text, const char *why_part)
{
	struct agent_state st;
	char why[256] = "";

	assert_int_equal(agent_state_parse(text, strlen(text), &st, why, sizeof(why)), -EINVAL);
	if (!strstr(why, why_part))
		print_error("why \"%s\" lacks \"%s\"\n", why, why_part);
	assert_non_null(strstr(why, why_part));
}

static void test_state_parse(void **state)
{
	struct agent_state st;

	(void)state;
	parse_ok(STATE_80_20, &st);
	assert_string_equal(st.kanary, "split");
	assert_int_equal(st.generation, 3);
	assert_string_equal(st.structure_hash, "0123abcd");
	assert_int_equal(st.n_routes, 2);
	assert_string_equal(st.routes[0].backend, "route_v1");
	assert_int_equal(st.routes[0].weight, 80);
	assert_int_equal(st.routes[0].slots, 4);
	/* Sorted, and IPv6 in the form HAProxy shows. */
	assert_int_equal(st.routes[0].n_endpoints, 2);
	assert_string_equal(st.routes[0].endpoints[0].address, "10.0.0.1");
	assert_string_equal(st.routes[1].endpoints[0].address, "fd00::1");
	assert_int_equal(st.routes[1].endpoints[0].port, 9090);
	agent_state_finish(&st);
	agent_state_finish(NULL);
}

static void test_state_refused(void **state)
{
	(void)state;
	parse_fails("[]", "not a JSON object");
	parse_fails("{\"kanary\":\"a\"} x", "not one JSON value");
	parse_fails("{\"kanary\":\"a\",\"generation\":1,\"structureHash\":\"XYZ\",\"routes\":[]}",
	            "structureHash");
	parse_fails("{\"kanary\":\"a\",\"generation\":-1,\"structureHash\":\"0123abcd\"}",
	            "generation");
	parse_fails("{\"kanary\":\"a\",\"generation\":1,\"structureHash\":\"0123abcd\","
	            "\"routes\":[]}",
	            "routes");
	parse_fails("{\"kanary\":\"a\",\"generation\":1,\"structureHash\":\"0123abcd\",\"routes\":["
	            "{\"backend\":\"v1\",\"weight\":90,\"slots\":4,\"endpoints\":[]}]}",
	            "weights sum to 90");
	parse_fails("{\"kanary\":\"a\",\"generation\":1,\"structureHash\":\"0123abcd\",\"routes\":["
	            "{\"backend\":\"v1\",\"weight\":100,\"slots\":0,\"endpoints\":[]}]}",
	            "routes[0].slots");
	parse_fails("{\"kanary\":\"a\",\"generation\":1,\"structureHash\":\"0123abcd\",\"routes\":["
	            "{\"backend\":\"V_1\",\"weight\":100,\"slots\":4,\"endpoints\":[]}]}",
	            "routes[0].backend");
	parse_fails("{\"kanary\":\"a\",\"generation\":1,\"structureHash\":\"0123abcd\",\"routes\":["
	            "{\"backend\":\"v1\",\"weight\":50,\"slots\":4,\"endpoints\":[]},"
	            "{\"backend\":\"v1\",\"weight\":50,\"slots\":4,\"endpoints\":[]}]}",
	            "v1 twice");
	/* An address that would smuggle a second command into the runtime API. */
	parse_fails("{\"kanary\":\"a\",\"generation\":1,\"structureHash\":\"0123abcd\",\"routes\":["
	            "{\"backend\":\"v1\",\"weight\":100,\"slots\":4,\"endpoints\":["
	            "{\"address\":\"10.0.0.1 port 1\\nshutdown sessions\",\"port\":80}]}]}",
	            "endpoints[0].address");
	parse_fails("{\"kanary\":\"a\",\"generation\":1,\"structureHash\":\"0123abcd\",\"routes\":["
	            "{\"backend\":\"v1\",\"weight\":100,\"slots\":4,\"endpoints\":["
	            "{\"address\":\"10.0.0.1\",\"port\":0}]}]}",
	            "endpoints[0].port");
}

/* `show servers state` as HAProxy 2.6 and 3.0 answer it, for route_v1, route_v2 and fallback. */
struct server_line {
	const char *be, *name, *addr;
	int admin, weight, port;
};

static char *servers_text(const struct server_line *v, size_t n)
{
	struct buf b;
	char *t;

	buf_init(&b, 1u << 20);
	assert_int_equal(
	    buf_puts(&b, "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state "
	                 "srv_uweight srv_iweight srv_time_since_last_change srv_check_status "
	                 "srv_check_result srv_check_health srv_check_state srv_agent_state "
	                 "bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl "
	                 "srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"),
	    0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(
		    buf_printf(&b, "3 %s %zu %s %s 2 %d %d 1 0 1 0 2 6 0 0 0 - %d - 0 0 - - 0\n",
		               v[i].be, i + 1, v[i].name, v[i].addr, v[i].admin, v[i].weight,
		               v[i].port),
		    0);
	assert_int_equal(buf_puts(&b, "\n"), 0);
	assert_int_equal(buf_steal(&b, &t, NULL), 0);
	buf_finish(&b);
	return t;
}

/* A fresh structure of 4 slots per route: everything disabled at the placeholder. */
static void fresh_runtime(struct agent_runtime *rt)
{
	struct server_line v[16];
	static char names[16][16];
	size_t n = 0;
	char *t;

	for (int r = 0; r < 2; r++) {
		for (int k = 1; k <= 4; k++) {
			snprintf(names[n], sizeof(names[n]), "s%d", k);
			v[n] = (struct server_line){
			    r ? "route_v2" : "route_v1", names[n], "127.0.0.1", 5, 1, 1};
			n++;
		}
	}
	for (int r = 0; r < 2; r++) {
		for (int k = 1; k <= 4; k++) {
			snprintf(names[n], sizeof(names[n]), "r%d-s%d", r, k);
			v[n] = (struct server_line){"fallback", names[n], "127.0.0.1", 2, 0, 1};
			n++;
		}
	}
	t = servers_text(v, n);
	memset(rt, 0, sizeof(*rt));
	assert_int_equal(agent_runtime_parse_servers(t, rt), 0);
	assert_int_equal(agent_runtime_parse_map("", rt), 0);
	free(t);
	assert_int_equal(rt->n_servers, 16);
	assert_true(rt->servers[0].maint);
	assert_true(rt->servers[8].maint); /* inherited, via track */
}

/* Applies the commands of b to rt as HAProxy would, except addr changes to refuse. */
static void apply_commands(struct agent_runtime *rt, const struct buf *b, const char *refuse)
{
	const char *c = b->data;

	while (c && *c) {
		char be[64], name[32], arg[AGENT_MAX_ADDRESS];
		int port, w;
		struct agent_server *sv = NULL;

		assert_int_equal(sscanf(c, "set server %63[^/]/%31s", be, name), 2);
		for (size_t i = 0; i < rt->n_servers; i++)
			if (!strcmp(rt->servers[i].backend, be) &&
			    !strcmp(rt->servers[i].name, name))
				sv = &rt->servers[i];
		assert_non_null(sv);
		c = strchr(c, ' ') + 1;
		c = strchr(c, ' ') + 1;
		c = strchr(c, ' ') + 1;
		if (sscanf(c, "addr %45s port %d", arg, &port) == 2) {
			if (!refuse || strcmp(arg, refuse) != 0) {
				snprintf(sv->address, sizeof(sv->address), "%s", arg);
				sv->port = port;
			}
		} else if (sscanf(c, "weight %d", &w) == 1) {
			sv->weight = w;
		} else if (!strncmp(c, "state ready", 11)) {
			sv->maint = false;
		} else if (!strncmp(c, "state maint", 11)) {
			sv->maint = true;
		} else {
			assert_true(!strncmp(c, "health up", 9));
		}
		c = strchr(c, '\n') + 1;
	}
	/* Tracking servers follow their slot's maintenance (fresh_runtime's route order). */
	for (size_t i = 0; i < rt->n_servers; i++) {
		struct agent_server *f = &rt->servers[i];
		int r, k;

		if (strcmp(f->backend, "fallback") || sscanf(f->name, "r%d-s%d", &r, &k) != 2)
			continue;
		for (size_t j = 0; j < rt->n_servers; j++) {
			char want[16];

			snprintf(want, sizeof(want), "s%d", k);
			if (!strcmp(rt->servers[j].backend, r ? "route_v2" : "route_v1") &&
			    !strcmp(rt->servers[j].name, want))
				f->maint = rt->servers[j].maint;
		}
	}
}

static void apply_map(struct agent_runtime *rt, const struct agent_plan *p)
{
	char *t;
	struct buf b;
	const char *c = p->map.data;

	buf_init(&b, 4096);
	while (c && *c) {
		const char *nl = strchr(c, '\n');

		assert_int_equal(buf_printf(&b, "0x1 %.*s\n", (int)(nl - c), c), 0);
		c = nl + 1;
	}
	assert_int_equal(buf_steal(&b, &t, NULL), 0);
	buf_finish(&b);
	assert_int_equal(agent_runtime_parse_map(t, rt), 0);
	free(t);
}

static void plan_ok(const struct agent_state *st, const struct agent_runtime *rt,
                    struct agent_plan *p)
{
	char why[256] = "";
	int r = agent_plan_build(st, rt, p, why, sizeof(why));

	if (r != 0)
		print_error("agent_plan_build: %d %s\n", r, why);
	assert_int_equal(r, 0);
}

/*
 * One pass as the agent makes it, from the plan p of st: the addresses, a
 * read back and a new plan, then the enables, the map, the fallback's weights
 * and the drains. HAProxy refuses address refuse (NULL: none).
 */
static void simulate(const struct agent_state *st, struct agent_runtime *rt, struct agent_plan *p,
                     const char *refuse)
{
	if (p->n_addr) {
		apply_commands(rt, &p->addr, refuse);
		plan_ok(st, rt, p);
	}
	apply_commands(rt, &p->fill, NULL);
	if (p->map_update)
		apply_map(rt, p);
	apply_commands(rt, &p->weights, NULL);
	apply_commands(rt, &p->drain, NULL);
}

static void test_first_state_fills_slots_and_the_map(void **state)
{
	struct agent_runtime rt;
	struct agent_state st;
	struct agent_plan p;

	(void)state;
	parse_ok(STATE_80_20, &st);
	fresh_runtime(&rt);
	agent_plan_init(&p);
	plan_ok(&st, &rt, &p);
	assert_false(agent_plan_empty(&p));
	/* Addresses first, nothing enabled before a read back shows them. */
	assert_string_equal(p.addr.data, "set server route_v1/s1 addr 10.0.0.1 port 8080\n"
	                                 "set server fallback/r0-s1 addr 10.0.0.1 port 8080\n"
	                                 "set server route_v1/s2 addr 10.0.0.2 port 8080\n"
	                                 "set server fallback/r0-s2 addr 10.0.0.2 port 8080\n"
	                                 "set server route_v2/s1 addr fd00::1 port 9090\n"
	                                 "set server fallback/r1-s1 addr fd00::1 port 9090\n");
	assert_int_equal(p.n_fill, 0);
	assert_int_equal(p.unplaced, 0);

	/* The addresses in place: the slots are enabled, the map and the weights follow. */
	apply_commands(&rt, &p.addr, NULL);
	plan_ok(&st, &rt, &p);
	assert_int_equal(p.n_addr, 0);
	assert_string_equal(p.fill.data, "set server route_v1/s1 health up\n"
	                                 "set server route_v1/s1 state ready\n"
	                                 "set server route_v1/s2 health up\n"
	                                 "set server route_v1/s2 state ready\n"
	                                 "set server route_v2/s1 health up\n"
	                                 "set server route_v2/s1 state ready\n");
	assert_true(p.map_update);
	assert_string_equal(p.map.data, "0:79 route_v1\n80:99 route_v2\n");
	/* 80/2 : 20/1 = 2 : 1 */
	assert_string_equal(p.weights.data, "set server fallback/r0-s1 weight 2\n"
	                                    "set server fallback/r0-s2 weight 2\n"
	                                    "set server fallback/r1-s1 weight 1\n");
	assert_int_equal(p.n_drain, 0);

	/* Once HAProxy runs it, the read back gives an empty plan. */
	simulate(&st, &rt, &p, NULL);
	plan_ok(&st, &rt, &p);
	assert_true(agent_plan_empty(&p));
	agent_plan_finish(&p);
	agent_runtime_finish(&rt);
	agent_state_finish(&st);
}

static void test_refused_address_leaves_its_slot_disabled(void **state)
{
	struct agent_runtime rt;
	struct agent_state st;
	struct agent_plan p;

	(void)state;
	parse_ok(STATE_80_20, &st);
	fresh_runtime(&rt);
	agent_plan_init(&p);
	plan_ok(&st, &rt, &p);
	/* HAProxy refuses 10.0.0.2: its slot keeps the placeholder and is not enabled. */
	simulate(&st, &rt, &p, "10.0.0.2");
	assert_string_equal(p.fill.data, "set server route_v1/s1 health up\n"
	                                 "set server route_v1/s1 state ready\n"
	                                 "set server route_v2/s1 health up\n"
	                                 "set server route_v2/s1 state ready\n");
	plan_ok(&st, &rt, &p);
	assert_false(agent_plan_empty(&p));
	assert_string_equal(p.addr.data, "set server route_v1/s2 addr 10.0.0.2 port 8080\n"
	                                 "set server fallback/r0-s2 addr 10.0.0.2 port 8080\n");
	assert_int_equal(p.n_fill, 0);
	assert_true(rt.servers[1].maint);
	assert_string_equal(rt.servers[1].address, "127.0.0.1");
	/* Taken on the next pass. */
	simulate(&st, &rt, &p, NULL);
	plan_ok(&st, &rt, &p);
	assert_true(agent_plan_empty(&p));
	assert_false(rt.servers[1].maint);
	agent_plan_finish(&p);
	agent_runtime_finish(&rt);
	agent_state_finish(&st);
}

static void test_weights_only_replace_the_map_and_fallback_weights(void **state)
{
	struct agent_runtime rt;
	struct agent_state st;
	struct agent_plan p;
	char *text = strdup(STATE_80_20);

	(void)state;
	parse_ok(text, &st);
	fresh_runtime(&rt);
	agent_plan_init(&p);
	plan_ok(&st, &rt, &p);
	simulate(&st, &rt, &p, NULL);
	agent_state_finish(&st);

	memcpy(strstr(text, "\"weight\":80"), "\"weight\":50", 11);
	memcpy(strstr(text, "\"weight\":20"), "\"weight\":50", 11);
	parse_ok(text, &st);
	plan_ok(&st, &rt, &p);
	/* 50/2 : 50/1 = 1 : 2; no slot moves. */
	assert_int_equal(p.n_addr + p.n_fill + p.n_drain, 0);
	assert_string_equal(p.weights.data, "set server fallback/r0-s1 weight 1\n"
	                                    "set server fallback/r0-s2 weight 1\n"
	                                    "set server fallback/r1-s1 weight 2\n");
	assert_true(p.map_update);
	assert_string_equal(p.map.data, "0:49 route_v1\n50:99 route_v2\n");
	simulate(&st, &rt, &p, NULL);
	plan_ok(&st, &rt, &p);
	assert_true(agent_plan_empty(&p));
	agent_state_finish(&st);
	free(text);

	/* A route of weight 0 is not in the map. */
	text = strdup(
	    "{\"kanary\":\"split\",\"generation\":5,\"structureHash\":\"0123abcd\","
	    "\"routes\":[{\"backend\":\"v1\",\"weight\":0,\"slots\":4,\"endpoints\":["
	    "{\"address\":\"10.0.0.1\",\"port\":8080},{\"address\":\"10.0.0.2\",\"port\":8080}"
	    "]},{\"backend\":\"v2\",\"weight\":100,\"slots\":4,\"endpoints\":["
	    "{\"address\":\"fd00::1\",\"port\":9090}]}]}");
	parse_ok(text, &st);
	plan_ok(&st, &rt, &p);
	assert_string_equal(p.map.data, "0:99 route_v2\n");
	assert_string_equal(p.weights.data, "set server fallback/r0-s1 weight 0\n"
	                                    "set server fallback/r0-s2 weight 0\n"
	                                    "set server fallback/r1-s1 weight 1\n");
	free(text);
	agent_plan_finish(&p);
	agent_runtime_finish(&rt);
	agent_state_finish(&st);
}

static void test_endpoints_keep_their_slots_new_ones_fill_removed_ones_drain(void **state)
{
	struct agent_runtime rt;
	struct agent_state st;
	struct agent_plan p;

	(void)state;
	parse_ok(STATE_80_20, &st);
	fresh_runtime(&rt);
	agent_plan_init(&p);
	plan_ok(&st, &rt, &p);
	simulate(&st, &rt, &p, NULL);
	agent_state_finish(&st);

	/* 10.0.0.1 goes, 10.0.0.3 and .4 come: .2 stays in s2, the new ones take the free s3 and
	 * s4 and s1 drains. 80/3 : 20/1 = 4 : 3. */
	parse_ok(
	    "{\"kanary\":\"split\",\"generation\":4,\"structureHash\":\"0123abcd\",\"routes\":["
	    "{\"backend\":\"v1\",\"weight\":80,\"slots\":4,\"endpoints\":["
	    "{\"address\":\"10.0.0.2\",\"port\":8080},{\"address\":\"10.0.0.3\",\"port\":8080},"
	    "{\"address\":\"10.0.0.4\",\"port\":8080}]},"
	    "{\"backend\":\"v2\",\"weight\":20,\"slots\":4,\"endpoints\":["
	    "{\"address\":\"fd00::1\",\"port\":9090}]}]}",
	    &st);
	plan_ok(&st, &rt, &p);
	assert_string_equal(p.addr.data, "set server route_v1/s3 addr 10.0.0.3 port 8080\n"
	                                 "set server fallback/r0-s3 addr 10.0.0.3 port 8080\n"
	                                 "set server route_v1/s4 addr 10.0.0.4 port 8080\n"
	                                 "set server fallback/r0-s4 addr 10.0.0.4 port 8080\n");
	assert_false(p.map_update);
	assert_string_equal(p.drain.data, "set server route_v1/s1 state maint\n");
	simulate(&st, &rt, &p, NULL);
	assert_string_equal(p.fill.data, "set server route_v1/s3 health up\n"
	                                 "set server route_v1/s3 state ready\n"
	                                 "set server route_v1/s4 health up\n"
	                                 "set server route_v1/s4 state ready\n");
	assert_string_equal(p.weights.data, "set server fallback/r0-s2 weight 4\n"
	                                    "set server fallback/r0-s3 weight 4\n"
	                                    "set server fallback/r0-s4 weight 4\n"
	                                    "set server fallback/r1-s1 weight 3\n");
	plan_ok(&st, &rt, &p);
	assert_true(agent_plan_empty(&p));
	agent_state_finish(&st);

	/* Five endpoints for four slots: four placed, one counted; the drained slot is reused. */
	parse_ok(
	    "{\"kanary\":\"split\",\"generation\":5,\"structureHash\":\"0123abcd\",\"routes\":["
	    "{\"backend\":\"v1\",\"weight\":80,\"slots\":4,\"endpoints\":["
	    "{\"address\":\"10.0.0.2\",\"port\":8080},{\"address\":\"10.0.0.3\",\"port\":8080},"
	    "{\"address\":\"10.0.0.4\",\"port\":8080},{\"address\":\"10.0.0.5\",\"port\":8080},"
	    "{\"address\":\"10.0.0.6\",\"port\":8080}]},"
	    "{\"backend\":\"v2\",\"weight\":20,\"slots\":4,\"endpoints\":["
	    "{\"address\":\"fd00::1\",\"port\":9090}]}]}",
	    &st);
	plan_ok(&st, &rt, &p);
	assert_int_equal(p.unplaced, 1);
	assert_string_equal(p.addr.data, "set server route_v1/s1 addr 10.0.0.5 port 8080\n"
	                                 "set server fallback/r0-s1 addr 10.0.0.5 port 8080\n");
	simulate(&st, &rt, &p, NULL);
	assert_string_equal(p.fill.data, "set server route_v1/s1 health up\n"
	                                 "set server route_v1/s1 state ready\n");
	plan_ok(&st, &rt, &p);
	assert_true(agent_plan_empty(&p));
	assert_int_equal(p.unplaced, 1);
	agent_state_finish(&st);

	/* .2 goes and .7 comes while every slot is live: .7 takes a slot to drain, which goes to
	 * maintenance before its address changes, never serving the old one. */
	parse_ok(
	    "{\"kanary\":\"split\",\"generation\":6,\"structureHash\":\"0123abcd\",\"routes\":["
	    "{\"backend\":\"v1\",\"weight\":80,\"slots\":4,\"endpoints\":["
	    "{\"address\":\"10.0.0.3\",\"port\":8080},{\"address\":\"10.0.0.4\",\"port\":8080},"
	    "{\"address\":\"10.0.0.5\",\"port\":8080},{\"address\":\"10.0.0.7\",\"port\":8080}]},"
	    "{\"backend\":\"v2\",\"weight\":20,\"slots\":4,\"endpoints\":["
	    "{\"address\":\"fd00::1\",\"port\":9090}]}]}",
	    &st);
	plan_ok(&st, &rt, &p);
	assert_string_equal(p.addr.data, "set server route_v1/s2 state maint\n"
	                                 "set server route_v1/s2 addr 10.0.0.7 port 8080\n"
	                                 "set server fallback/r0-s2 addr 10.0.0.7 port 8080\n");
	simulate(&st, &rt, &p, NULL);
	plan_ok(&st, &rt, &p);
	assert_true(agent_plan_empty(&p));
	agent_state_finish(&st);
	agent_plan_finish(&p);
	agent_runtime_finish(&rt);
}

static void test_state_for_a_larger_structure_fills_the_slots_there_are(void **state)
{
	struct agent_runtime rt;
	struct agent_state st;
	struct agent_plan p;
	char why[256] = "";

	(void)state;
	/* Computed for 8 slots (another structure hash); HAProxy has 4: six endpoints, four
	 * placed, two counted; the fallback weighs the four: 60/4 : 40/1 = 3 : 8. */
	parse_ok(
	    "{\"kanary\":\"split\",\"generation\":7,\"structureHash\":\"89abcdef\",\"routes\":["
	    "{\"backend\":\"v1\",\"weight\":60,\"slots\":8,\"endpoints\":["
	    "{\"address\":\"10.0.0.1\",\"port\":8080},{\"address\":\"10.0.0.2\",\"port\":8080},"
	    "{\"address\":\"10.0.0.3\",\"port\":8080},{\"address\":\"10.0.0.4\",\"port\":8080},"
	    "{\"address\":\"10.0.0.5\",\"port\":8080},{\"address\":\"10.0.0.6\",\"port\":8080}]},"
	    "{\"backend\":\"v2\",\"weight\":40,\"slots\":4,\"endpoints\":["
	    "{\"address\":\"fd00::1\",\"port\":9090}]}]}",
	    &st);
	fresh_runtime(&rt);
	agent_plan_init(&p);
	assert_true(agent_plan_compatible(&st, &rt, why, sizeof(why)));
	plan_ok(&st, &rt, &p);
	assert_int_equal(p.unplaced, 2);
	assert_null(strstr(p.addr.data, "s5"));
	simulate(&st, &rt, &p, NULL);
	assert_string_equal(p.weights.data, "set server fallback/r0-s1 weight 3\n"
	                                    "set server fallback/r0-s2 weight 3\n"
	                                    "set server fallback/r0-s3 weight 3\n"
	                                    "set server fallback/r0-s4 weight 3\n"
	                                    "set server fallback/r1-s1 weight 8\n");
	assert_string_equal(p.map.data, "0:59 route_v1\n60:99 route_v2\n");
	plan_ok(&st, &rt, &p);
	assert_true(agent_plan_empty(&p));
	assert_int_equal(p.unplaced, 2);
	agent_state_finish(&st);
	agent_plan_finish(&p);
	agent_runtime_finish(&rt);
}

static void test_state_with_a_route_added_is_refused(void **state)
{
	struct agent_runtime rt;
	struct agent_state st;
	struct agent_plan p;
	char why[256] = "";

	(void)state;
	parse_ok(
	    "{\"kanary\":\"split\",\"generation\":8,\"structureHash\":\"89abcdef\",\"routes\":["
	    "{\"backend\":\"v1\",\"weight\":50,\"slots\":4,\"endpoints\":[]},"
	    "{\"backend\":\"v2\",\"weight\":30,\"slots\":4,\"endpoints\":[]},"
	    "{\"backend\":\"v3\",\"weight\":20,\"slots\":4,\"endpoints\":[]}]}",
	    &st);
	fresh_runtime(&rt);
	agent_plan_init(&p);
	assert_false(agent_plan_compatible(&st, &rt, why, sizeof(why)));
	assert_string_equal(why, "HAProxy has no backend route_v3 (a route added)");
	why[0] = '\0';
	assert_int_equal(agent_plan_build(&st, &rt, &p, why, sizeof(why)), -ENOENT);
	assert_string_equal(why, "HAProxy has no backend route_v3 (a route added)");
	agent_state_finish(&st);
	agent_plan_finish(&p);
	agent_runtime_finish(&rt);
}

static void test_route_removed_gets_weight_zero(void **state)
{
	struct agent_runtime rt;
	struct agent_state st;
	struct agent_plan p;
	char why[256] = "";

	(void)state;
	parse_ok(STATE_80_20, &st);
	fresh_runtime(&rt);
	agent_plan_init(&p);
	plan_ok(&st, &rt, &p);
	simulate(&st, &rt, &p, NULL);
	agent_state_finish(&st);

	/* v1 removed: the state's first route is HAProxy's second, whose fallback servers are
	 * r1-sK; v1's fallback servers go to weight 0 and it leaves the map. */
	parse_ok(
	    "{\"kanary\":\"split\",\"generation\":9,\"structureHash\":\"89abcdef\",\"routes\":["
	    "{\"backend\":\"v2\",\"weight\":100,\"slots\":4,\"endpoints\":["
	    "{\"address\":\"fd00::1\",\"port\":9090}]}]}",
	    &st);
	assert_true(agent_plan_compatible(&st, &rt, why, sizeof(why)));
	plan_ok(&st, &rt, &p);
	assert_int_equal(p.n_addr + p.n_fill + p.n_drain, 0);
	assert_true(p.map_update);
	assert_string_equal(p.map.data, "0:99 route_v2\n");
	assert_string_equal(p.weights.data, "set server fallback/r0-s1 weight 0\n"
	                                    "set server fallback/r0-s2 weight 0\n");
	simulate(&st, &rt, &p, NULL);
	plan_ok(&st, &rt, &p);
	assert_true(agent_plan_empty(&p));
	agent_state_finish(&st);
	agent_plan_finish(&p);
	agent_runtime_finish(&rt);
}

static void test_runtime_missing_a_fallback_server_is_an_error(void **state)
{
	struct agent_runtime rt;
	struct agent_state st;
	struct agent_plan p;
	char why[256] = "";

	(void)state;
	parse_ok(STATE_80_20, &st);
	fresh_runtime(&rt);
	rt.n_servers--; /* fallback/r1-s4 */
	agent_plan_init(&p);
	assert_int_equal(agent_plan_build(&st, &rt, &p, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "HAProxy has no server fallback/r1-s4");
	agent_state_finish(&st);
	agent_plan_finish(&p);
	agent_runtime_finish(&rt);
}

static void test_read_back_parsing(void **state)
{
	struct agent_runtime rt = {0};

	(void)state;
	assert_int_equal(agent_runtime_parse_servers("1\n3 be 1 s1 1.2.3.4 2 0 1\n", &rt), -EINVAL);
	assert_int_equal(agent_runtime_parse_servers("1\n# be_id be_name srv_id srv_name srv_addr "
	                                             "srv_op_state srv_admin_state srv_uweight "
	                                             "srv_port\n3 be 1 s1\n",
	                                             &rt),
	                 -EINVAL);
	assert_int_equal(agent_runtime_parse_servers("1\n# be_id be_name srv_id srv_name srv_addr "
	                                             "srv_op_state srv_admin_state srv_uweight "
	                                             "srv_port\n3 be 1 s1 ::1 2 4 7 443\n",
	                                             &rt),
	                 0);
	assert_int_equal(rt.n_servers, 1);
	assert_string_equal(rt.servers[0].address, "::1");
	assert_int_equal(rt.servers[0].port, 443);
	assert_int_equal(rt.servers[0].weight, 7);
	/* Admin state 4 alone: configured disabled once, made ready since. */
	assert_false(rt.servers[0].maint);
	assert_int_equal(agent_runtime_parse_map("0x55 0:79 route_a\n0x56 80:99 route_b\n", &rt),
	                 0);
	assert_int_equal(rt.n_map, 2);
	assert_string_equal(rt.map[1].key, "80:99");
	assert_string_equal(rt.map[1].value, "route_b");
	assert_int_equal(agent_runtime_parse_map("Unknown map identifier.\n", &rt), -EINVAL);
	agent_runtime_finish(&rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_state_parse),
	    cmocka_unit_test(test_state_refused),
	    cmocka_unit_test(test_first_state_fills_slots_and_the_map),
	    cmocka_unit_test(test_refused_address_leaves_its_slot_disabled),
	    cmocka_unit_test(test_weights_only_replace_the_map_and_fallback_weights),
	    cmocka_unit_test(test_endpoints_keep_their_slots_new_ones_fill_removed_ones_drain),
	    cmocka_unit_test(test_state_for_a_larger_structure_fills_the_slots_there_are),
	    cmocka_unit_test(test_state_with_a_route_added_is_refused),
	    cmocka_unit_test(test_route_removed_gets_weight_zero),
	    cmocka_unit_test(test_runtime_missing_a_fallback_server_is_an_error),
	    cmocka_unit_test(test_read_back_parsing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
