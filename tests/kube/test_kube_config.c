/* SPDX-License-Identifier: Apache-2.0 */
/* kubeconfig and in-cluster configuration, the token file re-read, and how secrets are kept. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/kube/config.h"
#include "common/limits.h"

static char dir[64];

static const char pem_ca[] = "-----BEGIN CERTIFICATE-----\nQ0EK\n-----END CERTIFICATE-----\n";
static const char pem_key[] = "-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n";

static void b64(const char *in, char *out, size_t size)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(in), o = 0;

	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < len)
			v |= (unsigned char)in[i + 2];
		assert_true(o + 5 < size);
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? tbl[v & 63] : '=';
	}
	out[o] = '\0';
}

static void path_in(char *out, size_t size, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < size);
}

static void write_file(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void write_file(const char *name, const char *fmt, ...)
{
	char path[256];
	va_list ap;
	FILE *f;

	path_in(path, sizeof(path), name);
	f = fopen(path, "w");
	assert_non_null(f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	assert_int_equal(fclose(f), 0);
}

/* Replaces a file the way kubelet does: a new inode renamed over the old name. */
static void replace_file(const char *name, const char *text)
{
	char path[256], tmp[256];
	FILE *f;

	path_in(path, sizeof(path), name);
	path_in(tmp, sizeof(tmp), ".tmp");
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/kanary-kube-test.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("POD_NAMESPACE");
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct kube_config *load_one(const char *name, const char *context,
                                    struct kube_config_err *err, int *ret)
{
	struct kube_config *cfg = NULL;
	char path[256];
	const char *p = path;

	path_in(path, sizeof(path), name);
	*ret = kube_config_from_kubeconfig(&p, 1, context, &cfg, err);
	return *ret == 0 ? cfg : NULL;
}

static void read_whole(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(out, 1, size - 1, f);
	out[n] = '\0';
	fclose(f);
}

static void test_token_and_inline_ca(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg;
	char ca64[512], got[512];
	char *token = NULL;
	int r;

	b64(pem_ca, ca64, sizeof(ca64));
	write_file("kc",
	           "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
	           "clusters:\n- name: c\n  cluster:\n    server: https://example.test:6443/\n"
	           "    certificate-authority-data: %s\n"
	           "users:\n- name: u\n  user:\n    token: s3cr3t\n"
	           "contexts:\n- name: dev\n  context:\n    cluster: c\n    user: u\n"
	           "    namespace: team-a\n",
	           ca64);
	cfg = load_one("kc", NULL, &err, &r);
	if (!cfg)
		fail_msg("load: %d %s", r, err.msg);
	assert_string_equal(cfg->server, "https://example.test:6443");
	assert_string_equal(cfg->namespace, "team-a");
	assert_non_null(cfg->ca_file);
	assert_int_equal(strncmp(cfg->ca_file, "/proc/self/fd/", 14), 0);
	read_whole(cfg->ca_file, got, sizeof(got));
	assert_string_equal(got, pem_ca);
	assert_null(cfg->cert_file);
	assert_null(cfg->token_file);
	assert_false(cfg->insecure);
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_string_equal(token, "s3cr3t");
	free(token);
	assert_non_null(strstr(cfg->origin, "context dev"));
	kube_config_destroy(cfg);
}

static void test_client_cert_files_relative_to_kubeconfig(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg;
	char want[256];
	int r;

	write_file("ca.crt", "%s", pem_ca);
	write_file("me.crt", "%s", pem_ca);
	write_file("me.key", "%s", pem_key);
	write_file("kc",
	           "current-context: x\n"
	           "clusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1\n"
	           "    certificate-authority: ca.crt\n"
	           "users:\n- name: u\n  user:\n    client-certificate: me.crt\n"
	           "    client-key: %s/me.key\n"
	           "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n",
	           dir);
	cfg = load_one("kc", NULL, &err, &r);
	if (!cfg)
		fail_msg("load: %d %s", r, err.msg);
	path_in(want, sizeof(want), "ca.crt");
	assert_string_equal(cfg->ca_file, want);
	path_in(want, sizeof(want), "me.crt");
	assert_string_equal(cfg->cert_file, want);
	path_in(want, sizeof(want), "me.key");
	assert_string_equal(cfg->key_file, want);
	/* No namespace in the context: "default". */
	assert_string_equal(cfg->namespace, "default");
	kube_config_destroy(cfg);
}

static void test_inline_client_cert_and_key(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg;
	char c64[512], k64[512], got[512];
	int r;

	b64(pem_ca, c64, sizeof(c64));
	b64(pem_key, k64, sizeof(k64));
	write_file("kc",
	           "current-context: x\n"
	           "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
	           "    insecure-skip-tls-verify: true\n"
	           "users:\n- name: u\n  user:\n    client-certificate-data: %s\n"
	           "    client-key-data: %s\n"
	           "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n",
	           c64, k64);
	cfg = load_one("kc", NULL, &err, &r);
	if (!cfg)
		fail_msg("load: %d %s", r, err.msg);
	assert_true(cfg->insecure);
	read_whole(cfg->cert_file, got, sizeof(got));
	assert_string_equal(got, pem_ca);
	read_whole(cfg->key_file, got, sizeof(got));
	assert_string_equal(got, pem_key);
	kube_config_destroy(cfg);
}

static void test_context_flag_overrides_current_context(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg;
	int r;

	write_file("kc", "current-context: one\n"
	                 "clusters:\n- name: c1\n  cluster:\n    server: https://one\n"
	                 "- name: c2\n  cluster:\n    server: https://two\n"
	                 "contexts:\n- name: one\n  context:\n    cluster: c1\n"
	                 "- name: two\n  context:\n    cluster: c2\n    namespace: ns2\n");
	cfg = load_one("kc", "two", &err, &r);
	if (!cfg)
		fail_msg("load: %d %s", r, err.msg);
	assert_string_equal(cfg->server, "https://two");
	assert_string_equal(cfg->namespace, "ns2");
	kube_config_destroy(cfg);

	assert_null(load_one("kc", "three", &err, &r));
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err.msg, "context \"three\" not found"));
}

