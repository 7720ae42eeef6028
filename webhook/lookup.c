/* SPDX-License-Identifier: Apache-2.0 */
/* The Services and EndpointSlices admission checks against: watch-fed caches and live GETs. */
#include "webhook/lookup.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/kanary.h"
#include "common/kube/client.h"
#include "common/kube/informer.h"
#include "common/kube/watch.h"
#include "common/limits.h"
#include "common/resolve.h"
#include "common/string_map.h"
#include "common/io/log.h"
#include "webhook/metrics.h"

#define SERVICE_NAME_LABEL "kubernetes.io/service-name"
#define COMPONENT          "webhook"

struct lookup {
	struct kube_config *cfg;
	char *namespace; /* NULL: every namespace */
	long live_timeout_ms;
	struct metrics *metrics;
	struct kube_informer *services;
	struct kube_informer *slices;

	/*
	 * "namespace/service" -> array of the keys of its EndpointSlices, kept by
	 * the slice informer's handlers, so a lookup reads only the slices of one
	 * Service (each array a json-c reference the map owns); index_lock
	 * guards it. No more entries than the slice informer holds objects.
	 */
	pthread_mutex_t index_lock;
	struct string_map index;

	/* Idle clients for live GETs; pool_lock guards them. */
	pthread_mutex_t pool_lock;
	struct kube_client *idle[KANARY_MAX_LOOKUP_CLIENTS];
	size_t n_idle;
};

/* "namespace/service" of a slice, from its label; false when it has none. */
static bool slice_service_key(const struct json_object *slice, char *out, size_t size)
{
	struct json_object *meta, *labels, *ns, *svc;
	int n;

	if (!json_object_object_get_ex(slice, "metadata", &meta) ||
	    !json_object_object_get_ex(meta, "labels", &labels) ||
	    !json_object_object_get_ex(labels, SERVICE_NAME_LABEL, &svc) ||
	    !json_object_is_type(svc, json_type_string) ||
	    !json_object_object_get_ex(meta, "namespace", &ns) ||
	    !json_object_is_type(ns, json_type_string))
		return false;
	n = snprintf(out, size, "%s/%s", json_object_get_string(ns), json_object_get_string(svc));
	return n > 0 && (size_t)n < size;
}

/* Called from the slice informer's thread; a failure to index is logged, not fatal. */
static void index_change(struct lookup *l, const struct json_object *slice, bool add)
{
	char svc[KANARY_MAX_KEY + 1], key[KANARY_MAX_KEY + 1];
	struct json_object *keys;

	if (!slice_service_key(slice, svc, sizeof(svc)) ||
	    kube_object_key(slice, key, sizeof(key)) < 0)
		return;
	pthread_mutex_lock(&l->index_lock);
	keys = string_map_get(&l->index, svc);
	if (!keys && add) {
		keys = json_object_new_array();
		if (!keys || string_map_put(&l->index, svc, keys, NULL) < 0) {
			json_object_put(keys);
			keys = NULL;
		}
	}
	for (size_t i = 0; keys && i < json_object_array_length(keys); i++) {
		if (strcmp(json_object_get_string(json_object_array_get_idx(keys, i)), key) == 0) {
			if (!add)
				json_object_array_del_idx(keys, i, 1);
			add = false; /* already there */
			break;
		}
	}
	if (keys && add) {
		struct json_object *s = json_object_new_string(key);
		if (!s || json_object_array_add(keys, s) != 0) {
			json_object_put(s);
			log_msg(LOG_WARNING, NULL, "EndpointSlice %s: out of memory indexing it",
			        key);
		}
	}
	if (keys && json_object_array_length(keys) == 0) {
		(void)string_map_remove(&l->index, svc, NULL);
		json_object_put(keys);
	}
	pthread_mutex_unlock(&l->index_lock);
}

static void on_slice_add(void *ctx, struct json_object *obj)
{
	index_change(ctx, obj, true);
}

static void on_slice_update(void *ctx, struct json_object *old_obj, struct json_object *new_obj)
{
	/* The service-name label may have changed: drop the old entry, add the new. */
	index_change(ctx, old_obj, false);
	index_change(ctx, new_obj, true);
}

static void on_slice_delete(void *ctx, struct json_object *obj, bool final_state_unknown)
{
	(void)final_state_unknown;
	index_change(ctx, obj, false);
}

