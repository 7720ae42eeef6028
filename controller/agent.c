/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's apply loop step: read back, diff, send runtime API commands, verify, count. */
#include "controller/agent.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/io/log.h"
#include "common/io/monotonic.h"
#include "common/limits.h"
#include "common/render.h"
#include "controller/agent_plan.h"
#include "controller/agent_state.h"

#define AGENT_MAX_WHY 512
/*
 * Commands joined into one CLI line: HAProxy reads a line into one buffer
 * (tune.bufsize, 16 kB by default), so well below it.
 */
#define AGENT_MAX_BATCH 8000

struct agent {
	struct agent_options o;
	char socket_path[KANARY_MAX_PATH];

	pthread_mutex_t lock; /* guards pending and the counters */
	char *pending;
	size_t pending_len;
	long long state_generation;   /* newest state accepted (applied or being applied) */
	long long applied_generation; /* newest state HAProxy was seen to run */
	unsigned long applies;        /* passes that changed HAProxy and were verified */
	unsigned long errors;         /* passes that failed */
	unsigned long rejected_structure;
	unsigned long rejected_invalid;
	unsigned long commands;
	unsigned long unplaced;

	/* The main thread's own. */
	struct agent_state current;
	bool have_current;
	struct agent_state offered; /* read, not yet checked against HAProxy */
	bool have_offered;
	char logged_hash[9]; /* the other structure hash last logged, and how it went */
	bool logged_compatible;
	struct agent_runtime rt;
	struct agent_plan plan;
	long long logged_error_generation;
};

int agent_create(const struct agent_options *o, struct agent **ret)
{
	struct agent *a;

	if (!o || !o->socket_path || !ret || strlen(o->socket_path) >= KANARY_MAX_PATH ||
	    strlen(o->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path) ||
	    strlen(o->structure_hash) != 8)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->o = *o;
	snprintf(a->socket_path, sizeof(a->socket_path), "%s", o->socket_path);
	a->o.socket_path = a->socket_path;
	if (a->o.socket_timeout_ms <= 0)
		a->o.socket_timeout_ms = AGENT_DEFAULT_SOCKET_TIMEOUT_MS;
	pthread_mutex_init(&a->lock, NULL);
	agent_plan_init(&a->plan);
	a->logged_error_generation = -1;
	*ret = a;
	return 0;
}

