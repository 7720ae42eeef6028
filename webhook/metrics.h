/* SPDX-License-Identifier: Apache-2.0 */
/* The webhook's Prometheus counters. */
#ifndef KANARY_WEBHOOK_METRICS_H
#define KANARY_WEBHOOK_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/*
 * The webhook's counters, in the Prometheus text format (version 0.0.4).
 * Every counter is atomic: request threads add to them without a lock, and
 * /metrics reads them while they move.
 */

/* The path label: only our own paths, so a scanner cannot grow the series. */
enum metrics_path {
	METRICS_PATH_VALIDATE = 0,
	METRICS_PATH_MUTATE,
	METRICS_PATH_OTHER,
	METRICS_PATH_COUNT,
};

/* The verdict label. */
enum metrics_verdict {
	METRICS_VERDICT_ALLOWED = 0,   /* checked and allowed */
	METRICS_VERDICT_DENIED,        /* checked and denied */
	METRICS_VERDICT_UNCHANGED,     /* UPDATE leaving spec alone: allowed unchecked */
	METRICS_VERDICT_SKIPPED,       /* not a Kanary CREATE or UPDATE: allowed unchecked */
	METRICS_VERDICT_LOOKUP_FAILED, /* Services could not be looked up: 500 */
	METRICS_VERDICT_BAD_REQUEST,   /* not an AdmissionReview: 400 */
	METRICS_VERDICT_REFUSED,       /* refused before reading: 404, 405, 413, 415, 503 */
	METRICS_VERDICT_ERROR,         /* out of memory and the like: 500 */
	METRICS_VERDICT_COUNT,
};

/* Where a Service came from during a lookup. */
enum metrics_lookup {
	METRICS_LOOKUP_CACHE = 0,      /* the watch-fed cache had it */
	METRICS_LOOKUP_LIVE_FOUND,     /* a miss, found by a live GET */
	METRICS_LOOKUP_LIVE_NOT_FOUND, /* a miss, and the API server has none either */
	METRICS_LOOKUP_LIVE_ERROR,     /* a miss, and the live GET failed */
	METRICS_LOOKUP_COUNT,
};

struct metrics;

/* Ownership: the caller destroys it; metrics_destroy(NULL) does nothing. */
int metrics_create(struct metrics **ret);
void metrics_destroy(struct metrics *m);

/* One answered request: its HTTP status and how long it took, in seconds. */
void metrics_request(struct metrics *m, enum metrics_path path, enum metrics_verdict verdict,
                     unsigned code, double seconds);
void metrics_lookup(struct metrics *m, enum metrics_lookup what);
/* A certificate reload attempt; ok false when the new pair was refused. */
void metrics_cert_reload(struct metrics *m, bool ok);
void metrics_connection(struct metrics *m, bool opened);
void metrics_inflight(struct metrics *m, int delta);
long metrics_inflight_now(struct metrics *m);

/* Values read from elsewhere at scrape time. */
struct metrics_gauges {
	size_t services;       /* objects in the Service cache */
	size_t endpointslices; /* objects in the EndpointSlice cache */
	bool services_synced;
	bool endpointslices_synced;
	int64_t cert_not_after; /* the serving certificate's expiry, Unix seconds; 0 none */
	unsigned cert_pairs;    /* certificate pairs in memory: in use and still held */
	bool shutting_down;
};

/* Appends the whole /metrics text to out. Returns 0, -E2BIG or -ENOMEM. */
int metrics_render(struct metrics *m, const struct metrics_gauges *g, struct buf *out);

#endif
