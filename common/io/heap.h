/* SPDX-License-Identifier: Apache-2.0 */
/* Tuning glibc's allocator: fewer arenas, free pages handed back. */
#ifndef KANARY_IO_HEAP_H
#define KANARY_IO_HEAP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Both do nothing under AddressSanitizer: its allocator replaces malloc, so
 * glibc's arenas hold nothing of ours, and calling into them anyway crashed
 * (mallopt's arena bookkeeping aborted at a thread's exit, malloc_trim read a
 * NULL arena: "SEGV in mtrim").
 */

/* At most n arenas, unless MALLOC_ARENA_MAX in the environment says otherwise. */
void heap_limit_arenas(int n);

/* Hands the whole free pages of every arena back to the system. */
void heap_trim(void);

/* What malloc holds: bytes in use by the program, and free bytes it keeps. */
struct heap_stats {
	size_t in_use;  /* allocated chunks, mmapped ones included */
	size_t free;    /* free chunks inside the arenas (fragmentation, or not yet trimmed) */
	size_t mmapped; /* of in_use, chunks mapped on their own */
	bool known;     /* false under AddressSanitizer, whose allocator glibc cannot see */
};

void heap_stats(struct heap_stats *st);

#endif
