/* SPDX-License-Identifier: Apache-2.0 */
/* kanary-webhook: picks the subcommand (serve or check). */
#include <stdio.h>

#include "common/io/subcommand.h"
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
	static const struct subcommand cmds[] = {
	    {"serve", cmd_serve_main},
	    {"check", cmd_check_main},
	};

	return subcommand_run("kanary-webhook", usage, cmds, sizeof(cmds) / sizeof(cmds[0]), argc,
	                      argv);
}
