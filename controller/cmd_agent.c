/* SPDX-License-Identifier: Apache-2.0 */
/* `kanary-controller agent`: watches one state ConfigMap (or a file) and applies it to HAProxy. */
#include "controller/cmd_agent.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/duration.h"
#include "common/integer.h"
#include "common/io/file_read.h"
#include "common/io/log.h"
#include "common/io/log_kube.h"
#include "common/io/monotonic.h"
#include "common/json_field.h"
#include "common/kobj.h"
#include "common/kube/client.h"
#include "common/kube/config.h"
#include "common/kube/informer.h"
#include "common/limits.h"
#include "common/render.h"
#include "controller/agent.h"
#include "controller/server.h"

enum agent_exit {
	AGENT_OK = 0,
	AGENT_FAILED = 1, /* --once: the state is not in force */
	AGENT_USAGE = 2,
};

enum agent_opt {
	OPT_KANARY = 0x100,
	OPT_NAMESPACE,
	OPT_STATE_CONFIGMAP,
	OPT_SOCKET,
	OPT_METRICS_BIND,
	OPT_CONFIG,
	OPT_STRUCTURE_HASH,
	OPT_STATE_FILE,
	OPT_ONCE,
	OPT_INTERVAL,
	OPT_KUBECONFIG,
};

#define AGENT_DEFAULT_SOCKET       "/var/run/haproxy/admin.sock"
#define AGENT_DEFAULT_CONFIG       "/usr/local/etc/haproxy/haproxy.cfg"
#define AGENT_DEFAULT_METRICS_BIND ":8406"
#define AGENT_DEFAULT_INTERVAL_MS  1000L
/* How often the loop looks for a new state and for a stop signal. */
#define AGENT_TICK_MS 50L
/* The data key of the state ConfigMap. */
#define AGENT_STATE_KEY "state.json"

struct agent_args {
	const char *kanary, *namespace, *configmap, *socket, *metrics_bind, *config, *hash;
	const char *state_file, *kubeconfig;
	bool once;
	long interval_ms;
	int verbosity;
};

static void agent_usage(FILE *out)
{
	fprintf(out,
	        "Usage: kanary-controller agent --kanary NAME --namespace NS --state-configmap CM\n"
	        "                               [--socket PATH] [--metrics-bind ADDR] [options]\n"
	        "       kanary-controller agent --state-file FILE [--once] [options]\n"
	        "\n"
	        "The sidecar of each HAProxy pod: watches the Kanary's state ConfigMap (only that\n"
	        "one object, key %s: the weights and each route's ready endpoints) and applies\n"
	        "it through HAProxy's admin socket: endpoints into server slots, the route map\n"
	        "replaced atomically, removed endpoints drained; every apply read back. It\n"
	        "compares with what HAProxy runs on every pass, so after HAProxy restarts\n"
	        "the whole state goes in again. A state computed for another structure than\n"
	        "the one HAProxy runs (while a structure rolls) is applied to the routes and\n"
	        "slots HAProxy has, unless it names a route HAProxy lacks: then it is refused\n"
	        "and the state in force stays.\n"
	        "\n"
	        "Options:\n"
	        "  --kanary NAME            the Kanary (for the log)\n"
	        "  --namespace NS           its namespace\n"
	        "  --state-configmap CM     the state ConfigMap (NAME-haproxy-state)\n"
	        "  --socket PATH            HAProxy's admin socket (default %s)\n"
	        "  --metrics-bind ADDR      /metrics, /healthz and /readyz, \"0\" for none\n"
	        "                           (default %s)\n"
	        "  --config FILE            the configuration HAProxy runs; its hash is the\n"
	        "                           structure hash a state must name (default\n"
	        "                           %s)\n"
	        "  --structure-hash HASH8   the structure hash, instead of hashing --config\n"
	        "  --state-file FILE        read the state from FILE instead of the cluster,\n"
	        "                           again whenever it changes\n"
	        "  --once                   with --state-file: apply once; exit 0 when HAProxy\n"
	        "                           runs the state, 1 when not\n"
	        "  --interval DURATION      how often to compare with HAProxy (default 1s)\n"
	        "  --kubeconfig FILE        a kubeconfig instead of the pod's service account\n"
	        "  -v, --v N                log verbosity\n"
	        "  -h, --help               show this help\n",
	        AGENT_STATE_KEY, AGENT_DEFAULT_SOCKET, AGENT_DEFAULT_METRICS_BIND,
	        AGENT_DEFAULT_CONFIG);
}

