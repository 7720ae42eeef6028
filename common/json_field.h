/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a value out of a json-c object by key or by path: an object, a string, an integer. */
#ifndef KANARY_JSON_FIELD_H
#define KANARY_JSON_FIELD_H

#include <stdbool.h>
#include <stdint.h>

struct json_object;

/*
 * The value at obj[key]; NULL when obj is NULL or not an object, or the field
 * is missing. Borrowed: valid while obj is.
 */
struct json_object *json_field_get(const struct json_object *obj, const char *key);

/*
 * The value at obj[keys[0]][keys[1]]..., keys ending with NULL; NULL as
 * json_field_get at any step. Borrowed: valid while obj is.
 */
struct json_object *json_field_path(const struct json_object *obj, const char *const *keys);

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

/* The integer at obj[key] into *ret; false (nothing written) when it is missing or no integer. */
bool json_field_int(const struct json_object *obj, const char *key, int64_t *ret);

/* The same at a path. */
bool json_field_int_path(const struct json_object *obj, const char *const *keys, int64_t *ret);

/* The integer at obj[key], or dflt when it is missing or no integer. */
int64_t json_field_int_or(const struct json_object *obj, const char *key, int64_t dflt);

/* The keys of a path, NULL added: json_field_str_path(o, JSON_FIELD_PATH("metadata", "name")). */
#define JSON_FIELD_PATH(...) ((const char *const[]){__VA_ARGS__, NULL})

#endif
