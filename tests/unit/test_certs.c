/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the serving certificate's reload: swap a good pair in, refuse a bad one. */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "common/buf.h"
#include "webhook/certs.h"
#include "webhook/metrics.h"

#define DAY_S (24L * 3600)

/* A key and a self-signed certificate for it, PEM, valid from an hour ago for days. */
struct pem_pair {
	gnutls_datum_t cert, key;
	time_t not_after;
};

static void make_pair(unsigned serial, long days, struct pem_pair *ret)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	unsigned char sn[1] = {(unsigned char)serial};
	time_t now = time(NULL);

	assert_int_equal(gnutls_x509_privkey_init(&key), 0);
	assert_int_equal(
	    gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
	                                 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
	    0);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(crt, sn, sizeof(sn)), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 3600), 0);
	ret->not_after = now + days * DAY_S;
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, ret->not_after), 0);
	assert_int_equal(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	                                               "kanary-webhook", 14),
	                 0);
	assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
	assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
	assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &ret->cert), 0);
	assert_int_equal(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &ret->key), 0);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
}

static void free_pair(struct pem_pair *p)
{
	gnutls_free(p->cert.data);
	gnutls_free(p->key.data);
}

struct world {
	char dir[64];
	char cert_path[96], key_path[96];
	struct metrics *metrics;
	struct certs *certs;
	struct pem_pair a, b, c;
};

