/* SPDX-License-Identifier: Apache-2.0 */
/* The offline `kanary-webhook check` subcommand: would admission accept these Kanaries. */
#ifndef KANARY_WEBHOOK_CMD_CHECK_H
#define KANARY_WEBHOOK_CMD_CHECK_H

/*
 * `kanary-webhook check [-f FILE]...`: whether admission would accept each Kanary, offline
 * (README, Offline tools). Returns the exit status.
 */
int cmd_check_main(int argc, char **argv);

#endif
