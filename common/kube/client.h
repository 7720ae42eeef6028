/* SPDX-License-Identifier: Apache-2.0 */
/* Requests to the API server: paths, GET, LIST, server-side apply, PATCH, watches. */
#ifndef KANARY_KUBE_CLIENT_H
#define KANARY_KUBE_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/kube/config.h"
#include "common/limits.h"

struct buf;
struct json_object;

/*
 * Requests to the API server over libcurl, bodies in json-c.
 *
 * A kube_client owns one CURL easy handle and reuses its connection, so it
 * belongs to one thread at a time: give each thread its own client (they may
 * share one kube_config). Every request re-reads the bearer token when its
 * file changed (kube_config_token), sends "User-Agent: kanary[-component]/VERSION",
 * speaks HTTP/1.1, and is bounded by a connect timeout and a request timeout.
 *
 * Every call returns 0 on a 2xx answer, or a negative errno, and fills res
 * (which may be NULL) in both cases: the HTTP status, a reason decoded from
 * the metav1.Status body (or from the status code when the body is not a
 * Status), its message and any Retry-After. The errno follows the reason:
 *   NOT_FOUND -ENOENT, ALREADY_EXISTS -EEXIST, CONFLICT -EBUSY, GONE -ESTALE,
 *   UNAUTHORIZED -EPERM, FORBIDDEN -EACCES, INVALID and BAD_REQUEST -EINVAL,
 *   TOO_MANY_REQUESTS -EAGAIN, TIMEOUT -ETIMEDOUT, TRANSPORT -ECONNREFUSED,
 *   BAD_RESPONSE -EBADMSG (-E2BIG past KANARY_MAX_RESPONSE), ABORTED -ECANCELED,
 *   anything else -EIO; local failures -ENOMEM, -E2BIG (URL), -EINVAL (arguments,
 *   or a bearer token for an http:// server the config does not allow it for).
 *
 * The bearer token's copies (the one from kube_config_token, the header line
 * and libcurl's copy of it in the header list) are wiped with explicit_bzero
 * before they are freed. libcurl's own request buffer, which holds the line
 * while it is sent, is libcurl's and is not wiped.
 *
 * Not done here, on purpose: retrying. client-go retries a 429 or a 5xx with
 * Retry-After inside the call; our daemons requeue the key through their rate
 * limited work queue instead (with retry_after_s as a floor), so a worker
 * thread never sleeps inside a request.
 */

enum kube_reason {
	KUBE_REASON_NONE = 0, /* success */
	KUBE_REASON_UNKNOWN,  /* an HTTP error without a reason we know */
	KUBE_REASON_BAD_REQUEST,
	KUBE_REASON_UNAUTHORIZED,
	KUBE_REASON_FORBIDDEN,
	KUBE_REASON_NOT_FOUND,
	KUBE_REASON_METHOD_NOT_ALLOWED,
	KUBE_REASON_ALREADY_EXISTS,
	KUBE_REASON_CONFLICT,
	KUBE_REASON_GONE, /* 410: Gone or Expired; relist */
	KUBE_REASON_REQUEST_TOO_LARGE,
	KUBE_REASON_UNSUPPORTED_MEDIA_TYPE,
	KUBE_REASON_INVALID,
	KUBE_REASON_TOO_MANY_REQUESTS,
	KUBE_REASON_INTERNAL,
	KUBE_REASON_SERVICE_UNAVAILABLE,
	KUBE_REASON_TIMEOUT,      /* ours (connect, request) or the server's */
	KUBE_REASON_TRANSPORT,    /* no answer: DNS, TCP, TLS, a dropped connection */
	KUBE_REASON_BAD_RESPONSE, /* an answer we cannot read, or one past its ceiling */
	KUBE_REASON_ABORTED,      /* the abort flag was raised */
	KUBE_REASON_CLIENT,       /* we could not build the request (memory, token, length) */
};

struct kube_result {
	int http_status; /* 0 when no answer came */
	enum kube_reason reason;
	int retry_after_s; /* Retry-After header or details.retryAfterSeconds; 0 none */
	char message[KANARY_MAX_KUBE_MESSAGE];
};

/* "NotFound", "Conflict", ... as the API server spells them; "Transport" etc. for ours. */
const char *kube_reason_name(enum kube_reason reason);
/* The negative errno that goes with a reason (0 for NONE). */
int kube_reason_errno(enum kube_reason reason);

/*
 * Decodes a metav1.Status (an error body, or the object of a watch ERROR
 * event) into res. Without a usable Status the reason comes from http_status.
 * Returns the errno that goes with the reason.
 */