/*
 * A file whose first document is not a mapping is refused, and every document
 * of it, secrets and all, is wiped and freed (ASan and valgrind see the frees);
 * so is a kubeconfig followed by more documents, once loaded.
 */
static void test_kubeconfig_not_a_mapping_is_refused(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg;
	int r;

	write_file("kc", "- token: secret-one\n- client-key-data: secret-two\n"
	                 "---\nusers:\n- name: u\n  user:\n    token: secret-three\n");
	assert_null(load_one("kc", NULL, &err, &r));
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err.msg, "not a mapping"));

	write_file("kc", "current-context: x\n"
	                 "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
	                 "users:\n- name: u\n  user:\n    token: inline\n"
	                 "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
	                 "---\n- password: secret-four\n");
	cfg = load_one("kc", NULL, &err, &r);
	if (!cfg)
		fail_msg("load: %d %s", r, err.msg);
	assert_string_equal(cfg->server, "https://h");
	kube_config_destroy(cfg);
}

/* Each refusal names the file and the field, and says why. */
static void test_unsupported_auth_is_refused_by_field(void **state)
{
	static const struct {
		const char *user;
		const char *field;
	} cases[] = {
	    {"    exec:\n      command: aws\n      apiVersion: client.authentication.k8s.io/v1\n",
	     "users[\"u\"].user.exec: exec credential plugins are not supported"},
	    {"    auth-provider:\n      name: oidc\n",
	     "users[\"u\"].user.auth-provider: auth providers are not supported"},
	    {"    username: admin\n    password: pw\n",
	     "users[\"u\"].user.username: basic authentication is not supported"},
	    {"    token: t\n    as: someone\n", "users[\"u\"].user.as: impersonation"},
	    {"    token: t\n    as-groups: [a]\n", "users[\"u\"].user.as-groups: impersonation"},
	    {"    client-certificate-data: QUJD\n",
	     "client-certificate-data: not a PEM certificate"},
	    {"    client-certificate-data: '!!notbase64'\n", "not valid base64"},
	};
	struct kube_config_err err;
	char path[256];
	int r;

	path_in(path, sizeof(path), "kc");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&err, 0, sizeof(err));
		write_file("kc",
		           "current-context: x\n"
		           "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
		           "users:\n- name: u\n  user:\n%s"
		           "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n",
		           cases[i].user);
		assert_null(load_one("kc", NULL, &err, &r));
		assert_int_equal(r, -EINVAL);
		if (!strstr(err.msg, cases[i].field) || !strstr(err.msg, path))
			fail_msg("case %zu: %s", i, err.msg);
	}
}

