/* SPDX-License-Identifier: Apache-2.0 */
/* The `kanary-controller agent` subcommand: the HAProxy pod's sidecar. */
#ifndef KANARY_CONTROLLER_CMD_AGENT_H
#define KANARY_CONTROLLER_CMD_AGENT_H

/*
 * `kanary-controller agent --kanary NAME --namespace NS --state-configmap CM
 * --socket PATH [--metrics-bind ADDR]`, or `--state-file FILE [--once]` without
 * a cluster. Returns the exit status.
 */
int cmd_agent_main(int argc, char **argv);

#endif
