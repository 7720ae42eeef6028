/* kanary-testapp: a TCP server for the node tests and the quick start. */
/*
 * Listens on $TESTAPP_PORT (default 8080) on every IPv4 and IPv6 address (or on
 * $TESTAPP_ADDRESS alone, a numeric address, when set). To each new connection it writes
 * $TESTAPP_NAME (default the hostname) and a newline as soon as it accepts it, so a client
 * can count which version served it; then it echoes whatever it receives until the client
 * closes, so a test can hold long connections open. One thread, one poll() over at most
 * TESTAPP_MAX_CONNS connections; beyond that, new connections wait in the backlog.
 * SIGTERM and SIGINT end it with status 0 at once, closing every connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define TESTAPP_DEFAULT_PORT 8080
#define TESTAPP_MAX_CONNS    1024
#define TESTAPP_MAX_NAME     253 /* a DNS name, which a hostname or a version label fits */
#define TESTAPP_BUF          4096
#define TESTAPP_BACKLOG      512

struct conn {
	int fd;          /* -1 when the slot is free */
	size_t off, len; /* bytes of buf still to send: buf[off..len) */
	char buf[TESTAPP_BUF];
};

static struct conn conns[TESTAPP_MAX_CONNS];
static int stop_pipe[2] = {-1, -1};

/* Wake the poll loop; the byte's value does not matter. write() is async-signal-safe. */
static void on_stop(int sig)
{
	char c = (char)sig;
	int saved = errno;

	if (write(stop_pipe[1], &c, 1) < 0) {
		/* The pipe is full: a wake-up is already pending. */
	}
	errno = saved;
}

static int set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

/* The port from $TESTAPP_PORT: 1..65535, the whole string a decimal number. */
static int parse_port(const char *s, int *ret_port)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > 65535)
		return -EINVAL;
	*ret_port = (int)v;
	return 0;
}

/*
 * A listening socket on ADDRESS (numeric IPv4 or IPv6) or, when ADDRESS is NULL, on every
 * address: one dual-stack IPv6 socket, or IPv4 alone where the kernel has no IPv6.
 */