static void test_bad_clusters_are_refused(void **state)
{
	static const struct {
		const char *cluster;
		const char *msg;
	} cases[] = {
	    {"    server: ftp://h\n", "must start with https:// or http://"},
	    /* Found by fuzzing: "https://" alone was taken as the server "https:". */
	    {"    server: https://\n", "names no host"},
	    {"    server: http:///\n", "names no host"},
	    {"    certificate-authority: /nonexistent/ca.crt\n",
	     "server: required"}, /* the missing server is found first */
	    {"    server: https://h\n    certificate-authority: nope.crt\n",
	     "certificate-authority: "},
	    {"    server: https://h\n    tls-server-name: other\n",
	     "tls-server-name: not supported"},
	    {"    server: https://h\n    insecure-skip-tls-verify: true\n"
	     "    certificate-authority-data: QUJD\n",
	     "with insecure-skip-tls-verify is not allowed"},
	    {"    server: https://h\n    proxy-url: ftp://p\n", "proxy-url"},
	};
	struct kube_config_err err;
	int r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&err, 0, sizeof(err));
		write_file("kc",
		           "current-context: x\n"
		           "clusters:\n- name: c\n  cluster:\n%s"
		           "contexts:\n- name: x\n  context:\n    cluster: c\n",
		           cases[i].cluster);
		assert_null(load_one("kc", NULL, &err, &r));
		assert_int_equal(r, -EINVAL);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: %s", i, err.msg);
	}
}

static void test_structural_errors(void **state)
{
	struct kube_config_err err = {{0}};
	int r;

	write_file("kc", "clusters: []\n");
	assert_null(load_one("kc", NULL, &err, &r));
	assert_non_null(strstr(err.msg, "no current-context"));

	write_file("kc",
	           "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: nope\n");
	assert_null(load_one("kc", NULL, &err, &r));
	assert_non_null(strstr(err.msg, "cluster \"nope\" not found"));

	write_file("kc",
	           "current-context: x\nclusters:\n- name: c\n  cluster:\n    server: https://h\n"
	           "contexts:\n- name: x\n  context:\n    cluster: c\n    user: ghost\n");
	assert_null(load_one("kc", NULL, &err, &r));
	assert_non_null(strstr(err.msg, "user \"ghost\" not found"));

	write_file("kc",
	           "current-context: x\nclusters:\n- name: c\n  cluster:\n    server: https://h\n"
	           "users:\n- name: u\n  user:\n    client-key: k\n"
	           "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n");
	write_file("k", "%s", pem_key);
	assert_null(load_one("kc", NULL, &err, &r));
	assert_non_null(strstr(err.msg, "must be given together"));

	write_file("kc", "current-context: [x\n");
	assert_null(load_one("kc", NULL, &err, &r));
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err.msg, "kc"));

	assert_null(load_one("missing", NULL, &err, &r));
	assert_int_equal(r, -ENOENT);
}

/* KUBECONFIG merges files: the first to name a context, cluster or user wins. */
static void test_kubeconfig_list_merges_first_wins(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg = NULL;
	char a[256], b[256], list[600];
	char *token = NULL;
	int r;

	write_file("a", "current-context: dev\n"
	                "users:\n- name: u\n  user:\n    token: from-a\n"
	                "contexts:\n- name: dev\n  context:\n    cluster: c\n    user: u\n");
	write_file("b", "current-context: other\n"
	                "clusters:\n- name: c\n  cluster:\n    server: https://from-b\n"
	                "users:\n- name: u\n  user:\n    token: from-b\n");
	path_in(a, sizeof(a), "a");
	path_in(b, sizeof(b), "b");
	snprintf(list, sizeof(list), "%s:%s/does-not-exist:%s", a, dir, b);
	setenv("KUBECONFIG", list, 1);
	r = kube_config_load(NULL, NULL, &cfg, &err);
	unsetenv("KUBECONFIG");
	if (r < 0)
		fail_msg("load: %d %s", r, err.msg);
	assert_string_equal(cfg->server, "https://from-b");
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_string_equal(token, "from-a");
	free(token);
	kube_config_destroy(cfg);
}

