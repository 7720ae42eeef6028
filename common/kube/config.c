/* SPDX-License-Identifier: Apache-2.0 */
/* Where and how to reach the API server: kubeconfig or the pod's service account. */
/* memfd_create keeps inline credentials off the disk; explicit_bzero wipes secrets. */
#define _GNU_SOURCE
#include "common/kube/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/doc.h"
#include "common/integer.h"
#include "common/io/file_read.h"
#include "common/io/monotonic.h"
#include "common/io/secret_read.h"
#include "common/limits.h"

static void cfg_errf(struct kube_config_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void cfg_errf(struct kube_config_err *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	/* Mark a cut message rather than pretend it is whole. */
	if (n >= (int)sizeof(err->msg))
		memcpy(err->msg + sizeof(err->msg) - 4, "...", 4);
}

void kube_log(const struct kube_config *cfg, enum kube_log_level level, const char *fmt, ...)
{
	char msg[KANARY_MAX_KUBE_MESSAGE];
	va_list ap;
	int n;

	if (!cfg || !cfg->log.fn)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n >= (int)sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	cfg->log.fn(cfg->log.ctx, level, msg);
}

void kube_secret_free(char *s)
{
	if (s)
		secret_free(s, strlen(s));
}

void kube_config_set_logger(struct kube_config *cfg, const struct kube_logger *log)
{
	if (log)
		cfg->log = *log;
	else
		cfg->log = (struct kube_logger){0};
}

/* A new, empty config; every pointer NULL, memory files closed. */
static struct kube_config *config_new(void)
{
	struct kube_config *cfg;

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return NULL;
	for (size_t i = 0; i < 3; i++)
		cfg->memfd[i] = -1;
	if (pthread_mutex_init(&cfg->token_lock, NULL) != 0) {
		free(cfg);
		return NULL;
	}
	return cfg;
}

void kube_config_destroy(struct kube_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->server);
	free(cfg->namespace);
	free(cfg->ca_file);
	free(cfg->cert_file);
	free(cfg->key_file);
	free(cfg->token_file);
	free(cfg->proxy);
	free(cfg->origin);
	kube_secret_free(cfg->token);
	for (size_t i = 0; i < 3; i++)
		if (cfg->memfd[i] >= 0)
			(void)close(cfg->memfd[i]);
	pthread_mutex_destroy(&cfg->token_lock);
	free(cfg);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Trims surrounding white space in place, as client-go does with token files. */
static char *trim(char *s)
{
	size_t len;

	while (is_space(*s))
		s++;
	len = strlen(s);
	while (len > 0 && is_space(s[len - 1]))
		s[--len] = '\0';
	return s;
}

/*
 * Reads the token file, trimmed. Rejects an empty token (-ENODATA) and one
 * past KANARY_MAX_TOKEN (-E2BIG). *ret_st is the stat of what was read.
 * Ownership: *ret_token is the caller's, freed with kube_secret_free.
 */
static int read_token_file(const char *path, char **ret_token, struct stat *ret_st)
{
	struct stat st;
	char *data, *t, *copy;
	size_t len;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		r = -errno;
		goto out_close;
	}
	r = secret_read_fd(fd, KANARY_MAX_TOKEN, &data, &len);
	if (r < 0)
		goto out_close;
	t = trim(data);
	if (!*t) {
		r = -ENODATA;
		goto out_free;
	}
	copy = strdup(t);
	if (!copy) {
		r = -ENOMEM;
		goto out_free;
	}
	*ret_token = copy;
	*ret_st = st;
	r = 0;
out_free:
	/* All of it: trim cut the text with NULs. */
	secret_free(data, len);
out_close:
	(void)close(fd);
	return r;
}

static void token_remember(struct kube_config *cfg, char *token, const struct stat *st)
{
	kube_secret_free(cfg->token);
	cfg->token = token;
	cfg->token_stat_valid = true;
	cfg->token_dev = st->st_dev;
	cfg->token_ino = st->st_ino;
	cfg->token_size = st->st_size;
	cfg->token_mtime = st->st_mtim;
	cfg->token_ctime = st->st_ctim;
	cfg->token_checked_ms = monotonic_ms();
	cfg->token_read_at = (time_t)(cfg->token_checked_ms / 1000);
	cfg->token_reads++;
}

