/* SPDX-License-Identifier: Apache-2.0 */
/* kanary-controller: picks the subcommand (run or render). */
#include <stdio.h>
#include <string.h>

#include "controller/cmd_render.h"
#include "controller/cmd_run.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: kanary-controller <command> [options]\n"
	             "\n"
	             "The Kanary controller.\n"
	             "\n"
	             "Commands:\n"
	             "  run [options]                        run the controller\n"
	             "  render [-f FILE]... [--config-only]  print what would be applied\n"
	             "\n"
	             "Run `kanary-controller <command> --help` for a command's options.\n"
	             "  -h, --help     show this help\n"
	             "  --version      print the version\n");
}

int main(int argc, char **argv)
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
		printf("kanary-controller %s\n", KANARY_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "render") == 0)
		return cmd_render_main(argc - 1, argv + 1);
	fprintf(stderr, "kanary-controller: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
