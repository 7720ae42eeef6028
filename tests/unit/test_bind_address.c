/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the listening-address parser: the three forms, ports, refusals. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/bind_address.h"

static void bind_address_reads_host_and_port(void **state)
{
	struct bind_address b;
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)&b.addr;
	char text[INET6_ADDRSTRLEN];

	assert_int_equal(bind_address_parse("127.0.0.1:8080", &b), 0);
	assert_int_equal(b.addr.ss_family, AF_INET);
	assert_int_equal(b.len, sizeof(struct sockaddr_in));
	assert_int_equal(b.port, 8080);
	assert_int_equal(ntohs(in4->sin_port), 8080);
	assert_false(b.any);
	inet_ntop(AF_INET, &in4->sin_addr, text, sizeof(text));
	assert_string_equal(text, "127.0.0.1");
}

static void bind_address_reads_port_alone_as_every_ipv4_address(void **state)
{
	struct bind_address b;
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)&b.addr;

	assert_int_equal(bind_address_parse(":8081", &b), 0);
	assert_int_equal(b.addr.ss_family, AF_INET);
	assert_int_equal(in4->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(b.port, 8081);
	assert_true(b.any);
	assert_int_equal(bind_address_parse(":0", &b), 0);
	assert_int_equal(b.port, 0);
}

static void bind_address_reads_bracketed_ipv6(void **state)
{
	struct bind_address b;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&b.addr;

	assert_int_equal(bind_address_parse("[::1]:9443", &b), 0);
	assert_int_equal(b.addr.ss_family, AF_INET6);
	assert_int_equal(b.len, sizeof(struct sockaddr_in6));
	assert_int_equal(ntohs(in6->sin6_port), 9443);
	assert_true(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
	assert_false(b.any);
}

static void bind_address_refuses_what_is_not_one(void **state)
{
	static const char *const bad[] = {
	    "8080",  "0",      "localhost:80", "::1:80",     "[::1]80",
	    "[]:80", "[::1]:", "1.2.3.4:",     "1.2.3.4:-1", "1.2.3.4:65536",
	    ":+80",  ": 80",   "1.2.3.4:8x",   "[1.2.3.4",   "",
	    NULL};
	struct bind_address b;

	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(bind_address_parse(bad[i], &b), -EINVAL);
}

static void bind_address_from_host_takes_either_family(void **state)
{
	struct bind_address b;

	assert_int_equal(bind_address_from_host("0.0.0.0", 9443, &b), 0);
	assert_int_equal(b.addr.ss_family, AF_INET);
	assert_int_equal(bind_address_from_host("::", 9443, &b), 0);
	assert_int_equal(b.addr.ss_family, AF_INET6);
	assert_int_equal(bind_address_from_host("example.com", 9443, &b), -EINVAL);
	assert_int_equal(bind_address_from_host("::", 65536, &b), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bind_address_reads_host_and_port),
	    cmocka_unit_test(bind_address_reads_port_alone_as_every_ipv4_address),
	    cmocka_unit_test(bind_address_reads_bracketed_ipv6),
	    cmocka_unit_test(bind_address_refuses_what_is_not_one),
	    cmocka_unit_test(bind_address_from_host_takes_either_family),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