/* The loading order: --kubeconfig, KUBECONFIG, in-cluster, ~/.kube/config. */
static void test_loading_order(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg = NULL;
	char flag[256], env[256], home[256], kube_dir[256];
	const char *old_home = getenv("HOME");
	char *saved_home = old_home ? strdup(old_home) : NULL;

	write_file("flag",
	           "current-context: x\nclusters:\n- name: c\n  cluster:\n"
	           "    server: https://flag\ncontexts:\n- name: x\n  context:\n    cluster: c\n");
	write_file("env",
	           "current-context: x\nclusters:\n- name: c\n  cluster:\n"
	           "    server: https://env\ncontexts:\n- name: x\n  context:\n    cluster: c\n");
	path_in(kube_dir, sizeof(kube_dir), ".kube");
	assert_int_equal(mkdir(kube_dir, 0700), 0);
	write_file(".kube/config", "current-context: x\nclusters:\n- name: c\n  cluster:\n"
	                           "    server: https://home\n"
	                           "contexts:\n- name: x\n  context:\n    cluster: c\n");
	path_in(flag, sizeof(flag), "flag");
	path_in(env, sizeof(env), "env");
	snprintf(home, sizeof(home), "%s", dir);
	setenv("HOME", home, 1);
	setenv("KUBECONFIG", env, 1);

	assert_int_equal(kube_config_load(flag, NULL, &cfg, &err), 0);
	assert_string_equal(cfg->server, "https://flag");
	kube_config_destroy(cfg);

	assert_int_equal(kube_config_load(NULL, NULL, &cfg, &err), 0);
	assert_string_equal(cfg->server, "https://env");
	kube_config_destroy(cfg);

	unsetenv("KUBECONFIG");
	assert_int_equal(kube_config_load(NULL, NULL, &cfg, &err), 0);
	assert_string_equal(cfg->server, "https://home");
	kube_config_destroy(cfg);

	/*
	 * In a pod (the variable set) the service account comes before
	 * ~/.kube/config; when it cannot be read, ~/.kube/config still serves,
	 * and without one the service account's error is what is reported.
	 */
	if (access(KUBE_SA_DIR "/token", F_OK) == 0) {
		/* These tests run in a pod: its real service account would answer. */
		if (saved_home)
			setenv("HOME", saved_home, 1);
		free(saved_home);
		return;
	}
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kube_config_load(NULL, NULL, &cfg, &err), 0);
	assert_string_equal(cfg->server, "https://home");
	kube_config_destroy(cfg);
	setenv("HOME", "/nonexistent", 1);
	assert_int_equal(kube_config_load(NULL, NULL, &cfg, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "service-account token"));
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");

	setenv("HOME", "/nonexistent", 1);
	assert_int_equal(kube_config_load(NULL, NULL, &cfg, &err), -ENOENT);
	if (saved_home)
		setenv("HOME", saved_home, 1);
	free(saved_home);
}

static void make_sa_dir(char *sa, size_t size)
{
	path_in(sa, size, "sa");
	assert_int_equal(mkdir(sa, 0700), 0);
	write_file("sa/token", "first-token\n");
	write_file("sa/ca.crt", "%s", pem_ca);
	write_file("sa/namespace", "kanary-system");
}

