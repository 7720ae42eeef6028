/* SPDX-License-Identifier: Apache-2.0 */
/* Decoding a watch stream: whole lines out of chunks, then one event per line. */
#include "common/kube/watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/json_field.h"
#include "common/limits.h"

/* ---- lines ---- */

void kube_lines_init(struct kube_lines *l, size_t max)
{
	buf_init(&l->line, max);
	l->max = max;
}

void kube_lines_finish(struct kube_lines *l)
{
	buf_finish(&l->line);
}

void kube_lines_reset(struct kube_lines *l)
{
	/* Drop the storage too: one huge event must not pin its memory for the next stream. */
	buf_finish(&l->line);
	buf_init(&l->line, l->max);
}

bool kube_lines_pending(const struct kube_lines *l)
{
	return l->line.len > 0;
}

/* Hands the held line to fn and empties it; strips one trailing '\r'. */
static int lines_emit(struct kube_lines *l, int (*fn)(void *ctx, const char *line, size_t len),
                      void *ctx)
{
	size_t len = l->line.len;
	int r = 0;

	if (len > 0 && l->line.data[len - 1] == '\r')
		l->line.data[--len] = '\0';
	if (len > 0)
		r = fn(ctx, l->line.data, len);
	buf_reset(&l->line);
	return r;
}

int kube_lines_feed(struct kube_lines *l, const char *data, size_t len,
                    int (*fn)(void *ctx, const char *line, size_t len), void *ctx)
{
	const char *nl;
	size_t seg;
	int r;

	while (len > 0) {
		nl = memchr(data, '\n', len);
		seg = nl ? (size_t)(nl - data) : len;
		r = buf_append(&l->line, data, seg);
		if (r < 0) {
			buf_reset(&l->line);
			return r;
		}
		if (!nl)
			return 0;
		r = lines_emit(l, fn, ctx);
		if (r != 0)
			return r;
		data += seg + 1;
		len -= seg + 1;
	}
	return 0;
}

/* ---- events ---- */

static const char *const event_names[] = {
    [KUBE_EVENT_ADDED] = "ADDED",     [KUBE_EVENT_MODIFIED] = "MODIFIED",
    [KUBE_EVENT_DELETED] = "DELETED", [KUBE_EVENT_BOOKMARK] = "BOOKMARK",
    [KUBE_EVENT_ERROR] = "ERROR",
};

const char *kube_event_type_name(enum kube_event_type type)
{
	if ((size_t)type >= sizeof(event_names) / sizeof(event_names[0]))
		return "UNKNOWN";
	return event_names[type];
}

const char *kube_object_resource_version(const struct json_object *obj)
{
	struct json_object *meta;

	if (!obj || !json_object_object_get_ex(obj, "metadata", &meta))
		return NULL;
	return json_field_str(meta, "resourceVersion");
}

int kube_object_key(const struct json_object *obj, char *out, size_t size)
{
	struct json_object *meta;
	const char *ns, *name;
	int n;

	if (!obj || !json_object_object_get_ex(obj, "metadata", &meta))
		return -EINVAL;
	name = json_field_str(meta, "name");
	ns = json_field_str(meta, "namespace");
	if (!name || !*name)
		return -EINVAL;
	if (ns && *ns)
		n = snprintf(out, size, "%s/%s", ns, name);
	else
		n = snprintf(out, size, "%s", name);
	if (n < 0 || (size_t)n >= size)
		return -E2BIG;
	return 0;
}

int kube_event_parse(const char *line, size_t len, struct kube_event *ret_ev)
{
	struct json_tokener *tok;
	struct json_object *root, *object;
	enum json_tokener_error jerr;
	const char *type;
	size_t end;
	int r = -EBADMSG;

	if (len > (size_t)INT32_MAX)
		return -E2BIG;
	tok = json_tokener_new_ex(KANARY_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	/* An unfinished value (json_tokener_continue) is as bad as a broken one here. */
	if (jerr != json_tokener_success || !root)
		goto out_put;
	for (; end < len; end++)
		if (line[end] != ' ' && line[end] != '\t' && line[end] != '\r')
			goto out_put;
	if (!json_object_is_type(root, json_type_object))
		goto out_put;
	type = json_field_str(root, "type");
	if (!type || !json_object_object_get_ex(root, "object", &object) ||
	    !json_object_is_type(object, json_type_object))
		goto out_put;
	for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++) {
		if (strcmp(type, event_names[i]) != 0)
			continue;
		if (i != KUBE_EVENT_ERROR && !kube_object_resource_version(object))
			goto out_put;
		ret_ev->type = (enum kube_event_type)i;
		ret_ev->object = json_object_get(object);
		r = 0;
		break;
	}
out_put:
	json_object_put(root);
	return r;
}

void kube_event_finish(struct kube_event *ev)
{
	json_object_put(ev->object);
	ev->object = NULL;
}

/* ---- one watch ---- */

