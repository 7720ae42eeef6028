/* SPDX-License-Identifier: Apache-2.0 */
/* A program's first argument picking one of its subcommands. */
#ifndef KANARY_IO_SUBCOMMAND_H
#define KANARY_IO_SUBCOMMAND_H

#include <stddef.h>
#include <stdio.h>

struct subcommand {
	const char *name;
	int (*main)(int argc, char **argv); /* given argv from the subcommand's name on */
};

/*
 * Runs the subcommand argv[1] names and returns its exit status. "-h" and
 * "--help" print usage on standard output (0); "--version" prints
 * "<prog> <version>" (0); no argument or an unknown one prints usage on
 * standard error (2).
 */
int subcommand_run(const char *prog, void (*usage)(FILE *out), const struct subcommand *cmds,
                   size_t n, int argc, char **argv);

#endif
