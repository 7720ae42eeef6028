/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KANARY_WEBHOOK_LOG_H
#define KANARY_WEBHOOK_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "common/kube/config.h"

/*
 * The daemon's log: one line per event on standard error,
 *   2025-11-26T03:43:00.123Z INFO  message
 * written with one write(2) so lines of different threads never mix.
 * Errors, warnings and info are always written; debug lines only at
 * verbosity (--v) 1 or more, and the per-request lines at 2 or more.
 */
enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Set once from main, before any thread starts. */
void log_set_verbosity(int v);
/* True when lines of verbosity v are written; test it before building costly text. */
bool log_enabled(int v);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* A kube_logger that writes the Kubernetes client's messages into this log. */
void log_kube(void *ctx, enum kube_log_level level, const char *msg);

#endif
