/* SPDX-License-Identifier: Apache-2.0 */
/* The daemons' log: one line per decision on standard error. */
#include "common/io/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/limits.h"

static int verbosity;

void log_set_verbosity(int v)
{
	verbosity = v;
}

bool log_enabled(int v)
{
	return verbosity >= v;
}

static const char *level_name(enum log_level level)
{
	switch (level) {
	case LOG_ERROR:
		return "ERROR";
	case LOG_WARNING:
		return "WARN ";
	case LOG_INFO:
		return "INFO ";
	case LOG_DEBUG:
		return "DEBUG";
	}
	return "?    ";
}

void log_vmsg(enum log_level level, const char *key, const char *fmt, va_list ap)
{
	static const char cut_mark[] = " ...(cut)";
	char line[KANARY_MAX_LOG_LINE];
	struct timespec ts;
	struct tm tm;
	size_t n, room;
	int w;

	if (level == LOG_DEBUG && verbosity < 1)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	w = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %.256s%s", ts.tv_nsec / 1000000,
	             level_name(level), key ? key : "", key ? ": " : "");
	if (w < 0)
		return;
	n += (size_t)w;
	/* Room for the cut mark and the newline; a longer message is cut and says so. */
	room = sizeof(line) - n - sizeof(cut_mark) - 1;
	w = vsnprintf(line + n, room + 1, fmt, ap);
	if (w < 0)
		return;
	if ((size_t)w > room) {
		n += room;
		memcpy(line + n, cut_mark, sizeof(cut_mark) - 1);
		n += sizeof(cut_mark) - 1;
	} else {
		n += (size_t)w;
	}
	for (size_t i = 0; i < n; i++) {
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	}
	line[n++] = '\n';
	for (size_t off = 0; off < n;) {
		ssize_t k = write(STDERR_FILENO, line + off, n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		off += (size_t)k;
	}
}

void log_msg(enum log_level level, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, key, fmt, ap);
	va_end(ap);
}