void agent_destroy(struct agent *a)
{
	if (!a)
		return;
	free(a->pending);
	agent_state_finish(&a->current);
	agent_state_finish(&a->offered);
	agent_runtime_finish(&a->rt);
	agent_plan_finish(&a->plan);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int agent_offer(struct agent *a, const char *text, size_t len)
{
	char *copy;

	if (len > KANARY_MAX_STATE)
		return -E2BIG;
	copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, len);
	copy[len] = '\0';
	pthread_mutex_lock(&a->lock);
	free(a->pending);
	a->pending = copy;
	a->pending_len = len;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

bool agent_pending(struct agent *a)
{
	bool p;

	pthread_mutex_lock(&a->lock);
	p = a->pending != NULL;
	pthread_mutex_unlock(&a->lock);
	return p;
}

long long agent_applied_generation(struct agent *a)
{
	long long g;

	pthread_mutex_lock(&a->lock);
	g = a->applied_generation;
	pthread_mutex_unlock(&a->lock);
	return g;
}

static void count(struct agent *a, unsigned long *counter, unsigned long n)
{
	pthread_mutex_lock(&a->lock);
	*counter += n;
	pthread_mutex_unlock(&a->lock);
}

/*
 * Sends one command on a fresh connection to the admin socket and reads the
 * answer to its end (HAProxy closes after one command), into out (reset).
 * Returns 0, -errno of the socket, -ETIMEDOUT, -E2BIG past KANARY_MAX_HAPROXY_ANSWER.
 */
static int cli_command(struct agent *a, const char *cmd, struct buf *out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timespec deadline = monotonic_after_ms(a->o.socket_timeout_ms);
	size_t len = strlen(cmd), sent = 0;
	char chunk[16384];
	int fd, r = 0;

	buf_reset(out);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a->o.socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		r = -errno;
		goto out_close;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = sent < len ? POLLOUT : POLLIN};
		long long left = monotonic_ms_between(monotonic_now(), deadline);
		ssize_t n;

		if (left <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		n = poll(&p, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			continue;
		if (sent < len) {
			n = send(fd, cmd + sent, len - sent, MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n < 0) {
				r = -errno;
				break;
			}
			sent += (size_t)n;
			continue;
		}
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		r = buf_append(out, chunk, (size_t)n);
		if (r < 0)
			break;
	}
out_close:
	close(fd);
	if (r == 0)
		r = buf_append(out, "", 0); /* a NUL-terminated answer, also when empty */
	count(a, &a->commands, 1);
	return r;
}

/* Reads HAProxy's servers and route map into a->rt. */
static int read_back(struct agent *a, struct buf *ans)
{
	int r;

	r = cli_command(a, "show servers state\n", ans);
	if (r == 0)
		r = agent_runtime_parse_servers(ans->data ? ans->data : "", &a->rt);
	if (r < 0)
		return r;
	r = cli_command(a, "show map " RENDER_ROUTE_MAP "\n", ans);
	if (r == 0)
		r = agent_runtime_parse_map(ans->data ? ans->data : "", &a->rt);
	return r;
}

/* An answer that is none of the ones success gives, for the log. */
static bool answer_unexpected(const char *ans)
{
	static const char *const ok[] = {"IP changed from", "no need to change",
	                                 "New version created"};

	if (!ans || ans[0] == '\0' || ans[0] == '\n')
		return false;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strncmp(ans, ok[i], strlen(ok[i])) == 0)
			return false;
	return true;
}

/* Logs the first line of ans that no successful command gives. */
static void log_unexpected(struct agent *a, const char *ans, const char *cmds)
{
	for (const char *l = ans; l && *l;) {
		const char *nl = strchr(l, '\n');
		int n = nl ? (int)(nl - l) : (int)strlen(l);
		char line[256];

		snprintf(line, sizeof(line), "%.*s", n, l);
		if (answer_unexpected(line)) {
			log_msg(LOG_WARNING, a->current.kanary,
			        "HAProxy answered \"%s\" to one of: %.200s", line, cmds);
			return;
		}
		l = nl ? nl + 1 : NULL;
	}
}

/*
 * Sends the '\n'-ended commands of cmds, joined by ';' into lines of at most
 * AGENT_MAX_BATCH bytes, one connection each: the CLI runs them in order, and
 * a few hundred slots go in a few round trips instead of one each. What
 * HAProxy made of them is checked by reading back, not from the answers.
 */
static int send_lines(struct agent *a, const struct buf *cmds, struct buf *ans)
{
	const char *c = cmds->data;
	char batch[AGENT_MAX_BATCH + 2];
	size_t used = 0;
	int r;

	while (c && *c) {
		const char *nl = strchr(c, '\n');
		size_t n = nl ? (size_t)(nl - c) : strlen(c);

		if (n > AGENT_MAX_BATCH)
			return -E2BIG;
		if (used && used + 1 + n > AGENT_MAX_BATCH) {
			batch[used++] = '\n';
			batch[used] = '\0';
			r = cli_command(a, batch, ans);
			if (r < 0)
				return r;
			log_unexpected(a, ans->data, batch);
			used = 0;
		}
		if (used)
			batch[used++] = ';';
		memcpy(batch + used, c, n);
		used += n;
		c += n + (nl ? 1 : 0);
	}
	if (!used)
		return 0;
	batch[used++] = '\n';
	batch[used] = '\0';
	r = cli_command(a, batch, ans);
	if (r == 0)
		log_unexpected(a, ans->data, batch);
	return r;
}

