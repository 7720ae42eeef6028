/* SPDX-License-Identifier: Apache-2.0 */
/* Tuning glibc's allocator: fewer arenas, free pages handed back. */
#include <malloc.h>
#include <stdlib.h>

#include "common/io/heap.h"

void heap_limit_arenas(int n)
{
#ifndef __SANITIZE_ADDRESS__
	if (!getenv("MALLOC_ARENA_MAX"))
		(void)mallopt(M_ARENA_MAX, n);
#else
	(void)n;
#endif
}

void heap_trim(void)
{
#ifndef __SANITIZE_ADDRESS__
	(void)malloc_trim(0);
#endif
}

void heap_stats(struct heap_stats *st)
{
	*st = (struct heap_stats){0};
#ifndef __SANITIZE_ADDRESS__
	struct mallinfo2 mi = mallinfo2();

	st->in_use = mi.uordblks + mi.hblkhd;
	st->free = mi.fordblks;
	st->mmapped = mi.hblkhd;
	st->known = true;
#endif
}
