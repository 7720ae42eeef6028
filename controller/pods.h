/* SPDX-License-Identifier: Apache-2.0 */
/* Why the HAProxy pods of a rollout do not become ready, read from their statuses. */
#ifndef KANARY_CONTROLLER_PODS_H
#define KANARY_CONTROLLER_PODS_H

#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

struct json_object;

/*
 * Why the HAProxy pods of a Kanary do not finish a rollout, read from their
 * statuses (a PodList of the Deployment's selector). Pure: no I/O, the time
 * comes in, so the same pods give the same words.
 *
 * Each pod gets its worst problem, in this order (the first is the worst):
 *   PODS_IMAGE_PULL_FAILED  a container waits with ErrImagePull, ImagePullBackOff,
 *                           ErrImageNeverPull, InvalidImageName, ...
 *   PODS_CONTAINER_FAILED   a container cannot be created or started
 *                           (CreateContainerConfigError, CreateContainerError, ...)
 *   PODS_CRASH_LOOPING      a container waits with CrashLoopBackOff
 *   PODS_UNSCHEDULABLE      PodScheduled is False
 *   PODS_NOT_READY          running for PODS_READY_GRACE_S and still not ready,
 *                           or failed
 *   PODS_STARTING           nothing wrong seen: created, pulling, starting
 * The verdict is the worst problem of any pod; the message names every pod
 * with a problem, worst first, then by name, each as
 *   pod NAME: container C: REASON: the kubelet's message (image IMAGE)
 * Pods being deleted are left out: they are on their way out.
 */

enum pods_verdict {
	PODS_STARTING = 0,
	PODS_NOT_READY,
	PODS_UNSCHEDULABLE,
	PODS_CRASH_LOOPING,
	PODS_CONTAINER_FAILED,
	PODS_IMAGE_PULL_FAILED,
};

/* A pod running and not ready for this long is a problem, not a start. */
#define PODS_READY_GRACE_S 30

struct pods_diagnosis {
	enum pods_verdict verdict;
	size_t pods;         /* pods looked at (not being deleted) */
	size_t problem_pods; /* pods with a problem worse than starting */
	/* Empty for PODS_STARTING; past the ceiling, "; ... and N more pods". */
	char message[KANARY_MAX_POD_DIAGNOSIS + 1];
};

/*
 * Diagnoses pods: a PodList ({"items": [...]}) or a JSON array of Pods.
 * now_s is the current time in seconds since the epoch (UTC).
 * Returns 0, -EINVAL when pods is neither, or -ENOMEM.
 */
int pods_diagnose(const struct json_object *pods, int64_t now_s, struct pods_diagnosis *ret);

/* The condition reason of a verdict ("HAProxyImagePullFailed", ...); NULL for PODS_STARTING. */
const char *pods_reason(enum pods_verdict v);

#endif
