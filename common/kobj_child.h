/* SPDX-License-Identifier: Apache-2.0 */
/* The records of objects a controller applies: what it reads, and a digest of what it applied. */
#ifndef KANARY_KOBJ_CHILD_H
#define KANARY_KOBJ_CHILD_H

#include "common/kobj.h"

/*
 * The member of a child's reduced text holding the digest of what the
 * field manager last applied (common/applied.h), 64 hex digits. Absent when
 * the object has no Apply entry of that manager. Not a Kubernetes field:
 * only in the cache's text, never sent.
 */
#define KOBJ_CHILD_APPLIED "kanary.pyxida.io/applied"

/* What a child decoder keeps (its ctx). */
struct kobj_child_options {
	/* The field manager whose Apply entry is digested. */
	const char *manager;
	/*
	 * Dotted paths kept besides the metadata ("spec.replicas",
	 * "status.observedGeneration"), NULL-terminated; NULL keeps none. A
	 * part ending in "[]" is a list whose items each keep the rest
	 * ("spec.template.spec.volumes[].configMap.name").
	 */
	const char *const *keep;
	/* Only objects whose label text_label is text_value are children (NULL: all are). */
	const char *text_label;
	const char *text_value;
};

/*
 * A kube_decode_fn (ctx: struct kobj_child_options) for a child the
 * controller applies: the record's text is the object reduced to its
 * metadata (name, namespace, uid, resourceVersion, generation, labels,
 * ownerReferences, deletionTimestamp), the paths of keep, and the applied
 * digest as KOBJ_CHILD_APPLIED. The informer must not drop managedFields
 * before it: the digest is made from them; the record keeps none.
 * -ENOMEM, -EBADMSG without metadata.name.
 */
int kobj_child_decode(void *ctx, struct json_object *obj, struct kube_obj **ret);

/*
 * The same for Services: a compact Service record (kobj_service_decode)
 * for every Service; a child's also keeps the reduced text (with its
 * spec.ports) and digest. Without text_label no Service is a child.
 */
int kobj_child_service_decode(void *ctx, struct json_object *obj, struct kube_obj **ret);

/*
 * obj reduced as kobj_child_decode keeps it (the digest included). -ENOMEM.
 * Ownership: *ret is the caller's; it shares values with obj.
 */
int kobj_child_reduce(const struct kobj_child_options *o, const struct json_object *obj,
                      struct json_object **ret);

/* What `kubectl apply` keeps of the object it applied: the object again. */
#define KOBJ_KUBECTL_LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

/*
 * A kube_decode_fn (ctx: NULL-terminated annotation keys, or NULL) that
 * keeps the object's whole text but those annotations (and managedFields). -ENOMEM,
 * -EBADMSG without metadata.name.
 */
int kobj_trimmed_decode(void *ctx, struct json_object *obj, struct kube_obj **ret);

#endif
