/* SPDX-License-Identifier: Apache-2.0 */
/* The webhook's two HTTP servers: admission over TLS, and probes and metrics in plain HTTP. */
#include "webhook/server.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "common/admission.h"
#include "common/buf.h"
#include "common/io/monotonic.h"
#include "common/limits.h"
#include "webhook/certs.h"
#include "common/io/log.h"
#include "webhook/lookup.h"
#include "webhook/metrics.h"

/* The health server answers probes and scrapes: one thread, few connections. */
#define HEALTH_MAX_CONNECTIONS 64
#define HEALTH_TIMEOUT_S       10

#define CONTENT_JSON    "application/json"
#define CONTENT_TEXT    "text/plain; charset=utf-8"
#define CONTENT_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct server {
	struct MHD_Daemon *tls;
	struct MHD_Daemon *health;
	struct certs *certs;
	struct lookup *lookup;
	struct metrics *metrics;
	atomic_bool shutting_down;
	bool quiesced;
};

/*
 * One admission connection: the certificate pair its handshake used, held
 * until the connection closes (GnuTLS keeps pointers to it in the session).
 * previous is the pair of an earlier handshake on the same connection.
 */
struct conn_ctx {
	struct server *s;
	struct certpair *pair, *previous;
};

/* One admission request, from its headers to its completion. */
struct request {
	enum metrics_path path;
	struct timespec start; /* CLOCK_MONOTONIC */
	struct buf body;
	bool too_large;
	size_t discarded;
	/* Set when the answer is queued. */
	bool answered;
	unsigned code;
	enum metrics_verdict verdict;
};

/* libmicrohttpd's own messages end with a newline; the log adds its own. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[KANARY_MAX_LOG_LINE];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_msg(LOG_WARNING, NULL, "http: %s", msg);
}

/*
 * GnuTLS asks for the certificate at every full handshake, on an admission
 * thread. It carries no user pointer, so the connection is found through the
 * session's pointer (set by libmicrohttpd) and its context through the socket
 * context connection_notify stored on it. The pair served is held by the
 * connection until it closes.
 */
static int cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                         const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                         gnutls_pcert_st **ret_pcert, unsigned int *ret_n,
                         gnutls_privkey_t *ret_key)
{
	struct MHD_Connection *conn = gnutls_session_get_ptr(session);
	const union MHD_ConnectionInfo *ci;
	struct conn_ctx *cc;
	struct certpair *p;

	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (!conn)
		return -1;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	cc = ci ? ci->socket_context : NULL;
	if (!cc)
		return -1;
	p = certs_acquire(cc->s->certs);
	if (cc->pair) {
		/* A second handshake: the session may point at the last pair until this one is set. */
		certpair_release(cc->previous);
		cc->previous = cc->pair;
	}
	cc->pair = p;
	certpair_get(p, ret_pcert, ret_n, ret_key);
	return 0;
}

static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;
	struct conn_ctx *cc;

	(void)conn;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		/* Without it the handshake fails (cert_callback), and the connection with it. */
		cc = calloc(1, sizeof(*cc));
		if (cc)
			cc->s = s;
		*socket_context = cc;
	} else {
		/* libmicrohttpd deinitialises the session after this; it frees nothing of the pair. */
		cc = *socket_context;
		if (cc) {
			certpair_release(cc->previous);
			certpair_release(cc->pair);
			free(cc);
		}
		*socket_context = NULL;
	}
	metrics_connection(s->metrics, code == MHD_CONNECTION_NOTIFY_STARTED);
}

/*
 * Queues the answer. body is malloc'd text handed to libmicrohttpd, which
 * frees it, also when queueing fails. allow, when not NULL, is the Allow header.
 */
static enum MHD_Result answer(struct server *s, struct MHD_Connection *conn, struct request *rq,
                              unsigned code, enum metrics_verdict verdict, const char *content_type,
                              char *body, size_t len, const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	/* After SIGTERM a kept-alive client is told to go elsewhere for its next request. */
	if (atomic_load(&s->shutting_down))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	if (rq) {
		rq->answered = true;
		rq->code = code;
		rq->verdict = verdict;
	}
	return ret;
}

