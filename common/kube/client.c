/* SPDX-License-Identifier: Apache-2.0 */
/* Requests to the API server: paths, GET, LIST, server-side apply, PATCH, watches. */
/* explicit_bzero wipes the header lines that carry the bearer token. */
#define _DEFAULT_SOURCE
#include "common/kube/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "common/buf.h"
#include "common/json_field.h"
#include "common/limits.h"

#ifndef KANARY_VERSION
#error "KANARY_VERSION must be defined by the build"
#endif

struct kube_client {
	struct kube_config *cfg;
	CURL *curl;
	char *user_agent;
	char *field_manager;
	long connect_timeout_ms;
	long request_timeout_ms;
	const atomic_bool *abort;
	unsigned long connections;
	unsigned long requests;
	char errbuf[CURL_ERROR_SIZE];
};

/* ---- reasons ---- */

struct reason_info {
	const char *name;
	int code; /* the HTTP status that implies it, or 0 */
	int err;
};

static const struct reason_info reasons[] = {
    [KUBE_REASON_NONE] = {"", 0, 0},
    [KUBE_REASON_UNKNOWN] = {"Unknown", 0, -EIO},
    [KUBE_REASON_BAD_REQUEST] = {"BadRequest", 400, -EINVAL},
    [KUBE_REASON_UNAUTHORIZED] = {"Unauthorized", 401, -EPERM},
    [KUBE_REASON_FORBIDDEN] = {"Forbidden", 403, -EACCES},
    [KUBE_REASON_NOT_FOUND] = {"NotFound", 404, -ENOENT},
    [KUBE_REASON_METHOD_NOT_ALLOWED] = {"MethodNotAllowed", 405, -EIO},
    [KUBE_REASON_ALREADY_EXISTS] = {"AlreadyExists", 0, -EEXIST},
    [KUBE_REASON_CONFLICT] = {"Conflict", 409, -EBUSY},
    [KUBE_REASON_GONE] = {"Gone", 410, -ESTALE},
    [KUBE_REASON_REQUEST_TOO_LARGE] = {"RequestEntityTooLarge", 413, -EIO},
    [KUBE_REASON_UNSUPPORTED_MEDIA_TYPE] = {"UnsupportedMediaType", 415, -EIO},
    [KUBE_REASON_INVALID] = {"Invalid", 422, -EINVAL},
    [KUBE_REASON_TOO_MANY_REQUESTS] = {"TooManyRequests", 429, -EAGAIN},
    [KUBE_REASON_INTERNAL] = {"InternalError", 500, -EIO},
    [KUBE_REASON_SERVICE_UNAVAILABLE] = {"ServiceUnavailable", 503, -EIO},
    [KUBE_REASON_TIMEOUT] = {"Timeout", 504, -ETIMEDOUT},
    [KUBE_REASON_TRANSPORT] = {"Transport", 0, -ECONNREFUSED},
    [KUBE_REASON_BAD_RESPONSE] = {"BadResponse", 0, -EBADMSG},
    [KUBE_REASON_ABORTED] = {"Aborted", 0, -ECANCELED},
    [KUBE_REASON_CLIENT] = {"Client", 0, -EINVAL},
};

const char *kube_reason_name(enum kube_reason reason)
{
	if ((size_t)reason >= sizeof(reasons) / sizeof(reasons[0]))
		return "Unknown";
	return reasons[reason].name;
}

int kube_reason_errno(enum kube_reason reason)
{
	if ((size_t)reason >= sizeof(reasons) / sizeof(reasons[0]))
		return -EIO;
	return reasons[reason].err;
}

static enum kube_reason reason_from_code(int code)
{
	if (code >= 200 && code < 300)
		return KUBE_REASON_NONE;
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			return (enum kube_reason)i;
	return KUBE_REASON_UNKNOWN;
}

/* The API server's StatusReason strings; several share one of our reasons. */
static enum kube_reason reason_from_name(const char *name, int code)
{
	static const struct {
		const char *name;
		enum kube_reason reason;
	} names[] = {
	    {"NotFound", KUBE_REASON_NOT_FOUND},
	    {"AlreadyExists", KUBE_REASON_ALREADY_EXISTS},
	    {"Conflict", KUBE_REASON_CONFLICT},
	    {"Gone", KUBE_REASON_GONE},
	    {"Expired", KUBE_REASON_GONE},
	    {"Forbidden", KUBE_REASON_FORBIDDEN},
	    {"Unauthorized", KUBE_REASON_UNAUTHORIZED},
	    {"Invalid", KUBE_REASON_INVALID},
	    {"BadRequest", KUBE_REASON_BAD_REQUEST},
	    {"MethodNotAllowed", KUBE_REASON_METHOD_NOT_ALLOWED},
	    {"TooManyRequests", KUBE_REASON_TOO_MANY_REQUESTS},
	    {"InternalError", KUBE_REASON_INTERNAL},
	    {"ServiceUnavailable", KUBE_REASON_SERVICE_UNAVAILABLE},
	    {"Timeout", KUBE_REASON_TIMEOUT},
	    {"ServerTimeout", KUBE_REASON_TIMEOUT},
	    {"RequestEntityTooLarge", KUBE_REASON_REQUEST_TOO_LARGE},
	    {"UnsupportedMediaType", KUBE_REASON_UNSUPPORTED_MEDIA_TYPE},
	};

