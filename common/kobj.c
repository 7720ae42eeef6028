/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes objects as compact, immutable, reference-counted records: what caches keep. */
#include "common/kobj.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/json_field.h"
#include "common/limits.h"
#include "common/strtab.h"

const struct kube_obj *kube_obj_ref(const struct kube_obj *o)
{
	if (o)
		atomic_fetch_add_explicit(&((struct kube_obj *)o)->refs, 1, memory_order_relaxed);
	return o;
}

/* Whether s lies in o's own allocation (then it is not a shared copy). */
static bool in_record(const struct kube_obj *o, const char *s)
{
	return s >= (const char *)o && s < (const char *)o + o->size;
}

/* Drops o's references on the shared strings it points at; fields not yet set are NULL. */
static void release_strings(struct kube_obj *o)
{
	const struct kobj_service *svc = kobj_as_service(o);
	const struct kobj_slice *sl = kobj_as_slice(o);

	strtab_release(o->ns);
	for (size_t i = 0; o->labels && o->labels[i]; i += 2) {
		strtab_release(o->labels[i]);
		if (o->labels[i + 1] && !in_record(o, o->labels[i + 1]))
			strtab_release(o->labels[i + 1]);
	}
	for (size_t i = 0; svc && i < svc->n_ports; i++)
		strtab_release(svc->ports[i].name);
	for (size_t i = 0; sl && i < sl->n_ports; i++)
		strtab_release(sl->ports[i].name);
}

void kube_obj_unref(const struct kube_obj *o)
{
	struct kube_obj *m = (struct kube_obj *)o;

	if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	release_strings(m);
	if (m->destroy)
		m->destroy(m);
	else
		free(m);
}

void kube_objs_unref(const struct kube_obj **objs, size_t n)
{
	for (size_t i = 0; objs && i < n; i++)
		kube_obj_unref(objs[i]);
	free(objs);
}

const char *kube_obj_label(const struct kube_obj *o, const char *key)
{
	for (size_t i = 0; o && o->labels && o->labels[i]; i += 2)
		if (strcmp(o->labels[i], key) == 0)
			return o->labels[i + 1];
	return NULL;
}

/* Adds a string member; false out of memory. */
static bool add_str(struct json_object *to, const char *key, const char *v)
{
	struct json_object *s = json_object_new_string(v);

	if (!s || json_object_object_add(to, key, s) != 0) {
		json_object_put(s);
		return false;
	}
	return true;
}

/* Adds the metadata of what (KUBE_OBJ_TEXT_*) the record holds to md; false out of memory. */
static bool add_metadata(struct json_object *md, const struct kube_obj *o, unsigned int what)
{
	struct json_object *labels = NULL;
	bool ok = true;

	if (what & KUBE_OBJ_TEXT_IDENTITY)
		ok = add_str(md, "name", o->name) &&
		     (!o->ns[0] || add_str(md, "namespace", o->ns)) &&
		     (!o->rv[0] || add_str(md, "resourceVersion", o->rv)) &&
		     (!o->uid[0] || add_str(md, "uid", o->uid));
	if (ok && (what & KUBE_OBJ_TEXT_LABELS) && o->labels) {
		labels = json_object_new_object();
		ok = labels && json_object_object_add(md, "labels", labels) == 0;
		if (!ok)
			json_object_put(labels);
		for (size_t i = 0; ok && o->labels[i]; i += 2)
			ok = add_str(labels, o->labels[i], o->labels[i + 1]);
	}
	return ok;
}

/* The metadata a record always keeps, as a json-c tree. */
static int metadata_tree(const struct kube_obj *o, struct json_object **ret)
{
	struct json_object *obj = json_object_new_object(), *md = json_object_new_object();
	bool ok = obj && md && json_object_object_add(obj, "metadata", md) == 0;

	if (!ok)
		json_object_put(md);
	ok = ok && add_metadata(md, o, KUBE_OBJ_TEXT_IDENTITY | KUBE_OBJ_TEXT_LABELS);
	if (!ok) {
		json_object_put(obj);
		return -ENOMEM;
	}
	*ret = obj;
	return 0;
}

