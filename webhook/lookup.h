/* SPDX-License-Identifier: Apache-2.0 */
/* The Services and EndpointSlices admission checks against: watch-fed caches and live GETs. */
#ifndef KANARY_WEBHOOK_LOOKUP_H
#define KANARY_WEBHOOK_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>

struct catalog;
struct kanary;
struct kube_config;
struct metrics;

/*
 * The Services and EndpointSlices admission checks a Kanary against, from
 * two watch-fed caches (informers over every namespace). A Service missing
 * from the cache is fetched with one live GET, bounded by live_timeout_ms,
 * so a Service created a moment before its Kanary is found even when its
 * watch event has not arrived yet. EndpointSlices come from the cache only:
 * they decide a warning, never a verdict.
 *
 * Threading: lookup_fill may run on many threads at once. The caches hold
 * compact records (common/kobj.h) that a lookup borrows with a reference,
 * never copies; the EndpointSlices of a Service come from the slice
 * informer's index; each live GET borrows an API client from a small pool,
 * one client per thread at a time.
 */
struct lookup_options {
	long live_timeout_ms; /* connect and request timeout of the live GET; > 0 */
	/*
	 * Watch and look up in this namespace only (--namespace; the chart's
	 * namespaced install, whose Roles allow no more); NULL: every namespace.
	 */
	const char *namespace;
	struct metrics *metrics; /* borrowed */
};

struct lookup;

/*
 * cfg is borrowed and must outlive the lookup. Nothing runs until lookup_start.
 * Ownership: *ret is the caller's, freed with lookup_destroy.
 */
int lookup_create(struct kube_config *cfg, const struct lookup_options *o, struct lookup **ret);
/* Starts both informers. */
int lookup_start(struct lookup *l);
/* Stops the informers and frees everything; NULL does nothing. */
void lookup_destroy(struct lookup *l);

/* True once both caches hold their first complete list. */
bool lookup_synced(struct lookup *l);

struct lookup_counts {
	size_t services, endpointslices;
	bool services_synced, endpointslices_synced;
};
void lookup_counts(struct lookup *l, struct lookup_counts *ret);

/*
 * The admission_lookup callback: adds to cat the Service named by each route
 * of k (in k's namespace) that exists, and that Service's EndpointSlices.
 * A Service that exists nowhere is simply not added (resolution reports it).
 * Returns 0; -EACCES for a Kanary outside the namespace the lookup is limited
 * to (the request is answered with an error, so it is refused); -EIO (or the
 * client's -errno) when a live GET failed for another reason than NotFound,
 * -E2BIG past KANARY_MAX_SERVICE_SLICES, -ENOMEM.
 */
int lookup_fill(void *ctx, const struct kanary *k, struct catalog *cat);

#endif
