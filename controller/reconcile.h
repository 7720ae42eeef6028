/* SPDX-License-Identifier: Apache-2.0 */
/* One reconcile of one Kanary: check, render, apply the children, collect garbage, write status. */
#ifndef KANARY_CONTROLLER_RECONCILE_H
#define KANARY_CONTROLLER_RECONCILE_H

#include "common/limits.h"
#include "controller/controller.h"

struct kube_client;

struct reconcile_outcome {
	int retry_after_s; /* the server's Retry-After of a failed call, or 0 */
	long recheck_ms;   /* above 0: reconcile again after this long, even if nothing changes */
	/* What failed, for the one log line the worker writes with the retry; "" when unknown. */
	char error[KANARY_MAX_STATUS_MESSAGE];
};

/*
 * Brings the children and status of the Kanary "namespace/name" in line
 * with its spec and the cluster (level-triggered: no event type). Returns 0
 * when done (also for a spec that cannot be served: that is a condition,
 * not a retry), or a negative errno to retry with backoff. *ret_outcome is
 * always written: a failure's Retry-After and what failed (reconcile does
 * not log a failure it returns: the worker does, once, with the retry), and
 * after a success whether to look again: while the rollout is pending,
 * from PODS_RECHECK_FIRST_MS, doubling while each look finds the same, up
 * to PODS_RECHECK_MAX_MS (controller/pods.h). A child the API server refuses for good (409,
 * 403, 422), or a destination Service someone else has, is retried too
 * (-EEXIST for the Service), after the status says so (Ready=False,
 * ApplyConflict, ..., ServiceConflict) and one Warning event told it.
 */
int reconcile(struct controller *c, struct kube_client *kc, const char *key,
              struct reconcile_outcome *ret_outcome);

/*
 * What reconcile remembers per Kanary key between runs (what it last wrote),
 * behind a lock of its own; only reconcile reads or changes it. Ownership:
 * *ret is the caller's, freed with reconcile_memos_destroy (NULL does nothing).
 */
int reconcile_memos_create(struct reconcile_memos **ret);
void reconcile_memos_destroy(struct reconcile_memos *m);

#endif