/* 1 for --help, 0, or -EINVAL (said why). */
static int parse_args(int argc, char **argv, struct agent_args *a)
{
	static const struct option longopts[] = {
	    {"kanary", required_argument, NULL, OPT_KANARY},
	    {"namespace", required_argument, NULL, OPT_NAMESPACE},
	    {"state-configmap", required_argument, NULL, OPT_STATE_CONFIGMAP},
	    {"socket", required_argument, NULL, OPT_SOCKET},
	    {"metrics-bind", required_argument, NULL, OPT_METRICS_BIND},
	    {"config", required_argument, NULL, OPT_CONFIG},
	    {"structure-hash", required_argument, NULL, OPT_STRUCTURE_HASH},
	    {"state-file", required_argument, NULL, OPT_STATE_FILE},
	    {"once", no_argument, NULL, OPT_ONCE},
	    {"interval", required_argument, NULL, OPT_INTERVAL},
	    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
	    {"v", required_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long v;
	int c;

	*a = (struct agent_args){.socket = AGENT_DEFAULT_SOCKET,
	                         .metrics_bind = AGENT_DEFAULT_METRICS_BIND,
	                         .config = AGENT_DEFAULT_CONFIG,
	                         .interval_ms = AGENT_DEFAULT_INTERVAL_MS};
	optind = 1;
	while ((c = getopt_long(argc, argv, "v:h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_KANARY:
			a->kanary = optarg;
			break;
		case OPT_NAMESPACE:
			a->namespace = optarg;
			break;
		case OPT_STATE_CONFIGMAP:
			a->configmap = optarg;
			break;
		case OPT_SOCKET:
			a->socket = optarg;
			break;
		case OPT_METRICS_BIND:
			a->metrics_bind = optarg;
			break;
		case OPT_CONFIG:
			a->config = optarg;
			break;
		case OPT_STRUCTURE_HASH:
			if (strlen(optarg) != 8 || strspn(optarg, "0123456789abcdef") != 8) {
				fprintf(stderr,
				        "kanary-controller agent: --structure-hash: \"%s\" is "
				        "not 8 lower-case hex digits\n",
				        optarg);
				return -EINVAL;
			}
			a->hash = optarg;
			break;
		case OPT_STATE_FILE:
			a->state_file = optarg;
			break;
		case OPT_ONCE:
			a->once = true;
			break;
		case OPT_INTERVAL:
			if (duration_parse(optarg, KANARY_MAX_FLAG_DURATION_MS, &a->interval_ms) <
			        0 ||
			    a->interval_ms < AGENT_TICK_MS) {
				fprintf(stderr,
				        "kanary-controller agent: --interval: \"%s\" is not a "
				        "duration of at least %ldms\n",
				        optarg, AGENT_TICK_MS);
				return -EINVAL;
			}
			break;
		case OPT_KUBECONFIG:
			a->kubeconfig = optarg;
			break;
		case 'v':
			if (integer_parse(optarg, 0, 10, &v) < 0) {
				fprintf(stderr,
				        "kanary-controller agent: -v: \"%s\" is not 0..10\n",
				        optarg);
				return -EINVAL;
			}
			a->verbosity = (int)v;
			break;
		case 'h':
			agent_usage(stdout);
			return 1;
		default:
			agent_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kanary-controller agent: unexpected argument \"%s\"\n",
		        argv[optind]);
		return -EINVAL;
	}
	if (a->once && !a->state_file) {
		fprintf(stderr, "kanary-controller agent: --once needs --state-file\n");
		return -EINVAL;
	}
	if (!a->state_file && (!a->namespace || !a->configmap)) {
		fprintf(stderr, "kanary-controller agent: give --namespace and --state-configmap, "
		                "or --state-file\n");
		return -EINVAL;
	}
	return 0;
}

/* The first 8 hex digits of the SHA-256 of the configuration file, as the ConfigMap is named. */
static int structure_hash(const struct agent_args *a, char ret[9])
{
	char *text, hex[65];
	size_t len;
	int r;

	if (a->hash) {
		memcpy(ret, a->hash, 9);
		return 0;
	}
	r = file_read_path(a->config, KANARY_MAX_CONFIG, &text, &len);
	if (r < 0) {
		log_msg(LOG_ERROR, NULL, "reading %s for the structure hash: %s", a->config,
		        strerror(-r));
		return r;
	}
	r = render_hash(text, len, hex);
	free(text);
	if (r < 0)
		return r;
	memcpy(ret, hex, 8);
	ret[8] = '\0';
	return 0;
}

/* ---- the state ConfigMap's watch ---- */

static void offer_configmap(void *ctx, const struct kube_obj *o)
{
	static const char *const key[] = {"data", AGENT_STATE_KEY, NULL};
	struct agent *a = ctx;
	struct json_object *cm = NULL;
	const char *text;

	if (kube_obj_parse(o, &cm) < 0) {
		log_msg(LOG_WARNING, NULL, "state not taken: out of memory");
		return;
	}
	text = json_field_str_path(cm, key);
	if (!text)
		log_msg(LOG_WARNING, NULL, "the state ConfigMap has no data.%s; waiting for one",
		        AGENT_STATE_KEY);
	else if (agent_offer(a, text, strlen(text)) < 0)
		log_msg(LOG_WARNING, NULL, "state not taken: too large or out of memory");
	json_object_put(cm);
}

static void on_add(void *ctx, const struct kube_obj *obj)
{
	offer_configmap(ctx, obj);
}

static void on_update(void *ctx, const struct kube_obj *old_obj, const struct kube_obj *new_obj)
{
	(void)old_obj;
	offer_configmap(ctx, new_obj);
}

static void on_delete(void *ctx, const struct kube_obj *obj, bool final_state_unknown)
{
	(void)ctx;
	(void)obj;
	(void)final_state_unknown;
	log_msg(LOG_WARNING, NULL, "the state ConfigMap was deleted; keeping the state in force");
}

static int start_watch(const struct agent_args *args, struct agent *a, struct kube_config **ret_cfg,
                       struct kube_informer **ret_inf)
{
	struct kube_logger lg = {.fn = log_kube, .ctx = NULL};
	struct kube_informer_options io = {0};
	struct kube_config_err err = {{0}};
	struct kube_config *cfg = NULL;
	struct kube_informer *inf = NULL;
	char path[KANARY_MAX_URL], selector[KANARY_MAX_SELECTOR];
	int r;

	r = kube_config_load(args->kubeconfig, NULL, &cfg, &err);
	if (r < 0) {
		log_msg(LOG_ERROR, NULL, "kubeconfig: %s", err.msg[0] ? err.msg : strerror(-r));
		return r;
	}
	kube_config_set_logger(cfg, &lg);
	r = kube_path(path, sizeof(path), NULL, "v1", "configmaps", args->namespace, NULL, NULL);
	if (r < 0)
		goto out_destroy;
	if ((size_t)snprintf(selector, sizeof(selector), "metadata.name=%s", args->configmap) >=
	    sizeof(selector)) {
		r = -E2BIG;
		goto out_destroy;
	}
	io.path = path;
	io.field_selector = selector;
	io.component = "agent";
	io.drop_managed_fields = true;
	io.handlers = (struct kube_informer_handlers){
	    .on_add = on_add, .on_update = on_update, .on_delete = on_delete, .ctx = a};
	r = kube_informer_create(cfg, &io, &inf);
	if (r == 0)
		r = kube_informer_start(inf);
	if (r < 0)
		goto out_destroy;
	log_msg(LOG_INFO, NULL, "API server %s; watching ConfigMap %s/%s", cfg->server,
	        args->namespace, args->configmap);
	*ret_cfg = cfg;
	*ret_inf = inf;
	return 0;
out_destroy:
	log_msg(LOG_ERROR, NULL, "watching the state ConfigMap: %s", strerror(-r));
	kube_informer_destroy(inf);
	kube_config_destroy(cfg);
	return r;
}

/* ---- the state file ---- */

/* Offers the file's text when it differs from last (kept, the caller's to free). */
static void offer_file(const char *path, struct agent *a, char **last, size_t *last_len)
{
	char *text;
	size_t len;
	int r;

	r = file_read_path(path, KANARY_MAX_STATE, &text, &len);
	if (r < 0) {
		if (!*last || r != -ENOENT)
			log_msg(LOG_DEBUG, NULL, "reading %s: %s", path, strerror(-r));
		return;
	}
	if (*last && *last_len == len && memcmp(*last, text, len) == 0) {
		free(text);
		return;
	}
	if (agent_offer(a, text, len) < 0) {
		free(text);
		return;
	}
	free(*last);
	*last = text;
	*last_len = len;
}

/* ---- /metrics ---- */

static int h_healthz(void *ctx, char *why, size_t size)
{
	(void)ctx;
	(void)why;
	(void)size;
	return 0;
}

static int h_readyz(void *ctx, char *why, size_t size)
{
	if (agent_applied_generation(ctx) > 0)
		return 0;
	snprintf(why, size, "no state applied yet");
	return -EAGAIN;
}

static int h_metrics(void *ctx, struct buf *out)
{
	return agent_metrics(ctx, out);
}

static int wait_signal(const sigset_t *set, long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	int s = sigtimedwait(set, NULL, &ts);

	return s > 0 ? s : 0;
}

int cmd_agent_main(int argc, char **argv)
{
	struct server_handlers h = {.healthz = h_healthz, .readyz = h_readyz, .metrics = h_metrics};
	struct agent_options ao = {.socket_timeout_ms = AGENT_DEFAULT_SOCKET_TIMEOUT_MS};
	struct agent_args args;
	struct agent *a = NULL;
	struct server *srv = NULL;
	struct kube_config *cfg = NULL;
	struct kube_informer *inf = NULL;
	char *last = NULL;
	size_t last_len = 0;
	long long next_pass = 0;
	bool metrics_off = false, kube = false;
	sigset_t sigs;
	int r, status = AGENT_USAGE;

	r = parse_args(argc, argv, &args);
	if (r != 0)
		return r > 0 ? AGENT_OK : AGENT_USAGE;
	log_set_verbosity(args.verbosity);
	if (server_parse_bind(args.metrics_bind, &metrics_off) < 0) {
		fprintf(stderr,
		        "kanary-controller agent: --metrics-bind: \"%s\" is not an address\n",
		        args.metrics_bind);
		return AGENT_USAGE;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	status = AGENT_FAILED;
	ao.socket_path = args.socket;
	if (structure_hash(&args, ao.structure_hash) < 0)
		return AGENT_FAILED;
	if (agent_create(&ao, &a) < 0) {
		log_msg(LOG_ERROR, NULL, "--socket %s: not a usable path", args.socket);
		return AGENT_USAGE;
	}
	h.ctx = a;
	if (!metrics_off && !args.once) {
		r = server_start(args.metrics_bind, SERVER_HEALTH | SERVER_METRICS, &h, &srv);
		if (r < 0) {
			log_msg(LOG_ERROR, NULL, "cannot serve /metrics on %s: %s",
			        args.metrics_bind, strerror(-r));
			goto out_destroy;
		}
	}
	if (!args.state_file) {
		if (kube_global_init() < 0) {
			log_msg(LOG_ERROR, NULL, "cannot initialise libcurl");
			goto out_destroy;
		}
		kube = true;
		if (start_watch(&args, a, &cfg, &inf) < 0)
			goto out_destroy;
	}
	log_msg(LOG_INFO, NULL, "kanary-controller %s agent for %s/%s; HAProxy structure %s at %s",
	        KANARY_VERSION, args.namespace ? args.namespace : "-",
	        args.kanary ? args.kanary : "-", ao.structure_hash, args.socket);

	for (;;) {
		long long now = monotonic_ms();
		int sig;

		if (args.state_file && now >= next_pass)
			offer_file(args.state_file, a, &last, &last_len);
		if (agent_pending(a) || now >= next_pass) {
			r = agent_sync(a);
			next_pass = monotonic_ms() + args.interval_ms;
			if (args.once) {
				status = r == 0 ? AGENT_OK : AGENT_FAILED;
				if (r == -EAGAIN)
					log_msg(LOG_ERROR, NULL, "%s: no state to apply",
					        args.state_file);
				break;
			}
		}
		sig = wait_signal(&sigs, AGENT_TICK_MS);
		if (sig) {
			log_msg(LOG_INFO, NULL, "%s: stopping",
			        sig == SIGTERM ? "SIGTERM" : "SIGINT");
			status = AGENT_OK;
			break;
		}
	}
out_destroy:
	kube_informer_destroy(inf);
	kube_config_destroy(cfg);
	server_stop(srv);
	if (kube)
		kube_global_cleanup();
	agent_destroy(a);
	free(last);
	return status;
}
