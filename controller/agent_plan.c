/* SPDX-License-Identifier: Apache-2.0 */
/* The diff from HAProxy's runtime state to a state.json, as runtime API commands. */
#include "controller/agent_plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errmsg.h"
#include "common/integer.h"
#include "common/limits.h"
#include "common/render.h"

/* srv_admin_state bits: forced, inherited (track) and resolver maintenance. */
#define SRV_ADMF_FMAINT  0x01
#define SRV_ADMF_IMAINT  0x02
#define SRV_ADMF_RMAINT  0x20
#define AGENT_MAX_FIELDS 64
#define FALLBACK_BACKEND "fallback"

/* The columns we read, found by name in the header. */
enum col { COL_BE = 0, COL_SRV, COL_ADDR, COL_ADMIN, COL_UWEIGHT, COL_PORT, COL_N };
static const char *const col_names[COL_N] = {"be_name",         "srv_name",    "srv_addr",
                                             "srv_admin_state", "srv_uweight", "srv_port"};

/* Splits line (modified) at blanks into at most max fields. */
static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *c = line;

	while (*c && n < max) {
		while (*c == ' ' || *c == '\t')
			*c++ = '\0';
		if (!*c)
			break;
		f[n++] = c;
		while (*c && *c != ' ' && *c != '\t')
			c++;
	}
	return n;
}

static int copy_field(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		return -E2BIG;
	memcpy(dst, src, n + 1);
	return 0;
}

/* Every line of text, modifiable; *ret_lines NULL-terminated. Ownership: free(*ret_copy), free(*ret_lines). */
static int lines_of(const char *text, char **ret_copy, char ***ret_lines, size_t *ret_n)
{
	char *copy = strdup(text), **lines;
	size_t n = 1, i = 0;

	if (!copy)
		return -ENOMEM;
	for (const char *c = text; *c; c++)
		n += *c == '\n';
	lines = calloc(n + 1, sizeof(*lines));
	if (!lines) {
		free(copy);
		return -ENOMEM;
	}
	for (char *c = copy; *c && i < n;) {
		char *nl = strchr(c, '\n');

		if (nl)
			*nl = '\0';
		if (*c)
			lines[i++] = c;
		if (!nl)
			break;
		c = nl + 1;
	}
	*ret_copy = copy;
	*ret_lines = lines;
	*ret_n = i;
	return 0;
}

int agent_runtime_parse_servers(const char *text, struct agent_runtime *rt)
{
	char *copy, **lines, *f[AGENT_MAX_FIELDS];
	int col[COL_N];
	struct agent_server *v = NULL;
	size_t nl, nv = 0, nf;
	bool header = false;
	int r;

	if (!text || !rt)
		return -EINVAL;
	r = lines_of(text, &copy, &lines, &nl);
	if (r < 0)
		return r;
	v = calloc(nl ? nl : 1, sizeof(*v));
	if (!v) {
		r = -ENOMEM;
		goto out_free_lines;
	}
	for (size_t i = 0; i < nl; i++) {
		struct agent_server *s = &v[nv];
		long x;

		if (lines[i][0] == '#') {
			nf = split_fields(lines[i] + 1, f, AGENT_MAX_FIELDS);
			for (int c = 0; c < COL_N; c++) {
				col[c] = -1;
				for (size_t j = 0; j < nf; j++)
					if (strcmp(f[j], col_names[c]) == 0)
						col[c] = (int)j;
				if (col[c] < 0) {
					r = -EINVAL;
					goto out_free_v;
				}
			}
			header = true;
			continue;
		}
		if (!header)
			continue; /* the format version line */
		nf = split_fields(lines[i], f, AGENT_MAX_FIELDS);
		if (nf == 0)
			continue;
		for (int c = 0; c < COL_N; c++) {
			if ((size_t)col[c] >= nf) {
				r = -EINVAL;
				goto out_free_v;
			}
		}
		if (copy_field(s->backend, sizeof(s->backend), f[col[COL_BE]]) < 0 ||
		    copy_field(s->name, sizeof(s->name), f[col[COL_SRV]]) < 0 ||
		    copy_field(s->address, sizeof(s->address), f[col[COL_ADDR]]) < 0)
			continue; /* not one of ours */
		if (integer_parse(f[col[COL_PORT]], 0, 65535, &x) < 0) {
			r = -EINVAL;
			goto out_free_v;
		}
		s->port = (int)x;
		if (integer_parse(f[col[COL_ADMIN]], 0, 0xffff, &x) < 0) {
			r = -EINVAL;
			goto out_free_v;
		}
		s->maint = (x & (SRV_ADMF_FMAINT | SRV_ADMF_IMAINT | SRV_ADMF_RMAINT)) != 0;
		if (integer_parse(f[col[COL_UWEIGHT]], 0, RENDER_MAX_SERVER_WEIGHT, &x) < 0) {
			r = -EINVAL;
			goto out_free_v;
		}
		s->weight = (int)x;
		nv++;
	}
	if (!header) {
		r = -EINVAL;
		goto out_free_v;
	}
	free(rt->servers);
	rt->servers = v;
	rt->n_servers = nv;
	v = NULL;
	r = 0;
out_free_v:
	free(v);
out_free_lines:
	free(lines);
	free(copy);
	return r;
}

