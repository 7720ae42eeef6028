/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a listening address ("HOST:PORT", ":PORT", "[IPv6]:PORT") into a socket address. */
#ifndef KANARY_BIND_ADDRESS_H
#define KANARY_BIND_ADDRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* Where a server listens; addr holds a sockaddr_in or sockaddr_in6 of len bytes. */
struct bind_address {
	struct sockaddr_storage addr;
	socklen_t len;
	uint16_t port;
	bool any; /* ":PORT": no host given (addr is then 0.0.0.0) */
};

/*
 * "HOST:PORT" with an IPv4 literal, ":PORT" (every IPv4 address) or
 * "[IPv6]:PORT"; PORT is 0..65535 (0: the kernel picks one). Host names are
 * refused: a daemon's listening address is never looked up. -EINVAL otherwise.
 */
int bind_address_parse(const char *s, struct bind_address *ret);

/* An IPv4 or IPv6 literal (no brackets) and a port. -EINVAL otherwise. */
int bind_address_from_host(const char *host, long port, struct bind_address *ret);

#endif
