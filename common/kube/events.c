/* SPDX-License-Identifier: Apache-2.0 */
/* Writing core/v1 Events about objects, aggregated and rate-limited as client-go does. */
#include "common/kube/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/io/monotonic.h"
#include "common/io/wallclock.h"
#include "common/json_field.h"
#include "common/kube/client.h"
#include "common/limits.h"
#include "common/string_map.h"
#include "common/token_bucket.h"

/* One Event we wrote, found again by everything that makes two Events the same. */
struct rec_entry {
	char *key;
	char *name;
	char *namespace;
	long count;
	char first_timestamp[WALLCLOCK_RFC3339_SIZE];
	unsigned long used;
};

/* One object's spam bucket. */
struct spam_entry {
	char *key;
	struct token_bucket bucket;
	unsigned long used;
};

/* One Event waiting for the writer: everything kube_record was given, copied. */
struct rec_item {
	char *kind;
	char *api_version;
	char *name;
	char *namespace;
	char *uid;
	char *resource_version; /* NULL when absent */
	char *reason;
	enum kube_record_type type;
	char message[KUBE_EVENT_MESSAGE_MAX];
	char ts[WALLCLOCK_RFC3339_SIZE];
};

struct kube_recorder {
	struct kube_config *cfg;
	struct kube_client *client;
	char *component;
	char *host;

	/* The writer's own: the aggregation and the spam filter. */
	struct rec_entry *entries; /* KANARY_MAX_EVENT_CACHE slots */
	size_t n_entries;
	struct string_map entry_index; /* key -> its struct rec_entry in entries */
	struct spam_entry *spam;       /* KANARY_MAX_EVENT_CACHE slots */
	size_t n_spam;
	struct string_map spam_index; /* key -> its struct spam_entry in spam */
	unsigned long clock;

	/* Shared with kube_record, behind lock (never held across an API call). */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* an item came, or stop */
	pthread_cond_t idle; /* the queue emptied and the writer is idle */
	struct rec_item **ring;
	size_t cap, head, len;
	bool busy;   /* the writer holds an item */
	bool stop;   /* destroy: write what is left until the deadline */
	bool full;   /* the queue refused an Event since it last emptied */
	bool exited; /* the writer returned */
	unsigned long dropped_in_run;
	struct kube_recorder_stats stats;

	atomic_bool abort; /* cuts the write in flight once the flush deadline passed */
	pthread_t thread;
	bool started;
};

static void item_free(struct rec_item *it)
{
	if (!it)
		return;
	free(it->kind);
	free(it->api_version);
	free(it->name);
	free(it->namespace);
	free(it->uid);
	free(it->resource_version);
	free(it->reason);
	free(it);
}

int kube_recorder_create(struct kube_config *cfg, const struct kube_recorder_options *o,
                         struct kube_recorder **ret)
{
	struct kube_client_options co = {0};
	pthread_condattr_t ca;
	struct kube_recorder *rec;
	int r = -ENOMEM;

	if (!o || !o->component || !*o->component)
		return -EINVAL;
	co.component = o->component;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	rec->cfg = cfg;
	rec->cap = o->queue_size ? o->queue_size : KANARY_MAX_EVENT_QUEUE;
	rec->stats.queue_size = rec->cap;
	atomic_init(&rec->abort, false);
	rec->component = strdup(o->component);
	rec->host = strdup(o->host ? o->host : "");
	rec->entries = calloc(KANARY_MAX_EVENT_CACHE, sizeof(*rec->entries));
	rec->spam = calloc(KANARY_MAX_EVENT_CACHE, sizeof(*rec->spam));
	rec->ring = calloc(rec->cap, sizeof(*rec->ring));
	string_map_init(&rec->entry_index, KANARY_MAX_EVENT_CACHE);
	string_map_init(&rec->spam_index, KANARY_MAX_EVENT_CACHE);
	if (!rec->component || !rec->host || !rec->entries || !rec->spam || !rec->ring)
		goto out_free;
	r = kube_client_create(cfg, &co, &rec->client);
	if (r < 0)
		goto out_free;
	kube_client_set_abort(rec->client, &rec->abort);
	r = -ENOMEM;
	if (pthread_mutex_init(&rec->lock, NULL) != 0)
		goto out_client;
	/* Timed waits on the monotonic clock, as the work queue's. */
	if (pthread_condattr_init(&ca) != 0)
		goto out_lock;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&rec->wake, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto out_lock;
	}
	if (pthread_cond_init(&rec->idle, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto out_wake;
	}
	pthread_condattr_destroy(&ca);
	*ret = rec;
	return 0;
out_wake:
	pthread_cond_destroy(&rec->wake);
out_lock:
	pthread_mutex_destroy(&rec->lock);
out_client:
	kube_client_destroy(rec->client);
out_free:
	string_map_finish(&rec->entry_index, NULL);
	string_map_finish(&rec->spam_index, NULL);
	free(rec->ring);
	free(rec->spam);
	free(rec->entries);
	free(rec->host);
	free(rec->component);
	free(rec);
	return r;
}

