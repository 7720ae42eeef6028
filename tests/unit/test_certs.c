/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the serving certificate's reload: swap a good pair in, refuse a bad one. */
#include <errno.h>
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
	                                .grace_ms = 60000,
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
	gnutls_pcert_st *chain;
	gnutls_privkey_t key;
	char err[512] = "";
	unsigned n;

	write_swap(w, w->cert_path, &w->a.cert);
	write_swap(w, w->key_path, &w->a.key);
	assert_int_equal(start(w, err, sizeof(err)), 0);
	assert_int_equal(certs_not_after(w->certs), (int64_t)w->a.not_after);
	certs_current(w->certs, &chain, &n, &key);
	assert_non_null(chain);
	assert_int_equal(n, 1);
	assert_non_null(key);
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
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
