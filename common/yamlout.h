/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KANARY_YAMLOUT_H
#define KANARY_YAMLOUT_H

struct buf;
struct json_object;

/*
 * Appends obj to out as one YAML document starting with "---": block style,
 * keys in the object's own order, multi-line strings as literal blocks,
 * strings that would read back as another type quoted. Deterministic.
 * Returns 0, -E2BIG when out's ceiling is reached, -ENOMEM.
 */
int yamlout_document(const struct json_object *obj, struct buf *out);

#endif
