/* SPDX-License-Identifier: Apache-2.0 */
/* A hash map from strings to pointers, with a ceiling on its entries. */
#include "common/string_map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Most maps are small sets (a Kanary's Services, a Service's slices): start at 4 buckets. */
#define STRING_MAP_MIN_BUCKETS 4

void string_map_init(struct string_map *m, size_t max)
{
	m->buckets = NULL;
	m->n_buckets = 0;
	m->size = 0;
	m->max = max;
}

void string_map_finish(struct string_map *m, void (*free_value)(void *value))
{
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct string_map_entry *e = m->buckets[i];

		while (e) {
			struct string_map_entry *next = e->next;

			if (free_value && e->value)
				free_value(e->value);
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = NULL;
	m->n_buckets = 0;
	m->size = 0;
}

/* FNV-1a: keys are short object names; the map only needs an even spread. */
static size_t hash_str(const char *s)
{
	size_t h = (size_t)14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= (size_t)1099511628211ULL;
	}
	return h;
}

static struct string_map_entry **find_slot(const struct string_map *m, const char *key, size_t h)
{
	struct string_map_entry **p;

	if (m->n_buckets == 0)
		return NULL;
	for (p = &m->buckets[h & (m->n_buckets - 1)]; *p; p = &(*p)->next)
		if ((*p)->hash == h && strcmp((*p)->key, key) == 0)
			return p;
	return NULL;
}

/* Doubles the buckets when the load passes 3/4; a failed grow keeps the old table. */
static int grow(struct string_map *m)
{
	struct string_map_entry **nb;
	size_t n;

	if (m->n_buckets && m->size < m->n_buckets / 4 * 3)
		return 0;
	n = m->n_buckets ? m->n_buckets * 2 : STRING_MAP_MIN_BUCKETS;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return m->n_buckets ? 0 : -ENOMEM;
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct string_map_entry *e = m->buckets[i];

		while (e) {
			struct string_map_entry *next = e->next;

			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = nb;
	m->n_buckets = n;
	return 0;
}

int string_map_put(struct string_map *m, const char *key, void *value, void **ret_old)
{
	struct string_map_entry **p, *e;
	size_t h, len;
	int r;

	if (!key)
		return -EINVAL;
	h = hash_str(key);
	p = find_slot(m, key, h);
	if (p) {
		if (ret_old)
			*ret_old = (*p)->value;
		(*p)->value = value;
		return 1;
	}
	if (m->size >= m->max)
		return -E2BIG;
	r = grow(m);
	if (r < 0)
		return r;
	len = strlen(key);
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return -ENOMEM;
	memcpy(e->key, key, len + 1);
	e->hash = h;
	e->value = value;
	e->next = m->buckets[h & (m->n_buckets - 1)];
	m->buckets[h & (m->n_buckets - 1)] = e;
	m->size++;
	return 0;
}

void *string_map_get(const struct string_map *m, const char *key)
{
	struct string_map_entry **p = key ? find_slot(m, key, hash_str(key)) : NULL;

	return p ? (*p)->value : NULL;
}

bool string_map_contains(const struct string_map *m, const char *key)
{
	return key && find_slot(m, key, hash_str(key)) != NULL;
}

int string_map_remove(struct string_map *m, const char *key, void **ret_value)
{
	struct string_map_entry **p = key ? find_slot(m, key, hash_str(key)) : NULL;
	struct string_map_entry *e;

	if (!p)
		return -ENOENT;
	e = *p;
	*p = e->next;
	if (ret_value)
		*ret_value = e->value;
	free(e);
	m->size--;
	return 0;
}

size_t string_map_size(const struct string_map *m)
{
	return m->size;
}

int string_map_foreach(const struct string_map *m,
                       int (*fn)(void *ctx, const char *key, void *value), void *ctx)
{
	for (size_t i = 0; i < m->n_buckets; i++)
		for (struct string_map_entry *e = m->buckets[i]; e; e = e->next) {
			int r = fn(ctx, e->key, e->value);

			if (r)
				return r;
		}
	return 0;
}