/* A short text answer: the reason, for a person reading curl output or the API server's log. */
static enum MHD_Result answer_text(struct server *s, struct MHD_Connection *conn,
                                   struct request *rq, unsigned code, enum metrics_verdict verdict,
                                   const char *allow, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static enum MHD_Result answer_text(struct server *s, struct MHD_Connection *conn,
                                   struct request *rq, unsigned code, enum metrics_verdict verdict,
                                   const char *allow, const char *fmt, ...)
{
	struct buf b;
	char *text = NULL;
	size_t len = 0;
	va_list ap;
	int r;

	buf_init(&b, KANARY_MAX_KUBE_MESSAGE * 2);
	va_start(ap, fmt);
	r = buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (r == 0)
		r = buf_puts(&b, "\n");
	if (r == 0)
		r = buf_steal(&b, &text, &len);
	buf_finish(&b);
	if (r < 0)
		return MHD_NO;
	return answer(s, conn, rq, code, verdict, CONTENT_TEXT, text, len, allow);
}

static bool is_json(const char *content_type)
{
	size_t n = strlen(CONTENT_JSON);

	/* "application/json", optionally with parameters: "; charset=utf-8". */
	return content_type && strncasecmp(content_type, CONTENT_JSON, n) == 0 &&
	       (content_type[n] == '\0' || content_type[n] == ';' || content_type[n] == ' ');
}

static enum metrics_verdict verdict_of(enum admission_verdict v)
{
	switch (v) {
	case ADMISSION_ALLOWED:
		return METRICS_VERDICT_ALLOWED;
	case ADMISSION_DENIED:
		return METRICS_VERDICT_DENIED;
	case ADMISSION_UNCHANGED:
		return METRICS_VERDICT_UNCHANGED;
	case ADMISSION_NOT_HANDLED:
		return METRICS_VERDICT_SKIPPED;
	case ADMISSION_LOOKUP_FAILED:
		return METRICS_VERDICT_LOOKUP_FAILED;
	}
	return METRICS_VERDICT_ERROR;
}

static const char *verdict_word(enum admission_verdict v)
{
	switch (v) {
	case ADMISSION_ALLOWED:
		return "allowed";
	case ADMISSION_DENIED:
		return "denied";
	case ADMISSION_UNCHANGED:
		return "allowed (spec unchanged)";
	case ADMISSION_NOT_HANDLED:
		return "allowed (not a Kanary CREATE or UPDATE)";
	case ADMISSION_LOOKUP_FAILED:
		return "lookup failed";
	}
	return "?";
}

/* The whole body is in: decide and answer. */
static enum MHD_Result review(struct server *s, struct MHD_Connection *conn, struct request *rq)
{
	const struct admission_lookup lookup = {.fill = lookup_fill, .ctx = s->lookup};
	enum admission_op op =
	    rq->path == METRICS_PATH_MUTATE ? ADMISSION_MUTATE : ADMISSION_VALIDATE;
	const char *name = op == ADMISSION_MUTATE ? "mutate" : "validate";
	struct admission_outcome out;
	char err[KANARY_MAX_KUBE_MESSAGE], *response = NULL;
	size_t len = 0;
	int r;

	r = admission_handle(rq->body.data ? rq->body.data : "", rq->body.len, op, &lookup,
	                     &response, &len, &out, err, sizeof(err));
	if (r == -EINVAL) {
		log_msg(LOG_WARNING, NULL, "%s: answering 400: %s", name, err);
		return answer_text(s, conn, rq, MHD_HTTP_BAD_REQUEST, METRICS_VERDICT_BAD_REQUEST,
		                   NULL, "%s", err);
	}
	if (r == -EIO) {
		/* The lookup logged the cause; the API server applies failurePolicy. */
		log_msg(LOG_DEBUG, NULL, "%s %s: answering 500: %s", name, out.key, err);
		return answer_text(s, conn, rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                   METRICS_VERDICT_LOOKUP_FAILED, NULL, "%s", err);
	}
	if (r < 0) {
		log_msg(LOG_ERROR, NULL, "%s: answering 500: %s", name, strerror(-r));
		return answer_text(s, conn, rq, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                   METRICS_VERDICT_ERROR, NULL, "%s", strerror(-r));
	}
	if (out.verdict == ADMISSION_DENIED)
		log_msg(LOG_INFO, NULL, "%s Kanary %s: denied", name, out.key);
	else if (log_enabled(2))
		log_msg(LOG_DEBUG, NULL, "%s Kanary %s: %s%s, %zu warning(s)", name, out.key,
		        verdict_word(out.verdict), out.patched ? ", defaults patched" : "",
		        out.n_warnings);
	return answer(s, conn, rq, MHD_HTTP_OK, verdict_of(out.verdict), CONTENT_JSON, response,
	              len, NULL);
}

/* The first call for a request: its headers are in. Refuse early what will never be served. */
static enum MHD_Result request_begin(struct server *s, struct MHD_Connection *conn,
                                     struct request *rq, const char *url, const char *method)
{
	const char *ct, *cl;

	if (rq->path == METRICS_PATH_OTHER)
		return answer_text(s, conn, rq, MHD_HTTP_NOT_FOUND, METRICS_VERDICT_REFUSED, NULL,
		                   "%s: not found; this server answers POST /validate and POST "
		                   "/mutate",
		                   url);
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return answer_text(s, conn, rq, MHD_HTTP_METHOD_NOT_ALLOWED,
		                   METRICS_VERDICT_REFUSED, MHD_HTTP_METHOD_POST,
		                   "%s %s: method not allowed; use POST", method, url);
	ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!is_json(ct))
		return answer_text(
		    s, conn, rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, METRICS_VERDICT_REFUSED, NULL,
		    "Content-Type %s: unsupported; send application/json", ct ? ct : "(none)");
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		unsigned long long n;
		errno = 0;
		n = strtoull(cl, &end, 10);
		/*
		 * Far past the ceiling: answer now and close. A little past it, read
		 * the body and throw it away first, so a client that sends all before
		 * it reads still gets the 413 instead of a reset.
		 */
		if (errno == 0 && end != cl && *end == '\0' && n > 2ull * KANARY_MAX_ADMISSION_BODY)
			return answer_text(s, conn, rq, MHD_HTTP_CONTENT_TOO_LARGE,
			                   METRICS_VERDICT_REFUSED, NULL,
			                   "body of %llu bytes: over the %u byte limit", n,
			                   KANARY_MAX_ADMISSION_BODY);
	}
	return MHD_YES;
}

