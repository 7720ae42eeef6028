/* SPDX-License-Identifier: Apache-2.0 */
/* An informer's indexes: index value -> the cached records that have it (client-go's Indexer). */
#include "common/kube/indexer.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/string_map.h"

/* Each map: index value -> set (struct string_map *) of record key -> record. */

static void set_free(void *v)
{
	struct string_map *s = v;

	string_map_finish(s, NULL);
	free(s);
}

int kube_indexer_init(struct kube_indexer *ix, const kube_index_fn *fns, size_t n)
{
	memset(ix, 0, sizeof(*ix));
	for (size_t i = 0; i < n && i < KUBE_MAX_INDEXERS && fns[i]; i++) {
		struct string_map *m = malloc(sizeof(*m));

		if (!m) {
			kube_indexer_finish(ix);
			return -ENOMEM;
		}
		string_map_init(m, SIZE_MAX);
		ix->maps[i] = m;
		ix->fns[i] = fns[i];
		ix->n++;
	}
	return 0;
}

void kube_indexer_finish(struct kube_indexer *ix)
{
	for (size_t i = 0; i < ix->n; i++) {
		string_map_finish(ix->maps[i], set_free);
		free(ix->maps[i]);
	}
	memset(ix, 0, sizeof(*ix));
}

void kube_indexer_clear(struct kube_indexer *ix)
{
	for (size_t i = 0; i < ix->n; i++) {
		string_map_finish(ix->maps[i], set_free);
		string_map_init(ix->maps[i], SIZE_MAX);
	}
}

int kube_indexer_add(struct kube_indexer *ix, const struct kube_obj *o)
{
	char values[KUBE_INDEX_MAX_VALUES][KUBE_INDEX_VALUE_MAX + 1];
	int r = 0;

	for (size_t i = 0; i < ix->n; i++) {
		struct string_map *m = ix->maps[i];
		size_t n = ix->fns[i](o, values, KUBE_INDEX_MAX_VALUES);

		for (size_t v = 0; v < n && v < KUBE_INDEX_MAX_VALUES; v++) {
			struct string_map *set = string_map_get(m, values[v]);

			if (!set) {
				set = malloc(sizeof(*set));
				if (!set)
					return -ENOMEM;
				string_map_init(set, SIZE_MAX);
				if (string_map_put(m, values[v], set, NULL) < 0) {
					free(set);
					return -ENOMEM;
				}
			}
			if (string_map_put(set, o->key, (void *)o, NULL) < 0)
				r = -ENOMEM;
		}
	}
	return r;
}

void kube_indexer_remove(struct kube_indexer *ix, const struct kube_obj *o)
{
	char values[KUBE_INDEX_MAX_VALUES][KUBE_INDEX_VALUE_MAX + 1];

	for (size_t i = 0; i < ix->n; i++) {
		struct string_map *m = ix->maps[i];
		size_t n = ix->fns[i](o, values, KUBE_INDEX_MAX_VALUES);

		for (size_t v = 0; v < n && v < KUBE_INDEX_MAX_VALUES; v++) {
			struct string_map *set = string_map_get(m, values[v]);

			if (!set)
				continue;
			string_map_remove(set, o->key, NULL);
			if (string_map_size(set) == 0) {
				string_map_remove(m, values[v], NULL);
				set_free(set);
			}
		}
	}
}

struct collect {
	const struct kube_obj **objs;
	size_t n;
};

static int collect_ref(void *ctx, const char *key, void *obj)
{
	struct collect *c = ctx;

	c->objs[c->n++] = kube_obj_ref(obj);
	return 0;
}

static int by_key(const void *a, const void *b)
{
	const struct kube_obj *const *oa = a, *const *ob = b;

	return strcmp((*oa)->key, (*ob)->key);
}

int kube_objs_collect(const struct string_map *map, const struct kube_obj ***ret, size_t *ret_n)
{
	struct collect c = {0};
	size_t n = map ? string_map_size(map) : 0;

	if (n > 0) {
		c.objs = malloc(n * sizeof(*c.objs));
		if (!c.objs)
			return -ENOMEM;
		string_map_foreach(map, collect_ref, &c);
	}
	*ret = c.objs;
	*ret_n = c.n;
	return 0;
}

void kube_objs_sort(const struct kube_obj **objs, size_t n)
{
	if (n > 1)
		qsort(objs, n, sizeof(*objs), by_key);
}

int kube_indexer_get(const struct kube_indexer *ix, unsigned int index, const char *value,
                     const struct kube_obj ***ret, size_t *ret_n)
{
	int r;

	if (index >= ix->n)
		return -EINVAL;
	r = kube_objs_collect(string_map_get(ix->maps[index], value), ret, ret_n);
	if (r == 0)
		kube_objs_sort(*ret, *ret_n);
	return r;
}

size_t kube_index_slice_service(const struct kube_obj *o, char (*values)[KUBE_INDEX_VALUE_MAX + 1],
                                size_t max)
{
	const struct kobj_slice *sl = kobj_as_slice(o);
	int n;

	if (!sl || !sl->service || max == 0)
		return 0;
	n = snprintf(values[0], sizeof(values[0]), "%s/%s", o->ns, sl->service);
	return n > 0 && (size_t)n < sizeof(values[0]) ? 1 : 0;
}