int agent_runtime_parse_map(const char *text, struct agent_runtime *rt)
{
	char *copy, **lines, *f[4];
	struct agent_map_entry *v;
	size_t nl, nv = 0;
	int r;

	if (!text || !rt)
		return -EINVAL;
	r = lines_of(text, &copy, &lines, &nl);
	if (r < 0)
		return r;
	v = calloc(nl ? nl : 1, sizeof(*v));
	if (!v) {
		r = -ENOMEM;
		goto out_free_lines;
	}
	for (size_t i = 0; i < nl; i++) {
		size_t nf = split_fields(lines[i], f, 4);

		if (nf == 0)
			continue;
		if (nf != 3 || strncmp(f[0], "0x", 2) != 0 ||
		    copy_field(v[nv].key, sizeof(v[nv].key), f[1]) < 0 ||
		    copy_field(v[nv].value, sizeof(v[nv].value), f[2]) < 0) {
			free(v);
			r = -EINVAL;
			goto out_free_lines;
		}
		nv++;
	}
	free(rt->map);
	rt->map = v;
	rt->n_map = nv;
out_free_lines:
	free(lines);
	free(copy);
	return r;
}

void agent_runtime_finish(struct agent_runtime *rt)
{
	if (!rt)
		return;
	free(rt->servers);
	free(rt->map);
	memset(rt, 0, sizeof(*rt));
}

void agent_plan_init(struct agent_plan *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->addr, KANARY_MAX_AGENT_COMMANDS * 96u);
	buf_init(&p->fill, KANARY_MAX_AGENT_COMMANDS * 96u);
	buf_init(&p->map, KANARY_MAX_ROUTES * 96u);
	buf_init(&p->weights, KANARY_MAX_AGENT_COMMANDS * 96u);
	buf_init(&p->drain, KANARY_MAX_AGENT_COMMANDS * 96u);
}

void agent_plan_finish(struct agent_plan *p)
{
	if (!p)
		return;
	buf_finish(&p->addr);
	buf_finish(&p->fill);
	buf_finish(&p->map);
	buf_finish(&p->weights);
	buf_finish(&p->drain);
}

bool agent_plan_empty(const struct agent_plan *p)
{
	return p->n_addr == 0 && p->n_fill == 0 && !p->map_update && p->n_weights == 0 &&
	       p->n_drain == 0;
}

/* The slot number of name "s<n>" (prefix "") or "r<i>-s<n>", 0 when it is not one. */
static long slot_number(const char *name, const char *prefix)
{
	size_t pl = strlen(prefix);
	long n;

	if (strncmp(name, prefix, pl) != 0 || strncmp(name + pl, RENDER_SLOT_PREFIX, 1) != 0)
		return 0;
	if (integer_parse(name + pl + 1, 1, RENDER_MAX_SLOTS, &n) < 0)
		return 0;
	return n;
}

