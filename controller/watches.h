/* SPDX-License-Identifier: Apache-2.0 */
/* What the controller watches, and which Kanary each change wakes. */
#ifndef KANARY_CONTROLLER_WATCHES_H
#define KANARY_CONTROLLER_WATCHES_H

#include <stdbool.h>
#include <stddef.h>

#include "controller/controller.h"

/* Creates the informers with handlers that keep c->idx and feed c->queue. */
int watches_create(struct controller *c);
int watches_start(struct controller *c);
void watches_stop(struct controller *c);
void watches_destroy(struct controller *c);
bool watches_synced(struct controller *c, char *why, size_t size);
const char *watches_name(enum watched w);

#endif
