/* SPDX-License-Identifier: Apache-2.0 */
/* The records of objects a controller applies: what it reads, and a digest of what it applied. */
#include "common/kobj_child.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/applied.h"
#include "common/json_field.h"

/* The metadata a child's record keeps: its identity, its owner, its labels. */
static const char *const metadata_kept[] = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "labels",
    "ownerReferences",
    "deletionTimestamp",
    NULL,
};

/* The member key of obj, created as an empty object when absent. NULL out of memory. */
static struct json_object *member_object(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(obj, key, &v))
		return v;
	v = json_object_new_object();
	if (!v || json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		return NULL;
	}
	return v;
}

/* The member key of obj, created as an array of n empty objects when absent. NULL: no memory. */
static struct json_object *member_array(struct json_object *obj, const char *key, size_t n)
{
	struct json_object *v;

	if (json_object_object_get_ex(obj, key, &v))
		return json_object_is_type(v, json_type_array) ? v : NULL;
	v = json_object_new_array_ext((int)n);
	if (!v || json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *item = json_object_new_object();

		if (!item || json_object_array_add(v, item) != 0) {
			json_object_put(item);
			return NULL;
		}
	}
	return v;
}

/*
 * Shares the value at dotted path of from into to, at the same path. A part
 * ending in "[]" goes into each item of a list: the items keep their place,
 * each only with the rest of the path ("spec.volumes[].configMap.name").
 * -ENOMEM.
 */
static int keep_path(struct json_object *to, const struct json_object *from, const char *path)
{
	const char *dot = strchr(path, '.');
	size_t n = dot ? (size_t)(dot - path) : strlen(path);
	bool each = n > 2 && dot && strncmp(path + n - 2, "[]", 2) == 0;
	struct json_object *v, *at;
	char part[256];

	if (each)
		n -= 2;
	if (n == 0 || n >= sizeof(part))
		return 0;
	memcpy(part, path, n);
	part[n] = '\0';
	if (!json_object_is_type(from, json_type_object) ||
	    !json_object_object_get_ex(from, part, &v))
		return 0; /* absent: nothing to keep */
	if (!dot) {
		if (json_object_object_add(to, part, json_object_get(v)) != 0) {
			json_object_put(v);
			return -ENOMEM;
		}
		return 0;
	}
	if (!each) {
		at = member_object(to, part);
		return at ? keep_path(at, v, dot + 1) : -ENOMEM;
	}
	if (!json_object_is_type(v, json_type_array))
		return 0;
	at = member_array(to, part, json_object_array_length(v));
	if (!at)
		return -ENOMEM;
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		int r = keep_path(json_object_array_get_idx(at, i), json_object_array_get_idx(v, i),
		                  dot + 1);

		if (r < 0)
			return r;
	}
	return 0;
}

static bool is_child(const struct kobj_child_options *o, const struct json_object *obj)
{
	const char *v;

	if (!o->text_label)
		return true;
	v = json_field_str_path(obj, JSON_FIELD_PATH("metadata", "labels", o->text_label));
	return v && o->text_value && strcmp(v, o->text_value) == 0;
}

int kobj_child_reduce(const struct kobj_child_options *o, const struct json_object *obj,
                      struct json_object **ret)
{
	struct json_object *out = json_object_new_object(), *md = NULL, *from;
	char hex[65];
	int r = -ENOMEM;

	if (!out)
		return -ENOMEM;
	from = json_field_get(obj, "metadata");
	if (json_object_is_type(from, json_type_object)) {
		md = member_object(out, "metadata");
		if (!md)
			goto out;
		for (size_t i = 0; metadata_kept[i]; i++) {
			r = keep_path(md, from, metadata_kept[i]);
			if (r < 0)
				goto out;
		}
	}
	for (size_t i = 0; o->keep && o->keep[i]; i++) {
		r = keep_path(out, obj, o->keep[i]);
		if (r < 0)
			goto out;
	}
	/* No Apply entry of ours (or one we cannot read): no digest, apply compares the text. */
	r = applied_digest_live(obj, o->manager, hex);
	if (r == -ENOMEM)
		goto out;
	if (r == 0) {
		struct json_object *s = json_object_new_string(hex);

		if (!s || json_object_object_add(out, KOBJ_CHILD_APPLIED, s) != 0) {
			json_object_put(s);
			r = -ENOMEM;
			goto out;
		}
	}
	*ret = out;
	return 0;
out:
	json_object_put(out);
	return r;
}

int kobj_child_decode(void *ctx, struct json_object *obj, struct kube_obj **ret)
{
	const struct kobj_child_options *o = ctx;
	struct json_object *reduced = NULL;
	int r;

	if (!is_child(o, obj))
		return kobj_trimmed_decode(NULL, obj, ret);
	r = kobj_child_reduce(o, obj, &reduced);
	if (r < 0)
		return r;
	r = kube_obj_new(reduced, sizeof(struct kube_obj), 0, true, ret, NULL);
	json_object_put(reduced);
	return r;
}

int kobj_child_service_decode(void *ctx, struct json_object *obj, struct kube_obj **ret)
{
	const struct kobj_child_options *o = ctx;
	const struct kobj_options text = {.text_label = o->text_label, .text_value = o->text_value};
	struct json_object *reduced = NULL;
	int r;

	if (!o->text_label || !is_child(o, obj))
		return kobj_service_decode(NULL, obj, ret);
	r = kobj_child_reduce(o, obj, &reduced);
	if (r < 0)
		return r;
	r = kobj_service_decode((void *)&text, reduced, ret);
	json_object_put(reduced);
	return r;
}

int kobj_trimmed_decode(void *ctx, struct json_object *obj, struct kube_obj **ret)
{
	const char *const *dropped = ctx;
	struct json_object *md = json_field_get(obj, "metadata");
	struct json_object *annotations = json_field_get(md, "annotations");

	if (json_object_is_type(md, json_type_object))
		json_object_object_del(md, "managedFields");
	if (dropped && json_object_is_type(annotations, json_type_object)) {
		for (size_t i = 0; dropped && dropped[i]; i++)
			json_object_object_del(annotations, dropped[i]);
		if (json_object_object_length(annotations) == 0)
			json_object_object_del(md, "annotations");
	}
	return kube_obj_new(obj, sizeof(struct kube_obj), 0, true, ret, NULL);
}
