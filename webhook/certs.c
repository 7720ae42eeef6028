/* SPDX-License-Identifier: Apache-2.0 */
/* The serving certificate and key, reloaded without a restart when their files change. */
#include "webhook/certs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "common/buf.h"
#include "common/errmsg.h"
#include "common/io/monotonic.h"
#include "common/io/secret_read.h"
#include "common/limits.h"
#include "common/io/log.h"
#include "webhook/metrics.h"

/* A certificate may say it starts a little in the future: clocks of the issuer drift. */
#define CERTS_CLOCK_SKEW_S 300

/*
 * One chain and its key. References: the certs object while the pair is the
 * one in use, and each connection whose handshake it served; the last
 * certpair_release frees it.
 */
struct certpair {
	gnutls_pcert_st chain[KANARY_MAX_CERT_CHAIN];
	unsigned n;
	gnutls_privkey_t key;
	int64_t not_after;
	char serial[2 * 20 + 1]; /* RFC 5280: at most 20 octets */
	atomic_uint refs;
	atomic_uint *alive; /* the owner's count of pairs not yet freed */
};

/* What a file looked like when it was read: any difference means it changed. */
struct file_id {
	bool valid;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct certs {
	char *cert_file, *key_file;
	long poll_ms;
	struct metrics *metrics;
	/* Pairs parsed and not yet freed: the one in use and those connections still hold. */
	atomic_uint alive;

	/* lock guards current: the TLS threads read it during handshakes. */
	pthread_mutex_t lock;
	struct certpair *current;

	/* check_lock serialises reloads; it guards everything below. */
	pthread_mutex_t check_lock;
	struct file_id cert_id, key_id;
	bool missing_logged;

	/* The poller thread and its stop signal. */
	pthread_t thread;
	bool started;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stop;
};

static void file_id_from_stat(const struct stat *st, struct file_id *ret)
{
	ret->valid = true;
	ret->dev = st->st_dev;
	ret->ino = st->st_ino;
	ret->size = st->st_size;
	ret->mtime = st->st_mtim;
	ret->ctime = st->st_ctim;
}

/* What path (following symlinks) looks like now. */
static int stat_id(const char *path, struct file_id *ret)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	file_id_from_stat(&st, ret);
	return 0;
}

static bool file_id_equal(const struct file_id *a, const struct file_id *b)
{
	return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void pair_free(struct certpair *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n; i++)
		gnutls_pcert_deinit(&p->chain[i]);
	if (p->key)
		gnutls_privkey_deinit(p->key);
	if (p->alive)
		atomic_fetch_sub(p->alive, 1);
	free(p);
}

void certpair_release(struct certpair *p)
{
	if (p && atomic_fetch_sub(&p->refs, 1) == 1)
		pair_free(p);
}

/*
 * Reads path whole, with what it looked like when opened (fstat: exactly the
 * file read, even when a symlink moves meanwhile). With secret_read_fd, for
 * the key's sake: one heap buffer, wiped on every failure, and no stack copy.
 * Ownership: *ret is the caller's (secret_free(*ret, *ret_len) for the key).
 */
static int read_file(const char *path, char **ret, size_t *ret_len, struct file_id *ret_id,
                     char *err, size_t err_size)
{
	struct file_id id;
	struct stat st;
	char *data;
	size_t len;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		errmsg_format(err, err_size, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		errmsg_format(err, err_size, "%s: %s", path, strerror(-r));
		goto out_close;
	}
	file_id_from_stat(&st, &id);
	r = secret_read_fd(fd, KANARY_MAX_CREDENTIAL, &data, &len);
	if (r < 0) {
		errmsg_format(err, err_size, "%s: %s", path,
		              r == -E2BIG ? "larger than the credential ceiling" : strerror(-r));
		goto out_close;
	}
	*ret = data;
	*ret_len = len;
	*ret_id = id;
out_close:
	close(fd);
	return r;
}

/* Hex of the serial number, for logs; "?" when it cannot be read. */
static void serial_hex(gnutls_x509_crt_t crt, char *out, size_t size)
{
	unsigned char serial[20];
	size_t len = sizeof(serial), o = 0;

	if (gnutls_x509_crt_get_serial(crt, serial, &len) < 0 || size < 2 * len + 1) {
		snprintf(out, size, "?");
		return;
	}
	for (size_t i = 0; i < len; i++)
		o += (size_t)snprintf(out + o, size - o, "%02x", serial[i]);
}