static void entry_clear(struct rec_entry *e)
{
	free(e->key);
	free(e->name);
	free(e->namespace);
	memset(e, 0, sizeof(*e));
}

static void *writer_main(void *arg);

int kube_recorder_start(struct kube_recorder *rec)
{
	if (rec->started)
		return -EALREADY;
	if (pthread_create(&rec->thread, NULL, writer_main, rec) != 0)
		return -EAGAIN;
	rec->started = true;
	return 0;
}

void kube_recorder_destroy(struct kube_recorder *rec)
{
	if (!rec)
		return;
	if (rec->started) {
		struct timespec deadline = monotonic_after_ms(KUBE_EVENT_FLUSH_MS);

		pthread_mutex_lock(&rec->lock);
		rec->stop = true;
		pthread_cond_broadcast(&rec->wake);
		while (!rec->exited)
			if (pthread_cond_timedwait(&rec->idle, &rec->lock, &deadline) == ETIMEDOUT)
				break;
		/* Out of time: cut the write in flight; the writer stops after it. */
		if (!rec->exited)
			atomic_store(&rec->abort, true);
		pthread_mutex_unlock(&rec->lock);
		pthread_join(rec->thread, NULL);
	}
	/* What the writer did not get to (or never started for). */
	if (rec->len)
		kube_log(rec->cfg, KUBE_LOG_WARNING,
		         "%zu events dropped: the recorder stopped first", rec->len);
	for (size_t i = 0; i < rec->len; i++)
		item_free(rec->ring[(rec->head + i) % rec->cap]);
	for (size_t i = 0; i < rec->n_entries; i++)
		entry_clear(&rec->entries[i]);
	for (size_t i = 0; i < rec->n_spam; i++)
		free(rec->spam[i].key);
	string_map_finish(&rec->entry_index, NULL);
	string_map_finish(&rec->spam_index, NULL);
	pthread_cond_destroy(&rec->idle);
	pthread_cond_destroy(&rec->wake);
	pthread_mutex_destroy(&rec->lock);
	kube_client_destroy(rec->client);
	free(rec->ring);
	free(rec->spam);
	free(rec->entries);
	free(rec->host);
	free(rec->component);
	free(rec);
}

void kube_recorder_stats(struct kube_recorder *rec, struct kube_recorder_stats *ret)
{
	pthread_mutex_lock(&rec->lock);
	*ret = rec->stats;
	ret->queued = rec->len;
	pthread_mutex_unlock(&rec->lock);
}

int kube_recorder_flush(struct kube_recorder *rec, long timeout_ms)
{
	struct timespec deadline = monotonic_after_ms(timeout_ms);
	int r = 0;

	pthread_mutex_lock(&rec->lock);
	while ((rec->len > 0 || rec->busy) && r == 0)
		if (pthread_cond_timedwait(&rec->idle, &rec->lock, &deadline) == ETIMEDOUT)
			r = -ETIMEDOUT;
	if (rec->len == 0 && !rec->busy)
		r = 0;
	pthread_mutex_unlock(&rec->lock);
	return r;
}