static int listen_on(const char *address, int port, int *ret_fd)
{
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	struct sockaddr *sa;
	socklen_t salen;
	int family, fd, one = 1, zero = 0, r;

	memset(&a6, 0, sizeof(a6));
	memset(&a4, 0, sizeof(a4));
	a6.sin6_family = AF_INET6;
	a6.sin6_port = htons((uint16_t)port);
	a6.sin6_addr = in6addr_any;
	a4.sin_family = AF_INET;
	a4.sin_port = htons((uint16_t)port);
	a4.sin_addr.s_addr = htonl(INADDR_ANY);
	if (address == NULL || inet_pton(AF_INET6, address, &a6.sin6_addr) == 1) {
		family = AF_INET6;
		sa = (struct sockaddr *)&a6;
		salen = sizeof(a6);
	} else if (inet_pton(AF_INET, address, &a4.sin_addr) == 1) {
		family = AF_INET;
		sa = (struct sockaddr *)&a4;
		salen = sizeof(a4);
	} else {
		return -EINVAL;
	}

	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0 && family == AF_INET6 && address == NULL && errno == EAFNOSUPPORT) {
		family = AF_INET;
		sa = (struct sockaddr *)&a4;
		salen = sizeof(a4);
		fd = socket(family, SOCK_STREAM, 0);
	}
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto out_close;
	if (family == AF_INET6 && address == NULL &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
		goto out_close;
	if (bind(fd, sa, salen) < 0 || listen(fd, TESTAPP_BACKLOG) < 0)
		goto out_close;
	r = set_nonblocking(fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;

out_close:
	r = -errno;
	close(fd);
	return r;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
	c->off = c->len = 0;
}

/* Send what is pending; false when the connection is gone. */
static bool conn_flush(struct conn *c)
{
	while (c->off < c->len) {
		ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		c->off += (size_t)n;
	}
	c->off = c->len = 0;
	return true;
}

/* Read what the client sent and echo it; false when the client closed or reset. */
static bool conn_echo(struct conn *c)
{
	ssize_t n;

	do
		n = recv(c->fd, c->buf, sizeof(c->buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK;
	if (n == 0)
		return false;
	c->off = 0;
	c->len = (size_t)n;
	return conn_flush(c);
}

/*
 * Accept what is waiting, greeting each new connection. Returns false when it had to stop
 * because every slot or file descriptor is taken; the listener is then left out of poll()
 * until a connection ends.
 */
static bool accept_all(int lfd, const char *greeting, size_t greeting_len, int *nconns)
{
	for (;;) {
		struct conn *c = NULL;
		int fd, i;

		if (*nconns >= TESTAPP_MAX_CONNS)
			return false;
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				return false;
			return true; /* EAGAIN: nothing more waiting */
		}
		if (set_nonblocking(fd) < 0) {
			close(fd);
			continue;
		}
		for (i = 0; i < TESTAPP_MAX_CONNS; i++) {
			if (conns[i].fd < 0) {
				c = &conns[i];
				break;
			}
		}
		c->fd = fd;
		memcpy(c->buf, greeting, greeting_len);
		c->off = 0;
		c->len = greeting_len;
		(*nconns)++;
		if (!conn_flush(c)) {
			conn_close(c);
			(*nconns)--;
		}
	}
}

static int serve(int lfd, const char *greeting, size_t greeting_len)
{
	static struct pollfd pfds[TESTAPP_MAX_CONNS + 2];
	static int slot_of[TESTAPP_MAX_CONNS + 2];
	bool accepting = true;
	int nconns = 0, i;

	for (i = 0; i < TESTAPP_MAX_CONNS; i++)
		conns[i].fd = -1;
	for (;;) {
		bool listening = accepting;
		nfds_t n = 0;
		int ready;

		pfds[n].fd = stop_pipe[0];
		pfds[n++].events = POLLIN;
		pfds[n].fd = listening ? lfd : -1;
		pfds[n++].events = POLLIN;
		for (i = 0; i < TESTAPP_MAX_CONNS; i++) {
			if (conns[i].fd < 0)
				continue;
			pfds[n].fd = conns[i].fd;
			/* Read only once the last echo is out, so a slow reader slows its sender. */
			pfds[n].events = conns[i].off < conns[i].len ? POLLOUT : POLLIN;
			slot_of[n++] = i;
		}
		ready = poll(pfds, n, -1);
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			perror("kanary-testapp: poll");
			return 1;
		}
		if (pfds[0].revents != 0)
			return 0;
		for (nfds_t k = 2; k < n; k++) {
			struct conn *c = &conns[slot_of[k]];
			bool alive;

			if (pfds[k].revents == 0)
				continue;
			if (pfds[k].revents & POLLOUT)
				alive = conn_flush(c);
			else
				alive = conn_echo(c);
			if (!alive || (pfds[k].revents & POLLNVAL)) {
				conn_close(c);
				nconns--;
				accepting = true;
			}
		}
		/* A slot freed while the listener was left out: take what waited meanwhile. */
		if (pfds[1].revents != 0 || (accepting && !listening))
			accepting = accept_all(lfd, greeting, greeting_len, &nconns);
	}
}

/* Enough descriptors for every connection, where the hard limit allows it. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t want = TESTAPP_MAX_CONNS + 16;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv)
{
	char greeting[TESTAPP_MAX_NAME + 2];
	const char *name = getenv("TESTAPP_NAME");
	const char *port_s = getenv("TESTAPP_PORT");
	const char *address = getenv("TESTAPP_ADDRESS");
	struct sigaction sa;
	size_t len;
	int port = TESTAPP_DEFAULT_PORT, lfd = -1, r, code;

	if (argc > 1) {
		fprintf(stderr,
		        "usage: %s (configured by TESTAPP_PORT, TESTAPP_NAME, "
		        "TESTAPP_ADDRESS)\n",
		        argv[0]);
		return 2;
	}
	if (port_s != NULL && *port_s != '\0' && parse_port(port_s, &port) < 0) {
		fprintf(stderr, "kanary-testapp: TESTAPP_PORT=%s: not a port (1..65535)\n", port_s);
		return 2;
	}
	if (address != NULL && *address == '\0')
		address = NULL;
	if (name != NULL && *name != '\0') {
		len = strlen(name);
		if (len > TESTAPP_MAX_NAME) {
			fprintf(stderr, "kanary-testapp: TESTAPP_NAME is longer than %d bytes\n",
			        TESTAPP_MAX_NAME);
			return 2;
		}
		memcpy(greeting, name, len);
	} else {
		if (gethostname(greeting, TESTAPP_MAX_NAME + 1) != 0) {
			perror("kanary-testapp: gethostname");
			return 1;
		}
		greeting[TESTAPP_MAX_NAME] = '\0';
		len = strlen(greeting);
	}
	greeting[len++] = '\n';

	if (pipe(stop_pipe) != 0 || set_nonblocking(stop_pipe[0]) < 0 ||
	    set_nonblocking(stop_pipe[1]) < 0) {
		perror("kanary-testapp: pipe");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
		perror("kanary-testapp: sigaction");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	r = listen_on(address, port, &lfd);
	if (r < 0) {
		fprintf(stderr, "kanary-testapp: listen on %s port %d: %s\n",
		        address ? address : "every address", port, strerror(-r));
		return 1;
	}
	fprintf(stderr, "kanary-testapp: listening on %s port %d as %.*s\n",
	        address ? address : "every address", port, (int)len - 1, greeting);
	code = serve(lfd, greeting, len);
	for (int i = 0; i < TESTAPP_MAX_CONNS; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);
	close(lfd);
	return code;
}
