/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KANARY_DOC_H
#define KANARY_DOC_H

#include <stddef.h>

struct json_object;

/* Why a stream could not be read, for a person: "line 3, column 7: ...". */
struct doc_err {
	char msg[256];
};

/*
 * Reads a YAML or JSON stream of one or more documents into a new json-c
 * array holding one value per non-empty document, in order. JSON is read when
 * the first significant byte is '{' or '['; otherwise YAML (1.2 core schema for
 * plain scalars: null, booleans, integers, floats, else strings; quoted and
 * block scalars are strings; !!str, !!int, !!float, !!bool, !!null honoured).
 *
 * Rejected, with -EINVAL and ret_err filled: malformed input, nesting deeper
 * than KANARY_MAX_DEPTH, more than KANARY_MAX_DOCUMENTS documents, aliases and
 * anchors (they expand without bound), duplicate mapping keys, non-scalar keys.
 * -E2BIG past KANARY_MAX_INPUT bytes, -ENOMEM.
 *
 * Ownership: on success *ret_docs is a new reference the caller puts.
 */
int doc_parse_stream(const char *data, size_t len, struct json_object **ret_docs,
                     struct doc_err *ret_err);

#endif
