/* SPDX-License-Identifier: Apache-2.0 */
/* The controller's probe and metrics server: it answers, and it owns its port alone. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/server.h"

static int alive(void *ctx, char *why, size_t size)
{
	(void)ctx;
	(void)why;
	(void)size;
	return 0;
}

static const struct server_handlers handlers = {.healthz = alive, .readyz = alive};

/* A port on 127.0.0.1 nothing listens on now, as "127.0.0.1:PORT". */
static void free_port(char *out, size_t size)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(out, size, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
	close(fd);
}

/* GET path on addr ("127.0.0.1:PORT"); the status line's code, or -1. */
static int get(const char *addr, const char *path)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char req[128], resp[512];
	size_t got = 0;
	ssize_t n;
	int fd, code = -1;

	sa.sin_port = htons((uint16_t)strtoul(strchr(addr, ':') + 1, NULL, 10));
	assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr), 1);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	             path);
	assert_int_equal(write(fd, req, (size_t)n), n);
	while (got < sizeof(resp) - 1 && (n = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
		got += (size_t)n;
	resp[got] = '\0';
	close(fd);
	if (sscanf(resp, "HTTP/1.1 %d", &code) != 1)
		return -1;
	return code;
}

static void second_server_on_the_same_port_is_refused(void **state)
{
	struct server *a = NULL, *b = NULL;
	char addr[64];

	(void)state;
	free_port(addr, sizeof(addr));
	assert_int_equal(server_start(addr, SERVER_HEALTH, &handlers, &a), 0);
	assert_int_equal(get(addr, "/healthz"), 200);
	/* No SO_REUSEPORT: a second process on the port fails instead of sharing it. */
	assert_int_equal(server_start(addr, SERVER_HEALTH, &handlers, &b), -EADDRINUSE);
	assert_null(b);
	server_stop(a);
}

static void restarted_server_binds_while_old_connections_close(void **state)
{
	struct server *a = NULL, *b = NULL;
	char addr[64];

	(void)state;
	free_port(addr, sizeof(addr));
	assert_int_equal(server_start(addr, SERVER_HEALTH, &handlers, &a), 0);
	/* The server closes first: its side of the connection lingers (TIME_WAIT). */
	assert_int_equal(get(addr, "/readyz"), 200);
	server_stop(a);
	assert_int_equal(server_start(addr, SERVER_HEALTH, &handlers, &b), 0);
	assert_int_equal(get(addr, "/healthz"), 200);
	assert_int_equal(get(addr, "/nothing"), 404);
	server_stop(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(second_server_on_the_same_port_is_refused),
	    cmocka_unit_test(restarted_server_binds_while_old_connections_close),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
