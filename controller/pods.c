/* SPDX-License-Identifier: Apache-2.0 */
/* Why the HAProxy pods of a rollout do not become ready, read from their statuses. */
#include "controller/pods.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/json_field.h"

/* Waiting reasons of the kubelet (pkg/kubelet/images, kuberuntime), by what they mean. */
static const char *const image_reasons[] = {
    "ErrImagePull",     "ImagePullBackOff",          "ErrImageNeverPull",
    "InvalidImageName", "ImageInspectError",         "RegistryUnavailable",
    "ErrImageInspect",  "SignatureValidationFailed", NULL,
};
static const char *const container_reasons[] = {
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "PreCreateHookError",
    "PreStartHookError",
    "PostStartHookError",
    NULL,
};
#define CRASH_LOOP_REASON "CrashLoopBackOff"

/* Room kept at the end of the message for the "; ... and N more pods" tail. */
#define MORE_TAIL_ROOM 48

const char *pods_reason(enum pods_verdict v)
{
	switch (v) {
	case PODS_IMAGE_PULL_FAILED:
		return "HAProxyImagePullFailed";
	case PODS_CONTAINER_FAILED:
		return "HAProxyContainerFailed";
	case PODS_CRASH_LOOPING:
		return "HAProxyCrashLooping";
	case PODS_UNSCHEDULABLE:
		return "HAProxyPodsUnschedulable";
	case PODS_NOT_READY:
		return "HAProxyPodsNotReady";
	case PODS_STARTING:
		break;
	}
	return NULL;
}

/* ---- reading ---- */

