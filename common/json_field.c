/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a value out of a json-c object by key or by path: an object, a string, an integer. */
#include "common/json_field.h"

#include <stddef.h>

#include <json-c/json.h>

struct json_object *json_field_get(const struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!obj || !json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

struct json_object *json_field_path(const struct json_object *obj, const char *const *keys)
{
	struct json_object *cur = (struct json_object *)obj;

	for (; *keys; keys++)
		if (!cur || !json_object_object_get_ex(cur, *keys, &cur))
			return NULL;
	return cur;
}

static const char *as_str(const struct json_object *v)
{
	return v && json_object_is_type(v, json_type_string)
	           ? json_object_get_string((struct json_object *)v)
	           : NULL;
}

static bool as_int(const struct json_object *v, int64_t *ret)
{
	if (!v || !json_object_is_type(v, json_type_int))
		return false;
	*ret = json_object_get_int64(v);
	return true;
}

const char *json_field_str(const struct json_object *obj, const char *key)
{
	return as_str(json_field_get(obj, key));
}

const char *json_field_str_path(const struct json_object *obj, const char *const *keys)
{
	return as_str(json_field_path(obj, keys));
}

bool json_field_int(const struct json_object *obj, const char *key, int64_t *ret)
{
	return as_int(json_field_get(obj, key), ret);
}

bool json_field_int_path(const struct json_object *obj, const char *const *keys, int64_t *ret)
{
	return as_int(json_field_path(obj, keys), ret);
}

int64_t json_field_int_or(const struct json_object *obj, const char *key, int64_t dflt)
{
	int64_t v;

	return json_field_int(obj, key, &v) ? v : dflt;
}