static enum MHD_Result handle_admission(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **req_cls)
{
	struct server *s = cls;
	struct request *rq = *req_cls;

	(void)version;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->start = monotonic_now();
		rq->path = strcmp(url, "/validate") == 0 ? METRICS_PATH_VALIDATE
		           : strcmp(url, "/mutate") == 0 ? METRICS_PATH_MUTATE
		                                         : METRICS_PATH_OTHER;
		buf_init(&rq->body, KANARY_MAX_ADMISSION_BODY);
		*req_cls = rq;
		metrics_inflight(s->metrics, 1);
		return request_begin(s, conn, rq, url, method);
	}
	if (rq->answered) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!rq->too_large) {
			int r = buf_append(&rq->body, upload_data, *upload_data_size);
			if (r == -E2BIG) {
				rq->too_large = true;
				buf_finish(&rq->body);
			} else if (r < 0) {
				return MHD_NO;
			}
		}
		if (rq->too_large) {
			/*
			 * The answer can only be queued once the body is read: read on,
			 * keeping nothing, up to one more ceiling, then drop the connection.
			 */
			rq->discarded += *upload_data_size;
			if (rq->discarded > KANARY_MAX_ADMISSION_BODY)
				return MHD_NO;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (rq->too_large)
		return answer_text(s, conn, rq, MHD_HTTP_CONTENT_TOO_LARGE, METRICS_VERDICT_REFUSED,
		                   NULL, "body over the %u byte limit", KANARY_MAX_ADMISSION_BODY);
	return review(s, conn, rq);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                              enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct request *rq = *req_cls;

	(void)conn;
	if (!rq)
		return;
	if (rq->answered && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		metrics_request(s->metrics, rq->path, rq->verdict, rq->code,
		                monotonic_seconds_since(rq->start));
	else if (log_enabled(1))
		log_msg(LOG_DEBUG, NULL, "a request ended before it was answered (code %d)",
		        (int)toe);
	buf_finish(&rq->body);
	free(rq);
	*req_cls = NULL;
	metrics_inflight(s->metrics, -1);
}

static enum MHD_Result health_text(struct MHD_Connection *conn, unsigned code,
                                   const char *content_type, const char *text, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *copy = malloc(len + 1);

	if (!copy)
		return MHD_NO;
	memcpy(copy, text, len);
	copy[len] = '\0';
	resp = MHD_create_response_from_buffer(len, copy, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(copy);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result health_str(struct MHD_Connection *conn, unsigned code, const char *text)
{
	return health_text(conn, code, CONTENT_TEXT, text, strlen(text));
}

static enum MHD_Result health_metrics(struct server *s, struct MHD_Connection *conn)
{
	struct metrics_gauges g = {0};
	struct lookup_counts lc;
	struct buf b;
	enum MHD_Result ret;

	lookup_counts(s->lookup, &lc);
	g.services = lc.services;
	g.endpointslices = lc.endpointslices;
	g.services_synced = lc.services_synced;
	g.endpointslices_synced = lc.endpointslices_synced;
	g.cert_not_after = certs_not_after(s->certs);
	g.cert_pairs = certs_alive(s->certs);
	g.shutting_down = atomic_load(&s->shutting_down);
	buf_init(&b, KANARY_MAX_WEBHOOK_METRICS);
	if (metrics_render(s->metrics, &g, &b) < 0) {
		buf_finish(&b);
		return health_str(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                  "metrics could not be rendered\n");
	}
	ret = health_text(conn, MHD_HTTP_OK, CONTENT_METRICS, b.data ? b.data : "", b.len);
	buf_finish(&b);
	return ret;
}

/* Every answer is given once the headers are in; a body, if any, is not read. */
static enum MHD_Result handle_health(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **req_cls)
{
	struct server *s = cls;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)req_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return health_str(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		                  "method not allowed; use GET\n");
	if (strcmp(url, "/healthz") == 0 || strcmp(url, "/livez") == 0)
		return health_str(conn, MHD_HTTP_OK, "ok\n");
	if (strcmp(url, "/readyz") == 0) {
		if (atomic_load(&s->shutting_down))
			return health_str(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down\n");
		if (!lookup_synced(s->lookup))
			return health_str(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
			                  "the Service caches have not synced yet\n");
		return health_str(conn, MHD_HTTP_OK, "ok\n");
	}
	if (strcmp(url, "/metrics") == 0)
		return health_metrics(s, conn);
	return health_str(conn, MHD_HTTP_NOT_FOUND,
	                  "not found; try /healthz, /readyz or /metrics\n");
}

static unsigned family_flag(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? MHD_USE_IPv6 : 0;
}

int server_start(const struct server_options *o, struct server **ret, char *err, size_t err_size)
{
	struct server *s;

	if (o->threads < 1 || !o->certs || !o->lookup || !o->metrics || !o->tls_priorities)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->certs = o->certs;
	s->lookup = o->lookup;
	s->metrics = o->metrics;
	atomic_init(&s->shutting_down, false);

	/* One option and its values per line. */
	/* clang-format off */
	s->tls = MHD_start_daemon(
		MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			MHD_USE_ERROR_LOG | MHD_USE_ITC | family_flag(o->tls_addr),
		0, NULL, NULL, handle_admission, s,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, to catch every message */
		MHD_OPTION_SOCK_ADDR, o->tls_addr,
		MHD_OPTION_THREAD_POOL_SIZE, o->threads,
		MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, o->connection_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)KANARY_MAX_CONNECTION_MEMORY,
		MHD_OPTION_HTTPS_PRIORITIES, o->tls_priorities,
		MHD_OPTION_HTTPS_CERT_CALLBACK, cert_callback,
		MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, connection_notify, s,
		MHD_OPTION_STRICT_FOR_CLIENT, 1,
		MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
		MHD_OPTION_END);
	/* clang-format on */
	if (!s->tls) {
		snprintf(err, err_size,
		         "the admission server (TLS) could not start; see the message above");
		free(s);
		return -EADDRNOTAVAIL;
	}
	/* clang-format off */
	s->health = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
			family_flag(o->health_addr),
		0, NULL, NULL, handle_health, s,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, o->health_addr,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)HEALTH_MAX_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HEALTH_TIMEOUT_S,
		MHD_OPTION_STRICT_FOR_CLIENT, 1,
		MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
		MHD_OPTION_END);
	/* clang-format on */
	if (!s->health) {
		snprintf(err, err_size,
		         "the health server (HTTP) could not start; see the message above");
		MHD_stop_daemon(s->tls);
		free(s);
		return -EADDRNOTAVAIL;
	}
	*ret = s;
	return 0;
}

static uint16_t bound_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

	return di ? di->port : 0;
}

uint16_t server_tls_port(struct server *s)
{
	return bound_port(s->tls);
}

uint16_t server_health_port(struct server *s)
{
	return bound_port(s->health);
}

void server_quiesce(struct server *s)
{
	MHD_socket fd;

	atomic_store(&s->shutting_down, true);
	if (s->quiesced)
		return;
	s->quiesced = true;
	fd = MHD_quiesce_daemon(s->tls);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	else
		log_msg(LOG_WARNING, NULL,
		        "the admission listener could not be closed early; "
		        "it closes when the server stops");
}

bool server_drain(struct server *s, long timeout_ms)
{
	const struct timespec tick = {0, 10 * 1000 * 1000};
	long waited = 0;

	/* Bounded: at most timeout_ms / 10 rounds of 10 ms. */
	while (metrics_inflight_now(s->metrics) > 0 && waited < timeout_ms) {
		nanosleep(&tick, NULL);
		waited += 10;
	}
	return metrics_inflight_now(s->metrics) <= 0;
}

void server_destroy(struct server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->tls);
	MHD_stop_daemon(s->health);
	free(s);
}
