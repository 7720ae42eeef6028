/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KANARY_CONTROLLER_LOG_H
#define KANARY_CONTROLLER_LOG_H

#include "common/kube/config.h"

/*
 * One line per decision on standard error:
 *   2026-11-26T03:50:13.123Z info default/myapp: applied configuration 38d6aa4b
 * The level is the only global besides the stop flags (STYLE.md §13).
 */
enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO,
	LOG_WARNING,
	LOG_ERROR,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* key: the object's "namespace/name", or NULL for the process itself. */
void log_msg(enum log_level level, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A kube_logger that writes the Kubernetes client's messages through log_msg. */
struct kube_logger log_kube_logger(void);

#endif
