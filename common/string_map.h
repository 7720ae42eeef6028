/* SPDX-License-Identifier: Apache-2.0 */
/* A hash map from strings to pointers, with a ceiling on its entries. */
#ifndef KANARY_STRING_MAP_H
#define KANARY_STRING_MAP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A hash map from NUL-terminated strings to pointers, with separate
 * chaining. It copies its keys and never touches its values: whoever puts a
 * value frees it. No lock: the owner of the map guards it.
 */
struct string_map_entry {
	struct string_map_entry *next;
	size_t hash;
	void *value;
	char key[]; /* the copy */
};

struct string_map {
	struct string_map_entry **buckets;
	size_t n_buckets; /* 0 or a power of two */
	size_t size;
	size_t max; /* entries allowed; past it string_map_put fails with -E2BIG */
};

/* Caller storage; no allocation until the first put. */
void string_map_init(struct string_map *m, size_t max);
/* Frees the entries and keys, calling free_value on each value when not NULL. */
void string_map_finish(struct string_map *m, void (*free_value)(void *value));

/*
 * Sets key to value. When the key was there, its old value goes to
 * *ret_old (when ret_old is not NULL) and the function returns 1; a new key
 * returns 0. -ENOMEM, -E2BIG past max, -EINVAL for a NULL key.
 */
int string_map_put(struct string_map *m, const char *key, void *value, void **ret_old);
/* The value, or NULL when absent (or when NULL was stored: use string_map_contains). */
void *string_map_get(const struct string_map *m, const char *key);
bool string_map_contains(const struct string_map *m, const char *key);
/* Removes key; its value goes to *ret_value. -ENOENT when absent. */
int string_map_remove(struct string_map *m, const char *key, void **ret_value);
size_t string_map_size(const struct string_map *m);

/*
 * Calls fn on every entry, in no particular order, until fn returns non-zero
 * (which is returned). fn must not change the map.
 */
int string_map_foreach(const struct string_map *m,
                       int (*fn)(void *ctx, const char *key, void *value), void *ctx);

#endif
