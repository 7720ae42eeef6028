/* SPDX-License-Identifier: Apache-2.0 */
/* Strings shared between cached records: a chained hash table of reference-counted copies. */
#include "common/strtab.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STRTAB_MIN_BUCKETS 64

struct strtab_entry {
	struct strtab_entry *next;
	uint32_t hash;
	uint32_t refs; /* under the table's lock */
	char s[];
};

/*
 * The one table of the process. Informers decode on their own threads, so
 * every change takes the lock; it is held for a lookup and a link or unlink,
 * never across an allocation of the caller's.
 */
static struct {
	pthread_mutex_t lock;
	struct strtab_entry **buckets;
	size_t n_buckets;
	size_t strings;
	size_t refs;
	size_t bytes; /* of the entries; the buckets are added when read */
} tab = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char empty[1];

/* FNV-1a over the text: label keys and values are short. */
static uint32_t hash_str(const char *s, size_t *ret_len)
{
	uint32_t h = 2166136261u;
	const char *p = s;

	for (; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	*ret_len = (size_t)(p - s);
	return h;
}

/* Doubles the buckets when there are more strings than buckets; false keeps the old ones. */
static bool grow(void)
{
	size_t n = tab.n_buckets ? tab.n_buckets * 2 : STRTAB_MIN_BUCKETS;
	struct strtab_entry **b;

	if (tab.strings < tab.n_buckets)
		return true;
	b = calloc(n, sizeof(*b));
	if (!b)
		return tab.n_buckets != 0; /* a full table still works, only slower */
	for (size_t i = 0; i < tab.n_buckets; i++) {
		struct strtab_entry *e = tab.buckets[i];

		while (e) {
			struct strtab_entry *next = e->next;

			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(tab.buckets);
	tab.buckets = b;
	tab.n_buckets = n;
	return true;
}

const char *strtab_intern(const char *s)
{
	struct strtab_entry *e, *made = NULL;
	size_t len;
	uint32_t h;

	if (!s || !*s)
		return empty;
	h = hash_str(s, &len);
	for (;;) {
		pthread_mutex_lock(&tab.lock);
		for (e = tab.n_buckets ? tab.buckets[h & (tab.n_buckets - 1)] : NULL; e;
		     e = e->next)
			if (e->hash == h && strcmp(e->s, s) == 0)
				break;
		if (e) {
			e->refs++;
			tab.refs++;
			pthread_mutex_unlock(&tab.lock);
			free(made); /* another thread added the same text first */
			return e->s;
		}
		if (made && grow()) {
			e = made;
			e->next = tab.buckets[h & (tab.n_buckets - 1)];
			tab.buckets[h & (tab.n_buckets - 1)] = e;
			tab.strings++;
			tab.refs++;
			tab.bytes += sizeof(*e) + len + 1;
			pthread_mutex_unlock(&tab.lock);
			return e->s;
		}
		pthread_mutex_unlock(&tab.lock);
		if (made) {
			free(made);
			return NULL;
		}
		/* Allocated outside the lock, then looked up again. */
		made = malloc(sizeof(*made) + len + 1);
		if (!made)
			return NULL;
		made->hash = h;
		made->refs = 1;
		memcpy(made->s, s, len + 1);
	}
}

void strtab_release(const char *s)
{
	struct strtab_entry *e, **link;

	if (!s || s == empty)
		return;
	e = (struct strtab_entry *)(s - offsetof(struct strtab_entry, s));
	pthread_mutex_lock(&tab.lock);
	tab.refs--;
	if (--e->refs > 0) {
		pthread_mutex_unlock(&tab.lock);
		return;
	}
	for (link = &tab.buckets[e->hash & (tab.n_buckets - 1)]; *link != e; link = &(*link)->next)
		;
	*link = e->next;
	tab.strings--;
	tab.bytes -= sizeof(*e) + strlen(e->s) + 1;
	pthread_mutex_unlock(&tab.lock);
	free(e);
}

bool strtab_owns(const char *s)
{
	struct strtab_entry *e;
	size_t len;
	uint32_t h;

	if (!s)
		return false;
	if (s == empty)
		return true;
	h = hash_str(s, &len);
	pthread_mutex_lock(&tab.lock);
	for (e = tab.n_buckets ? tab.buckets[h & (tab.n_buckets - 1)] : NULL; e; e = e->next)
		if (e->s == s)
			break;
	pthread_mutex_unlock(&tab.lock);
	return e != NULL;
}

void strtab_stats(struct strtab_stats *ret)
{
	pthread_mutex_lock(&tab.lock);
	ret->strings = tab.strings;
	ret->refs = tab.refs;
	ret->bytes = tab.bytes + tab.n_buckets * sizeof(*tab.buckets);
	pthread_mutex_unlock(&tab.lock);
}
