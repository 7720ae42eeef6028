/* SPDX-License-Identifier: Apache-2.0 */
/* Applying one child of a Kanary: look it up, decide whether it needs a write, apply it. */
#ifndef KANARY_CONTROLLER_APPLY_H
#define KANARY_CONTROLLER_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/limits.h"

struct json_object;

/* A configuration hash as text, with its NUL. */
#define APPLY_HASH_SIZE 65

/* The kinds of children a Kanary has. */
enum child {
	CHILD_CONFIGMAP = 0,
	CHILD_DEPLOYMENT,
	CHILD_PDB,
	CHILD_SERVICE,
	CHILD_STATE, /* the state ConfigMap (mutable), apart from the structure's */
	CHILD_SERVICEACCOUNT,
	CHILD_ROLE,
	CHILD_ROLEBINDING,
	CHILD_N,
};

/* Where a kind of child lives in the API. */
struct child_def {
	const char *kind;
	const char *group;
	const char *version;
	const char *resource;
};

const struct child_def *apply_child_def(enum child i);
/* The child kind named kind ("Deployment", ...); false for any other. */
bool apply_child_kind(const char *kind, enum child *ret);

/*
 * What a memo keeps of a resourceVersion: etcd's are decimal int64, 19
 * digits at most, kept as a number (one more than it; 0 is "no object").
 * Anything else, or longer, is APPLY_RV_NEVER, which matches nothing (the
 * memo then only costs a comparison with the cache).
 */
#define APPLY_RV_NEVER UINT64_MAX
uint64_t apply_rv_parse(const char *rv);
/* True when a and b are the same resourceVersion; APPLY_RV_NEVER equals nothing. */
bool apply_rv_equal(uint64_t a, uint64_t b);

/*
 * What this process last wrote for one child, kept between reconciles. The
 * object at the "before" version is our write not yet seen by the cache; at
 * the "after" version it is our write. resourceVersions are only compared
 * for equality. 56 bytes: hex digests and text versions were 208.
 */
struct child_memo {
	char *name; /* NULL until the first write; the memo's, freed by apply_memo_clear */
	unsigned char digest[32]; /* SHA-256 of what was written */
	uint64_t rv_before;       /* apply_rv_parse's */
	uint64_t rv_after;
};

/* Why a write failed, for the log and the retry. */
struct apply_failure {
	int retry_after_s;  /* the server's Retry-After, or 0 */
	int http_status;    /* 0 when no answer came */
	const char *reason; /* "Conflict", "Transport", ... (static text) */
	char message[KANARY_MAX_KUBE_MESSAGE];
};

/*
 * The Ready reasons of a failure that retrying alone does not end: someone
 * must change the cluster (a child made by someone else, a permission, an
 * object the API server refuses). Everything else (no answer, 429, 5xx, a
 * timeout) is transient.
 */
#define APPLY_REASON_CONFLICT  "ApplyConflict"
#define APPLY_REASON_FORBIDDEN "ApplyForbidden"
#define APPLY_REASON_INVALID   "ApplyInvalid"

/* The Ready reason for a failed write: one of the above, or NULL when transient. */
const char *apply_permanent_reason(const struct apply_failure *f);
/* True when reason is one of the APPLY_REASON_ ones. */
bool apply_is_failure_reason(const char *reason);

/* How apply_child reaches the cluster; the tests put fabricated objects behind it. */
struct apply_io {
	/*
	 * The cached child ns/name of kind i. Returns 0 with *ret NULL when absent.
	 * Ownership: *ret is the caller's.
	 */
	int (*lookup)(void *ctx, enum child i, const char *ns, const char *name,
	              struct json_object **ret);
	/* True while this process may write. */
	bool (*may_write)(void *ctx);
	/*
	 * Server-side applies want (borrowed) as ns/name, taking back fields others
	 * changed when force. -EBUSY for a conflict with another field manager; any
	 * failure fills *ret_fail. Ownership: *ret_got, the server's answer, is the
	 * caller's.
	 */
	int (*apply)(void *ctx, enum child i, const char *ns, const char *name,
	             struct json_object *want, bool force, struct json_object **ret_got,
	             struct apply_failure *ret_fail);
	void *ctx;
};

/* One reconcile's children: what apply_child needs, and what it found out. */
struct apply_run {
	/* Set by the caller. */
	const char *key;         /* the Kanary's "namespace/name", for the log */
	const char *ns;          /* the Kanary's namespace, also its children's */
	const char *uid;         /* the Kanary's: its controller reference makes a child ours */
	const char *hash;        /* the configuration hash being applied */
	struct child_memo *memo; /* CHILD_N entries, the caller's, kept between reconciles */
	/* The config hash of the Deployment last written (the caller's, kept with memo). */
	char *memo_hash; /* APPLY_HASH_SIZE bytes */
	const struct apply_io *io;

	/* Written by apply_child. */
	struct json_object *deployment; /* freshest known: our apply's answer, else the cache's */
	char conflict[KANARY_MAX_STATUS_MESSAGE]; /* the destination Service is someone else's */
	bool rolled;                              /* the Deployment's config hash changed */
	char rolled_from[65];                     /* ... from this one */
	int retry_after_s;                        /* a failed apply's Retry-After */
	/*
	 * Why apply_child failed, for the caller to log once: "apply Deployment
	 * x-haproxy: Conflict: ...". failed_reason is an APPLY_REASON_ when
	 * the failure is permanent (then failed is the Ready message), NULL when
	 * it is transient.
	 */
	const char *failed_reason;
	char failed[KANARY_MAX_STATUS_MESSAGE];
};

/* Zeroes run's outputs. */
void apply_run_init(struct apply_run *run);
/* Drops run->deployment. */
void apply_run_finish(struct apply_run *run);

/*
 * Frees what a memo holds and empties it. A child's name is kept at its own
 * length: a 254-byte array for each of the eight children was 2 KiB of every
 * Kanary's memo.
 */
void apply_memo_clear(struct child_memo *m);

/*
 * Server-side applies the child want (kind i, borrowed) when it differs from
 * what the cluster has: looks it up in the cache, skips it when it is our
 * own write or already holds every field of want, applies it otherwise.
 * A child that exists without our controller reference is never taken: the
 * destination Service is then reported in run->conflict (0), any other kind
 * is retried later (-EEXIST, run->failed_reason ApplyConflict, or NULL while
 * it still belongs to an earlier Kanary of this name, for the garbage
 * collector). -ECANCELED when a write is needed but this process may not
 * write; another negative errno from the cluster, to retry, with
 * run->failed and run->failed_reason saying why. Logs nothing: the caller
 * logs a failure once, with its retry.
 */
int apply_child(struct apply_run *run, enum child i, struct json_object *want);

/* True when obj has a controller ownerReference to the Kanary with this uid. */
bool apply_controlled_by(const struct json_object *obj, const char *uid);

/* The config hash a Deployment's pod template carries; NULL when none. Borrowed. */
const char *apply_template_hash(const struct json_object *dep);

#endif
