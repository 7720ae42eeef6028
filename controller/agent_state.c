/* SPDX-License-Identifier: Apache-2.0 */
/* Reads and checks the state.json the agent applies. */
#include "controller/agent_state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/errmsg.h"
#include "common/json_field.h"
#include "common/kanary.h"
#include "common/render.h"

/* The address in inet_ntop's form into out; false when it is no IP literal. */
static bool canonical_address(const char *s, char out[AGENT_MAX_ADDRESS])
{
	unsigned char bin[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, s, bin) == 1)
		return inet_ntop(AF_INET, bin, out, AGENT_MAX_ADDRESS) != NULL;
	if (inet_pton(AF_INET6, s, bin) == 1)
		return inet_ntop(AF_INET6, bin, out, AGENT_MAX_ADDRESS) != NULL;
	return false;
}

static int endpoint_cmp(const void *a, const void *b)
{
	const struct agent_endpoint *x = a, *y = b;
	int c = strcmp(x->address, y->address);

	return c ? c : (x->port > y->port) - (x->port < y->port);
}

static int parse_route(const struct json_object *jr, size_t i, struct agent_route *r, char *why,
                       size_t size)
{
	const struct json_object *eps;
	const char *svc;
	int64_t v;
	size_t n, kept = 0;

	svc = json_field_str(jr, "backend");
	if (!svc || !kanary_is_dns1035_label(svc))
		return errmsg_einval(why, size, "routes[%zu].backend: not a Service name", i);
	snprintf(r->service, sizeof(r->service), "%s", svc);
	snprintf(r->backend, sizeof(r->backend), "route_%s", svc);
	if (!json_field_int(jr, "weight", &v) || v < 0 || v > KANARY_MAX_WEIGHT)
		return errmsg_einval(why, size, "routes[%zu].weight: not an integer 0..%d", i,
		                     KANARY_MAX_WEIGHT);
	r->weight = (int)v;
	if (!json_field_int(jr, "slots", &v) || v < 1 || v > RENDER_MAX_SLOTS)
		return errmsg_einval(why, size, "routes[%zu].slots: not an integer 1..%d", i,
		                     RENDER_MAX_SLOTS);
	r->slots = (int)v;
	eps = json_field_get(jr, "endpoints");
	if (!eps || !json_object_is_type(eps, json_type_array))
		return errmsg_einval(why, size, "routes[%zu].endpoints: not a list", i);
	n = json_object_array_length(eps);
	if (n > KANARY_MAX_ENDPOINTS)
		return errmsg_einval(why, size, "routes[%zu].endpoints: more than %d", i,
		                     KANARY_MAX_ENDPOINTS);
	if (n == 0)
		return 0;
	r->endpoints = calloc(n, sizeof(*r->endpoints));
	if (!r->endpoints)
		return -ENOMEM;
	for (size_t j = 0; j < n; j++) {
		const struct json_object *je = json_object_array_get_idx(eps, j);
		const char *addr = json_field_str(je, "address");

		if (!addr || !canonical_address(addr, r->endpoints[j].address))
			return errmsg_einval(
			    why, size, "routes[%zu].endpoints[%zu].address: not an IP address", i,
			    j);
		if (!json_field_int(je, "port", &v) || v < 1 || v > 65535)
			return errmsg_einval(why, size,
			                     "routes[%zu].endpoints[%zu].port: not a port", i, j);
		r->endpoints[j].port = (int)v;
	}
	qsort(r->endpoints, n, sizeof(*r->endpoints), endpoint_cmp);
	for (size_t j = 0; j < n; j++)
		if (kept == 0 || endpoint_cmp(&r->endpoints[kept - 1], &r->endpoints[j]) != 0)
			r->endpoints[kept++] = r->endpoints[j];
	r->n_endpoints = kept;
	return 0;
}

static int parse_object(const struct json_object *obj, struct agent_state *s, char *why,
                        size_t size)
{
	const struct json_object *routes;
	const char *name, *hash;
	int64_t gen;
	int sum = 0, r;

	if (!json_object_is_type(obj, json_type_object))
		return errmsg_einval(why, size, "not a JSON object");
	name = json_field_str(obj, "kanary");
	if (!name || !name[0] || strlen(name) > KANARY_MAX_NAME)
		return errmsg_einval(why, size, "kanary: not a name");
	snprintf(s->kanary, sizeof(s->kanary), "%s", name);
	if (!json_field_int(obj, "generation", &gen) || gen < 0)
		return errmsg_einval(why, size, "generation: not an integer >= 0");
	s->generation = gen;
	hash = json_field_str(obj, "structureHash");
	if (!hash || strlen(hash) != 8 || strspn(hash, "0123456789abcdef") != 8)
		return errmsg_einval(why, size, "structureHash: not 8 lower-case hex digits");
	memcpy(s->structure_hash, hash, 9);
	routes = json_field_get(obj, "routes");
	if (!routes || !json_object_is_type(routes, json_type_array) ||
	    json_object_array_length(routes) == 0 ||
	    json_object_array_length(routes) > KANARY_MAX_ROUTES)
		return errmsg_einval(why, size, "routes: not a list of 1..%d routes",
		                     KANARY_MAX_ROUTES);
	for (size_t i = 0; i < json_object_array_length(routes); i++) {
		s->n_routes = i + 1;
		r = parse_route(json_object_array_get_idx(routes, i), i, &s->routes[i], why, size);
		if (r < 0)
			return r;
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->routes[j].service, s->routes[i].service) == 0)
				return errmsg_einval(why, size, "routes[%zu].backend: %s twice", i,
				                     s->routes[i].service);
		sum += s->routes[i].weight;
	}
	if (sum != KANARY_WEIGHT_TOTAL)
		return errmsg_einval(why, size, "routes: weights sum to %d, not %d", sum,
		                     KANARY_WEIGHT_TOTAL);
	return 0;
}

static bool only_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\n' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

int agent_state_parse(const char *text, size_t len, struct agent_state *ret, char *why, size_t size)
{
	struct agent_state s;
	struct json_tokener *tok;
	struct json_object *obj;
	int r;

	memset(&s, 0, sizeof(s));
	if (!text || !ret)
		return -EINVAL;
	if (len > KANARY_MAX_STATE) {
		errmsg_einval(why, size, "longer than %u bytes", KANARY_MAX_STATE);
		return -E2BIG;
	}
	tok = json_tokener_new_ex(KANARY_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	obj = json_tokener_parse_ex(tok, text, (int)len);
	if (!obj || json_tokener_get_error(tok) != json_tokener_success ||
	    !only_space(text + json_tokener_get_parse_end(tok),
	                len - json_tokener_get_parse_end(tok))) {
		json_object_put(obj);
		json_tokener_free(tok);
		return errmsg_einval(why, size, "not one JSON value");
	}
	json_tokener_free(tok);
	r = parse_object(obj, &s, why, size);
	json_object_put(obj);
	if (r < 0) {
		agent_state_finish(&s);
		return r;
	}
	*ret = s;
	return 0;
}

void agent_state_finish(struct agent_state *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_routes; i++)
		free(s->routes[i].endpoints);
	memset(s, 0, sizeof(*s));
}
