/* SPDX-License-Identifier: Apache-2.0 */
/* The controller's indexes over its caches: which Kanary a Service or child belongs to. */
#include "controller/index.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/string_map.h"

/* A many-to-many relation; each value is a set (struct string_map * of key -> NULL). */
struct rel {
	struct string_map fwd; /* member -> its groups */
	struct string_map rev; /* group -> its members */
};

struct index {
	pthread_mutex_t lock;
	struct rel rels[INDEX_N];
};

static void set_free(void *v)
{
	struct string_map *s = v;

	string_map_finish(s, NULL);
	free(s);
}

int index_create(struct index **ret)
{
	struct index *idx = calloc(1, sizeof(*idx));

	if (!idx)
		return -ENOMEM;
	if (pthread_mutex_init(&idx->lock, NULL) != 0) {
		free(idx);
		return -ENOMEM;
	}
	for (size_t i = 0; i < INDEX_N; i++) {
		string_map_init(&idx->rels[i].fwd, KANARY_MAX_INDEX_ENTRIES);
		string_map_init(&idx->rels[i].rev, KANARY_MAX_INDEX_ENTRIES);
	}
	*ret = idx;
	return 0;
}

void index_destroy(struct index *idx)
{
	if (!idx)
		return;
	for (size_t i = 0; i < INDEX_N; i++) {
		string_map_finish(&idx->rels[i].fwd, set_free);
		string_map_finish(&idx->rels[i].rev, set_free);
	}
	pthread_mutex_destroy(&idx->lock);
	free(idx);
}

/* Adds key to the set stored under name in map, creating the set. */
static int set_add(struct string_map *map, const char *name, const char *key)
{
	struct string_map *s = string_map_get(map, name);
	int r;

	if (!s) {
		s = malloc(sizeof(*s));
		if (!s)
			return -ENOMEM;
		string_map_init(s, KANARY_MAX_INDEX_ENTRIES);
		r = string_map_put(map, name, s, NULL);
		if (r < 0) {
			free(s);
			return r;
		}
	}
	r = string_map_put(s, key, NULL, NULL);
	return r < 0 ? r : 0;
}

/* Removes key from the set under name, dropping the set when it empties. */
static void set_del(struct string_map *map, const char *name, const char *key)
{
	struct string_map *s = string_map_get(map, name);

	if (!s)
		return;
	string_map_remove(s, key, NULL);
	if (string_map_size(s) == 0) {
		string_map_remove(map, name, NULL);
		set_free(s);
	}
}

static int unlink_group(void *ctx, const char *group, void *value)
{
	const void *const *args = ctx;

	set_del((struct string_map *)args[0], group, (const char *)args[1]);
	return 0;
}

static void remove_locked(struct rel *rel, const char *member)
{
	struct string_map *groups = NULL;
	const void *args[2] = {&rel->rev, member};

	if (string_map_remove(&rel->fwd, member, (void **)&groups) < 0)
		return;
	string_map_foreach(groups, unlink_group, (void *)args);
	set_free(groups);
}

int index_set(struct index *idx, enum index_rel rel_id, const char *member,
              const char *const *groups, size_t n)
{
	struct rel *rel = &idx->rels[rel_id];
	int r = 0;

	pthread_mutex_lock(&idx->lock);
	remove_locked(rel, member);
	for (size_t i = 0; i < n && r == 0; i++) {
		r = set_add(&rel->fwd, member, groups[i]);
		if (r == 0)
			r = set_add(&rel->rev, groups[i], member);
	}
	if (r < 0)
		remove_locked(rel, member);
	pthread_mutex_unlock(&idx->lock);
	return r;
}

void index_remove(struct index *idx, enum index_rel rel, const char *member)
{
	pthread_mutex_lock(&idx->lock);
	remove_locked(&idx->rels[rel], member);
	pthread_mutex_unlock(&idx->lock);
}

struct collect {
	char **keys;
	size_t n;
	int err;
};

static int collect_key(void *ctx, const char *key, void *value)
{
	struct collect *c = ctx;

	c->keys[c->n] = strdup(key);
	if (!c->keys[c->n]) {
		c->err = -ENOMEM;
		return 1;
	}
	c->n++;
	return 0;
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int index_members(struct index *idx, enum index_rel rel, const char *group, char ***ret_keys,
                  size_t *ret_n)
{
	const struct string_map *set;
	struct collect c = {0};

	pthread_mutex_lock(&idx->lock);
	set = group ? string_map_get(&idx->rels[rel].rev, group) : &idx->rels[rel].fwd;
	if (set && string_map_size(set) > 0) {
		c.keys = calloc(string_map_size(set), sizeof(*c.keys));
		if (!c.keys)
			c.err = -ENOMEM;
		else
			string_map_foreach(set, collect_key, &c);
	}
	pthread_mutex_unlock(&idx->lock);
	if (c.err < 0) {
		index_keys_free(c.keys, c.n);
		return c.err;
	}
	if (c.n > 1)
		qsort(c.keys, c.n, sizeof(*c.keys), cmp_keys);
	*ret_keys = c.keys;
	*ret_n = c.n;
	return 0;
}

void index_keys_free(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}