static bool ts_equal(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool token_file_changed(const struct kube_config *cfg)
{
	struct stat st;

	if (!cfg->token_stat_valid)
		return true;
	if (stat(cfg->token_file, &st) == -1)
		return true;
	return st.st_dev != cfg->token_dev || st.st_ino != cfg->token_ino ||
	       st.st_size != cfg->token_size || !ts_equal(&st.st_mtim, &cfg->token_mtime) ||
	       !ts_equal(&st.st_ctim, &cfg->token_ctime);
}

/*
 * True when the token file is to be read again: at most once per
 * KUBE_TOKEN_CHECK_MS, when it changed (one stat) or KUBE_TOKEN_REFRESH_S
 * passed since it was read. A look is recorded, so a file that cannot be
 * read is not tried (and warned about) on every request either.
 */
static bool token_reread_due(struct kube_config *cfg, long long now_ms)
{
	if (now_ms - cfg->token_checked_ms < KUBE_TOKEN_CHECK_MS)
		return false;
	cfg->token_checked_ms = now_ms;
	return (time_t)(now_ms / 1000) - cfg->token_read_at >= KUBE_TOKEN_REFRESH_S ||
	       token_file_changed(cfg);
}

int kube_config_token(struct kube_config *cfg, char **ret_token)
{
	long long now_ms;
	struct stat st;
	char *fresh = NULL, *copy = NULL;
	int r = 0;

	pthread_mutex_lock(&cfg->token_lock);
	now_ms = monotonic_ms();
	/* With no token in hand at all there is nothing to send: every request tries. */
	if (cfg->token_file &&
	    ((!cfg->token && !cfg->token_stat_valid) || token_reread_due(cfg, now_ms))) {
		r = read_token_file(cfg->token_file, &fresh, &st);
		if (r == 0) {
			token_remember(cfg, fresh, &st);
		} else if (cfg->token) {
			/* client-go keeps using the cached token; the next look tries again. */
			kube_log(cfg, KUBE_LOG_WARNING,
			         "re-reading token file %s: %s; keeping the previous token",
			         cfg->token_file, strerror(-r));
			r = 0;
		} else {
			goto out_unlock;
		}
	}
	if (cfg->token) {
		copy = strdup(cfg->token);
		if (!copy) {
			r = -ENOMEM;
			goto out_unlock;
		}
	}
	*ret_token = copy;
out_unlock:
	pthread_mutex_unlock(&cfg->token_lock);
	return r;
}

/* ---- inline credentials ---- */

/* What a credential's memory file is sealed with once written: nothing may change it. */
#define CREDENTIAL_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/*
 * Decodes a *-data value into a sealed memory file and returns its
 * /proc/self/fd path, so libcurl (whose GnuTLS backend takes certificates by
 * path only) reads it without the key ever touching a disk. The seals make
 * the file read-only for good, through this descriptor or any reopening of
 * the path; a kernel that cannot seal is an error, not a quiet fallback.
 * Ownership: *ret_path is the caller's; the descriptor stays in cfg->memfd[slot].
 */
static int inline_credential(struct kube_config *cfg, size_t slot, const char *b64,
                             const char *where, char **ret_path, struct kube_config_err *err)
{
	char path[64];
	struct buf pem;
	size_t off;
	ssize_t n;
	int fd, r;

	buf_init(&pem, KANARY_MAX_CREDENTIAL);
	r = base64_decode(b64, KANARY_MAX_CREDENTIAL, &pem);
	if (r < 0) {
		cfg_errf(err, "%s: %s", where,
		         r == -E2BIG ? "larger than the credential ceiling" : "not valid base64");
		goto out_free;
	}
	if (pem.len == 0 || !memmem(pem.data, pem.len, "-----BEGIN ", 11)) {
		cfg_errf(err, "%s: not a PEM certificate or key once base64-decoded", where);
		r = -EINVAL;
		goto out_free;
	}
	fd = memfd_create("kanary-credential", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd == -1) {
		r = -errno;
		cfg_errf(err, "%s: memfd_create: %s", where, strerror(-r));
		goto out_free;
	}
	for (off = 0; off < pem.len; off += (size_t)n) {
		n = write(fd, pem.data + off, pem.len - off);
		if (n == -1 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n == -1) {
			r = -errno;
			cfg_errf(err, "%s: writing memory file: %s", where, strerror(-r));
			goto out_close;
		}
	}
	if (fcntl(fd, F_ADD_SEALS, CREDENTIAL_SEALS) == -1) {
		r = -errno;
		cfg_errf(err, "%s: sealing the memory file: %s", where, strerror(-r));
		goto out_close;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	*ret_path = strdup(path);
	if (!*ret_path) {
		r = -ENOMEM;
		goto out_close;
	}
	cfg->memfd[slot] = fd;
	r = 0;
	goto out_free;
out_close:
	(void)close(fd);
out_free:
	/*
	 * Key material: wipe the copy before freeing it. The buffer was empty,
	 * so base64_decode's one append allocated it once: no older copy exists.
	 */
	if (pem.data)
		explicit_bzero(pem.data, pem.cap);
	buf_finish(&pem);
	return r;
}

/* ---- kubeconfig ---- */

struct kc_file {
	char *path;
	char *dir; /* for relative paths inside the file */
	struct json_object *docs;
	struct json_object *root; /* borrowed from docs; NULL for an empty file */
};

struct kc_set {
	struct kc_file files[KANARY_MAX_KUBECONFIGS];
	size_t n;
};

/*
 * Wipes every string of every document of a file and puts them: not only
 * users[].user's token, client-key-data and password of the first document
 * (the kubeconfig), as an auth-provider's config, an exec plugin's env, a
 * second document or one that is not a kubeconfig at all may hold a secret too.
 */
static void kc_docs_drop(struct json_object *docs)
{
	secret_wipe_json(docs);
	json_object_put(docs);
}

static void kc_set_finish(struct kc_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->files[i].path);
		free(s->files[i].dir);
		kc_docs_drop(s->files[i].docs);
	}
	s->n = 0;
}

