/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a whole file or descriptor into memory, up to a ceiling. */
#ifndef KANARY_IO_FILE_READ_H
#define KANARY_IO_FILE_READ_H

#include <stddef.h>

/*
 * Reads all of fd into a NUL-terminated buffer of at most max bytes; -E2BIG
 * past max, -errno when a read fails. ret_len may be NULL.
 * Not for a secret: the text passes through a stack buffer and grown blocks
 * that are freed unwiped; secret_read_fd (common/io/secret_read.h) leaves no copy.
 * Ownership: *ret is the caller's (free()); fd stays open.
 */
int file_read_fd(int fd, size_t max, char **ret, size_t *ret_len);

/* The same for the file at path, opened and closed here. */
int file_read_path(const char *path, size_t max, char **ret, size_t *ret_len);

#endif
