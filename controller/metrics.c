/* SPDX-License-Identifier: Apache-2.0 */
/* The controller's Prometheus metrics. */
#include "controller/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/kube/events.h"
#include "common/limits.h"
#include "common/string_map.h"

/* Seconds; a reconcile is a handful of API calls, so most land well below one second. */
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/*
 * One Kanary's routes, in one allocation at their own size: at 10,000
 * Kanaries a fixed array of KANARY_MAX_ROUTES names cost 13 MiB.
 */
struct series_route {
	const char *service; /* in the series' allocation */
	int64_t weight;
	int64_t endpoints;
};

struct series {
	size_t n;
	struct series_route routes[]; /* n of them, then their names */
};

struct metrics {
	pthread_mutex_t lock;
	unsigned long results[METRICS_RESULT_N];
	unsigned long hist[N_BUCKETS]; /* not cumulative; summed when rendered */
	unsigned long hist_count;
	double hist_sum;
	struct string_map kanaries; /* "ns/name" -> struct series * */
};

int metrics_create(struct metrics **ret)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		return -ENOMEM;
	}
	string_map_init(&m->kanaries, KANARY_MAX_METRICS_KANARIES);
	*ret = m;
	return 0;
}

void metrics_destroy(struct metrics *m)
{
	if (!m)
		return;
	string_map_finish(&m->kanaries, free);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void metrics_reconciled(struct metrics *m, enum metrics_result result, double seconds)
{
	size_t b = 0;

	while (b < N_BUCKETS && seconds > buckets[b])
		b++;
	pthread_mutex_lock(&m->lock);
	m->results[result]++;
	if (b < N_BUCKETS)
		m->hist[b]++;
	m->hist_count++;
	m->hist_sum += seconds;
	pthread_mutex_unlock(&m->lock);
}

int metrics_set_routes(struct metrics *m, const char *key, const struct metrics_route *routes,
                       size_t n)
{
	struct series *s, *old = NULL;
	size_t names = 0;
	char *text;
	int r;

	if (n == 0) {
		metrics_forget(m, key);
		return 0;
	}
	if (n > KANARY_MAX_ROUTES)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(routes[i].service);

		if (len > KANARY_MAX_DNS_LABEL)
			return -E2BIG;
		names += len + 1;
	}
	s = malloc(sizeof(*s) + n * sizeof(s->routes[0]) + names);
	if (!s)
		return -ENOMEM;
	text = (char *)&s->routes[n];
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(routes[i].service);

		memcpy(text, routes[i].service, len + 1);
		s->routes[i].service = text;
		s->routes[i].weight = routes[i].weight;
		s->routes[i].endpoints = routes[i].endpoints;
		text += len + 1;
	}
	s->n = n;
	pthread_mutex_lock(&m->lock);
	r = string_map_put(&m->kanaries, key, s, (void **)&old);
	pthread_mutex_unlock(&m->lock);
	if (r < 0) {
		free(s);
		return r;
	}
	free(old);
	return 0;
}

void metrics_forget(struct metrics *m, const char *key)
{
	void *old = NULL;

	pthread_mutex_lock(&m->lock);
	string_map_remove(&m->kanaries, key, &old);
	pthread_mutex_unlock(&m->lock);
	free(old);
}

int metrics_escape(const char *s, char *out, size_t size)
{
	size_t o = 0;

	for (; *s; s++) {
		const char *rep = NULL;
		char one[2] = {*s, '\0'};
		size_t len;

		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '"')
			rep = "\\\"";
		else if (*s == '\n')
			rep = "\\n";
		else
			rep = one;
		len = strlen(rep);
		if (o + len >= size)
			return -E2BIG;
		memcpy(out + o, rep, len);
		o += len;
	}
	if (size == 0)
		return -E2BIG;
	out[o] = '\0';
	return 0;
}

int metrics_gauge(struct buf *out, const char *name, const char *help, const char *type,
                  const char *labels, double value)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s%s%s%s %.17g\n", name, help, name,
	                  type, name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", value);
}

struct route_render {
	struct buf *out;
	const char *metric;
	bool endpoints;
	int err;
};

static int render_series(void *ctx, const char *key, void *value)
{
	struct route_render *rr = ctx;
	const struct series *s = value;
	char ns[2 * KANARY_MAX_DNS_LABEL + 1], name[2 * KANARY_MAX_NAME + 1];
	const char *slash = strchr(key, '/');
	char nsraw[KANARY_MAX_DNS_LABEL + 1];
	size_t nslen;

	if (!slash || (nslen = (size_t)(slash - key)) > KANARY_MAX_DNS_LABEL)
		return 0;
	memcpy(nsraw, key, nslen);
	nsraw[nslen] = '\0';
	if (metrics_escape(nsraw, ns, sizeof(ns)) < 0 ||
	    metrics_escape(slash + 1, name, sizeof(name)) < 0)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		int r = buf_printf(
		    rr->out, "%s{namespace=\"%s\",kanary=\"%s\",service=\"%s\"} %lld\n", rr->metric,
		    ns, name, s->routes[i].service,
		    (long long)(rr->endpoints ? s->routes[i].endpoints : s->routes[i].weight));
		if (r < 0) {
			rr->err = r;
			return 1;
		}
	}
	return 0;
}

