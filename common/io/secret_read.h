/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a file that holds a secret (a key, a token, a kubeconfig) without leaving copies. */
#ifndef KANARY_IO_SECRET_READ_H
#define KANARY_IO_SECRET_READ_H

#include <stddef.h>

/*
 * Reads all of fd into one NUL-terminated heap buffer of at most max bytes,
 * sized from fstat. Unlike file_read_fd it leaves no copy behind: no stack
 * buffer, a buffer outgrown (the file grew meanwhile, or a pipe) is wiped
 * before it is freed, and so is the buffer on every failure. Exactly max
 * bytes is accepted, one more is -E2BIG; -errno when fstat or a read fails;
 * -ENOMEM. ret_len may be NULL. *ret and *ret_len are written only on success.
 * Ownership: *ret is the caller's, released with secret_free(*ret, *ret_len)
 * (the length, not strlen: the text may hold a NUL, or have been cut by one).
 * fd stays open.
 */
int secret_read_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* Wipes len bytes of s with explicit_bzero (a wipe kept by the compiler) and frees it;
 * NULL does nothing. */
void secret_free(char *s, size_t len);

/*
 * Wipes every string in the json-c value v in place, through its arrays and
 * objects as deep as the parsers go (KANARY_MAX_DEPTH, and a stream's array
 * of documents around them), before the caller puts it: the strings of a
 * parsed secret (a kubeconfig's token, key or password) are heap memory of
 * their objects. Keys, numbers and booleans stay. NULL does nothing.
 * Ownership: borrows v.
 */
struct json_object;
void secret_wipe_json(struct json_object *v);

#endif