static bool same_endpoint(const struct agent_server *s, const struct agent_endpoint *e)
{
	return s->port == e->port && strcmp(s->address, e->address) == 0;
}

static long find_endpoint(const struct agent_route *r, const struct agent_server *s)
{
	for (size_t j = 0; j < r->n_endpoints; j++)
		if (same_endpoint(s, &r->endpoints[j]))
			return (long)j;
	return -1;
}

/* One route's commands; slot[k], fb[k] (k 1..n) are its servers in rt, fb named r<h>-sK. */
static int plan_route(const struct agent_route *r, int n, const struct agent_server **slot,
                      const struct agent_server **fb, int fb_weight, struct agent_plan *p)
{
	long *assign = NULL;
	bool *placed = NULL;
	int ret = 0;

	assign = calloc((size_t)n + 1, sizeof(*assign));
	placed = calloc(r->n_endpoints + 1, sizeof(*placed));
	if (!assign || !placed) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (int k = 1; k <= n; k++)
		assign[k] = -1;
	/* An endpoint keeps its live slot, else its slot in maintenance. */
	for (int pass = 0; pass < 2; pass++) {
		for (int k = 1; k <= n; k++) {
			long j;

			if (assign[k] >= 0 || slot[k]->maint != (pass == 1))
				continue;
			j = find_endpoint(r, slot[k]);
			if (j >= 0 && !placed[j]) {
				assign[k] = j;
				placed[j] = true;
			}
		}
	}
	/* A new endpoint takes the lowest free slot in maintenance, else one to drain. */
	for (size_t j = 0; j < r->n_endpoints; j++) {
		int k = 0;

		if (placed[j])
			continue;
		for (int pass = 0; pass < 2 && k == 0; pass++)
			for (int c = 1; c <= n && k == 0; c++)
				if (assign[c] < 0 && slot[c]->maint == (pass == 0))
					k = c;
		if (k == 0) {
			p->unplaced++;
			continue;
		}
		assign[k] = (long)j;
		placed[j] = true;
	}
	for (int k = 1; k <= n && ret == 0; k++) {
		const struct agent_server *sv = slot[k], *fv = fb[k];
		const struct agent_endpoint *e;
		bool slot_moves, fb_moves;

		if (assign[k] < 0) {
			if (!sv->maint) {
				ret = buf_printf(&p->drain, "set server %s/%s state maint\n",
				                 r->backend, sv->name);
				p->n_drain++;
			}
			continue;
		}
		e = &r->endpoints[assign[k]];
		slot_moves = !same_endpoint(sv, e);
		fb_moves = !same_endpoint(fv, e);
		if ((slot_moves || fb_moves) && !sv->maint) {
			ret = buf_printf(&p->addr, "set server %s/%s state maint\n", r->backend,
			                 sv->name);
			p->n_addr++;
		}
		if (ret == 0 && slot_moves) {
			ret = buf_printf(&p->addr, "set server %s/%s addr %s port %d\n", r->backend,
			                 sv->name, e->address, e->port);
			p->n_addr++;
		}
		if (ret == 0 && fb_moves) {
			ret = buf_printf(&p->addr,
			                 "set server " FALLBACK_BACKEND "/%s addr %s port %d\n",
			                 fv->name, e->address, e->port);
			p->n_addr++;
		}
		/* Enabled once a read back shows both addresses in place. */
		if (ret == 0 && !slot_moves && !fb_moves && sv->maint) {
			ret = buf_printf(&p->fill,
			                 "set server %s/%s health up\n"
			                 "set server %s/%s state ready\n",
			                 r->backend, sv->name, r->backend, sv->name);
			p->n_fill += 2;
		}
		if (ret == 0 && fv->weight != fb_weight) {
			ret = buf_printf(&p->weights,
			                 "set server " FALLBACK_BACKEND "/%s weight %d\n", fv->name,
			                 fb_weight);
			p->n_weights++;
		}
	}
out_free:
	free(assign);
	free(placed);
	return ret;
}

