/* SPDX-License-Identifier: Apache-2.0 */
/* The serving certificate and key, reloaded without a restart when their files change. */
#include "webhook/certs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "common/errmsg.h"
#include "common/io/file_read.h"
#include "common/io/monotonic.h"
#include "common/limits.h"
#include "common/io/log.h"
#include "webhook/metrics.h"

/* A certificate may say it starts a little in the future: clocks of the issuer drift. */
#define CERTS_CLOCK_SKEW_S 300

struct certpair {
	gnutls_pcert_st chain[KANARY_MAX_CERT_CHAIN];
	unsigned n;
	gnutls_privkey_t key;
	int64_t not_after;
	char serial[2 * 20 + 1];    /* RFC 5280: at most 20 octets */
	struct timespec retired_at; /* CLOCK_MONOTONIC */
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
	long poll_ms, grace_ms;
	struct metrics *metrics;

	/* lock guards current: the TLS threads read it during handshakes. */
	pthread_mutex_t lock;
	struct certpair *current;

	/* check_lock serialises reloads; it guards everything below. */
	pthread_mutex_t check_lock;
	struct certpair *retired[KANARY_MAX_RETIRED_CERTS];
	size_t n_retired;
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
	free(p);
}

/*
 * Reads path whole, with what it looked like when opened (fstat: exactly the
 * file read, even when a symlink moves meanwhile).
 * Ownership: *ret is the caller's (free()).
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
	r = file_read_fd(fd, KANARY_MAX_CREDENTIAL, &data, &len);
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
	*ret = p;
	return 0;
out_invalid:
	pair_free(p);
	return -EINVAL;
}

/* Frees the replaced pairs no handshake can still be using. check_lock held. */
static void purge_retired(struct certs *c, struct timespec now)
{
	size_t kept = 0;

	for (size_t i = 0; i < c->n_retired; i++) {
		if (monotonic_ms_between(c->retired[i]->retired_at, now) >= c->grace_ms)
			pair_free(c->retired[i]);
		else
			c->retired[kept++] = c->retired[i];
	}
	c->n_retired = kept;
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
	struct timespec now = monotonic_now();
	int r;

	pthread_mutex_lock(&c->check_lock);
	purge_retired(c, now);
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
	if (key_pem)
		gnutls_memset(key_pem, 0, key_len);
	free(key_pem);
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
	if (c->current && c->n_retired == KANARY_MAX_RETIRED_CERTS) {
		/* Reloads faster than the grace period: the files are still there next poll. */
		pair_free(p);
		errmsg_format(err, err_size,
		              "%d reloads within %ld ms; waiting for older pairs to expire",
		              KANARY_MAX_RETIRED_CERTS, c->grace_ms);
		log_msg(LOG_DEBUG, NULL, "new serving certificate not taken yet: %s", err);
		r = -EBUSY;
		goto out_unlock;
	}
	pthread_mutex_lock(&c->lock);
	old = c->current;
	c->current = p;
	pthread_mutex_unlock(&c->lock);
	c->cert_id = cert_id;
	c->key_id = key_id;
	utc_text(p->not_after, when, sizeof(when));
	if (old) {
		old->retired_at = now;
		c->retired[c->n_retired++] = old;
		metrics_cert_reload(c->metrics, true);
		log_msg(LOG_INFO, NULL,
		        "serving certificate reloaded from %s: serial %s, valid until %s "
		        "(was serial %s)",
		        c->cert_file, p->serial, when, old->serial);
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

	if (!o->cert_file || !o->key_file || o->poll_interval_ms <= 0 || o->grace_ms <= 0)
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
	c->grace_ms = o->grace_ms;
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
	for (size_t i = 0; i < c->n_retired; i++)
		pair_free(c->retired[i]);
	pair_free(c->current);
	pthread_cond_destroy(&c->stop_cond);
	pthread_mutex_destroy(&c->stop_lock);
	pthread_mutex_destroy(&c->check_lock);
	pthread_mutex_destroy(&c->lock);
	free(c->cert_file);
	free(c->key_file);
	free(c);
}

void certs_current(struct certs *c, gnutls_pcert_st **ret_chain, unsigned *ret_n,
                   gnutls_privkey_t *ret_key)
{
	pthread_mutex_lock(&c->lock);
	*ret_chain = c->current->chain;
	*ret_n = c->current->n;
	*ret_key = c->current->key;
	pthread_mutex_unlock(&c->lock);
}

int64_t certs_not_after(struct certs *c)
{
	int64_t t;

	pthread_mutex_lock(&c->lock);
	t = c->current ? c->current->not_after : 0;
	pthread_mutex_unlock(&c->lock);
	return t;
}