static bool same_public_key(gnutls_pubkey_t a, gnutls_privkey_t key)
{
	unsigned char id_a[64], id_b[64];
	size_t len_a = sizeof(id_a), len_b = sizeof(id_b);
	gnutls_pubkey_t b;
	bool same = false;

	if (gnutls_pubkey_init(&b) < 0)
		return false;
	if (gnutls_pubkey_import_privkey(b, key, 0, 0) == 0 &&
	    gnutls_pubkey_get_key_id(a, GNUTLS_KEYID_USE_SHA256, id_a, &len_a) == 0 &&
	    gnutls_pubkey_get_key_id(b, GNUTLS_KEYID_USE_SHA256, id_b, &len_b) == 0)
		same = len_a == len_b && memcmp(id_a, id_b, len_a) == 0;
	gnutls_pubkey_deinit(b);
	return same;
}

/*
 * Parses and checks one pair: a PEM chain of 1..KANARY_MAX_CERT_CHAIN
 * certificates, a PEM private key matching the first, which is valid now.
 * Ownership: *ret is the caller's (pair_free).
 */
static int pair_parse(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                      const char *cert_path, const char *key_path, struct certpair **ret, char *err,
                      size_t err_size)
{
	gnutls_datum_t cd = {(unsigned char *)cert_pem, (unsigned)cert_len};
	gnutls_datum_t kd = {(unsigned char *)key_pem, (unsigned)key_len};
	gnutls_x509_crt_t crt = NULL;
	struct certpair *p;
	unsigned n = KANARY_MAX_CERT_CHAIN;
	time_t now = time(NULL), nb, na;
	int g;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	g = gnutls_pcert_list_import_x509_raw(p->chain, &n, &cd, GNUTLS_X509_FMT_PEM, 0);
	if (g == GNUTLS_E_SHORT_MEMORY_BUFFER) {
		errmsg_format(err, err_size, "%s: more than %d certificates", cert_path,
		              KANARY_MAX_CERT_CHAIN);
		goto out_invalid;
	}
	if (g < 0 || n == 0) {
		errmsg_format(err, err_size, "%s: no PEM certificate: %s", cert_path,
		              g < 0 ? gnutls_strerror(g) : "empty");
		goto out_invalid;
	}
	p->n = n;
	if (gnutls_privkey_init(&p->key) < 0) {
		pair_free(p);
		return -ENOMEM;
	}
	g = gnutls_privkey_import_x509_raw(p->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (g < 0) {
		errmsg_format(err, err_size, "%s: no PEM private key: %s", key_path,
		              gnutls_strerror(g));
		goto out_invalid;
	}
	if (!same_public_key(p->chain[0].pubkey, p->key)) {
		errmsg_format(err, err_size, "%s does not match the certificate in %s", key_path,
		              cert_path);
		goto out_invalid;
	}
	if (gnutls_pcert_export_x509(&p->chain[0], &crt) < 0) {
		errmsg_format(err, err_size, "%s: the certificate cannot be read back", cert_path);
		goto out_invalid;
	}
	nb = gnutls_x509_crt_get_activation_time(crt);
	na = gnutls_x509_crt_get_expiration_time(crt);
	serial_hex(crt, p->serial, sizeof(p->serial));
	gnutls_x509_crt_deinit(crt);
	if (nb == (time_t)-1 || na == (time_t)-1) {
		errmsg_format(err, err_size, "%s: the certificate has no readable validity period",
		              cert_path);
		goto out_invalid;
	}
	if (na <= now) {
		errmsg_format(err, err_size,
		              "%s: the certificate (serial %s) expired %lld seconds ago", cert_path,
		              p->serial, (long long)(now - na));
		goto out_invalid;
	}
	if (nb > now + CERTS_CLOCK_SKEW_S) {
		errmsg_format(err, err_size,
		              "%s: the certificate (serial %s) is not valid for %lld seconds",
		              cert_path, p->serial, (long long)(nb - now));
		goto out_invalid;
	}
	p->not_after = (int64_t)na;
	atomic_init(&p->refs, 1);
	*ret = p;
	return 0;
out_invalid:
	pair_free(p);
	return -EINVAL;
}

static void utc_text(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, size, "%" PRId64, t);
}