/* The route map of st: each route of weight > 0 owns draws [lo, hi], in route order. */
static int plan_map(const struct agent_state *st, const struct agent_runtime *rt,
                    struct agent_plan *p)
{
	size_t want = 0, found = 0;
	int lo = 0, r = 0;

	for (size_t i = 0; i < st->n_routes && r == 0; i++) {
		const struct agent_route *rr = &st->routes[i];
		char key[AGENT_MAX_MAP_KEY];

		if (rr->weight == 0)
			continue;
		snprintf(key, sizeof(key), "%d:%d", lo, lo + rr->weight - 1);
		lo += rr->weight;
		want++;
		for (size_t j = 0; j < rt->n_map; j++) {
			if (strcmp(rt->map[j].key, key) == 0 &&
			    strcmp(rt->map[j].value, rr->backend) == 0) {
				found++;
				break;
			}
		}
		r = buf_printf(&p->map, "%s %s\n", key, rr->backend);
	}
	p->map_update = !(found == want && rt->n_map == want);
	return r;
}

/*
 * The route backends of rt in the structure's order, which HAProxy keeps in
 * `show servers state` (backends by id, ids in the order of the file): the
 * h-th one's fallback servers are r<h>-sK. Ownership: free(*ret).
 */
static int route_backends(const struct agent_runtime *rt, const char ***ret, size_t *ret_n)
{
	const char **v = calloc(rt->n_servers + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t j = 0; j < rt->n_servers; j++) {
		const char *be = rt->servers[j].backend;

		if (strcmp(be, FALLBACK_BACKEND) == 0 ||
		    slot_number(rt->servers[j].name, "") == 0 || (n && strcmp(v[n - 1], be) == 0))
			continue;
		v[n++] = be;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static long backend_index(const char **v, size_t n, const char *be)
{
	for (size_t h = 0; h < n; h++)
		if (strcmp(v[h], be) == 0)
			return (long)h;
	return -1;
}

bool agent_plan_compatible(const struct agent_state *st, const struct agent_runtime *rt, char *why,
                           size_t size)
{
	const char **v;
	size_t n;
	bool ok = true;

	if (route_backends(rt, &v, &n) < 0) {
		errmsg_format(why, size, "out of memory");
		return false;
	}
	for (size_t i = 0; i < st->n_routes && ok; i++) {
		if (backend_index(v, n, st->routes[i].backend) < 0) {
			errmsg_format(why, size, "HAProxy has no backend %s (a route added)",
			              st->routes[i].backend);
			ok = false;
		}
	}
	free(v);
	return ok;
}

/* The slots 1..n of backend be in rt, and the fallback servers r<h>-sK tracking them. */
static int route_servers(const struct agent_runtime *rt, const char *be, size_t h, int n,
                         const struct agent_server **slot, const struct agent_server **fb,
                         char *why, size_t size)
{
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "r%zu-", h);
	for (size_t j = 0; j < rt->n_servers; j++) {
		const struct agent_server *s = &rt->servers[j];
		long k;

		if (strcmp(s->backend, be) == 0) {
			k = slot_number(s->name, "");
			if (k >= 1 && k <= n)
				slot[k] = s;
		} else if (strcmp(s->backend, FALLBACK_BACKEND) == 0) {
			k = slot_number(s->name, prefix);
			if (k >= 1 && k <= n)
				fb[k] = s;
		}
	}
	for (int k = 1; k <= n; k++) {
		if (!slot[k])
			return errmsg_einval(why, size, "HAProxy has no server %s/s%d", be, k);
		if (!fb[k])
			return errmsg_einval(why, size, "HAProxy has no server %s/r%zu-s%d",
			                     FALLBACK_BACKEND, h, k);
	}
	return 0;
}

/* The highest slot number of backend be in rt (0: none). */
static int slot_count(const struct agent_runtime *rt, const char *be)
{
	long n = 0;

	for (size_t j = 0; j < rt->n_servers; j++) {
		long k;

		if (strcmp(rt->servers[j].backend, be) != 0)
			continue;
		k = slot_number(rt->servers[j].name, "");
		if (k > n)
			n = k;
	}
	return (int)n;
}

/* Weight 0 for the fallback servers of route backend h, which st does not name. */
static int plan_removed_route(const struct agent_runtime *rt, size_t h, struct agent_plan *p)
{
	char prefix[32];
	int r = 0;

	snprintf(prefix, sizeof(prefix), "r%zu-", h);
	for (size_t j = 0; j < rt->n_servers && r == 0; j++) {
		const struct agent_server *s = &rt->servers[j];

		if (strcmp(s->backend, FALLBACK_BACKEND) != 0 ||
		    slot_number(s->name, prefix) == 0 || s->weight == 0)
			continue;
		r = buf_printf(&p->weights, "set server " FALLBACK_BACKEND "/%s weight 0\n",
		               s->name);
		p->n_weights++;
	}
	return r;
}

int agent_plan_build(const struct agent_state *st, const struct agent_runtime *rt,
                     struct agent_plan *p, char *why, size_t size)
{
	const struct agent_server **slot = NULL, **fb = NULL;
	const char **backends = NULL;
	size_t servers[KANARY_MAX_ROUTES], n_backends, index[KANARY_MAX_ROUTES];
	int weights[KANARY_MAX_ROUTES], fw[KANARY_MAX_ROUTES], slots[KANARY_MAX_ROUTES];
	bool named[KANARY_MAX_ROUTES] = {false};
	int r = 0;

	buf_reset(&p->addr);
	buf_reset(&p->fill);
	buf_reset(&p->map);
	buf_reset(&p->weights);
	buf_reset(&p->drain);
	p->n_addr = p->n_fill = p->n_weights = p->n_drain = p->unplaced = 0;
	p->map_update = false;
	if (st->n_routes > KANARY_MAX_ROUTES)
		return -EINVAL;
	r = route_backends(rt, &backends, &n_backends);
	if (r < 0)
		return r;
	for (size_t i = 0; i < st->n_routes; i++) {
		long h = backend_index(backends, n_backends, st->routes[i].backend);

		if (h < 0) {
			errmsg_format(why, size, "HAProxy has no backend %s (a route added)",
			              st->routes[i].backend);
			r = -ENOENT;
			goto out_free;
		}
		index[i] = (size_t)h;
		if ((size_t)h < KANARY_MAX_ROUTES)
			named[h] = true;
		slots[i] = slot_count(rt, st->routes[i].backend);
		weights[i] = st->routes[i].weight;
		servers[i] = st->routes[i].n_endpoints < (size_t)slots[i]
		                 ? st->routes[i].n_endpoints
		                 : (size_t)slots[i];
	}
	r = render_fallback_weights(st->n_routes, weights, servers, fw);
	if (r < 0)
		goto out_free;
	for (size_t i = 0; i < st->n_routes && r == 0; i++) {
		const struct agent_route *rr = &st->routes[i];

		slot = calloc((size_t)slots[i] + 1, sizeof(*slot));
		fb = calloc((size_t)slots[i] + 1, sizeof(*fb));
		if (!slot || !fb)
			r = -ENOMEM;
		if (r == 0)
			r = route_servers(rt, rr->backend, index[i], slots[i], slot, fb, why, size);
		if (r == 0)
			r = plan_route(rr, slots[i], slot, fb, fw[i], p);
		free(slot);
		free(fb);
		slot = fb = NULL;
	}
	for (size_t h = 0; h < n_backends && r == 0; h++)
		if (h >= KANARY_MAX_ROUTES || !named[h])
			r = plan_removed_route(rt, h, p);
	if (r == 0)
		r = plan_map(st, rt, p);
	if (r == -E2BIG)
		errmsg_einval(why, size, "more than %u runtime API commands",
		              KANARY_MAX_AGENT_COMMANDS);
out_free:
	free(backends);
	return r;
}
