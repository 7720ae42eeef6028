/* SPDX-License-Identifier: Apache-2.0 */
/* The Kanary's status and conditions, built from what one reconcile found. */
#ifndef KANARY_CONTROLLER_STATUS_H
#define KANARY_CONTROLLER_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/kanary.h"
#include "common/resolve.h"

struct json_object;
struct kerr_list;

/*
 * The Kanary's status, built from what one reconcile found. Pure:
 * no I/O, the time comes in as text, so the same facts give the same status
 * and a resync that changed nothing writes nothing.
 *
 * Conditions, in the metav1.Condition shape:
 *   ResolvedRefs  True  ResolvedRefs     every backend Service and port exists
 *                 False BackendNotFound  a backend Service is missing
 *                 False PortNotFound     a backend Service lacks the port
 *                 Unknown InvalidSpec    the spec is invalid in another way
 *   Ready         True  Ready            HAProxy serves the current configuration
 *                 False InvalidSpec, BackendNotFound, PortNotFound, ServiceConflict,
 *                       ApplyConflict, ApplyForbidden, ApplyInvalid (controller/apply.h:
 *                       a child the API server keeps refusing), NoEndpoints, then while the rollout is not done either what
 *                       the HAProxy pods show (HAProxyImagePullFailed,
 *                       HAProxyContainerFailed, HAProxyCrashLooping,
 *                       HAProxyPodsUnschedulable, HAProxyPodsNotReady: controller/pods.h)
 *                       or RolloutInProgress (first that applies)
 * lastTransitionTime moves only when a condition's status does.
 * routes, summary and configHash describe what is in force: when this
 * reconcile applied nothing (a missing backend, an invalid spec), they stay
 * as they were, and HAProxy keeps that last good configuration.
 */

#define STATUS_COND_READY         "Ready"
#define STATUS_COND_RESOLVED_REFS "ResolvedRefs"

#define STATUS_REASON_READY             "Ready"
#define STATUS_REASON_RESOLVED_REFS     "ResolvedRefs"
#define STATUS_REASON_BACKEND_NOT_FOUND "BackendNotFound"
#define STATUS_REASON_PORT_NOT_FOUND    "PortNotFound"
#define STATUS_REASON_INVALID_SPEC      "InvalidSpec"
#define STATUS_REASON_SERVICE_CONFLICT  "ServiceConflict"
#define STATUS_REASON_NO_ENDPOINTS      "NoEndpoints"
#define STATUS_REASON_ROLLOUT           "RolloutInProgress"

/* How kanary_check's field errors split: unresolved references, and everything else. */
struct status_problems {
	size_t missing_services; /* routes whose Service does not exist */
	size_t missing_ports;    /* routes whose Service lacks the port */
	size_t other;            /* every other field error (the spec itself is invalid) */
};

/*
 * Sorts errs (from kanary_check of k against res) into problems. The
 * resolver reports exactly one error per well-formed route it could not
 * resolve; everything beyond those is a problem of the spec itself.
 */
void status_classify(const struct kanary *k, const struct kanary_resolution *res,
                     const struct kerr_list *errs, struct status_problems *ret);

enum status_rollout {
	STATUS_ROLLOUT_DONE = 0,    /* the Deployment runs the configuration, available */
	STATUS_ROLLOUT_PROGRESSING, /* not yet: new pods starting, or no Deployment yet */
};

struct status_facts {
	int64_t generation;
	const struct kanary *k;              /* as read and defaulted by kanary_check */
	const struct kanary_resolution *res; /* its resolution */
	struct status_problems problems;
	const char *errors;      /* every field error joined by "; ", or NULL when none */
	bool applied;            /* the children now carry config_hash */
	const char *config_hash; /* 64 hex digits when applied */
	const char *conflict;    /* why the destination Service was left alone, or NULL */
	/* A permanent apply failure: its Ready reason (ApplyConflict, ...) and message; NULL: none. */
	const char *apply_reason;
	const char *apply_message;
	enum status_rollout rollout;
	/* Why the rollout is stuck, from the pods (pods_reason, pods_diagnose); NULL: not known. */
	const char *pods_reason;
	const char *pods_message;
	const char *now; /* RFC 3339 UTC, "2026-01-02T03:04:05Z" */
};

/*
 * The new status. old_status (may be NULL) is the one in force: its
 * lastTransitionTimes are kept for unchanged condition statuses, and its
 * routes, summary and configHash when nothing was applied.
 * Returns 0 or -ENOMEM. Ownership: *ret is a new object the caller puts.
 */
int status_build(const struct status_facts *f, const struct json_object *old_status,
                 struct json_object **ret);

/* The condition of that type in a status, borrowed; NULL when absent. */
const struct json_object *status_condition(const struct json_object *status, const char *type);

/*
 * True when the condition of that type differs between old and new in
 * status, reason or message: the moment for an Event, which a status that did
 * not change (a resync, a restart) never is.
 */
bool status_condition_changed(const struct json_object *old_status,
                              const struct json_object *new_status, const char *type);

/*
 * Calls fn for each route of new_status that has weight above 0 and no ready
 * endpoint while old_status did not say so (the route is new, had endpoints,
 * or had weight 0). Returns how many.
 */
size_t status_newly_empty(const struct json_object *old_status,
                          const struct json_object *new_status,
                          void (*fn)(void *ctx, const char *service, int64_t weight), void *ctx);

/*
 * True when the status's Ready condition is False only because the rollout is
 * not done (RolloutInProgress, or a reason from the pods): what only time,
 * not a watched object, may change.
 */
bool status_waits_on_rollout(const struct json_object *status);

/* status.configHash, borrowed, or NULL. */
const char *status_config_hash(const struct json_object *status);

#endif
