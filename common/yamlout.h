/* SPDX-License-Identifier: Apache-2.0 */
/* Writing json-c objects out as YAML documents. */
#ifndef KANARY_YAMLOUT_H
#define KANARY_YAMLOUT_H

struct buf;
struct json_object;

/*
 * Appends obj to out as one YAML document starting with "---": block style,
 * keys in the object's own order, multi-line strings as literal blocks,
 * strings that would read back as another type (YAML 1.1 or 1.2: "80",
 * "yes", "null", "", "10.244.1.11") quoted. Deterministic. On failure out is
 * left as it was.
 * Returns 0, -E2BIG when out's ceiling is reached, -EINVAL for a string that
 * is not UTF-8, a number that is infinite or NaN (JSON has none), or nesting
 * deeper than KANARY_MAX_DEPTH, -ENOMEM.
 */
int yamlout_document(const struct json_object *obj, struct buf *out);

#endif
