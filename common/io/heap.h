/* SPDX-License-Identifier: Apache-2.0 */
/* Tuning glibc's allocator: fewer arenas, free pages handed back. */
#ifndef KANARY_IO_HEAP_H
#define KANARY_IO_HEAP_H

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

#endif