struct involved {
	const char *kind;
	const char *api_version;
	const char *name;
	const char *namespace; /* "" for cluster-scoped */
	const char *uid;       /* "" when absent */
	const char *resource_version;
};

/*
 * Spam filter: one token bucket per object and source. Evicts the least
 * recently used bucket when full. Returns true when the Event may go.
 */
static bool spam_allow(struct kube_recorder *rec, const char *key)
{
	struct spam_entry *e, *lru = NULL;
	long long now = monotonic_ms();
	char *copy;

	e = string_map_get(&rec->spam_index, key);
	if (!e) {
		copy = strdup(key);
		if (!copy)
			return true; /* out of memory: do not filter */
		if (rec->n_spam < KANARY_MAX_EVENT_CACHE) {
			e = &rec->spam[rec->n_spam++];
		} else {
			for (size_t i = 0; i < rec->n_spam; i++)
				if (!lru || rec->spam[i].used < lru->used)
					lru = &rec->spam[i];
			e = lru;
			if (e->key && string_map_get(&rec->spam_index, e->key) == e)
				(void)string_map_remove(&rec->spam_index, e->key, NULL);
			free(e->key);
		}
		e->key = copy;
		/* Out of memory: the bucket starts over the next time. */
		(void)string_map_put(&rec->spam_index, key, e, NULL);
		token_bucket_init(&e->bucket, 1.0 / KUBE_EVENT_REFILL_S, KUBE_EVENT_BURST, now);
	}
	e->used = ++rec->clock;
	return token_bucket_try_take(&e->bucket, now);
}

static struct rec_entry *entry_find(struct kube_recorder *rec, const char *key)
{
	return string_map_get(&rec->entry_index, key);
}

/* Forgets e: the last entry moves into its slot. */
static void entry_remove(struct kube_recorder *rec, struct rec_entry *e)
{
	struct rec_entry *last = &rec->entries[rec->n_entries - 1];

	if (e->key && string_map_get(&rec->entry_index, e->key) == e)
		(void)string_map_remove(&rec->entry_index, e->key, NULL);
	entry_clear(e);
	rec->n_entries--;
	if (e != last) {
		*e = *last;
		memset(last, 0, sizeof(*last));
		/* Same key, so the put replaces and cannot fail. */
		(void)string_map_put(&rec->entry_index, e->key, e, NULL);
	}
}

/* A slot for a new entry: a free one, else the least recently used. */
static struct rec_entry *entry_slot(struct kube_recorder *rec)
{
	struct rec_entry *lru = NULL;

	if (rec->n_entries < KANARY_MAX_EVENT_CACHE)
		return &rec->entries[rec->n_entries++];
	for (size_t i = 0; i < rec->n_entries; i++)
		if (!lru || rec->entries[i].used < lru->used)
			lru = &rec->entries[i];
	if (lru->key && string_map_get(&rec->entry_index, lru->key) == lru)
		(void)string_map_remove(&rec->entry_index, lru->key, NULL);
	entry_clear(lru);
	return lru;
}

