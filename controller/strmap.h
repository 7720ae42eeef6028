/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KANARY_CONTROLLER_STRMAP_H
#define KANARY_CONTROLLER_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A hash map from NUL-terminated strings to pointers, with separate
 * chaining. It copies its keys and never touches its values: whoever puts a
 * value frees it. No lock: the owner of the map guards it.
 */
struct strmap_entry {
	struct strmap_entry *next;
	size_t hash;
	void *value;
	char key[]; /* the copy */
};

struct strmap {
	struct strmap_entry **buckets;
	size_t n_buckets; /* 0 or a power of two */
	size_t size;
	size_t max; /* entries allowed; past it strmap_put fails with -E2BIG */
};

/* Caller storage; no allocation until the first put. */
void strmap_init(struct strmap *m, size_t max);
/* Frees the entries and keys, calling free_value on each value when not NULL. */
void strmap_finish(struct strmap *m, void (*free_value)(void *value));

/*
 * Sets key to value. When the key was there, its old value goes to
 * *ret_old (when ret_old is not NULL) and the function returns 1; a new key
 * returns 0. -ENOMEM, -E2BIG past max, -EINVAL for a NULL key.
 */
int strmap_put(struct strmap *m, const char *key, void *value, void **ret_old);
/* The value, or NULL when absent (or when NULL was stored: use strmap_contains). */
void *strmap_get(const struct strmap *m, const char *key);
bool strmap_contains(const struct strmap *m, const char *key);
/* Removes key; its value goes to *ret_value. -ENOENT when absent. */
int strmap_remove(struct strmap *m, const char *key, void **ret_value);
size_t strmap_size(const struct strmap *m);

/*
 * Calls fn on every entry, in no particular order, until fn returns non-zero
 * (which is returned). fn must not change the map.
 */
int strmap_foreach(const struct strmap *m, int (*fn)(void *ctx, const char *key, void *value),
                   void *ctx);

#endif
