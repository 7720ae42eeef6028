/* SPDX-License-Identifier: Apache-2.0 */
/* kanary-controller: picks the subcommand (run, render or agent). */
#include <stdio.h>

#include "common/io/subcommand.h"
#include "controller/cmd_agent.h"
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
	             "  agent [options]                      apply a Kanary's state to HAProxy\n"
	             "                                       (the HAProxy pod's sidecar)\n"
	             "\n"
	             "Run `kanary-controller <command> --help` for a command's options.\n"
	             "  -h, --help     show this help\n"
	             "  --version      print the version\n");
}

int main(int argc, char **argv)
{
	static const struct subcommand cmds[] = {
	    {"run", cmd_run_main},
	    {"render", cmd_render_main},
	    {"agent", cmd_agent_main},
	};

	return subcommand_run("kanary-controller", usage, cmds, sizeof(cmds) / sizeof(cmds[0]),
	                      argc, argv);
}
