/* SPDX-License-Identifier: Apache-2.0 */
/* Every named ceiling of Kanary's buffers and lists, in one place. */
#ifndef KANARY_LIMITS_H
#define KANARY_LIMITS_H

/*
 * Every buffer and list in Kanary has a named ceiling, and they all live here.
 * Going past one is an error reported to the caller, never a silent truncation.
 */

/* The Kanary resource: routes, weights, replicas, names. */
#define KANARY_MAX_ROUTES       16
#define KANARY_MAX_WEIGHT       100
#define KANARY_WEIGHT_TOTAL     100
#define KANARY_MAX_REPLICAS     10
#define KANARY_DEFAULT_REPLICAS 2
#define KANARY_MAX_DNS_LABEL    63
#define KANARY_MAX_NAME         253
/* Image pull Secrets named for the HAProxy pods (--haproxy-image-pull-secrets). */
#define KANARY_MAX_PULL_SECRETS 16
#define KANARY_MAX_PORT_NAME    15

/* Input: one file or stdin, one admission body, nesting, documents per stream. */
#define KANARY_MAX_INPUT          (16u * 1024 * 1024)
#define KANARY_MAX_ADMISSION_BODY (3u * 1024 * 1024)
#define KANARY_MAX_DEPTH          64
#define KANARY_MAX_DOCUMENTS      10000
/*
 * YAML anchors per document, and the nodes all aliases of one stream may add
 * (an alias bomb is refused here, as go-yaml refuses excessive aliasing), the
 * digits of a plain scalar read as a number, and a reader's message.
 */
#define KANARY_MAX_ANCHORS     10000
#define KANARY_MAX_ALIAS_NODES 100000u
#define KANARY_MAX_NUMBER      400
#define KANARY_MAX_DOC_MESSAGE 256

/* Field errors kept per object; past it one more line says how many were left out. */
#define KANARY_MAX_FIELD_ERRORS 100
/* A value echoed inside an error message is cut here, and the cut is marked. */
#define KANARY_MAX_ERROR_VALUE 80

/* Resolution and rendering. */
#define KANARY_MAX_ENDPOINTS 4096
#define KANARY_MAX_CONFIG    (4u * 1024 * 1024)
#define KANARY_MAX_OUTPUT    (16u * 1024 * 1024)

/* The Kubernetes client. */
#define KANARY_MAX_RESPONSE   (64u * 1024 * 1024)
#define KANARY_MAX_WATCH_LINE (16u * 1024 * 1024)
#define KANARY_MAX_URL        4096
#define KANARY_MAX_TOKEN      (64u * 1024)
/* A Status message, a configuration error or a watch ERROR kept for a person. */
#define KANARY_MAX_KUBE_MESSAGE 1024
/* A file path (kubeconfig, token, certificates) and the KUBECONFIG list. */
#define KANARY_MAX_PATH        4096
#define KANARY_MAX_KUBECONFIGS 16
/* A certificate, key or CA bundle given inline (*-data) or read from a file. */
#define KANARY_MAX_CREDENTIAL (1024u * 1024)
/* A cache key "namespace/name". */
#define KANARY_MAX_KEY (KANARY_MAX_DNS_LABEL + 1 + KANARY_MAX_NAME)
/* A resourceVersion, a continue token and a label or field selector. */
#define KANARY_MAX_RESOURCE_VERSION 256
#define KANARY_MAX_CONTINUE         (16u * 1024)
#define KANARY_MAX_SELECTOR         1024
/* Items gathered over every page of one kube_list (informers decode page by page: no ceiling). */
#define KANARY_MAX_LIST_ITEMS (1024u * 1024)
/* Distinct Events the recorder remembers for aggregation (client-go: 4096). */
#define KANARY_MAX_EVENT_CACHE 4096
/* Events waiting for the recorder's writer; past it they are dropped (client-go: 1000). */
#define KANARY_MAX_EVENT_QUEUE 1000

/* The controller. */
/* Keys in the work queue's sets, and objects in the controller's own indexes. */
#define KANARY_MAX_QUEUE_KEYS    (1024u * 1024)
#define KANARY_MAX_INDEX_ENTRIES (1024u * 1024)
/* A condition message in a Kanary's status (the CRD allows 32 kB). */
#define KANARY_MAX_STATUS_MESSAGE 4096
/*
 * What the Ready condition tells of the HAProxy pods: one pod's problem (the
 * kubelet's message, cut and marked past it), and the whole list (past it,
 * "... and N more pods").
 */
#define KANARY_MAX_POD_PROBLEM   512
#define KANARY_MAX_POD_DIAGNOSIS 1536
/* Reconcile threads, and Kanaries with per-route series on /metrics. */
#define KANARY_MAX_WORKERS          64
#define KANARY_MAX_METRICS_KANARIES (64u * 1024)
/* A /metrics answer. */
#define KANARY_MAX_METRICS_BODY (64u * 1024 * 1024)

/* The agent (issue #13): one state.json, and one answer of HAProxy's admin socket. */
#define KANARY_MAX_STATE          (4u * 1024 * 1024)
#define KANARY_MAX_HAPROXY_ANSWER (32u * 1024 * 1024)
/* Runtime API commands one apply may send: per slot at most six, two servers each. */
#define KANARY_MAX_AGENT_COMMANDS (16u * KANARY_MAX_ROUTES * KANARY_MAX_ENDPOINTS)

/* The admission webhook. */
/* One log line; a longer message is cut and marked. */
#define KANARY_MAX_LOG_LINE 8192
/* Certificates in one serving chain file (leaf and intermediates). */
#define KANARY_MAX_CERT_CHAIN 8
/* The webhook's GnuTLS priority string, built from --tls-min-version and --tls-cipher-suites. */
#define KANARY_MAX_TLS_PRIORITIES 512
/* EndpointSlices of one Service looked up for one admission request. */
#define KANARY_MAX_SERVICE_SLICES 1024
/* Idle API clients kept for the live lookups on a cache miss. */
#define KANARY_MAX_LOOKUP_CLIENTS 16
/* Per-connection memory of the HTTP server: request line, headers and read buffer. */
#define KANARY_MAX_CONNECTION_MEMORY (64u * 1024)
/* The text of one /metrics answer. */
#define KANARY_MAX_WEBHOOK_METRICS (1024u * 1024)

/* The longest duration any flag of either daemon takes: a day. */
#define KANARY_MAX_FLAG_DURATION_MS (24L * 3600 * 1000)

#endif
