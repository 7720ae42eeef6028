/* SPDX-License-Identifier: Apache-2.0 */
/* What the controller watches, and which Kanary each change wakes. */
#include "controller/watches.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/kanary.h"
#include "common/kobj.h"
#include "common/kobj_child.h"
#include "common/json_field.h"
#include "common/kube/client.h"
#include "common/io/log.h"

/*
 * The informers and their handlers. Handlers run on the informer threads:
 * they keep the index and add keys to the queue, nothing else; reconcile
 * reads the caches. Which key an event wakes:
 * The caches hold records (common/kobj.h): Services and EndpointSlices
 * compact, Deployments, PodDisruptionBudgets and ReplicaSets what reconcile
 * reads (and for the first two a digest of what we applied: common/
 * kobj_child.h), ConfigMaps their metadata, Kanaries their JSON text
 * without managedFields and kubectl's last applied configuration.
 *   Kanary                       itself, at once
 *   Service, EndpointSlice       every Kanary naming that Service, after the batch
 *                                period, so a burst of endpoint changes makes one
 *                                reconcile and one rollout
 *   our ConfigMap, Deployment,   the Kanary named by its kanary.pyxida.io/name label,
 *   PDB, ReplicaSet, Service     at once (someone changed or deleted a child, a
 *                                rollout moved, an old ReplicaSet went away)
 */

struct watch_def {
	const char *name; /* for logs, metrics and /readyz */
	const char *group;
	const char *version;
	const char *resource;
	bool children; /* label-selected: only what we manage */
};

static const struct watch_def defs[WATCH_N] = {
    [WATCH_KANARIES] = {"kanaries", KANARY_GROUP, KANARY_VERSION_API, "kanaries", false},
    [WATCH_SERVICES] = {"services", "", "v1", "services", false},
    [WATCH_ENDPOINTSLICES] = {"endpointslices", "discovery.k8s.io", "v1", "endpointslices", false},
    [WATCH_CONFIGMAPS] = {"configmaps", "", "v1", "configmaps", true},
    [WATCH_DEPLOYMENTS] = {"deployments", "apps", "v1", "deployments", true},
    [WATCH_PDBS] = {"poddisruptionbudgets", "policy", "v1", "poddisruptionbudgets", true},
    [WATCH_REPLICASETS] = {"replicasets", "apps", "v1", "replicasets", true},
};

const char *watches_name(enum watched w)
{
	return defs[w].name;
}

/* "ns/name" into out; false when it does not fit or a part is missing. */
static bool join_key(char *out, size_t size, const char *ns, const char *name)
{
	int n;

	if (!ns || !name || !*ns || !*name)
		return false;
	n = snprintf(out, size, "%s/%s", ns, name);
	return n > 0 && (size_t)n < size;
}

static void enqueue(struct controller *c, const char *key, long delay_ms)
{
	int r = queue_add_after(c->queue, key, delay_ms);

	if (r < 0 && r != -ESHUTDOWN)
		log_msg(LOG_ERROR, key, "cannot queue: %s; the next resync brings it back",
		        strerror(-r));
}

/* Wakes every Kanary that names Service ns/svc, after the batch period. */
static void wake_referrers(struct controller *c, const char *ns, const char *svc)
{
	char group[KANARY_MAX_KEY + 1];
	char **keys = NULL;
	size_t n = 0;

	if (!join_key(group, sizeof(group), ns, svc))
		return;
	if (index_members(c->idx, INDEX_REFS, group, &keys, &n) < 0) {
		log_msg(LOG_ERROR, group, "cannot read the index; the next resync catches up");
		return;
	}
	for (size_t i = 0; i < n; i++)
		enqueue(c, keys[i], c->o.batch_period_ms);
	index_keys_free(keys, n);
}

/* Wakes the Kanary a child belongs to, by its label, at once. */
static void wake_owner(struct controller *c, const struct kube_obj *obj)
{
	const char *by = kube_obj_label(obj, CONTROLLER_LABEL_MANAGED_BY);
	char key[KANARY_MAX_KEY + 1];

	if (!by || strcmp(by, CONTROLLER_MANAGED_BY) != 0)
		return;
	if (join_key(key, sizeof(key), obj->ns, kube_obj_label(obj, CONTROLLER_LABEL_NAME)))
		enqueue(c, key, 0);
}

/* The Services a Kanary names: its backends and its destination, as "ns/name". */
static void index_kanary(struct controller *c, const struct kube_obj *rec)
{
	char groups[KANARY_MAX_ROUTES + 1][KANARY_MAX_KEY + 1];
	const char *gp[KANARY_MAX_ROUTES + 1];
	struct json_object *obj = NULL, *spec, *routes, *v;
	const char *ns = rec->ns;
	size_t n = 0;

	/* Read once per change of the Kanary, from its cached text. */
	if (kube_obj_parse(rec, &obj) < 0) {
		log_msg(LOG_ERROR, rec->key, "cannot index its Services: out of memory");
		return;
	}
	if (json_object_object_get_ex(obj, "spec", &spec)) {
		if (json_object_object_get_ex(spec, "destination", &v) &&
		    json_object_is_type(v, json_type_string) &&
		    join_key(groups[n], sizeof(groups[n]), ns, json_object_get_string(v)))
			n++;
		if (json_object_object_get_ex(spec, "routes", &routes) &&
		    json_object_is_type(routes, json_type_array))
			for (size_t i = 0;
			     i < json_object_array_length(routes) && n < KANARY_MAX_ROUTES + 1;
			     i++) {
				struct json_object *be, *sn;

				if (json_object_object_get_ex(json_object_array_get_idx(routes, i),
				                              "backend", &be) &&
				    json_object_object_get_ex(be, "serviceName", &sn) &&
				    json_object_is_type(sn, json_type_string) &&
				    join_key(groups[n], sizeof(groups[n]), ns,
				             json_object_get_string(sn)))
					n++;
			}
	}
	for (size_t i = 0; i < n; i++)
		gp[i] = groups[i];
	if (index_set(c->idx, INDEX_REFS, rec->key, gp, n) < 0)
		log_msg(LOG_ERROR, rec->key,
		        "cannot index its Services; endpoint changes may be missed "
		        "until the next resync");
	json_object_put(obj);
}

/* Indexes a ConfigMap or ReplicaSet under its Kanary (removes it when deleted). */
static void index_child(struct controller *c, enum index_rel rel, const struct kube_obj *obj,
                        bool deleted)
{
	char owner[KANARY_MAX_KEY + 1];
	const char *gp[1] = {owner};

	if (deleted ||
	    !join_key(owner, sizeof(owner), obj->ns, kube_obj_label(obj, CONTROLLER_LABEL_NAME))) {
		index_remove(c->idx, rel, obj->key);
		return;
	}
	if (index_set(c->idx, rel, obj->key, gp, 1) < 0)
		log_msg(LOG_ERROR, obj->key,
		        "cannot index; superseded ConfigMaps may stay until the "
		        "next resync");
}

static void on_event(struct watch_ctx *wc, const struct kube_obj *old, const struct kube_obj *obj,
                     bool deleted)
{
	struct controller *c = wc->c;

	if (!obj->ns[0])
		return;
	switch (wc->w) {
	case WATCH_KANARIES:
		if (deleted)
			index_remove(c->idx, INDEX_REFS, obj->key);
		else
			index_kanary(c, obj);
		enqueue(c, obj->key, 0);
		break;
	case WATCH_SERVICES:
		wake_owner(c, obj);
		wake_referrers(c, obj->ns, obj->name);
		break;
	case WATCH_ENDPOINTSLICES: {
		/* The informer's own index (KUBE_INDEX_SLICE_SERVICE) keeps Service -> slices. */
		const struct kobj_slice *sl = kobj_as_slice(obj), *old_sl = kobj_as_slice(old);
		const char *svc = sl ? sl->service : NULL;
		const char *old_svc = old_sl ? old_sl->service : NULL;

		if (svc)
			wake_referrers(c, obj->ns, svc);
		if (old_svc && (!svc || strcmp(old_svc, svc) != 0))
			wake_referrers(c, obj->ns, old_svc);
		break;
	}
	case WATCH_CONFIGMAPS:
		index_child(c, INDEX_CONFIGMAPS, obj, deleted);
		if (!old)
			wake_owner(c, obj);
		break;
	case WATCH_REPLICASETS:
		index_child(c, INDEX_REPLICASETS, obj, deleted);
		/* Only their coming and going matters: which ConfigMaps are still in use. */
		if (!old)
			wake_owner(c, obj);
		break;
	case WATCH_DEPLOYMENTS:
	case WATCH_PDBS:
		wake_owner(c, obj);
		break;
	case WATCH_N:
		break;
	}
}

static void h_add(void *ctx, const struct kube_obj *obj)
{
	on_event(ctx, NULL, obj, false);
}

static void h_update(void *ctx, const struct kube_obj *old_obj, const struct kube_obj *new_obj)
{
	on_event(ctx, old_obj, new_obj, false);
}

static void h_delete(void *ctx, const struct kube_obj *obj, bool final_state_unknown)
{
	/* A delete has no "old": children woken by it are woken whatever the event. */
	on_event(ctx, NULL, obj, true);
}

/*
 * A Kanary keeps its whole text but kubectl's copy of its last applied
 * configuration, which no reader uses and which repeats the spec.
 */
static const char *const kanary_dropped[] = {KOBJ_KUBECTL_LAST_APPLIED, NULL};

/*
 * Our children keep what reconcile reads of them and the digest of what we
 * last applied (apply compares it with what it would write). Deployments:
 * the rollout state, the pod selector, the config hash of the template and
 * the ConfigMaps it mounts. PodDisruptionBudgets: metadata only. Services
 * are compact records for resolution; our own (the destination Service)
 * also keep their ports and metadata as text, with the digest.
 */
