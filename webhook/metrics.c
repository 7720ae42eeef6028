/* SPDX-License-Identifier: Apache-2.0 */
/* The webhook's Prometheus counters. */
#include "webhook/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/buf.h"

/* The HTTP statuses the webhook answers with; anything else is counted as "other". */
static const unsigned codes[] = {200, 400, 404, 405, 413, 415, 500, 503};
#define N_CODES (sizeof(codes) / sizeof(codes[0]) + 1)

/* Latency buckets in seconds: admission is sub-millisecond work; the tail is the lookups. */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static const char *const path_names[METRICS_PATH_COUNT] = {
    [METRICS_PATH_VALIDATE] = "/validate",
    [METRICS_PATH_MUTATE] = "/mutate",
    [METRICS_PATH_OTHER] = "other",
};

static const char *const verdict_names[METRICS_VERDICT_COUNT] = {
    [METRICS_VERDICT_ALLOWED] = "allowed",
    [METRICS_VERDICT_DENIED] = "denied",
    [METRICS_VERDICT_UNCHANGED] = "unchanged",
    [METRICS_VERDICT_SKIPPED] = "skipped",
    [METRICS_VERDICT_LOOKUP_FAILED] = "lookup_failed",
    [METRICS_VERDICT_BAD_REQUEST] = "bad_request",
    [METRICS_VERDICT_REFUSED] = "refused",
    [METRICS_VERDICT_ERROR] = "error",
};

static const char *const lookup_names[METRICS_LOOKUP_COUNT] = {
    [METRICS_LOOKUP_CACHE] = "cache",
    [METRICS_LOOKUP_LIVE_FOUND] = "live_found",
    [METRICS_LOOKUP_LIVE_NOT_FOUND] = "live_not_found",
    [METRICS_LOOKUP_LIVE_ERROR] = "live_error",
};

struct histogram {
	atomic_ulong counts[N_BUCKETS]; /* per bucket, not cumulative; summed when rendered */
	atomic_ulong count;
	atomic_ullong sum_us;
};

struct metrics {
	atomic_ulong requests[METRICS_PATH_COUNT][METRICS_VERDICT_COUNT][N_CODES];
	struct histogram latency[METRICS_PATH_COUNT];
	atomic_ulong lookups[METRICS_LOOKUP_COUNT];
	atomic_ulong reloads_ok, reloads_failed;
	atomic_ulong connections_opened;
	atomic_long connections_open;
	atomic_long inflight;
};

int metrics_create(struct metrics **ret)
{
	/* calloc'd atomics are zero: every atomic type here is lock-free on our targets. */
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	*ret = m;
	return 0;
}

void metrics_destroy(struct metrics *m)
{
	free(m);
}

static size_t code_index(unsigned code)
{
	for (size_t i = 0; i < N_CODES - 1; i++) {
		if (codes[i] == code)
			return i;
	}
	return N_CODES - 1;
}

