/* SPDX-License-Identifier: Apache-2.0 */
/* The controller's indexes over its caches: which Kanary a Service or child belongs to. */
#ifndef KANARY_CONTROLLER_INDEX_H
#define KANARY_CONTROLLER_INDEX_H

#include <stddef.h>

/*
 * The controller's indexes over its informer caches, kept by the informer
 * handlers, read by the reconcile workers: which Kanaries refer to a Service,
 * which EndpointSlices belong to a Service, which ConfigMaps and ReplicaSets
 * belong to a Kanary. Each relation maps a member key to its groups and
 * back; every key is "namespace/name". One lock for the whole index.
 */
enum index_rel {
	INDEX_REFS = 0,    /* Kanary -> the Services it names (backends, destination) */
	INDEX_CONFIGMAPS,  /* ConfigMap -> its Kanary */
	INDEX_REPLICASETS, /* ReplicaSet -> its Kanary */
	INDEX_N,
};

struct index;

/* Ownership: *ret is the caller's, freed with index_destroy. */
int index_create(struct index **ret);
void index_destroy(struct index *idx);

/*
 * Sets member's groups (replacing what it had; n == 0 removes it).
 * Returns 0, -ENOMEM or -E2BIG past KANARY_MAX_INDEX_ENTRIES; on failure the
 * member is left out of the relation.
 */
int index_set(struct index *idx, enum index_rel rel, const char *member, const char *const *groups,
              size_t n);
void index_remove(struct index *idx, enum index_rel rel, const char *member);

/*
 * Copies of the members of group (or, with group NULL, of every member),
 * sorted. Ownership: the caller frees them with index_keys_free.
 */
int index_members(struct index *idx, enum index_rel rel, const char *group, char ***ret_keys,
                  size_t *ret_n);
void index_keys_free(char **keys, size_t n);

#endif