/* Replaces the route map whole: a new version, its entries, one commit. */
static int replace_map(struct agent *a, struct buf *ans)
{
	const char *c = a->plan.map.data;
	char cmd[256];
	long ver;
	int r;

	r = cli_command(a, "prepare map " RENDER_ROUTE_MAP "\n", ans);
	if (r < 0)
		return r;
	if (!ans->data || sscanf(ans->data, "New version created: %ld", &ver) != 1) {
		log_msg(LOG_WARNING, a->current.kanary,
		        "HAProxy answered \"%.200s\" to prepare map", ans->data ? ans->data : "");
		return -EPROTO;
	}
	while (c && *c) {
		const char *nl = strchr(c, '\n');
		int n = nl ? (int)(nl - c) : (int)strlen(c);

		snprintf(cmd, sizeof(cmd), "add map @%ld " RENDER_ROUTE_MAP " %.*s\n", ver, n, c);
		r = cli_command(a, cmd, ans);
		if (r < 0)
			return r;
		if (answer_unexpected(ans->data)) {
			log_msg(LOG_WARNING, a->current.kanary, "HAProxy answered \"%.200s\" to %s",
			        ans->data, cmd);
			return -EPROTO;
		}
		c += n + (nl ? 1 : 0);
	}
	snprintf(cmd, sizeof(cmd), "commit map @%ld " RENDER_ROUTE_MAP "\n", ver);
	r = cli_command(a, cmd, ans);
	if (r == 0 && answer_unexpected(ans->data)) {
		log_msg(LOG_WARNING, a->current.kanary, "HAProxy answered \"%.200s\" to %s",
		        ans->data, cmd);
		r = -EPROTO;
	}
	return r;
}

/* Reads the newest offered state, if any, into a->offered; counts one that does not parse. */
static void take_offer(struct agent *a)
{
	struct agent_state st;
	char why[AGENT_MAX_WHY] = "";
	char *text;
	size_t len;
	int r;

	pthread_mutex_lock(&a->lock);
	text = a->pending;
	len = a->pending_len;
	a->pending = NULL;
	pthread_mutex_unlock(&a->lock);
	if (!text)
		return;
	r = agent_state_parse(text, len, &st, why, sizeof(why));
	free(text);
	if (r < 0) {
		count(a, &a->rejected_invalid, 1);
		log_msg(LOG_WARNING, NULL, "state not applied: %s; keeping the one in force",
		        r == -EINVAL || r == -E2BIG ? why : strerror(-r));
		return;
	}
	agent_state_finish(&a->offered);
	a->offered = st;
	a->have_offered = true;
}

/*
 * Decides on a->offered with HAProxy read back into a->rt: a state for the
 * structure HAProxy runs is taken; one for another structure is taken too
 * when HAProxy has a backend for each of its routes (the structure rolls,
 * this pod's is older or newer: its slots are filled as far as they go,
 * routes it has and the state lacks get weight 0), else counted and
 * refused, and the state in force stays. Logged once per other hash.
 */
static void decide_offer(struct agent *a)
{
	struct agent_state *st = &a->offered;
	char why[AGENT_MAX_WHY] = "";
	bool same, ok;

	a->have_offered = false;
	same = strcmp(st->structure_hash, a->o.structure_hash) == 0;
	ok = same || agent_plan_compatible(st, &a->rt, why, sizeof(why));
	if (!same &&
	    (strcmp(a->logged_hash, st->structure_hash) != 0 || a->logged_compatible != ok)) {
		if (ok)
			log_msg(LOG_INFO, st->kanary,
			        "state generation %lld is for structure %s, this HAProxy runs %s: "
			        "applied to the routes and slots this HAProxy has (logged once for "
			        "%s)",
			        (long long)st->generation, st->structure_hash, a->o.structure_hash,
			        st->structure_hash);
		else
			log_msg(LOG_WARNING, st->kanary,
			        "state generation %lld is for structure %s, this HAProxy runs %s: "
			        "not applied, %s; the state in force stays (logged once for %s)",
			        (long long)st->generation, st->structure_hash, a->o.structure_hash,
			        why, st->structure_hash);
		snprintf(a->logged_hash, sizeof(a->logged_hash), "%s", st->structure_hash);
		a->logged_compatible = ok;
	}
	if (!ok) {
		count(a, &a->rejected_structure, 1);
		agent_state_finish(st);
		return;
	}
	if (a->have_current && a->current.generation != st->generation)
		log_msg(LOG_INFO, st->kanary, "state generation %lld read",
		        (long long)st->generation);
	pthread_mutex_lock(&a->lock);
	a->state_generation = st->generation;
	pthread_mutex_unlock(&a->lock);
	agent_state_finish(&a->current);
	a->current = *st;
	memset(st, 0, sizeof(*st));
	a->have_current = true;
}

