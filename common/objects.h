/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KANARY_OBJECTS_H
#define KANARY_OBJECTS_H

#include "common/kanary.h"
#include "common/render.h"

struct json_object;

struct objects_options {
	struct render_options render;
	const char *image;	   /* HAProxy image */
	int termination_grace_s;   /* > preStop + hard-stop-after */
	int prestop_sleep_s;
	int min_ready_s;
};

#define OBJECTS_DEFAULT_IMAGE "haproxy:2.6"

void objects_options_init(struct objects_options *o);

/*
 * The objects the controller applies for k (DESIGN §3), in this order:
 * ConfigMap <name>-haproxy-<hash8> (immutable, data haproxy.cfg), Deployment
 * <name>-haproxy, PodDisruptionBudget <name>-haproxy and Service <destination>.
 * Each carries the managed-by and kanary.pyxida.io/name labels and, when k has
 * a uid, a controller ownerReference to it.
 * Ownership: *ret is a new json-c array the caller puts.
 */
int objects_desired(const struct kanary *k, const char *cfg, const char *hash,
		    const struct objects_options *o, struct json_object **ret);

/* "<name>-haproxy-<first 8 hex digits of hash>" into out; -E2BIG when it does not fit. */
int objects_configmap_name(const struct kanary *k, const char *hash, char *out, size_t size);

#endif