int lookup_create(struct kube_config *cfg, const struct lookup_options *o, struct lookup **ret)
{
	char svc_path[KANARY_MAX_URL], slice_path[KANARY_MAX_URL];
	/* Resolution never reads managedFields; without them the caches and their copies are smaller. */
	struct kube_informer_options io = {.component = COMPONENT, .drop_managed_fields = true};
	struct lookup *l;
	int r;

	if (o->live_timeout_ms <= 0)
		return -EINVAL;
	r = kube_path(svc_path, sizeof(svc_path), NULL, "v1", "services", o->namespace, NULL, NULL);
	if (r == 0)
		r = kube_path(slice_path, sizeof(slice_path), "discovery.k8s.io", "v1",
		              "endpointslices", o->namespace, NULL, NULL);
	if (r < 0)
		return r;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->cfg = cfg;
	if (o->namespace) {
		l->namespace = strdup(o->namespace);
		if (!l->namespace) {
			free(l);
			return -ENOMEM;
		}
	}
	l->live_timeout_ms = o->live_timeout_ms;
	l->metrics = o->metrics;
	pthread_mutex_init(&l->index_lock, NULL);
	pthread_mutex_init(&l->pool_lock, NULL);
	string_map_init(&l->index, KANARY_MAX_INFORMER_OBJECTS);
	io.path = svc_path;
	r = kube_informer_create(cfg, &io, &l->services);
	if (r < 0)
		goto out_destroy;
	io.path = slice_path;
	io.handlers.on_add = on_slice_add;
	io.handlers.on_update = on_slice_update;
	io.handlers.on_delete = on_slice_delete;
	io.handlers.ctx = l;
	r = kube_informer_create(cfg, &io, &l->slices);
	if (r < 0)
		goto out_destroy;
	*ret = l;
	return 0;
out_destroy:
	lookup_destroy(l);
	return r;
}

int lookup_start(struct lookup *l)
{
	int r = kube_informer_start(l->services);

	if (r == 0)
		r = kube_informer_start(l->slices);
	return r;
}

static void put_keys(void *keys)
{
	json_object_put(keys);
}

void lookup_destroy(struct lookup *l)
{
	if (!l)
		return;
	/* Stopped first: their handlers write the index. */
	kube_informer_destroy(l->services);
	kube_informer_destroy(l->slices);
	for (size_t i = 0; i < l->n_idle; i++)
		kube_client_destroy(l->idle[i]);
	string_map_finish(&l->index, put_keys);
	pthread_mutex_destroy(&l->pool_lock);
	pthread_mutex_destroy(&l->index_lock);
	free(l->namespace);
	free(l);
}

bool lookup_synced(struct lookup *l)
{
	return kube_informer_has_synced(l->services) && kube_informer_has_synced(l->slices);
}

void lookup_counts(struct lookup *l, struct lookup_counts *ret)
{
	struct kube_informer_stats s, e;

	kube_informer_stats(l->services, &s);
	kube_informer_stats(l->slices, &e);
	ret->services = s.objects;
	ret->endpointslices = e.objects;
	ret->services_synced = s.synced;
	ret->endpointslices_synced = e.synced;
}

/* Ownership: the client is the caller's until pool_give. */
static int pool_take(struct lookup *l, struct kube_client **ret)
{
	const struct kube_client_options o = {
	    .component = COMPONENT,
	    .connect_timeout_ms = l->live_timeout_ms,
	    .request_timeout_ms = l->live_timeout_ms,
	};
	struct kube_client *c = NULL;

	pthread_mutex_lock(&l->pool_lock);
	if (l->n_idle > 0)
		c = l->idle[--l->n_idle];
	pthread_mutex_unlock(&l->pool_lock);
	if (c) {
		*ret = c;
		return 0;
	}
	return kube_client_create(l->cfg, &o, ret);
}