/*
 * Reads one kubeconfig file into the set. -ENOENT is reported only when
 * required. The file's text may hold a token or a key: it is wiped once parsed.
 */
static int kc_read(struct kc_set *s, const char *path, bool required, struct kube_config_err *err)
{
	struct kc_file *f = &s->files[s->n];
	struct doc_err derr = {{0}};
	char *data, *slash;
	size_t len;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	r = fd == -1 ? -errno : secret_read_fd(fd, KANARY_MAX_INPUT, &data, &len);
	if (fd != -1)
		(void)close(fd);
	if (r == -ENOENT && !required)
		return 0;
	if (r < 0) {
		cfg_errf(err, "kubeconfig %s: %s", path, r == -E2BIG ? "too large" : strerror(-r));
		return r;
	}
	memset(f, 0, sizeof(*f));
	r = doc_parse_stream(data, len, &f->docs, &derr);
	secret_free(data, len);
	if (r < 0) {
		cfg_errf(err, "kubeconfig %s: %s", path, derr.msg[0] ? derr.msg : strerror(-r));
		return r == -E2BIG ? r : -EINVAL;
	}
	if (json_object_array_length(f->docs) > 0) {
		f->root = json_object_array_get_idx(f->docs, 0);
		if (!json_object_is_type(f->root, json_type_object)) {
			cfg_errf(err, "kubeconfig %s: not a mapping", path);
			kc_docs_drop(f->docs);
			return -EINVAL;
		}
	}
	f->path = strdup(path);
	slash = f->path ? strrchr(f->path, '/') : NULL;
	f->dir = slash ? strndup(f->path, (size_t)(slash - f->path)) : strdup(".");
	if (!f->path || !f->dir) {
		free(f->path);
		free(f->dir);
		kc_docs_drop(f->docs);
		return -ENOMEM;
	}
	if (f->dir[0] == '\0') {
		/* A file in "/": its directory is the root. */
		free(f->dir);
		f->dir = strdup("/");
		if (!f->dir) {
			free(f->path);
			kc_docs_drop(f->docs);
			return -ENOMEM;
		}
	}
	s->n++;
	return 0;
}

/*
 * A scalar field as text: strings as they are, numbers and booleans in their
 * JSON form (YAML reads `namespace: 123` as a number). *ret NULL when absent.
 * -EINVAL for a mapping or a list.
 */
