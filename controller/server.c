/* SPDX-License-Identifier: Apache-2.0 */
/* The controller's plain HTTP server for /healthz, /readyz and /metrics. */
#include "controller/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/bind_address.h"
#include "common/buf.h"
#include "common/limits.h"

struct server {
	struct MHD_Daemon *daemon;
	unsigned paths;
	struct server_handlers h;
};

/*
 * Connection limits: the server answers probes and scrapes, nothing else.
 * libmicrohttpd sets SO_REUSEADDR on its listening socket by default, so a
 * restarted controller binds while the last one's connections sit in
 * TIME_WAIT. MHD_OPTION_LISTENING_ADDRESS_REUSE is not given: it also sets
 * SO_REUSEPORT, with which a second process binds the same port without an
 * error and the probes and scrapes go to either.
 */
#define SERVER_CONNECTION_LIMIT 32
#define SERVER_TIMEOUT_S        10

/* A bind address the server takes: a bind_address with a port other than 0. */
static int parse_bind(const char *s, struct bind_address *ret)
{
	struct bind_address b;

	if (bind_address_parse(s, &b) < 0 || b.port == 0)
		return -EINVAL;
	*ret = b;
	return 0;
}

int server_parse_bind(const char *s, bool *ret_off)
{
	struct bind_address b;

	if (strcmp(s, "0") == 0) {
		*ret_off = true;
		return 0;
	}
	if (parse_bind(s, &b) < 0)
		return -EINVAL;
	*ret_off = false;
	return 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             const char *body, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", type);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result probe(struct MHD_Connection *conn,
                             int (*fn)(void *ctx, char *why, size_t size), void *ctx)
{
	char why[256] = "";
	char body[300];
	int n;

	if (fn && fn(ctx, why, sizeof(why)) != 0) {
		n = snprintf(body, sizeof(body), "%s\n", why[0] ? why : "not ready");
		return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", body,
		             n < (int)sizeof(body) ? (size_t)n : sizeof(body) - 1);
	}
	return reply(conn, MHD_HTTP_OK, "text/plain; charset=utf-8", "ok\n", 3);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
	struct server *s = cls;
	enum MHD_Result ret;
	struct buf out;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
		             "method not allowed\n", 19);
	if ((s->paths & SERVER_HEALTH) && strcmp(url, "/healthz") == 0)
		return probe(conn, s->h.healthz, s->h.ctx);
	if ((s->paths & SERVER_HEALTH) && strcmp(url, "/readyz") == 0)
		return probe(conn, s->h.readyz, s->h.ctx);
	if ((s->paths & SERVER_METRICS) && strcmp(url, "/metrics") == 0 && s->h.metrics) {
		buf_init(&out, KANARY_MAX_METRICS_BODY);
		if (s->h.metrics(s->h.ctx, &out) < 0) {
			buf_finish(&out);
			return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
			             "metrics unavailable\n", 20);
		}
		ret = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
		            out.data ? out.data : "", out.len);
		buf_finish(&out);
		return ret;
	}
	return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10);
}

int server_start(const char *bind, unsigned paths, const struct server_handlers *h,
                 struct server **ret)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
	struct bind_address b;
	struct server *s;

	if (parse_bind(bind, &b) < 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->paths = paths;
	s->h = *h;
	errno = 0;
	if (b.any) {
		s->daemon = MHD_start_daemon(
		    flags | MHD_USE_DUAL_STACK, b.port, NULL, NULL, handle, s,
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVER_CONNECTION_LIMIT,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVER_TIMEOUT_S, MHD_OPTION_END);
	} else {
		const struct sockaddr *sa = (const struct sockaddr *)&b.addr;
		bool v6 = b.addr.ss_family == AF_INET6;

		s->daemon = MHD_start_daemon(
		    flags | (v6 ? MHD_USE_IPv6 : 0), b.port, NULL, NULL, handle, s,
		    MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)SERVER_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)SERVER_TIMEOUT_S, MHD_OPTION_END);
	}
	if (!s->daemon) {
		int r = errno ? -errno : -EADDRINUSE;

		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void server_stop(struct server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->daemon);
	free(s);
}
