/* SPDX-License-Identifier: Apache-2.0 */
/* The offline `kanary-controller render` subcommand: the objects a Kanary would become. */
#ifndef KANARY_CONTROLLER_CMD_RENDER_H
#define KANARY_CONTROLLER_CMD_RENDER_H

/*
 * `kanary-controller render [-f FILE]... [--config-only]`: the objects the controller would
 * apply, offline (README, Offline tools). Returns the exit status.
 */
int cmd_render_main(int argc, char **argv);

#endif
