/* SPDX-License-Identifier: Apache-2.0 */
/* The controller's Prometheus metrics. */
#ifndef KANARY_CONTROLLER_METRICS_H
#define KANARY_CONTROLLER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/*
 * The controller's Prometheus metrics, kept behind one lock and written out
 * in the text exposition format (version 0.0.4) by metrics_render:
 *   kanary_controller_reconcile_total{result="success"|"error"}
 *   kanary_controller_reconcile_errors_total
 *   kanary_controller_reconcile_duration_seconds (histogram)
 *   kanary_controller_workqueue_depth, _waiting, _adds_total, _retries_total
 *   kanary_controller_leader, kanary_controller_informer_synced{resource}
 *   kanary_route_weight{namespace, kanary, service}
 *   kanary_route_ready_endpoints{namespace, kanary, service}
 *   kanary_controller_events_total{result="created"|"patched"|"spam_filtered"|
 *                                  "queue_full"|"failed"}
 *   kanary_controller_events_recorded_total, kanary_controller_event_queue_depth,
 *   kanary_controller_event_queue_capacity
 * The gauges that live elsewhere (queue, lease, informers) come from a
 * callback at render time, so they are never stale.
 */

enum metrics_result {
	METRICS_SUCCESS = 0,
	METRICS_ERROR,
	METRICS_RESULT_N,
};

struct metrics;

int metrics_create(struct metrics **ret);
void metrics_destroy(struct metrics *m);

void metrics_reconciled(struct metrics *m, enum metrics_result result, double seconds);

/* One route of a Kanary, as in force. */
struct metrics_route {
	const char *service;
	int64_t weight;
	int64_t endpoints;
};

/* Replaces the series of the Kanary "namespace/name" (n == 0 keeps none). */
int metrics_set_routes(struct metrics *m, const char *key, const struct metrics_route *routes,
                       size_t n);
void metrics_forget(struct metrics *m, const char *key);

/*
 * Writes every metric into out; extra (may be NULL) appends the gauges owned
 * elsewhere, with metrics_gauge. Returns 0, -ENOMEM or -E2BIG.
 */
int metrics_render(struct metrics *m, int (*extra)(void *ctx, struct buf *out), void *ctx,
                   struct buf *out);

struct kube_recorder_stats;

/* The event recorder's counters (common/kube/events.h), rendered from a snapshot. */
int metrics_events(struct buf *out, const struct kube_recorder_stats *st);

/* "# HELP", "# TYPE" and one sample; labels is "" or 'a="b",c="d"'. */
int metrics_gauge(struct buf *out, const char *name, const char *help, const char *type,
                  const char *labels, double value);

/* Escapes a label value (\\, \", \n) into out; -E2BIG when it does not fit. */
int metrics_escape(const char *s, char *out, size_t size);

#endif
