/* SPDX-License-Identifier: Apache-2.0 */
/* The `kanary-webhook serve` subcommand: flags, wiring and signals of the admission server. */
#include "webhook/cmd_serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/bind_address.h"
#include "common/duration.h"
#include "common/integer.h"
#include "common/io/log_kube.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/limits.h"
#include "webhook/certs.h"
#include "common/io/log.h"
#include "webhook/lookup.h"
#include "webhook/metrics.h"
#include "webhook/server.h"

enum serve_exit {
	SERVE_OK = 0,
	SERVE_FAILED = 1,
	SERVE_USAGE = 2,
};

struct serve_flags {
	const char *kubeconfig;
	const char *context;
	const char *namespace;
	bool allow_http_token;
	const char *cert_file;
	const char *key_file;
	const char *bind_address;
	long secure_port;
	const char *health_address;
	long threads;
	long max_connections;
	long connection_timeout_ms;
	long lookup_timeout_ms;
	long reload_interval_ms;
	long shutdown_grace_ms;
	const char *tls_min_version;
	const char *tls_cipher_suites;
	long verbosity;
};

static void serve_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: kanary-webhook serve --tls-cert-file FILE --tls-private-key-file FILE "
	    "[options]\n"
	    "\n"
	    "Serves the Kanary admission webhook: POST /validate and POST /mutate\n"
	    "(admission.k8s.io/v1 AdmissionReview) over TLS 1.2 or 1.3, and /healthz,\n"
	    "/readyz and /metrics over plain HTTP on a separate address. Backend Services\n"
	    "are read from a watch-fed cache, with a live GET when one is missing.\n"
	    "The certificate and key are re-read when the files change (also through a\n"
	    "Secret volume's symlink swap); a new pair that does not load or match is\n"
	    "refused and the one in use kept. SIGTERM: stop accepting, finish the\n"
	    "requests in flight, exit 0.\n"
	    "\n"
	    "Options (--flag=value or --flag value):\n"
	    "  --kubeconfig FILE              kubeconfig to reach the API server (default:\n"
	    "                                 $KUBECONFIG, else the pod's service account,\n"
	    "                                 else ~/.kube/config)\n"
	    "  --context NAME                 kubeconfig context (default: its current one)\n"
	    "  --namespace NS                 watch and look up Services in this namespace\n"
	    "                                 only, and refuse a Kanary elsewhere (default:\n"
	    "                                 every namespace)\n"
	    "  --insecure-allow-http-token[=BOOL]\n"
	    "                                 send the kubeconfig's bearer token to an http://\n"
	    "                                 server, in clear text (default false: refused)\n"
	    "  --tls-cert-file FILE           serving certificate, PEM, leaf first (required)\n"
	    "  --tls-private-key-file FILE    its private key, PEM (required)\n"
	    "  --tls-min-version VERSION      VersionTLS12 (default) or VersionTLS13\n"
	    "  --tls-cipher-suites LIST       comma-separated IANA cipher suite names for TLS "
	    "1.2,\n"
	    "                                 as Kubernetes components take them (default:\n"
	    "                                 ECDHE with AES-GCM or ChaCha20-Poly1305, RSA or\n"
	    "                                 ECDSA certificate); static-RSA key exchange,\n"
	    "                                 CBC, RC4 and 3DES suites are refused. TLS 1.3\n"
	    "                                 uses the ciphers named (GnuTLS has one list)\n"
	    "  --bind-address IP              address of the admission server (default 0.0.0.0;\n"
	    "                                 an IPv6 literal such as :: works too)\n"
	    "  --secure-port PORT             port of the admission server (default 9443)\n"
	    "  --health-probe-bind-address ADDR\n"
	    "                                 HOST:PORT, :PORT or [IPv6]:PORT of the plain HTTP\n"
	    "                                 server for /healthz, /readyz and /metrics\n"
	    "                                 (default :8080)\n"
	    "  --thread-pool-size N           admission threads (default 4)\n"
	    "  --max-connections N            admission connections open at once (default 1024)\n"
	    "  --connection-timeout DURATION  close a connection idle this long, also one that\n"
	    "                                 sends its request too slowly (default 30s)\n"
	    "  --lookup-timeout DURATION      bound of the live GET of a Service missing from\n"
	    "                                 the cache (default 2s)\n"
	    "  --tls-reload-interval DURATION how often the certificate files are checked\n"
	    "                                 (default 1s)\n"
	    "  --shutdown-grace-period DURATION\n"
	    "                                 after SIGTERM, how long requests in flight may\n"
	    "                                 take before the server stops (default 25s)\n"
	    "  --v N                          log verbosity: 0 errors, warnings, info and each\n"
	    "                                 denial (default); 1 adds debug lines; 2 adds a\n"
	    "                                 line per admission request\n"
	    "  -h, --help                     show this help\n"
	    "\n"
	    "DURATION is a whole number with one unit: 500ms, 2s, 1m, 1h (at most 24h).\n"
	    "Logs go to standard error, one line each: time (UTC), level, message.\n");
}

