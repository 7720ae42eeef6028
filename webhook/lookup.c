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
#include "common/kobj.h"
#include "common/kube/client.h"
#include "common/kube/informer.h"
#include "common/kube/watch.h"
#include "common/limits.h"
#include "common/resolve.h"
#include "common/io/log.h"
#include "webhook/metrics.h"

#define COMPONENT "webhook"

struct lookup {
	struct kube_config *cfg;
	char *namespace; /* NULL: every namespace */
	long live_timeout_ms;
	struct metrics *metrics;
	struct kube_informer *services; /* struct kobj_service records */
	struct kube_informer *slices;   /* struct kobj_slice records, indexed by Service */

	/* Idle clients for live GETs; pool_lock guards them. */
	pthread_mutex_t pool_lock;
	struct kube_client *idle[KANARY_MAX_LOOKUP_CLIENTS];
	size_t n_idle;
};

int lookup_create(struct kube_config *cfg, const struct lookup_options *o, struct lookup **ret)
{
	char svc_path[KANARY_MAX_URL], slice_path[KANARY_MAX_URL];
	/* Resolution reads only the compact records: ports, endpoints, names. */
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
	pthread_mutex_init(&l->pool_lock, NULL);
	io.path = svc_path;
	io.decode = kobj_service_decode;
	r = kube_informer_create(cfg, &io, &l->services);
	if (r < 0)
		goto out_destroy;
	io.path = slice_path;
	io.decode = kobj_slice_decode;
	io.indexers[KUBE_INDEX_SLICE_SERVICE] = kube_index_slice_service;
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

void lookup_destroy(struct lookup *l)
{
	if (!l)
		return;
	kube_informer_destroy(l->services);
	kube_informer_destroy(l->slices);
	for (size_t i = 0; i < l->n_idle; i++)
		kube_client_destroy(l->idle[i]);
	pthread_mutex_destroy(&l->pool_lock);
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
 * Adds the Service ns/name to cat: the cached record (borrowed, no copy),
 * else the API server's answer. Nothing is added when it exists in neither.
 */
static int add_service(struct lookup *l, const char *ns, const char *name, struct catalog *cat,
                       bool *ret_found)
{
	char key[KANARY_MAX_KEY + 1], path[KANARY_MAX_URL];
	const struct kube_obj *cached;
	struct json_object *svc = NULL;
	struct kube_client *c;
	struct kube_result res;
	int r;

	*ret_found = false;
	r = snprintf(key, sizeof(key), "%s/%s", ns, name);
	if (r < 0 || (size_t)r >= sizeof(key))
		return -E2BIG;
	r = kube_informer_get_obj(l->services, key, &cached);
	if (r == 0) {
		metrics_lookup(l->metrics, METRICS_LOOKUP_CACHE);
		r = catalog_add_obj(cat, cached, ns);
		kube_obj_unref(cached);
		*ret_found = true;
		return r < 0 ? r : 0;
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
	r = catalog_add(cat, svc, ns);
	json_object_put(svc);
	*ret_found = true;
	return r < 0 ? r : 0;
}

/* Adds the cached EndpointSlices of Service ns/name to cat (borrowed, no copies). */
static int add_slices(struct lookup *l, const char *ns, const char *name, struct catalog *cat)
{
	char svc[KANARY_MAX_KEY + 1];
	const struct kube_obj **objs = NULL;
	size_t n = 0;
	int r;

	snprintf(svc, sizeof(svc), "%s/%s", ns, name);
	r = kube_informer_by_index(l->slices, KUBE_INDEX_SLICE_SERVICE, svc, &objs, &n);
	if (r < 0)
		return r;
	if (n > KANARY_MAX_SERVICE_SLICES)
		r = -E2BIG;
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = catalog_add_obj(cat, objs[i], ns);
	kube_objs_unref(objs, n);
	return r < 0 ? r : 0;
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
		bool seen = false, found;

		/* Malformed names are reported by validation; they name nothing to fetch. */
		if (!name || !kanary_is_dns1035_label(name))
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = k->routes[j].service_name &&
			       strcmp(k->routes[j].service_name, name) == 0;
		if (seen)
			continue;
		r = add_service(l, k->namespace, name, cat, &found);
		if (r < 0 || !found)
			continue;
		r = add_slices(l, k->namespace, name, cat);
	}
	return r < 0 ? r : 0;
}
