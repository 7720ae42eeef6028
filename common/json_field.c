/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a string out of a json-c object by key or by path. */
#include "common/json_field.h"

#include <stddef.h>

#include <json-c/json.h>

const char *json_field_str(const struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!obj || !json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

const char *json_field_str_path(const struct json_object *obj, const char *const *keys)
{
	struct json_object *cur = (struct json_object *)obj;

	for (; *keys; keys++)
		if (!cur || !json_object_object_get_ex(cur, *keys, &cur))
			return NULL;
	return json_object_is_type(cur, json_type_string) ? json_object_get_string(cur) : NULL;
}
