/* SPDX-License-Identifier: Apache-2.0 */
/* One reconcile of one Kanary: check, render, apply the children, collect garbage, write status. */
#include "controller/reconcile.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/io/wallclock.h"
#include "common/kanary_check.h"
#include "common/json_field.h"
#include "common/kobj.h"
#include "common/kerr.h"
#include "common/kube/client.h"
#include "common/kube/watch.h"
#include "common/limits.h"
#include "common/objects.h"
#include "common/render.h"
#include "common/resolve.h"
#include "common/io/log.h"
#include "common/io/monotonic.h"
#include "common/string_map.h"
#include "controller/apply.h"
#include "controller/pods.h"
#include "controller/state.h"
#include "controller/status.h"

/*
 * One reconcile of one Kanary, level-triggered as a client-go controller's sync: read the cache,
 * check and resolve the Kanary with the same function admission uses, render
 * with the same functions `render` uses, server-side apply what differs,
 * remove superseded ConfigMaps, write the status when it changed.
 *
 * The caches lag our own writes by a watch round trip, and a reconcile that
 * runs inside that window (woken by the event of a sibling write) must not
 * write again or tell again. So each Kanary has a memo of what this process
 * last wrote: per child the digest of the object applied and the
 * resourceVersions before and after the write, and the status with the
 * Kanary's resourceVersion it was computed from. A cached object still at
 * the "before" version is our write not yet seen; at the "after" version it
 * is our write. resourceVersions are only compared for equality.
 */

/* The cache each kind of child is found in. */
static const enum watched child_cache[CHILD_N] = {
    [CHILD_CONFIGMAP] = WATCH_CONFIGMAPS,
    [CHILD_DEPLOYMENT] = WATCH_DEPLOYMENTS,
    [CHILD_PDB] = WATCH_PDBS,
    [CHILD_SERVICE] = WATCH_SERVICES,
    /*
     * No informer that holds them (the ConfigMap informer keeps metadata only):
     * read with a GET. The state's GET is made once per reconcile
     * (state_in_force); the others change only when the Kanary is made.
     */
    [CHILD_STATE] = WATCH_N,
    [CHILD_SERVICEACCOUNT] = WATCH_N,
    [CHILD_ROLE] = WATCH_N,
    [CHILD_ROLEBINDING] = WATCH_N,
};

struct memo {
	struct child_memo child[CHILD_N];
	char deployment_hash[APPLY_HASH_SIZE]; /* the config hash of our last Deployment write */
	uint64_t
	    kanary_rv; /* the Kanary our last status write was computed from (apply_rv_parse) */
	char *status;  /* that write, as JSON text (a json-c tree is ~20x larger) */
	bool pods_unreadable;        /* the last LIST of its pods failed (told once) */
	struct pods_recheck recheck; /* while its rollout waits: when to look again */
};

static void memo_free(void *v)
{
	struct memo *m = v;

	if (!m)
		return;
	for (size_t i = 0; i < CHILD_N; i++)
		apply_memo_clear(&m->child[i]);
	free(m->status);
	free(m);
}

/* Every Kanary key's struct memo; the workers meet here, so it has a lock. */
struct reconcile_memos {
	pthread_mutex_t lock;
	struct string_map by_key;
};

int reconcile_memos_create(struct reconcile_memos **ret)
{
	struct reconcile_memos *ms;

	ms = calloc(1, sizeof(*ms));
	if (!ms)
		return -ENOMEM;
	if (pthread_mutex_init(&ms->lock, NULL) != 0) {
		free(ms);
		return -ENOMEM;
	}
	string_map_init(&ms->by_key, KANARY_MAX_QUEUE_KEYS);
	*ret = ms;
	return 0;
}

void reconcile_memos_destroy(struct reconcile_memos *ms)
{
	if (!ms)
		return;
	string_map_finish(&ms->by_key, memo_free);
	pthread_mutex_destroy(&ms->lock);
	free(ms);
}

/* The memo of key, created when absent; NULL out of memory. Only key's worker uses it. */
static struct memo *memo_get(struct reconcile_memos *ms, const char *key)
{
	struct memo *m;

	pthread_mutex_lock(&ms->lock);
	m = string_map_get(&ms->by_key, key);
	if (!m) {
		m = calloc(1, sizeof(*m));
		if (m && string_map_put(&ms->by_key, key, m, NULL) < 0) {
			free(m);
			m = NULL;
		}
	}
	pthread_mutex_unlock(&ms->lock);
	return m;
}

/* Forgets what reconcile remembered about key (the Kanary is gone). */
static void memo_forget(struct reconcile_memos *ms, const char *key)
{
	void *m = NULL;

	pthread_mutex_lock(&ms->lock);
	string_map_remove(&ms->by_key, key, &m);
	pthread_mutex_unlock(&ms->lock);
	memo_free(m);
}

/* ---- small readers ---- */

static const char *resource_version(const struct json_object *o)
{
	const char *rv = kube_object_resource_version(o);

	return rv ? rv : "";
}

/* ---- one reconcile ---- */

