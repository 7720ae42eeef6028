/* SPDX-License-Identifier: Apache-2.0 */
/* Checking one Kanary end to end: parse, default, validate and resolve against the cluster. */
#ifndef KANARY_KANARY_CHECK_H
#define KANARY_KANARY_CHECK_H

#include "common/kanary.h"
#include "common/resolve.h"

struct json_object;
struct kerr_list;

/* Flags of kanary_check. */
#define KANARY_CHECK_REQUIRE_NAME (1u << 0) /* admission may see a generateName CREATE unnamed */

/*
 * Everything admission does to one Kanary, shared by the webhook, the
 * controller's defensive re-check and the offline check and render tools:
 * read it (kanary_from_json), check our API version and metadata.name (at most
 * 63 characters, as it names the HAProxy Deployment and is a label value;
 * required with KANARY_CHECK_REQUIRE_NAME), validate, resolve every route
 * against cat, and fill in the defaults.
 * Every problem goes into errs; the Kanary is acceptable when errs stays empty.
 * Returns 0 (with *ret_k, *ret_res and *ret_defaulted written, problems or
 * not), or -ENOMEM.
 * Ownership: *ret_k is the caller's (kanary_destroy); *ret_res is caller
 * storage to release with kanary_resolution_finish.
 */
int kanary_check(const struct json_object *obj, const struct catalog *cat, unsigned flags,
                 struct kanary **ret_k, struct kanary_resolution *ret_res, unsigned *ret_defaulted,
                 struct kerr_list *errs);

#endif
