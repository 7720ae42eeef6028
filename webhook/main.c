/* SPDX-License-Identifier: Apache-2.0 */
/* kanary-webhook: picks the subcommand (serve or check). */
#include <stdio.h>
#include <string.h>

#include "webhook/cmd_check.h"
#include "webhook/cmd_serve.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: kanary-webhook <command> [options]\n"
	             "\n"
	             "The Kanary admission webhook.\n"
	             "\n"
	             "Commands:\n"
	             "  serve               run the admission webhook (TLS) and its health server\n"
	             "  check [-f FILE]...  check Kanaries offline, as admission would\n"
	             "\n"
	             "Run `kanary-webhook <command> --help` for a command's options.\n"
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
		printf("kanary-webhook %s\n", KANARY_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "check") == 0)
		return cmd_check_main(argc - 1, argv + 1);
	fprintf(stderr, "kanary-webhook: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
