/* SPDX-License-Identifier: Apache-2.0 */
/* Decoding a watch stream: whole lines out of chunks, then one event per line. */
#ifndef KANARY_KUBE_WATCH_H
#define KANARY_KUBE_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/kube/client.h"

struct json_object;

/*
 * A watch answer is newline-delimited JSON, one event per line, and libcurl
 * hands it over in chunks cut anywhere. kube_lines joins the pieces and gives
 * back whole lines; a line longer than its ceiling is an error that ends the
 * stream (never a truncated event).
 */
struct kube_lines {
	struct buf line;
	size_t max;
};

/* Caller storage; max is the longest line accepted (KANARY_MAX_WATCH_LINE in the client). */
void kube_lines_init(struct kube_lines *l, size_t max);
void kube_lines_finish(struct kube_lines *l);
/* Forgets a partial line, for a new stream. */
void kube_lines_reset(struct kube_lines *l);

/*
 * Feeds len bytes. fn gets every complete line, without its "\n" (and
 * without a "\r" before it), NUL-terminated; empty lines are skipped.
 * fn returns 0 to go on, or a value that stops feeding and is returned.
 * Returns 0, -E2BIG when a line passes the ceiling, or fn's value.
 */
int kube_lines_feed(struct kube_lines *l, const char *data, size_t len,
                    int (*fn)(void *ctx, const char *line, size_t len), void *ctx);

/* True when bytes of an unfinished line are held (a stream cut mid-event). */
bool kube_lines_pending(const struct kube_lines *l);

enum kube_event_type {
	KUBE_EVENT_ADDED = 0,
	KUBE_EVENT_MODIFIED,
	KUBE_EVENT_DELETED,
	KUBE_EVENT_BOOKMARK,
	KUBE_EVENT_ERROR, /* object is a metav1.Status */
};

struct kube_event {
	enum kube_event_type type;
	struct json_object *object;
};

/*
 * Decodes one line {"type": ..., "object": {...}}. Rejects with -EBADMSG
 * anything else: malformed or trailing JSON, an unknown type, an object that
 * is not a mapping, and (but for ERROR) an object without
 * metadata.resourceVersion.
 * Ownership: on success ret_ev->object is a new reference; kube_event_finish puts it.
 */
int kube_event_parse(const char *line, size_t len, struct kube_event *ret_ev);
void kube_event_finish(struct kube_event *ev);

const char *kube_event_type_name(enum kube_event_type type);

/* metadata.resourceVersion of obj, or NULL. Borrowed. */
const char *kube_object_resource_version(const struct json_object *obj);

/*
 * "namespace/name", or "name" for a cluster-scoped object (client-go's
 * MetaNamespaceKeyFunc). -EINVAL without metadata.name, -E2BIG past size.
 */
int kube_object_key(const struct json_object *obj, char *out, size_t size);

struct kube_watch_options {
	const char *resource_version; /* where to start; NULL or "": now */
	const char *label_selector;
	const char *field_selector;
	bool bookmarks;   /* allowWatchBookmarks */
	int timeout_s;    /* timeoutSeconds for the server; 0: the server's default */
	long deadline_ms; /* our own cut; 0: timeout_s + KUBE_WATCH_SLACK_MS, or none */
	size_t max_line;  /* 0: KANARY_MAX_WATCH_LINE */
	/*
	 * The Accept header's value; NULL: JSON. KUBE_ACCEPT_METADATA gives
	 * events whose objects are PartialObjectMetadata. (kube-apiserver 1.35
	 * answers a watch asked for KUBE_ACCEPT_METADATA_LIST with 200 and no
	 * events at all.)
	 */
	const char *accept;
};

/* How long past timeoutSeconds we wait before cutting a silent stream ourselves. */
#define KUBE_WATCH_SLACK_MS 30000L

/*
 * Runs one watch on path (a collection) until the server ends it, the
 * deadline passes, or fn returns non-zero. fn gets every ADDED, MODIFIED,
 * DELETED and BOOKMARK event in order and borrows ev->object for the call
 * (take a reference to keep it).
 *
 * Returns 0 when the stream ended (timeout, ours or the server's), 1 when fn
 * asked to stop with a positive value, fn's negative value, or a request
 * error with res filled. An ERROR event ends the watch with its Status
 * decoded into res (410 Expired: KUBE_REASON_GONE, -ESTALE). A line past
 * max_line, or one that is not an event, ends it with -E2BIG or -EBADMSG.
 * A stream the server breaks off is a transport error. A partial last line
 * (our deadline cut the stream mid-event) is dropped: the caller's
 * resourceVersion moved with complete events only, so the next watch from it
 * delivers that event again.
 */
int kube_watch(struct kube_client *c, const char *path, const struct kube_watch_options *o,
               int (*fn)(void *ctx, const struct kube_event *ev), void *ctx,
               struct kube_result *res);

#endif