static void test_in_cluster(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg = NULL;
	char sa[256], want[300];
	char *token = NULL;

	make_sa_dir(sa, sizeof(sa));
	assert_int_equal(kube_config_in_cluster(sa, &cfg, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "KUBERNETES_SERVICE_HOST"));

	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kube_config_in_cluster(sa, &cfg, &err), 0);
	assert_string_equal(cfg->server, "https://10.96.0.1:443");
	assert_string_equal(cfg->namespace, "kanary-system");
	snprintf(want, sizeof(want), "%s/ca.crt", sa);
	assert_string_equal(cfg->ca_file, want);
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_string_equal(token, "first-token");
	free(token);
	assert_string_equal(cfg->origin, "in-cluster");
	kube_config_destroy(cfg);

	/* An IPv6 service address is bracketed; POD_NAMESPACE wins over the file. */
	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	setenv("POD_NAMESPACE", "from-env", 1);
	assert_int_equal(kube_config_in_cluster(sa, &cfg, &err), 0);
	assert_string_equal(cfg->server, "https://[fd00:10:96::1]:6443");
	assert_string_equal(cfg->namespace, "from-env");
	kube_config_destroy(cfg);
	unsetenv("POD_NAMESPACE");

	setenv("KUBERNETES_SERVICE_PORT", "http", 1);
	assert_int_equal(kube_config_in_cluster(sa, &cfg, &err), -EINVAL);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);

	write_file("sa/token", "  \n");
	assert_int_equal(kube_config_in_cluster(sa, &cfg, &err), -ENODATA);
	assert_non_null(strstr(err.msg, "empty"));

	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

/*
 * The token file is re-read when it is replaced (new inode) or rewritten in
 * place (size, mtime), and a vanished file keeps the last good token.
 */
/* As if the last look at the token file were KUBE_TOKEN_CHECK_MS ago: the next request looks. */
static void token_look_due(struct kube_config *cfg)
{
	cfg->token_checked_ms -= KUBE_TOKEN_CHECK_MS;
}

static void test_token_file_reread(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg = NULL;
	char sa[256];
	char *token = NULL;
	unsigned long reads;

	make_sa_dir(sa, sizeof(sa));
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	assert_int_equal(kube_config_in_cluster(sa, &cfg, &err), 0);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");

	/* Unchanged: not read again. */
	reads = cfg->token_reads;
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_string_equal(token, "first-token");
	free(token);
	assert_int_equal(cfg->token_reads, reads);

	/*
	 * Replaced, but the file was looked at less than KUBE_TOKEN_CHECK_MS ago
	 * (here: a look an hour ahead): no stat, no read, the token in hand. Every
	 * request of every thread would otherwise stat the file under token_lock.
	 */
	replace_file("sa/token", "second-token");
	cfg->token_checked_ms += 3600 * 1000;
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_string_equal(token, "first-token");
	free(token);
	assert_int_equal(cfg->token_reads, reads);

	/* The next look, a second on: the new token. */
	cfg->token_checked_ms -= 3600 * 1000;
	token_look_due(cfg);
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_string_equal(token, "second-token");
	free(token);
	assert_int_equal(cfg->token_reads, reads + 1);

	/* In place, same inode: the size and mtime tell. */
	write_file("sa/token", "third-token-longer");
	token_look_due(cfg);
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_string_equal(token, "third-token-longer");
	free(token);

	/* Gone: keep what we had. */
	char tok_path[300];
	snprintf(tok_path, sizeof(tok_path), "%s/token", sa);
	assert_int_equal(unlink(tok_path), 0);
	token_look_due(cfg);
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_string_equal(token, "third-token-longer");
	free(token);

	/* Unchanged but older than a minute: read again (client-go's period). */
	write_file("sa/token", "fourth");
	token_look_due(cfg);
	assert_int_equal(kube_config_token(cfg, &token), 0);
	free(token);
	reads = cfg->token_reads;
	cfg->token_read_at -= KUBE_TOKEN_REFRESH_S;
	token_look_due(cfg);
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_string_equal(token, "fourth");
	free(token);
	assert_int_equal(cfg->token_reads, reads + 1);
	kube_config_destroy(cfg);
}

static void test_kubeconfig_token_file(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg;
	char *token = NULL;
	int r;

	write_file("tok", "from-file\n");
	write_file("kc", "current-context: x\n"
	                 "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
	                 "users:\n- name: u\n  user:\n    token: inline\n    tokenFile: tok\n"
	                 "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n");
	cfg = load_one("kc", NULL, &err, &r);
	if (!cfg)
		fail_msg("load: %d %s", r, err.msg);
	/* tokenFile wins over token, as in client-go. */
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_string_equal(token, "from-file");
	free(token);
	replace_file("tok", "rotated");
	token_look_due(cfg);
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_string_equal(token, "rotated");
	free(token);
	kube_config_destroy(cfg);
}

