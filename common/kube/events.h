/* SPDX-License-Identifier: Apache-2.0 */
/* Writing core/v1 Events about objects, aggregated and rate-limited as client-go does. */
#ifndef KANARY_KUBE_EVENTS_H
#define KANARY_KUBE_EVENTS_H

#include <stdbool.h>

#include "common/kube/config.h"

struct json_object;

/*
 * Writes core/v1 Events about objects, as client-go's record package does,
 * so `kubectl describe` and `kubectl get events` show them:
 *   - An Event repeated (same object, type, reason and message, from the same
 *     component and host) is not written again: the existing one is patched
 *     with count + 1 and a new lastTimestamp. The recorder remembers up to
 *     KANARY_MAX_EVENT_CACHE distinct Events, least recently used first out.
 *     When the remembered Event is gone (deleted, expired by the API server's
 *     event TTL), a new one is created.
 *   - A spam filter per object (client-go's EventSourceObjectSpamFilter: a
 *     bucket of 25 that refills one every 5 minutes) drops the excess.
 *   - Not done: client-go's aggregation of *different* messages about one
 *     object into "(combined from similar events)"; our reasons are few and
 *     our messages stable, so plain repeats cover it.
 *
 * kube_record never waits for the API server: it formats the Event and puts
 * it on a bounded queue (KANARY_MAX_EVENT_QUEUE), which one thread of the
 * recorder drains, one API call per Event (no retries). When the queue is
 * full the Event is dropped, counted, and the first drop of a run of them is
 * logged through the config's logger. The aggregation and the spam filter
 * belong to that thread alone; the queue and the counters sit behind a lock
 * that is never held across an API call. A failed write is logged and
 * counted: an Event is best effort.
 */

enum kube_record_type {
	KUBE_RECORD_NORMAL = 0,
	KUBE_RECORD_WARNING,
};

#define KUBE_EVENT_BURST    25
#define KUBE_EVENT_REFILL_S 300
/* Event messages are cut here, the cut marked (events.k8s.io allows 1 kB). */
#define KUBE_EVENT_MESSAGE_MAX 1024

struct kube_recorder;

struct kube_recorder_options {
	const char *component; /* source.component and reportingComponent ("kanary-controller") */
	const char *host;      /* source.host and reportingInstance (the pod name); may be NULL */
	size_t queue_size;     /* 0: KANARY_MAX_EVENT_QUEUE */
};

/*
 * Makes a recorder with its queue; its writer starts with kube_recorder_start
 * (until then Events wait in the queue). cfg is borrowed and must outlive the
 * recorder; the options' strings are copied. Ownership: *ret is the caller's,
 * freed with kube_recorder_destroy.
 */
int kube_recorder_create(struct kube_config *cfg, const struct kube_recorder_options *o,
                         struct kube_recorder **ret);
/* Starts the writer thread. */
int kube_recorder_start(struct kube_recorder *rec);
/*
 * Stops the writer: what is queued is still written for up to
 * KUBE_EVENT_FLUSH_MS, then a write in flight is cut and the rest dropped
 * (counted). Frees everything; NULL does nothing.
 */
void kube_recorder_destroy(struct kube_recorder *rec);

#define KUBE_EVENT_FLUSH_MS 2000L

/*
 * Queues an Event about obj (which needs kind, apiVersion, metadata.name
 * and, for namespaced objects, metadata.namespace; uid and resourceVersion
 * are copied when present). reason is CamelCase ("Rendered", "InvalidSpec").
 * The Event lives in obj's namespace, or "default" for cluster-scoped ones.
 * Returns at once: 0 when queued, -ENOSPC when the queue is full (dropped),
 * -EINVAL for an object without kind or name, -ENOMEM. What the writer then
 * does (write, aggregate, filter, fail) shows in kube_recorder_stats. obj is
 * borrowed.
 */
int kube_record(struct kube_recorder *rec, const struct json_object *obj,
                enum kube_record_type type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * Waits until every Event queued so far is written or dropped, and the writer
 * is idle: for tests and a clean stop. -ETIMEDOUT after timeout_ms.
 */
int kube_recorder_flush(struct kube_recorder *rec, long timeout_ms);

/* Counters, for tests and /metrics. */
struct kube_recorder_stats {
	unsigned long recorded; /* accepted into the queue; each ends in one of the next four */
	unsigned long created;
	unsigned long patched;
	unsigned long dropped; /* by the spam filter */
	unsigned long failed;
	unsigned long queue_dropped; /* the queue was full, or the recorder stopped first */
	size_t queued;               /* waiting for the writer now */
	size_t queue_size;
};

void kube_recorder_stats(struct kube_recorder *rec, struct kube_recorder_stats *ret);

#endif
