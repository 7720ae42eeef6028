/* SPDX-License-Identifier: Apache-2.0 */
/* Where and how to reach the API server: kubeconfig or the pod's service account. */
#ifndef KANARY_KUBE_CONFIG_H
#define KANARY_KUBE_CONFIG_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "common/limits.h"

/*
 * Where and how to reach the API server: a kubeconfig (local development,
 * tests) or the pod's service account (in-cluster).
 *
 * Supported: server (https or http, IPv6 literals), certificate-authority(-data),
 * insecure-skip-tls-verify, proxy-url; token, tokenFile, client-certificate(-data)
 * and client-key(-data); contexts with namespace; KUBECONFIG lists merged as
 * client-go does (the first file that names a context, cluster or user wins;
 * the first non-empty current-context wins).
 *
 * Refused with an error naming the field: exec credential plugins and
 * auth-provider (they run programs or need OAuth flows a daemon should not),
 * username/password (basic auth was removed from Kubernetes in 1.19),
 * impersonation (as, as-groups, as-uid, as-user-extra) and tls-server-name
 * (not supported by the client yet).
 *
 * A bearer token (token or tokenFile) with an http:// server is refused: it
 * would cross the network in clear text. allow_http_token (the daemons'
 * --insecure-allow-http-token) lets it through, for a test server on
 * loopback; the client checks again before every request.
 *
 * Secrets (tokens, keys, the kubeconfig's text and every string of every
 * document parsed from it) are wiped with explicit_bzero, which the compiler
 * may not drop, before their memory is freed; inline certificates and keys go
 * into memory files sealed against any change.
 *
 * One kube_config is shared by every client, informer and recorder built
 * from it and must outlive them. Only the bearer token changes after loading;
 * it sits behind token_lock, so the config may be used from any thread.
 */

enum kube_log_level {
	KUBE_LOG_DEBUG = 0,
	KUBE_LOG_INFO,
	KUBE_LOG_WARNING,
	KUBE_LOG_ERROR,
};

/*
 * The daemons own the log format; the client reports through this callback,
 * from whichever thread made the decision. No callback: silent.
 */
struct kube_logger {
	void (*fn)(void *ctx, enum kube_log_level level, const char *msg);
	void *ctx;
};

/* Why a configuration could not be loaded, for a person; names the file and field. */
struct kube_config_err {
	char msg[KANARY_MAX_KUBE_MESSAGE];
};

/* Where client-go and kubelet put the service-account files. */
#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Re-read the token file at least this often even when it looks unchanged (client-go). */
#define KUBE_TOKEN_REFRESH_S 60
/*
 * How often, at most, a request looks at the token file (one stat, under
 * token_lock): every request from every thread asking the file system would
 * serialise them on that lock. A rotation is seen within this much.
 */
#define KUBE_TOKEN_CHECK_MS 1000

struct kube_config {
	/* Read-only after loading. */
	char *server;          /* "https://host:port[/prefix]", no trailing slash */
	char *namespace;       /* the context's or pod's namespace, else "default" */
	char *ca_file;         /* PEM bundle to verify the server, or NULL for the system's */
	char *cert_file;       /* client certificate (PEM), or NULL */
	char *key_file;        /* its key (PEM), or NULL */
	char *token_file;      /* bearer token file, re-read when it changes, or NULL */
	char *proxy;           /* proxy-url, or NULL (libcurl then honours *_proxy variables) */
	bool insecure;         /* insecure-skip-tls-verify */
	bool allow_http_token; /* a token may go to an http:// server (see above) */
	char *origin;          /* "in-cluster" or "<file> (context <name>)", for logs */
	struct kube_logger log;

	/*
	 * Inline credentials live in memory files, named by /proc/self/fd paths,
	 * sealed (F_SEAL_SEAL, SHRINK, GROW, WRITE) once written.
	 */
	int memfd[3];

	/* The current bearer token and what the file looked like when read. */
	pthread_mutex_t token_lock;
	char *token;
	bool token_stat_valid;
	dev_t token_dev;
	ino_t token_ino;
	off_t token_size;
	struct timespec token_mtime;
	struct timespec token_ctime;
	time_t token_read_at;       /* CLOCK_MONOTONIC seconds */
	long long token_checked_ms; /* CLOCK_MONOTONIC ms of the last look at token_file */
	unsigned long token_reads;
};

/*
 * Loads the configuration the way controller-runtime does: the kubeconfig
 * named by kubeconfig (a --kubeconfig flag) when not NULL; else the files in
 * $KUBECONFIG; else the pod's service account when KUBERNETES_SERVICE_HOST is
 * set and its files can be read; else ~/.kube/config (when that is missing
 * too, the service account's error is returned). context (a --context flag)
 * overrides the kubeconfig's current-context when not NULL.
 * Returns 0, -ENOENT when nothing applies, -EINVAL with err filled for a bad
 * or unsupported configuration, -ENOMEM.
 * Ownership: *ret is the caller's, freed with kube_config_destroy.
 */
int kube_config_load(const char *kubeconfig, const char *context, struct kube_config **ret,
                     struct kube_config_err *err);

/* What the daemons' flags say about loading; kube_config_load is this with all zero. */
struct kube_config_options {
	const char *kubeconfig; /* --kubeconfig, or NULL */
	const char *context;    /* --context, or NULL */
	/* --insecure-allow-http-token: send a bearer token to an http:// server. */
	bool allow_http_token;
};

/* kube_config_load with options; the same results and ownership. */
int kube_config_load_options(const struct kube_config_options *o, struct kube_config **ret,
                             struct kube_config_err *err);

/*
 * Reads kubeconfig files, merged in order (missing files in a list of more
 * than one are skipped, as client-go does). Relative paths inside a file are
 * relative to that file's directory.
 */
int kube_config_from_kubeconfig(const char *const *paths, size_t n_paths, const char *context,
                                struct kube_config **ret, struct kube_config_err *err);

/*
 * In-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (an IPv6
 * host is bracketed), sa_dir/token (must be readable now; re-read later),
 * sa_dir/ca.crt, and the namespace from $POD_NAMESPACE or sa_dir/namespace.
 * sa_dir NULL means KUBE_SA_DIR.
 */
int kube_config_in_cluster(const char *sa_dir, struct kube_config **ret,
                           struct kube_config_err *err);

/* Closes the memory files, wipes the token and frees everything; NULL does nothing. */
void kube_config_destroy(struct kube_config *cfg);

void kube_config_set_logger(struct kube_config *cfg, const struct kube_logger *log);

/*
 * The bearer token to send now, re-reading token_file when its inode, size,
 * mtime or ctime changed or KUBE_TOKEN_REFRESH_S passed (bound tokens expire
 * and kubelet rewrites the file). The file is looked at (stat) at most once
 * per KUBE_TOKEN_CHECK_MS, so a change is seen within that. A failed re-read
 * keeps the last good token and is tried again at the next look.
 * Returns 0 with *ret_token NULL when the config has no token; -ENOENT or
 * -EACCES when the file never could be read; -E2BIG past KANARY_MAX_TOKEN.
 * Ownership: *ret_token is the caller's, freed with kube_secret_free.
 */
int kube_config_token(struct kube_config *cfg, char **ret_token);

/*
 * Wipes the NUL-terminated secret s with explicit_bzero (a wipe the compiler
 * may not remove as a dead store) and frees it; NULL does nothing.
 */
void kube_secret_free(char *s);

/* Logs through cfg's callback; does nothing without one. */
void kube_log(const struct kube_config *cfg, enum kube_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