static void test_no_user_is_anonymous(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg;
	char sentinel[] = "unset";
	char *token = sentinel;
	int r;

	write_file("kc", "current-context: x\n"
	                 "clusters:\n- name: c\n  cluster:\n    server: http://[::1]:8080\n"
	                 "contexts:\n- name: x\n  context:\n    cluster: c\n");
	cfg = load_one("kc", NULL, &err, &r);
	if (!cfg)
		fail_msg("load: %d %s", r, err.msg);
	assert_string_equal(cfg->server, "http://[::1]:8080");
	assert_int_equal(kube_config_token(cfg, &token), 0);
	assert_null(token);
	kube_config_destroy(cfg);
}

/*
 * Inline certificates and keys sit in memory files sealed once written:
 * neither the descriptor nor a reopening of its /proc path can change them.
 */
static void test_inline_credentials_are_sealed(void **state)
{
	const int want = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	struct kube_config_err err = {{0}};
	struct kube_config *cfg;
	char c64[512], k64[512], got[512];
	const char *paths[3];
	int r, fd;

	b64(pem_ca, c64, sizeof(c64));
	b64(pem_key, k64, sizeof(k64));
	write_file("kc",
	           "current-context: x\n"
	           "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
	           "    certificate-authority-data: %s\n"
	           "users:\n- name: u\n  user:\n    client-certificate-data: %s\n"
	           "    client-key-data: %s\n"
	           "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n",
	           c64, c64, k64);
	cfg = load_one("kc", NULL, &err, &r);
	if (!cfg)
		fail_msg("load: %d %s", r, err.msg);
	paths[0] = cfg->ca_file;
	paths[1] = cfg->cert_file;
	paths[2] = cfg->key_file;
	for (size_t i = 0; i < 3; i++) {
		assert_true(cfg->memfd[i] >= 0);
		assert_int_equal(fcntl(cfg->memfd[i], F_GET_SEALS), want);
		/* The descriptor was opened for writing, and still cannot write. */
		assert_int_equal(write(cfg->memfd[i], "x", 1), -1);
		assert_int_equal(errno, EPERM);
		assert_int_equal(pwrite(cfg->memfd[i], "x", 1, 0), -1);
		assert_int_equal(errno, EPERM);
		assert_int_equal(ftruncate(cfg->memfd[i], 0), -1);
		assert_int_equal(errno, EPERM);
		assert_int_equal(fcntl(cfg->memfd[i], F_ADD_SEALS, 0), -1);
		assert_int_equal(errno, EPERM);
		/* Nor through its path, reopened for writing. */
		fd = open(paths[i], O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			assert_int_equal(write(fd, "x", 1), -1);
			assert_int_equal(errno, EPERM);
			close(fd);
		} else {
			assert_int_equal(errno, EPERM);
		}
	}
	read_whole(cfg->key_file, got, sizeof(got));
	assert_string_equal(got, pem_key);
	read_whole(cfg->ca_file, got, sizeof(got));
	assert_string_equal(got, pem_ca);
	kube_config_destroy(cfg);
}

/*
 * A token (inline or from a file) with an http:// server is refused, naming
 * the field and the way out; the option lets it load; https and a tokenless
 * http server are unaffected.
 */