static int render_locked(struct metrics *m, struct buf *out)
{
	static const char *const names[METRICS_RESULT_N] = {"success", "error"};
	struct route_render rr = {.out = out};
	unsigned long cum = 0;
	int r = 0;

	r = buf_puts(out, "# HELP kanary_controller_reconcile_total Reconciles by result.\n"
	                  "# TYPE kanary_controller_reconcile_total counter\n");
	for (size_t i = 0; r == 0 && i < METRICS_RESULT_N; i++)
		r = buf_printf(out, "kanary_controller_reconcile_total{result=\"%s\"} %lu\n",
		               names[i], m->results[i]);
	if (r == 0)
		r = buf_printf(out,
		               "# HELP kanary_controller_reconcile_errors_total Reconciles that "
		               "failed and were retried.\n"
		               "# TYPE kanary_controller_reconcile_errors_total counter\n"
		               "kanary_controller_reconcile_errors_total %lu\n",
		               m->results[METRICS_ERROR]);
	if (r == 0)
		r = buf_puts(out,
		             "# HELP kanary_controller_reconcile_duration_seconds Time one "
		             "reconcile took.\n"
		             "# TYPE kanary_controller_reconcile_duration_seconds histogram\n");
	for (size_t b = 0; r == 0 && b < N_BUCKETS; b++) {
		cum += m->hist[b];
		r = buf_printf(
		    out, "kanary_controller_reconcile_duration_seconds_bucket{le=\"%g\"} %lu\n",
		    buckets[b], cum);
	}
	if (r == 0)
		r = buf_printf(
		    out,
		    "kanary_controller_reconcile_duration_seconds_bucket{le=\"+Inf\"} %lu\n"
		    "kanary_controller_reconcile_duration_seconds_sum %.9g\n"
		    "kanary_controller_reconcile_duration_seconds_count %lu\n",
		    m->hist_count, m->hist_sum, m->hist_count);
	if (r == 0)
		r = buf_puts(out, "# HELP kanary_route_weight Weight of a route in force, in "
		                  "percent.\n# TYPE kanary_route_weight gauge\n");
	rr.metric = "kanary_route_weight";
	if (r == 0)
		string_map_foreach(&m->kanaries, render_series, &rr);
	if (r == 0 && rr.err == 0)
		r = buf_puts(out, "# HELP kanary_route_ready_endpoints Ready endpoints behind a "
		                  "route in force.\n# TYPE kanary_route_ready_endpoints gauge\n");
	rr.metric = "kanary_route_ready_endpoints";
	rr.endpoints = true;
	if (r == 0 && rr.err == 0)
		string_map_foreach(&m->kanaries, render_series, &rr);
	return r < 0 ? r : rr.err;
}

int metrics_render(struct metrics *m, int (*extra)(void *ctx, struct buf *out), void *ctx,
                   struct buf *out)
{
	int r;

	pthread_mutex_lock(&m->lock);
	r = render_locked(m, out);
	pthread_mutex_unlock(&m->lock);
	if (r == 0 && extra)
		r = extra(ctx, out);
	return r;
}

int metrics_events(struct buf *out, const struct kube_recorder_stats *st)
{
	const struct {
		const char *result;
		unsigned long n;
	} rows[] = {
	    {"created", st->created},       {"patched", st->patched},
	    {"spam_filtered", st->dropped}, {"queue_full", st->queue_dropped},
	    {"failed", st->failed},
	};
	int r;

	r = buf_puts(out, "# HELP kanary_controller_events_total Events recorded, by what became "
	                  "of them: written (created, or patched with count + 1), dropped by the "
	                  "spam filter or by a full queue, or refused by the API server.\n"
	                  "# TYPE kanary_controller_events_total counter\n");
	for (size_t i = 0; r == 0 && i < sizeof(rows) / sizeof(rows[0]); i++)
		r = buf_printf(out, "kanary_controller_events_total{result=\"%s\"} %lu\n",
		               rows[i].result, rows[i].n);
	if (r == 0)
		r = metrics_gauge(
		    out, "kanary_controller_events_recorded_total",
		    "Events accepted into the recorder's queue; each ends as one of "
		    "kanary_controller_events_total's created, patched, spam_filtered "
		    "or failed.",
		    "counter", "", (double)st->recorded);
	if (r == 0)
		r = metrics_gauge(out, "kanary_controller_event_queue_depth",
		                  "Events waiting for the recorder's writer.", "gauge", "",
		                  (double)st->queued);
	if (r == 0)
		r = metrics_gauge(out, "kanary_controller_event_queue_capacity",
		                  "Events the queue holds before it drops.", "gauge", "",
		                  (double)st->queue_size);
	return r;
}
