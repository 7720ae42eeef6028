/* SPDX-License-Identifier: Apache-2.0 */
/* Writing core/v1 Events about objects, aggregated and rate-limited as client-go does. */
#include "common/kube/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
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

struct kube_recorder {
	struct kube_config *cfg;
	struct kube_client *client;
	char *component;
	char *host;
	pthread_mutex_t lock;
	struct rec_entry *entries; /* KANARY_MAX_EVENT_CACHE slots */
	size_t n_entries;
	struct string_map entry_index; /* key -> its struct rec_entry in entries */
	struct spam_entry *spam;       /* KANARY_MAX_EVENT_CACHE slots */
	size_t n_spam;
	struct string_map spam_index; /* key -> its struct spam_entry in spam */
	unsigned long clock;
	struct kube_recorder_stats stats;
};

int kube_recorder_create(struct kube_config *cfg, const char *component, const char *host,
                         struct kube_recorder **ret)
{
	const struct kube_client_options co = {.component = component};
	struct kube_recorder *rec;
	int r = -ENOMEM;

	if (!component || !*component)
		return -EINVAL;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	rec->cfg = cfg;
	rec->component = strdup(component);
	rec->host = strdup(host ? host : "");
	rec->entries = calloc(KANARY_MAX_EVENT_CACHE, sizeof(*rec->entries));
	rec->spam = calloc(KANARY_MAX_EVENT_CACHE, sizeof(*rec->spam));
	string_map_init(&rec->entry_index, KANARY_MAX_EVENT_CACHE);
	string_map_init(&rec->spam_index, KANARY_MAX_EVENT_CACHE);
	if (!rec->component || !rec->host || !rec->entries || !rec->spam)
		goto out_free;
	r = kube_client_create(cfg, &co, &rec->client);
	if (r < 0)
		goto out_free;
	if (pthread_mutex_init(&rec->lock, NULL) != 0) {
		r = -ENOMEM;
		goto out_client;
	}
	*ret = rec;
	return 0;
out_client:
	kube_client_destroy(rec->client);
out_free:
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

void kube_recorder_destroy(struct kube_recorder *rec)
{
	if (!rec)
		return;
	for (size_t i = 0; i < rec->n_entries; i++)
		entry_clear(&rec->entries[i]);
	for (size_t i = 0; i < rec->n_spam; i++)
		free(rec->spam[i].key);
	string_map_finish(&rec->entry_index, NULL);
	string_map_finish(&rec->spam_index, NULL);
	pthread_mutex_destroy(&rec->lock);
	kube_client_destroy(rec->client);
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
	pthread_mutex_unlock(&rec->lock);
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

int kube_record(struct kube_recorder *rec, const struct json_object *obj,
                enum kube_record_type type, const char *reason, const char *fmt, ...)
{
	const char *type_name = type == KUBE_RECORD_WARNING ? "Warning" : "Normal";
	char message[KUBE_EVENT_MESSAGE_MAX], ts[WALLCLOCK_RFC3339_SIZE];
	struct kube_result res = {0};
	struct involved inv;
	struct rec_entry *e;
	struct buf spam_key, key;
	va_list ap;
	int n, r;

	r = involved_read(obj, &inv);
	if (r < 0 || !reason || !*reason)
		return -EINVAL;
	va_start(ap, fmt);
	n = vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= sizeof(message))
		memcpy(message + sizeof(message) - 4, "...", 4);
	wallclock_rfc3339(ts, sizeof(ts));

	/* Fields joined by a byte no Kubernetes name or reason holds. */
	buf_init(&spam_key, KANARY_MAX_URL);
	buf_init(&key, KANARY_MAX_URL + sizeof(message));
	r = buf_printf(&spam_key, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", rec->component,
	               rec->host, inv.api_version, inv.kind, inv.namespace, inv.name, inv.uid);
	if (r == 0)
		r = buf_printf(&key, "%s\x1f%s\x1f%s\x1f%s", spam_key.data, type_name, reason,
		               message);
	if (r < 0)
		goto out_keys;

	pthread_mutex_lock(&rec->lock);
	if (!spam_allow(rec, spam_key.data)) {
		rec->stats.dropped++;
		r = -EAGAIN;
		goto out_unlock;
	}
	e = entry_find(rec, key.data);
	if (e) {
		e->used = ++rec->clock;
		r = event_bump(rec, e, message, ts, &res);
		if (r == 0) {
			rec->stats.patched++;
			goto out_unlock;
		}
		if (res.reason != KUBE_REASON_NOT_FOUND)
			goto out_failed;
		/* The Event expired or was deleted: start a new one. */
		entry_remove(rec, e);
	}
	r = event_create(rec, &inv, key.data, type_name, reason, message, ts, &res);
	if (r == 0) {
		rec->stats.created++;
		goto out_unlock;
	}
out_failed:
	rec->stats.failed++;
	kube_log(rec->cfg, KUBE_LOG_WARNING, "event %s %s for %s %s/%s not written: %s: %s",
	         type_name, reason, inv.kind, inv.namespace, inv.name, kube_reason_name(res.reason),
	         res.message[0] ? res.message : strerror(-r));
out_unlock:
	pthread_mutex_unlock(&rec->lock);
out_keys:
	buf_finish(&key);
	buf_finish(&spam_key);
	return r;
}