/* Takes c back; past the pool's size it is closed. */
static void pool_give(struct lookup *l, struct kube_client *c)
{
	pthread_mutex_lock(&l->pool_lock);
	if (l->n_idle < KANARY_MAX_LOOKUP_CLIENTS) {
		l->idle[l->n_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&l->pool_lock);
	kube_client_destroy(c);
}

/*
 * The Service ns/name from the cache, else from the API server. *ret_svc is
 * NULL when it exists in neither. Ownership: *ret_svc is the caller's to put.
 */
static int get_service(struct lookup *l, const char *ns, const char *name,
                       struct json_object **ret_svc)
{
	char key[KANARY_MAX_KEY + 1], path[KANARY_MAX_URL];
	struct json_object *svc = NULL;
	struct kube_client *c;
	struct kube_result res;
	int r;

	r = snprintf(key, sizeof(key), "%s/%s", ns, name);
	if (r < 0 || (size_t)r >= sizeof(key))
		return -E2BIG;
	r = kube_informer_get(l->services, key, &svc);
	if (r == 0) {
		metrics_lookup(l->metrics, METRICS_LOOKUP_CACHE);
		*ret_svc = svc;
		return 0;
	}
	if (r != -ENOENT)
		return r;
	r = kube_path(path, sizeof(path), NULL, "v1", "services", ns, name, NULL);
	if (r < 0)
		return r;
	r = pool_take(l, &c);
	if (r < 0)
		return r;
	r = kube_get(c, path, &svc, &res);
	pool_give(l, c);
	if (r == -ENOENT) {
		metrics_lookup(l->metrics, METRICS_LOOKUP_LIVE_NOT_FOUND);
		log_msg(LOG_DEBUG, NULL, "Service %s: not in the cache nor in the API server", key);
		*ret_svc = NULL;
		return 0;
	}
	if (r < 0) {
		metrics_lookup(l->metrics, METRICS_LOOKUP_LIVE_ERROR);
		log_msg(LOG_WARNING, NULL,
		        "Service %s: not in the cache, and the live GET failed: %s (HTTP %d): %s; "
		        "the admission request gets an error",
		        key, kube_reason_name(res.reason), res.http_status, res.message);
		return r;
	}
	metrics_lookup(l->metrics, METRICS_LOOKUP_LIVE_FOUND);
	log_msg(LOG_DEBUG, NULL, "Service %s: not in the cache yet, found by a live GET", key);
	*ret_svc = svc;
	return 0;
}

/* Adds the cached EndpointSlices of Service ns/name to cat. */
static int add_slices(struct lookup *l, const char *ns, const char *name, struct catalog *cat)
{
	char svc[KANARY_MAX_KEY + 1];
	struct json_object *keys, *copy = NULL;
	int r = 0;

	snprintf(svc, sizeof(svc), "%s/%s", ns, name);
	pthread_mutex_lock(&l->index_lock);
	keys = string_map_get(&l->index, svc);
	if (keys) {
		if (json_object_array_length(keys) > KANARY_MAX_SERVICE_SLICES)
			r = -E2BIG;
		else if (json_object_deep_copy(keys, &copy, NULL) != 0)
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&l->index_lock);
	for (size_t i = 0; r == 0 && copy && i < json_object_array_length(copy); i++) {
		struct json_object *slice = NULL;
		const char *key = json_object_get_string(json_object_array_get_idx(copy, i));
		int g = kube_informer_get(l->slices, key, &slice);
		if (g == -ENOENT)
			continue; /* deleted since the index was read */
		if (g < 0) {
			r = g;
			break;
		}
		g = catalog_add(cat, slice, ns);
		json_object_put(slice);
		if (g < 0)
			r = g;
	}
	json_object_put(copy);
	return r;
}

int lookup_fill(void *ctx, const struct kanary *k, struct catalog *cat)
{
	struct lookup *l = ctx;
	int r = 0;

	if (l->namespace && strcmp(k->namespace, l->namespace) != 0) {
		/*
		 * The webhook configurations' namespaceSelector sends only Kanaries
		 * of l->namespace; this one came anyway (the selector was edited).
		 * The identity may read nothing there: refuse rather than guess.
		 */
		log_msg(LOG_WARNING, NULL,
		        "Kanary %s/%s: outside --namespace %s, where this webhook may look up "
		        "nothing; refused (check the webhook configurations' namespaceSelector)",
		        k->namespace, k->name ? k->name : "", l->namespace);
		return -EACCES;
	}

	for (size_t i = 0; r == 0 && i < k->n_routes; i++) {
		const char *name = k->routes[i].service_name;
		struct json_object *svc = NULL;
		bool seen = false;

		/* Malformed names are reported by validation; they name nothing to fetch. */
		if (!name || !kanary_is_dns1035_label(name))
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = k->routes[j].service_name &&
			       strcmp(k->routes[j].service_name, name) == 0;
		if (seen)
			continue;
		r = get_service(l, k->namespace, name, &svc);
		if (r < 0 || !svc)
			continue;
		r = catalog_add(cat, svc, k->namespace);
		json_object_put(svc);
		if (r >= 0)
			r = add_slices(l, k->namespace, name, cat);
	}
	return r < 0 ? r : 0;
}
