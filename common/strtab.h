/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Strings shared between cached records: one immutable, reference-counted
 * copy per distinct text (namespaces, label keys and values, port names),
 * process-wide, behind one lock.
 */
#ifndef KANARY_STRTAB_H
#define KANARY_STRTAB_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The shared copy of s with one more reference, the caller's, or NULL out
 * of memory. NULL and "" give a static "" that holds no reference.
 * Ownership: the caller drops its reference with strtab_release.
 */
const char *strtab_intern(const char *s);
/* Drops a reference taken by strtab_intern; the last one frees the copy. NULL does nothing. */
void strtab_release(const char *s);
/* Whether s is a copy strtab_intern returned (the static "" included). */
bool strtab_owns(const char *s);

struct strtab_stats {
	size_t strings; /* distinct texts held */
	size_t refs;    /* references to them */
	size_t bytes;   /* the copies and the table, each counted once */
};

void strtab_stats(struct strtab_stats *ret);

#endif