static void test_token_over_plain_http_is_refused_unless_allowed(void **state)
{
	struct kube_config_err err;
	struct kube_config *cfg = NULL;
	struct kube_config_options o = {0};
	char path[256];
	char *token = NULL;
	int r;

	write_file("tok", "from-file\n");
	path_in(path, sizeof(path), "kc");
	o.kubeconfig = path;
	for (int file = 0; file < 2; file++) {
		write_file("kc",
		           "current-context: x\n"
		           "clusters:\n- name: c\n  cluster:\n    server: http://10.0.0.1:8080/\n"
		           "users:\n- name: u\n  user:\n    %s\n"
		           "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n",
		           file ? "tokenFile: tok" : "token: s3cr3t");
		memset(&err, 0, sizeof(err));
		assert_null(load_one("kc", NULL, &err, &r));
		assert_int_equal(r, -EINVAL);
		if (!strstr(err.msg, file ? "users[\"u\"].user.tokenFile: a bearer token is never "
		                            "sent to a plain http:// server (http://10.0.0.1:8080)"
		                          : "users[\"u\"].user.token: a bearer token is never sent "
		                            "to a plain http:// server (http://10.0.0.1:8080)") ||
		    !strstr(err.msg, "--insecure-allow-http-token") || !strstr(err.msg, path))
			fail_msg("file %d: %s", file, err.msg);
		/* kube_config_load is the same as the options all zero. */
		o.allow_http_token = false;
		assert_int_equal(kube_config_load_options(&o, &cfg, &err), -EINVAL);
		assert_int_equal(kube_config_load(path, NULL, &cfg, &err), -EINVAL);

		o.allow_http_token = true;
		assert_int_equal(kube_config_load_options(&o, &cfg, &err), 0);
		assert_true(cfg->allow_http_token);
		assert_int_equal(kube_config_token(cfg, &token), 0);
		assert_string_equal(token, file ? "from-file" : "s3cr3t");
		kube_secret_free(token);
		kube_config_destroy(cfg);
	}
	/* Through $KUBECONFIG as well. */
	setenv("KUBECONFIG", path, 1);
	o.kubeconfig = NULL;
	o.allow_http_token = false;
	assert_int_equal(kube_config_load_options(&o, &cfg, &err), -EINVAL);
	o.allow_http_token = true;
	assert_int_equal(kube_config_load_options(&o, &cfg, &err), 0);
	kube_config_destroy(cfg);
	unsetenv("KUBECONFIG");
	/* The same token to an https server is fine without the option. */
	write_file("kc", "current-context: x\n"
	                 "clusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1\n"
	                 "users:\n- name: u\n  user:\n    token: s3cr3t\n"
	                 "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n");
	cfg = load_one("kc", NULL, &err, &r);
	assert_non_null(cfg);
	assert_false(cfg->allow_http_token);
	kube_config_destroy(cfg);
}

/* A token file of exactly KANARY_MAX_TOKEN bytes is read whole; one byte more is refused. */
static void test_token_file_ceiling(void **state)
{
	struct kube_config_err err = {{0}};
	struct kube_config *cfg = NULL;
	char sa[256], tok[300];
	char *token = NULL, *big;
	FILE *f;

	make_sa_dir(sa, sizeof(sa));
	snprintf(tok, sizeof(tok), "%s/token", sa);
	big = malloc(KANARY_MAX_TOKEN + 1);
	assert_non_null(big);
	memset(big, 'a', KANARY_MAX_TOKEN + 1);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	for (int extra = 0; extra < 2; extra++) {
		f = fopen(tok, "w");
		assert_non_null(f);
		assert_int_equal(fwrite(big, 1, KANARY_MAX_TOKEN + (size_t)extra, f),
		                 KANARY_MAX_TOKEN + (size_t)extra);
		assert_int_equal(fclose(f), 0);
		if (extra) {
			assert_int_equal(kube_config_in_cluster(sa, &cfg, &err), -E2BIG);
			continue;
		}
		assert_int_equal(kube_config_in_cluster(sa, &cfg, &err), 0);
		assert_int_equal(kube_config_token(cfg, &token), 0);
		assert_int_equal(strlen(token), KANARY_MAX_TOKEN);
		kube_secret_free(token);
		kube_config_destroy(cfg);
	}
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_token_and_inline_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kubeconfig_not_a_mapping_is_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_client_cert_files_relative_to_kubeconfig, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_inline_client_cert_and_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_context_flag_overrides_current_context, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_unsupported_auth_is_refused_by_field, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_bad_clusters_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_structural_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kubeconfig_list_merges_first_wins, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_loading_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_in_cluster, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_file_reread, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kubeconfig_token_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_user_is_anonymous, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_inline_credentials_are_sealed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_over_plain_http_is_refused_unless_allowed,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_file_ceiling, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