int kube_result_from_status(const struct json_object *status, int http_status,
                            struct kube_result *res);

/* Call once from main before any thread starts; libcurl needs it. */
int kube_global_init(void);
void kube_global_cleanup(void);

struct kube_client_options {
	const char *component;     /* User-Agent "kanary-<component>/VERSION"; NULL: "kanary" */
	const char *field_manager; /* fieldManager for create, update and patch; NULL: none */
	long connect_timeout_ms;   /* 0: KUBE_CONNECT_TIMEOUT_MS */
	long request_timeout_ms;   /* 0: KUBE_REQUEST_TIMEOUT_MS (not for watches) */
};

#define KUBE_CONNECT_TIMEOUT_MS 10000L
#define KUBE_REQUEST_TIMEOUT_MS 60000L
/* LIST page size when none is given (client-go's pager). */
#define KUBE_LIST_PAGE_SIZE 500

struct kube_client;

/*
 * cfg is borrowed and must outlive the client; options are copied.
 * Ownership: *ret is the caller's, freed with kube_client_destroy.
 */
int kube_client_create(struct kube_config *cfg, const struct kube_client_options *o,
                       struct kube_client **ret);
void kube_client_destroy(struct kube_client *c);

struct kube_config *kube_client_config(struct kube_client *c);

/*
 * A transfer in progress stops (KUBE_REASON_ABORTED) within about a second
 * of *flag becoming true. The flag is borrowed; NULL removes it.
 */
void kube_client_set_abort(struct kube_client *c, const atomic_bool *flag);

/* TCP connections this client opened so far; stays put while one is reused. */
unsigned long kube_client_connections(const struct kube_client *c);
/* Requests this client sent so far (every LIST page, every watch). */
unsigned long kube_client_requests(const struct kube_client *c);

/* ---- paths and queries ---- */

/*
 * "/api/v1[/namespaces/<ns>]/<resource>[/<name>[/<sub>]]" for the core group
 * (group NULL or ""), else "/apis/<group>/<version>/...". ns NULL: cluster
 * scope or every namespace. name and sub may be NULL. Each segment is
 * percent-escaped; empty, "." and ".." segments are refused with -EINVAL.
 * -E2BIG when the path does not fit in size bytes.
 */
int kube_path(char *out, size_t size, const char *group, const char *version, const char *resource,
              const char *ns, const char *name, const char *sub);

/* Appends "key=value" (value percent-escaped) to q, with '&' after the first. */
int kube_query_add(struct buf *q, const char *key, const char *value);

/* ---- requests ---- */

enum kube_method {
	KUBE_GET = 0,
	KUBE_POST,
	KUBE_PUT,
	KUBE_PATCH,
	KUBE_DELETE,
};

struct kube_request {
	enum kube_method method;
	const char *path;  /* from kube_path */
	const char *query; /* from kube_query_add, or NULL */
	const char *body;  /* NULL: none */
	size_t body_len;
	const char *content_type; /* NULL: application/json */
	const char *accept;       /* the Accept header's value; NULL: JSON */
};

/*
 * One request. On success *ret_obj (if ret_obj is not NULL) is the decoded
 * body, NULL for an empty one.
 * Ownership: *ret_obj is a new reference the caller puts.
 */
int kube_request(struct kube_client *c, const struct kube_request *req,
                 struct json_object **ret_obj, struct kube_result *res);

/* GET one object. Ownership: *ret_obj is a new reference the caller puts. */
int kube_get(struct kube_client *c, const char *path, struct json_object **ret_obj,
             struct kube_result *res);

struct kube_list_options {
	const char *label_selector;
	const char *field_selector;
	const char *resource_version; /* NULL or "": the newest (a quorum read); "0": any */
	int page_size;                /* 0: KUBE_LIST_PAGE_SIZE; < 0: one unpaginated request */
	/*
	 * Resume an earlier paginated LIST from its metadata.continue token
	 * (resource_version is then not sent); NULL: from the start.
	 */
	const char *continue_token;
	/*
	 * The Accept header's value; NULL: JSON. KUBE_ACCEPT_METADATA_LIST asks
	 * for a PartialObjectMetadataList: items of kind PartialObjectMetadata,
	 * metadata only.
	 */
	const char *accept;
};

/* Metadata only: a LIST answered as PartialObjectMetadataList, a WATCH's objects as PartialObjectMetadata. */
#define KUBE_ACCEPT_METADATA_LIST "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
#define KUBE_ACCEPT_METADATA      "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"

