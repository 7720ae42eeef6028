/* SPDX-License-Identifier: Apache-2.0 */
/* Runs a fuzz target once on each file named on the command line, without libFuzzer. */
/*
 * fuzz-replay-<target> FILE...: the main of a fuzz target in every build
 * that is not -Dfuzz=true. Each file is read whole and handed to
 * LLVMFuzzerTestOneInput in a buffer of exactly its size (no NUL after it,
 * as libFuzzer hands it), so a read past the end shows under ASan and
 * valgrind. Exit 0 when every file ran; a finding aborts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/io/file_read.h"
#include "common/limits.h"
#include "tests/fuzz/fuzz.h"

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize(&argc, &argv) != 0) {
		fprintf(stderr, "%s: initialisation failed\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		char *text, *exact;
		size_t len;
		int r;

		r = file_read_path(argv[i], KANARY_MAX_INPUT, &text, &len);
		if (r < 0) {
			fprintf(stderr, "%s: %s: %s\n", argv[0], argv[i], strerror(-r));
			return 2;
		}
		exact = malloc(len ? len : 1);
		if (!exact) {
			free(text);
			fprintf(stderr, "%s: out of memory\n", argv[0]);
			return 2;
		}
		memcpy(exact, text, len);
		free(text);
		LLVMFuzzerTestOneInput((const uint8_t *)exact, len);
		free(exact);
	}
	printf("%s: %d inputs ran\n", argv[0], argc - 1);
	return 0;
}
