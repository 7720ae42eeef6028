/* SPDX-License-Identifier: Apache-2.0 */
/* Applying one child of a Kanary: look it up, decide whether it needs a write, apply it. */
#include "controller/apply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/applied.h"
#include "common/io/log.h"
#include "common/json_field.h"
#include "common/kanary.h"
#include "common/kobj_child.h"
#include "common/render.h"
#include "controller/controller.h"

/*
 * What sets one kind apart; a NULL hook does the common thing. Each takes
 * the run, so what a hook learns goes where reconcile reads it.
 */
struct child_hooks {
	/* The cached object (NULL when absent), before anything is decided. */
	void (*seen)(struct apply_run *run, const struct json_object *live);
	/* It exists without our controller reference: apply_child's result. */
	int (*foreign)(struct apply_run *run, const char *name);
	/* The server refused an object not ours yet (-EBUSY): apply_child's result. */
	int (*refused)(struct apply_run *run, const char *name);
	/* Applied; runs before the memo records the write (it reads the last one). */
	void (*applied)(struct apply_run *run, struct child_memo *m, const char *name,
	                const struct json_object *live, const char *live_rv,
	                struct json_object *got);
};

struct child_kind {
	struct child_def def;
	struct child_hooks hooks;
	/*
	 * Its cache holds only the metadata (a metadata-only informer): it is
	 * immutable and named by its content's hash, so only the metadata can
	 * differ from what we would write.
	 */
	bool metadata_only;
};

static void copy_str(char *out, size_t size, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	/* Every field copied here has a ceiling below size; a longer one is dropped, not cut. */
	if (n >= size)
		n = 0;
	if (n)
		memcpy(out, s, n);
	out[n] = '\0';
}

uint64_t apply_rv_parse(const char *rv)
{
	uint64_t v = 0;
	size_t n = rv ? strlen(rv) : 0;

	if (n == 0)
		return 0;
	/* Decimal, 19 digits at most, no leading zero: anything else matches nothing. */
	if (n > 19 || (rv[0] == '0' && n > 1))
		return APPLY_RV_NEVER;
	for (size_t i = 0; i < n; i++) {
		if (rv[i] < '0' || rv[i] > '9')
			return APPLY_RV_NEVER;
		v = v * 10 + (uint64_t)(rv[i] - '0');
	}
	return v + 1; /* at most 10^19, below APPLY_RV_NEVER */
}

bool apply_rv_equal(uint64_t a, uint64_t b)
{
	return a == b && a != APPLY_RV_NEVER;
}

