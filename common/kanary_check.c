/* SPDX-License-Identifier: Apache-2.0 */
/* Checking one Kanary end to end: parse, default, validate and resolve against the cluster. */
#include "common/kanary_check.h"

#include <errno.h>
#include <string.h>

#include <json-c/json.h>

#include "common/json_field.h"
#include "common/kerr.h"

/* Only v1alpha1 exists; any other version of the group is refused by name. */
static void check_api_version(const struct json_object *obj, struct kerr_list *errs)
{
	const char *av = json_field_str(obj, "apiVersion");

	if (!av)
		return;
	if (strcmp(av, KANARY_API_VERSION) != 0)
		kerr_invalid_str(errs, "apiVersion", av, "supported values: \"%s\"",
		                 KANARY_API_VERSION);
}

int kanary_check(const struct json_object *obj, const struct catalog *cat, unsigned flags,
                 struct kanary **ret_k, struct kanary_resolution *ret_res, unsigned *ret_defaulted,
                 struct kerr_list *errs)
{
	struct kanary_resolution res;
	struct kanary *k = NULL;
	int r;

	check_api_version(obj, errs);
	r = kanary_from_json(obj, &k, errs);
	if (r < 0)
		return r;
	if (!k->name || !k->name[0]) {
		if (flags & KANARY_CHECK_REQUIRE_NAME)
			kerr_required(errs, "metadata.name");
	} else if (strlen(k->name) > KANARY_MAX_DNS_LABEL) {
		kerr_invalid_str(errs, "metadata.name", k->name,
		                 "must be no more than 63 characters (it names the HAProxy "
		                 "Deployment and is a label value)");
	}
	kanary_validate(k, errs);
	/* Past the route ceiling the routes were not all read; looking them up says nothing. */
	if (k->n_routes_seen > KANARY_MAX_ROUTES)
		r = -E2BIG;
	else
		r = kanary_resolve(k, cat, &res, errs);
	if (r == -ENOMEM) {
		kanary_destroy(k);
		return r;
	}
	if (r < 0) {
		/* A ceiling, reported in errs: hand back an empty resolution. */
		memset(&res, 0, sizeof(res));
	}
	*ret_defaulted = kanary_default(k, &res);
	*ret_k = k;
	*ret_res = res;
	return 0;
}
