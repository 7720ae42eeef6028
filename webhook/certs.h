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
 * Handshakes on the TLS threads take the pair in use with certs_current.
 * The pair is owned here, not by GnuTLS: a replaced pair is kept alive for
 * grace_ms more, longer than any handshake that may still use it.
 */
struct certs_options {
	const char *cert_file; /* leaf first, then intermediates */
	const char *key_file;
	long poll_interval_ms;   /* > 0 */
	long grace_ms;           /* how long a replaced pair stays alive; > 0 */
	struct metrics *metrics; /* reload counters; borrowed */
};

struct certs;

/*
 * Reads and checks the first pair; without a good one there is nothing to
 * serve, so this fails (-EINVAL, -ENOENT, -EACCES, -E2BIG, -ENOMEM) with
 * the reason in err. Paths are copied; metrics is borrowed.
 * Ownership: *ret is the caller's, freed with certs_destroy.
 */
int certs_create(const struct certs_options *o, struct certs **ret, char *err, size_t err_size);
/* Starts the poller thread. */
int certs_start(struct certs *c);
/* Stops the poller and frees every pair; NULL does nothing. Call after TLS has stopped. */
void certs_destroy(struct certs *c);

/*
 * The pair in use, for one handshake: chain and key stay valid for at least
 * grace_ms after a reload replaces them. Safe from any thread.
 */
void certs_current(struct certs *c, gnutls_pcert_st **ret_chain, unsigned *ret_n,
                   gnutls_privkey_t *ret_key);

/* The first certificate's expiry in use, in Unix seconds. */
int64_t certs_not_after(struct certs *c);

/*
 * Checks the files now instead of at the next poll, from the caller's
 * thread; returns 1 when a new pair was swapped in, 0 when nothing changed,
 * or -errno when a changed pair was refused (err says why). For tests and
 * for the poller.
 */
int certs_check_now(struct certs *c, char *err, size_t err_size);

#endif