/* A hex SHA-256 into its 32 bytes; false when it is not one. */
static bool digest_raw(const char *hex, unsigned char out[32])
{
	for (size_t i = 0; i < 32; i++) {
		unsigned v = 0;

		for (size_t j = 0; j < 2; j++) {
			char c = hex[2 * i + j];

			if (c >= '0' && c <= '9')
				v = v * 16 + (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v * 16 + (unsigned)(c - 'a' + 10);
			else
				return false;
		}
		out[i] = (unsigned char)v;
	}
	return hex[64] == '\0';
}

static const char *resource_version(const struct json_object *o)
{
	const char *rv = json_field_str_path(o, JSON_FIELD_PATH("metadata", "resourceVersion"));

	return rv ? rv : "";
}

/* ---- the Deployment: the freshest view, and whether its configuration rolled ---- */

static void deployment_seen(struct apply_run *run, const struct json_object *live)
{
	/* The freshest view of the Deployment, for the rollout state and the GC. */
	json_object_put(run->deployment);
	run->deployment = live ? json_object_get((struct json_object *)live) : NULL;
}

static void deployment_applied(struct apply_run *run, struct child_memo *m, const char *name,
                               const struct json_object *live, const char *live_rv,
                               struct json_object *got)
{
	const char *before = NULL;

	/* The hash HAProxy ran before: the cache's, or our own write the cache has not seen. */
	if (live && apply_rv_equal(apply_rv_parse(live_rv), m->rv_before) && run->memo_hash &&
	    run->memo_hash[0] && m->name && strcmp(m->name, name) == 0)
		before = run->memo_hash;
	else if (live)
		before = apply_template_hash(live);
	if (before && strcmp(before, run->hash) != 0) {
		run->rolled = true;
		copy_str(run->rolled_from, sizeof(run->rolled_from), before);
	}
	if (run->memo_hash)
		copy_str(run->memo_hash, APPLY_HASH_SIZE, run->hash);
	json_object_put(run->deployment);
	run->deployment = json_object_get(got);
}

/* ---- the destination Service: never taken from another owner ---- */

static int service_foreign(struct apply_run *run, const char *name)
{
	snprintf(run->conflict, sizeof(run->conflict),
	         "Service %s exists and is not owned by this Kanary; it is left "
	         "alone until it is deleted or handed over",
	         name);
	return 0;
}

static int service_refused(struct apply_run *run, const char *name)
{
	snprintf(run->conflict, sizeof(run->conflict),
	         "Service %s exists and is managed by someone else; it is left alone", name);
	return 0;
}

static const struct child_kind kinds[CHILD_N] = {
    [CHILD_CONFIGMAP] = {{"ConfigMap", "", "v1", "configmaps"}, {0}, true},
    [CHILD_DEPLOYMENT] = {{"Deployment", "apps", "v1", "deployments"},
                          {.seen = deployment_seen, .applied = deployment_applied}},
    [CHILD_PDB] = {{"PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets"}, {0}},
    [CHILD_SERVICE] = {{"Service", "", "v1", "services"},
                       {.foreign = service_foreign, .refused = service_refused}},
    [CHILD_STATE] = {{"ConfigMap", "", "v1", "configmaps"}, {0}},
    [CHILD_SERVICEACCOUNT] = {{"ServiceAccount", "", "v1", "serviceaccounts"}, {0}},
    [CHILD_ROLE] = {{"Role", "rbac.authorization.k8s.io", "v1", "roles"}, {0}},
    [CHILD_ROLEBINDING] = {{"RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings"}, {0}},
};

const struct child_def *apply_child_def(enum child i)
{
	return &kinds[i].def;
}

bool apply_child_kind(const char *kind, enum child *ret)
{
	for (size_t i = 0; kind && i < CHILD_N; i++)
		if (strcmp(kind, kinds[i].def.kind) == 0) {
			*ret = (enum child)i;
			return true;
		}
	return false;
}

void apply_run_init(struct apply_run *run)
{
	run->deployment = NULL;
	run->conflict[0] = '\0';
	run->rolled = false;
	run->rolled_from[0] = '\0';
	run->retry_after_s = 0;
	run->failed_reason = NULL;
	run->failed[0] = '\0';
}

void apply_run_finish(struct apply_run *run)
{
	json_object_put(run->deployment);
	run->deployment = NULL;
}

const char *apply_permanent_reason(const struct apply_failure *f)
{
	switch (f->http_status) {
	case 409:
		return APPLY_REASON_CONFLICT;
	case 403:
		return APPLY_REASON_FORBIDDEN;
	case 400:
	case 422:
		return APPLY_REASON_INVALID;
	default:
		return NULL;
	}
}

bool apply_is_failure_reason(const char *reason)
{
	return reason && (strcmp(reason, APPLY_REASON_CONFLICT) == 0 ||
	                  strcmp(reason, APPLY_REASON_FORBIDDEN) == 0 ||
	                  strcmp(reason, APPLY_REASON_INVALID) == 0);
}

/* True when obj has a controller ownerReference to any Kanary. */
static bool controlled_by_a_kanary(const struct json_object *obj)
{
	struct json_object *refs;

	if (!json_object_object_get_ex(obj, "metadata", &refs) ||
	    !json_object_object_get_ex(refs, "ownerReferences", &refs) ||
	    !json_object_is_type(refs, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(refs); i++) {
		const struct json_object *ref = json_object_array_get_idx(refs, i);
		const char *ref_kind = json_field_str(ref, "kind");
		struct json_object *ctl;

		if (ref_kind && strcmp(ref_kind, KANARY_KIND) == 0 &&
		    json_object_object_get_ex(ref, "controller", &ctl) &&
		    json_object_get_boolean(ctl))
			return true;
	}
	return false;
}

bool apply_controlled_by(const struct json_object *obj, const char *uid)
{
	struct json_object *refs;

	if (!uid || !json_object_object_get_ex(obj, "metadata", &refs) ||
	    !json_object_object_get_ex(refs, "ownerReferences", &refs) ||
	    !json_object_is_type(refs, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(refs); i++) {
		const struct json_object *ref = json_object_array_get_idx(refs, i);
		const char *ref_uid = json_field_str(ref, "uid");
		const char *ref_kind = json_field_str(ref, "kind");
		struct json_object *ctl;

		if (ref_uid && strcmp(ref_uid, uid) == 0 && ref_kind &&
		    strcmp(ref_kind, KANARY_KIND) == 0 &&
		    json_object_object_get_ex(ref, "controller", &ctl) &&
		    json_object_get_boolean(ctl))
			return true;
	}
	return false;
}

const char *apply_template_hash(const struct json_object *dep)
{
	return json_field_str_path(dep, JSON_FIELD_PATH("spec", "template", "metadata",
	                                                "annotations", CONTROLLER_HASH_ANNOTATION));
}

/*
 * True when every field of want is in have with the same value (arrays: the
 * same length, item by item). The API server adds defaults but keeps what we
 * set, so an object that passed our apply is a superset of it; a false "no"
 * only costs an apply that changes nothing.
 */
static bool subset(const struct json_object *want, const struct json_object *have)
{
	if (!have)
		return false;
	switch (json_object_get_type(want)) {
	case json_type_object:
		if (!json_object_is_type(have, json_type_object))
			return false;
		json_object_object_foreach((struct json_object *)want, k, v)
		{
			struct json_object *hv;

			if (!json_object_object_get_ex(have, k, &hv) || !subset(v, hv))
				return false;
		}
		return true;
	case json_type_array:
		if (!json_object_is_type(have, json_type_array) ||
		    json_object_array_length(want) != json_object_array_length(have))
			return false;
		for (size_t i = 0; i < json_object_array_length(want); i++)
			if (!subset(json_object_array_get_idx(want, i),
			            json_object_array_get_idx(have, i)))
				return false;
		return true;
	case json_type_int:
		return json_object_is_type(have, json_type_int) &&
		       json_object_get_int64(want) == json_object_get_int64(have);
	case json_type_string:
		return json_object_is_type(have, json_type_string) &&
		       strcmp(json_object_get_string((struct json_object *)want),
		              json_object_get_string((struct json_object *)have)) == 0;
	case json_type_boolean:
		return json_object_is_type(have, json_type_boolean) &&
		       json_object_get_boolean(want) == json_object_get_boolean(have);
	case json_type_double:
		return json_object_is_type(have, json_type_double) &&
		       json_object_get_double(want) == json_object_get_double(have);
	case json_type_null:
		return json_object_is_type(have, json_type_null);
	}
	return false;
}

static int digest_of(const struct json_object *obj, char out[65])
{
	const char *s =
	    json_object_to_json_string_ext((struct json_object *)obj, JSON_C_TO_STRING_PLAIN);

	if (!s)
		return -ENOMEM;
	return render_hash(s, strlen(s), out);
}

/* ---- the three steps ---- */

/*
 * The cached child name of kind i, and whether it is ours. Ownership: *ret_live
 * (NULL when absent) is the caller's.
 */
static int lookup(struct apply_run *run, enum child i, const char *name,
                  struct json_object **ret_live, bool *ret_owned)
{
	const struct child_hooks *h = &kinds[i].hooks;
	struct json_object *live = NULL;
	int r;

	r = run->io->lookup(run->io->ctx, i, run->ns, name, &live);
	if (r < 0)
		return r;
	if (h->seen)
		h->seen(run, live);
	*ret_owned = live && apply_controlled_by(live, run->uid);
	*ret_live = live;
	return 0;
}

/*
 * True when live holds want. A cached child carries the digest of what we
 * last applied, from the API server's managedFields (common/kobj_child.h):
 * equal to want's, nobody took a field of ours since and want is what we
 * applied. Without one (an object read from the API server, or one with no
 * apply of ours), every field of want must be in live.
 */
static bool applied_or_subset(const struct json_object *want, const struct json_object *live)
{
	const char *applied = json_field_str(live, KOBJ_CHILD_APPLIED);
	char hex[65];

	if (!applied)
		return subset(want, live);
	return applied_digest_want(want, hex) == 0 && strcmp(applied, hex) == 0;
}

/* False when the cluster has want already: our own write (seen by the cache or not), or more. */
static bool needs_apply(const struct child_kind *k, const struct child_memo *m, const char *name,
                        const char *digest, const struct json_object *live, const char *live_rv,
                        const struct json_object *want)
{
	unsigned char raw[32];
	uint64_t rv = apply_rv_parse(live_rv);

	if (m->name && strcmp(m->name, name) == 0 && digest_raw(digest, raw) &&
	    memcmp(m->digest, raw, sizeof(raw)) == 0 &&
	    (apply_rv_equal(rv, m->rv_before) || apply_rv_equal(rv, m->rv_after)))
		return false;
	if (live && k->metadata_only)
		return !subset(json_field_get(want, "metadata"), json_field_get(live, "metadata"));
	return !(live && applied_or_subset(want, live));
}

/* Writes want and remembers the write in the child's memo. */
static int write_child(struct apply_run *run, enum child i, const char *name,
                       struct json_object *want, const struct json_object *live, bool owned,
                       const char *digest)
{
	const struct child_kind *k = &kinds[i];
	struct child_memo *m = &run->memo[i];
	const char *live_rv = live ? resource_version(live) : "";
	struct apply_failure fail = {0, 0, "", ""};
	struct json_object *got = NULL;
	int r;

	if (!run->io->may_write(run->io->ctx))
		return -ECANCELED;
	/*
	 * force takes back fields someone else changed on our own objects; an
	 * object we do not know yet is created without it, so one that appeared
	 * meanwhile under someone else conflicts instead of being taken over.
	 */
	r = run->io->apply(run->io->ctx, i, run->ns, name, want, owned, &got, &fail);
	if (r == -EBUSY && !owned && k->hooks.refused) {
		r = k->hooks.refused(run, name);
		goto out;
	}
	if (r < 0) {
		run->retry_after_s = fail.retry_after_s;
		run->failed_reason = apply_permanent_reason(&fail);
		snprintf(run->failed, sizeof(run->failed), "cannot apply %s %s: %s: %s",
		         k->def.kind, name, fail.reason,
		         fail.message[0] ? fail.message : "no message");
		goto out;
	}
	log_msg(LOG_DEBUG, run->key, "applied %s %s", k->def.kind, name);
	if (k->hooks.applied)
		k->hooks.applied(run, m, name, live, live_rv, got);
	if (!m->name || strcmp(m->name, name) != 0) {
		free(m->name);
		m->name = strdup(name); /* NULL out of memory: the memo then matches nothing */
	}
	m->rv_before = apply_rv_parse(live_rv);
	m->rv_after = apply_rv_parse(resource_version(got));
	if (!digest_raw(digest, m->digest))
		m->rv_before = m->rv_after = APPLY_RV_NEVER; /* not a digest: matches nothing */
out:
	json_object_put(got);
	return r;
}

void apply_memo_clear(struct child_memo *m)
{
	free(m->name);
	memset(m, 0, sizeof(*m));
}

int apply_child(struct apply_run *run, enum child i, struct json_object *want)
{
	const struct child_kind *k = &kinds[i];
	const char *name = json_field_str_path(want, JSON_FIELD_PATH("metadata", "name"));
	struct json_object *live = NULL;
	char digest[65];
	bool owned;
	int r;

	if (!name)
		return -EINVAL;
	r = lookup(run, i, name, &live, &owned);
	if (r < 0)
		goto out;
	if (live && !owned) {
		if (k->hooks.foreign) {
			r = k->hooks.foreign(run, name);
		} else if (controlled_by_a_kanary(live)) {
			/* An orphan of an earlier Kanary of this name: the garbage collector takes it. */
			snprintf(run->failed, sizeof(run->failed),
			         "%s %s still belongs to an earlier Kanary of this name; waiting "
			         "for the garbage collector",
			         k->def.kind, name);
			r = -EEXIST;
		} else {
			run->failed_reason = APPLY_REASON_CONFLICT;
			snprintf(run->failed, sizeof(run->failed),
			         "%s %s exists and is not controlled by this Kanary; it is left "
			         "alone until it is deleted or handed over",
			         k->def.kind, name);
			r = -EEXIST;
		}
		goto out;
	}
	r = digest_of(want, digest);
	if (r == 0 && needs_apply(k, &run->memo[i], name, digest, live,
	                          live ? resource_version(live) : "", want))
		r = write_child(run, i, name, want, live, owned, digest);
out:
	if (r < 0 && r != -ECANCELED && !run->failed[0])
		snprintf(run->failed, sizeof(run->failed), "cannot apply %s %s: %s", k->def.kind,
		         name, strerror(-r));
	json_object_put(live);
	return r;
}