	if (name && *name)
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcmp(names[i].name, name) == 0)
				return names[i].reason;
	return reason_from_code(code);
}

static void res_message(struct kube_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void res_message(struct kube_result *res, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
	/* A cut message is marked, never passed off as whole. */
	if (n >= (int)sizeof(res->message))
		memcpy(res->message + sizeof(res->message) - 4, "...", 4);
}

static int res_set(struct kube_result *res, int http_status, enum kube_reason reason)
{
	res->http_status = http_status;
	res->reason = reason;
	res->retry_after_s = 0;
	res->message[0] = '\0';
	return kube_reason_errno(reason);
}

int kube_result_from_status(const struct json_object *status, int http_status,
                            struct kube_result *res)
{
	struct json_object *v, *details;
	const char *kind, *reason, *message;
	int code = http_status;

	kind = json_field_str(status, "kind");
	if (status && json_object_is_type(status, json_type_object) && kind &&
	    strcmp(kind, "Status") == 0) {
		if (json_object_object_get_ex(status, "code", &v) &&
		    json_object_is_type(v, json_type_int) && json_object_get_int(v) > 0)
			code = json_object_get_int(v);
		reason = json_field_str(status, "reason");
		message = json_field_str(status, "message");
		res_set(res, code, reason_from_name(reason, code));
		if (message)
			res_message(res, "%s", message);
		if (json_object_object_get_ex(status, "details", &details) &&
		    json_object_object_get_ex(details, "retryAfterSeconds", &v) &&
		    json_object_is_type(v, json_type_int) && json_object_get_int(v) > 0)
			res->retry_after_s = json_object_get_int(v);
	} else {
		res_set(res, code, reason_from_code(code));
	}
	/* A Status saying Failure with a 2xx code would read as success; never let it. */
	if (res->reason == KUBE_REASON_NONE)
		res->reason = KUBE_REASON_UNKNOWN;
	if (!res->message[0])
		res_message(res, "the server answered %d %s", code, kube_reason_name(res->reason));
	return kube_reason_errno(res->reason);
}

/* ---- setup ---- */

int kube_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -ENOMEM;
}

void kube_global_cleanup(void)
{
	curl_global_cleanup();
}

int kube_client_create(struct kube_config *cfg, const struct kube_client_options *o,
                       struct kube_client **ret)
{
	struct kube_client *c;
	struct buf ua;
	int r = -ENOMEM;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = cfg;
	c->connect_timeout_ms =
	    o && o->connect_timeout_ms > 0 ? o->connect_timeout_ms : KUBE_CONNECT_TIMEOUT_MS;
	c->request_timeout_ms =
	    o && o->request_timeout_ms > 0 ? o->request_timeout_ms : KUBE_REQUEST_TIMEOUT_MS;
	buf_init(&ua, KANARY_MAX_NAME + 64);
	if (o && o->component && *o->component)
		r = buf_printf(&ua, "kanary-%s/%s", o->component, KANARY_VERSION);
	else
		r = buf_printf(&ua, "kanary/%s", KANARY_VERSION);
	if (r == 0)
		r = buf_steal(&ua, &c->user_agent, NULL);
	buf_finish(&ua);
	if (r < 0)
		goto out_free;
	if (o && o->field_manager && *o->field_manager) {
		c->field_manager = strdup(o->field_manager);
		if (!c->field_manager) {
			r = -ENOMEM;
			goto out_free;
		}
	}
	c->curl = curl_easy_init();
	if (!c->curl) {
		r = -ENOMEM;
		goto out_free;
	}
	*ret = c;
	return 0;
out_free:
	free(c->field_manager);
	free(c->user_agent);
	free(c);
	return r;
}

void kube_client_destroy(struct kube_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c->field_manager);
	free(c->user_agent);
	free(c);
}

struct kube_config *kube_client_config(struct kube_client *c)
{
	return c->cfg;
}

void kube_client_set_abort(struct kube_client *c, const atomic_bool *flag)
{
	c->abort = flag;
}

unsigned long kube_client_connections(const struct kube_client *c)
{
	return c->connections;
}

unsigned long kube_client_requests(const struct kube_client *c)
{
	return c->requests;
}

/* ---- paths and queries ---- */

static int path_segment(struct buf *b, const char *seg)
{
	char *esc;
	int r;

	if (!seg || !*seg || strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0)
		return -EINVAL;
	if (strlen(seg) > KANARY_MAX_URL)
		return -E2BIG;
	/* libcurl ignores the handle here since 7.82. */
	esc = curl_easy_escape(NULL, seg, (int)strlen(seg));
	if (!esc)
		return -ENOMEM;
	r = buf_printf(b, "/%s", esc);
	curl_free(esc);
	return r;
}

int kube_path(char *out, size_t size, const char *group, const char *version, const char *resource,
              const char *ns, const char *name, const char *sub)
{
	struct buf b;
	int r;

	if (!version || !resource || (sub && !name))
		return -EINVAL;
	buf_init(&b, KANARY_MAX_URL);
	if (group && *group) {
		r = buf_puts(&b, "/apis");
		if (r == 0)
			r = path_segment(&b, group);
	} else {
		r = buf_puts(&b, "/api");
	}
	if (r == 0)
		r = path_segment(&b, version);
	if (r == 0 && ns) {
		r = buf_puts(&b, "/namespaces");
		if (r == 0)
			r = path_segment(&b, ns);
	}
	if (r == 0)
		r = path_segment(&b, resource);
	if (r == 0 && name)
		r = path_segment(&b, name);
	if (r == 0 && sub)
		r = path_segment(&b, sub);
	if (r == 0 && b.len >= size)
		r = -E2BIG;
	if (r == 0)
		memcpy(out, b.data, b.len + 1);
	buf_finish(&b);
	return r;
}