int certs_check_now(struct certs *c, char *err, size_t err_size)
{
	struct file_id cert_now, key_now, cert_id, key_id;
	char *cert_pem = NULL, *key_pem = NULL, when[32];
	size_t cert_len = 0, key_len = 0;
	struct certpair *p = NULL, *old;
	int r;

	pthread_mutex_lock(&c->check_lock);
	r = stat_id(c->cert_file, &cert_now);
	if (r == 0)
		r = stat_id(c->key_file, &key_now);
	if (r < 0) {
		errmsg_format(err, err_size, "%s or %s: %s", c->cert_file, c->key_file,
		              strerror(-r));
		/* Missing for a moment is normal while files are replaced: say it once. */
		if (c->current && !c->missing_logged)
			log_msg(LOG_WARNING, NULL,
			        "certificate files cannot be read (%s); serving the one in use "
			        "until they can",
			        err);
		c->missing_logged = true;
		goto out_unlock;
	}
	c->missing_logged = false;
	if (c->current && file_id_equal(&cert_now, &c->cert_id) &&
	    file_id_equal(&key_now, &c->key_id)) {
		r = 0;
		goto out_unlock;
	}
	r = read_file(c->cert_file, &cert_pem, &cert_len, &cert_id, err, err_size);
	if (r == 0)
		r = read_file(c->key_file, &key_pem, &key_len, &key_id, err, err_size);
	if (r == 0)
		r = pair_parse(cert_pem, cert_len, key_pem, key_len, c->cert_file, c->key_file, &p,
		               err, err_size);
	secret_free(key_pem, key_len);
	free(cert_pem);
	if (r == -ENOMEM)
		goto out_unlock;
	if (r < 0) {
		/* Try again when the files change, not at every poll. */
		c->cert_id = cert_now;
		c->key_id = key_now;
		if (c->current) {
			metrics_cert_reload(c->metrics, false);
			utc_text(c->current->not_after, when, sizeof(when));
			log_msg(LOG_WARNING, NULL,
			        "refusing the new serving certificate: %s; keeping the one in use "
			        "(serial %s, valid until %s); trying again when the files change",
			        err, c->current->serial, when);
		}
		goto out_unlock;
	}
	p->alive = &c->alive;
	atomic_fetch_add(&c->alive, 1);
	pthread_mutex_lock(&c->lock);
	old = c->current;
	c->current = p;
	pthread_mutex_unlock(&c->lock);
	c->cert_id = cert_id;
	c->key_id = key_id;
	utc_text(p->not_after, when, sizeof(when));
	if (old) {
		metrics_cert_reload(c->metrics, true);
		log_msg(LOG_INFO, NULL,
		        "serving certificate reloaded from %s: serial %s, valid until %s "
		        "(was serial %s)",
		        c->cert_file, p->serial, when, old->serial);
		/* Freed here, or when the last connection that uses it closes. */
		certpair_release(old);
	} else {
		log_msg(LOG_INFO, NULL,
		        "serving certificate loaded from %s: serial %s, valid until %s",
		        c->cert_file, p->serial, when);
	}
	r = 1;
out_unlock:
	pthread_mutex_unlock(&c->check_lock);
	return r;
}

static void *poller_main(void *arg)
{
	struct certs *c = arg;
	char err[KANARY_MAX_KUBE_MESSAGE];

	pthread_mutex_lock(&c->stop_lock);
	while (!c->stop) {
		struct timespec until = monotonic_after_ms(c->poll_ms);

		while (!c->stop &&
		       pthread_cond_timedwait(&c->stop_cond, &c->stop_lock, &until) == 0)
			;
		if (c->stop)
			break;
		pthread_mutex_unlock(&c->stop_lock);
		/* Outcomes are logged where they are decided, in certs_check_now. */
		(void)certs_check_now(c, err, sizeof(err));
		pthread_mutex_lock(&c->stop_lock);
	}
	pthread_mutex_unlock(&c->stop_lock);
	return NULL;
}

