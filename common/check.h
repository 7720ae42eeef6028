/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KANARY_CHECK_H
#define KANARY_CHECK_H

#include "common/kanary.h"
#include "common/resolve.h"

struct json_object;
struct kerr_list;

/*
 * Everything admission does to one Kanary, shared by the webhook, the
 * controller's defensive re-check and the offline check and render tools:
 * read it (kanary_from_json), require metadata.name and our API version,
 * validate, resolve every route against cat, and fill in the defaults.
 * Every problem goes into errs; the Kanary is acceptable when errs stays empty.
 * Returns 0 (with *ret_k, *ret_res and *ret_defaulted written, problems or
 * not), or -ENOMEM.
 * Ownership: *ret_k is the caller's (kanary_destroy); *ret_res is caller
 * storage to release with kanary_resolution_finish.
 */
int kanary_check(const struct json_object *obj, const struct catalog *cat, struct kanary **ret_k,
		 struct kanary_resolution *ret_res, unsigned *ret_defaulted,
		 struct kerr_list *errs);

#endif
