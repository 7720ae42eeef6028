/* SPDX-License-Identifier: Apache-2.0 */
/* An informer's indexes: index value -> the cached records that have it (client-go's Indexer). */
#ifndef KANARY_KUBE_INDEXER_H
#define KANARY_KUBE_INDEXER_H

#include <stddef.h>

#include "common/kobj.h"

struct string_map;

/* The most index values one object may have in one index. */
#define KUBE_INDEX_MAX_VALUES 16
/* The longest index value. */
#define KUBE_INDEX_VALUE_MAX 320
/* The most indexers one informer may have. */
#define KUBE_MAX_INDEXERS 4

/* An index function: writes o's index values into values[0..max), returns how many. */
typedef size_t (*kube_index_fn)(const struct kube_obj *o, char (*values)[KUBE_INDEX_VALUE_MAX + 1],
                                size_t max);

/*
 * Up to KUBE_MAX_INDEXERS indexes over one set of records, each mapping an
 * index value to the records whose index function gives it. The records are
 * not referenced: whoever holds the set (the informer's cache) keeps them
 * alive while they are indexed, and removes a record (with the same,
 * immutable, record) before dropping it. No lock: the owner guards it.
 */
struct kube_indexer {
	kube_index_fn fns[KUBE_MAX_INDEXERS];
	size_t n;
	void *maps[KUBE_MAX_INDEXERS]; /* struct string_map * */
};

/* fns[0..n) (n at most KUBE_MAX_INDEXERS, a NULL ends them early). -ENOMEM. */
int kube_indexer_init(struct kube_indexer *ix, const kube_index_fn *fns, size_t n);
void kube_indexer_finish(struct kube_indexer *ix);
/* Indexes o under each of its values. -ENOMEM (o is then indexed under some of them). */
int kube_indexer_add(struct kube_indexer *ix, const struct kube_obj *o);
/* Removes o (the record added, or one with the same key and values). */
void kube_indexer_remove(struct kube_indexer *ix, const struct kube_obj *o);
/* Empties every index. */
void kube_indexer_clear(struct kube_indexer *ix);
/*
 * New references to every record of map (records keyed by their key; NULL is
 * empty), in the map's order. -ENOMEM. Ownership: the caller frees them with
 * kube_objs_unref(*ret, *ret_n).
 */
int kube_objs_collect(const struct string_map *map, const struct kube_obj ***ret, size_t *ret_n);

/* Sorts records by key. */
void kube_objs_sort(const struct kube_obj **objs, size_t n);

/*
 * New references to the records with value in index, sorted by key.
 * -EINVAL for an unknown index, -ENOMEM.
 * Ownership: the caller frees them with kube_objs_unref(*ret, *ret_n).
 */
int kube_indexer_get(const struct kube_indexer *ix, unsigned int index, const char *value,
                     const struct kube_obj ***ret, size_t *ret_n);

/*
 * The Service -> EndpointSlices index function, shared by the webhook and
 * the controller: a struct kobj_slice record's one value is
 * "namespace/service" from its kubernetes.io/service-name label (none
 * without it). Informers that use it put it at KUBE_INDEX_SLICE_SERVICE.
 */
#define KUBE_INDEX_SLICE_SERVICE 0u
size_t kube_index_slice_service(const struct kube_obj *o, char (*values)[KUBE_INDEX_VALUE_MAX + 1],
                                size_t max);

#endif
