/* SPDX-License-Identifier: Apache-2.0 */
/* An informer: a local copy of one collection, kept by LIST and WATCH, with change handlers. */
#include "common/kube/informer.h"

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/io/heap.h"
#include "common/io/monotonic.h"
#include "common/json_field.h"
#include "common/kube/watch.h"
#include "common/string_map.h"

struct kube_informer {
	struct kube_config *cfg;
	struct kube_client *client; /* used by the informer thread only */
	char *path;
	char *label_selector;
	char *field_selector;
	struct kube_informer_options o; /* defaults filled in; strings point to the copies */

	pthread_t thread;
	bool started;
	bool joined;
	atomic_bool stop;

	/* lock guards cache, synced and stats; cond signals synced and stop. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct string_map cache;   /* key -> struct kube_obj *, a reference it holds */
	struct kube_indexer index; /* over the cache's records */
	bool synced;
	struct kube_informer_stats stats;

	/* Informer thread only. */
	char rv[KANARY_MAX_RESOURCE_VERSION + 1];
	unsigned int backoff_step;
	long long last_backoff_ms;
	uint64_t rng;
	unsigned long watch_events;
	int event_err;
	long long last_trim_ms;
	/* The LIST in progress (informer thread only). */
	struct string_map fresh;
	const struct kube_obj **order; /* the records of fresh in list order, no references */
	size_t n_order, cap_order;
	char list_kind[KANARY_MAX_NAME + 1];
	char list_api_version[KANARY_MAX_NAME + 1];
};

/* How often at most an informer thread hands freed memory back to the system. */
#define KUBE_INFORMER_TRIM_MS 10000