static int kc_scalar(const struct json_object *obj, const char *key, const char **ret)
{
	struct json_object *v;

	*ret = NULL;
	if (!obj || !json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	switch (json_object_get_type(v)) {
	case json_type_string:
	case json_type_int:
	case json_type_double:
	case json_type_boolean:
		*ret = json_object_get_string(v);
		return 0;
	case json_type_null:
		return 0;
	default:
		return -EINVAL;
	}
}

static bool kc_has(const struct json_object *obj, const char *key)
{
	struct json_object *v;

	return obj && json_object_object_get_ex(obj, key, &v) && v &&
	       !json_object_is_type(v, json_type_null);
}

/*
 * Finds the entry called name in list (clusters, users or contexts) over
 * every file, first file first. *ret_body is its inner mapping (borrowed),
 * *ret_file the file that defined it.
 */
static int kc_find(const struct kc_set *s, const char *list, const char *inner, const char *name,
                   const struct json_object **ret_body, const struct kc_file **ret_file)
{
	struct json_object *arr, *item, *body;
	const char *n;

	for (size_t i = 0; i < s->n; i++) {
		if (!s->files[i].root || !json_object_object_get_ex(s->files[i].root, list, &arr) ||
		    !json_object_is_type(arr, json_type_array))
			continue;
		for (size_t j = 0; j < json_object_array_length(arr); j++) {
			item = json_object_array_get_idx(arr, j);
			if (kc_scalar(item, "name", &n) < 0 || !n || strcmp(n, name) != 0)
				continue;
			if (!json_object_object_get_ex(item, inner, &body) ||
			    !json_object_is_type(body, json_type_object))
				body = NULL;
			*ret_body = body;
			*ret_file = &s->files[i];
			return 0;
		}
	}
	return -ENOENT;
}

/* path made absolute against the kubeconfig's directory. Ownership: caller frees. */
static int kc_resolve(const struct kc_file *f, const char *path, char **ret)
{
	struct buf b;
	int r;

	if (path[0] == '/') {
		*ret = strdup(path);
		return *ret ? 0 : -ENOMEM;
	}
	buf_init(&b, KANARY_MAX_PATH);
	r = buf_printf(&b, "%s/%s", f->dir, path);
	if (r == 0)
		r = buf_steal(&b, ret, NULL);
	buf_finish(&b);
	return r;
}

/* A readable file named by field, resolved; the error names the field. */
static int kc_file_field(const struct kc_file *f, const char *where, const char *value, char **ret,
                         struct kube_config_err *err)
{
	char *path;
	int r;

	r = kc_resolve(f, value, &path);
	if (r < 0) {
		cfg_errf(err, "%s: %s: path too long", f->path, where);
		return r;
	}
	if (access(path, R_OK) == -1) {
		r = -errno;
		cfg_errf(err, "%s: %s: %s: %s", f->path, where, path, strerror(-r));
		free(path);
		return -EINVAL;
	}
	*ret = path;
	return 0;
}

struct kc_refusal {
	const char *field;
	const char *why;
};

static const struct kc_refusal user_refusals[] = {
    {"exec", "exec credential plugins are not supported; use a token, tokenFile or client "
             "certificate"},
    {"auth-provider", "auth providers are not supported; use a token, tokenFile or client "
                      "certificate"},
    {"username", "basic authentication is not supported (removed from Kubernetes in 1.19)"},
    {"password", "basic authentication is not supported (removed from Kubernetes in 1.19)"},
    {"as", "impersonation is not supported"},
    {"as-uid", "impersonation is not supported"},
    {"as-groups", "impersonation is not supported"},
    {"as-user-extra", "impersonation is not supported"},
    {NULL, NULL},
};

static int kc_cluster(struct kube_config *cfg, const struct kc_set *s, const char *name,
                      struct kube_config_err *err)
{
	const struct json_object *c;
	const struct kc_file *f;
	const char *server, *ca, *ca_data, *insecure, *proxy;
	char where[KANARY_MAX_NAME + 64];
	size_t len;
	int r;

	if (kc_find(s, "clusters", "cluster", name, &c, &f) < 0) {
		cfg_errf(err, "kubeconfig: cluster \"%s\" not found", name);
		return -EINVAL;
	}
	snprintf(where, sizeof(where), "clusters[\"%s\"].cluster", name);
	if (kc_scalar(c, "server", &server) < 0 || kc_scalar(c, "certificate-authority", &ca) < 0 ||
	    kc_scalar(c, "certificate-authority-data", &ca_data) < 0 ||
	    kc_scalar(c, "insecure-skip-tls-verify", &insecure) < 0 ||
	    kc_scalar(c, "proxy-url", &proxy) < 0) {
		cfg_errf(err, "%s: %s: a field that should be a string is not", f->path, where);
		return -EINVAL;
	}
	if (kc_has(c, "tls-server-name")) {
		cfg_errf(err, "%s: %s.tls-server-name: not supported", f->path, where);
		return -EINVAL;
	}
	if (!server || !*server) {
		cfg_errf(err, "%s: %s.server: required", f->path, where);
		return -EINVAL;
	}
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0) {
		cfg_errf(err, "%s: %s.server: \"%s\": must start with https:// or http://", f->path,
		         where, server);
		return -EINVAL;
	}
	len = strlen(server);
	while (len > 0 && server[len - 1] == '/')
		len--;
	/* "https://" alone (or with more slashes) names no host. */
	if (len <= strlen(server[4] == 's' ? "https://" : "http://")) {
		cfg_errf(err, "%s: %s.server: \"%s\": names no host", f->path, where, server);
		return -EINVAL;
	}
	if (len > KANARY_MAX_URL / 2) {
		cfg_errf(err, "%s: %s.server: too long", f->path, where);
		return -EINVAL;
	}
	cfg->server = strndup(server, len);
	if (!cfg->server)
		return -ENOMEM;
	cfg->insecure = insecure && strcmp(insecure, "true") == 0;
	if (cfg->insecure && (ca || ca_data)) {
		/* client-go's validation refuses the same combination. */
		cfg_errf(
		    err,
		    "%s: %s: certificate-authority with insecure-skip-tls-verify is not allowed",
		    f->path, where);
		return -EINVAL;
	}
	if (ca_data && *ca_data) {
		/* As client-go: the -data form wins over the file. */
		char w[sizeof(where) + 32];

		snprintf(w, sizeof(w), "%s: %s.certificate-authority-data", f->path, where);
		r = inline_credential(cfg, 0, ca_data, w, &cfg->ca_file, err);
		if (r < 0)
			return r;
	} else if (ca && *ca) {
		char w[sizeof(where) + 32];

		snprintf(w, sizeof(w), "%s.certificate-authority", where);
		r = kc_file_field(f, w, ca, &cfg->ca_file, err);
		if (r < 0)
			return r;
	}
	if (proxy && *proxy) {
		if (strncmp(proxy, "http://", 7) != 0 && strncmp(proxy, "https://", 8) != 0 &&
		    strncmp(proxy, "socks5://", 9) != 0) {
			cfg_errf(err, "%s: %s.proxy-url: \"%s\": must be http, https or socks5",
			         f->path, where, proxy);
			return -EINVAL;
		}
		cfg->proxy = strdup(proxy);
		if (!cfg->proxy)
			return -ENOMEM;
	}
	return 0;
}

