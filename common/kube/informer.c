/* SPDX-License-Identifier: Apache-2.0 */
/* An informer: a local copy of one collection, kept by LIST and WATCH, with change handlers. */
#include "common/kube/informer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

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
	struct string_map cache; /* key -> struct json_object *, a reference it holds */
	bool synced;
	struct kube_informer_stats stats;

	/* Informer thread only. */
	char rv[KANARY_MAX_RESOURCE_VERSION + 1];
	unsigned int backoff_step;
	long long last_backoff_ms;
	uint64_t rng;
	unsigned long watch_events;
	int event_err;
};

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
	string_map_init(&inf->cache, KANARY_MAX_INFORMER_OBJECTS);
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

/* Drops the cache's reference to one object. */
static void put_object(void *obj)
{
	json_object_put(obj);
}

struct vanished_ctx {
	const struct string_map *fresh;
	const struct kube_informer_handlers *h;
};

/* An object of the old cache that the new list does not have: deleted meanwhile. */
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

static bool same_rv(const struct json_object *a, const struct json_object *b)
{
	const char *ra = kube_object_resource_version(a), *rb = kube_object_resource_version(b);

	return ra && rb && strcmp(ra, rb) == 0;
}

/*
 * Items of a typed List carry no kind or apiVersion; give them the list's,
 * so handlers see the same shape as from watch events.
 */
static int fill_kind(struct json_object *item, const char *list_kind, const char *api_version)
{
	struct json_object *v;
	size_t len;

	if (!json_object_object_get_ex(item, "kind", &v) && list_kind) {
		len = strlen(list_kind);
		if (len > 4 && strcmp(list_kind + len - 4, "List") == 0) {
			v = json_object_new_string_len(list_kind, (int)(len - 4));
			if (!v || json_object_object_add(item, "kind", v) != 0) {
				json_object_put(v);
				return -ENOMEM;
			}
		}
	}
	if (!json_object_object_get_ex(item, "apiVersion", &v) && api_version) {
		v = json_object_new_string(api_version);
		if (!v || json_object_object_add(item, "apiVersion", v) != 0) {
			json_object_put(v);
			return -ENOMEM;
		}
	}
	return 0;
}

/* metadata.managedFields out of obj, when the informer was asked to. */
static void transform(const struct kube_informer *inf, struct json_object *obj)
{
	struct json_object *md;

	if (inf->o.drop_managed_fields && json_object_object_get_ex(obj, "metadata", &md))
		json_object_object_del(md, "managedFields");
}

/*
 * LIST at rv and replace the cache with the result, then tell the handlers:
 * add for new keys, update for changed resourceVersions, delete (final state
 * unknown) for keys that are gone.
 */
static int informer_list(struct kube_informer *inf, const char *rv, struct kube_result *res)
{
	const struct kube_list_options lo = {
	    .label_selector = inf->label_selector,
	    .field_selector = inf->field_selector,
	    .resource_version = rv,
	    .page_size = inf->o.page_size,
	};
	const struct kube_informer_handlers *h = &inf->o.handlers;
	struct json_object *list, *items, *item, *copy, *prev;
	struct string_map fresh, old;
	const char *kind, *api_version;
	char key[KANARY_MAX_KEY + 1];
	size_t n;
	int r;

	r = kube_list(inf->client, inf->path, &lo, &list, res);
	if (r < 0)
		return r;
	r = set_rv(inf, kube_object_resource_version(list));
	if (r < 0 || !json_object_object_get_ex(list, "items", &items)) {
		res->reason = KUBE_REASON_BAD_RESPONSE;
		snprintf(res->message, sizeof(res->message), "LIST %s: no usable resourceVersion",
		         inf->path);
		r = r < 0 ? r : -EBADMSG;
		goto out_list;
	}
	n = json_object_array_length(items);
	if (n > KANARY_MAX_INFORMER_OBJECTS) {
		res->reason = KUBE_REASON_BAD_RESPONSE;
		snprintf(res->message, sizeof(res->message), "LIST %s: more than %u objects",
		         inf->path, KANARY_MAX_INFORMER_OBJECTS);
		r = -E2BIG;
		goto out_list;
	}
	kind = json_field_str(list, "kind");
	api_version = json_field_str(list, "apiVersion");
	string_map_init(&fresh, KANARY_MAX_INFORMER_OBJECTS);
	for (size_t i = 0; i < n; i++) {
		item = json_object_array_get_idx(items, i);
		copy = NULL;
		r = fill_kind(item, kind, api_version);
		transform(inf, item);
		if (r == 0)
			r = kube_object_key(item, key, sizeof(key));
		if (r == 0 && json_object_deep_copy(item, &copy, NULL) != 0)
			r = -ENOMEM;
		if (r == 0) {
			/* A key listed twice: the later item wins, as it would in a json-c object. */
			prev = NULL;
			r = string_map_put(&fresh, key, copy, (void **)&prev);
			if (r < 0) {
				json_object_put(copy);
				r = -ENOMEM;
			} else {
				json_object_put(prev);
				r = 0;
			}
		}
		if (r < 0) {
			res->reason = r == -ENOMEM ? KUBE_REASON_CLIENT : KUBE_REASON_BAD_RESPONSE;
			snprintf(res->message, sizeof(res->message), "LIST %s: item %zu: %s",
			         inf->path, i, strerror(-r));
			goto out_fresh;
		}
	}

	pthread_mutex_lock(&inf->lock);
	old = inf->cache;
	inf->cache = fresh;
	inf->stats.lists++;
	inf->stats.objects = string_map_size(&fresh);
	pthread_mutex_unlock(&inf->lock);

	/* Only this thread writes the cache, so reading fresh here needs no lock. */
	for (size_t i = 0; i < n; i++) {
		item = json_object_array_get_idx(items, i);
		if (kube_object_key(item, key, sizeof(key)) < 0)
			continue;
		prev = string_map_get(&old, key);
		if (!prev) {
			if (h->on_add)
				h->on_add(h->ctx, item);
		} else if (!same_rv(prev, item)) {
			if (h->on_update)
				h->on_update(h->ctx, prev, item);
		}
	}
	if (h->on_delete) {
		struct vanished_ctx v = {.fresh = &fresh, .h = h};

		(void)string_map_foreach(&old, tell_vanished, &v);
	}
	string_map_finish(&old, put_object);

	pthread_mutex_lock(&inf->lock);
	if (!inf->synced) {
		inf->synced = true;
		inf->stats.synced = true;
		pthread_cond_broadcast(&inf->cond);
	}
	pthread_mutex_unlock(&inf->lock);
	r = 0;
	goto out_list;
out_fresh:
	string_map_finish(&fresh, put_object);
out_list:
	json_object_put(list);
	return r;
}