static int add_str(struct json_object *obj, const char *key, const char *val)
{
	struct json_object *v;

	if (!val)
		return 0;
	v = json_object_new_string(val);
	if (!v || json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int add_obj(struct json_object *obj, const char *key, struct json_object **ret)
{
	struct json_object *v = json_object_new_object();

	if (!v || json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	*ret = v;
	return 0;
}

/* The Event object for a first occurrence. Ownership: *ret is the caller's to put. */
static int event_build(const struct kube_recorder *rec, const struct involved *inv,
                       const char *name, const char *ns, const char *type, const char *reason,
                       const char *message, const char *ts, struct json_object **ret)
{
	struct json_object *ev, *meta, *io, *src, *count;
	int r;

	ev = json_object_new_object();
	if (!ev)
		return -ENOMEM;
	r = add_str(ev, "apiVersion", "v1");
	if (r == 0)
		r = add_str(ev, "kind", "Event");
	if (r == 0)
		r = add_obj(ev, "metadata", &meta);
	if (r == 0)
		r = add_str(meta, "name", name);
	if (r == 0)
		r = add_str(meta, "namespace", ns);
	if (r == 0)
		r = add_obj(ev, "involvedObject", &io);
	if (r == 0)
		r = add_str(io, "kind", inv->kind);
	if (r == 0)
		r = add_str(io, "apiVersion", inv->api_version);
	if (r == 0 && *inv->namespace)
		r = add_str(io, "namespace", inv->namespace);
	if (r == 0)
		r = add_str(io, "name", inv->name);
	if (r == 0 && *inv->uid)
		r = add_str(io, "uid", inv->uid);
	if (r == 0 && inv->resource_version)
		r = add_str(io, "resourceVersion", inv->resource_version);
	if (r == 0)
		r = add_str(ev, "type", type);
	if (r == 0)
		r = add_str(ev, "reason", reason);
	if (r == 0)
		r = add_str(ev, "message", message);
	if (r == 0)
		r = add_obj(ev, "source", &src);
	if (r == 0)
		r = add_str(src, "component", rec->component);
	if (r == 0 && *rec->host)
		r = add_str(src, "host", rec->host);
	if (r == 0)
		r = add_str(ev, "reportingComponent", rec->component);
	if (r == 0)
		r = add_str(ev, "reportingInstance", *rec->host ? rec->host : rec->component);
	if (r == 0)
		r = add_str(ev, "firstTimestamp", ts);
	if (r == 0)
		r = add_str(ev, "lastTimestamp", ts);
	if (r == 0) {
		count = json_object_new_int(1);
		if (!count || json_object_object_add(ev, "count", count) != 0) {
			json_object_put(count);
			r = -ENOMEM;
		}
	}
	if (r < 0) {
		json_object_put(ev);
		return r;
	}
	*ret = ev;
	return 0;
}

/* PATCHes the remembered Event with count + 1. -ENOENT when it is gone. */
static int event_bump(struct kube_recorder *rec, struct rec_entry *e, const char *message,
                      const char *ts, struct kube_result *res)
{
	char path[KANARY_MAX_URL];
	struct json_object *patch, *count;
	int r;

	r = kube_path(path, sizeof(path), NULL, "v1", "events", e->namespace, e->name, NULL);
	if (r < 0)
		return r;
	patch = json_object_new_object();
	if (!patch)
		return -ENOMEM;
	count = json_object_new_int64(e->count + 1);
	if (!count || json_object_object_add(patch, "count", count) != 0) {
		json_object_put(count);
		json_object_put(patch);
		return -ENOMEM;
	}
	r = add_str(patch, "lastTimestamp", ts);
	if (r == 0)
		r = add_str(patch, "message", message);
	if (r == 0)
		r = kube_patch(rec->client, path, KUBE_PATCH_MERGE, patch, NULL, res);
	json_object_put(patch);
	if (r == 0)
		e->count++;
	return r;
}

static int event_create(struct kube_recorder *rec, const struct involved *inv, const char *key,
                        const char *type, const char *reason, const char *message, const char *ts,
                        struct kube_result *res)
{
	char path[KANARY_MAX_URL], name[KANARY_MAX_NAME + 1];
	const char *ns = *inv->namespace ? inv->namespace : "default";
	struct json_object *ev;
	struct rec_entry *e;
	struct timespec now;
	int n, r;

	/* client-go names Events "<object>.<hex nanoseconds>". */
	clock_gettime(CLOCK_REALTIME, &now);
	n = snprintf(name, sizeof(name), "%.*s.%llx", KANARY_MAX_NAME - 20, inv->name,
	             (unsigned long long)now.tv_sec * 1000000000ULL +
	                 (unsigned long long)now.tv_nsec);
	if (n < 0 || (size_t)n >= sizeof(name))
		return -E2BIG;
	r = kube_path(path, sizeof(path), NULL, "v1", "events", ns, NULL, NULL);
	if (r < 0)
		return r;
	r = event_build(rec, inv, name, ns, type, reason, message, ts, &ev);
	if (r < 0)
		return r;
	r = kube_create(rec->client, path, ev, NULL, res);
	json_object_put(ev);
	if (r < 0)
		return r;
	e = entry_slot(rec);
	e->key = strdup(key);
	e->name = strdup(name);
	e->namespace = strdup(ns);
	if (!e->key || !e->name || !e->namespace ||
	    string_map_put(&rec->entry_index, e->key, e, NULL) < 0) {
		/* The Event is written; we only forget it. */
		entry_remove(rec, e);
		return 0;
	}
	e->count = 1;
	snprintf(e->first_timestamp, sizeof(e->first_timestamp), "%s", ts);
	e->used = ++rec->clock;
	return 0;
}

static int involved_read(const struct json_object *obj, struct involved *inv)
{
	inv->kind = json_field_str(obj, "kind");
	inv->api_version = json_field_str(obj, "apiVersion");
	inv->name = json_field_str_path(obj, JSON_FIELD_PATH("metadata", "name"));
	inv->namespace = json_field_str_path(obj, JSON_FIELD_PATH("metadata", "namespace"));
	inv->uid = json_field_str_path(obj, JSON_FIELD_PATH("metadata", "uid"));
	inv->resource_version =
	    json_field_str_path(obj, JSON_FIELD_PATH("metadata", "resourceVersion"));
	if (!inv->kind || !*inv->kind || !inv->api_version || !inv->name || !*inv->name)
		return -EINVAL;
	if (!inv->namespace)
		inv->namespace = "";
	if (!inv->uid)
		inv->uid = "";
	return 0;
}

/* The item's API call(s), with the spam filter and aggregation; on the writer thread only. */
static void write_one(struct kube_recorder *rec, const struct rec_item *it)
{
	const char *type_name = it->type == KUBE_RECORD_WARNING ? "Warning" : "Normal";
	const struct involved inv = {
	    .kind = it->kind,
	    .api_version = it->api_version,
	    .name = it->name,
	    .namespace = it->namespace,
	    .uid = it->uid,
	    .resource_version = it->resource_version,
	};
	struct kube_result res = {0};
	unsigned long *counter = NULL;
	struct rec_entry *e;
	struct buf spam_key, key;
	int r;

	/* Fields joined by a byte no Kubernetes name or reason holds. */
	buf_init(&spam_key, KANARY_MAX_URL);
	buf_init(&key, KANARY_MAX_URL + KUBE_EVENT_MESSAGE_MAX);
	r = buf_printf(&spam_key, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", rec->component,
	               rec->host, inv.api_version, inv.kind, inv.namespace, inv.name, inv.uid);
	if (r == 0)
		r = buf_printf(&key, "%s\x1f%s\x1f%s\x1f%s", spam_key.data, type_name, it->reason,
		               it->message);
	if (r < 0)
		goto out_failed;

	if (!spam_allow(rec, spam_key.data)) {
		counter = &rec->stats.dropped;
		goto out_count;
	}
	e = entry_find(rec, key.data);
	if (e) {
		e->used = ++rec->clock;
		r = event_bump(rec, e, it->message, it->ts, &res);
		if (r == 0) {
			counter = &rec->stats.patched;
			goto out_count;
		}
		if (res.reason != KUBE_REASON_NOT_FOUND)
			goto out_failed;
		/* The Event expired or was deleted: start a new one. */
		entry_remove(rec, e);
	}
	r = event_create(rec, &inv, key.data, type_name, it->reason, it->message, it->ts, &res);
	if (r == 0) {
		counter = &rec->stats.created;
		goto out_count;
	}
out_failed:
	counter = &rec->stats.failed;
	kube_log(rec->cfg, KUBE_LOG_WARNING, "event %s %s for %s %s/%s not written: %s: %s",
	         type_name, it->reason, inv.kind, inv.namespace, inv.name,
	         kube_reason_name(res.reason), res.message[0] ? res.message : strerror(-r));
out_count:
	pthread_mutex_lock(&rec->lock);
	(*counter)++;
	pthread_mutex_unlock(&rec->lock);
	buf_finish(&key);
	buf_finish(&spam_key);
}

/*
 * The writer: takes the queue's items in order and writes them. Once told to
 * stop it writes what is left, until kube_recorder_destroy runs out of
 * patience and raises abort; the rest is destroy's to drop.
 */
static void *writer_main(void *arg)
{
	struct kube_recorder *rec = arg;

	pthread_mutex_lock(&rec->lock);
	for (;;) {
		struct rec_item *it;
		unsigned long dropped;

		if (rec->stop && (rec->len == 0 || atomic_load(&rec->abort)))
			break;
		if (rec->len == 0) {
			pthread_cond_wait(&rec->wake, &rec->lock);
			continue;
		}
		it = rec->ring[rec->head];
		rec->head = (rec->head + 1) % rec->cap;
		rec->len--;
		rec->busy = true;
		dropped = 0;
		if (rec->len == 0 && rec->full) {
			/* The end of a run of drops: say how many went. */
			rec->full = false;
			dropped = rec->dropped_in_run;
			rec->dropped_in_run = 0;
		}
		pthread_mutex_unlock(&rec->lock);
		if (dropped)
			kube_log(rec->cfg, KUBE_LOG_WARNING,
			         "event queue has room again; %lu events were dropped while it was "
			         "full",
			         dropped);
		write_one(rec, it);
		item_free(it);
		pthread_mutex_lock(&rec->lock);
		rec->busy = false;
		if (rec->len == 0)
			pthread_cond_broadcast(&rec->idle);
	}
	rec->exited = true;
	pthread_cond_broadcast(&rec->idle);
	pthread_mutex_unlock(&rec->lock);
	return NULL;
}

static char *dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

int kube_record(struct kube_recorder *rec, const struct json_object *obj,
                enum kube_record_type type, const char *reason, const char *fmt, ...)
{
	struct involved inv;
	struct rec_item *it;
	bool oom = false, first_drop = false;
	unsigned long dropped = 0;
	va_list ap;
	int n, r;

	r = involved_read(obj, &inv);
	if (r < 0 || !reason || !*reason)
		return -EINVAL;
	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	va_start(ap, fmt);
	n = vsnprintf(it->message, sizeof(it->message), fmt, ap);
	va_end(ap);
	if (n < 0) {
		item_free(it);
		return -EINVAL;
	}
	if ((size_t)n >= sizeof(it->message))
		memcpy(it->message + sizeof(it->message) - 4, "...", 4);
	wallclock_rfc3339(it->ts, sizeof(it->ts));
	it->type = type;
	it->kind = dup_or_null(inv.kind, &oom);
	it->api_version = dup_or_null(inv.api_version, &oom);
	it->name = dup_or_null(inv.name, &oom);
	it->namespace = dup_or_null(inv.namespace, &oom);
	it->uid = dup_or_null(inv.uid, &oom);
	it->resource_version = dup_or_null(inv.resource_version, &oom);
	it->reason = dup_or_null(reason, &oom);
	if (oom) {
		item_free(it);
		return -ENOMEM;
	}

	pthread_mutex_lock(&rec->lock);
	if (rec->len == rec->cap) {
		rec->stats.queue_dropped++;
		rec->dropped_in_run++;
		first_drop = !rec->full;
		rec->full = true;
		dropped = rec->stats.queue_dropped;
		r = -ENOSPC;
	} else {
		rec->ring[(rec->head + rec->len) % rec->cap] = it;
		rec->len++;
		rec->stats.recorded++;
		pthread_cond_signal(&rec->wake);
		it = NULL;
		r = 0;
	}
	pthread_mutex_unlock(&rec->lock);
	if (first_drop)
		kube_log(rec->cfg, KUBE_LOG_WARNING,
		         "event queue full (%zu waiting for the API server): dropping %s %s for "
		         "%s %s/%s and every Event until it has room (%lu dropped in all)",
		         rec->cap, type == KUBE_RECORD_WARNING ? "Warning" : "Normal", reason,
		         inv.kind, inv.namespace, inv.name, dropped);
	item_free(it);
	return r;
}
