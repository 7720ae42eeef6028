/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "common/buf.h"
#include "common/limits.h"

struct server {
	struct MHD_Daemon *daemon;
	unsigned paths;
	struct server_handlers h;
};

/*
 * Connection limits: the server answers probes and scrapes, nothing else.
 * The listening address is reused (SO_REUSEADDR) so a restarted controller
 * binds while the last one's connections sit in TIME_WAIT.
 */
#define SERVER_CONNECTION_LIMIT 32
#define SERVER_TIMEOUT_S        10

struct bind_addr {
	bool any;
	bool v6;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
	uint16_t port;
};

static int parse_bind(const char *s, struct bind_addr *ret)
{
	struct bind_addr b = {0};
	char host[64];
	const char *colon, *port;
	size_t hl;
	char *end;
	long p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		hl = (size_t)(close - s - 1);
		if (hl == 0 || hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		port = close + 2;
		b.v6 = true;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hl);
		host[hl] = '\0';
		port = colon + 1;
		b.any = hl == 0;
	}
	errno = 0;
	p = strtol(port, &end, 10);
	if (errno || end == port || *end || p < 1 || p > 65535)
		return -EINVAL;
	b.port = (uint16_t)p;
	if (b.v6) {
		b.in6.sin6_family = AF_INET6;
		b.in6.sin6_port = htons(b.port);
		if (inet_pton(AF_INET6, host, &b.in6.sin6_addr) != 1)
			return -EINVAL;
	} else if (!b.any) {
		b.in4.sin_family = AF_INET;
		b.in4.sin_port = htons(b.port);
		if (inet_pton(AF_INET, host, &b.in4.sin_addr) != 1)
			return -EINVAL;
	}
	*ret = b;
	return 0;
}

int server_parse_bind(const char *s, bool *ret_off)
{
	struct bind_addr b;

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
	struct bind_addr b;
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
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVER_TIMEOUT_S,
		    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
	} else {
		const struct sockaddr *sa =
		    b.v6 ? (const struct sockaddr *)&b.in6 : (const struct sockaddr *)&b.in4;

		s->daemon = MHD_start_daemon(
		    flags | (b.v6 ? MHD_USE_IPv6 : 0), b.port, NULL, NULL, handle, s,
		    MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)SERVER_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
		    (unsigned)SERVER_TIMEOUT_S, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
		    MHD_OPTION_END);
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
