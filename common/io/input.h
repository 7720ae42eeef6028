/* SPDX-License-Identifier: Apache-2.0 */
/* Loading the offline tools' input files and standard input as one list of documents. */
#ifndef KANARY_IO_INPUT_H
#define KANARY_IO_INPUT_H

#include <stddef.h>

struct json_object;

/* Why input could not be read, for a person: "<file>: <reason>". */
struct input_err {
	char msg[512];
};

/*
 * Reads every file in paths ("-" is standard input; n == 0 reads standard
 * input) as YAML or JSON streams and returns one json-c array of every
 * document in order, with the items of each `kind: List` document in its place.
 * Returns 0; -E2BIG for a file over KANARY_MAX_INPUT; -EINVAL for a stream
 * that does not parse; -errno when a file cannot be read. ret_err says which
 * file and why. A reader's warnings (a key repeated in one mapping) go to
 * standard error, after "<prog>: <file>: warning: ".
 * Ownership: *ret_docs is a new reference the caller puts.
 */
int input_load(const char *prog, const char *const *paths, size_t n, struct json_object **ret_docs,
               struct input_err *ret_err);

#endif