/* One of the client certificate or key: the -data form wins, as in client-go. */
static int kc_user_pem(struct kube_config *cfg, const struct kc_file *f, const char *where,
                       const struct json_object *u, const char *field, size_t slot, char **ret,
                       struct kube_config_err *err)
{
	char data_field[64], w[KANARY_MAX_NAME + 128];
	const char *file, *data;

	snprintf(data_field, sizeof(data_field), "%s-data", field);
	if (kc_scalar(u, field, &file) < 0 || kc_scalar(u, data_field, &data) < 0) {
		cfg_errf(err, "%s: %s.%s: must be a string", f->path, where, field);
		return -EINVAL;
	}
	if (data && *data) {
		snprintf(w, sizeof(w), "%s: %s.%s", f->path, where, data_field);
		return inline_credential(cfg, slot, data, w, ret, err);
	}
	if (file && *file) {
		snprintf(w, sizeof(w), "%s.%s", where, field);
		return kc_file_field(f, w, file, ret, err);
	}
	return 0;
}

static int kc_user(struct kube_config *cfg, const struct kc_set *s, const char *name,
                   struct kube_config_err *err)
{
	const struct json_object *u;
	const struct kc_file *f;
	const char *token, *token_file;
	char where[KANARY_MAX_NAME + 64];
	struct stat st;
	char *tok;
	int r;

