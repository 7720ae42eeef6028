/* SPDX-License-Identifier: Apache-2.0 */
/* The controller's parts, created and destroyed together: caches, index, queue, memos. */
#ifndef KANARY_CONTROLLER_CONTROLLER_H
#define KANARY_CONTROLLER_CONTROLLER_H

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

/*
 * What `kanary-controller run` holds while it runs. The informer threads
 * fill the caches and index and feed the queue; the workers reconcile; the
 * lease thread decides whether the workers may write. Threads meet only at
 * the queue, the caches, the index, the memo and the metrics, each behind a
 * lock of its own.
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

/* Labels and the annotation every child carries, and who writes them. */
#define CONTROLLER_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define CONTROLLER_MANAGED_BY       "kanary"
#define CONTROLLER_LABEL_NAME       "kanary.pyxida.io/name"
#define CONTROLLER_HASH_ANNOTATION  "kanary.pyxida.io/config-hash"
#define CONTROLLER_FIELD_MANAGER    "kanary"
#define CONTROLLER_COMPONENT        "kanary-controller"

struct reconcile_memos;

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
	struct lease *lease;           /* the daemon's, set once elected; NULL: always leader */
	atomic_bool abort;             /* cut writes in flight: leadership is gone */
	struct reconcile_memos *memos; /* what reconcile remembers per Kanary */
};

/*
 * Creates every part the controller owns: the index, the work queue, the
 * metrics, the event recorder (as identity), reconcile's memos and the
 * informers (not started). cfg is borrowed and must outlive the controller.
 * Returns 0 or a negative errno. Ownership: *ret is the caller's, freed with
 * controller_destroy.
 */
int controller_create(const struct controller_options *o, struct kube_config *cfg,
                      const char *identity, struct controller **ret);
/* Starts the informers. */
int controller_start(struct controller *c);
/* Stops the informers' threads; the caches stay readable. */
void controller_stop(struct controller *c);
/* Frees what controller_create made (not the lease nor cfg); NULL does nothing. */
void controller_destroy(struct controller *c);

/* True while this process may write: leading (or not electing) and not told to abort. */
static inline bool controller_may_write(struct controller *c)
{
	return !atomic_load(&c->abort) && (!c->lease || lease_is_leader(c->lease));
}

#endif
