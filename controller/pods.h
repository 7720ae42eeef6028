/* SPDX-License-Identifier: Apache-2.0 */
/* Why the HAProxy pods of a rollout do not become ready, read from their statuses. */
#ifndef KANARY_CONTROLLER_PODS_H
#define KANARY_CONTROLLER_PODS_H

#include <stdbool.h>
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

/*
 * How often the pods of a rollout that waits are looked at again. The pods
 * change (an image pull fails, a probe passes) without any object the
 * controller watches changing, so only a look-again sees it; but a rollout
 * that stays stuck (an image that is not there, a crash loop, no node) would
 * cost a reconcile and a LIST of its pods every few seconds for ever. So the
 * first look-again comes after PODS_RECHECK_FIRST_MS, and each look that
 * finds the same as the one before (a fingerprint of what Ready says, the
 * Kanary's generation and the Deployment's resourceVersion) waits twice as
 * long as the last, up to PODS_RECHECK_MAX_MS. Anything different starts
 * again at PODS_RECHECK_FIRST_MS. Progress is still seen at once: the
 * Deployment's status changes as pods turn available, and its watch event
 * wakes the Kanary (and changes the fingerprint).
 */
#define PODS_RECHECK_FIRST_MS 5000L
/* The longest wait between two looks at a stuck rollout: the kubelet's own longest back-off. */
#define PODS_RECHECK_MAX_MS 300000L

/*
 * The look-again schedule of one Kanary, kept in its memo (12 bytes); all
 * zero is "no look yet". Caller storage, no pair needed.
 */
struct pods_recheck {
	uint32_t print; /* pods_recheck_print of the last look; 0: none */
	uint32_t due_s; /* when the look-again scheduled last is due (monotonic seconds) */
	uint8_t step;   /* that look-again's delay is PODS_RECHECK_FIRST_MS << step, capped */
};

/*
 * A fingerprint of what a look found: a 32-bit FNV-1a hash over the n
 * strings (NULL as ""), each ended so that ("ab", "c") and ("a", "bc")
 * differ. Never 0.
 */
uint32_t pods_recheck_print(const char *const *parts, size_t n);

/* The delay of step: PODS_RECHECK_FIRST_MS doubled step times, at most PODS_RECHECK_MAX_MS. */
long pods_recheck_delay_ms(unsigned step);

/*
 * After a look at a rollout that waits, which found print, at now_ms (a
 * monotonic clock in milliseconds): returns the delay until the next look
 * and updates *r. A different print starts again at the first delay; the
 * same print, once the look-again scheduled last is due, doubles the delay;
 * the same print earlier (a look woken by some other change) keeps the
 * schedule: the delay returned is the current one, and the work queue keeps
 * the earlier time already waiting. *ret_new (may be NULL) is true when the
 * delay is new: a different print, or a longer delay (for the one log line).
 */
long pods_recheck_next(struct pods_recheck *r, uint32_t print, int64_t now_ms, bool *ret_new);

#endif