struct rc {
	struct controller *c;
	struct kube_client *kc;
	const char *key;
	char ns[KANARY_MAX_DNS_LABEL + 1];
	struct json_object *obj; /* the Kanary, parsed from its cached record (our own tree) */
	struct memo *memo;
	struct kanary *k;
	struct apply_io io;   /* the caches and the client, for apply_child */
	struct apply_run run; /* the children: what applying them found out */
	struct reconcile_outcome *out;
	/* The state ConfigMap as the API server has it now (NULL: none), read once. */
	struct json_object *state_live;
	bool state_read;
};

static void fail(struct rc *rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Says what failed, for the worker's one log line; the first failure of a reconcile wins. */
static void fail(struct rc *rc, const char *fmt, ...)
{
	va_list ap;

	if (rc->out->error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(rc->out->error, sizeof(rc->out->error), fmt, ap);
	va_end(ap);
}

/* Looks up ns/name in a cache. Ownership: *ret (NULL when absent) is the caller's. */
static int cache_get(struct controller *c, enum watched w, const char *ns, const char *name,
                     struct json_object **ret)
{
	char key[KANARY_MAX_KEY + 1];
	int n = snprintf(key, sizeof(key), "%s/%s", ns, name);
	int r;

	*ret = NULL;
	if (n < 0 || (size_t)n >= sizeof(key))
		return -E2BIG;
	r = kube_informer_get(c->inf[w], key, ret);
	return r == -ENOENT ? 0 : r;
}

/* Adds the cached Services the Kanary names and their EndpointSlices to cat (borrowed, no copies). */
static int fill_catalog(struct rc *rc, struct catalog *cat)
{
	static const char *const routes_path[] = {"spec", "routes", NULL};
	struct json_object *routes = json_field_path(rc->obj, routes_path);
	int r = 0;

	if (!routes || !json_object_is_type(routes, json_type_array))
		return 0;
	for (size_t i = 0; r >= 0 && i < json_object_array_length(routes); i++) {
		static const char *const sn_path[] = {"backend", "serviceName", NULL};
		const char *svc =
		    json_field_str_path(json_object_array_get_idx(routes, i), sn_path);
		char key[KANARY_MAX_KEY + 1];
		const struct kube_obj *o = NULL, **slices = NULL;
		size_t n = 0;

		if (!svc || !kanary_is_dns1035_label(svc))
			continue;
		snprintf(key, sizeof(key), "%s/%s", rc->ns, svc);
		r = kube_informer_get_obj(rc->c->inf[WATCH_SERVICES], key, &o);
		if (r == 0) {
			r = catalog_add_obj(cat, o, rc->ns);
			kube_obj_unref(o);
		} else if (r == -ENOENT) {
			r = 0;
		}
		if (r >= 0)
			r = kube_informer_by_index(rc->c->inf[WATCH_ENDPOINTSLICES],
			                           KUBE_INDEX_SLICE_SERVICE, key, &slices, &n);
		for (size_t s = 0; r >= 0 && s < n; s++)
			r = catalog_add_obj(cat, slices[s], rc->ns);
		kube_objs_unref(slices, n);
	}
	return r < 0 ? r : 0;
}

static void record(struct rc *rc, enum kube_record_type type, const char *reason, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static void record(struct rc *rc, enum kube_record_type type, const char *reason, const char *fmt,
                   ...)
{
	char msg[KUBE_EVENT_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(type == KUBE_RECORD_WARNING ? LOG_WARNING : LOG_INFO, rc->key, "%s: %s", reason,
	        msg);
	if (!controller_may_write(rc->c))
		return;
	/* Queued, never waited for: the recorder's thread writes it and logs a failure itself. */
	(void)kube_record(rc->c->recorder, rc->obj, type, reason, "%s", msg);
}

/* An Event whose news this attempt's failure line in the log already carries. */
static void record_unlogged(struct rc *rc, enum kube_record_type type, const char *reason,
                            const char *msg)
{
	if (controller_may_write(rc->c))
		(void)kube_record(rc->c->recorder, rc->obj, type, reason, "%s", msg);
}

/*
 * True for a Ready reason that retrying alone does not end and that the
 * worker's failure line tells with each attempt: a child the API server keeps
 * refusing, or a destination Service someone else has.
 */
static bool retried_failure(const char *reason)
{
	return apply_is_failure_reason(reason) ||
	       (reason && strcmp(reason, STATUS_REASON_SERVICE_CONFLICT) == 0);
}

/* ---- what apply_child reaches the cluster through ---- */

static int io_lookup(void *ctx, enum child i, const char *ns, const char *name,
                     struct json_object **ret)
{
	const struct child_def *d = apply_child_def(i);
	struct rc *rc = ctx;
	char path[KANARY_MAX_URL];
	struct kube_result res;
	int r;

	if (child_cache[i] != WATCH_N)
		return cache_get(rc->c, child_cache[i], ns, name, ret);
	*ret = NULL;
	if (i == CHILD_STATE && rc->state_read) {
		*ret = rc->state_live ? json_object_get(rc->state_live) : NULL;
		return 0;
	}
	r = kube_path(path, sizeof(path), d->group, d->version, d->resource, ns, name, NULL);
	if (r < 0)
		return r;
	r = kube_get(rc->kc, path, ret, &res);
	if (r == -ENOENT) {
		json_object_put(*ret);
		*ret = NULL;
		return 0;
	}
	if (r < 0) {
		/*
		 * A read the controller may not make (403) is a permission it
		 * lacks, as for a write: the status says so (ApplyForbidden).
		 */
		if (res.http_status == 403 && !rc->run.failed[0]) {
			rc->run.failed_reason = APPLY_REASON_FORBIDDEN;
			snprintf(rc->run.failed, sizeof(rc->run.failed), "cannot get %s %s: %s: %s",
			         d->kind, name, kube_reason_name(res.reason),
			         res.message[0] ? res.message : "no message");
		}
		/* Told by the worker's one line for this attempt, with the retry. */
		fail(rc, "get %s %s: %s (%s)", d->kind, name, kube_reason_name(res.reason),
		     res.message);
	}
	return r;
}

static bool io_may_write(void *ctx)
{
	struct rc *rc = ctx;

	return controller_may_write(rc->c);
}

static int io_apply(void *ctx, enum child i, const char *ns, const char *name,
                    struct json_object *want, bool force, struct json_object **ret_got,
                    struct apply_failure *ret_fail)
{
	const struct child_def *d = apply_child_def(i);
	struct rc *rc = ctx;
	char path[KANARY_MAX_URL];
	struct kube_result res;
	int r;

	r = kube_path(path, sizeof(path), d->group, d->version, d->resource, ns, name, NULL);
	if (r < 0) {
		*ret_fail = (struct apply_failure){0, 0, "Path", "object path too long"};
		return r;
	}
	r = kube_apply(rc->kc, path, want, CONTROLLER_FIELD_MANAGER, force, ret_got, &res);
	if (r < 0) {
		ret_fail->retry_after_s = res.retry_after_s;
		ret_fail->http_status = res.http_status;
		ret_fail->reason = kube_reason_name(res.reason);
		snprintf(ret_fail->message, sizeof(ret_fail->message), "%s", res.message);
	}
	return r;
}

/* Adds the ConfigMap names a pod template mounts to set. */
static int template_configmaps(const struct json_object *obj, struct string_map *set)
{
	static const char *const path[] = {"spec", "template", "spec", "volumes", NULL};
	struct json_object *vols = json_field_path(obj, path);
	int r;

	if (!vols || !json_object_is_type(vols, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(vols); i++) {
		static const char *const cm[] = {"configMap", "name", NULL};
		const char *name = json_field_str_path(json_object_array_get_idx(vols, i), cm);

		if (name) {
			r = string_map_put(set, name, NULL, NULL);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/*
 * Deletes this Kanary's ConfigMaps that no pod template uses any more: not
 * the current one, none a ReplicaSet of the Deployment still mounts (old
 * ReplicaSets are kept for rollback, each with its own config), none the
 * Deployment mounts. With ReplicaSets around, only once the deployment
 * controller has seen the Deployment's current generation, so the ReplicaSet
 * of a new template is not missed. A cluster with no ReplicaSets at all for
 * this Deployment and no deployment controller status keeps the current and
 * the Deployment's own.
 */
static int collect_garbage(struct rc *rc, const char *current, const char *state_name)
{
	static const char *const gen_path[] = {"metadata", "generation", NULL};
	static const char *const ogen_path[] = {"status", "observedGeneration", NULL};
	struct json_object *dep = rc->run.deployment;
	char **cms = NULL, **rss = NULL;
	size_t ncm = 0, nrs = 0, candidates = 0;
	struct string_map in_use;
	int64_t gen, ogen;
	bool observed;
	int r;

	r = index_members(rc->c->idx, INDEX_CONFIGMAPS, rc->key, &cms, &ncm);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ncm; i++)
		if (strcmp(strchr(cms[i], '/') + 1, current) != 0 &&
		    strcmp(strchr(cms[i], '/') + 1, state_name) != 0)
			candidates++;
	if (candidates == 0)
		goto out_cms;
	string_map_init(&in_use, KANARY_MAX_INDEX_ENTRIES);
	r = string_map_put(&in_use, current, NULL, NULL);
	/* The state is no structure: it lives as long as the Kanary. */
	if (r >= 0)
		r = string_map_put(&in_use, state_name, NULL, NULL);
	if (r < 0)
		goto out_set;
	r = index_members(rc->c->idx, INDEX_REPLICASETS, rc->key, &rss, &nrs);
	if (r < 0)
		goto out_set;
	observed = json_field_int_path(dep, ogen_path, &ogen);
	if (nrs > 0 || observed) {
		if (!observed || !json_field_int_path(dep, gen_path, &gen) || gen != ogen)
			goto out_rss; /* the Deployment's status update wakes us again */
	}
	if (dep)
		r = template_configmaps(dep, &in_use);
	for (size_t i = 0; r >= 0 && i < nrs; i++) {
		struct json_object *rs = NULL;

		r = kube_informer_get(rc->c->inf[WATCH_REPLICASETS], rss[i], &rs);
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r >= 0)
			r = template_configmaps(rs, &in_use);
		json_object_put(rs);
	}
	for (size_t i = 0; r >= 0 && i < ncm; i++) {
		const char *name = strchr(cms[i], '/') + 1;
		struct json_object *cm = NULL;
		struct kube_delete_options dopt = {.grace_period_s = -1};
		char path[KANARY_MAX_URL];
		struct kube_result res;
		static const char *const uid_path[] = {"metadata", "uid", NULL};

		if (string_map_contains(&in_use, name))
			continue;
		r = kube_informer_get(rc->c->inf[WATCH_CONFIGMAPS], cms[i], &cm);
		if (r == -ENOENT) {
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		if (!apply_controlled_by(cm, rc->k->uid)) {
			json_object_put(cm);
			continue;
		}
		dopt.uid = json_field_str_path(cm, uid_path);
		r = kube_path(path, sizeof(path), "", "v1", "configmaps", rc->ns, name, NULL);
		if (r >= 0 && !controller_may_write(rc->c))
			r = -ECANCELED;
		if (r >= 0) {
			r = kube_delete(rc->kc, path, &dopt, NULL, &res);
			if (r == 0)
				log_msg(LOG_INFO, rc->key,
				        "deleted ConfigMap %s: no pod template uses it any more",
				        name);
			else if (r == -ENOENT)
				r = 0;
			else
				fail(rc, "delete ConfigMap %s: %s (%s)", name,
				     kube_reason_name(res.reason), res.message);
		}
		json_object_put(cm);
	}
out_rss:
	index_keys_free(rss, nrs);
out_set:
	string_map_finish(&in_use, NULL);
out_cms:
	index_keys_free(cms, ncm);
	return r < 0 ? r : 0;
}

/* Whether the Deployment runs hash on every replica, all of them available. */
static enum status_rollout rollout_state(const struct json_object *dep, const char *hash)
{
	static const char *const gen[] = {"metadata", "generation", NULL};
	static const char *const ogen[] = {"status", "observedGeneration", NULL};
	static const char *const want[] = {"spec", "replicas", NULL};
	static const char *const have[] = {"status", "replicas", NULL};
	static const char *const upd[] = {"status", "updatedReplicas", NULL};
	static const char *const avail[] = {"status", "availableReplicas", NULL};
	int64_t g, og, w, h = 0, u = 0, a = 0;
	const char *th = apply_template_hash(dep);

	if (!dep || !hash || !th || strcmp(th, hash) != 0 || !json_field_int_path(dep, gen, &g) ||
	    !json_field_int_path(dep, ogen, &og) || og < g || !json_field_int_path(dep, want, &w))
		return STATUS_ROLLOUT_PROGRESSING;
	json_field_int_path(dep, have, &h);
	json_field_int_path(dep, upd, &u);
	json_field_int_path(dep, avail, &a);
	return u >= w && a >= w && h <= w ? STATUS_ROLLOUT_DONE : STATUS_ROLLOUT_PROGRESSING;
}

/*
 * The label selector of the Deployment's pods, "k=v,k=v", from its
 * spec.selector.matchLabels (what common/objects.c gave it). False when
 * there is none or it does not fit.
 */
static bool pod_selector(const struct json_object *dep, char *out, size_t size)
{
	static const char *const path[] = {"spec", "selector", "matchLabels", NULL};
	struct json_object *ml = json_field_path(dep, path);
	size_t len = 0;

	if (!ml || !json_object_is_type(ml, json_type_object) || json_object_object_length(ml) == 0)
		return false;
	json_object_object_foreach(ml, k, v)
	{
		int n;

		if (!json_object_is_type(v, json_type_string))
			return false;
		n = snprintf(out + len, size - len, "%s%s=%s", len ? "," : "", k,
		             json_object_get_string(v));
		if (n < 0 || (size_t)n >= size - len)
			return false;
		len += (size_t)n;
	}
	return true;
}

/*
 * Why the rollout waits, from the HAProxy pods: one LIST of the namespace's
 * pods with the Deployment's selector (served from the API server's cache),
 * only while the rollout is pending. True when *ret holds a diagnosis. A
 * failed LIST costs only the detail: Ready still says the rollout waits.
 */
static bool diagnose_pods(struct rc *rc, struct pods_diagnosis *ret)
{
	struct kube_list_options lo = {.resource_version = "0", .page_size = -1};
	char selector[KANARY_MAX_SELECTOR + 1], path[KANARY_MAX_URL];
	struct json_object *list = NULL;
	struct kube_result res;
	struct timespec now;
	int r;

	if (!rc->run.deployment || !pod_selector(rc->run.deployment, selector, sizeof(selector)))
		return false;
	lo.label_selector = selector;
	r = kube_path(path, sizeof(path), "", "v1", "pods", rc->ns, NULL, NULL);
	if (r < 0)
		return false;
	r = kube_list(rc->kc, path, &lo, &list, &res);
	if (r == -ECANCELED)
		return false;
	if (r < 0) {
		if (!rc->memo->pods_unreadable)
			log_msg(
			    LOG_WARNING, rc->key,
			    "cannot list its HAProxy pods (%s): %s (%s); Ready will not say why "
			    "the rollout waits (the controller needs list on pods); trying "
			    "again with the rollout's next look, from %lds up to every %lds",
			    selector, kube_reason_name(res.reason), res.message,
			    PODS_RECHECK_FIRST_MS / 1000, PODS_RECHECK_MAX_MS / 1000);
		rc->memo->pods_unreadable = true;
		return false;
	}
	rc->memo->pods_unreadable = false;
	clock_gettime(CLOCK_REALTIME, &now);
	r = pods_diagnose(list, (int64_t)now.tv_sec, ret);
	json_object_put(list);
	return r == 0;
}

static int write_status(struct rc *rc, struct json_object *st)
{
	struct json_object *patch, *got = NULL;
	const char *rv, *text;
	char path[KANARY_MAX_URL];
	struct kube_result res;
	int r;

	if (!controller_may_write(rc->c))
		return -ECANCELED;
	r = kube_path(path, sizeof(path), KANARY_GROUP, KANARY_VERSION_API, "kanaries", rc->ns,
	              rc->k->name, "status");
	if (r < 0)
		return r;
	patch = json_object_new_object();
	if (!patch || json_object_object_add(patch, "status", json_object_get(st))) {
		json_object_put(patch);
		return -ENOMEM;
	}
	/* A merge patch: no resourceVersion to conflict on; we are the only writer of status. */
	r = kube_patch(rc->kc, path, KUBE_PATCH_MERGE, patch, &got, &res);
	json_object_put(patch);
	if (r == -ENOENT) {
		json_object_put(got);
		return 0; /* deleted meanwhile: the delete event ends it */
	}
	if (r < 0) {
		rc->run.retry_after_s = res.retry_after_s;
		fail(rc, "write status: %s (%s)", kube_reason_name(res.reason), res.message);
		return r;
	}
	rv = resource_version(rc->obj);
	/* A resourceVersion that is not etcd's is not remembered (the memo then never matches). */
	rc->memo->kanary_rv = apply_rv_parse(rv);
	text = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN);
	free(rc->memo->status);
	/* Out of memory the memo stays empty: the next reconcile writes the status again. */
	rc->memo->status = text ? strdup(text) : NULL;
	json_object_put(got);
	return 0;
}

struct empty_ctx {
	struct rc *rc;
};

static void on_newly_empty(void *ctx, const char *service, int64_t weight)
{
	struct empty_ctx *e = ctx;

	record(e->rc, KUBE_RECORD_WARNING, STATUS_REASON_NO_ENDPOINTS,
	       "route to Service %s (weight %lld) has no ready endpoint; its connections go to "
	       "the other routes",
	       service, (long long)weight);
}

/*
 * What the HAProxy pods showed, told when Ready's reason changes: a problem
 * as a Warning (and a log line), its end as a log line. A message that
 * follows the pods (a restart count, another pod) changes the status, not
 * the reason, so a look-again every few seconds tells nothing new.
 */
static void rollout_events(struct rc *rc, const struct json_object *old_st,
                           const struct json_object *st)
{
	static const char *const k_status[] = {"status", NULL};
	static const char *const k_reason[] = {"reason", NULL};
	static const char *const k_msg[] = {"message", NULL};
	const struct json_object *was = status_condition(old_st, STATUS_COND_READY);
	const struct json_object *now = status_condition(st, STATUS_COND_READY);
	const char *old_reason = json_field_str_path(was, k_reason),
	           *reason = json_field_str_path(now, k_reason);
	bool old_pods = status_waits_on_rollout(old_st) && old_reason &&
	                strcmp(old_reason, STATUS_REASON_ROLLOUT) != 0;
	bool pods =
	    status_waits_on_rollout(st) && reason && strcmp(reason, STATUS_REASON_ROLLOUT) != 0;

	if (!reason || (old_reason && strcmp(old_reason, reason) == 0))
		return;
	if (pods)
		record(rc, KUBE_RECORD_WARNING, reason, "%s", json_field_str_path(now, k_msg));
	else if (old_pods)
		log_msg(LOG_INFO, rc->key, "HAProxy pods no longer %s; Ready %s: %s: %s",
		        old_reason, json_field_str_path(now, k_status), reason,
		        json_field_str_path(now, k_msg));
}

static void condition_events(struct rc *rc, const struct json_object *old_st,
                             const struct json_object *st)
{
	static const char *const k_status[] = {"status", NULL};
	static const char *const k_reason[] = {"reason", NULL};
	static const char *const k_msg[] = {"message", NULL};
	const struct json_object *ready = status_condition(st, STATUS_COND_READY);
	const struct json_object *refs = status_condition(st, STATUS_COND_RESOLVED_REFS);
	struct empty_ctx e = {rc};

	if (status_condition_changed(old_st, st, STATUS_COND_RESOLVED_REFS) && refs &&
	    strcmp(json_field_str_path(refs, k_status), "False") == 0)
		record(rc, KUBE_RECORD_WARNING, json_field_str_path(refs, k_reason), "%s",
		       json_field_str_path(refs, k_msg));
	if (status_condition_changed(old_st, st, STATUS_COND_READY) && ready &&
	    strcmp(json_field_str_path(ready, k_status), "False") == 0) {
		const char *reason = json_field_str_path(ready, k_reason);

		/* Missing references were told above; a rollout in progress is no warning. */
		if (strcmp(reason, STATUS_REASON_INVALID_SPEC) == 0)
			record(rc, KUBE_RECORD_WARNING, reason, "%s",
			       json_field_str_path(ready, k_msg));
		else if (retried_failure(reason))
			record_unlogged(rc, KUBE_RECORD_WARNING, reason,
			                json_field_str_path(ready, k_msg));
	}
	if (retried_failure(
	        json_field_str_path(status_condition(old_st, STATUS_COND_READY), k_reason)) &&
	    !retried_failure(json_field_str_path(ready, k_reason)))
		record(rc, KUBE_RECORD_NORMAL, "Applied",
		       "every child is applied again; Ready is %s: %s: %s",
		       json_field_str_path(ready, k_status), json_field_str_path(ready, k_reason),
		       json_field_str_path(ready, k_msg));
	rollout_events(rc, old_st, st);
	status_newly_empty(old_st, st, on_newly_empty, &e);
}

/*
 * When to look again at a rollout that waits (st says it does): from
 * PODS_RECHECK_FIRST_MS, twice as long each time a look finds what Ready
 * says, the Kanary's generation and the Deployment as before (pods.h). The
 * delay is logged at -v 1 when it changes, not with every look: a stuck
 * rollout was told once already, by the Warning of its reason.
 */
static long recheck_after(struct rc *rc, const struct json_object *st)
{
	static const char *const k_status[] = {"status", NULL};
	static const char *const k_reason[] = {"reason", NULL};
	static const char *const k_msg[] = {"message", NULL};
	const struct json_object *ready = status_condition(st, STATUS_COND_READY);
	char gen[24];
	const char *seen[5];
	bool told;
	long d;

	snprintf(gen, sizeof(gen), "%lld", (long long)rc->k->generation);
	seen[0] = json_field_str_path(ready, k_status);
	seen[1] = json_field_str_path(ready, k_reason);
	seen[2] = json_field_str_path(ready, k_msg);
	seen[3] = gen;
	seen[4] = resource_version(rc->run.deployment);
	d = pods_recheck_next(&rc->memo->recheck, pods_recheck_print(seen, 5), monotonic_ms(),
	                      &told);
	if (told)
		log_msg(LOG_DEBUG, rc->key, "Ready %s: next look at the rollout in %lds",
		        seen[1] ? seen[1] : "?", d / 1000);
	return d;
}

/* The per-route series of what is in force. */
static void update_metrics(struct rc *rc, const struct json_object *st)
{
	static const char *const routes_path[] = {"routes", NULL};
	struct json_object *routes = json_field_path(st, routes_path);
	struct metrics_route mr[KANARY_MAX_ROUTES];
	size_t n = 0;

	for (size_t i = 0; routes && json_object_is_type(routes, json_type_array) &&
	                   i < json_object_array_length(routes) && n < KANARY_MAX_ROUTES;
	     i++) {
		const struct json_object *r = json_object_array_get_idx(routes, i);
		static const char *const sn[] = {"serviceName", NULL};
		static const char *const w[] = {"weight", NULL};
		static const char *const ep[] = {"endpoints", NULL};

		if (!json_field_str_path(r, sn))
			continue;
		mr[n].service = json_field_str_path(r, sn);
		mr[n].weight = 0;
		mr[n].endpoints = 0;
		json_field_int_path(r, w, &mr[n].weight);
		json_field_int_path(r, ep, &mr[n].endpoints);
		n++;
	}
	if (metrics_set_routes(rc->c->metrics, rc->key, mr, n) < 0)
		log_msg(LOG_WARNING, rc->key, "cannot update its route metrics");
}

/*
 * The state in force, from the state ConfigMap as the API server has it now
 * (a GET: the ConfigMap informer keeps no data), so slots and generation
 * follow it across restarts and leader changes. *ret is NULL when there is
 * none. The ConfigMap read stays in rc for apply_child's look-up.
 * Ownership: *ret is the caller's.
 */
static int state_in_force(struct rc *rc, const char *state_name, struct json_object **ret)
{
	struct json_object *cm = NULL;
	int r;

	*ret = NULL;
	r = io_lookup(rc, CHILD_STATE, rc->ns, state_name, &cm);
	if (r < 0) {
		fail(rc, "get ConfigMap %s: %s", state_name, strerror(-r));
		return r;
	}
	rc->state_live = cm;
	rc->state_read = true;
	*ret = state_from_configmap(cm);
	return 0;
}

/*
 * Renders and applies every child; on success cm_name names the structure
 * ConfigMap in force and *ret_state_gen is the state's generation. Slots
 * are kept from the state in force, so a weight or endpoint change renders
 * the same structure and writes only the state ConfigMap.
 */
static int apply_all(struct rc *rc, const struct kanary_resolution *res, char *cm_name,
                     size_t cm_size, char *state_name, size_t state_size, char hash[65],
                     int64_t *ret_state_gen)
{
	struct json_object *objs = NULL, *prev = NULL, *st = NULL;
	int slots[KANARY_MAX_ROUTES];
	const char *state_text;
	char *cfg = NULL;
	size_t len;
	int r;

	r = objects_state_name(rc->k, state_name, state_size);
	if (r < 0) {
		fail(rc, "state name: %s", strerror(-r));
		return r;
	}
	r = state_in_force(rc, state_name, &prev);
	if (r < 0)
		return r;
	r = state_slots(rc->k, res, prev, slots);
	if (r == 0)
		r = render_structure(rc->k, res, slots, &rc->c->o.objects.render, &cfg, &len);
	if (r < 0) {
		fail(rc, "render: %s", strerror(-r));
		goto out;
	}
	r = render_hash(cfg, len, hash);
	if (r == 0)
		r = state_build(rc->k, res, slots, hash, prev, &st);
	state_text = st ? json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN) : NULL;
	if (r == 0 && !state_text)
		r = -ENOMEM;
	if (r == 0)
		r = objects_desired(rc->k, cfg, hash, state_text, &rc->c->o.objects, &objs);
	if (r == 0)
		r = objects_configmap_name(rc->k, hash, cm_name, cm_size);
	if (r < 0) {
		fail(rc, "desired objects: %s", strerror(-r));
		goto out;
	}
	if (prev && state_diff(prev, st) == STATE_LIVE)
		log_msg(LOG_DEBUG, rc->key, "state generation %lld: weights or endpoints only",
		        (long long)state_generation(st));
	rc->run.hash = hash;
	rc->run.uid = rc->k->uid;
	for (size_t i = 0; r == 0 && i < json_object_array_length(objs); i++) {
		struct json_object *o = json_object_array_get_idx(objs, i);
		const char *name = json_field_str_path(o, JSON_FIELD_PATH("metadata", "name"));
		enum child ci;

		if (!apply_child_kind(json_field_str(o, "kind"), &ci)) {
			r = -EINVAL;
			break;
		}
		if (ci == CHILD_CONFIGMAP && name && strcmp(name, state_name) == 0)
			ci = CHILD_STATE;
		r = apply_child(&rc->run, ci, o);
	}
	if (r == 0)
		*ret_state_gen = state_generation(st);
	if (r < 0 && rc->run.failed[0])
		fail(rc, "%s", rc->run.failed);
out:
	json_object_put(objs);
	json_object_put(st);
	json_object_put(prev);
	free(cfg);
	return r;
}

int reconcile(struct controller *c, struct kube_client *kc, const char *key,
              struct reconcile_outcome *ret_outcome)
{
	static const char *const del_path[] = {"metadata", "deletionTimestamp", NULL};
	static const char *const status_path[] = {"status", NULL};
	struct rc rc = {.c = c, .kc = kc, .key = key, .out = ret_outcome};
	struct json_object *st = NULL, *old_st = NULL;
	struct kanary_resolution res;
	struct status_problems problems;
	struct status_facts facts;
	struct pods_diagnosis pods;
	bool diagnosed = false;
	struct catalog *cat = NULL;
	struct kerr_list errs;
	struct buf errtext;
	char cm_name[KANARY_MAX_NAME + 1], state_name[KANARY_MAX_NAME + 1], hash[65],
	    now[WALLCLOCK_RFC3339_SIZE];
	int64_t state_gen = 0;
	const char *slash = strchr(key, '/');
	const char *old_hash;
	unsigned defaulted;
	bool applied = false;
	int r, apply_r = 0;

	*ret_outcome = (struct reconcile_outcome){0};
	if (!slash || (size_t)(slash - key) >= sizeof(rc.ns))
		return 0;
	memcpy(rc.ns, key, (size_t)(slash - key));
	rc.ns[slash - key] = '\0';
	r = kube_informer_get(c->inf[WATCH_KANARIES], key, &rc.obj);
	if (r == -ENOENT) {
		/* Gone: its children go with it through their ownerReferences. */
		memo_forget(c->memos, key);
		metrics_forget(c->metrics, key);
		return 0;
	}
	if (r < 0)
		return r;
	if (json_field_path(rc.obj, del_path)) {
		r = 0;
		goto out_obj;
	}
	rc.memo = memo_get(c->memos, key);
	r = rc.memo ? catalog_create(&cat) : -ENOMEM;
	if (r == 0) {
		rc.run.key = key;
		rc.run.ns = rc.ns;
		rc.run.memo = rc.memo->child;
		rc.run.memo_hash = rc.memo->deployment_hash;
		rc.io = (struct apply_io){
		    .lookup = io_lookup, .may_write = io_may_write, .apply = io_apply, .ctx = &rc};
		rc.run.io = &rc.io;
	}
	if (r < 0)
		goto out_obj;
	r = fill_catalog(&rc, cat);
	if (r < 0)
		goto out_cat;
	kerr_init(&errs);
	buf_init(&errtext, KANARY_MAX_STATUS_MESSAGE);
	r = kanary_check(rc.obj, cat, KANARY_CHECK_REQUIRE_NAME, &rc.k, &res, &defaulted, &errs);
	if (r < 0)
		goto out_errs;
	status_classify(rc.k, &res, &errs, &problems);
	if (kerr_any(&errs) && kerr_join(&errs, "; ", &errtext) < 0)
		buf_reset(&errtext);

	/* The status in force: ours when the cache has not caught up with our last write. */
	old_st = json_object_get(json_field_path(rc.obj, status_path));
	if (rc.memo->status &&
	    apply_rv_equal(rc.memo->kanary_rv, apply_rv_parse(resource_version(rc.obj)))) {
		json_object_put(old_st);
		/* Out of memory this is NULL: the status is then written again, no harm. */
		old_st = json_tokener_parse(rc.memo->status);
	} else if (rc.memo->status) {
		/*
		 * The cache holds a newer Kanary than the one our write was computed
		 * from, so it holds that write (or what came after it): the copy is
		 * no longer needed (at 10,000 Kanaries they took 7 MiB).
		 */
		free(rc.memo->status);
		rc.memo->status = NULL;
	}

	if (!kerr_any(&errs)) {
		r = apply_all(&rc, &res, cm_name, sizeof(cm_name), state_name, sizeof(state_name),
		              hash, &state_gen);
		/* A transient failure leaves the status alone; a permanent one goes into it. */
		if (r < 0 && !rc.run.failed_reason)
			goto out_res;
		apply_r = r;
		applied = r == 0;
		r = applied ? collect_garbage(&rc, cm_name, state_name) : 0;
		if (r < 0)
			goto out_res;
	} else {
		struct json_object *dep = NULL;
		char dname[KANARY_MAX_NAME + 1];

		/* Nothing is applied: HAProxy keeps the last good configuration. */
		if (rc.k->name &&
		    snprintf(dname, sizeof(dname), "%s-haproxy", rc.k->name) < (int)sizeof(dname) &&
		    cache_get(c, WATCH_DEPLOYMENTS, rc.ns, dname, &dep) == 0)
			rc.run.deployment = dep;
	}

	old_hash = status_config_hash(old_st);
	wallclock_rfc3339(now, sizeof(now));
	facts = (struct status_facts){
	    .generation = rc.k->generation,
	    .k = rc.k,
	    .res = &res,
	    .problems = problems,
	    .errors = errtext.len ? errtext.data : NULL,
	    .applied = applied,
	    .config_hash = applied ? hash : NULL,
	    .conflict = rc.run.conflict[0] ? rc.run.conflict : NULL,
	    .apply_reason = apply_r < 0 ? rc.run.failed_reason : NULL,
	    .apply_message = apply_r < 0 ? rc.run.failed : NULL,
	    .rollout = rollout_state(rc.run.deployment, applied ? hash : old_hash),
	    .now = now,
	};
	/* Only a rollout that waits, of a configuration served as it is, has pods to ask. */
	if (facts.rollout != STATUS_ROLLOUT_DONE && applied && !facts.conflict)
		diagnosed = diagnose_pods(&rc, &pods);
	if (diagnosed && pods.verdict != PODS_STARTING) {
		facts.pods_reason = pods_reason(pods.verdict);
		facts.pods_message = pods.message;
	}
	r = status_build(&facts, old_st, &st);
	if (r < 0)
		goto out_res;
	if (rc.run.rolled)
		record(&rc, KUBE_RECORD_NORMAL, "RolloutTriggered",
		       "Deployment %s-haproxy rolls HAProxy from configuration %.8s to %.8s",
		       rc.k->name, rc.run.rolled_from, hash);
	if (!old_st || !json_object_equal((struct json_object *)old_st, st)) {
		r = write_status(&rc, st);
		if (r < 0)
			goto out_res;
		if (applied && (!old_hash || strcmp(old_hash, hash) != 0)) {
			static const char *const summary_path[] = {"summary", NULL};

			if (old_hash)
				record(&rc, KUBE_RECORD_NORMAL, "ConfigChanged",
				       "configuration %.8s replaced by %.8s (ConfigMap %s): %s",
				       old_hash, hash, cm_name,
				       json_field_str_path(st, summary_path));
			else
				record(&rc, KUBE_RECORD_NORMAL, "ConfigChanged",
				       "configuration %.8s applied (ConfigMap %s): %s", hash,
				       cm_name, json_field_str_path(st, summary_path));
		}
		condition_events(&rc, old_st, st);
	}
	update_metrics(&rc, st);
	if (status_waits_on_rollout(st))
		ret_outcome->recheck_ms = recheck_after(&rc, st);
	else
		rc.memo->recheck = (struct pods_recheck){0};
	/*
	 * The status says it; the queue's backoff retries it. A destination
	 * Service of someone else is retried too, so it is taken up once it is
	 * gone even if the watch missed that (its deletion also wakes us).
	 */
	r = apply_r;
	if (r == 0 && facts.conflict) {
		fail(&rc, "%s", facts.conflict);
		r = -EEXIST;
	}
out_res:
	ret_outcome->retry_after_s = rc.run.retry_after_s;
	json_object_put(old_st);
	json_object_put(st);
	kanary_resolution_finish(&res);
	kanary_destroy(rc.k);
out_errs:
	buf_finish(&errtext);
	kerr_finish(&errs);
out_cat:
	catalog_destroy(cat);
out_obj:
	json_object_put(rc.state_live);
	apply_run_finish(&rc.run);
	json_object_put(rc.obj);
	return r;
}