static int fail(struct agent *a, int r, const char *what, const char *why)
{
	/* Before the first state is accepted, the one offered (it waits for a read back). */
	const struct agent_state *st = a->have_current ? &a->current : &a->offered;

	count(a, &a->errors, 1);
	if (a->logged_error_generation != st->generation || log_enabled(1)) {
		log_msg(LOG_WARNING, st->kanary,
		        "applying state generation %lld: %s: %s; retrying on the next pass",
		        (long long)st->generation, what, why && why[0] ? why : strerror(-r));
		a->logged_error_generation = st->generation;
	}
	return r;
}

int agent_sync(struct agent *a)
{
	char why[AGENT_MAX_WHY] = "";
	struct buf ans;
	size_t n_addr, n_fill, n_weights, n_drain;
	bool map_update;
	int r;

	take_offer(a);
	if (!a->have_current && !a->have_offered)
		return -EAGAIN;
	buf_init(&ans, KANARY_MAX_HAPROXY_ANSWER);
	r = read_back(a, &ans);
	if (r < 0) {
		/* An offered state waits for the next pass: it is checked against a read back. */
		fail(a, r, "reading HAProxy's runtime state", NULL);
		goto out_finish;
	}
	if (a->have_offered)
		decide_offer(a);
	if (!a->have_current) {
		r = -EAGAIN;
		goto out_finish;
	}
	r = agent_plan_build(&a->current, &a->rt, &a->plan, why, sizeof(why));
	if (r < 0) {
		fail(a, r, "comparing with HAProxy", why);
		goto out_finish;
	}
	pthread_mutex_lock(&a->lock);
	a->unplaced = a->plan.unplaced;
	pthread_mutex_unlock(&a->lock);
	if (agent_plan_empty(&a->plan))
		goto out_applied;

	/*
	 * Addresses first, then a read back: the next plan enables only the
	 * slots whose new address HAProxy took (an `addr` refused leaves its slot
	 * in maintenance, and the pass fails below).
	 */
	n_addr = a->plan.n_addr;
	if (n_addr) {
		r = send_lines(a, &a->plan.addr, &ans);
		if (r == 0)
			r = read_back(a, &ans);
		if (r == 0)
			r = agent_plan_build(&a->current, &a->rt, &a->plan, why, sizeof(why));
		if (r < 0) {
			fail(a, r, "setting slot addresses", why);
			goto out_finish;
		}
	}
	n_fill = a->plan.n_fill;
	n_weights = a->plan.n_weights;
	n_drain = a->plan.n_drain;
	map_update = a->plan.map_update;
	r = send_lines(a, &a->plan.fill, &ans);
	if (r == 0 && map_update)
		r = replace_map(a, &ans);
	/* The fallback's weights after the commit: never the new ratios with the old map. */
	if (r == 0)
		r = send_lines(a, &a->plan.weights, &ans);
	if (r == 0)
		r = send_lines(a, &a->plan.drain, &ans);
	if (r < 0) {
		fail(a, r, "sending runtime API commands", NULL);
		goto out_finish;
	}
	r = read_back(a, &ans);
	if (r == 0)
		r = agent_plan_build(&a->current, &a->rt, &a->plan, why, sizeof(why));
	if (r < 0) {
		fail(a, r, "reading back", why);
		goto out_finish;
	}
	if (!agent_plan_empty(&a->plan)) {
		r = fail(a, -EPROTO, "read back differs",
		         a->plan.n_addr ? "HAProxy did not take a slot's address"
		                        : "HAProxy does not run what was sent");
		goto out_finish;
	}
	count(a, &a->applies, 1);
	log_msg(LOG_INFO, a->current.kanary,
	        "applied state generation %lld: %zu address, %zu slot enable, %zu fallback weight "
	        "commands, %s, %zu slots drained; read back",
	        (long long)a->current.generation, n_addr, n_fill, n_weights,
	        map_update ? "route map replaced" : "route map unchanged", n_drain);
out_applied:
	if (a->plan.unplaced)
		log_msg(a->logged_error_generation == a->current.generation ? LOG_DEBUG
		                                                            : LOG_WARNING,
		        a->current.kanary,
		        "%zu endpoints have no free slot; a larger structure will come",
		        a->plan.unplaced);
	a->logged_error_generation = a->plan.unplaced ? a->current.generation : -1;
	pthread_mutex_lock(&a->lock);
	a->applied_generation = a->current.generation;
	pthread_mutex_unlock(&a->lock);
	r = 0;
out_finish:
	buf_finish(&ans);
	return r;
}