int kube_obj_parse(const struct kube_obj *o, struct json_object **ret)
{
	struct json_tokener *tok;
	struct json_object *obj;

	if (!o->text)
		return metadata_tree(o, ret);
	tok = json_tokener_new_ex(KANARY_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	obj = json_tokener_parse_ex(tok, o->text, (int)o->text_len);
	json_tokener_free(tok);
	if (!obj)
		return -ENOMEM; /* the text was written by json-c: only memory can fail */
	if (o->text_omits) {
		struct json_object *md;

		if (!json_object_object_get_ex(obj, "metadata", &md)) {
			md = json_object_new_object();
			if (!md || json_object_object_add(obj, "metadata", md) != 0) {
				json_object_put(md);
				json_object_put(obj);
				return -ENOMEM;
			}
		}
		if (!add_metadata(md, o, o->text_omits)) {
			json_object_put(obj);
			return -ENOMEM;
		}
	}
	*ret = obj;
	return 0;
}

/* Shares value v of obj (alive while to is) as member key of to; false out of memory. */
static bool share(struct json_object *to, const char *key, struct json_object *v)
{
	if (json_object_object_add_ex(to, key, json_object_get(v),
	                              JSON_C_OBJECT_ADD_KEY_IS_NEW |
	                                  JSON_C_OBJECT_KEY_IS_CONSTANT) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

static bool omitted(const char *key, unsigned int what)
{
	if ((what & KUBE_OBJ_TEXT_IDENTITY) &&
	    (strcmp(key, "name") == 0 || strcmp(key, "namespace") == 0 ||
	     strcmp(key, "resourceVersion") == 0 || strcmp(key, "uid") == 0))
		return true;
	return (what & KUBE_OBJ_TEXT_LABELS) && strcmp(key, "labels") == 0;
}

/*
 * obj without the metadata of what, sharing everything else with obj
 * (which must outlive it). NULL out of memory.
 */
static struct json_object *without_metadata(struct json_object *obj, unsigned int what)
{
	struct json_object *top = json_object_new_object();
	bool ok = top != NULL;

	if (!ok)
		return NULL;
	json_object_object_foreach(obj, k, v)
	{
		struct json_object *md;

		if (!ok)
			break;
		if (strcmp(k, "metadata") != 0 || !json_object_is_type(v, json_type_object)) {
			ok = share(top, k, v);
			continue;
		}
		md = json_object_new_object();
		ok = md && json_object_object_add_ex(top, k, md,
		                                     JSON_C_OBJECT_ADD_KEY_IS_NEW |
		                                         JSON_C_OBJECT_KEY_IS_CONSTANT) == 0;
		if (!ok) {
			json_object_put(md);
			break;
		}
		json_object_object_foreach(v, mk, mv)
		{
			if (ok && !omitted(mk, what))
				ok = share(md, mk, mv);
		}
	}
	if (!ok) {
		json_object_put(top);
		return NULL;
	}
	return top;
}

/* Is v absent (NULL) or a string? */
static bool string_or_absent(const struct json_object *md, const char *key)
{
	struct json_object *v;

	return !json_object_object_get_ex(md, key, &v) || json_object_is_type(v, json_type_string);
}

static size_t str_size(const char *s)
{
	return s ? strlen(s) + 1 : 1;
}

/* Copies s (NULL as "") to *p and moves *p past it; returns the copy. */
static const char *put_str(char **p, const char *s)
{
	char *d = *p;
	size_t n = s ? strlen(s) : 0;

	memcpy(d, s ? s : "", n);
	d[n] = '\0';
	*p = d + n + 1;
	return d;
}

/*
 * Label values are shared, but for the text of kubernetes.io/service-name:
 * it names one Service, so it rarely repeats between slices, and a shared
 * copy of a text that does not repeat costs its entry (about 40 bytes with
 * malloc's) on top of the text. It is kept in the record, and other labels
 * with the same value (the slice's copies of its Service's labels, such as
 * app.kubernetes.io/name) point at it; a value equal to the object's name
 * points at the name.
 */
int kube_obj_new(struct json_object *obj, size_t size, size_t extra, bool keep_text,
                 struct kube_obj **ret, void **ret_extra)
{
	struct json_object *md = NULL, *labels = NULL, *stripped = NULL;
	const char *ns, *name, *rv, *uid, *text = NULL, *service = NULL;
	unsigned int omits = 0;
	size_t need, text_len = 0, n_labels = 0, labels_size, ns_len, key_size;
	const char **lp = NULL;
	struct kube_obj *o;
	size_t i = 0;
	char *p;

	if (size < sizeof(*o))
		return -EINVAL;
	json_object_object_get_ex(obj, "metadata", &md);
	name = json_field_str(md, "name");
	if (!name || !*name)
		return -EBADMSG;
	ns = json_field_str(md, "namespace");
	rv = json_field_str(md, "resourceVersion");
	uid = json_field_str(md, "uid");
	if (json_object_object_get_ex(md, "labels", &labels) &&
	    json_object_is_type(labels, json_type_object)) {
		json_object_object_foreach(labels, lk, lv)
		{
			if (!json_object_is_type(lv, json_type_string))
				continue;
			n_labels++;
			if (strcmp(lk, KOBJ_SERVICE_NAME_LABEL) == 0 &&
			    strcmp(json_object_get_string(lv), name) != 0)
				service = json_object_get_string(lv);
		}
	}
	if (keep_text) {
		/* What the record holds is left out of the text, when it can be put back as it was. */
		if (string_or_absent(md, "namespace") && string_or_absent(md, "resourceVersion") &&
		    string_or_absent(md, "uid"))
			omits |= KUBE_OBJ_TEXT_IDENTITY;
		if (labels && json_object_is_type(labels, json_type_object) &&
		    (size_t)json_object_object_length(labels) == n_labels)
			omits |= KUBE_OBJ_TEXT_LABELS;
		stripped = omits ? without_metadata(obj, omits) : NULL;
		if (omits && !stripped)
			return -ENOMEM;
		text = json_object_to_json_string_length(stripped ? stripped : obj,
		                                         JSON_C_TO_STRING_PLAIN, &text_len);
		if (!text) {
			json_object_put(stripped);
			return -ENOMEM;
		}
	}
	/* The decoder's part first, aligned, then the labels' pointers, then the strings. */
	size = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	extra = (extra + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	labels_size = n_labels ? (2 * n_labels + 1) * sizeof(*lp) : 0;
	ns_len = ns ? strlen(ns) : 0;
	/* "namespace/name": the name is the key's tail. */
	key_size = (ns_len ? ns_len + 1 : 0) + strlen(name) + 1;
	need = size + extra + labels_size + key_size + str_size(rv) + str_size(uid) +
	       (service ? strlen(service) + 1 : 0) + (text ? text_len + 1 : 0);
	o = calloc(1, need);
	if (!o) {
		json_object_put(stripped);
		return -ENOMEM;
	}
	atomic_init(&o->refs, 1);
	o->size = need;
	o->text_omits = (uint16_t)omits;
	p = (char *)o + size + extra;
	if (n_labels) {
		lp = (const char **)(void *)p;
		o->labels = lp;
		p += labels_size;
	}
	o->key = p;
	if (ns_len) {
		memcpy(p, ns, ns_len);
		p[ns_len] = '/';
		p += ns_len + 1;
	}
	o->name = put_str(&p, name);
	o->rv = put_str(&p, rv);
	o->uid = put_str(&p, uid);
	if (service)
		service = put_str(&p, service);
	o->ns = strtab_intern(ns);
	if (!o->ns)
		goto out_unref;
	if (n_labels) {
		json_object_object_foreach(labels, lk, lv)
		{
			const char *v;

			if (!json_object_is_type(lv, json_type_string))
				continue;
			v = json_object_get_string(lv);
			lp[i] = strtab_intern(lk);
			if (!lp[i])
				goto out_unref;
			if (strcmp(v, name) == 0)
				lp[i + 1] = o->name;
			else if (service && strcmp(v, service) == 0)
				lp[i + 1] = service;
			else if (!(lp[i + 1] = strtab_intern(v)))
				goto out_unref;
			i += 2;
		}
	}
	if (text) {
		memcpy(p, text, text_len);
		p[text_len] = '\0';
		o->text = p;
		o->text_len = text_len;
	}
	json_object_put(stripped);
	stripped = NULL;
	if (ret_extra)
		*ret_extra = extra ? (char *)o + size : NULL;
	*ret = o;
	return 0;

out_unref:
	json_object_put(stripped);
	kube_obj_unref(o);
	return -ENOMEM;
}

/* ---- Services and EndpointSlices ---- */

static bool keep_text(const struct kobj_options *o, struct json_object *obj)
{
	const char *v;

	if (!o || !o->text_label)
		return false;
	v = json_field_str_path(obj, JSON_FIELD_PATH("metadata", "labels", o->text_label));
	return v && o->text_value && strcmp(v, o->text_value) == 0;
}

static bool is_tcp(const struct json_object *port)
{
	const char *p = json_field_str(port, "protocol");

	return !p || strcmp(p, "TCP") == 0;
}

static int64_t port_number(const struct json_object *port)
{
	int64_t n;

	return json_field_int(port, "port", &n) && n >= 0 ? n : -1;
}

/* An array at key of obj, or NULL. */
static struct json_object *array_at(const struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

int kobj_service_decode(void *ctx, struct json_object *obj, struct kube_obj **ret)
{
	struct json_object *spec = NULL, *ports;
	struct kobj_service_port *out;
	struct kobj_service *svc;
	struct kube_obj *o;
	size_t n = 0;
	void *extra;
	int r;

	json_object_object_get_ex(obj, "spec", &spec);
	ports = array_at(spec, "ports");
	for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
		if (json_object_is_type(json_object_array_get_idx(ports, i), json_type_object))
			n++;
	}
	r = kube_obj_new(obj, sizeof(*svc), n * sizeof(*out), keep_text(ctx, obj), &o, &extra);
	if (r < 0)
		return r;
	svc = (struct kobj_service *)o;
	o->type = KUBE_OBJ_SERVICE;
	out = extra;
	/*
	 * A Service without ports (ExternalName), or whose ports are no mappings,
	 * has no extra part: extra is NULL, and out is only used for a mapping.
	 */
	svc->ports = out;
	for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
		const struct json_object *pt = json_object_array_get_idx(ports, i);
		struct kobj_service_port *sp;
		struct json_object *tp;

		if (!json_object_is_type(pt, json_type_object))
			continue;
		sp = &out[svc->n_ports];
		sp->name = strtab_intern(json_field_str(pt, "name"));
		if (!sp->name) {
			kube_obj_unref(o);
			return -ENOMEM;
		}
		sp->port = port_number(pt);
		sp->tcp = is_tcp(pt);
		if (!json_object_object_get_ex(pt, "targetPort", &tp))
			sp->target_port = -1;
		else if (json_object_is_type(tp, json_type_int) && json_object_get_int64(tp) >= 1 &&
		         json_object_get_int64(tp) <= 65535)
			sp->target_port = (int)json_object_get_int64(tp);
		else
			sp->target_port = 0;
		svc->n_ports++;
	}
	*ret = o;
	return 0;
}

/* Canonical text of an IP literal of family af into out. */
static bool canonical_address(int af, const char *in, char *out, size_t size)
{
	unsigned char bin[16];

	if (inet_pton(af, in, bin) != 1)
		return false;
	return inet_ntop(af, bin, out, (socklen_t)size) != NULL;
}

static bool condition(const struct json_object *ep, const char *key, bool absent)
{
	struct json_object *conds, *v;

	if (!json_object_object_get_ex(ep, "conditions", &conds) ||
	    !json_object_object_get_ex(conds, key, &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return absent;
	return json_object_get_boolean(v);
}

/* The canonical first address of endpoint ep into addr, or false when it has none usable. */
static bool endpoint_address(const struct json_object *ep, int af, char *addr, size_t size)
{
	struct json_object *addrs = array_at(ep, "addresses");
	const struct json_object *a0;

	if (!addrs || json_object_array_length(addrs) == 0)
		return false;
	/* Addresses of one endpoint are fungible; the API lets consumers use the first. */
	a0 = json_object_array_get_idx(addrs, 0);
	return json_object_is_type(a0, json_type_string) &&
	       canonical_address(af, json_object_get_string((struct json_object *)a0), addr, size);
}

static const char *target_name(const struct json_object *ep)
{
	struct json_object *ref;

	if (!json_object_object_get_ex(ep, "targetRef", &ref))
		return NULL;
	return json_field_str(ref, "name");
}

int kobj_slice_decode(void *ctx, struct json_object *obj, struct kube_obj **ret)
{
	struct json_object *ports = array_at(obj, "ports"), *eps = array_at(obj, "endpoints");
	const char *type = json_field_str(obj, "addressType");
	char addr[INET6_ADDRSTRLEN];
	struct kobj_slice_port *op;
	struct kobj_endpoint *oe;
	struct kobj_slice *sl;
	struct kube_obj *o;
	size_t np = 0, ne = 0, strings = 0;
	int af = 0;
	void *extra;
	char *p;
	int r;

	if (type && strcmp(type, "IPv4") == 0)
		af = AF_INET;
	else if (type && strcmp(type, "IPv6") == 0)
		af = AF_INET6;
	for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
		if (json_object_is_type(json_object_array_get_idx(ports, i), json_type_object))
			np++;
	}
	for (size_t i = 0; af && eps && i < json_object_array_length(eps); i++) {
		const struct json_object *ep = json_object_array_get_idx(eps, i);
		const char *tn;

		if (!json_object_is_type(ep, json_type_object) ||
		    !endpoint_address(ep, af, addr, sizeof(addr)))
			continue;
		ne++;
		tn = target_name(ep);
		strings += strlen(addr) + 1 + (tn ? strlen(tn) + 1 : 0);
	}
	r = kube_obj_new(obj, sizeof(*sl), np * sizeof(*op) + ne * sizeof(*oe) + strings,
	                 keep_text(ctx, obj), &o, &extra);
	if (r < 0)
		return r;
	sl = (struct kobj_slice *)o;
	o->type = KUBE_OBJ_SLICE;
	sl->ip = af != 0;
	/* The label's value: in the record, or the record's name (see kube_obj_new). */
	sl->service = kube_obj_label(o, KOBJ_SERVICE_NAME_LABEL);
	/* Nothing to keep (no ports, no usable endpoints): extra is NULL. */
	oe = extra;
	op = extra ? (struct kobj_slice_port *)(oe + ne) : NULL;
	p = extra ? (char *)(op + np) : NULL;
	sl->ports = op;
	sl->endpoints = oe;
	for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
		const struct json_object *pt = json_object_array_get_idx(ports, i);
		struct kobj_slice_port *sp;

		if (!json_object_is_type(pt, json_type_object))
			continue;
		sp = &op[sl->n_ports];
		sp->name = strtab_intern(json_field_str(pt, "name"));
		if (!sp->name) {
			kube_obj_unref(o);
			return -ENOMEM;
		}
		sp->port = port_number(pt);
		sp->tcp = is_tcp(pt);
		sl->n_ports++;
	}
	for (size_t i = 0; af && eps && i < json_object_array_length(eps); i++) {
		const struct json_object *ep = json_object_array_get_idx(eps, i);
		struct kobj_endpoint *e;
		const char *tn;

		if (!json_object_is_type(ep, json_type_object) ||
		    !endpoint_address(ep, af, addr, sizeof(addr)))
			continue;
		e = &oe[sl->n_endpoints];
		e->address = put_str(&p, addr);
		tn = target_name(ep);
		e->target_name = tn ? put_str(&p, tn) : NULL;
		e->ready = condition(ep, "ready", true);
		e->terminating = condition(ep, "terminating", false);
		sl->n_endpoints++;
	}
	*ret = o;
	return 0;
}

const struct kobj_service *kobj_as_service(const struct kube_obj *o)
{
	return o && o->type == KUBE_OBJ_SERVICE ? (const struct kobj_service *)o : NULL;
}

const struct kobj_slice *kobj_as_slice(const struct kube_obj *o)
{
	return o && o->type == KUBE_OBJ_SLICE ? (const struct kobj_slice *)o : NULL;
}