enum watch_stop {
	WATCH_GO_ON = 0,
	WATCH_STOP_FN,    /* fn returned > 0 */
	WATCH_STOP_ERROR, /* an ERROR event; res holds its Status */
	WATCH_STOP_BAD,   /* a line that is not an event */
};

struct watch_ctx {
	struct kube_lines lines;
	int (*fn)(void *ctx, const struct kube_event *ev);
	void *ctx;
	struct kube_result event_res; /* an ERROR event's Status */
	enum watch_stop stop;
	int err;
};

/* Internal marker handed through kube_stream to say "stop, see ctx->stop". */
#define WATCH_STOPPED (-ECANCELED)

static int watch_line(void *userdata, const char *line, size_t len)
{
	struct watch_ctx *w = userdata;
	struct kube_event ev;
	int r;

	r = kube_event_parse(line, len, &ev);
	if (r < 0) {
		w->stop = WATCH_STOP_BAD;
		w->err = r;
		return WATCH_STOPPED;
	}
	if (ev.type == KUBE_EVENT_ERROR) {
		w->err = kube_result_from_status(ev.object, 0, &w->event_res);
		w->stop = WATCH_STOP_ERROR;
		kube_event_finish(&ev);
		return WATCH_STOPPED;
	}
	r = w->fn(w->ctx, &ev);
	kube_event_finish(&ev);
	if (r > 0) {
		w->stop = WATCH_STOP_FN;
		return WATCH_STOPPED;
	}
	if (r < 0) {
		w->stop = WATCH_STOP_FN;
		w->err = r;
		return WATCH_STOPPED;
	}
	return 0;
}

static int watch_chunk(void *userdata, const char *data, size_t len)
{
	struct watch_ctx *w = userdata;
	int r;

	r = kube_lines_feed(&w->lines, data, len, watch_line, w);
	if (r == -E2BIG) {
		w->stop = WATCH_STOP_BAD;
		w->err = -E2BIG;
		return WATCH_STOPPED;
	}
	return r;
}

static int watch_query(const struct kube_watch_options *o, struct buf *q)
{
	char timeout[24];
	int r;

	r = kube_query_add(q, "watch", "1");
	if (r == 0 && o->resource_version && *o->resource_version)
		r = kube_query_add(q, "resourceVersion", o->resource_version);
	if (r == 0 && o->label_selector && *o->label_selector)
		r = kube_query_add(q, "labelSelector", o->label_selector);
	if (r == 0 && o->field_selector && *o->field_selector)
		r = kube_query_add(q, "fieldSelector", o->field_selector);
	if (r == 0 && o->bookmarks)
		r = kube_query_add(q, "allowWatchBookmarks", "true");
	if (r == 0 && o->timeout_s > 0) {
		snprintf(timeout, sizeof(timeout), "%d", o->timeout_s);
		r = kube_query_add(q, "timeoutSeconds", timeout);
	}
	return r;
}

int kube_watch(struct kube_client *c, const char *path, const struct kube_watch_options *o,
               int (*fn)(void *ctx, const struct kube_event *ev), void *ctx,
               struct kube_result *res)
{
	struct kube_result scratch;
	struct watch_ctx w = {0};
	struct buf q;
	bool deadline = false;
	long deadline_ms;
	int r;

	if (!res)
		res = &scratch;
	buf_init(&q, KANARY_MAX_URL);
	r = watch_query(o, &q);
	if (r < 0) {
		res->http_status = 0;
		res->reason = KUBE_REASON_CLIENT;
		res->retry_after_s = 0;
		snprintf(res->message, sizeof(res->message), "WATCH %s: query too long", path);
		goto out_query;
	}
	deadline_ms = o->deadline_ms;
	if (deadline_ms <= 0 && o->timeout_s > 0)
		deadline_ms = (long)o->timeout_s * 1000 + KUBE_WATCH_SLACK_MS;
	kube_lines_init(&w.lines, o->max_line ? o->max_line : KANARY_MAX_WATCH_LINE);
	w.fn = fn;
	w.ctx = ctx;
	r = kube_stream(c, path, q.data, o->accept, deadline_ms, watch_chunk, &w, &deadline, res);
	switch (w.stop) {
	case WATCH_GO_ON:
		break;
	case WATCH_STOP_FN:
		res->reason = KUBE_REASON_NONE;
		res->message[0] = '\0';
		r = w.err < 0 ? w.err : 1;
		break;
	case WATCH_STOP_ERROR:
		/* The stream was stopped on purpose; what counts is the event's Status. */
		*res = w.event_res;
		r = w.err;
		break;
	case WATCH_STOP_BAD:
		res->reason = KUBE_REASON_BAD_RESPONSE;
		snprintf(res->message, sizeof(res->message), "WATCH %s: %s", path,
		         w.err == -E2BIG ? "an event longer than the line ceiling"
		                         : "a line that is not a watch event");
		r = w.err;
		break;
	}
	kube_lines_finish(&w.lines);
out_query:
	buf_finish(&q);
	return r;
}