/* xorshift64*: jitter and watch timeouts only need to differ between processes. */
static uint64_t rng_next(struct kube_informer *inf)
{
	uint64_t x = inf->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	inf->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [lo, hi]. */
static long rng_range(struct kube_informer *inf, long lo, long hi)
{
	if (hi <= lo)
		return lo;
	return lo + (long)(rng_next(inf) % (uint64_t)(hi - lo + 1));
}

static char *dup_or_null(const char *s, int *r)
{
	char *d;

	if (!s || !*s)
		return NULL;
	d = strdup(s);
	if (!d)
		*r = -ENOMEM;
	return d;
}

int kube_informer_create(struct kube_config *cfg, const struct kube_informer_options *o,
                         struct kube_informer **ret)
{
	const struct kube_client_options co = {.component = o->component};
	struct kube_informer *inf;
	pthread_condattr_t ca;
	struct timespec ts;
	int r = 0;

	if (!o->path || o->path[0] != '/')
		return -EINVAL;
	if ((o->label_selector && strlen(o->label_selector) > KANARY_MAX_SELECTOR) ||
	    (o->field_selector && strlen(o->field_selector) > KANARY_MAX_SELECTOR))
		return -E2BIG;
	inf = calloc(1, sizeof(*inf));
	if (!inf)
		return -ENOMEM;
	inf->cfg = cfg;
	inf->o = *o;
	inf->path = dup_or_null(o->path, &r);
	inf->label_selector = dup_or_null(o->label_selector, &r);
	inf->field_selector = dup_or_null(o->field_selector, &r);
	if (r < 0)
		goto out_free;
	inf->o.path = inf->path;
	inf->o.label_selector = inf->label_selector;
	inf->o.field_selector = inf->field_selector;
	inf->o.component = NULL;
	if (inf->o.watch_timeout_min_s <= 0)
		inf->o.watch_timeout_min_s = KUBE_WATCH_TIMEOUT_MIN_S;
	if (inf->o.watch_timeout_max_s <= 0)
		inf->o.watch_timeout_max_s = KUBE_WATCH_TIMEOUT_MAX_S;
	if (inf->o.watch_timeout_max_s < inf->o.watch_timeout_min_s)
		inf->o.watch_timeout_max_s = inf->o.watch_timeout_min_s;
	if (inf->o.backoff_initial_ms <= 0)
		inf->o.backoff_initial_ms = KUBE_BACKOFF_INITIAL_MS;
	if (inf->o.backoff_max_ms <= 0)
		inf->o.backoff_max_ms = KUBE_BACKOFF_MAX_MS;
	if (inf->o.backoff_reset_ms <= 0)
		inf->o.backoff_reset_ms = KUBE_BACKOFF_RESET_MS;
	clock_gettime(CLOCK_REALTIME, &ts);
	inf->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)inf;
	if (inf->rng == 0)
		inf->rng = 0x9E3779B97F4A7C15ULL;
	atomic_init(&inf->stop, false);
	/* No ceiling: memory is bounded by the compact records, not by a count. */
	string_map_init(&inf->cache, SIZE_MAX);
	r = kube_indexer_init(&inf->index, o->indexers, KUBE_MAX_INDEXERS);
	if (r < 0)
		goto out_free;
	r = kube_client_create(cfg, &co, &inf->client);
	if (r < 0)
		goto out_free;
	kube_client_set_abort(inf->client, &inf->stop);
	if (pthread_mutex_init(&inf->lock, NULL) != 0) {
		r = -ENOMEM;
		goto out_client;
	}
	/* Waits are measured on the monotonic clock: a wall-clock jump must not stretch them. */
	if (pthread_condattr_init(&ca) != 0) {
		r = -ENOMEM;
		goto out_lock;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	r = pthread_cond_init(&inf->cond, &ca) == 0 ? 0 : -ENOMEM;
	pthread_condattr_destroy(&ca);
	if (r < 0)
		goto out_lock;
	*ret = inf;
	return 0;
out_lock:
	pthread_mutex_destroy(&inf->lock);
out_client:
	kube_client_destroy(inf->client);
out_free:
	kube_indexer_finish(&inf->index);
	free(inf->path);
	free(inf->label_selector);
	free(inf->field_selector);
	free(inf);
	return r;
}

/* ---- waiting ---- */

/* Sleeps ms unless stopped first. */
static void informer_sleep(struct kube_informer *inf, long ms)
{
	struct timespec until = monotonic_after_ms(ms);

	pthread_mutex_lock(&inf->lock);
	while (!atomic_load(&inf->stop))
		if (pthread_cond_timedwait(&inf->cond, &inf->lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&inf->lock);
}

/*
 * client-go's reflector backoff: d = initial * 2^n capped at max, each wait
 * drawn from [d, 2d), at least floor_ms (a Retry-After), and n starts over
 * after reset_ms without a failure.
 */
static void informer_backoff(struct kube_informer *inf, long floor_ms)
{
	long long now = monotonic_ms();
	long d = inf->o.backoff_initial_ms, wait;

	if (inf->last_backoff_ms && now - inf->last_backoff_ms > inf->o.backoff_reset_ms)
		inf->backoff_step = 0;
	for (unsigned int i = 0; i < inf->backoff_step && d < inf->o.backoff_max_ms; i++)
		d *= 2;
	if (d > inf->o.backoff_max_ms)
		d = inf->o.backoff_max_ms;
	else
		inf->backoff_step++;
	wait = d + rng_range(inf, 0, d > 1 ? d - 1 : 0);
	/* A Retry-After raises the wait, but never past the ceiling: the informer must go on. */
	if (floor_ms > inf->o.backoff_max_ms)
		floor_ms = inf->o.backoff_max_ms;
	if (wait < floor_ms)
		wait = floor_ms;
	inf->last_backoff_ms = now;
	pthread_mutex_lock(&inf->lock);
	inf->stats.backoffs++;
	pthread_mutex_unlock(&inf->lock);
	kube_log(inf->cfg, KUBE_LOG_DEBUG, "informer %s: backing off %ld ms", inf->path, wait);
	informer_sleep(inf, wait);
}

/* ---- the cache ---- */

/* Drops the cache's reference to one record. */
static void put_object(void *obj)
{
	kube_obj_unref(obj);
}

static int index_add_one(void *ctx, const char *key, void *obj)
{
	return kube_indexer_add(ctx, obj);
}

struct vanished_ctx {
	const struct string_map *fresh;
	const struct kube_informer_handlers *h;
};

/* A record of the old cache that the new list does not have: deleted meanwhile. */
static int tell_vanished(void *ctx, const char *key, void *obj)
{
	const struct vanished_ctx *v = ctx;

	if (!string_map_contains(v->fresh, key))
		v->h->on_delete(v->h->ctx, obj, true);
	return 0;
}

static int set_rv(struct kube_informer *inf, const char *rv)
{
	size_t len;

	if (!rv)
		return -EBADMSG;
	len = strlen(rv);
	if (len > KANARY_MAX_RESOURCE_VERSION)
		return -E2BIG;
	memcpy(inf->rv, rv, len + 1);
	return 0;
}

/*
 * Items of a typed List carry no kind or apiVersion; give them the list's,
 * so decoders see the same shape as from watch events.
 */
static int fill_kind(struct json_object *item, const char *list_kind, const char *api_version)
{
	struct json_object *v;
	size_t len;

	if (!json_object_object_get_ex(item, "kind", &v) && list_kind && *list_kind) {
		len = strlen(list_kind);
		if (len > 4 && strcmp(list_kind + len - 4, "List") == 0) {
			v = json_object_new_string_len(list_kind, (int)(len - 4));
			if (!v || json_object_object_add(item, "kind", v) != 0) {
				json_object_put(v);
				return -ENOMEM;
			}
		}
	}
	if (!json_object_object_get_ex(item, "apiVersion", &v) && api_version && *api_version) {
		v = json_object_new_string(api_version);
		if (!v || json_object_object_add(item, "apiVersion", v) != 0) {
			json_object_put(v);
			return -ENOMEM;
		}
	}
	return 0;
}

/* obj (the informer's own, changed freely) into a record with one reference. */
static int decode(const struct kube_informer *inf, struct json_object *obj, struct kube_obj **ret)
{
	struct json_object *md;

	if (inf->o.drop_managed_fields && json_object_object_get_ex(obj, "metadata", &md))
		json_object_object_del(md, "managedFields");
	if (inf->o.decode)
		return inf->o.decode(inf->o.decode_ctx, obj, ret);
	return kube_obj_new(obj, sizeof(struct kube_obj), 0, true, ret, NULL);
}

static void copy_name(char *out, size_t size, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n >= size)
		n = 0;
	memcpy(out, s ? s : "", n);
	out[n] = '\0';
}

/* One LIST page: its items decoded into inf->fresh, the page dropped by the caller. */
static int list_page(void *ctx, struct json_object *page, bool restart)
{
	struct kube_informer *inf = ctx;
	struct json_object *items = NULL;
	struct kube_obj *rec, *prev;
	size_t n;
	int r;

	if (restart) {
		string_map_finish(&inf->fresh, put_object);
		string_map_init(&inf->fresh, SIZE_MAX);
		inf->n_order = 0;
		r = set_rv(inf, kube_object_resource_version(page));
		if (r < 0)
			return -EBADMSG;
		copy_name(inf->list_kind, sizeof(inf->list_kind), json_field_str(page, "kind"));
		copy_name(inf->list_api_version, sizeof(inf->list_api_version),
		          json_field_str(page, "apiVersion"));
	}
	json_object_object_get_ex(page, "items", &items);
	n = json_object_array_length(items);
	for (size_t i = 0; i < n; i++) {
		struct json_object *item = json_object_array_get_idx(items, i);

		r = fill_kind(item, inf->list_kind, inf->list_api_version);
		if (r == 0)
			r = decode(inf, item, &rec);
		if (r < 0)
			return r;
		/* A key listed twice: the later item wins. */
		prev = NULL;
		r = string_map_put(&inf->fresh, rec->key, rec, (void **)&prev);
		if (r < 0) {
			kube_obj_unref(rec);
			return -ENOMEM;
		}
		if (prev) {
			for (size_t j = 0; j < inf->n_order; j++)
				if (inf->order[j] == prev)
					inf->order[j] = rec;
			kube_obj_unref(prev);
			continue;
		}
		if (inf->n_order == inf->cap_order) {
			size_t cap = inf->cap_order ? inf->cap_order * 2 : 256;
			const struct kube_obj **o = realloc(inf->order, cap * sizeof(*o));

			if (!o)
				return -ENOMEM;
			inf->order = o;
			inf->cap_order = cap;
		}
		inf->order[inf->n_order++] = rec;
	}
	return 0;
}

/*
 * LIST at rv, page by page (each page decoded as it comes and dropped), and
 * replace the cache with the result, then tell the handlers: add for new
 * keys, update for changed resourceVersions, delete (final state unknown)
 * for keys that are gone.
 */
static int informer_list(struct kube_informer *inf, const char *rv, struct kube_result *res)
{
	const struct kube_list_options lo = {
	    .label_selector = inf->label_selector,
	    .field_selector = inf->field_selector,
	    .resource_version = rv,
	    .page_size = inf->o.page_size ? inf->o.page_size : KUBE_INFORMER_PAGE_SIZE,
	    .accept = inf->o.metadata_only ? KUBE_ACCEPT_METADATA_LIST : NULL,
	};
	const struct kube_informer_handlers *h = &inf->o.handlers;
	struct string_map fresh, old;
	const struct kube_obj *prev;
	int r;

	string_map_init(&inf->fresh, SIZE_MAX);
	inf->n_order = 0;
	r = kube_list_each(inf->client, inf->path, &lo, list_page, inf, res);
	if (r < 0) {
		if (r == -EBADMSG && res->reason != KUBE_REASON_BAD_RESPONSE) {
			res->reason = KUBE_REASON_BAD_RESPONSE;
			snprintf(res->message, sizeof(res->message),
			         "LIST %s: no usable resourceVersion", inf->path);
		}
		string_map_finish(&inf->fresh, put_object);
		inf->n_order = 0;
		return r;
	}
	fresh = inf->fresh;
	string_map_init(&inf->fresh, SIZE_MAX);

	pthread_mutex_lock(&inf->lock);
	old = inf->cache;
	inf->cache = fresh;
	kube_indexer_clear(&inf->index);
	r = string_map_foreach(&fresh, index_add_one, &inf->index);
	inf->stats.lists++;
	inf->stats.objects = string_map_size(&fresh);
	inf->stats.bytes = 0;
	for (size_t i = 0; i < inf->n_order; i++)
		inf->stats.bytes += inf->order[i]->size;
	pthread_mutex_unlock(&inf->lock);
	if (r < 0)
		kube_log(inf->cfg, KUBE_LOG_WARNING, "informer %s: out of memory indexing the list",
		         inf->path);

	/* Only this thread writes the cache, so reading fresh here needs no lock. */
	for (size_t i = 0; i < inf->n_order; i++) {
		const struct kube_obj *item = inf->order[i];

		prev = string_map_get(&old, item->key);
		if (!prev) {
			if (h->on_add)
				h->on_add(h->ctx, item);
		} else if (strcmp(prev->rv, item->rv) != 0) {
			if (h->on_update)
				h->on_update(h->ctx, prev, item);
		}
	}
	inf->n_order = 0;
	if (h->on_delete) {
		struct vanished_ctx v = {.fresh = &fresh, .h = h};

		(void)string_map_foreach(&old, tell_vanished, &v);
	}
	string_map_finish(&old, put_object);
	/*
	 * The pages were json-c trees many times the size of their records,
	 * freed now; hand the pages they leave free back to the system rather
	 * than keep them in this thread's arena for the next LIST.
	 */
	heap_trim();

	pthread_mutex_lock(&inf->lock);
	if (!inf->synced) {
		inf->synced = true;
		inf->stats.synced = true;
		pthread_cond_broadcast(&inf->cond);
	}
	pthread_mutex_unlock(&inf->lock);
	return 0;
}

/* One watch event: update the cache under the lock, then call the handler without it. */
static int informer_event(void *ctx, const struct kube_event *ev)
{
	struct kube_informer *inf = ctx;
	const struct kube_informer_handlers *h = &inf->o.handlers;
	struct kube_obj *rec = NULL, *old = NULL;
	char key[KANARY_MAX_KEY + 1];
	void *held = NULL;
	int r;

	if (ev->type == KUBE_EVENT_BOOKMARK) {
		pthread_mutex_lock(&inf->lock);
		inf->stats.bookmarks++;
		pthread_mutex_unlock(&inf->lock);
		r = set_rv(inf, kube_object_resource_version(ev->object));
		if (r < 0)
			inf->event_err = r;
		return r;
	}
	r = kube_object_key(ev->object, key, sizeof(key));
	if (r < 0) {
		inf->event_err = r;
		return r;
	}
	r = decode(inf, ev->object, &rec);
	if (r < 0) {
		inf->event_err = r;
		return r;
	}
	pthread_mutex_lock(&inf->lock);
	if (ev->type == KUBE_EVENT_DELETED) {
		if (string_map_remove(&inf->cache, key, &held) == 0) {
			old = held;
			kube_indexer_remove(&inf->index, old);
			inf->stats.bytes -= old->size;
		}
	} else if (string_map_put(&inf->cache, key, rec, &held) < 0) {
		r = -ENOMEM;
	} else {
		old = held; /* the replaced record (our reference now), or NULL */
		if (old) {
			kube_indexer_remove(&inf->index, old);
			inf->stats.bytes -= old->size;
		}
		inf->stats.bytes += rec->size;
		if (kube_indexer_add(&inf->index, rec) < 0)
			kube_log(inf->cfg, KUBE_LOG_WARNING,
			         "informer %s: out of memory indexing %s", inf->path, key);
		kube_obj_ref(rec); /* one for the cache, one for the handler */
	}
	if (r == 0) {
		inf->stats.events++;
		inf->stats.objects = string_map_size(&inf->cache);
	}
	pthread_mutex_unlock(&inf->lock);
	if (r < 0) {
		kube_obj_unref(rec);
		inf->event_err = r;
		return r;
	}
	/* The resourceVersion moves only once the event is in the cache. */
	(void)set_rv(inf, rec->rv[0] ? rec->rv : kube_object_resource_version(ev->object));
	inf->watch_events++;
	switch (ev->type) {
	case KUBE_EVENT_ADDED:
	case KUBE_EVENT_MODIFIED:
		if (old && h->on_update)
			h->on_update(h->ctx, old, rec);
		else if (!old && h->on_add)
			h->on_add(h->ctx, rec);
		break;
	case KUBE_EVENT_DELETED:
		if (h->on_delete)
			h->on_delete(h->ctx, old ? old : rec, false);
		break;
	default:
		break;
	}
	kube_obj_unref(old);
	kube_obj_unref(rec);
	/*
	 * Each event was a json-c tree many times its record's size, freed in
	 * this thread's arena between records that stay; now and then hand the
	 * whole free pages back to the system.
	 */
	if (monotonic_ms() - inf->last_trim_ms >= KUBE_INFORMER_TRIM_MS) {
		heap_trim();
		inf->last_trim_ms = monotonic_ms();
	}
	return 0;
}

static void count_failure(struct kube_informer *inf)
{
	pthread_mutex_lock(&inf->lock);
	inf->stats.failures++;
	pthread_mutex_unlock(&inf->lock);
}

/* Failures worth a new watch from the same resourceVersion rather than a LIST. */
static bool rewatchable(enum kube_reason reason)
{
	switch (reason) {
	case KUBE_REASON_TRANSPORT:
	case KUBE_REASON_TIMEOUT:
	case KUBE_REASON_TOO_MANY_REQUESTS:
	case KUBE_REASON_SERVICE_UNAVAILABLE:
	case KUBE_REASON_INTERNAL:
		return true;
	default:
		return false;
	}
}

static void *informer_main(void *arg)
{
	struct kube_informer *inf = arg;
	struct kube_watch_options wo = {
	    .label_selector = inf->label_selector,
	    .field_selector = inf->field_selector,
	    .bookmarks = true,
	    .deadline_ms = inf->o.watch_deadline_ms,
	    .max_line = inf->o.max_line,
	    .accept = inf->o.metadata_only ? KUBE_ACCEPT_METADATA : NULL,
	};
	/* "", not "0": at "0" the API server ignores limit and answers with every object at once. */
	char list_rv[KANARY_MAX_RESOURCE_VERSION + 1] = "";
	struct kube_result res;
	bool need_list = true;
	long long started;
	int r;

	while (!atomic_load(&inf->stop)) {
		if (need_list) {
			r = informer_list(inf, list_rv, &res);
			if (atomic_load(&inf->stop))
				break;
			if (r < 0) {
				count_failure(inf);
				kube_log(
				    inf->cfg, KUBE_LOG_WARNING,
				    "informer %s: LIST failed: %s: %s; retrying after a backoff",
				    inf->path, kube_reason_name(res.reason), res.message);
				/* Our resourceVersion is too old even for a LIST: read the newest. */
				if (res.reason == KUBE_REASON_GONE)
					list_rv[0] = '\0';
				informer_backoff(inf, (long)res.retry_after_s * 1000);
				continue;
			}
			kube_log(inf->cfg, KUBE_LOG_DEBUG, "informer %s: listed at %s", inf->path,
			         inf->rv);
			need_list = false;
		}
		wo.resource_version = inf->rv;
		wo.timeout_s =
		    (int)rng_range(inf, inf->o.watch_timeout_min_s, inf->o.watch_timeout_max_s);
		inf->watch_events = 0;
		inf->event_err = 0;
		started = monotonic_ms();
		pthread_mutex_lock(&inf->lock);
		inf->stats.watches++;
		pthread_mutex_unlock(&inf->lock);
		r = kube_watch(inf->client, inf->path, &wo, informer_event, inf, &res);
		if (atomic_load(&inf->stop))
			break;
		if (r >= 0) {
			pthread_mutex_lock(&inf->lock);
			inf->stats.watch_ends++;
			pthread_mutex_unlock(&inf->lock);
			/* client-go: a watch that ends at once with nothing in it is a failure. */
			if (inf->watch_events == 0 && monotonic_ms() - started < 1000)
				informer_backoff(inf, 0);
			continue;
		}
		count_failure(inf);
		if (res.reason == KUBE_REASON_GONE) {
			kube_log(inf->cfg, KUBE_LOG_INFO,
			         "informer %s: resourceVersion %s expired (%s); listing again",
			         inf->path, inf->rv, res.message);
			pthread_mutex_lock(&inf->lock);
			inf->stats.relists_gone++;
			pthread_mutex_unlock(&inf->lock);
			list_rv[0] = '\0';
			need_list = true;
			continue;
		}
		if (inf->event_err) {
			kube_log(inf->cfg, KUBE_LOG_WARNING,
			         "informer %s: an event could not be applied: %s; listing again "
			         "after a backoff",
			         inf->path, strerror(-inf->event_err));
			memcpy(list_rv, inf->rv, sizeof(list_rv));
			need_list = true;
		} else if (rewatchable(res.reason)) {
			kube_log(inf->cfg, KUBE_LOG_INFO,
			         "informer %s: watch failed: %s: %s; watching again from %s after "
			         "a backoff",
			         inf->path, kube_reason_name(res.reason), res.message, inf->rv);
		} else {
			kube_log(inf->cfg, KUBE_LOG_WARNING,
			         "informer %s: watch failed: %s: %s; listing again after a backoff",
			         inf->path, kube_reason_name(res.reason), res.message);
			/* "Not older than" what we have: the API server's cache may answer. */
			memcpy(list_rv, inf->rv, sizeof(list_rv));
			need_list = true;
		}
		informer_backoff(inf, (long)res.retry_after_s * 1000);
	}
	pthread_mutex_lock(&inf->lock);
	pthread_cond_broadcast(&inf->cond);
	pthread_mutex_unlock(&inf->lock);
	return NULL;
}

int kube_informer_start(struct kube_informer *inf)
{
	int r;

	if (inf->started)
		return -EALREADY;
	r = pthread_create(&inf->thread, NULL, informer_main, inf);
	if (r != 0)
		return -r;
	inf->started = true;
	return 0;
}

void kube_informer_stop(struct kube_informer *inf)
{
	if (!inf->started || inf->joined)
		return;
	pthread_mutex_lock(&inf->lock);
	atomic_store(&inf->stop, true);
	pthread_cond_broadcast(&inf->cond);
	pthread_mutex_unlock(&inf->lock);
	pthread_join(inf->thread, NULL);
	inf->joined = true;
}

void kube_informer_destroy(struct kube_informer *inf)
{
	if (!inf)
		return;
	kube_informer_stop(inf);
	pthread_cond_destroy(&inf->cond);
	pthread_mutex_destroy(&inf->lock);
	kube_client_destroy(inf->client);
	kube_indexer_finish(&inf->index);
	string_map_finish(&inf->cache, put_object);
	string_map_finish(&inf->fresh, put_object);
	free(inf->order);
	free(inf->path);
	free(inf->label_selector);
	free(inf->field_selector);
	free(inf);
}

bool kube_informer_has_synced(struct kube_informer *inf)
{
	bool synced;

	pthread_mutex_lock(&inf->lock);
	synced = inf->synced;
	pthread_mutex_unlock(&inf->lock);
	return synced;
}

int kube_informer_wait_synced(struct kube_informer *inf, long timeout_ms)
{
	struct timespec until = monotonic_after_ms(timeout_ms);
	int r = 0;

	pthread_mutex_lock(&inf->lock);
	while (!inf->synced) {
		if (atomic_load(&inf->stop)) {
			r = -ECANCELED;
			break;
		}
		if (pthread_cond_timedwait(&inf->cond, &inf->lock, &until) == ETIMEDOUT) {
			r = inf->synced ? 0 : -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&inf->lock);
	return r;
}

int kube_informer_get_obj(struct kube_informer *inf, const char *key, const struct kube_obj **ret)
{
	const struct kube_obj *o;

	pthread_mutex_lock(&inf->lock);
	o = kube_obj_ref(string_map_get(&inf->cache, key));
	pthread_mutex_unlock(&inf->lock);
	if (!o)
		return -ENOENT;
	*ret = o;
	return 0;
}

int kube_informer_get(struct kube_informer *inf, const char *key, struct json_object **ret_obj)
{
	const struct kube_obj *o;
	int r;

	r = kube_informer_get_obj(inf, key, &o);
	if (r < 0)
		return r;
	r = kube_obj_parse(o, ret_obj);
	kube_obj_unref(o);
	return r;
}

int kube_informer_by_index(struct kube_informer *inf, unsigned int index, const char *value,
                           const struct kube_obj ***ret, size_t *ret_n)
{
	int r;

	pthread_mutex_lock(&inf->lock);
	r = kube_indexer_get(&inf->index, index, value, ret, ret_n);
	pthread_mutex_unlock(&inf->lock);
	return r;
}

int kube_informer_list(struct kube_informer *inf, const struct kube_obj ***ret, size_t *ret_n)
{
	int r;

	pthread_mutex_lock(&inf->lock);
	r = kube_objs_collect(&inf->cache, ret, ret_n);
	pthread_mutex_unlock(&inf->lock);
	if (r == 0)
		kube_objs_sort(*ret, *ret_n);
	return r;
}

void kube_informer_stats(struct kube_informer *inf, struct kube_informer_stats *ret)
{
	pthread_mutex_lock(&inf->lock);
	*ret = inf->stats;
	pthread_mutex_unlock(&inf->lock);
}
