/* SPDX-License-Identifier: Apache-2.0 */
/* An informer: a local copy of one collection, kept by LIST and WATCH, with change handlers. */
#ifndef KANARY_KUBE_INFORMER_H
#define KANARY_KUBE_INFORMER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/kobj.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/indexer.h"
#include "common/limits.h"

struct json_object;

/*
 * An informer keeps a local copy of one collection (a resource type, in one
 * namespace or all of them, optionally narrowed by label and field
 * selectors) and tells handlers what changed. It mirrors client-go's
 * reflector:
 *   - LIST, paginated and decoded page by page; the first one at
 *     resourceVersion "" (a consistent read, which kube-apiserver serves from
 *     its cache, page by page: at "0" it ignores limit and sends the whole
 *     collection in one answer, which would be parsed whole), then WATCH from the list's resourceVersion with
 *     bookmarks and a timeoutSeconds drawn from [watch_timeout_min_s,
 *     watch_timeout_max_s] (300..600 by default) so that watches of many
 *     clients do not all end together.
 *   - A watch that ends normally resumes from the last resourceVersion seen
 *     (an event or a bookmark), without a LIST.
 *   - 410 Gone/Expired (an HTTP answer or an in-band ERROR event) means the
 *     resourceVersion left the server's window: LIST again at "" (a quorum
 *     read), replace the cache, and report every object that vanished
 *     meanwhile as deleted with final_state_unknown set.
 *   - Connection failures, timeouts, 429 and 5xx: back off and watch again
 *     from the last resourceVersion. Other errors (403, 404...): back off and
 *     LIST again. Backoff starts at 800 ms and doubles up to 30 s, each wait
 *     drawn from [d, 2d) (client-go's jitter of 1.0), never below a
 *     Retry-After (itself capped at the ceiling), and starts over after 2
 *     minutes without a failure.
 *   - resourceVersion is opaque: only stored and sent back, never compared
 *     for order. An update is reported when it differs from the cached one.
 *
 * What is cached is not the JSON but a record (struct kube_obj), decoded
 * once per event by the informer's decode function (client-go's transform):
 * immutable once cached and reference-counted with atomic counts, so a
 * reader borrows it (kube_informer_get_obj) without a deep copy and reads it
 * without holding the cache's lock. A decoder keeps only what its readers
 * use; the default one keeps the object's JSON text (metadata.managedFields
 * dropped when asked), parsed again by kube_obj_parse for readers that need
 * a json-c tree. Indexers (client-go's Indexers) map each record to index
 * values ("namespace/service" of an EndpointSlice, say), kept with the cache
 * under its lock, so "the objects with index value v" is one lookup.
 *
 * Threading: each informer runs one thread of its own, with its own
 * kube_client. Handlers are called from that thread, one at a time, in
 * event order, with the cache already updated and its lock NOT held, so a
 * handler may read the cache. The records handed to a handler are borrowed
 * for the call: take a reference (kube_obj_ref) to keep one. The cache has
 * one lock, held only to find records and take references.
 */

struct kube_informer_handlers {
	void (*on_add)(void *ctx, const struct kube_obj *obj);
	void (*on_update)(void *ctx, const struct kube_obj *old_obj,
	                  const struct kube_obj *new_obj);
	/*
	 * final_state_unknown: the object vanished while we were not watching
	 * (found out by a relist); obj is the last state we saw.
	 */
	void (*on_delete)(void *ctx, const struct kube_obj *obj, bool final_state_unknown);
	void *ctx;
};

struct kube_informer_options {
	const char *path; /* a collection, from kube_path (namespace NULL: every namespace) */
	const char *label_selector;
	const char *field_selector;
	const char *component;   /* User-Agent, as kube_client_options */
	int page_size;           /* LIST page size; 0: KUBE_INFORMER_PAGE_SIZE */
	int watch_timeout_min_s; /* 0: KUBE_WATCH_TIMEOUT_MIN_S */
	int watch_timeout_max_s; /* 0: KUBE_WATCH_TIMEOUT_MAX_S */
	/*
	 * Our own cut of every watch, in milliseconds; 0: timeoutSeconds +
	 * KUBE_WATCH_SLACK_MS. Tests set it low to force many reconnects.
	 */
	long watch_deadline_ms;
	long backoff_initial_ms; /* 0: KUBE_BACKOFF_INITIAL_MS */
	long backoff_max_ms;     /* 0: KUBE_BACKOFF_MAX_MS */
	long backoff_reset_ms;   /* 0: KUBE_BACKOFF_RESET_MS */
	size_t max_line;         /* 0: KANARY_MAX_WATCH_LINE */
	/*
	 * Drop metadata.managedFields before decoding (controller-runtime's
	 * default transform): a reader rarely needs it, and it is the bulk of
	 * an object's text.
	 */
	bool drop_managed_fields;
	/*
	 * Metadata only (client-go's metadata informer): the LIST asks for a
	 * PartialObjectMetadataList and the WATCH for PartialObjectMetadata
	 * objects, so neither spec nor status nor data crosses the wire.
	 * Decoders see kind PartialObjectMetadata, apiVersion meta.k8s.io/v1.
	 */
	bool metadata_only;
	/* The decoder (client-go's transform); NULL: keep the JSON text. */
	kube_decode_fn decode;
	void *decode_ctx;
	/* Indexers, numbered by their place here; NULL ends the list. */
	kube_index_fn indexers[KUBE_MAX_INDEXERS];
	struct kube_informer_handlers handlers;
};