	if (kc_find(s, "users", "user", name, &u, &f) < 0) {
		cfg_errf(err, "kubeconfig: user \"%s\" not found", name);
		return -EINVAL;
	}
	snprintf(where, sizeof(where), "users[\"%s\"].user", name);
	for (const struct kc_refusal *rf = user_refusals; rf->field; rf++) {
		if (kc_has(u, rf->field)) {
			cfg_errf(err, "%s: %s.%s: %s", f->path, where, rf->field, rf->why);
			return -EINVAL;
		}
	}
	r = kc_user_pem(cfg, f, where, u, "client-certificate", 1, &cfg->cert_file, err);
	if (r < 0)
		return r;
	r = kc_user_pem(cfg, f, where, u, "client-key", 2, &cfg->key_file, err);
	if (r < 0)
		return r;
	if (!cfg->cert_file != !cfg->key_file) {
		cfg_errf(err, "%s: %s: client-certificate and client-key must be given together",
		         f->path, where);
		return -EINVAL;
	}
	if (kc_scalar(u, "token", &token) < 0 || kc_scalar(u, "tokenFile", &token_file) < 0) {
		cfg_errf(err, "%s: %s: token and tokenFile must be strings", f->path, where);
		return -EINVAL;
	}
	if (token_file && *token_file) {
		/* client-go: a tokenFile takes precedence over token, and is re-read. */
		char w[sizeof(where) + 16];

		snprintf(w, sizeof(w), "%s.tokenFile", where);
		r = kc_file_field(f, w, token_file, &cfg->token_file, err);
		if (r < 0)
			return r;
		r = read_token_file(cfg->token_file, &tok, &st);
		if (r < 0) {
			cfg_errf(err, "%s: %s.tokenFile: %s: %s", f->path, where, cfg->token_file,
			         r == -ENODATA ? "empty" : strerror(-r));
			return -EINVAL;
		}
		token_remember(cfg, tok, &st);
	} else if (token && *token) {
		if (strlen(token) > KANARY_MAX_TOKEN) {
			cfg_errf(err, "%s: %s.token: too long", f->path, where);
			return -EINVAL;
		}
		cfg->token = strdup(token);
		if (!cfg->token)
			return -ENOMEM;
	}
	if (cfg->token && strncmp(cfg->server, "http://", 7) == 0 && !cfg->allow_http_token) {
		cfg_errf(err,
		         "%s: %s.%s: a bearer token is never sent to a plain http:// server (%s), "
		         "where anyone on the way could read it; use https://, or "
		         "--insecure-allow-http-token for a test server on loopback",
		         f->path, where, cfg->token_file ? "tokenFile" : "token", cfg->server);
		return -EINVAL;
	}
	return 0;
}

static int kc_build(struct kube_config *cfg, const struct kc_set *s, const char *context,
                    struct kube_config_err *err)
{
	const struct json_object *ctx;
	const struct kc_file *f;
	const char *cur = context, *cluster, *user, *ns;
	struct buf origin;
	int r;

	for (size_t i = 0; (!cur || !*cur) && i < s->n; i++)
		if (kc_scalar(s->files[i].root, "current-context", &cur) < 0)
			cur = NULL;
	if (!cur || !*cur) {
		cfg_errf(err, "kubeconfig %s: no current-context and no context given",
		         s->n ? s->files[0].path : "");
		return -EINVAL;
	}
	if (kc_find(s, "contexts", "context", cur, &ctx, &f) < 0 || !ctx) {
		cfg_errf(err, "kubeconfig %s: context \"%s\" not found",
		         s->n ? s->files[0].path : "", cur);
		return -EINVAL;
	}
	if (kc_scalar(ctx, "cluster", &cluster) < 0 || kc_scalar(ctx, "user", &user) < 0 ||
	    kc_scalar(ctx, "namespace", &ns) < 0) {
		cfg_errf(err,
		         "%s: contexts[\"%s\"].context: cluster, user and namespace must be "
		         "strings",
		         f->path, cur);
		return -EINVAL;
	}
	if (!cluster || !*cluster) {
		cfg_errf(err, "%s: contexts[\"%s\"].context.cluster: required", f->path, cur);
		return -EINVAL;
	}
	r = kc_cluster(cfg, s, cluster, err);
	if (r < 0)
		return r;
	/* No user is allowed: anonymous requests, as with client-go. */
	if (user && *user) {
		r = kc_user(cfg, s, user, err);
		if (r < 0)
			return r;
	}
	if (ns && strlen(ns) > KANARY_MAX_DNS_LABEL) {
		cfg_errf(err, "%s: contexts[\"%s\"].context.namespace: too long", f->path, cur);
		return -EINVAL;
	}
	cfg->namespace = strdup(ns && *ns ? ns : "default");
	if (!cfg->namespace)
		return -ENOMEM;
	buf_init(&origin, KANARY_MAX_PATH + KANARY_MAX_NAME + 32);
	r = buf_printf(&origin, "%s (context %s)", s->files[0].path, cur);
	if (r == 0)
		r = buf_steal(&origin, &cfg->origin, NULL);
	buf_finish(&origin);
	return r;
}

static int from_kubeconfig(const char *const *paths, size_t n_paths, const char *context,
                           bool allow_http_token, struct kube_config **ret,
                           struct kube_config_err *err)
{
	struct kube_config *cfg;
	struct kc_set set = {0};
	int r;

