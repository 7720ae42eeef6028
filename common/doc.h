/* SPDX-License-Identifier: Apache-2.0 */
/* Reading YAML and JSON streams into json-c documents, as kubectl reads a manifest. */
#ifndef KANARY_DOC_H
#define KANARY_DOC_H

#include <stddef.h>

#include "common/limits.h"

struct json_object;

/* Why a stream could not be read, for a person: "line 3, column 7: ...". */
struct doc_err {
	char msg[KANARY_MAX_DOC_MESSAGE];
};

/* Where a reader's warnings go, one message at a time ("line 6, column 3: ..."). */
struct doc_warner {
	void (*fn)(void *ctx, const char *msg);
	void *ctx;
};

/*
 * Reads a YAML or JSON stream of one or more documents into a new json-c
 * array holding one value per non-empty document, in order, decoding what
 * kubectl decodes to the same values (README.md, "Offline tools"):
 * - JSON when the text is JSON; else YAML (flow style, comments, ...).
 * - Plain scalars as go-yaml v2 reads them: null ~ and the empty scalar;
 *   y/yes/on/true and n/no/off/false in three casings; integers with '_'
 *   ignored and Go's prefixes (0x10, 0o17, 017, 0b101, +80); decimal floats.
 *   Quoted and block scalars are strings; !!str, !!int, !!float, !!bool,
 *   !!null are honoured; any other tag gives a string.
 * - A whole number written as a float (80.0, 8e1) is an integer below 2^63,
 *   as it reaches the API server; keys are the resolved values printed.
 * - Anchors, aliases and merge keys (<<) are expanded; all aliases of a
 *   stream together may add at most KANARY_MAX_ALIAS_NODES nodes.
 * - A key repeated in one mapping keeps its last value, and warn hears of it.
 *
 * Rejected, with -EINVAL and ret_err filled: malformed input, nesting deeper
 * than KANARY_MAX_DEPTH, more than KANARY_MAX_DOCUMENTS documents, aliases past
 * their bound, null or non-scalar keys, .inf and .nan (JSON has no such
 * number; kubectl refuses them). -E2BIG past KANARY_MAX_INPUT bytes, -ENOMEM.
 *
 * Ownership: on success *ret_docs is a new reference the caller puts. warn
 * may be NULL.
 */
int doc_parse_stream_warn(const char *data, size_t len, const struct doc_warner *warn,
                          struct json_object **ret_docs, struct doc_err *ret_err);

/* doc_parse_stream_warn() with no warnings. */
int doc_parse_stream(const char *data, size_t len, struct json_object **ret_docs,
                     struct doc_err *ret_err);

#endif