/* Writes data to path as a Secret volume does: a new file renamed over the old one. */
static void write_swap(const struct world *w, const char *path, const gnutls_datum_t *data)
{
	char tmp[128];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/.new", w->dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data->data, data->size), (ssize_t)data->size);
	assert_int_equal(close(fd), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static void write_text(const struct world *w, const char *path, const char *text)
{
	const gnutls_datum_t d = {(unsigned char *)(uintptr_t)text, (unsigned)strlen(text)};

	write_swap(w, path, &d);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	const char *tmpdir = getenv("TMPDIR");

	assert_non_null(w);
	snprintf(w->dir, sizeof(w->dir), "%s/kanary-certs-XXXXXX", tmpdir ? tmpdir : "/tmp");
	assert_non_null(mkdtemp(w->dir));
	snprintf(w->cert_path, sizeof(w->cert_path), "%s/tls.crt", w->dir);
	snprintf(w->key_path, sizeof(w->key_path), "%s/tls.key", w->dir);
	make_pair(1, 1, &w->a);
	make_pair(2, 2, &w->b);
	make_pair(3, 3, &w->c);
	assert_int_equal(metrics_create(&w->metrics), 0);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	char path[128];

	certs_destroy(w->certs);
	metrics_destroy(w->metrics);
	unlink(w->cert_path);
	unlink(w->key_path);
	snprintf(path, sizeof(path), "%s/.new", w->dir);
	unlink(path);
	rmdir(w->dir);
	free_pair(&w->a);
	free_pair(&w->b);
	free_pair(&w->c);
	free(w);
	return 0;
}

static int start(struct world *w, char *err, size_t size)
{
	const struct certs_options o = {.cert_file = w->cert_path,
	                                .key_file = w->key_path,
	                                .poll_interval_ms = 1000,
	                                .metrics = w->metrics};

	return certs_create(&o, &w->certs, err, size);
}

/* The reload counters as /metrics shows them. */
static void assert_reloads(struct world *w, unsigned long ok, unsigned long failed)
{
	const struct metrics_gauges g = {0};
	char want_ok[128], want_failed[128];
	struct buf out;

	snprintf(want_ok, sizeof(want_ok),
	         "kanary_webhook_certificate_reloads_total{result=\"success\"} %lu\n", ok);
	snprintf(want_failed, sizeof(want_failed),
	         "kanary_webhook_certificate_reloads_total{result=\"failure\"} %lu\n", failed);
	buf_init(&out, 1024 * 1024);
	assert_int_equal(metrics_render(w->metrics, &g, &out), 0);
	assert_non_null(strstr(out.data, want_ok));
	assert_non_null(strstr(out.data, want_failed));
	buf_finish(&out);
}

static void certs_loads_the_first_pair(void **state)
{
	struct world *w = *state;
	struct certpair *p;
	gnutls_pcert_st *chain;
	gnutls_privkey_t key;
	char err[512] = "";
	unsigned n;

	write_swap(w, w->cert_path, &w->a.cert);
	write_swap(w, w->key_path, &w->a.key);
	assert_int_equal(start(w, err, sizeof(err)), 0);
	assert_int_equal(certs_not_after(w->certs), (int64_t)w->a.not_after);
	p = certs_acquire(w->certs);
	certpair_get(p, &chain, &n, &key);
	assert_non_null(chain);
	assert_int_equal(n, 1);
	assert_non_null(key);
	assert_string_equal(certpair_serial(p), "01");
	certpair_release(p);
	assert_int_equal(certs_alive(w->certs), 1);
	/* Nothing changed since: nothing to do. */
	assert_int_equal(certs_check_now(w->certs, err, sizeof(err)), 0);
	assert_reloads(w, 0, 0);
}

static void certs_swaps_in_a_new_good_pair(void **state)
{
	struct world *w = *state;
	char err[512] = "";

	write_swap(w, w->cert_path, &w->a.cert);
	write_swap(w, w->key_path, &w->a.key);
	assert_int_equal(start(w, err, sizeof(err)), 0);
	write_swap(w, w->key_path, &w->b.key);
	write_swap(w, w->cert_path, &w->b.cert);
	assert_int_equal(certs_check_now(w->certs, err, sizeof(err)), 1);
	assert_int_equal(certs_not_after(w->certs), (int64_t)w->b.not_after);
	assert_int_equal(certs_check_now(w->certs, err, sizeof(err)), 0);
	assert_reloads(w, 1, 0);
}

static void certs_keeps_the_pair_in_use_when_the_new_one_does_not_match(void **state)
{
	struct world *w = *state;
	char err[512] = "";

	write_swap(w, w->cert_path, &w->a.cert);
	write_swap(w, w->key_path, &w->a.key);
	assert_int_equal(start(w, err, sizeof(err)), 0);
	/* The certificate of one pair with the key of another. */
	write_swap(w, w->cert_path, &w->c.cert);
	write_swap(w, w->key_path, &w->b.key);
	assert_true(certs_check_now(w->certs, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "does not match"));
	assert_int_equal(certs_not_after(w->certs), (int64_t)w->a.not_after);
	/* Refused once; tried again only when the files change again. */
	assert_int_equal(certs_check_now(w->certs, err, sizeof(err)), 0);
	assert_reloads(w, 0, 1);
	/* The matching key arrives: the new pair is taken. */
	write_swap(w, w->key_path, &w->c.key);
	assert_int_equal(certs_check_now(w->certs, err, sizeof(err)), 1);
	assert_int_equal(certs_not_after(w->certs), (int64_t)w->c.not_after);
	assert_reloads(w, 1, 1);
}

static void certs_keeps_the_pair_in_use_when_the_new_key_is_not_pem(void **state)
{
	struct world *w = *state;
	char err[512] = "";

	write_swap(w, w->cert_path, &w->a.cert);
	write_swap(w, w->key_path, &w->a.key);
	assert_int_equal(start(w, err, sizeof(err)), 0);
	write_text(w, w->key_path, "not a key\n");
	assert_true(certs_check_now(w->certs, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "no PEM private key"));
	assert_int_equal(certs_not_after(w->certs), (int64_t)w->a.not_after);
	assert_reloads(w, 0, 1);
}

static void certs_keeps_the_pair_in_use_while_the_files_are_missing(void **state)
{
	struct world *w = *state;
	char err[512] = "";

	write_swap(w, w->cert_path, &w->a.cert);
	write_swap(w, w->key_path, &w->a.key);
	assert_int_equal(start(w, err, sizeof(err)), 0);
	assert_int_equal(unlink(w->key_path), 0);
	assert_true(certs_check_now(w->certs, err, sizeof(err)) < 0);
	assert_int_equal(certs_not_after(w->certs), (int64_t)w->a.not_after);
}

static void certs_refuses_to_start_without_a_good_pair(void **state)
{
	struct world *w = *state;
	char err[512] = "";

	write_swap(w, w->cert_path, &w->a.cert);
	write_swap(w, w->key_path, &w->b.key);
	assert_int_equal(start(w, err, sizeof(err)), -EINVAL);
	assert_null(w->certs);
	assert_non_null(strstr(err, "does not match"));
}

/* The serial of the first certificate of p's chain, read from the chain itself. */
static unsigned chain_serial(struct certpair *p)
{
	unsigned char serial[20];
	size_t len = sizeof(serial);
	gnutls_x509_crt_t crt;
	gnutls_pcert_st *chain;
	gnutls_privkey_t key;
	unsigned n, v = 0;

	certpair_get(p, &chain, &n, &key);
	assert_int_equal(gnutls_pcert_export_x509(&chain[0], &crt), 0);
	assert_int_equal(gnutls_x509_crt_get_serial(crt, serial, &len), 0);
	gnutls_x509_crt_deinit(crt);
	for (size_t i = 0; i < len; i++)
		v = v << 8 | serial[i];
	return v;
}

/*
 * A connection holds the pair its handshake used: reloads (two of them) do not
 * free it under the connection, whose chain stays readable (under ASan a freed
 * one would be a use after free); it is freed when the connection lets go,
 * and a pair nobody holds is freed at the reload that replaces it.
 */
static void certs_frees_a_replaced_pair_when_its_last_holder_lets_go(void **state)
{
	struct world *w = *state;
	struct certpair *conn1, *conn2, *conn3;
	char err[512] = "";

	write_swap(w, w->cert_path, &w->a.cert);
	write_swap(w, w->key_path, &w->a.key);
	assert_int_equal(start(w, err, sizeof(err)), 0);
	conn1 = certs_acquire(w->certs);
	conn2 = certs_acquire(w->certs);
	write_swap(w, w->key_path, &w->b.key);
	write_swap(w, w->cert_path, &w->b.cert);
	assert_int_equal(certs_check_now(w->certs, err, sizeof(err)), 1);
	assert_int_equal(certs_alive(w->certs), 2);
	conn3 = certs_acquire(w->certs);
	assert_int_equal(chain_serial(conn3), 2);
	write_swap(w, w->key_path, &w->c.key);
	write_swap(w, w->cert_path, &w->c.cert);
	assert_int_equal(certs_check_now(w->certs, err, sizeof(err)), 1);
	assert_int_equal(certs_alive(w->certs), 3);
	/* Still the first pair, whole, under the two connections that use it. */
	assert_int_equal(chain_serial(conn1), 1);
	certpair_release(conn1);
	assert_int_equal(certs_alive(w->certs), 3);
	assert_int_equal(chain_serial(conn2), 1);
	assert_string_equal(certpair_serial(conn2), "01");
	certpair_release(conn2);
	assert_int_equal(certs_alive(w->certs), 2);
	certpair_release(conn3);
	assert_int_equal(certs_alive(w->certs), 1);
	/* Nobody holds the one in use: a reload frees it at once. */
	write_swap(w, w->key_path, &w->a.key);
	write_swap(w, w->cert_path, &w->a.cert);
	assert_int_equal(certs_check_now(w->certs, err, sizeof(err)), 1);
	assert_int_equal(certs_alive(w->certs), 1);
	assert_reloads(w, 3, 0);
}

/* Reloads and handshakes at once: every pair taken stays whole until released. */
struct churn {
	struct certs *certs;
	int rounds;
};

static void *handshakes(void *arg)
{
	struct churn *c = arg;

	for (int i = 0; i < c->rounds; i++) {
		struct certpair *p = certs_acquire(c->certs);
		unsigned serial = chain_serial(p);
		assert_true(serial >= 1 && serial <= 3);
		certpair_release(p);
	}
	return NULL;
}

static void certs_reloads_while_connections_take_and_drop_pairs(void **state)
{
	struct world *w = *state;
	const struct pem_pair *pairs[] = {&w->b, &w->c, &w->a};
	struct churn c = {.rounds = 2000};
	pthread_t t[2];
	char err[512] = "";

	write_swap(w, w->cert_path, &w->a.cert);
	write_swap(w, w->key_path, &w->a.key);
	assert_int_equal(start(w, err, sizeof(err)), 0);
	c.certs = w->certs;
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, handshakes, &c), 0);
	for (int i = 0; i < 30; i++) {
		const struct pem_pair *p = pairs[i % 3];
		write_swap(w, w->key_path, &p->key);
		write_swap(w, w->cert_path, &p->cert);
		assert_true(certs_check_now(w->certs, err, sizeof(err)) >= 0);
	}
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(certs_alive(w->certs), 1);
}