	if (n_paths == 0 || n_paths > KANARY_MAX_KUBECONFIGS) {
		cfg_errf(err, "kubeconfig: between 1 and %d files, not %zu", KANARY_MAX_KUBECONFIGS,
		         n_paths);
		return -EINVAL;
	}
	for (size_t i = 0; i < n_paths; i++) {
		/* client-go skips missing files in a list, but not a single named file. */
		r = kc_read(&set, paths[i], n_paths == 1, err);
		if (r < 0)
			goto out_files;
	}
	if (set.n == 0) {
		cfg_errf(err, "kubeconfig: none of the %zu files exists", n_paths);
		r = -ENOENT;
		goto out_files;
	}
	cfg = config_new();
	if (!cfg) {
		r = -ENOMEM;
		goto out_files;
	}
	cfg->allow_http_token = allow_http_token;
	r = kc_build(cfg, &set, context, err);
	if (r < 0) {
		if (r == -ENOMEM)
			cfg_errf(err, "kubeconfig: out of memory");
		kube_config_destroy(cfg);
		goto out_files;
	}
	*ret = cfg;
out_files:
	kc_set_finish(&set);
	return r;
}

int kube_config_from_kubeconfig(const char *const *paths, size_t n_paths, const char *context,
                                struct kube_config **ret, struct kube_config_err *err)
{
	return from_kubeconfig(paths, n_paths, context, false, ret, err);
}

/* ---- in-cluster ---- */

static int sa_path(const char *dir, const char *file, char **ret)
{
	struct buf b;
	int r;

	buf_init(&b, KANARY_MAX_PATH);
	r = buf_printf(&b, "%s/%s", dir, file);
	if (r == 0)
		r = buf_steal(&b, ret, NULL);
	buf_finish(&b);
	return r;
}

static int in_cluster_server(const char *host, const char *port, char **ret)
{
	struct buf b;
	long p;
	int r;

	if (integer_parse(port, 1, 65535, &p) < 0)
		return -EINVAL;
	buf_init(&b, KANARY_MAX_URL / 2);
	/* An IPv6 literal needs brackets in a URL (net.JoinHostPort). */
	if (strchr(host, ':') && host[0] != '[')
		r = buf_printf(&b, "https://[%s]:%ld", host, p);
	else
		r = buf_printf(&b, "https://%s:%ld", host, p);
	if (r == 0)
		r = buf_steal(&b, ret, NULL);
	buf_finish(&b);
	return r;
}

int kube_config_in_cluster(const char *sa_dir, struct kube_config **ret,
                           struct kube_config_err *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *pod_ns = getenv("POD_NAMESPACE");
	struct kube_config *cfg;
	struct stat st;
	char *tok, *ns_path = NULL, *ns_data = NULL;
	int r;

	if (!sa_dir)
		sa_dir = KUBE_SA_DIR;
	if (!host || !*host || !port || !*port) {
		cfg_errf(err, "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
		              "must both be set");
		return -ENOENT;
	}
	cfg = config_new();
	if (!cfg)
		return -ENOMEM;
	r = in_cluster_server(host, port, &cfg->server);
	if (r < 0) {
		cfg_errf(err,
		         "in-cluster: KUBERNETES_SERVICE_HOST \"%s\" / PORT \"%s\": not a "
		         "host and port",
		         host, port);
		r = -EINVAL;
		goto out_destroy;
	}
	r = sa_path(sa_dir, "token", &cfg->token_file);
	if (r == 0)
		r = sa_path(sa_dir, "ca.crt", &cfg->ca_file);
	if (r == 0)
		r = sa_path(sa_dir, "namespace", &ns_path);
	if (r < 0) {
		cfg_errf(err, "in-cluster: %s: path too long", sa_dir);
		goto out_destroy;
	}
	r = read_token_file(cfg->token_file, &tok, &st);
	if (r < 0) {
		cfg_errf(err, "in-cluster: service-account token %s: %s", cfg->token_file,
		         r == -ENODATA ? "empty" : strerror(-r));
		goto out_destroy;
	}
	token_remember(cfg, tok, &st);
	if (access(cfg->ca_file, R_OK) == -1) {
		r = -errno;
		cfg_errf(err, "in-cluster: CA %s: %s", cfg->ca_file, strerror(-r));
		goto out_destroy;
	}
	/* clientcmd's in-cluster namespace: $POD_NAMESPACE, then the mounted file. */
	if (pod_ns && *pod_ns) {
		cfg->namespace = strdup(pod_ns);
	} else if (file_read_path(ns_path, KANARY_MAX_DNS_LABEL + 2, &ns_data, NULL) == 0 &&
	           *trim(ns_data)) {
		cfg->namespace = strdup(trim(ns_data));
	} else {
		cfg->namespace = strdup("default");
	}
	cfg->origin = strdup("in-cluster");
	if (!cfg->namespace || !cfg->origin) {
		r = -ENOMEM;
		goto out_destroy;
	}
	free(ns_data);
	free(ns_path);
	*ret = cfg;
	return 0;
out_destroy:
	free(ns_data);
	free(ns_path);
	kube_config_destroy(cfg);
	return r;
}

