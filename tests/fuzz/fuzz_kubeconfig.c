/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: reading kubeconfig files (common/kube/config.c), without any network. */
/*
 * The input is a kubeconfig. When it holds a line "---8<---", the text
 * before it and the text after it are two files merged as a KUBECONFIG list
 * of three, the third missing (client-go skips it). A first line
 * "#context: NAME" stands for --context NAME. The files are written into a
 * private directory that also holds "token", "empty-token" and "ca.crt", so
 * relative paths in the input find something. An input that names a path
 * under /dev, /proc or /sys is skipped: reading a terminal or a pipe would
 * block, which is not a finding.
 * Checked: loading fails with -EINVAL, -ENOENT or -E2BIG and a message, or
 * gives a config whose server is http(s) without a trailing slash, whose
 * namespace is set and at most 63 bytes, whose files are readable, with a
 * client certificate and key together, never insecure with a CA, never a
 * bearer token for a plain http:// server, and whose kube_config_token
 * answers; no file descriptor is left open after
 * kube_config_destroy.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/kube/config.h"
#include "common/limits.h"
#include "tests/fuzz/fuzz.h"

#define SPLIT "\n---8<---\n"

/* Short enough that every file name in it fits a path. */
static char dir[KANARY_MAX_PATH / 2];
static char path_a[KANARY_MAX_PATH], path_b[KANARY_MAX_PATH], path_missing[KANARY_MAX_PATH];

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	const char *p = data;

	FUZZ_CHECK(fd >= 0, "%s: %s", path, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		FUZZ_CHECK(n > 0, "%s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

static void in_dir(char *out, const char *name)
{
	int n = snprintf(out, KANARY_MAX_PATH, "%s/%s", dir, name);

	FUZZ_CHECK(n > 0 && n < KANARY_MAX_PATH, "path too long");
}

static void remove_dir(void)
{
	static const char *const names[] = {"config-a", "config-b", "token", "empty-token",
	                                    "ca.crt"};
	char p[KANARY_MAX_PATH];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		in_dir(p, names[i]);
		(void)unlink(p);
	}
	(void)rmdir(dir);
}

/* The lowest descriptor number free now. */
static int lowest_free_fd(void)
{
	int fd = dup(0);

	FUZZ_CHECK(fd >= 0, "dup: %s", strerror(errno));
	close(fd);
	return fd;
}

static bool has(const uint8_t *data, size_t size, const char *s)
{
	return memmem(data, size, s, strlen(s)) != NULL;
}

static void check_config(struct kube_config *cfg)
{
	char *token = NULL;
	size_t len;
	int r;

	FUZZ_CHECK(cfg->server, "no server");
	FUZZ_CHECK(strncmp(cfg->server, "https://", 8) == 0 ||
	               strncmp(cfg->server, "http://", 7) == 0,
	           "server %s", cfg->server);
	len = strlen(cfg->server);
	FUZZ_CHECK(len > 0 && cfg->server[len - 1] != '/', "server %s ends in /", cfg->server);
	FUZZ_CHECK(cfg->namespace && cfg->namespace[0] &&
	               strlen(cfg->namespace) <= KANARY_MAX_DNS_LABEL,
	           "namespace");
	FUZZ_CHECK(cfg->origin, "no origin");
	FUZZ_CHECK(!cfg->ca_file || access(cfg->ca_file, R_OK) == 0, "ca_file %s", cfg->ca_file);
	FUZZ_CHECK(!cfg->cert_file == !cfg->key_file, "certificate without key or key without");
	FUZZ_CHECK(!cfg->cert_file ||
	               (access(cfg->cert_file, R_OK) == 0 && access(cfg->key_file, R_OK) == 0),
	           "client certificate files");
	FUZZ_CHECK(!(cfg->insecure && cfg->ca_file), "insecure with a CA");
	FUZZ_CHECK(!cfg->proxy || strstr(cfg->proxy, "://"), "proxy %s", cfg->proxy);
	r = kube_config_token(cfg, &token);
	FUZZ_CHECK(r == 0, "kube_config_token: %d", r);
	FUZZ_CHECK(!token == !cfg->token && (!token || strcmp(token, cfg->token) == 0),
	           "kube_config_token disagrees with the loaded token");
	FUZZ_CHECK(!token || strncmp(cfg->server, "http://", 7) != 0,
	           "a bearer token for a plain http:// server");
	kube_secret_free(token);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
	char p[KANARY_MAX_PATH];
	int null, n;

	(void)argc;
	(void)argv;
	/* A tokenFile of /dev/stdin must not wait for a terminal. */
	null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0) {
		perror("/dev/null");
		exit(2);
	}
	close(null);
	n = snprintf(dir, sizeof(dir), "%s/kanary-fuzz-kubeconfig-XXXXXX",
	             tmp && *tmp ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= sizeof(dir) || !mkdtemp(dir)) {
		perror(dir);
		exit(2);
	}
	atexit(remove_dir);
	in_dir(path_a, "config-a");
	in_dir(path_b, "config-b");
	in_dir(path_missing, "config-missing");
	in_dir(p, "token");
	write_file(p, "fuzz-token\n", 11);
	in_dir(p, "empty-token");
	write_file(p, "", 0);
	in_dir(p, "ca.crt");
	write_file(p, pem, sizeof(pem) - 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *paths[3] = {path_a, path_b, path_missing};
	struct kube_config_err err = {{0}};
	struct kube_config *cfg = NULL;
	const uint8_t *cut;
	char context[KANARY_MAX_NAME + 1], *ctx = NULL;
	size_t n_paths = 1;
	int fd_before, r;

	if (has(data, size, "/dev/") || has(data, size, "/proc/") || has(data, size, "/sys/"))
		return 0;
	if (size > 10 && memcmp(data, "#context: ", 10) == 0) {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t len = (size_t)((nl ? nl : data + size) - data) - 10;
		if (len < sizeof(context) && !memchr(data + 10, '\0', len)) {
			memcpy(context, data + 10, len);
			context[len] = '\0';
			ctx = context;
		}
	}
	cut = memmem(data, size, SPLIT, strlen(SPLIT));
	if (cut) {
		size_t head = (size_t)(cut - data) + 1;
		write_file(path_a, data, head);
		write_file(path_b, cut + strlen(SPLIT), size - head - strlen(SPLIT) + 1);
		n_paths = 3;
	} else {
		write_file(path_a, data, size);
	}

	fd_before = lowest_free_fd();
	r = kube_config_from_kubeconfig(paths, n_paths, ctx, &cfg, &err);
	FUZZ_CHECK(memchr(err.msg, '\0', sizeof(err.msg)), "unterminated message");
	if (r == 0) {
		check_config(cfg);
		kube_config_destroy(cfg);
	} else {
		FUZZ_CHECK(r == -EINVAL || r == -ENOENT || r == -E2BIG, "load: %d (%s)", r,
		           err.msg);
		FUZZ_CHECK(err.msg[0], "failed (%d) without a message", r);
	}
	FUZZ_CHECK(lowest_free_fd() == fd_before, "a descriptor was left open");
	return 0;
}
