/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes objects as compact, immutable, reference-counted records: what caches keep. */
#ifndef KANARY_KOBJ_H
#define KANARY_KOBJ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/*
 * The common part of a cached record. Strings that repeat between records
 * (the namespace, label keys and values, port names) are shared copies
 * (common/strtab.h); those unique to the object are in the record.
 */
struct kube_obj {
	atomic_uint refs;
	uint16_t type; /* the decoder's tag (KUBE_OBJ_*); 0 for the default record */
	/*
	 * KUBE_OBJ_TEXT_*: the metadata text leaves out because the record holds
	 * it (kube_obj_parse puts it back).
	 */
	uint16_t text_omits;
	void (*destroy)(struct kube_obj *o); /* NULL: free(o) */
	const char *key;                     /* "namespace/name", or "name" when cluster-scoped */
	const char *ns;                      /* "" when cluster-scoped */
	const char *name;
	const char *rv;            /* metadata.resourceVersion */
	const char *uid;           /* metadata.uid, "" when absent */
	const char *const *labels; /* key, value, key, value, ..., NULL; NULL when none */
	/*
	 * The object as JSON text, or NULL when the decoder kept none; without
	 * the metadata of text_omits. Read it through kube_obj_parse.
	 */
	const char *text;
	size_t text_len;
	size_t size; /* bytes of the record's one allocation, not the shared strings */
};

/* Of text_omits: metadata.name, namespace, resourceVersion and uid. */
#define KUBE_OBJ_TEXT_IDENTITY 1u
/* Of text_omits: metadata.labels (every value a string, all in labels). */
#define KUBE_OBJ_TEXT_LABELS 2u

#define KUBE_OBJ_DEFAULT 0u
#define KUBE_OBJ_SERVICE 1u /* struct kobj_service */
#define KUBE_OBJ_SLICE   2u /* struct kobj_slice */

/* A new reference to o (o itself); NULL gives NULL. */
const struct kube_obj *kube_obj_ref(const struct kube_obj *o);
/* Drops a reference; the last one frees the record. NULL does nothing. */
void kube_obj_unref(const struct kube_obj *o);
/* Drops one reference on each of objs[0..n) and frees the array. */
void kube_objs_unref(const struct kube_obj **objs, size_t n);
/* The value of label key, or NULL. */
const char *kube_obj_label(const struct kube_obj *o, const char *key);
/*
 * A private json-c tree of the object, parsed from its text with the
 * metadata the text left out put back (at the end of metadata); when the
 * decoder kept no text, its metadata only (name, namespace,
 * resourceVersion, uid, labels). -ENOMEM. Ownership: *ret is the caller's.
 */
int kube_obj_parse(const struct kube_obj *o, struct json_object **ret);

/*
 * For decoders: a zeroed record of size bytes (at least sizeof(struct
 * kube_obj): the decoder's own struct, which starts with one) followed by
 * extra bytes for the decoder's strings and arrays (*ret_extra, aligned for
 * pointers), with the common part filled from obj: key, namespace, name,
 * resourceVersion, uid, labels, and the text when keep_text (without that
 * metadata, which the record holds once). One allocation, freed by
 * kube_obj_unref. -EBADMSG without metadata.name.
 */
int kube_obj_new(struct json_object *obj, size_t size, size_t extra, bool keep_text,
                 struct kube_obj **ret, void **ret_extra);

/*
 * A decoder: obj (the informer's, borrowed; it may be changed) into a new
 * record with one reference, the caller's. -ENOMEM, or -EBADMSG for an
 * object the informer should not cache.
 */
typedef int (*kube_decode_fn)(void *ctx, struct json_object *obj, struct kube_obj **ret);

/* ---- Services and EndpointSlices: what resolution reads ---- */

/* What the Service and EndpointSlice decoders keep besides their fields (ctx of both). */
struct kobj_options {
	/* Keep the JSON text of objects whose label text_label is text_value (NULL: never). */
	const char *text_label;
	const char *text_value;
};

struct kobj_service_port {
	const char *name; /* "" when unnamed */
	int64_t port;     /* -1 when absent or not an integer */
	int target_port;  /* -1 absent, 0 named or out of range, else the number */
	bool tcp;         /* protocol TCP, or none given */
};

struct kobj_service {
	struct kube_obj base; /* type KUBE_OBJ_SERVICE */
	size_t n_ports;
	const struct kobj_service_port *ports;
};

struct kobj_slice_port {
	const char *name; /* "" when unnamed */
	int64_t port;     /* -1 when absent or not an integer */
	bool tcp;
};

/* An endpoint whose first address is an IP literal of the slice's addressType. */
struct kobj_endpoint {
	const char *address;     /* canonical text of the first address */
	const char *target_name; /* targetRef.name, or NULL */
	bool ready;              /* conditions.ready; absent reads as true */
	bool terminating;        /* conditions.terminating; absent reads as false */
};

struct kobj_slice {
	struct kube_obj base; /* type KUBE_OBJ_SLICE */
	const char *service;  /* label kubernetes.io/service-name, or NULL */
	bool ip;              /* addressType IPv4 or IPv6 (FQDN slices keep no endpoints) */
	size_t n_ports;
	const struct kobj_slice_port *ports;
	size_t n_endpoints;
	const struct kobj_endpoint *endpoints;
};

#define KOBJ_SERVICE_NAME_LABEL "kubernetes.io/service-name"

/*
 * kube_decode_fn decoders (ctx: a struct kobj_options, or NULL) of a v1
 * Service and of a discovery.k8s.io/v1 EndpointSlice. -ENOMEM, -EBADMSG
 * without metadata.name.
 */
int kobj_service_decode(void *ctx, struct json_object *obj, struct kube_obj **ret);
int kobj_slice_decode(void *ctx, struct json_object *obj, struct kube_obj **ret);

/* The record as a Service or slice, or NULL when it is another type. */
const struct kobj_service *kobj_as_service(const struct kube_obj *o);
const struct kobj_slice *kobj_as_slice(const struct kube_obj *o);

#endif
