/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static atomic_int log_level = LOG_INFO;

void log_set_level(enum log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level);
}

static const char *level_name(enum log_level level)
{
	switch (level) {
	case LOG_DEBUG:
		return "debug";
	case LOG_INFO:
		return "info";
	case LOG_WARNING:
		return "warning";
	case LOG_ERROR:
		return "error";
	}
	return "?";
}

static void log_vmsg(enum log_level level, const char *key, const char *fmt, va_list ap)
{
	char stamp[32], text[2048];
	struct timespec ts;
	struct tm tm;

	if ((int)level < atomic_load(&log_level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		stamp[0] = '\0';
	/* A message longer than the line is cut; a log line is for a person. */
	vsnprintf(text, sizeof(text), fmt, ap);
	/* One call per line, so lines of different threads do not interleave. */
	fprintf(stderr, "%s.%03ldZ %s %s%s%s\n", stamp, ts.tv_nsec / 1000000L, level_name(level),
	        key ? key : "", key ? ": " : "", text);
}

void log_msg(enum log_level level, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, key, fmt, ap);
	va_end(ap);
}

static void kube_log_fn(void *ctx, enum kube_log_level level, const char *msg)
{
	enum log_level l = LOG_ERROR;

	switch (level) {
	case KUBE_LOG_DEBUG:
		l = LOG_DEBUG;
		break;
	case KUBE_LOG_INFO:
		l = LOG_INFO;
		break;
	case KUBE_LOG_WARNING:
		l = LOG_WARNING;
		break;
	case KUBE_LOG_ERROR:
		l = LOG_ERROR;
		break;
	}
	log_msg(l, NULL, "%s", msg);
}

struct kube_logger log_kube_logger(void)
{
	struct kube_logger lg = {.fn = kube_log_fn, .ctx = NULL};

	return lg;
}