/* ---- the loading order ---- */

/* Splits $KUBECONFIG on ':' into at most KANARY_MAX_KUBECONFIGS paths, skipping empties. */
static int split_list(char *list, const char **out, size_t *ret_n)
{
	size_t n = 0;
	char *p = list, *colon;

	while (p) {
		colon = strchr(p, ':');
		if (colon)
			*colon = '\0';
		if (*p) {
			if (n == KANARY_MAX_KUBECONFIGS)
				return -E2BIG;
			out[n++] = p;
		}
		p = colon ? colon + 1 : NULL;
	}
	*ret_n = n;
	return 0;
}

int kube_config_load(const char *kubeconfig, const char *context, struct kube_config **ret,
                     struct kube_config_err *err)
{
	const struct kube_config_options o = {.kubeconfig = kubeconfig, .context = context};

	return kube_config_load_options(&o, ret, err);
}

int kube_config_load_options(const struct kube_config_options *o, struct kube_config **ret,
                             struct kube_config_err *err)
{
	const char *kubeconfig = o->kubeconfig, *context = o->context;
	const bool allow = o->allow_http_token;
	const char *paths[KANARY_MAX_KUBECONFIGS];
	const char *env = getenv("KUBECONFIG"), *home, *host;
	char *list, *home_path = NULL;
	int in_cluster = 0;
	struct buf b;
	size_t n;
	int r;

	if (kubeconfig && *kubeconfig)
		return from_kubeconfig(&kubeconfig, 1, context, allow, ret, err);
	if (env && *env) {
		if (strlen(env) > (size_t)KANARY_MAX_PATH * KANARY_MAX_KUBECONFIGS) {
			cfg_errf(err, "KUBECONFIG: too long");
			return -EINVAL;
		}
		list = strdup(env);
		if (!list)
			return -ENOMEM;
		r = split_list(list, paths, &n);
		if (r < 0) {
			cfg_errf(err, "KUBECONFIG: more than %d files", KANARY_MAX_KUBECONFIGS);
			free(list);
			return -EINVAL;
		}
		if (n > 0)
			r = from_kubeconfig(paths, n, context, allow, ret, err);
		free(list);
		if (n > 0)
			return r;
	}
	/*
	 * As controller-runtime: the pod's service account when it works, else
	 * ~/.kube/config; when neither does, the service account's error.
	 */
	host = getenv("KUBERNETES_SERVICE_HOST");
	if (host && *host) {
		in_cluster = kube_config_in_cluster(NULL, ret, err);
		if (in_cluster == 0)
			return 0;
	}
	home = getenv("HOME");
	if (!home || !*home) {
		if (in_cluster < 0)
			return in_cluster;
		cfg_errf(err, "no kubeconfig: no --kubeconfig, KUBECONFIG, in-cluster environment "
		              "or HOME");
		return -ENOENT;
	}
	buf_init(&b, KANARY_MAX_PATH);
	r = buf_printf(&b, "%s/.kube/config", home);
	if (r == 0)
		r = buf_steal(&b, &home_path, NULL);
	buf_finish(&b);
	if (r < 0) {
		cfg_errf(err, "HOME: too long");
		return -EINVAL;
	}
	if (access(home_path, F_OK) == -1) {
		if (in_cluster == 0)
			cfg_errf(
			    err,
			    "no kubeconfig: no --kubeconfig, KUBECONFIG, in-cluster environment "
			    "or %s",
			    home_path);
		free(home_path);
		return in_cluster < 0 ? in_cluster : -ENOENT;
	}
	paths[0] = home_path;
	r = from_kubeconfig(paths, 1, context, allow, ret, err);
	free(home_path);
	return r;
}