/* What --tls-min-version and --tls-cipher-suites become, and what they refuse. */
static void tls_priorities_default_to_ecdhe_with_aead(void **state)
{
	char out[512], err[512];

	(void)state;
	assert_int_equal(certs_tls_priorities(NULL, NULL, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:"
	                         "+ECDHE-RSA:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
	                         "+CHACHA20-POLY1305:-MAC-ALL:+AEAD");
	assert_null(strstr(out, "+RSA"));
	assert_null(strstr(out, "CBC"));
	assert_int_equal(
	    certs_tls_priorities("VersionTLS13", "", out, sizeof(out), err, sizeof(err)), 0);
	assert_null(strstr(out, "TLS1.2"));
	assert_int_equal(certs_tls_priorities("VersionTLS12",
	                                      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,"
	                                      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
	                                      out, sizeof(out), err, sizeof(err)),
	                 0);
	assert_string_equal(out, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-RSA:"
	                         "-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD");
	assert_int_equal(certs_tls_priorities("VersionTLS13", "TLS_AES_256_GCM_SHA384", out,
	                                      sizeof(out), err, sizeof(err)),
	                 0);
	assert_string_equal(out, "NORMAL:-VERS-ALL:+VERS-TLS1.3:-KX-ALL:-CIPHER-ALL:+AES-256-GCM:"
	                         "-MAC-ALL:+AEAD");
}

static void tls_priorities_refuse_unknown_and_insecure_names(void **state)
{
	static const struct {
		const char *min, *suites, *says;
	} bad[] = {
	    {"VersionTLS11", NULL, "below TLS 1.2"},
	    {"TLS12", NULL, "unknown; use VersionTLS12 or VersionTLS13"},
	    {NULL, "TLS_RSA_WITH_AES_128_GCM_SHA256", "static RSA key exchange"},
	    {NULL, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
	     "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is refused: CBC"},
	    {NULL, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", "RC4"},
	    {NULL, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,,", "an empty name"},
	    {NULL, "ECDHE-RSA-AES128-GCM-SHA256", "unknown cipher suite \"ECDHE-RSA-AES128"},
	    {NULL, "tls_ecdhe_rsa_with_aes_128_gcm_sha256", "unknown cipher suite"},
	    {"VersionTLS12", "TLS_AES_128_GCM_SHA256", "names no TLS 1.2 suite"},
	};
	char out[512], err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(certs_tls_priorities(bad[i].min, bad[i].suites, out, sizeof(out),
		                                      err, sizeof(err)),
		                 -EINVAL);
		if (!strstr(err, bad[i].says))
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].says);
	}
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(certs_loads_the_first_pair),
	    T(certs_swaps_in_a_new_good_pair),
	    T(certs_keeps_the_pair_in_use_when_the_new_one_does_not_match),
	    T(certs_keeps_the_pair_in_use_when_the_new_key_is_not_pem),
	    T(certs_keeps_the_pair_in_use_while_the_files_are_missing),
	    T(certs_refuses_to_start_without_a_good_pair),
	    T(certs_frees_a_replaced_pair_when_its_last_holder_lets_go),
	    T(certs_reloads_while_connections_take_and_drop_pairs),
	    cmocka_unit_test(tls_priorities_default_to_ecdhe_with_aead),
	    cmocka_unit_test(tls_priorities_refuse_unknown_and_insecure_names),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
