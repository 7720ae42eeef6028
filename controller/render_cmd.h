/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KANARY_CONTROLLER_RENDER_CMD_H
#define KANARY_CONTROLLER_RENDER_CMD_H

/* `kanary-controller render [-f FILE]... [--config-only]`: DESIGN §7. Returns the exit status. */
int render_main(int argc, char **argv);

#endif