int kube_query_add(struct buf *q, const char *key, const char *value)
{
	char *esc;
	int r;

	if (strlen(value) > KANARY_MAX_URL)
		return -E2BIG;
	esc = curl_easy_escape(NULL, value, (int)strlen(value));
	if (!esc)
		return -ENOMEM;
	r = buf_printf(q, "%s%s=%s", q->len ? "&" : "", key, esc);
	curl_free(esc);
	return r;
}

/* ---- transfers ---- */

struct xfer {
	struct kube_client *c;
	struct buf body;
	bool too_large;
	/* Streaming: 2xx bytes go to fn, anything else into body. */
	int (*fn)(void *ctx, const char *data, size_t len);
	void *ctx;
	int fn_err;
	bool aborted;
};

static size_t xfer_write(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct xfer *x = userdata;
	size_t len = size * nmemb;
	long code = 0;
	int r;

	if (x->fn) {
		curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 && code < 300) {
			r = x->fn(x->ctx, data, len);
			if (r < 0) {
				x->fn_err = r;
				return 0;
			}
			return len;
		}
	}
	if (buf_append(&x->body, data, len) < 0) {
		x->too_large = true;
		return 0;
	}
	return len;
}

static int xfer_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
	struct xfer *x = userdata;

	if (x->c->abort && atomic_load(x->c->abort)) {
		x->aborted = true;
		return 1;
	}
	return 0;
}

static const char *method_name(enum kube_method m)
{
	switch (m) {
	case KUBE_GET:
		return "GET";
	case KUBE_POST:
		return "POST";
	case KUBE_PUT:
		return "PUT";
	case KUBE_PATCH:
		return "PATCH";
	case KUBE_DELETE:
		return "DELETE";
	}
	return "GET";
}

/*
 * Sets every option of one transfer on the reused handle. curl_easy_reset
 * keeps live connections, the DNS cache and TLS sessions, so nothing of the
 * previous request leaks into this one and the connection is still reused.
 */
static int xfer_setup(struct kube_client *c, struct xfer *x, const struct kube_request *req,
                      const char *url, struct curl_slist *headers, long timeout_ms)
{
	const struct kube_config *cfg = c->cfg;
	CURL *h = c->curl;
	CURLcode e = CURLE_OK;

	curl_easy_reset(h);
	c->errbuf[0] = '\0';
	c->requests++;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (e == CURLE_OK)                                                                 \
			e = curl_easy_setopt(h, opt, val);                                         \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_PROTOCOLS_STR, "https,http");
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, timeout_ms);
	SET(CURLOPT_USERAGENT, c->user_agent);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_WRITEFUNCTION, xfer_write);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, xfer_progress);
	SET(CURLOPT_XFERINFODATA, x);
	/* Keepalives notice a peer that vanished without closing (a long watch). */
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, 30L);
	SET(CURLOPT_TCP_KEEPINTVL, 10L);
	if (!x->fn)
		SET(CURLOPT_ACCEPT_ENCODING, "");
	if (cfg->ca_file) {
		SET(CURLOPT_CAINFO, cfg->ca_file);
		/* Trust only the cluster's CA when one is given, as client-go does. */
		SET(CURLOPT_CAPATH, NULL);
	}
	if (cfg->insecure) {
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (cfg->cert_file) {
		SET(CURLOPT_SSLCERT, cfg->cert_file);
		SET(CURLOPT_SSLKEY, cfg->key_file);
	}
	if (cfg->proxy)
		SET(CURLOPT_PROXY, cfg->proxy);
	switch (req->method) {
	case KUBE_GET:
		SET(CURLOPT_HTTPGET, 1L);
		break;
	case KUBE_POST:
		SET(CURLOPT_POST, 1L);
		break;
	default:
		SET(CURLOPT_CUSTOMREQUEST, method_name(req->method));
		break;
	}
	if (req->body) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SET(CURLOPT_POSTFIELDS, req->body);
	} else if (req->method == KUBE_POST) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		SET(CURLOPT_POSTFIELDS, "");
	}
#undef SET
	return e == CURLE_OK ? 0 : -EINVAL;
}

/*
 * Frees a header list built by build_headers. curl_slist_append keeps its own
 * copy of every line, the bearer token's among them: each is wiped with
 * explicit_bzero before libcurl frees it.
 */
static void headers_free(struct curl_slist *h)
{
	for (struct curl_slist *n = h; n; n = n->next)
		if (n->data)
			explicit_bzero(n->data, strlen(n->data));
	curl_slist_free_all(h);
}

#define BEARER_PREFIX "Authorization: Bearer "

/*
 * Appends "Authorization: Bearer <token>" to *h, through a line sized for it
 * at once (no buffer that grows and leaves a partial copy behind), wiped
 * before it is freed.
 */