void metrics_request(struct metrics *m, enum metrics_path path, enum metrics_verdict verdict,
                     unsigned code, double seconds)
{
	struct histogram *h;
	size_t b = 0;

	if ((unsigned)path >= METRICS_PATH_COUNT || (unsigned)verdict >= METRICS_VERDICT_COUNT)
		return;
	atomic_fetch_add_explicit(&m->requests[path][verdict][code_index(code)], 1,
	                          memory_order_relaxed);
	h = &m->latency[path];
	while (b < N_BUCKETS && seconds > buckets[b])
		b++;
	if (b < N_BUCKETS)
		atomic_fetch_add_explicit(&h->counts[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us,
	                          seconds > 0 ? (unsigned long long)(seconds * 1e6 + 0.5) : 0,
	                          memory_order_relaxed);
}

void metrics_lookup(struct metrics *m, enum metrics_lookup what)
{
	if ((unsigned)what < METRICS_LOOKUP_COUNT)
		atomic_fetch_add_explicit(&m->lookups[what], 1, memory_order_relaxed);
}

void metrics_cert_reload(struct metrics *m, bool ok)
{
	atomic_fetch_add_explicit(ok ? &m->reloads_ok : &m->reloads_failed, 1,
	                          memory_order_relaxed);
}

void metrics_connection(struct metrics *m, bool opened)
{
	if (opened)
		atomic_fetch_add_explicit(&m->connections_opened, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->connections_open, opened ? 1 : -1, memory_order_relaxed);
}

void metrics_inflight(struct metrics *m, int delta)
{
	atomic_fetch_add_explicit(&m->inflight, delta, memory_order_acq_rel);
}

long metrics_inflight_now(struct metrics *m)
{
	return atomic_load_explicit(&m->inflight, memory_order_acquire);
}

static unsigned long load(atomic_ulong *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static int render_requests(struct metrics *m, struct buf *out)
{
	int r = buf_puts(out, "# HELP kanary_webhook_requests_total Admission HTTP requests "
	                      "answered, by path, verdict and HTTP status code.\n"
	                      "# TYPE kanary_webhook_requests_total counter\n");

	for (size_t p = 0; r == 0 && p < METRICS_PATH_COUNT; p++) {
		for (size_t v = 0; r == 0 && v < METRICS_VERDICT_COUNT; v++) {
			for (size_t c = 0; r == 0 && c < N_CODES; c++) {
				unsigned long n = load(&m->requests[p][v][c]);
				char code[16];
				if (n == 0)
					continue;
				if (c < N_CODES - 1)
					snprintf(code, sizeof(code), "%u", codes[c]);
				else
					snprintf(code, sizeof(code), "other");
				r = buf_printf(out,
				               "kanary_webhook_requests_total{path=\"%s\","
				               "verdict=\"%s\",code=\"%s\"} %lu\n",
				               path_names[p], verdict_names[v], code, n);
			}
		}
	}
	return r;
}

static int render_latency(struct metrics *m, struct buf *out)
{
	int r = buf_puts(out, "# HELP kanary_webhook_request_duration_seconds Time from the "
	                      "request's headers to its answer being sent.\n"
	                      "# TYPE kanary_webhook_request_duration_seconds histogram\n");

	for (size_t p = 0; r == 0 && p < METRICS_PATH_COUNT; p++) {
		struct histogram *h = &m->latency[p];
		unsigned long cumulative = 0, count = load(&h->count);
		unsigned long long sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
		for (size_t b = 0; r == 0 && b < N_BUCKETS; b++) {
			cumulative += load(&h->counts[b]);
			/* The buckets and the count move independently; never show le > +Inf. */
			if (cumulative > count)
				count = cumulative;
			r = buf_printf(out,
			               "kanary_webhook_request_duration_seconds_bucket{path=\"%s\","
			               "le=\"%g\"} %lu\n",
			               path_names[p], buckets[b], cumulative);
		}
		if (r == 0)
			r = buf_printf(
			    out,
			    "kanary_webhook_request_duration_seconds_bucket{path=\"%s\","
			    "le=\"+Inf\"} %lu\n"
			    "kanary_webhook_request_duration_seconds_sum{path=\"%s\"} "
			    "%llu.%06llu\n"
			    "kanary_webhook_request_duration_seconds_count{path=\"%s\"} %lu\n",
			    path_names[p], count, path_names[p], sum_us / 1000000, sum_us % 1000000,
			    path_names[p], count);
	}
	return r;
}

int metrics_render(struct metrics *m, const struct metrics_gauges *g, struct buf *out)
{
	int r;

	r = render_requests(m, out);
	if (r == 0)
		r = render_latency(m, out);
	if (r == 0)
		r = buf_puts(out, "# HELP kanary_webhook_service_lookups_total Services looked up "
		                  "for admission, by where they were found.\n"
		                  "# TYPE kanary_webhook_service_lookups_total counter\n");
	for (size_t i = 0; r == 0 && i < METRICS_LOOKUP_COUNT; i++)
		r = buf_printf(out, "kanary_webhook_service_lookups_total{source=\"%s\"} %lu\n",
		               lookup_names[i], load(&m->lookups[i]));
	if (r == 0)
		r = buf_printf(
		    out,
		    "# HELP kanary_webhook_certificate_reloads_total Serving certificate reloads "
		    "from disk, by result (a refused pair keeps the previous one).\n"
		    "# TYPE kanary_webhook_certificate_reloads_total counter\n"
		    "kanary_webhook_certificate_reloads_total{result=\"success\"} %lu\n"
		    "kanary_webhook_certificate_reloads_total{result=\"failure\"} %lu\n"
		    "# HELP kanary_webhook_certificate_expiry_timestamp_seconds When the serving "
		    "certificate in use expires.\n"
		    "# TYPE kanary_webhook_certificate_expiry_timestamp_seconds gauge\n"
		    "kanary_webhook_certificate_expiry_timestamp_seconds %" PRId64 "\n"
		    "# HELP kanary_webhook_certificate_pairs Serving certificate pairs in memory: "
		    "the one in use, and replaced ones that open connections still hold.\n"
		    "# TYPE kanary_webhook_certificate_pairs gauge\n"
		    "kanary_webhook_certificate_pairs %u\n",
		    load(&m->reloads_ok), load(&m->reloads_failed), g->cert_not_after,
		    g->cert_pairs);
	if (r == 0)
		r = buf_printf(
		    out,
		    "# HELP kanary_webhook_cache_objects Objects in the watch-fed caches.\n"
		    "# TYPE kanary_webhook_cache_objects gauge\n"
		    "kanary_webhook_cache_objects{resource=\"services\"} %zu\n"
		    "kanary_webhook_cache_objects{resource=\"endpointslices\"} %zu\n"
		    "# HELP kanary_webhook_cache_synced Whether a cache has finished its first "
		    "list.\n"
		    "# TYPE kanary_webhook_cache_synced gauge\n"
		    "kanary_webhook_cache_synced{resource=\"services\"} %d\n"
		    "kanary_webhook_cache_synced{resource=\"endpointslices\"} %d\n",
		    g->services, g->endpointslices, g->services_synced ? 1 : 0,
		    g->endpointslices_synced ? 1 : 0);
	if (r == 0)
		r = buf_printf(
		    out,
		    "# HELP kanary_webhook_connections_total TLS connections accepted.\n"
		    "# TYPE kanary_webhook_connections_total counter\n"
		    "kanary_webhook_connections_total %lu\n"
		    "# HELP kanary_webhook_open_connections TLS connections open now.\n"
		    "# TYPE kanary_webhook_open_connections gauge\n"
		    "kanary_webhook_open_connections %ld\n"
		    "# HELP kanary_webhook_inflight_requests Admission requests being read or "
		    "answered.\n"
		    "# TYPE kanary_webhook_inflight_requests gauge\n"
		    "kanary_webhook_inflight_requests %ld\n"
		    "# HELP kanary_webhook_shutting_down 1 once SIGTERM was received.\n"
		    "# TYPE kanary_webhook_shutting_down gauge\n"
		    "kanary_webhook_shutting_down %d\n",
		    load(&m->connections_opened),
		    atomic_load_explicit(&m->connections_open, memory_order_relaxed),
		    atomic_load_explicit(&m->inflight, memory_order_relaxed),
		    g->shutting_down ? 1 : 0);
	return r;
}
