/* SPDX-License-Identifier: Apache-2.0 */
/* The daemons' log: one line per decision on standard error. */
#ifndef KANARY_IO_LOG_H
#define KANARY_IO_LOG_H

#include <stdarg.h>
#include <stdbool.h>

/*
 * The daemons' log: one line per decision on standard error,
 *   2026-11-26T03:50:13.123Z INFO  default/myapp: applied configuration 38d6aa4b
 * written with one write(2), so lines of different threads never mix; a
 * message never spans lines, and one longer than KANARY_MAX_LOG_LINE is cut
 * and says so. Errors, warnings and info are always written; debug lines at
 * verbosity 1 or more (--v). The verbosity is the one global besides the stop
 * flags, set once before threads start.
 */
enum log_level {
	LOG_ERROR = 0,
	LOG_WARNING,
	LOG_INFO,
	LOG_DEBUG,
};

void log_set_verbosity(int v);
/* True when lines of verbosity v are written; test it before building costly text. */
bool log_enabled(int v);

/* key: the object's "namespace/name", or NULL for the process itself. */
void log_msg(enum log_level level, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *key, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
