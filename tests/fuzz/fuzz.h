/* SPDX-License-Identifier: Apache-2.0 */
/* What every fuzz target defines, and how it reports a broken invariant. */
#ifndef KANARY_FUZZ_H
#define KANARY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Each tests/fuzz/fuzz_<target>.c defines LLVMFuzzerTestOneInput, called with
 * one input at a time, and may define LLVMFuzzerInitialize (FUZZ_NO_INIT
 * otherwise). Linked with libFuzzer (-Dfuzz=true, clang) it is fuzzed; linked
 * with tests/fuzz/replay.c (every other build) it runs each file named on its
 * command line once, so the seeds and every past finding replay in the unit
 * suite, under the sanitizers and under valgrind.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * A broken invariant is a finding like a crash: say which and abort, so
 * libFuzzer saves the input and the replay fails.
 */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__,       \
			        #cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif
