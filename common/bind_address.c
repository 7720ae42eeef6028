/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a listening address ("HOST:PORT", ":PORT", "[IPv6]:PORT") into a socket address. */
#include "common/bind_address.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/integer.h"

int bind_address_from_host(const char *host, long port, struct bind_address *ret)
{
	struct bind_address b;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&b.addr;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&b.addr;

	if (port < 0 || port > 65535)
		return -EINVAL;
	memset(&b, 0, sizeof(b));
	b.any = false;
	b.port = (uint16_t)port;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(b.port);
		b.len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(b.port);
		b.len = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	*ret = b;
	return 0;
}

int bind_address_parse(const char *s, struct bind_address *ret)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port;
	size_t n;
	long p;
	bool v6 = false;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		n = (size_t)(close - s - 1);
		if (n == 0 || n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		port = close + 2;
		v6 = true;
	} else {
		const char *colon = strrchr(s, ':');

		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - s);
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = '\0';
		if (n == 0)
			memcpy(host, "0.0.0.0", sizeof("0.0.0.0"));
		port = colon + 1;
	}
	/* Digits only: no blank or sign before the port. */
	if (!isdigit((unsigned char)port[0]) || integer_parse(port, 0, 65535, &p) < 0)
		return -EINVAL;
	/* As Go's net.SplitHostPort: an IPv6 literal needs its brackets ("::1:80" is refused). */
	if (!v6 && strchr(host, ':'))
		return -EINVAL;
	if (bind_address_from_host(host, p, ret) < 0)
		return -EINVAL;
	ret->any = !v6 && n == 0;
	return 0;
}