static int append_bearer(struct curl_slist **h, const char *token)
{
	size_t len = sizeof(BEARER_PREFIX) - 1 + strlen(token);
	struct curl_slist *n;
	char *line;

	line = malloc(len + 1);
	if (!line)
		return -ENOMEM;
	memcpy(line, BEARER_PREFIX, sizeof(BEARER_PREFIX) - 1);
	memcpy(line + sizeof(BEARER_PREFIX) - 1, token, len - (sizeof(BEARER_PREFIX) - 1) + 1);
	n = curl_slist_append(*h, line);
	kube_secret_free(line);
	if (!n)
		return -ENOMEM;
	*h = n;
	return 0;
}

/*
 * Authorization (when there is a token), Accept, Content-Type, no Expect.
 * A token goes only over https://, unless the config allows plain http.
 * Ownership: *ret is the caller's, freed with headers_free.
 */
static int build_headers(struct kube_client *c, const struct kube_request *req, bool stream,
                         struct curl_slist **ret, struct kube_result *res)
{
	struct curl_slist *h = NULL, *n;
	struct buf ct;
	char *token = NULL;
	const char *lines[2];
	struct buf accept;
	int r;

	r = kube_config_token(c->cfg, &token);
	if (r < 0) {
		res_set(res, 0, KUBE_REASON_CLIENT);
		res_message(res, "bearer token %s: %s",
		            c->cfg->token_file ? c->cfg->token_file : "", strerror(-r));
		return r;
	}
	if (token && strncmp(c->cfg->server, "http://", 7) == 0 && !c->cfg->allow_http_token) {
		/* kube_config refuses this already; a config made otherwise is stopped here. */
		kube_secret_free(token);
		res_set(res, 0, KUBE_REASON_CLIENT);
		res_message(res,
		            "refusing to send the bearer token to the plain http:// server %s "
		            "(--insecure-allow-http-token allows it)",
		            c->cfg->server);
		return -EINVAL;
	}
	lines[0] = stream ? "Accept: application/json" : "Accept: application/json, */*";
	/* No "Expect: 100-continue": it costs a round trip before every larger body. */
	lines[1] = "Expect:";
	for (size_t i = 0; i < 2; i++) {
		if (i == 0 && req->accept) {
			buf_init(&accept, 256);
			r = buf_printf(&accept, "Accept: %s", req->accept);
			n = r == 0 ? curl_slist_append(h, accept.data) : NULL;
			buf_finish(&accept);
		} else {
			n = curl_slist_append(h, lines[i]);
		}
		if (!n)
			goto out_nomem;
		h = n;
	}
	if (req->body) {
		buf_init(&ct, 256);
		r = buf_printf(&ct, "Content-Type: %s",
		               req->content_type ? req->content_type : "application/json");
		n = r == 0 ? curl_slist_append(h, ct.data) : NULL;
		buf_finish(&ct);
		if (!n)
			goto out_nomem;
		h = n;
	}
	if (token) {
		r = append_bearer(&h, token);
		kube_secret_free(token);
		token = NULL;
		if (r < 0)
			goto out_nomem;
	}
	*ret = h;
	return 0;
out_nomem:
	kube_secret_free(token);
	headers_free(h);
	res_set(res, 0, KUBE_REASON_CLIENT);
	res_message(res, "out of memory building headers");
	return -ENOMEM;
}

static int build_url(const struct kube_client *c, const char *path, const char *query,
                     struct buf *url)
{
	int r;

	r = buf_printf(url, "%s%s", c->cfg->server, path);
	if (r == 0 && query && *query)
		r = buf_printf(url, "?%s", query);
	return r;
}

