/* SPDX-License-Identifier: Apache-2.0 */
/* The wall clock as Kubernetes writes a metav1.Time: RFC 3339 in UTC, whole seconds. */
#ifndef KANARY_IO_WALLCLOCK_H
#define KANARY_IO_WALLCLOCK_H

#include <stddef.h>

/* Ceiling of the text wallclock_rfc3339 writes, with its NUL. */
#define WALLCLOCK_RFC3339_SIZE 32

/* Now, as "2006-01-02T15:04:05Z", into out[size]; "" when it does not fit. */
void wallclock_rfc3339(char *out, size_t size);

#endif
