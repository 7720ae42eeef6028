/* SPDX-License-Identifier: Apache-2.0 */
/* Answering one AdmissionReview: check the Kanary in it, write the verdict and the patch. */
#ifndef KANARY_ADMISSION_H
#define KANARY_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>

#include "common/kanary.h"

struct catalog;

enum admission_op {
	ADMISSION_VALIDATE = 0,
	ADMISSION_MUTATE,
};

/*
 * How the webhook finds the Services and EndpointSlices a Kanary names: fill
 * adds them to cat (catalog_add). It is called once per request that needs
 * lookups, with the Kanary as read; it returns 0 or -errno, and on failure the
 * request is answered with an error (never allowed by default).
 */
struct admission_lookup {
	int (*fill)(void *ctx, const struct kanary *k, struct catalog *cat);
	void *ctx;
};

/* What was decided, for logs and metrics. */
enum admission_verdict {
	ADMISSION_ALLOWED = 0,   /* checked and allowed (mutate: possibly patched) */
	ADMISSION_DENIED,        /* checked and denied */
	ADMISSION_UNCHANGED,     /* an UPDATE that leaves spec alone: allowed unchecked */
	ADMISSION_NOT_HANDLED,   /* not a Kanary CREATE/UPDATE: allowed unchecked */
	ADMISSION_LOOKUP_FAILED, /* Services could not be looked up: answered with 500 */
};

struct admission_outcome {
	enum admission_verdict verdict;
	bool patched;
	size_t n_warnings;
	/* "namespace/name" of the object ("ns/" for a CREATE by generateName); "" when unknown */
	char key[KANARY_MAX_NAME * 2 + 2];
};

/*
 * Handles one AdmissionReview (admission.k8s.io/v1) request body for
 * /validate or /mutate and writes the AdmissionReview response:
 * request.uid echoed; CREATE and UPDATE of kanaries checked with kanary_check
 * (an UPDATE whose spec equals oldObject's is always allowed, and subresources
 * and other operations are allowed unchecked); a denial has allowed: false,
 * status Failure, code 422, reason Invalid, with every field error in the
 * message and in details.causes (field, reason, message); warnings for
 * weight-0 routes and backends with no ready endpoints; /mutate always answers
 * allowed, with the defaults (spec.port, spec.proxy.replicas) as a base64
 * JSONPatch when the Kanary has no error (a Kanary with errors is left as it
 * is, for /validate to name them). The body is one JSON object, whitespace
 * around it allowed, in UTF-8 (RFC 8259): a string with bytes that are not
 * UTF-8 makes it -EINVAL.
 * Returns 0 with *ret_response; -EINVAL when the body is not an
 * AdmissionReview request (ret_err says why, for a 400 answer); -EIO when
 * lookup failed (ret_err says why, for a 500); -ENOMEM.
 * Ownership: *ret_response is the caller's (free()).
 */
int admission_handle(const char *body, size_t len, enum admission_op op,
                     const struct admission_lookup *lookup, char **ret_response, size_t *ret_len,
                     struct admission_outcome *ret_outcome, char *ret_err, size_t err_size);

#endif
