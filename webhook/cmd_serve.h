/* SPDX-License-Identifier: Apache-2.0 */
/* The `kanary-webhook serve` subcommand: flags, wiring and signals of the admission server. */
#ifndef KANARY_WEBHOOK_CMD_SERVE_H
#define KANARY_WEBHOOK_CMD_SERVE_H

/*
 * `kanary-webhook serve`: the admission webhook daemon. argv[0] is "serve".
 * Returns the exit status: 0 after a clean shutdown (SIGTERM or SIGINT),
 * 1 when it could not start, 2 for a usage error.
 */
int cmd_serve_main(int argc, char **argv);

#endif