int certs_create(const struct certs_options *o, struct certs **ret, char *err, size_t err_size)
{
	pthread_condattr_t ca;
	struct certs *c;
	int r;

	if (!o->cert_file || !o->key_file || o->poll_interval_ms <= 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cert_file = strdup(o->cert_file);
	c->key_file = strdup(o->key_file);
	if (!c->cert_file || !c->key_file) {
		free(c->cert_file);
		free(c->key_file);
		free(c);
		return -ENOMEM;
	}
	c->poll_ms = o->poll_interval_ms;
	atomic_init(&c->alive, 0);
	c->metrics = o->metrics;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->check_lock, NULL);
	pthread_mutex_init(&c->stop_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	r = certs_check_now(c, err, err_size);
	if (r < 0) {
		certs_destroy(c);
		return r;
	}
	*ret = c;
	return 0;
}

int certs_start(struct certs *c)
{
	int r;

	if (c->started)
		return -EALREADY;
	r = pthread_create(&c->thread, NULL, poller_main, c);
	if (r != 0)
		return -r;
	c->started = true;
	return 0;
}

void certs_destroy(struct certs *c)
{
	if (!c)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->stop_lock);
		c->stop = true;
		pthread_cond_broadcast(&c->stop_cond);
		pthread_mutex_unlock(&c->stop_lock);
		pthread_join(c->thread, NULL);
	}
	certpair_release(c->current);
	pthread_cond_destroy(&c->stop_cond);
	pthread_mutex_destroy(&c->stop_lock);
	pthread_mutex_destroy(&c->check_lock);
	pthread_mutex_destroy(&c->lock);
	free(c->cert_file);
	free(c->key_file);
	free(c);
}

struct certpair *certs_acquire(struct certs *c)
{
	struct certpair *p;

	pthread_mutex_lock(&c->lock);
	p = c->current;
	atomic_fetch_add(&p->refs, 1);
	pthread_mutex_unlock(&c->lock);
	return p;
}

void certpair_get(struct certpair *p, gnutls_pcert_st **ret_chain, unsigned *ret_n,
                  gnutls_privkey_t *ret_key)
{
	*ret_chain = p->chain;
	*ret_n = p->n;
	*ret_key = p->key;
}

const char *certpair_serial(const struct certpair *p)
{
	return p->serial;
}

unsigned certs_alive(struct certs *c)
{
	return atomic_load(&c->alive);
}

int64_t certs_not_after(struct certs *c)
{
	int64_t t;

	pthread_mutex_lock(&c->lock);
	t = c->current ? c->current->not_after : 0;
	pthread_mutex_unlock(&c->lock);
	return t;
}

/* A cipher suite as Go's crypto/tls names it, and what GnuTLS calls its parts. */
struct suite {
	const char *name;
	const char *kx;     /* NULL: a TLS 1.3 suite */
	const char *cipher; /* NULL: refused, for the reason in why */
	const char *why;
};

static const struct suite suites[] = {
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA", "AES-128-GCM", NULL},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA", "AES-256-GCM", NULL},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA", "AES-128-GCM", NULL},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA", "AES-256-GCM", NULL},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA", "CHACHA20-POLY1305", NULL},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA", "CHACHA20-POLY1305", NULL},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA", "CHACHA20-POLY1305", NULL},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA", "CHACHA20-POLY1305", NULL},
    {"TLS_AES_128_GCM_SHA256", NULL, "AES-128-GCM", NULL},
    {"TLS_AES_256_GCM_SHA384", NULL, "AES-256-GCM", NULL},
    {"TLS_CHACHA20_POLY1305_SHA256", NULL, "CHACHA20-POLY1305", NULL},
#define STATIC_RSA "static RSA key exchange (no forward secrecy)"
#define CBC        "CBC mode (padding-oracle attacks; use an AEAD suite)"
    {"TLS_RSA_WITH_RC4_128_SHA", NULL, NULL, "RC4 is broken"},
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", NULL, NULL, STATIC_RSA " and 3DES"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", NULL, NULL, STATIC_RSA " and " CBC},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", NULL, NULL, STATIC_RSA " and " CBC},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", NULL, NULL, STATIC_RSA " and " CBC},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", NULL, NULL, STATIC_RSA},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", NULL, NULL, STATIC_RSA},
    {"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", NULL, NULL, "RC4 is broken"},
    {"TLS_ECDHE_RSA_WITH_RC4_128_SHA", NULL, NULL, "RC4 is broken"},
    {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", NULL, NULL, "3DES and " CBC},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", NULL, NULL, CBC},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", NULL, NULL, CBC},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", NULL, NULL, CBC},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", NULL, NULL, CBC},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", NULL, NULL, CBC},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", NULL, NULL, CBC},
