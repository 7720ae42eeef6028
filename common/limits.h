/* SPDX-License-Identifier: Apache-2.0 */
#ifndef KANARY_LIMITS_H
#define KANARY_LIMITS_H

/*
 * Every buffer and list in Kanary has a named ceiling, and they all live here.
 * Going past one is an error reported to the caller, never a silent truncation.
 */

/* The Kanary resource (DESIGN §1). */
#define KANARY_MAX_ROUTES	     16
#define KANARY_MAX_WEIGHT	     100
#define KANARY_WEIGHT_TOTAL	     100
#define KANARY_MAX_REPLICAS	     100
#define KANARY_DEFAULT_REPLICAS	     2
#define KANARY_MAX_DNS_LABEL	     63
#define KANARY_MAX_NAME		     253
#define KANARY_MAX_PORT_NAME	     15

/* Input: one file or stdin, one admission body, nesting, documents per stream. */
#define KANARY_MAX_INPUT	     (16u * 1024 * 1024)
#define KANARY_MAX_ADMISSION_BODY    (3u * 1024 * 1024)
#define KANARY_MAX_DEPTH	     64
#define KANARY_MAX_DOCUMENTS	     10000

/* Field errors kept per object; past it one more line says how many were left out. */
#define KANARY_MAX_FIELD_ERRORS	     100
/* A value echoed inside an error message is cut here, and the cut is marked. */
#define KANARY_MAX_ERROR_VALUE	     80

/* Resolution and rendering. */
#define KANARY_MAX_ENDPOINTS	     4096
#define KANARY_MAX_CONFIG	     (4u * 1024 * 1024)
#define KANARY_MAX_OUTPUT	     (16u * 1024 * 1024)

/* The Kubernetes client. */
#define KANARY_MAX_RESPONSE	     (64u * 1024 * 1024)
#define KANARY_MAX_WATCH_LINE	     (16u * 1024 * 1024)
#define KANARY_MAX_URL		     4096
#define KANARY_MAX_TOKEN	     (64u * 1024)

#endif