/*
 * An informer's LIST page (client-go's pager: 500). Each page is a json-c
 * tree many times the size of the records decoded from it, and the holes it
 * leaves between them stay in the process: at 10,000 Kanaries, pages of 100
 * took 14 MiB off the controller's resident memory and 49 MiB off its peak.
 */
#define KUBE_INFORMER_PAGE_SIZE  100
#define KUBE_WATCH_TIMEOUT_MIN_S 300
#define KUBE_WATCH_TIMEOUT_MAX_S 600
#define KUBE_BACKOFF_INITIAL_MS  800L
#define KUBE_BACKOFF_MAX_MS      30000L
#define KUBE_BACKOFF_RESET_MS    120000L

/* Counters, for /metrics and tests. */
struct kube_informer_stats {
	unsigned long lists;        /* successful LISTs */
	unsigned long relists_gone; /* LISTs forced by 410 */
	unsigned long watches;      /* watch requests made */
	unsigned long watch_ends;   /* watches that ended normally (timeout) */
	unsigned long events;       /* ADDED, MODIFIED and DELETED events applied */
	unsigned long bookmarks;
	unsigned long backoffs; /* waits after a failure */
	unsigned long failures; /* failed LISTs and watches */
	size_t objects;         /* objects in the cache */
	size_t bytes;           /* what their records take (struct kube_obj size) */
	bool synced;
};

struct kube_informer;

/*
 * cfg is borrowed and must outlive the informer; options and strings are
 * copied. Nothing runs until kube_informer_start.
 * Ownership: *ret is the caller's, freed with kube_informer_destroy.
 */
int kube_informer_create(struct kube_config *cfg, const struct kube_informer_options *o,
                         struct kube_informer **ret);
/* Starts the informer thread; -EALREADY when started before. */
int kube_informer_start(struct kube_informer *inf);
/*
 * Stops the thread and waits for it: the transfer in progress is abandoned
 * within about a second. Handlers are not called after it returns. The cache
 * stays readable. Calling it twice, or before start, does nothing.
 */
void kube_informer_stop(struct kube_informer *inf);
/* Stops if needed and frees everything; NULL does nothing. */
void kube_informer_destroy(struct kube_informer *inf);

/* True once the first LIST has been stored and handed to the handlers. */
bool kube_informer_has_synced(struct kube_informer *inf);
/* Waits up to timeout_ms for that; 0, or -ETIMEDOUT, or -ECANCELED when stopped. */
int kube_informer_wait_synced(struct kube_informer *inf, long timeout_ms);

/*
 * The cached record with key "namespace/name" (or "name"), borrowed: a new
 * reference, no copy. -ENOENT when absent.
 * Ownership: *ret is the caller's to kube_obj_unref.
 */
int kube_informer_get_obj(struct kube_informer *inf, const char *key, const struct kube_obj **ret);
/*
 * A private json-c tree of the cached object (kube_obj_parse of its record:
 * the metadata only when its decoder keeps no text). -ENOENT when absent.
 * Ownership: *ret_obj is the caller's to put.
 */
int kube_informer_get(struct kube_informer *inf, const char *key, struct json_object **ret_obj);
/*
 * The cached records whose index values (indexer number index) include
 * value, sorted by key, each a new reference. -EINVAL for an unknown index.
 * Ownership: the caller frees them with kube_objs_unref(*ret, *ret_n).
 */
int kube_informer_by_index(struct kube_informer *inf, unsigned int index, const char *value,
                           const struct kube_obj ***ret, size_t *ret_n);
/*
 * Every cached record, sorted by key, each a new reference.
 * Ownership: the caller frees them with kube_objs_unref(*ret, *ret_n).
 */
int kube_informer_list(struct kube_informer *inf, const struct kube_obj ***ret, size_t *ret_n);
void kube_informer_stats(struct kube_informer *inf, struct kube_informer_stats *ret);

#endif
