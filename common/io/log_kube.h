/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes client's messages, written to the daemons' log. */
#ifndef KANARY_IO_LOG_KUBE_H
#define KANARY_IO_LOG_KUBE_H

#include "common/kube/config.h"

/*
 * A kube_logger function (ctx unused): each message of the Kubernetes client
 * becomes one log line at the matching level, after "kube: ".
 */
void log_kube(void *ctx, enum kube_log_level level, const char *msg);

#endif
