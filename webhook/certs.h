/* SPDX-License-Identifier: Apache-2.0 */
/* The serving certificate and key, reloaded without a restart when their files change. */
#ifndef KANARY_WEBHOOK_CERTS_H
#define KANARY_WEBHOOK_CERTS_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

struct metrics;

/*
 * The serving certificate and key, read from two PEM files and reloaded
 * without a restart when either changes.
 *
 * A poller thread stat()s both paths every poll interval, following
 * symlinks, so the atomic swap of a Secret volume's ..data symlink is seen
 * as a change of inode; a file rewritten in place as a change of size, mtime
 * or ctime. A changed pair is parsed into fresh storage and checked (the key
 * matches the first certificate, which is valid now) before it is swapped in
 * whole; a refused pair leaves the one in use, is logged and counted, and is
 * tried again when the files change again.
 *
 * A pair is reference-counted, not owned by GnuTLS: this object holds one
 * reference while it is the pair in use, and each TLS connection takes one
 * (certs_acquire) at its handshake and drops it (certpair_release) when it
 * closes. A replaced pair is freed when the last connection using it closes,
 * at once when none does.
 */
struct certs_options {
	const char *cert_file; /* leaf first, then intermediates */
	const char *key_file;
	long poll_interval_ms;   /* > 0 */
	struct metrics *metrics; /* reload counters; borrowed */
};

struct certs;
struct certpair;

/*
 * Reads and checks the first pair; without a good one there is nothing to
 * serve, so this fails (-EINVAL, -ENOENT, -EACCES, -E2BIG, -ENOMEM) with
 * the reason in err. Paths are copied; metrics is borrowed.
 * Ownership: *ret is the caller's, freed with certs_destroy.
 */
int certs_create(const struct certs_options *o, struct certs **ret, char *err, size_t err_size);
/* Starts the poller thread. */
int certs_start(struct certs *c);
/*
 * Stops the poller and drops its reference to the pair in use; NULL does
 * nothing. Call after TLS has stopped, when every connection has released
 * its pair.
 */
void certs_destroy(struct certs *c);

/*
 * The pair in use, with one more reference, for one connection: valid until
 * that reference is released, however many reloads happen meanwhile. Safe
 * from any thread.
 * Ownership: the caller's reference, dropped with certpair_release.
 */
struct certpair *certs_acquire(struct certs *c);
/* Drops one reference; the last frees the pair. NULL does nothing. Any thread. */
void certpair_release(struct certpair *p);
/* The chain and key of p, borrowed for as long as the caller holds its reference. */
void certpair_get(struct certpair *p, gnutls_pcert_st **ret_chain, unsigned *ret_n,
                  gnutls_privkey_t *ret_key);
/* The first certificate's serial number in hex, for logs; borrowed like the chain. */
const char *certpair_serial(const struct certpair *p);
/* Pairs loaded and not yet freed: the one in use and the replaced ones still held. */
unsigned certs_alive(struct certs *c);

/* The first certificate's expiry in use, in Unix seconds. */
int64_t certs_not_after(struct certs *c);

/*
 * The GnuTLS priority string of the admission server, from the flags as
 * Kubernetes components spell them:
 *   min_version    "VersionTLS12" or "VersionTLS13"; NULL for TLS 1.2.
 *   cipher_suites  a comma-separated list of IANA names as Go's crypto/tls
 *                  knows them (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...,
 *                  and the TLS 1.3 ones, TLS_AES_128_GCM_SHA256, ...); NULL
 *                  or "" for the default.
 * The default is TLS 1.2 with ECDHE key exchange (RSA or ECDSA certificate)
 * and an AEAD cipher (AES-GCM, ChaCha20-Poly1305), and TLS 1.3 with those
 * ciphers. Static-RSA key exchange, CBC, RC4 and 3DES are never offered:
 * naming such a suite is refused (-EINVAL, err names the suite and why), as
 * is a name Go does not know, an empty list item and a version below 1.2.
 * GnuTLS takes one list of key exchanges and one of ciphers: the suites
 * offered are every named key exchange with every named cipher, and TLS 1.3
 * offers the named ciphers.
 */
int certs_tls_priorities(const char *min_version, const char *cipher_suites, char *out,
                         size_t out_size, char *err, size_t err_size);

/*
 * Checks the files now instead of at the next poll, from the caller's
 * thread; returns 1 when a new pair was swapped in, 0 when nothing changed,
 * or -errno when a changed pair was refused (err says why). For tests and
 * for the poller.
 */
int certs_check_now(struct certs *c, char *err, size_t err_size);

#endif