/* A duration flag above zero (common/duration.h). */
static int parse_duration(const char *s, long *ret_ms)
{
	long ms;
	int r;

	r = duration_parse(s, KANARY_MAX_FLAG_DURATION_MS, &ms);
	if (r < 0)
		return r;
	if (ms == 0)
		return -EINVAL;
	*ret_ms = ms;
	return 0;
}

/* Returns SERVE_OK to go on, or the exit status (help shown: SERVE_OK with *ret_exit). */
static int parse_flags(int argc, char **argv, struct serve_flags *f, bool *ret_exit)
{
	enum {
		OPT_KUBECONFIG = 256,
		OPT_CONTEXT,
		OPT_NAMESPACE,
		OPT_ALLOW_HTTP_TOKEN,
		OPT_CERT,
		OPT_KEY,
		OPT_BIND,
		OPT_PORT,
		OPT_HEALTH,
		OPT_THREADS,
		OPT_MAXCONN,
		OPT_CONNTIMEOUT,
		OPT_LOOKUPTIMEOUT,
		OPT_RELOAD,
		OPT_GRACE,
		OPT_TLS_MIN,
		OPT_TLS_SUITES,
		OPT_V,
	};
	static const struct option longopts[] = {
	    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
	    {"context", required_argument, NULL, OPT_CONTEXT},
	    {"namespace", required_argument, NULL, OPT_NAMESPACE},
	    {"insecure-allow-http-token", optional_argument, NULL, OPT_ALLOW_HTTP_TOKEN},
	    {"tls-cert-file", required_argument, NULL, OPT_CERT},
	    {"tls-private-key-file", required_argument, NULL, OPT_KEY},
	    {"bind-address", required_argument, NULL, OPT_BIND},
	    {"secure-port", required_argument, NULL, OPT_PORT},
	    {"health-probe-bind-address", required_argument, NULL, OPT_HEALTH},
	    {"thread-pool-size", required_argument, NULL, OPT_THREADS},
	    {"max-connections", required_argument, NULL, OPT_MAXCONN},
	    {"connection-timeout", required_argument, NULL, OPT_CONNTIMEOUT},
	    {"lookup-timeout", required_argument, NULL, OPT_LOOKUPTIMEOUT},
	    {"tls-reload-interval", required_argument, NULL, OPT_RELOAD},
	    {"shutdown-grace-period", required_argument, NULL, OPT_GRACE},
	    {"tls-min-version", required_argument, NULL, OPT_TLS_MIN},
	    {"tls-cipher-suites", required_argument, NULL, OPT_TLS_SUITES},
	    {"v", required_argument, NULL, OPT_V},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *bad = NULL;
	int c;

	*ret_exit = false;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r = 0;
		switch (c) {
		case OPT_KUBECONFIG:
			f->kubeconfig = optarg;
			break;
		case OPT_CONTEXT:
			f->context = optarg;
			break;
		case OPT_NAMESPACE:
			if (!optarg[0] || strlen(optarg) > KANARY_MAX_DNS_LABEL)
				r = -EINVAL;
			f->namespace = optarg;
			break;
		case OPT_ALLOW_HTTP_TOKEN:
			if (!optarg || strcmp(optarg, "true") == 0)
				f->allow_http_token = true;
			else if (strcmp(optarg, "false") == 0)
				f->allow_http_token = false;
			else
				r = -EINVAL;
			break;
		case OPT_CERT:
			f->cert_file = optarg;
			break;
		case OPT_KEY:
			f->key_file = optarg;
			break;
		case OPT_BIND:
			f->bind_address = optarg;
			break;
		case OPT_PORT:
			r = integer_parse(optarg, 0, 65535, &f->secure_port);
			break;
		case OPT_HEALTH:
			f->health_address = optarg;
			break;
		case OPT_THREADS:
			r = integer_parse(optarg, 1, 64, &f->threads);
			break;
		case OPT_MAXCONN:
			r = integer_parse(optarg, 1, 65536, &f->max_connections);
			break;
		case OPT_CONNTIMEOUT:
			r = parse_duration(optarg, &f->connection_timeout_ms);
			break;
		case OPT_LOOKUPTIMEOUT:
			r = parse_duration(optarg, &f->lookup_timeout_ms);
			break;
		case OPT_RELOAD:
			r = parse_duration(optarg, &f->reload_interval_ms);
			break;
		case OPT_GRACE:
			r = parse_duration(optarg, &f->shutdown_grace_ms);
			break;
		case OPT_TLS_MIN:
			f->tls_min_version = optarg;
			break;
		case OPT_TLS_SUITES:
			f->tls_cipher_suites = optarg;
			break;
		case OPT_V:
			r = integer_parse(optarg, 0, 10, &f->verbosity);
			break;
		case 'h':
			serve_usage(stdout);
			*ret_exit = true;
			return SERVE_OK;
		default:
			serve_usage(stderr);
			return SERVE_USAGE;
		}
		if (r < 0) {
			fprintf(stderr, "kanary-webhook serve: invalid value \"%s\" for --%s\n",
			        optarg, argv[optind - 1] + 2);
			return SERVE_USAGE;
		}
	}
	if (optind < argc)
		bad = argv[optind];
	if (bad) {
		fprintf(stderr, "kanary-webhook serve: unexpected argument \"%s\"\n", bad);
		return SERVE_USAGE;
	}
	if (!f->cert_file || !f->key_file) {
		fprintf(stderr, "kanary-webhook serve: --tls-cert-file and --tls-private-key-file "
		                "are required\n");
		return SERVE_USAGE;
	}
	return SERVE_OK;
}

