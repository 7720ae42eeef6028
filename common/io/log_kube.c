/* SPDX-License-Identifier: Apache-2.0 */
/* The Kubernetes client's messages, written to the daemons' log. */
#include "common/io/log_kube.h"

#include "common/io/log.h"

void log_kube(void *ctx, enum kube_log_level level, const char *msg)
{
	static const enum log_level map[] = {
	    [KUBE_LOG_DEBUG] = LOG_DEBUG,
	    [KUBE_LOG_INFO] = LOG_INFO,
	    [KUBE_LOG_WARNING] = LOG_WARNING,
	    [KUBE_LOG_ERROR] = LOG_ERROR,
	};

	(void)ctx;
	log_msg((unsigned)level < sizeof(map) / sizeof(map[0]) ? map[level] : LOG_INFO, NULL,
	        "kube: %s", msg);
}
