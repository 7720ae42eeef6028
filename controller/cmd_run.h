/* SPDX-License-Identifier: Apache-2.0 */
/* The `kanary-controller run` subcommand: flags, election, workers, probes and signals. */
#ifndef KANARY_CONTROLLER_CMD_RUN_H
#define KANARY_CONTROLLER_CMD_RUN_H

/*
 * `kanary-controller run`: the controller daemon. Returns the exit status:
 * 0 after SIGTERM or SIGINT (current item finished, lease released), 1 when
 * leadership was lost or the daemon could not start, 2 for bad options.
 */
int cmd_run_main(int argc, char **argv);

#endif