/* One watch event: update the cache under the lock, then call the handler without it. */
static int informer_event(void *ctx, const struct kube_event *ev)
{
	struct kube_informer *inf = ctx;
	const struct kube_informer_handlers *h = &inf->o.handlers;
	struct json_object *old = NULL, *copy = NULL;
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
	transform(inf, ev->object);
	if (ev->type != KUBE_EVENT_DELETED && json_object_deep_copy(ev->object, &copy, NULL) != 0) {
		inf->event_err = -ENOMEM;
		return -ENOMEM;
	}
	pthread_mutex_lock(&inf->lock);
	old = string_map_get(&inf->cache, key);
	if (old)
		json_object_get(old);
	if (ev->type == KUBE_EVENT_DELETED) {
		if (string_map_remove(&inf->cache, key, &held) == 0)
			json_object_put(held);
	} else if (!old && string_map_size(&inf->cache) >= KANARY_MAX_INFORMER_OBJECTS) {
		r = -E2BIG;
	} else if (string_map_put(&inf->cache, key, copy, &held) < 0) {
		r = -ENOMEM;
	} else {
		json_object_put(held); /* the replaced object, or NULL */
		copy = NULL;
	}
	if (r == 0) {
		inf->stats.events++;
		inf->stats.objects = string_map_size(&inf->cache);
	}
	pthread_mutex_unlock(&inf->lock);
	json_object_put(copy);
	if (r < 0) {
		json_object_put(old);
		inf->event_err = r;
		return r;
	}
	/* The resourceVersion moves only once the event is in the cache. */
	(void)set_rv(inf, kube_object_resource_version(ev->object));
	inf->watch_events++;
	switch (ev->type) {
	case KUBE_EVENT_ADDED:
	case KUBE_EVENT_MODIFIED:
		if (old && h->on_update)
			h->on_update(h->ctx, old, ev->object);
		else if (!old && h->on_add)
			h->on_add(h->ctx, ev->object);
		break;
	case KUBE_EVENT_DELETED:
		if (h->on_delete)
			h->on_delete(h->ctx, old ? old : ev->object, false);
		break;
	default:
		break;
	}
	json_object_put(old);
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
	};
	char list_rv[KANARY_MAX_RESOURCE_VERSION + 1] = "0";
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
	string_map_finish(&inf->cache, put_object);
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

int kube_informer_get(struct kube_informer *inf, const char *key, struct json_object **ret_obj)
{
	struct json_object *obj, *copy = NULL;
	int r = 0;

	pthread_mutex_lock(&inf->lock);
	obj = string_map_get(&inf->cache, key);
	if (!obj)
		r = -ENOENT;
	else if (json_object_deep_copy(obj, &copy, NULL) != 0)
		r = -ENOMEM;
	pthread_mutex_unlock(&inf->lock);
	if (r == 0)
		*ret_obj = copy;
	return r;
}

static int by_key(const void *a, const void *b)
{
	const struct json_object *const *oa = a, *const *ob = b;
	char ka[KANARY_MAX_KEY + 1] = "", kb[KANARY_MAX_KEY + 1] = "";

	(void)kube_object_key(*oa, ka, sizeof(ka));
	(void)kube_object_key(*ob, kb, sizeof(kb));
	return strcmp(ka, kb);
}

/* Appends a deep copy of obj to the array ctx; -ENOMEM stops the walk. */
static int add_copy(void *ctx, const char *key, void *obj)
{
	struct json_object *copy = NULL;

	if (json_object_deep_copy(obj, &copy, NULL) != 0 || json_object_array_add(ctx, copy) != 0) {
		json_object_put(copy);
		return -ENOMEM;
	}
	return 0;
}

int kube_informer_list(struct kube_informer *inf, struct json_object **ret_array)
{
	struct json_object *arr;
	int r = 0;

	arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	pthread_mutex_lock(&inf->lock);
	r = string_map_foreach(&inf->cache, add_copy, arr);
	pthread_mutex_unlock(&inf->lock);
	if (r < 0) {
		json_object_put(arr);
		return r;
	}
	json_object_array_sort(arr, by_key);
	*ret_array = arr;
	return 0;
}

void kube_informer_stats(struct kube_informer *inf, struct kube_informer_stats *ret)
{
	pthread_mutex_lock(&inf->lock);
	*ret = inf->stats;
	pthread_mutex_unlock(&inf->lock);
}