/*
 * LIST every page (limit/continue) into one List: "items" holds the items of
 * every page, "metadata.resourceVersion" is the first page's. When a continue
 * token expires (410, e.g. after etcd compacted its revision) the list starts
 * again from the beginning without pagination, as client-go's pager does.
 * -E2BIG past KANARY_MAX_LIST_ITEMS items.
 * Ownership: *ret_list is a new reference the caller puts.
 */
int kube_list(struct kube_client *c, const char *path, const struct kube_list_options *o,
              struct json_object **ret_list, struct kube_result *res);

/*
 * LIST every page like kube_list, handing each page (a List whose "items"
 * are that page's) to page_fn as it arrives instead of keeping them:
 * restart is true on the first page, and again when an expired continue
 * token made the list start over (drop what the earlier pages gave). The
 * page is borrowed for the call. A negative return of page_fn stops the
 * LIST and is returned. The first page's metadata carries the
 * resourceVersion.
 */
int kube_list_each(struct kube_client *c, const char *path, const struct kube_list_options *o,
                   int (*page_fn)(void *ctx, struct json_object *page, bool restart), void *ctx,
                   struct kube_result *res);

/*
 * POST obj to its collection path / PUT obj (which must carry
 * metadata.resourceVersion, or a stale write is not detected) to its path.
 * obj is borrowed; json-c caches its serialised text inside it, so no other
 * thread may use obj during the call.
 * Ownership: *ret_obj, when asked for, is the caller's.
 */
int kube_create(struct kube_client *c, const char *collection_path, struct json_object *obj,
                struct json_object **ret_obj, struct kube_result *res);
int kube_update(struct kube_client *c, const char *path, struct json_object *obj,
                struct json_object **ret_obj, struct kube_result *res);
/* PUT to path + "/status": only .status changes. */
int kube_update_status(struct kube_client *c, const char *path, struct json_object *obj,
                       struct json_object **ret_obj, struct kube_result *res);

enum kube_propagation {
	KUBE_PROPAGATION_DEFAULT = 0, /* the resource's own default */
	KUBE_PROPAGATION_BACKGROUND,
	KUBE_PROPAGATION_FOREGROUND,
	KUBE_PROPAGATION_ORPHAN,
};

struct kube_delete_options {
	enum kube_propagation propagation;
	const char *uid;              /* precondition, or NULL */
	const char *resource_version; /* precondition, or NULL */
	long grace_period_s;          /* < 0: the default */
};

/* DELETE; o may be NULL. Ownership: *ret_obj, when asked for, is the caller's. */
int kube_delete(struct kube_client *c, const char *path, const struct kube_delete_options *o,
                struct json_object **ret_obj, struct kube_result *res);

enum kube_patch_type {
	KUBE_PATCH_MERGE = 0, /* application/merge-patch+json (RFC 7386) */
	KUBE_PATCH_JSON,      /* application/json-patch+json (RFC 6902) */
	KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in types only) */
	KUBE_PATCH_APPLY,     /* application/apply-patch+yaml; use kube_apply */
};

/*
 * PATCH path with patch (an object, or an array for KUBE_PATCH_JSON), borrowed.
 * Ownership: *ret_obj, when asked for, is the caller's.
 */
int kube_patch(struct kube_client *c, const char *path, enum kube_patch_type type,
               struct json_object *patch, struct json_object **ret_obj, struct kube_result *res);

/*
 * Server-side apply: PATCH application/apply-patch+yaml (JSON is YAML) with
 * fieldManager=field_manager (required) and force=true when force. obj holds
 * only the fields this manager owns; a second identical apply changes nothing.
 * Ownership: *ret_obj, when asked for, is the caller's.
 */
int kube_apply(struct kube_client *c, const char *path, struct json_object *obj,
               const char *field_manager, bool force, struct json_object **ret_obj,
               struct kube_result *res);

/* ---- for watch.c ---- */

/*
 * Streams a GET into fn, chunk by chunk, as they arrive; no request timeout
 * but deadline_ms (0: none), and TCP keepalives to notice a dead peer. fn
 * returns 0 to go on or a negative errno to stop. A non-2xx answer is not
 * given to fn: it is collected (up to KANARY_MAX_RESPONSE) and decoded into
 * res. Returns 0 when the server ended the stream or the deadline passed
 * (*ret_deadline then true), fn's error, or the request's error.
 */
int kube_stream(struct kube_client *c, const char *path, const char *query, const char *accept,
                long deadline_ms, int (*fn)(void *ctx, const char *data, size_t len), void *ctx,
                bool *ret_deadline, struct kube_result *res);

#endif
