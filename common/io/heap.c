/* SPDX-License-Identifier: Apache-2.0 */
/* Tuning glibc's allocator: fewer arenas, free pages handed back. */
#include <malloc.h>
#include <stdlib.h>

#include "common/io/heap.h"

/* gcc defines __SANITIZE_ADDRESS__ under -fsanitize=address; clang 14 only has __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#endif

void heap_limit_arenas(int n)
{
#ifndef HEAP_ASAN
	if (!getenv("MALLOC_ARENA_MAX"))
		(void)mallopt(M_ARENA_MAX, n);
#else
	(void)n;
#endif
}

void heap_trim(void)
{
#ifndef HEAP_ASAN
	(void)malloc_trim(0);
#endif
}

void heap_stats(struct heap_stats *st)
{
	*st = (struct heap_stats){0};
#ifndef HEAP_ASAN
	struct mallinfo2 mi = mallinfo2();

	st->in_use = mi.uordblks + mi.hblkhd;
	st->free = mi.fordblks;
	st->mmapped = mi.hblkhd;
	st->known = true;
#endif
}