#undef STATIC_RSA
#undef CBC
};

#define N_SUITES (sizeof(suites) / sizeof(suites[0]))

/* Appends ":+word" to a priority string unless it is there already. */
static int prio_add(struct buf *b, const char *word)
{
	size_t n = strlen(word);

	for (const char *at = b->data; at && (at = strstr(at, word)) != NULL; at += n)
		if (at - b->data >= 2 && at[-1] == '+' && at[-2] == ':' &&
		    (at[n] == '\0' || at[n] == ':'))
			return 0;
	return buf_printf(b, ":+%s", word);
}

int certs_tls_priorities(const char *min_version, const char *cipher_suites, char *out,
                         size_t out_size, char *err, size_t err_size)
{
	static const char *const default_suites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,"
	                                          "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,"
	                                          "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,"
	                                          "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,"
	                                          "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,"
	                                          "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256";
	struct buf kx, ciphers;
	gnutls_priority_t prio;
	const char *p, *errpos = NULL;
	bool tls12;
	int r, g;

	if (!min_version || strcmp(min_version, "VersionTLS12") == 0) {
		tls12 = true;
	} else if (strcmp(min_version, "VersionTLS13") == 0) {
		tls12 = false;
	} else if (strcmp(min_version, "VersionTLS10") == 0 ||
	           strcmp(min_version, "VersionTLS11") == 0) {
		errmsg_format(err, err_size,
		              "--tls-min-version %s: versions below TLS 1.2 are not served",
		              min_version);
		return -EINVAL;
	} else {
		errmsg_format(err, err_size,
		              "--tls-min-version \"%s\": unknown; use VersionTLS12 or VersionTLS13",
		              min_version);
		return -EINVAL;
	}
	if (!cipher_suites || !cipher_suites[0])
		cipher_suites = default_suites;
	buf_init(&kx, 1024);
	buf_init(&ciphers, 1024);
	r = 0;
	for (p = cipher_suites; r == 0;) {
		size_t n = strcspn(p, ",");
		const struct suite *s = NULL;

		for (size_t i = 0; i < N_SUITES; i++)
			if (strlen(suites[i].name) == n && strncmp(suites[i].name, p, n) == 0)
				s = &suites[i];
		if (n == 0) {
			errmsg_format(err, err_size, "--tls-cipher-suites: an empty name in \"%s\"",
			              cipher_suites);
			r = -EINVAL;
		} else if (!s) {
			errmsg_format(err, err_size,
			              "--tls-cipher-suites: unknown cipher suite \"%.*s\"; use the "
			              "IANA names, such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
			              (int)n, p);
			r = -EINVAL;
		} else if (!s->cipher) {
			errmsg_format(err, err_size, "--tls-cipher-suites: %s is refused: %s",
			              s->name, s->why);
			r = -EINVAL;
		} else {
			if (s->kx)
				r = prio_add(&kx, s->kx);
			if (r == 0)
				r = prio_add(&ciphers, s->cipher);
		}
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	if (r == 0 && tls12 && !kx.len) {
		errmsg_format(err, err_size,
		              "--tls-cipher-suites names no TLS 1.2 suite, so TLS 1.2 could not be "
		              "served; name one, or set --tls-min-version VersionTLS13");
		r = -EINVAL;
	}
	if (r == 0) {
		/* NORMAL for signatures, groups and the rest; KX, ciphers and MACs replaced. */
		g = snprintf(out, out_size,
		             "NORMAL:-VERS-ALL:+VERS-TLS1.3%s:-KX-ALL%s:-CIPHER-ALL%s:"
		             "-MAC-ALL:+AEAD",
		             tls12 ? ":+VERS-TLS1.2" : "", tls12 && kx.data ? kx.data : "",
		             ciphers.data ? ciphers.data : "");
		if (g < 0 || (size_t)g >= out_size)
			r = -E2BIG;
	}
	buf_finish(&kx);
	buf_finish(&ciphers);
	if (r < 0)
		return r;
	g = gnutls_priority_init(&prio, out, &errpos);
	if (g < 0) {
		errmsg_format(err, err_size,
		              "TLS priorities \"%s\" refused by GnuTLS at \"%s\": %s", out,
		              errpos ? errpos : "?", gnutls_strerror(g));
		return -EINVAL;
	}
	gnutls_priority_deinit(prio);
	return 0;
}
