/* SPDX-License-Identifier: Apache-2.0 */
/* Leader election on a coordination.k8s.io/v1 Lease. */
#ifndef KANARY_CONTROLLER_LEASE_H
#define KANARY_CONTROLLER_LEASE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/kube/config.h"

/*
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's
 * leaderelection package does it:
 *   - GET the Lease; CREATE it when absent.
 *   - Take it over only when its holder is empty, or its record has not
 *     changed for the lease duration by our own monotonic clock (renewTime
 *     written by another node is never trusted); the take-over is a PUT with
 *     the resourceVersion read, so of two candidates one wins (409).
 *   - The leader renews every retry period. When no renewal succeeded for
 *     the renew deadline, leadership is lost: lease_is_leader turns false at
 *     once and on_lost runs (the daemon exits, as client-go's users do).
 *   - lease_release (on SIGTERM) writes an empty holder with a one-second
 *     duration, so a standby takes over at its next try instead of waiting
 *     out the lease.
 * The election runs in a thread of its own with its own API client.
 */
struct lease_options {
	struct kube_config *cfg; /* borrowed; outlives the lease */
	const char *namespace;
	const char *name;
	const char *identity; /* holderIdentity: unique per process */
	long duration_ms;
	long renew_deadline_ms;
	long retry_period_ms;
	void (*on_started)(void *ctx); /* became leader; from the lease thread */
	void (*on_lost)(void *ctx);    /* lost it; from the lease thread, which then ends */
	void *ctx;
};

/* controller-runtime's defaults. */
#define LEASE_DEFAULT_DURATION_MS       15000L
#define LEASE_DEFAULT_RENEW_DEADLINE_MS 10000L
#define LEASE_DEFAULT_RETRY_PERIOD_MS   2000L

struct lease;

/*
 * Checks the durations (duration > renew deadline > retry period > 0, as
 * client-go requires): -EINVAL otherwise. Strings are copied.
 * Ownership: *ret is the caller's, freed with lease_destroy.
 */
int lease_create(const struct lease_options *o, struct lease **ret);
int lease_start(struct lease *l);
bool lease_is_leader(struct lease *l);
/* True once leadership was held and then lost. */
bool lease_lost(struct lease *l);
/*
 * Stops the election thread; when still leader, gives the Lease up (empty
 * holder, one-second duration). Returns 0 or the failed write's errno.
 */
int lease_release(struct lease *l);
/* Stops the thread (without releasing) and frees; NULL does nothing. */
void lease_destroy(struct lease *l);

/* "hostname_<16 hex digits>" into out. */
int lease_make_identity(char *out, size_t size);

#endif
