/* SPDX-License-Identifier: Apache-2.0 */
/* What a field manager last applied to an object, as a digest: server-side apply's own record. */
#ifndef KANARY_APPLIED_H
#define KANARY_APPLIED_H

#include <stdbool.h>

struct buf;
struct json_object;

/*
 * The API server records, in metadata.managedFields, the set of fields each
 * manager's last server-side apply set (its fieldsV1). The live object
 * projected onto that set, for an object nobody else changed since, is what
 * was applied, less apiVersion, kind, metadata.name and metadata.namespace
 * (which name the object and are never in the set). The digest of both is
 * the SHA-256 of their canonical text: object members sorted by key
 * (bytewise), no space, strings with only '"', '\\' and control characters
 * escaped, integers in decimal. So a cache may keep 64 hex digits of an
 * object instead of the object, and compare them with what it would apply.
 *
 * Someone else changing a field the manager owns (an update or a forced
 * apply under another manager) takes the field out of the manager's set:
 * the digests differ. A field only another manager owns, or one the server
 * defaulted, is not in the set and changes nothing.
 */

/*
 * The fieldsV1 set of manager's operation Apply entry of obj's
 * managedFields (the main resource's, not a subresource's). Borrowed; NULL
 * when there is none.
 */
struct json_object *applied_fields(const struct json_object *obj, const char *manager);

/*
 * obj projected onto the fieldsV1 set fields: "f:<name>" a member,
 * "k:<json>" the items of an associative list whose key fields have those
 * values, "v:<json>" the items of a set equal to that value, "i:<n>" the
 * item at index n, "." (the node itself) adds nothing. A node of the set
 * with no member other than "." is a leaf: the live value is taken whole
 * (an empty object, a quantity, an atomic list). A member absent from obj
 * is left out. -ENOMEM, -EBADMSG for a malformed set (a key that is not
 * JSON). Ownership: *ret is the caller's.
 */
int applied_project(const struct json_object *obj, const struct json_object *fields,
                    struct json_object **ret);

/* Appends the canonical text of v to out. -ENOMEM, -E2BIG past out's ceiling. */
int applied_canonical(const struct json_object *v, struct buf *out);

/*
 * The digest (64 hex digits) of what manager last applied to live (with its
 * managedFields). -ENOENT when manager has no Apply entry, -EBADMSG for a
 * malformed one, -ENOMEM, -E2BIG.
 */
int applied_digest_live(const struct json_object *live, const char *manager, char ret_hex[65]);

/*
 * The digest of want, an object to apply (apiVersion, kind, metadata.name
 * and metadata.namespace left out, and metadata when nothing else is in
 * it). -ENOMEM, -E2BIG.
 */
int applied_digest_want(const struct json_object *want, char ret_hex[65]);

#endif