/* Appends up to 200 printable bytes of a non-Status error body to the message. */
static void res_body_excerpt(struct kube_result *res, const struct buf *body)
{
	char excerpt[201];
	size_t n = 0;

	for (size_t i = 0; i < body->len && n < sizeof(excerpt) - 1; i++) {
		unsigned char ch = (unsigned char)body->data[i];
		excerpt[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
	}
	excerpt[n] = '\0';
	if (n > 0) {
		size_t len = strlen(res->message);

		snprintf(res->message + len, sizeof(res->message) - len, ": %s%s", excerpt,
		         body->len > n ? "..." : "");
	}
}

/* Turns a finished transfer into res and the return value. */
static int xfer_finish(struct kube_client *c, struct xfer *x, CURLcode e, const char *method,
                       const char *path, struct json_object **ret_obj, struct kube_result *res)
{
	struct json_object *obj = NULL;
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	curl_off_t retry_after = 0;
	long code = 0, connects = 0;
	int r;

	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
	if (curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK &&
	    connects > 0)
		c->connections += (unsigned long)connects;
	if (e != CURLE_OK) {
		if (x->too_large) {
			res_set(res, (int)code, KUBE_REASON_BAD_RESPONSE);
			res_message(res, "%s %s: response larger than %u bytes", method, path,
			            KANARY_MAX_RESPONSE);
			return -E2BIG;
		}
		if (x->fn_err) {
			res_set(res, (int)code, KUBE_REASON_BAD_RESPONSE);
			res_message(res, "%s %s: stream: %s", method, path, strerror(-x->fn_err));
			return x->fn_err;
		}
		if (e == CURLE_ABORTED_BY_CALLBACK && x->aborted) {
			res_set(res, (int)code, KUBE_REASON_ABORTED);
			res_message(res, "%s %s: stopped", method, path);
			return -ECANCELED;
		}
		if (e == CURLE_OPERATION_TIMEDOUT) {
			res_set(res, (int)code, KUBE_REASON_TIMEOUT);
		} else if (e == CURLE_OUT_OF_MEMORY) {
			res_set(res, (int)code, KUBE_REASON_CLIENT);
		} else {
			res_set(res, (int)code, KUBE_REASON_TRANSPORT);
		}
		res_message(res, "%s %s%s: %s", method, c->cfg->server, path,
		            c->errbuf[0] ? c->errbuf : curl_easy_strerror(e));
		return e == CURLE_OUT_OF_MEMORY ? -ENOMEM : kube_reason_errno(res->reason);
	}

	if (x->body.len > 0) {
		tok = json_tokener_new_ex(KANARY_MAX_DEPTH);
		if (!tok) {
			res_set(res, (int)code, KUBE_REASON_CLIENT);
			return -ENOMEM;
		}
		obj = json_tokener_parse_ex(tok, x->body.data, (int)x->body.len);
		jerr = json_tokener_get_error(tok);
		if (jerr == json_tokener_success && json_tokener_get_parse_end(tok) < x->body.len) {
			/* Trailing bytes after the value: only white space is fine. */
			for (size_t i = json_tokener_get_parse_end(tok); i < x->body.len; i++)
				if (x->body.data[i] != ' ' && x->body.data[i] != '\n' &&
				    x->body.data[i] != '\r' && x->body.data[i] != '\t')
					jerr = json_tokener_error_parse_unexpected;
		}
		json_tokener_free(tok);
		if (jerr != json_tokener_success) {
			json_object_put(obj);
			obj = NULL;
			if (code >= 200 && code < 300) {
				res_set(res, (int)code, KUBE_REASON_BAD_RESPONSE);
				res_message(res, "%s %s: the answer is not JSON: %s", method, path,
				            json_tokener_error_desc(jerr));
				return -EBADMSG;
			}
		}
	}
	if (code >= 200 && code < 300) {
		res_set(res, (int)code, KUBE_REASON_NONE);
		if (ret_obj)
			*ret_obj = obj;
		else
			json_object_put(obj);
		return 0;
	}
	r = kube_result_from_status(obj, (int)code, res);
	if (!obj) {
		res_message(res, "%s %s: HTTP %ld", method, path, code);
		res_body_excerpt(res, &x->body);
	}
	json_object_put(obj);
	if (res->retry_after_s == 0 &&
	    curl_easy_getinfo(c->curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
	    retry_after > 0)
		res->retry_after_s = retry_after > 86400 ? 86400 : (int)retry_after;
	return r;
}

int kube_request(struct kube_client *c, const struct kube_request *req,
                 struct json_object **ret_obj, struct kube_result *res)
{
	struct kube_result scratch;
	struct curl_slist *headers = NULL;
	struct buf url;
	struct xfer x = {0};
	CURLcode e;
	int r;

	if (!res)
		res = &scratch;
	if (!req->path || req->path[0] != '/') {
		res_set(res, 0, KUBE_REASON_CLIENT);
		res_message(res, "request path must start with /");
		return -EINVAL;
	}
	buf_init(&url, KANARY_MAX_URL);
	r = build_url(c, req->path, req->query, &url);
	if (r < 0) {
		res_set(res, 0, KUBE_REASON_CLIENT);
		res_message(res, "%s %s: URL longer than %d bytes", method_name(req->method),
		            req->path, KANARY_MAX_URL);
		goto out_url;
	}
	r = build_headers(c, req, false, &headers, res);
	if (r < 0)
		goto out_url;
	x.c = c;
	buf_init(&x.body, KANARY_MAX_RESPONSE);
	r = xfer_setup(c, &x, req, url.data, headers, c->request_timeout_ms);
	if (r < 0) {
		res_set(res, 0, KUBE_REASON_CLIENT);
		res_message(res, "libcurl refused an option");
		goto out_body;
	}
	e = curl_easy_perform(c->curl);
	r = xfer_finish(c, &x, e, method_name(req->method), req->path, ret_obj, res);
	if (r < 0 && res->reason != KUBE_REASON_NOT_FOUND)
		kube_log(c->cfg, KUBE_LOG_DEBUG, "%s %s: %s: %s", method_name(req->method),
		         req->path, kube_reason_name(res->reason), res->message);
out_body:
	buf_finish(&x.body);
	headers_free(headers);
out_url:
	buf_finish(&url);
	return r;
}

int kube_stream(struct kube_client *c, const char *path, const char *query, const char *accept,
                long deadline_ms, int (*fn)(void *ctx, const char *data, size_t len), void *ctx,
                bool *ret_deadline, struct kube_result *res)
{
	const struct kube_request req = {
	    .method = KUBE_GET, .path = path, .query = query, .accept = accept};
	struct kube_result scratch;
	struct curl_slist *headers = NULL;
	struct buf url;
	struct xfer x = {0};
	CURLcode e;
	long code = 0;
	int r;

	if (!res)
		res = &scratch;
	buf_init(&url, KANARY_MAX_URL);
	r = build_url(c, path, query, &url);
	if (r < 0) {
		res_set(res, 0, KUBE_REASON_CLIENT);
		res_message(res, "GET %s: URL longer than %d bytes", path, KANARY_MAX_URL);
		goto out_url;
	}
	r = build_headers(c, &req, true, &headers, res);
	if (r < 0)
		goto out_url;
	x.c = c;
	x.fn = fn;
	x.ctx = ctx;
	buf_init(&x.body, KANARY_MAX_RESPONSE);
	r = xfer_setup(c, &x, &req, url.data, headers, deadline_ms > 0 ? deadline_ms : 0);
	if (r < 0) {
		res_set(res, 0, KUBE_REASON_CLIENT);
		res_message(res, "libcurl refused an option");
		goto out_body;
	}
	e = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
	if (e == CURLE_OPERATION_TIMEDOUT && deadline_ms > 0 && code >= 200 && code < 300) {
		/* Our own cut of a healthy stream: an end like the server's timeout. */
		long connects = 0;

		if (curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK &&
		    connects > 0)
			c->connections += (unsigned long)connects;
		res_set(res, (int)code, KUBE_REASON_NONE);
		*ret_deadline = true;
		r = 0;
		goto out_body;
	}
	r = xfer_finish(c, &x, e, "GET", path, NULL, res);
	if (r == 0)
		*ret_deadline = false;
out_body:
	buf_finish(&x.body);
	headers_free(headers);
out_url:
	buf_finish(&url);
	return r;
}

/* ---- verbs ---- */

int kube_get(struct kube_client *c, const char *path, struct json_object **ret_obj,
             struct kube_result *res)
{
	const struct kube_request req = {.method = KUBE_GET, .path = path};

	return kube_request(c, &req, ret_obj, res);
}

/* Serialises obj and sends it; query may be NULL. */
static int send_object(struct kube_client *c, enum kube_method method, const char *path,
                       const char *query, const char *content_type, struct json_object *obj,
                       struct json_object **ret_obj, struct kube_result *res)
{
	struct kube_request req = {.method = method, .path = path, .query = query};
	size_t len;

	req.body = json_object_to_json_string_length(
	    obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!req.body) {
		if (res)
			res_set(res, 0, KUBE_REASON_CLIENT);
		return -ENOMEM;
	}
	req.body_len = len;
	req.content_type = content_type;
	return kube_request(c, &req, ret_obj, res);
}

/* fieldManager=<client's> when the client has one; q stays empty otherwise. */
static int manager_query(const struct kube_client *c, struct buf *q)
{
	if (!c->field_manager)
		return 0;
	return kube_query_add(q, "fieldManager", c->field_manager);
}

static int send_managed(struct kube_client *c, enum kube_method method, const char *path,
                        const char *content_type, struct json_object *obj,
                        struct json_object **ret_obj, struct kube_result *res)
{
	struct buf q;
	int r;

	buf_init(&q, KANARY_MAX_URL);
	r = manager_query(c, &q);
	if (r == 0)
		r = send_object(c, method, path, q.data, content_type, obj, ret_obj, res);
	else if (res)
		res_set(res, 0, KUBE_REASON_CLIENT);
	buf_finish(&q);
	return r;
}

int kube_create(struct kube_client *c, const char *collection_path, struct json_object *obj,
                struct json_object **ret_obj, struct kube_result *res)
{
	return send_managed(c, KUBE_POST, collection_path, NULL, obj, ret_obj, res);
}

int kube_update(struct kube_client *c, const char *path, struct json_object *obj,
                struct json_object **ret_obj, struct kube_result *res)
{
	return send_managed(c, KUBE_PUT, path, NULL, obj, ret_obj, res);
}

int kube_update_status(struct kube_client *c, const char *path, struct json_object *obj,
                       struct json_object **ret_obj, struct kube_result *res)
{
	char status_path[KANARY_MAX_URL];
	int n;

	n = snprintf(status_path, sizeof(status_path), "%s/status", path);
	if (n < 0 || (size_t)n >= sizeof(status_path)) {
		if (res) {
			res_set(res, 0, KUBE_REASON_CLIENT);
			res_message(res, "%s/status: path too long", path);
		}
		return -E2BIG;
	}
	return send_managed(c, KUBE_PUT, status_path, NULL, obj, ret_obj, res);
}

static const char *const patch_types[] = {
    [KUBE_PATCH_MERGE] = "application/merge-patch+json",
    [KUBE_PATCH_JSON] = "application/json-patch+json",
    [KUBE_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
    [KUBE_PATCH_APPLY] = "application/apply-patch+yaml",
};

int kube_patch(struct kube_client *c, const char *path, enum kube_patch_type type,
               struct json_object *patch, struct json_object **ret_obj, struct kube_result *res)
{
	if ((size_t)type >= sizeof(patch_types) / sizeof(patch_types[0])) {
		if (res)
			res_set(res, 0, KUBE_REASON_CLIENT);
		return -EINVAL;
	}
	if (type == KUBE_PATCH_APPLY && !c->field_manager) {
		/* The API server refuses an apply without a manager; say so before sending. */
		if (res) {
			res_set(res, 0, KUBE_REASON_CLIENT);
			res_message(res, "server-side apply needs a field manager");
		}
		return -EINVAL;
	}
	return send_managed(c, KUBE_PATCH, path, patch_types[type], patch, ret_obj, res);
}

int kube_apply(struct kube_client *c, const char *path, struct json_object *obj,
               const char *field_manager, bool force, struct json_object **ret_obj,
               struct kube_result *res)
{
	struct buf q;
	int r;

	if (!field_manager || !*field_manager) {
		if (res) {
			res_set(res, 0, KUBE_REASON_CLIENT);
			res_message(res, "server-side apply needs a field manager");
		}
		return -EINVAL;
	}
	buf_init(&q, KANARY_MAX_URL);
	r = kube_query_add(&q, "fieldManager", field_manager);
	if (r == 0 && force)
		r = kube_query_add(&q, "force", "true");
	if (r == 0)
		r = send_object(c, KUBE_PATCH, path, q.data, patch_types[KUBE_PATCH_APPLY], obj,
		                ret_obj, res);
	else if (res)
		res_set(res, 0, KUBE_REASON_CLIENT);
	buf_finish(&q);
	return r;
}

static const char *const propagations[] = {
    [KUBE_PROPAGATION_DEFAULT] = NULL,
    [KUBE_PROPAGATION_BACKGROUND] = "Background",
    [KUBE_PROPAGATION_FOREGROUND] = "Foreground",
    [KUBE_PROPAGATION_ORPHAN] = "Orphan",
};

/* Adds key: a new string; -ENOMEM when either allocation fails. */
static int add_str(struct json_object *obj, const char *key, const char *val)
{
	struct json_object *v = json_object_new_string(val);

	if (!v || json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

/* metav1.DeleteOptions for o, or NULL when o asks for nothing. Ownership: caller puts. */
static int delete_body(const struct kube_delete_options *o, struct json_object **ret)
{
	struct json_object *body, *pre, *grace;
	int r = 0;

	*ret = NULL;
	if (!o)
		return 0;
	if ((size_t)o->propagation >= sizeof(propagations) / sizeof(propagations[0]))
		return -EINVAL;
	if (!propagations[o->propagation] && !o->uid && !o->resource_version &&
	    o->grace_period_s < 0)
		return 0;
	body = json_object_new_object();
	if (!body)
		return -ENOMEM;
	r = add_str(body, "kind", "DeleteOptions");
	if (r == 0)
		r = add_str(body, "apiVersion", "v1");
	if (r == 0 && propagations[o->propagation])
		r = add_str(body, "propagationPolicy", propagations[o->propagation]);
	if (r == 0 && o->grace_period_s >= 0) {
		grace = json_object_new_int64(o->grace_period_s);
		if (!grace || json_object_object_add(body, "gracePeriodSeconds", grace) != 0) {
			json_object_put(grace);
			r = -ENOMEM;
		}
	}
	if (r == 0 && (o->uid || o->resource_version)) {
		pre = json_object_new_object();
		if (!pre || json_object_object_add(body, "preconditions", pre) != 0) {
			json_object_put(pre);
			r = -ENOMEM;
		}
		if (r == 0 && o->uid)
			r = add_str(pre, "uid", o->uid);
		if (r == 0 && o->resource_version)
			r = add_str(pre, "resourceVersion", o->resource_version);
	}
	if (r < 0) {
		json_object_put(body);
		return r;
	}
	*ret = body;
	return 0;
}

int kube_delete(struct kube_client *c, const char *path, const struct kube_delete_options *o,
                struct json_object **ret_obj, struct kube_result *res)
{
	const struct kube_request req = {.method = KUBE_DELETE, .path = path};
	struct json_object *body;
	int r;

	r = delete_body(o, &body);
	if (r < 0) {
		if (res)
			res_set(res, 0, KUBE_REASON_CLIENT);
		return r;
	}
	if (!body)
		return kube_request(c, &req, ret_obj, res);
	r = send_object(c, KUBE_DELETE, path, NULL, NULL, body, ret_obj, res);
	json_object_put(body);
	return r;
}

/* ---- LIST with pagination ---- */

static const char *list_continue(struct json_object *page)
{
	struct json_object *meta;

	if (!json_object_object_get_ex(page, "metadata", &meta))
		return NULL;
	return json_field_str(meta, "continue");
}

static int list_query(const struct kube_list_options *o, int page_size, const char *cont,
                      struct buf *q)
{
	char limit[24];
	int r = 0;

	if (o && o->label_selector && *o->label_selector)
		r = kube_query_add(q, "labelSelector", o->label_selector);
	if (r == 0 && o && o->field_selector && *o->field_selector)
		r = kube_query_add(q, "fieldSelector", o->field_selector);
	if (r == 0 && page_size > 0) {
		snprintf(limit, sizeof(limit), "%d", page_size);
		r = kube_query_add(q, "limit", limit);
	}
	/* The API server refuses resourceVersion together with continue. */
	if (r == 0 && cont)
		r = kube_query_add(q, "continue", cont);
	else if (r == 0 && o && o->resource_version && *o->resource_version)
		r = kube_query_add(q, "resourceVersion", o->resource_version);
	return r;
}

int kube_list_each(struct kube_client *c, const char *path, const struct kube_list_options *o,
                   int (*page_fn)(void *ctx, struct json_object *page, bool restart), void *ctx,
                   struct kube_result *res)
{
	struct kube_request req = {
	    .method = KUBE_GET, .path = path, .accept = o ? o->accept : NULL};
	struct kube_result scratch;
	struct json_object *page, *page_items;
	int page_size = o && o->page_size ? o->page_size : KUBE_LIST_PAGE_SIZE;
	char *cont = NULL;
	bool restart = true;
	int restarts = 0;
	struct buf q;
	int r;

	if (!res)
		res = &scratch;
	buf_init(&q, KANARY_MAX_URL);
	if (o && o->continue_token && *o->continue_token) {
		if (strlen(o->continue_token) > KANARY_MAX_CONTINUE) {
			res_set(res, 0, KUBE_REASON_CLIENT);
			res_message(res, "LIST %s: continue token too long", path);
			r = -E2BIG;
			goto out;
		}
		cont = strdup(o->continue_token);
		if (!cont) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (;;) {
		buf_reset(&q);
		r = list_query(o, page_size, cont, &q);
		if (r < 0) {
			res_set(res, 0, KUBE_REASON_CLIENT);
			res_message(res, "LIST %s: query too long", path);
			goto out;
		}
		req.query = q.len ? q.data : NULL;
		page = NULL;
		r = kube_request(c, &req, &page, res);
		if (r < 0 && cont && res->reason == KUBE_REASON_GONE && restarts < 2) {
			/*
			 * The continue token expired (etcd compacted past the list's
			 * snapshot). The first time, start over page by page from the
			 * latest state, so that no more than a page is ever held; if
			 * that one expires too (a list slower than compaction), list
			 * once in one piece, as client-go's pager does, so the list
			 * still ends.
			 */
			restarts++;
			kube_log(c->cfg, KUBE_LOG_INFO, "LIST %s: continue token expired, %s", path,
			         restarts == 1 ? "listing again from the start, page by page"
			                       : "listing again in one piece");
			restart = true;
			if (restarts == 2)
				page_size = -1;
			free(cont);
			cont = NULL;
			continue;
		}
		if (r < 0)
			goto out;
		if (!page || !json_object_object_get_ex(page, "items", &page_items) ||
		    !(json_object_is_type(page_items, json_type_array) ||
		      json_object_is_type(page_items, json_type_null))) {
			json_object_put(page);
			res_set(res, 200, KUBE_REASON_BAD_RESPONSE);
			res_message(res, "LIST %s: the answer has no items list", path);
			r = -EBADMSG;
			goto out;
		}
		/* An empty PartialObjectMetadataList says "items": null. */
		if (!page_items) {
			page_items = json_object_new_array();
			if (!page_items || json_object_object_add(page, "items", page_items) != 0) {
				json_object_put(page_items);
				json_object_put(page);
				r = -ENOMEM;
				goto out;
			}
		}
		free(cont);
		cont = NULL;
		if (list_continue(page) && *list_continue(page)) {
			if (strlen(list_continue(page)) > KANARY_MAX_CONTINUE) {
				json_object_put(page);
				res_set(res, 200, KUBE_REASON_BAD_RESPONSE);
				res_message(res, "LIST %s: continue token too long", path);
				r = -E2BIG;
				goto out;
			}
			cont = strdup(list_continue(page));
			if (!cont) {
				json_object_put(page);
				r = -ENOMEM;
				goto out;
			}
		}
		r = page_fn(ctx, page, restart);
		restart = false;
		json_object_put(page);
		if (r < 0) {
			if (r != -ENOMEM) {
				res_set(res, 200, KUBE_REASON_BAD_RESPONSE);
				res_message(res, "LIST %s: %s", path, strerror(-r));
			}
			goto out;
		}
		if (!cont)
			break;
	}
	r = 0;
out:
	if (r == -ENOMEM) {
		res_set(res, 0, KUBE_REASON_CLIENT);
		res_message(res, "LIST %s: out of memory", path);
	}
	free(cont);
	buf_finish(&q);
	return r;
}

struct list_collect {
	struct json_object *first; /* the first page, without its items */
	struct json_object *items;
};

/* kube_list's page function: the items of every page into one array. */
static int collect_page(void *ctx, struct json_object *page, bool restart)
{
	struct list_collect *lc = ctx;
	struct json_object *page_items = NULL, *meta;

	if (restart) {
		json_object_put(lc->first);
		lc->first = NULL;
		json_object_put(lc->items);
		lc->items = json_object_new_array();
		if (!lc->items)
			return -ENOMEM;
	}
	json_object_object_get_ex(page, "items", &page_items);
	if (json_object_array_length(lc->items) + json_object_array_length(page_items) >
	    KANARY_MAX_LIST_ITEMS)
		return -E2BIG;
	for (size_t i = 0; i < json_object_array_length(page_items); i++) {
		struct json_object *item = json_object_array_get_idx(page_items, i);

		if (json_object_array_add(lc->items, json_object_get(item)) != 0) {
			json_object_put(item);
			return -ENOMEM;
		}
	}
	if (!lc->first) {
		/* The first page carries the list's kind and resourceVersion. */
		lc->first = json_object_get(page);
		json_object_object_del(page, "items");
		if (json_object_object_get_ex(page, "metadata", &meta)) {
			json_object_object_del(meta, "continue");
			json_object_object_del(meta, "remainingItemCount");
		}
	}
	return 0;
}

int kube_list(struct kube_client *c, const char *path, const struct kube_list_options *o,
              struct json_object **ret_list, struct kube_result *res)
{
	struct list_collect lc = {0};
	struct kube_result scratch;
	int r;

	if (!res)
		res = &scratch;
	r = kube_list_each(c, path, o, collect_page, &lc, res);
	if (r == 0 && json_object_object_add(lc.first, "items", lc.items) != 0) {
		res_set(res, 0, KUBE_REASON_CLIENT);
		res_message(res, "LIST %s: out of memory", path);
		r = -ENOMEM;
	}
	if (r < 0) {
		json_object_put(lc.items);
		json_object_put(lc.first);
		return r;
	}
	*ret_list = lc.first;
	return 0;
}