static void print_addr(const struct sockaddr_storage *sa, uint16_t port, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host,
		          sizeof(host));
		snprintf(out, size, "[%s]:%u", host, port);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, port);
	}
}

/* Waits for SIGTERM or SIGINT, blocked in every thread since startup; returns the signal. */
static int wait_for_stop(const sigset_t *set)
{
	int sig = 0;

	while (sigwait(set, &sig) != 0)
		;
	return sig;
}

int cmd_serve_main(int argc, char **argv)
{
	struct serve_flags f = {
	    .bind_address = "0.0.0.0",
	    .secure_port = 9443,
	    .health_address = ":8080",
	    .threads = 4,
	    .max_connections = 1024,
	    .connection_timeout_ms = 30 * 1000,
	    .lookup_timeout_ms = 2 * 1000,
	    .reload_interval_ms = 1000,
	    .shutdown_grace_ms = 25 * 1000,
	};
	struct bind_address tls_addr, health_addr;
	struct kube_config_err kerr = {{0}};
	struct kube_config *cfg = NULL;
	struct metrics *metrics = NULL;
	struct lookup *lookup = NULL;
	struct server *server = NULL;
	struct certs *certs = NULL;
	char err[KANARY_MAX_KUBE_MESSAGE], tls_text[64], health_text[64];
	char priorities[KANARY_MAX_TLS_PRIORITIES];
	unsigned timeout_s;
	sigset_t stop_set;
	bool done;
	int status, r, sig;

	status = parse_flags(argc, argv, &f, &done);
	if (status != SERVE_OK || done)
		return status;
	if (bind_address_from_host(f.bind_address, f.secure_port, &tls_addr) < 0) {
		fprintf(stderr,
		        "kanary-webhook serve: --bind-address \"%s\" is not an IP address\n",
		        f.bind_address);
		return SERVE_USAGE;
	}
	if (bind_address_parse(f.health_address, &health_addr) < 0) {
		fprintf(
		    stderr,
		    "kanary-webhook serve: --health-probe-bind-address \"%s\" is not HOST:PORT\n",
		    f.health_address);
		return SERVE_USAGE;
	}
	err[0] = '\0';
	if (certs_tls_priorities(f.tls_min_version, f.tls_cipher_suites, priorities,
	                         sizeof(priorities), err, sizeof(err)) < 0) {
		fprintf(stderr, "kanary-webhook serve: %s\n",
		        err[0] ? err : "invalid TLS settings");
		return SERVE_USAGE;
	}
	log_set_verbosity((int)f.verbosity);
	/* Seconds for libmicrohttpd, rounded up: a 500ms timeout must not become "never". */
	timeout_s = (unsigned)((f.connection_timeout_ms + 999) / 1000);

	/*
	 * Before any thread starts: every thread inherits a mask that blocks the
	 * stop signals, so only sigwait below sees them; a write to a closed
	 * connection gets EPIPE, not SIGPIPE.
	 */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGTERM);
	sigaddset(&stop_set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

	status = SERVE_FAILED;
	r = kube_global_init();
	if (r < 0) {
		log_msg(LOG_ERROR, NULL, "initialising libcurl: %s", strerror(-r));
		return SERVE_FAILED;
	}
	r = metrics_create(&metrics);
	if (r < 0) {
		log_msg(LOG_ERROR, NULL, "%s", strerror(-r));
		goto out_global;
	}
	{
		const struct certs_options co = {
		    .cert_file = f.cert_file,
		    .key_file = f.key_file,
		    .poll_interval_ms = f.reload_interval_ms,
		    .metrics = metrics,
		};
		err[0] = '\0';
		r = certs_create(&co, &certs, err, sizeof(err));
		if (r < 0) {
			log_msg(LOG_ERROR, NULL, "cannot load the serving certificate: %s",
			        err[0] ? err : strerror(-r));
			goto out_metrics;
		}
	}
	{
		const struct kube_config_options ko = {
		    .kubeconfig = f.kubeconfig,
		    .context = f.context,
		    .allow_http_token = f.allow_http_token,
		};
		r = kube_config_load_options(&ko, &cfg, &kerr);
	}
	if (r < 0) {
		log_msg(LOG_ERROR, NULL, "cannot load the Kubernetes configuration: %s",
		        kerr.msg[0] ? kerr.msg : strerror(-r));
		goto out_certs;
	}
	{
		const struct kube_logger kl = {.fn = log_kube, .ctx = NULL};
		const struct lookup_options lo = {
		    .live_timeout_ms = f.lookup_timeout_ms,
		    .namespace = f.namespace,
		    .metrics = metrics,
		};
		kube_config_set_logger(cfg, &kl);
		r = lookup_create(cfg, &lo, &lookup);
		if (r == 0)
			r = lookup_start(lookup);
		if (r < 0) {
			log_msg(LOG_ERROR, NULL, "cannot start the Service caches: %s",
			        strerror(-r));
			goto out_lookup;
		}
	}
	{
		const struct server_options so = {
		    .tls_addr = (const struct sockaddr *)&tls_addr.addr,
		    .tls_addr_len = tls_addr.len,
		    .health_addr = (const struct sockaddr *)&health_addr.addr,
		    .health_addr_len = health_addr.len,
		    .threads = (unsigned)f.threads,
		    .max_connections = (unsigned)f.max_connections,
		    .connection_timeout_s = timeout_s,
		    .tls_priorities = priorities,
		    .certs = certs,
		    .lookup = lookup,
		    .metrics = metrics,
		};
		r = server_start(&so, &server, err, sizeof(err));
		if (r < 0) {
			log_msg(LOG_ERROR, NULL, "%s", err);
			goto out_lookup;
		}
	}
	r = certs_start(certs);
	if (r < 0) {
		log_msg(LOG_ERROR, NULL, "cannot start the certificate reloader: %s", strerror(-r));
		goto out_server;
	}
	print_addr(&tls_addr.addr, server_tls_port(server), tls_text, sizeof(tls_text));
	print_addr(&health_addr.addr, server_health_port(server), health_text, sizeof(health_text));
	log_msg(LOG_INFO, NULL,
	        "kanary-webhook %s serving /validate and /mutate on https://%s (%ld threads), "
	        "/healthz, /readyz and /metrics on http://%s; API server %s; Kanaries in %s",
	        KANARY_VERSION, tls_text, f.threads, health_text, cfg->origin ? cfg->origin : "?",
	        f.namespace ? f.namespace : "every namespace");

	sig = wait_for_stop(&stop_set);
	log_msg(LOG_INFO, NULL,
	        "%s: no longer accepting connections; waiting up to %ld ms for %ld request(s) in "
	        "flight",
	        sig == SIGTERM ? "SIGTERM" : "SIGINT", f.shutdown_grace_ms,
	        metrics_inflight_now(metrics));
	server_quiesce(server);
	if (server_drain(server, f.shutdown_grace_ms))
		log_msg(LOG_INFO, NULL, "every request answered; stopping");
	else
		log_msg(LOG_WARNING, NULL,
		        "%ld request(s) still in flight after %ld ms; stopping anyway",
		        metrics_inflight_now(metrics), f.shutdown_grace_ms);
	status = SERVE_OK;
out_server:
	server_destroy(server);
out_lookup:
	lookup_destroy(lookup);
	kube_config_destroy(cfg);
out_certs:
	certs_destroy(certs);
out_metrics:
	metrics_destroy(metrics);
out_global:
	kube_global_cleanup();
	return status;
}