static bool in(const char *s, const char *const *set)
{
	for (; s && *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

static size_t arr_len(const struct json_object *a)
{
	return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

/* The condition of that type in a pod's status, borrowed, or NULL. */
static const struct json_object *pod_condition(const struct json_object *status, const char *type)
{
	const struct json_object *conds = json_field_get(status, "conditions");

	for (size_t i = 0; i < arr_len(conds); i++) {
		const struct json_object *c = json_object_array_get_idx(conds, i);
		const char *t = json_field_str(c, "type");

		if (t && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

static bool is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, size_t n)
{
	int v = 0;

	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to a date in 1970..9999 (metav1.Time is never before). */
static int64_t days_since_epoch(int y, int m, int d)
{
	static const int before_month[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
	int64_t days = 0;

	for (int i = 1970; i < y; i++)
		days += leap(i) ? 366 : 365;
	days += before_month[m - 1] + (m > 2 && leap(y)) + d - 1;
	return days;
}

/* A metav1.Time, "2026-01-02T03:04:05Z" (fractions allowed), to seconds; false otherwise. */
static bool parse_time(const char *s, int64_t *ret)
{
	int y, mo, d, h, mi, se;

	if (!s || strlen(s) < 20 || !is_digits(s, 4) || s[4] != '-' || !is_digits(s + 5, 2) ||
	    s[7] != '-' || !is_digits(s + 8, 2) || s[10] != 'T' || !is_digits(s + 11, 2) ||
	    s[13] != ':' || !is_digits(s + 14, 2) || s[16] != ':' || !is_digits(s + 17, 2))
		return false;
	y = num(s, 4);
	mo = num(s + 5, 2);
	d = num(s + 8, 2);
	h = num(s + 11, 2);
	mi = num(s + 14, 2);
	se = num(s + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return false;
	s += 19;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			;
	if (strcmp(s, "Z") != 0)
		return false;
	*ret = days_since_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return true;
}

/* ---- one pod ---- */

/* A bounded text: appends what fits, and marks a cut with "..." once. */
struct text {
	char *s;
	size_t size, len;
	bool cut;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->cut)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->s + t->len, t->size - t->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->s[t->len] = '\0';
		return;
	}
	if ((size_t)n >= t->size - t->len) {
		t->len = t->size - 1;
		memcpy(t->s + t->size - 4, "...", 4);
		t->cut = true;
		return;
	}
	t->len += (size_t)n;
}

/* The image a container of the pod's spec names, or NULL. */
static const char *spec_image(const struct json_object *pod, const char *list, const char *name)
{
	const struct json_object *cs = json_field_get(json_field_get(pod, "spec"), list);

	for (size_t i = 0; name && i < arr_len(cs); i++) {
		const struct json_object *c = json_object_array_get_idx(cs, i);
		const char *n = json_field_str(c, "name");

		if (n && strcmp(n, name) == 0)
			return json_field_str(c, "image");
	}
	return NULL;
}

static enum pods_verdict waiting_verdict(const char *reason)
{
	if (in(reason, image_reasons))
		return PODS_IMAGE_PULL_FAILED;
	if (in(reason, container_reasons))
		return PODS_CONTAINER_FAILED;
	if (reason && strcmp(reason, CRASH_LOOP_REASON) == 0)
		return PODS_CRASH_LOOPING;
	return PODS_STARTING;
}

/*
 * The worst waiting container of one status list ("initContainerStatuses",
 * "containerStatuses"); its words go to t when it is worse than *worst.
 */
static void containers(const struct json_object *pod, const char *statuses, const char *specs,
                       enum pods_verdict *worst, struct text *t)
{
	const struct json_object *cs = json_field_get(json_field_get(pod, "status"), statuses);

	for (size_t i = 0; i < arr_len(cs); i++) {
		const struct json_object *c = json_object_array_get_idx(cs, i);
		const struct json_object *w = json_field_get(json_field_get(c, "state"), "waiting");
		const struct json_object *last =
		    json_field_get(json_field_get(c, "lastState"), "terminated");
		const char *name = json_field_str(c, "name"), *reason = json_field_str(w, "reason");
		const char *msg = json_field_str(w, "message"), *image = json_field_str(c, "image");
		enum pods_verdict v = waiting_verdict(reason);

		if (v == PODS_STARTING || v <= *worst)
			continue;
		*worst = v;
		if (!image || !image[0])
			image = spec_image(pod, specs, name);
		t->len = 0;
		t->cut = false;
		t->s[0] = '\0';
		text_add(t, "container %s: %s", name ? name : "?", reason);
		if (msg && msg[0])
			text_add(t, ": %s", msg);
		if (v == PODS_CRASH_LOOPING && last)
			text_add(t, "; last exit %lld (%s), %lld restarts",
			         (long long)json_field_int_or(last, "exitCode", -1),
			         json_field_str(last, "reason") ? json_field_str(last, "reason")
			                                        : "no reason",
			         (long long)json_field_int_or(c, "restartCount", 0));
		if (image && image[0] && (!msg || !strstr(msg, image)))
			text_add(t, " (image %s)", image);
	}
}

/* The newest start of a running container of the pod, or 0. */
static int64_t running_since(const struct json_object *pod)
{
	const struct json_object *cs =
	    json_field_get(json_field_get(pod, "status"), "containerStatuses");
	int64_t since = 0, t;

	for (size_t i = 0; i < arr_len(cs); i++) {
		const struct json_object *run = json_field_get(
		    json_field_get(json_object_array_get_idx(cs, i), "state"), "running");

		if (run && parse_time(json_field_str(run, "startedAt"), &t) && t > since)
			since = t;
	}
	return since;
}

/* Appends ": <value>" when o has a string at key. */
static void text_add_field(struct text *t, const struct json_object *o, const char *key)
{
	const char *v = json_field_str(o, key);

	if (v)
		text_add(t, ": %s", v);
}

/* The pod's worst problem, its words in t. */
static enum pods_verdict pod_verdict(const struct json_object *pod, int64_t now_s, struct text *t)
{
	const struct json_object *st = json_field_get(pod, "status");
	const struct json_object *sched = pod_condition(st, "PodScheduled");
	const struct json_object *ready = pod_condition(st, "Ready");
	const char *phase = json_field_str(st, "phase");
	enum pods_verdict v = PODS_STARTING;
	int64_t since, changed;

	containers(pod, "initContainerStatuses", "initContainers", &v, t);
	containers(pod, "containerStatuses", "containers", &v, t);
	if (v != PODS_STARTING)
		return v;
	if (phase && strcmp(phase, "Failed") == 0) {
		text_add(t, "failed");
		text_add_field(t, st, "reason");
		text_add_field(t, st, "message");
		return PODS_NOT_READY;
	}
	if (sched && json_field_str(sched, "status") &&
	    strcmp(json_field_str(sched, "status"), "False") == 0) {
		text_add(t, "not scheduled");
		text_add_field(t, sched, "reason");
		text_add_field(t, sched, "message");
		return PODS_UNSCHEDULABLE;
	}
	if (!phase || strcmp(phase, "Running") != 0 || !ready || !json_field_str(ready, "status") ||
	    strcmp(json_field_str(ready, "status"), "True") == 0)
		return PODS_STARTING;
	/* Not ready since its containers last started, or since it last turned unready. */
	since = running_since(pod);
	if (parse_time(json_field_str(ready, "lastTransitionTime"), &changed) && changed > since)
		since = changed;
	if (since == 0 || now_s - since < PODS_READY_GRACE_S)
		return PODS_STARTING;
	/* No running count of seconds: the same state gives the same words, and no status write. */
	text_add(t, "running, not ready for over %ds", PODS_READY_GRACE_S);
	text_add_field(t, ready, "message");
	return PODS_NOT_READY;
}

/* ---- every pod ---- */

struct problem {
	const char *name; /* borrowed from the pod */
	enum pods_verdict verdict;
	char detail[KANARY_MAX_POD_PROBLEM];
};

static int worst_first(const void *a, const void *b)
{
	const struct problem *x = a, *y = b;

	if (x->verdict != y->verdict)
		return x->verdict > y->verdict ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void compose(const struct problem *p, size_t n, struct pods_diagnosis *d)
{
	struct text t = {.s = d->message, .size = sizeof(d->message)};
	size_t i;

	d->message[0] = '\0';
	for (i = 0; i < n; i++) {
		char item[KANARY_MAX_POD_PROBLEM + KANARY_MAX_NAME + 16];
		int len = snprintf(item, sizeof(item), "%spod %s: %s", i ? "; " : "", p[i].name,
		                   p[i].detail);

		/* The first always fits (a problem is far below the ceiling); later ones leave room. */
		if (i > 0 && (len < 0 || t.len + (size_t)len + MORE_TAIL_ROOM >= t.size))
			break;
		text_add(&t, "%s", item);
	}
	if (i < n)
		text_add(&t, "; ... and %zu more pod%s", n - i, n - i == 1 ? "" : "s");
}

int pods_diagnose(const struct json_object *pods, int64_t now_s, struct pods_diagnosis *ret)
{
	const struct json_object *items = pods;
	struct pods_diagnosis d = {.verdict = PODS_STARTING};
	struct problem *p = NULL;
	size_t n, np = 0;

	if (items && json_object_is_type(items, json_type_object))
		items = json_field_get(items, "items");
	if (!items || !json_object_is_type(items, json_type_array))
		return -EINVAL;
	n = json_object_array_length(items);
	if (n > 0) {
		p = calloc(n, sizeof(*p));
		if (!p)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct json_object *pod = json_object_array_get_idx(items, i);
		const struct json_object *md = json_field_get(pod, "metadata");
		struct text t = {.s = p[np].detail, .size = sizeof(p[np].detail)};
		enum pods_verdict v;

		if (!md || json_field_get(md, "deletionTimestamp"))
			continue;
		d.pods++;
		p[np].detail[0] = '\0';
		v = pod_verdict(pod, now_s, &t);
		if (v == PODS_STARTING)
			continue;
		p[np].name = json_field_str(md, "name") ? json_field_str(md, "name") : "?";
		p[np].verdict = v;
		if (v > d.verdict)
			d.verdict = v;
		np++;
	}
	d.problem_pods = np;
	if (np > 1)
		qsort(p, np, sizeof(*p), worst_first);
	compose(p, np, &d);
	free(p);
	*ret = d;
	return 0;
}

/* ---- looking again ---- */

uint32_t pods_recheck_print(const char *const *parts, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a, 32 bits */

	for (size_t i = 0; i < n; i++) {
		for (const unsigned char *p = (const unsigned char *)(parts[i] ? parts[i] : ""); *p;
		     p++)
			h = (h ^ *p) * 16777619u;
		h = (h ^ 0xffu) * 16777619u; /* a byte UTF-8 text never holds */
	}
	return h ? h : 1;
}

long pods_recheck_delay_ms(unsigned step)
{
	long d = PODS_RECHECK_FIRST_MS;

	for (unsigned i = 0; i < step && d < PODS_RECHECK_MAX_MS; i++)
		d *= 2;
	return d < PODS_RECHECK_MAX_MS ? d : PODS_RECHECK_MAX_MS;
}

long pods_recheck_next(struct pods_recheck *r, uint32_t print, int64_t now_ms, bool *ret_new)
{
	bool fresh = false;
	long d;

	if (r->print != print) {
		r->print = print;
		r->step = 0;
		fresh = true;
	} else if (now_ms / 1000 >= (int64_t)r->due_s) {
		/* The look-again is due (or overdue): the same again, so wait longer. */
		if (pods_recheck_delay_ms(r->step) < PODS_RECHECK_MAX_MS) {
			r->step++;
			fresh = true;
		}
	} else {
		if (ret_new)
			*ret_new = false;
		return pods_recheck_delay_ms(r->step);
	}
	d = pods_recheck_delay_ms(r->step);
	/* Rounded down: the look the work queue runs at now + d always finds itself due. */
	r->due_s = (uint32_t)((now_ms + d) / 1000);
	if (ret_new)
		*ret_new = fresh;
	return d;
}