static const char *const deployment_kept[] = {
    "spec.replicas",
    "spec.selector",
    "spec.template.metadata.annotations",
    "spec.template.spec.volumes[].configMap.name",
    "status.observedGeneration",
    "status.replicas",
    "status.updatedReplicas",
    "status.availableReplicas",
    NULL,
};

static const char *const service_kept[] = {"spec.ports", NULL};

/* ReplicaSets: which ConfigMaps their template mounts (the GC's question); no digest. */
static const char *const replicaset_kept[] = {"spec.template.spec.volumes[].configMap.name", NULL};

/*
 * ConfigMaps, metadata only: what apply compares (the metadata of want: its
 * labels, owner and hash annotation), the GC and wake_owner read. No digest:
 * a PartialObjectMetadata's managedFields list f:data, which its text lacks.
 */
static const char *const configmap_kept[] = {"metadata.annotations", NULL};

static const struct kobj_child_options configmap_records = {
    .keep = configmap_kept,
};

static const struct kobj_child_options replicaset_records = {
    .keep = replicaset_kept,
};

static const struct kobj_child_options deployment_records = {
    .manager = CONTROLLER_FIELD_MANAGER,
    .keep = deployment_kept,
};

static const struct kobj_child_options pdb_records = {
    .manager = CONTROLLER_FIELD_MANAGER,
};

static const struct kobj_child_options service_records = {
    .manager = CONTROLLER_FIELD_MANAGER,
    .keep = service_kept,
    .text_label = CONTROLLER_LABEL_MANAGED_BY,
    .text_value = CONTROLLER_MANAGED_BY,
};

int watches_create(struct controller *c)
{
	char path[KANARY_MAX_URL];
	int r;

	for (size_t w = 0; w < WATCH_N; w++) {
		struct kube_informer_options o = {0};

		r = kube_path(path, sizeof(path), defs[w].group, defs[w].version, defs[w].resource,
		              c->o.namespace, NULL, NULL);
		if (r < 0)
			return r;
		c->watch_ctx[w].c = c;
		c->watch_ctx[w].w = (enum watched)w;
		o.path = path;
		o.component = "controller";
		/* Child decoders digest managedFields and keep none. */
		o.drop_managed_fields = true;
		if (w == WATCH_SERVICES) {
			o.drop_managed_fields = false;
			o.decode = kobj_child_service_decode;
			o.decode_ctx = (void *)&service_records;
		} else if (w == WATCH_KANARIES) {
			o.decode = kobj_trimmed_decode;
			o.decode_ctx = (void *)kanary_dropped;
		} else if (w == WATCH_CONFIGMAPS) {
			o.decode = kobj_child_decode;
			o.decode_ctx = (void *)&configmap_records;
		} else if (w == WATCH_REPLICASETS) {
			o.decode = kobj_child_decode;
			o.decode_ctx = (void *)&replicaset_records;
		} else if (w == WATCH_DEPLOYMENTS || w == WATCH_PDBS) {
			o.drop_managed_fields = false;
			o.decode = kobj_child_decode;
			o.decode_ctx =
			    (void *)(w == WATCH_PDBS ? &pdb_records : &deployment_records);
		} else if (w == WATCH_ENDPOINTSLICES) {
			o.decode = kobj_slice_decode;
			o.indexers[KUBE_INDEX_SLICE_SERVICE] = kube_index_slice_service;
		}
		/* Immutable and named by their content: apply and the GC read only metadata. */
		o.metadata_only = w == WATCH_CONFIGMAPS;
		if (defs[w].children)
			o.label_selector = CONTROLLER_LABEL_MANAGED_BY "=" CONTROLLER_MANAGED_BY;
		o.handlers.on_add = h_add;
		o.handlers.on_update = h_update;
		o.handlers.on_delete = h_delete;
		o.handlers.ctx = &c->watch_ctx[w];
		r = kube_informer_create(c->cfg, &o, &c->inf[w]);
		if (r < 0)
			return r;
	}
	return 0;
}

int watches_start(struct controller *c)
{
	for (size_t w = 0; w < WATCH_N; w++) {
		int r = kube_informer_start(c->inf[w]);

		if (r < 0)
			return r;
	}
	return 0;
}

void watches_stop(struct controller *c)
{
	for (size_t w = 0; w < WATCH_N; w++)
		if (c->inf[w])
			kube_informer_stop(c->inf[w]);
}

void watches_destroy(struct controller *c)
{
	for (size_t w = 0; w < WATCH_N; w++) {
		kube_informer_destroy(c->inf[w]);
		c->inf[w] = NULL;
	}
}

bool watches_synced(struct controller *c, char *why, size_t size)
{
	for (size_t w = 0; w < WATCH_N; w++)
		if (!c->inf[w] || !kube_informer_has_synced(c->inf[w])) {
			if (why)
				snprintf(why, size, "informer for %s not synced", defs[w].name);
			return false;
		}
	return true;
}
