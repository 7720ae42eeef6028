/* SPDX-License-Identifier: Apache-2.0 */
/* The webhook's two HTTP servers: admission over TLS, and probes and metrics in plain HTTP. */
#ifndef KANARY_WEBHOOK_SERVER_H
#define KANARY_WEBHOOK_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct certs;
struct lookup;
struct metrics;

/*
 * The two HTTP servers of kanary-webhook serve, both libmicrohttpd daemons
 * with their own internal threads:
 *
 *   - admission, over TLS 1.2 or 1.3 (GnuTLS): POST /validate and POST
 *     /mutate with a JSON AdmissionReview body. Other paths 404, other
 *     methods 405, other content types 415, a body past
 *     KANARY_MAX_ADMISSION_BODY 413, a body that is no AdmissionReview 400, a
 *     failed Service lookup 500. A thread pool, a connection limit and an
 *     idle timeout; the certificate comes from certs at every handshake.
 *   - health, plain HTTP: GET /healthz (alive), /readyz (the caches have
 *     synced and no shutdown has begun) and /metrics.
 */
struct server_options {
	const struct sockaddr *tls_addr; /* copied */
	socklen_t tls_addr_len;
	const struct sockaddr *health_addr;
	socklen_t health_addr_len;
	unsigned threads;              /* admission thread pool size, >= 1 */
	unsigned max_connections;      /* admission connections open at once */
	unsigned connection_timeout_s; /* idle connections are closed after it */
	const char *tls_priorities;    /* GnuTLS priority string (certs_tls_priorities) */
	struct certs *certs;           /* all borrowed; must outlive the server */
	struct lookup *lookup;
	struct metrics *metrics;
};

struct server;

/*
 * Starts both daemons. Returns 0, or -errno with err saying which could not
 * start and why (a port in use, ...).
 * Ownership: *ret is the caller's, freed with server_destroy.
 */
int server_start(const struct server_options *o, struct server **ret, char *err, size_t err_size);

/* The ports actually bound (useful with port 0). */
uint16_t server_tls_port(struct server *s);
uint16_t server_health_port(struct server *s);

/*
 * SIGTERM, first step: /readyz turns 503, the admission listener closes (new
 * connections are refused) and answers carry "Connection: close". Requests
 * already being read or answered go on.
 */
void server_quiesce(struct server *s);
/*
 * Waits until no admission request is in flight, or timeout_ms passed.
 * Returns true when none is left.
 */
bool server_drain(struct server *s, long timeout_ms);
/* Stops both daemons (closing idle keep-alive connections) and frees; NULL does nothing. */
void server_destroy(struct server *s);

#endif
