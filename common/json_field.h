/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a string out of a json-c object by key or by path. */
#ifndef KANARY_JSON_FIELD_H
#define KANARY_JSON_FIELD_H

struct json_object;

/*
 * The string at obj[key]; NULL when obj is NULL or not an object, or the
 * field is missing or not a string. Borrowed: valid while obj is.
 */
const char *json_field_str(const struct json_object *obj, const char *key);

/*
 * The string at obj[keys[0]][keys[1]]..., keys ending with NULL; NULL as
 * json_field_str. Borrowed: valid while obj is.
 */
const char *json_field_str_path(const struct json_object *obj, const char *const *keys);

/* The keys of a path, NULL added: json_field_str_path(o, JSON_FIELD_PATH("metadata", "name")). */
#define JSON_FIELD_PATH(...) ((const char *const[]){__VA_ARGS__, NULL})

#endif