int agent_metrics(struct agent *a, struct buf *out)
{
	unsigned long applies, errors, rej_structure, rej_invalid, commands, unplaced;
	long long state_gen, applied_gen;

	pthread_mutex_lock(&a->lock);
	state_gen = a->state_generation;
	applied_gen = a->applied_generation;
	applies = a->applies;
	errors = a->errors;
	rej_structure = a->rejected_structure;
	rej_invalid = a->rejected_invalid;
	commands = a->commands;
	unplaced = a->unplaced;
	pthread_mutex_unlock(&a->lock);

	return buf_printf(
	    out,
	    "# HELP kanary_agent_structure_info The structure hash of the HAProxy configuration "
	    "the "
	    "agent serves.\n"
	    "# TYPE kanary_agent_structure_info gauge\n"
	    "kanary_agent_structure_info{structure_hash=\"%s\"} 1\n"
	    "# HELP kanary_agent_state_generation Generation of the newest state accepted for this "
	    "HAProxy (applied, or being applied).\n"
	    "# TYPE kanary_agent_state_generation gauge\n"
	    "kanary_agent_state_generation %lld\n"
	    "# HELP kanary_agent_applied_generation Generation HAProxy was last read back to run "
	    "(0: none).\n"
	    "# TYPE kanary_agent_applied_generation gauge\n"
	    "kanary_agent_applied_generation %lld\n"
	    "# HELP kanary_agent_applies_total Applies that changed HAProxy and were read back.\n"
	    "# TYPE kanary_agent_applies_total counter\n"
	    "kanary_agent_applies_total %lu\n"
	    "# HELP kanary_agent_apply_errors_total Passes that failed (socket, refused command, "
	    "read back differs).\n"
	    "# TYPE kanary_agent_apply_errors_total counter\n"
	    "kanary_agent_apply_errors_total %lu\n"
	    "# HELP kanary_agent_states_rejected_total States refused: invalid, or for a structure "
	    "with a route this HAProxy lacks.\n"
	    "# TYPE kanary_agent_states_rejected_total counter\n"
	    "kanary_agent_states_rejected_total{reason=\"structure\"} %lu\n"
	    "kanary_agent_states_rejected_total{reason=\"invalid\"} %lu\n"
	    "# HELP kanary_agent_commands_total Runtime API commands sent.\n"
	    "# TYPE kanary_agent_commands_total counter\n"
	    "kanary_agent_commands_total %lu\n"
	    "# HELP kanary_agent_unplaced_endpoints Ready endpoints of the state in force with no "
	    "slot in this HAProxy.\n"
	    "# TYPE kanary_agent_unplaced_endpoints gauge\n"
	    "kanary_agent_unplaced_endpoints %lu\n",
	    a->o.structure_hash, state_gen, applied_gen, applies, errors, rej_structure,
	    rej_invalid, commands, unplaced);
}
