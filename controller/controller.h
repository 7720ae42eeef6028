/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KANARY_CONTROLLER_CONTROLLER_H
#define KANARY_CONTROLLER_CONTROLLER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/kube/config.h"
#include "common/kube/events.h"
#include "common/kube/informer.h"
#include "common/objects.h"
#include "controller/index.h"
#include "controller/lease.h"
#include "controller/metrics.h"
#include "controller/queue.h"
#include "common/string_map.h"

/*
 * What `kanary-controller run` holds while it runs. The informer threads
 * fill the caches and index and feed the queue; the workers reconcile; the
 * lease thread decides whether the workers may write. Threads meet only at
 * the queue, the caches, the index, the memo and the metrics, each behind a
 * lock of its own (STYLE.md §13).
 */

/* The collections the controller watches; the last four are its children, label-selected. */
enum watched {
	WATCH_KANARIES = 0,
	WATCH_SERVICES,
	WATCH_ENDPOINTSLICES,
	WATCH_CONFIGMAPS,
	WATCH_DEPLOYMENTS,
	WATCH_PDBS,
	WATCH_REPLICASETS,
	WATCH_N,
};

/* Labels every child carries (DESIGN §3). */
#define CONTROLLER_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define CONTROLLER_MANAGED_BY       "kanary"
#define CONTROLLER_LABEL_NAME       "kanary.pyxida.io/name"
#define CONTROLLER_HASH_ANNOTATION  "kanary.pyxida.io/config-hash"
#define CONTROLLER_FIELD_MANAGER    "kanary"
#define CONTROLLER_COMPONENT        "kanary-controller"

struct controller_options {
	const char *namespace; /* NULL: every namespace */
	long batch_period_ms;  /* coalescing window for endpoint and Service changes */
	struct objects_options objects;
};

struct controller;

/* What an informer's handlers are given: the controller and which collection. */
struct watch_ctx {
	struct controller *c;
	enum watched w;
};

struct controller {
	struct controller_options o;
	struct kube_config *cfg;
	struct kube_informer *inf[WATCH_N];
	struct watch_ctx watch_ctx[WATCH_N];
	struct index *idx;
	struct queue *queue;
	struct metrics *metrics;
	struct kube_recorder *recorder;
	struct lease *lease; /* NULL without leader election: then always leader */
	atomic_bool abort;   /* cut writes in flight: leadership is gone */

	/* What this process wrote, per Kanary key (struct memo *, reconcile.c). */
	pthread_mutex_t memo_lock;
	struct string_map memos;
};

/* True while this process may write. */
bool controller_may_write(struct controller *c);

/* ---- watches.c ---- */

/* Creates the informers with handlers that keep c->idx and feed c->queue. */
int watches_create(struct controller *c);
int watches_start(struct controller *c);
void watches_stop(struct controller *c);
void watches_destroy(struct controller *c);
bool watches_synced(struct controller *c, char *why, size_t size);
const char *watches_name(enum watched w);

/* ---- reconcile.c ---- */

struct kube_client;

/*
 * How often a Kanary whose rollout is not done is looked at again: the pods
 * change (an image pull fails, a probe passes) without any object the
 * controller watches changing.
 */
#define RECONCILE_ROLLOUT_RECHECK_MS 5000L

struct reconcile_outcome {
	int retry_after_s; /* the server's Retry-After of a failed call, or 0 */
	long recheck_ms;   /* above 0: reconcile again after this long, even if nothing changes */
};

/*
 * Brings the children and status of the Kanary "namespace/name" in line
 * with its spec and the cluster (level-triggered: no event type). Returns 0
 * when done (also for a spec that cannot be served: that is a condition,
 * not a retry), or a negative errno to retry with backoff. *ret_outcome is
 * always written: a failure's Retry-After, and after a success whether to
 * look again (RECONCILE_ROLLOUT_RECHECK_MS while the rollout is pending).
 */
int reconcile(struct controller *c, struct kube_client *kc, const char *key,
              struct reconcile_outcome *ret_outcome);

/* Forgets what reconcile remembered about key (the Kanary is gone). */
void reconcile_forget(struct controller *c, const char *key);
void reconcile_memos_free(struct controller *c);

#endif
