/* SPDX-License-Identifier: Apache-2.0 */
#include "webhook/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/limits.h"

/* The one mutable global besides the stop flags (STYLE 13): written before threads start. */
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
	case LOG_LEVEL_ERROR:
		return "ERROR";
	case LOG_LEVEL_WARNING:
		return "WARN ";
	case LOG_LEVEL_INFO:
		return "INFO ";
	case LOG_LEVEL_DEBUG:
		return "DEBUG";
	}
	return "?    ";
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[KANARY_MAX_LOG_LINE];
	struct timespec ts;
	struct tm tm;
	size_t n, cut;
	int w;

	if (level == LOG_LEVEL_DEBUG && verbosity < 1)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	w = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", ts.tv_nsec / 1000000,
	             level_name(level));
	if (w < 0)
		return;
	n += (size_t)w;
	/* Room for the cut marker and the newline; a longer message is cut and says so. */
	cut = sizeof(line) - n - sizeof(" ...(cut)\n");
	w = vsnprintf(line + n, cut + 1, fmt, ap);
	if (w < 0)
		return;
	if ((size_t)w > cut) {
		n += cut;
		memcpy(line + n, " ...(cut)", sizeof(" ...(cut)") - 1);
		n += sizeof(" ...(cut)") - 1;
	} else {
		n += (size_t)w;
	}
	/* A message never spans lines: a newline inside it is shown as a space. */
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

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_kube(void *ctx, enum kube_log_level level, const char *msg)
{
	static const enum log_level map[] = {
	    [KUBE_LOG_DEBUG] = LOG_LEVEL_DEBUG,
	    [KUBE_LOG_INFO] = LOG_LEVEL_INFO,
	    [KUBE_LOG_WARNING] = LOG_LEVEL_WARNING,
	    [KUBE_LOG_ERROR] = LOG_LEVEL_ERROR,
	};

	(void)ctx;
	log_msg((unsigned)level < sizeof(map) / sizeof(map[0]) ? map[level] : LOG_LEVEL_INFO,
	        "kube: %s", msg);
}
