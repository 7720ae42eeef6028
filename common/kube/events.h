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
 * Writes are synchronous, one API call each (no retries), on the calling
 * thread, behind one lock; the recorder may be shared by threads. A failed
 * write is logged through the config's logger and reported to the caller,
 * who normally ignores it: an Event is best effort.
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

/*
 * component: source.component and reportingComponent ("kanary-controller");
 * host: source.host and reportingInstance (the pod name), may be NULL.
 * cfg is borrowed and must outlive the recorder.
 * Ownership: *ret is the caller's, freed with kube_recorder_destroy.
 */
int kube_recorder_create(struct kube_config *cfg, const char *component, const char *host,
                         struct kube_recorder **ret);
void kube_recorder_destroy(struct kube_recorder *rec);

/*
 * Records an Event about obj (which needs kind, apiVersion, metadata.name
 * and, for namespaced objects, metadata.namespace; uid and resourceVersion
 * are copied when present). reason is CamelCase ("Rendered", "InvalidSpec").
 * The Event lives in obj's namespace, or "default" for cluster-scoped ones.
 * Returns 0, -EAGAIN when the spam filter dropped it, -EINVAL for an object
 * without kind or name, or the API call's error. obj is borrowed.
 */
int kube_record(struct kube_recorder *rec, const struct json_object *obj,
                enum kube_record_type type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Counters, for tests and /metrics. */
struct kube_recorder_stats {
	unsigned long created;
	unsigned long patched;
	unsigned long dropped; /* by the spam filter */
	unsigned long failed;
};

void kube_recorder_stats(struct kube_recorder *rec, struct kube_recorder_stats *ret);

#endif
