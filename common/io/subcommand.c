/* SPDX-License-Identifier: Apache-2.0 */
/* A program's first argument picking one of its subcommands. */
#include "common/io/subcommand.h"

#include <string.h>

int subcommand_run(const char *prog, void (*usage)(FILE *out), const struct subcommand *cmds,
                   size_t n, int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("%s %s\n", prog, KANARY_VERSION);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].main(argc - 1, argv + 1);
	fprintf(stderr, "%s: unknown command \"%s\"\n", prog, argv[1]);
	usage(stderr);
	return 2;
}
