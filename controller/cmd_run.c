/* SPDX-License-Identifier: Apache-2.0 */
/* The `kanary-controller run` subcommand: flags, election, workers, probes and signals. */
#include "controller/cmd_run.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/duration.h"
#include "common/integer.h"
#include "common/io/log_kube.h"
#include "common/io/heap.h"
#include "common/io/monotonic.h"
#include "common/kanary.h"
#include "common/kube/client.h"
#include "common/kube/watch.h"
#include "common/limits.h"
#include "common/strtab.h"
#include "common/io/log.h"
#include "controller/controller.h"
#include "controller/reconcile.h"
#include "controller/server.h"
#include "controller/watches.h"

#define RUN_DEFAULT_METRICS_BIND ":8080"
#define RUN_DEFAULT_HEALTH_BIND  ":8081"
#define RUN_DEFAULT_LEASE_NAME   "kanary-controller"
#define RUN_DEFAULT_BATCH_MS     100L
#define RUN_DEFAULT_RESYNC_MS    (10L * 60 * 1000)
/* How often the main thread looks at signals, leadership and the resync clock. */
#define RUN_TICK_MS 200L

enum run_exit {
	RUN_OK = 0,
	RUN_FAILED = 1,
	RUN_USAGE = 2,
};

struct run_options {
	const char *kubeconfig;
	const char *context;
	const char *namespace;
	bool allow_http_token;
	bool leader_elect;
	long lease_ms, renew_ms, retry_ms;
	const char *lease_name;
	const char *lease_namespace;
	const char *metrics_bind;
	const char *health_bind;
	long resync_ms;
	int workers;
	int verbosity;
	struct controller_options ctl;
	/* --haproxy-image-pull-secrets: its text, cut at the commas, and the names in it. */
	char pull_secrets_text[KANARY_MAX_PULL_SECRETS * (KANARY_MAX_NAME + 1)];
	const char *pull_secrets[KANARY_MAX_PULL_SECRETS];
};

enum run_opt {
	OPT_KUBECONFIG = 0x100,
	OPT_CONTEXT,
	OPT_NAMESPACE,
	OPT_ALLOW_HTTP_TOKEN,
	OPT_LEADER_ELECT,
	OPT_LEASE_DURATION,
	OPT_RENEW_DEADLINE,
	OPT_RETRY_PERIOD,
	OPT_LEASE_NAME,
	OPT_LEASE_NAMESPACE,
	OPT_IMAGE,
	OPT_IMAGE_PULL_POLICY,
	OPT_IMAGE_PULL_SECRETS,
	OPT_AGENT_IMAGE,
	OPT_AGENT_METRICS_PORT,
	OPT_HAP_BIND,
	OPT_HAP_PROXY_PORT,
	OPT_HAP_PROBE_PORT,
	OPT_HAP_METRICS_PORT,
	OPT_HAP_RUNTIME_DIR,
	OPT_METRICS_BIND,
	OPT_HEALTH_BIND,
	OPT_BATCH,
	OPT_RESYNC,
	OPT_WORKERS,
	OPT_V,
};

static void run_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: kanary-controller run [options]\n"
	    "\n"
	    "Runs the controller: watches Kanaries, the Services and EndpointSlices they name\n"
	    "and the objects it made, and keeps each Kanary's HAProxy Deployment, ConfigMap,\n"
	    "PodDisruptionBudget and destination Service in step with them (server-side apply,\n"
	    "field manager \"kanary\"). SIGTERM or SIGINT: stop taking work, finish the current\n"
	    "Kanary, release the lease, exit 0.\n"
	    "\n"
	    "Cluster:\n"
	    "  --kubeconfig PATH              kubeconfig file (default: $KUBECONFIG, else the\n"
	    "                                 pod's service account, else ~/.kube/config)\n"
	    "  --context NAME                 kubeconfig context (default: its current-context)\n"
	    "  --namespace NS                 watch only this namespace (default: all)\n"
	    "  --insecure-allow-http-token[=BOOL]\n"
	    "                                 send the kubeconfig's bearer token to an http://\n"
	    "                                 server, in clear text (default false: refused)\n"
	    "\n"
	    "Leader election (a coordination.k8s.io/v1 Lease; only the leader writes):\n"
	    "  --leader-elect[=BOOL]          elect a leader before working (default true)\n"
	    "  --leader-elect-lease-duration DURATION\n"
	    "                                 how long a standby waits before taking over a\n"
	    "                                 lease that stopped moving (default 15s)\n"
	    "  --leader-elect-renew-deadline DURATION\n"
	    "                                 the leader gives up (exit 1) when it could not\n"
	    "                                 renew for this long (default 10s)\n"
	    "  --leader-elect-retry-period DURATION\n"
	    "                                 between tries and renewals (default 2s)\n"
	    "  --leader-elect-resource-name NAME\n"
	    "                                 the Lease's name (default %s)\n"
	    "  --leader-elect-resource-namespace NS\n"
	    "                                 the Lease's namespace (default: --namespace, else\n"
	    "                                 the kubeconfig context's or the pod's namespace)\n"
	    "\n"
	    "HAProxy (what the children look like; the same options as `render`):\n"
	    "  --haproxy-image IMAGE          image of the HAProxy Deployment (default %s)\n"
	    "  --haproxy-image-pull-policy POLICY\n"
	    "                                 Always, IfNotPresent or Never (default: unset, so\n"
	    "                                 Kubernetes' default for the image's tag)\n"
	    "  --haproxy-image-pull-secrets NAME[,NAME...]\n"
	    "                                 Secrets the HAProxy pods pull both their images\n"
	    "                                 with (HAProxy's and the agent's); each must exist\n"
	    "                                 in every Kanary's namespace (default: none)\n"
	    "  --agent-image IMAGE            image of the agent sidecar in each HAProxy pod,\n"
	    "                                 the Kanary image (the chart passes the\n"
	    "                                 controller's own; default %s)\n"
	    "  --agent-metrics-port PORT      the agent's /metrics port in the pod (default %d)\n"
	    "  --haproxy-bind-address ADDR    address HAProxy binds its listeners to (default: "
	    "all)\n"
	    "  --haproxy-proxy-port PORT      HAProxy's traffic port in the pod (default %d)\n"
	    "  --haproxy-probe-port PORT      its /healthz and /ready port (default %d)\n"
	    "  --haproxy-metrics-port PORT    its Prometheus /metrics port (default %d)\n"
	    "  --haproxy-runtime-dir DIR      directory of its admin socket, an emptyDir shared\n"
	    "                                 with the agent (default %s)\n",
	    RUN_DEFAULT_LEASE_NAME, OBJECTS_DEFAULT_IMAGE, OBJECTS_DEFAULT_AGENT_IMAGE,
	    OBJECTS_DEFAULT_AGENT_METRICS_PORT, RENDER_DEFAULT_PROXY_PORT,
	    RENDER_DEFAULT_PROBE_PORT, RENDER_DEFAULT_METRICS_PORT, RENDER_DEFAULT_RUNTIME_DIR);
	/* Two calls: one string literal may not pass 4,095 characters (C99). */
	fprintf(
	    out,
	    "\n"
	    "Behaviour:\n"
	    "  --endpoint-updates-batch-period DURATION\n"
	    "                                 coalesce Service and EndpointSlice changes over "
	    "this\n"
	    "                                 window into one reconcile and one state write, or\n"
	    "                                 one rollout (default 100ms)\n"
	    "  --resync-period DURATION       reconcile every Kanary this often anyway (default "
	    "10m;\n"
	    "                                 0 turns it off)\n"
	    "  --concurrent-kanary-syncs N    Kanaries reconciled at once (default 1)\n"
	    "\n"
	    "Serving:\n"
	    "  --metrics-bind-address ADDR    /metrics (default \"%s\"; \"0\" turns it off)\n"
	    "  --health-probe-bind-address ADDR\n"
	    "                                 /healthz and /readyz (default \"%s\"; \"0\" off)\n"
	    "  -v, --v LEVEL                  log verbosity: 0 errors, warnings and info "
	    "(default);\n"
	    "                                 1 and above add debug lines\n"
	    "  -h, --help                     show this help\n"
	    "\n"
	    "DURATION: a number with a unit, ms, s, m or h (\"1500ms\", \"15s\"). ADDR: "
	    "\":8080\",\n"
	    "\"127.0.0.1:8080\" or \"[::1]:8080\".\n",
	    RUN_DEFAULT_METRICS_BIND, RUN_DEFAULT_HEALTH_BIND);
}

static int bad(const char *opt, const char *val, const char *what)
{
	fprintf(stderr, "kanary-controller run: %s: \"%s\" is not %s\n", opt, val, what);
	return -EINVAL;
}

/* A duration flag (common/duration.h); zero only where allow_zero says so. */
static int parse_duration(const char *opt, const char *s, bool allow_zero, long *ret)
{
	long ms;
	int r;

	r = duration_parse(s, KANARY_MAX_FLAG_DURATION_MS, &ms);
	if (r == -ERANGE)
		return bad(opt, s, "a duration of at most 24h");
	if (r < 0)
		return bad(opt, s, "a duration (\"15s\")");
	if (ms == 0 && !allow_zero)
		return bad(opt, s, "a duration above 0");
	*ret = ms;
	return 0;
}

static int parse_int(const char *opt, const char *s, long lo, long hi, int *ret)
{
	char what[64];
	long v;

	if (integer_parse(s, lo, hi, &v) < 0) {
		snprintf(what, sizeof(what), "a number from %ld to %ld", lo, hi);
		return bad(opt, s, what);
	}
	*ret = (int)v;
	return 0;
}

static int parse_bool(const char *opt, const char *s, bool *ret)
{
	if (!s || strcmp(s, "true") == 0) {
		*ret = true;
		return 0;
	}
	if (strcmp(s, "false") == 0) {
		*ret = false;
		return 0;
	}
	return bad(opt, s, "true or false");
}

static int parse_bind(const char *opt, const char *s)
{
	bool off;

	return server_parse_bind(s, &off) < 0 ? bad(opt, s, "an address (\":8080\", \"0\")") : 0;
}

/*
 * --haproxy-image-pull-secrets NAME[,NAME...]: Secret names, each a DNS-1123
 * subdomain, none twice, at most KANARY_MAX_PULL_SECRETS; "" names none. The
 * last use of the flag wins.
 */
static int parse_pull_secrets(const char *s, struct run_options *o)
{
	const char *opt = "--haproxy-image-pull-secrets";
	size_t len = strlen(s), n = 0;
	char *p = o->pull_secrets_text;

	o->ctl.objects.image_pull_secrets = NULL;
	o->ctl.objects.n_image_pull_secrets = 0;
	if (len == 0)
		return 0;
	if (len >= sizeof(o->pull_secrets_text))
		return bad(opt, s, "a list that short");
	memcpy(p, s, len + 1);
	for (;;) {
		char *comma = strchr(p, ',');

		if (comma)
			*comma = '\0';
		if (n == KANARY_MAX_PULL_SECRETS) {
			fprintf(stderr, "kanary-controller run: %s: more than %d Secrets\n", opt,
			        KANARY_MAX_PULL_SECRETS);
			return -EINVAL;
		}
		if (!objects_secret_name_valid(p)) {
			fprintf(
			    stderr,
			    "kanary-controller run: %s: \"%s\" is not a Secret name (a DNS-1123 "
			    "subdomain: lower-case letters, digits, '-' and '.', at most %d)\n",
			    opt, p, KANARY_MAX_NAME);
			return -EINVAL;
		}
		for (size_t i = 0; i < n; i++)
			if (strcmp(o->pull_secrets[i], p) == 0) {
				fprintf(stderr,
				        "kanary-controller run: %s: \"%s\" is named twice\n", opt,
				        p);
				return -EINVAL;
			}
		o->pull_secrets[n++] = p;
		if (!comma)
			break;
		p = comma + 1;
	}
	o->ctl.objects.image_pull_secrets = o->pull_secrets;
	o->ctl.objects.n_image_pull_secrets = n;
	return 0;
}

/* Returns 0 to run, 1 when --help was shown, or -EINVAL. */
static int parse_options(int argc, char **argv, struct run_options *o)
{
	static const struct option longopts[] = {
	    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
	    {"context", required_argument, NULL, OPT_CONTEXT},
	    {"namespace", required_argument, NULL, OPT_NAMESPACE},
	    {"insecure-allow-http-token", optional_argument, NULL, OPT_ALLOW_HTTP_TOKEN},
	    {"leader-elect", optional_argument, NULL, OPT_LEADER_ELECT},
	    {"leader-elect-lease-duration", required_argument, NULL, OPT_LEASE_DURATION},
	    {"leader-elect-renew-deadline", required_argument, NULL, OPT_RENEW_DEADLINE},
	    {"leader-elect-retry-period", required_argument, NULL, OPT_RETRY_PERIOD},
	    {"leader-elect-resource-name", required_argument, NULL, OPT_LEASE_NAME},
	    {"leader-elect-resource-namespace", required_argument, NULL, OPT_LEASE_NAMESPACE},
	    {"haproxy-image", required_argument, NULL, OPT_IMAGE},
	    {"haproxy-image-pull-policy", required_argument, NULL, OPT_IMAGE_PULL_POLICY},
	    {"haproxy-image-pull-secrets", required_argument, NULL, OPT_IMAGE_PULL_SECRETS},
	    {"agent-image", required_argument, NULL, OPT_AGENT_IMAGE},
	    {"agent-metrics-port", required_argument, NULL, OPT_AGENT_METRICS_PORT},
	    {"haproxy-bind-address", required_argument, NULL, OPT_HAP_BIND},
	    {"haproxy-proxy-port", required_argument, NULL, OPT_HAP_PROXY_PORT},
	    {"haproxy-probe-port", required_argument, NULL, OPT_HAP_PROBE_PORT},
	    {"haproxy-metrics-port", required_argument, NULL, OPT_HAP_METRICS_PORT},
	    {"haproxy-runtime-dir", required_argument, NULL, OPT_HAP_RUNTIME_DIR},
	    {"metrics-bind-address", required_argument, NULL, OPT_METRICS_BIND},
	    {"health-probe-bind-address", required_argument, NULL, OPT_HEALTH_BIND},
	    {"endpoint-updates-batch-period", required_argument, NULL, OPT_BATCH},
	    {"resync-period", required_argument, NULL, OPT_RESYNC},
	    {"concurrent-kanary-syncs", required_argument, NULL, OPT_WORKERS},
	    {"v", required_argument, NULL, OPT_V},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct render_options *ro = &o->ctl.objects.render;
	const char *why = "";
	int c, r = 0;

	optind = 1;
	while (r == 0 && (c = getopt_long(argc, argv, "hv:", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_KUBECONFIG:
			o->kubeconfig = optarg;
			break;
		case OPT_CONTEXT:
			o->context = optarg;
			break;
		case OPT_NAMESPACE:
			if (!optarg[0] || strlen(optarg) > KANARY_MAX_DNS_LABEL)
				r = bad("--namespace", optarg, "a namespace name");
			o->namespace = optarg;
			break;
		case OPT_ALLOW_HTTP_TOKEN:
			r = parse_bool("--insecure-allow-http-token", optarg, &o->allow_http_token);
			break;
		case OPT_LEADER_ELECT:
			r = parse_bool("--leader-elect", optarg, &o->leader_elect);
			break;
		case OPT_LEASE_DURATION:
			r = parse_duration("--leader-elect-lease-duration", optarg, false,
			                   &o->lease_ms);
			break;
		case OPT_RENEW_DEADLINE:
			r = parse_duration("--leader-elect-renew-deadline", optarg, false,
			                   &o->renew_ms);
			break;
		case OPT_RETRY_PERIOD:
			r = parse_duration("--leader-elect-retry-period", optarg, false,
			                   &o->retry_ms);
			break;
		case OPT_LEASE_NAME:
			o->lease_name = optarg;
			break;
		case OPT_LEASE_NAMESPACE:
			o->lease_namespace = optarg;
			break;
		case OPT_IMAGE:
			o->ctl.objects.image = optarg;
			break;
		case OPT_AGENT_IMAGE:
			if (optarg[0])
				o->ctl.objects.agent_image = optarg;
			else
				r = bad("--agent-image", optarg, "an image");
			break;
		case OPT_AGENT_METRICS_PORT:
			r = parse_int("--agent-metrics-port", optarg, 1, 65535,
			              &o->ctl.objects.agent_metrics_port);
			break;
		case OPT_IMAGE_PULL_POLICY:
			if (objects_pull_policy_valid(optarg))
				o->ctl.objects.image_pull_policy = optarg;
			else
				r = bad("--haproxy-image-pull-policy", optarg,
				        "Always, IfNotPresent or Never");
			break;
		case OPT_IMAGE_PULL_SECRETS:
			r = parse_pull_secrets(optarg, o);
			break;
		case OPT_HAP_BIND:
			ro->bind_address = optarg;
			break;
		case OPT_HAP_PROXY_PORT:
			r = parse_int("--haproxy-proxy-port", optarg, 1, 65535, &ro->proxy_port);
			break;
		case OPT_HAP_PROBE_PORT:
			r = parse_int("--haproxy-probe-port", optarg, 1, 65535, &ro->probe_port);
			break;
		case OPT_HAP_METRICS_PORT:
			r = parse_int("--haproxy-metrics-port", optarg, 1, 65535,
			              &ro->metrics_port);
			break;
		case OPT_HAP_RUNTIME_DIR:
			/* objects_options_check says why "" or a relative path cannot do. */
			ro->runtime_dir = optarg;
			break;
		case OPT_METRICS_BIND:
			r = parse_bind("--metrics-bind-address", optarg);
			o->metrics_bind = optarg;
			break;
		case OPT_HEALTH_BIND:
			r = parse_bind("--health-probe-bind-address", optarg);
			o->health_bind = optarg;
			break;
		case OPT_BATCH:
			r = parse_duration("--endpoint-updates-batch-period", optarg, true,
			                   &o->ctl.batch_period_ms);
			break;
		case OPT_RESYNC:
			r = parse_duration("--resync-period", optarg, true, &o->resync_ms);
			break;
		case OPT_WORKERS:
			r = parse_int("--concurrent-kanary-syncs", optarg, 1, KANARY_MAX_WORKERS,
			              &o->workers);
			break;
		case 'v':
		case OPT_V:
			r = parse_int("--v", optarg, 0, 10, &o->verbosity);
			break;
		case 'h':
			run_usage(stdout);
			return 1;
		default:
			run_usage(stderr);
			return -EINVAL;
		}
	}
	if (r < 0)
		return r;
	if (optind < argc) {
		fprintf(stderr, "kanary-controller run: unexpected argument \"%s\"\n",
		        argv[optind]);
		return -EINVAL;
	}
	/* Options that would fail every Kanary's reconcile, for ever, are refused now. */
	if (objects_options_check(&o->ctl.objects, &why) < 0) {
		fprintf(stderr, "kanary-controller run: the HAProxy options do not fit: %s\n", why);
		return -EINVAL;
	}
	if (o->leader_elect && !(o->lease_ms > o->renew_ms && o->renew_ms > o->retry_ms)) {
		fprintf(stderr, "kanary-controller run: the lease duration must exceed the renew "
		                "deadline, which must exceed the retry period\n");
		return -EINVAL;
	}
	return 0;
}

/* ---- the running controller ---- */

struct worker {
	struct controller *c;
	struct kube_client *kc;
	pthread_t thread;
	bool started;
};

struct run {
	struct run_options o;
	struct controller *c;
	struct kube_config *cfg;
	struct worker workers[KANARY_MAX_WORKERS];
	struct server *health, *metrics;
	atomic_bool leading;
	char identity[300];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct controller *c = w->c;
	char *key;

	while (queue_get(c->queue, &key) == 0) {
		long long t0 = monotonic_ms();
		struct reconcile_outcome out = {0};
		int r = reconcile(c, w->kc, key, &out);
		int retry_after_s = out.retry_after_s;
		double dt = (double)(monotonic_ms() - t0) / 1000.0;

		metrics_reconciled(c->metrics, r == 0 ? METRICS_SUCCESS : METRICS_ERROR, dt);
		if (r == 0) {
			queue_forget(c->queue, key);
			/*
			 * A key already held back keeps the earlier time, so however
			 * often it is woken meanwhile, one look-again waits per key.
			 */
			if (out.recheck_ms > 0)
				queue_add_after(c->queue, key, out.recheck_ms);
		} else if (r != -ECANCELED) {
			unsigned n = queue_requeues(c->queue, key);
			long delay_ms = retry_after_s * 1000L;

			/* The one line a failed attempt gets: reconcile logged nothing of it. */
			if (retry_after_s > 0)
				queue_add_after(c->queue, key, delay_ms);
			else
				queue_add_rate_limited(c->queue, key, &delay_ms);
			log_msg(LOG_WARNING, key, "reconcile failed: %s; retry %u in %ldms%s",
			        out.error[0] ? out.error : strerror(-r), n + 1, delay_ms,
			        retry_after_s ? " (the server asked to wait)" : "");
		}
		queue_done(c->queue, key);
		free(key);
	}
	return NULL;
}

static int h_healthz(void *ctx, char *why, size_t size)
{
	struct run *run = ctx;

	if (run->c->lease && lease_lost(run->c->lease)) {
		snprintf(why, size, "leadership lost");
		return -1;
	}
	return 0;
}

static int h_readyz(void *ctx, char *why, size_t size)
{
	struct run *run = ctx;

	return watches_synced(run->c, why, size) ? 0 : -1;
}

static int extra_metrics(void *ctx, struct buf *out)
{
	struct run *run = ctx;
	struct queue_stats qs;
	int r;

	queue_stats(run->c->queue, &qs);
	r = metrics_gauge(out, "kanary_controller_workqueue_depth",
	                  "Kanaries waiting for a worker.", "gauge", "", (double)qs.depth);
	if (r == 0)
		r = metrics_gauge(out, "kanary_controller_workqueue_waiting",
		                  "Kanaries held back: coalescing window or retry backoff.",
		                  "gauge", "", (double)qs.waiting);
	if (r == 0)
		r = metrics_gauge(out, "kanary_controller_workqueue_adds_total",
		                  "Keys added to the work queue.", "counter", "", (double)qs.adds);
	if (r == 0)
		r = metrics_gauge(out, "kanary_controller_workqueue_retries_total",
		                  "Keys requeued after a failed reconcile.", "counter", "",
		                  (double)qs.retries);
	if (r == 0)
		r = metrics_gauge(
		    out, "kanary_controller_leader",
		    "1 while this process holds the lease and may write.", "gauge", "",
		    controller_may_write(run->c) && atomic_load(&run->leading) ? 1 : 0);
	if (r == 0)
		r = buf_puts(out, "# HELP kanary_controller_informer_synced 1 once the informer's "
		                  "first list is in its cache.\n"
		                  "# TYPE kanary_controller_informer_synced gauge\n");
	for (size_t w = 0; r == 0 && w < WATCH_N; w++)
		r = buf_printf(out, "kanary_controller_informer_synced{resource=\"%s\"} %d\n",
		               watches_name((enum watched)w),
		               kube_informer_has_synced(run->c->inf[w]) ? 1 : 0);
	if (r == 0)
		r = buf_puts(out,
		             "# HELP kanary_controller_informer_bytes What the informer's cached "
		             "records take, without the strings they share "
		             "(kanary_controller_informer_shared_bytes).\n"
		             "# TYPE kanary_controller_informer_bytes gauge\n");
	for (size_t w = 0; r == 0 && w < WATCH_N; w++) {
		struct kube_informer_stats st;

		kube_informer_stats(run->c->inf[w], &st);
		r = buf_printf(out, "kanary_controller_informer_bytes{resource=\"%s\"} %zu\n",
		               watches_name((enum watched)w), st.bytes);
	}
	if (r == 0) {
		struct strtab_stats ss;

		strtab_stats(&ss);
		r = buf_printf(out,
		               "# HELP kanary_controller_informer_shared_bytes The strings cached "
		               "records share (namespaces, label keys and values, port names), "
		               "each counted once.\n"
		               "# TYPE kanary_controller_informer_shared_bytes gauge\n"
		               "kanary_controller_informer_shared_bytes %zu\n",
		               ss.bytes);
	}
	if (r == 0) {
		struct heap_stats hs;

		heap_stats(&hs);
		if (hs.known)
			r = buf_printf(
			    out,
			    "# HELP kanary_controller_heap_bytes What malloc holds: in use by "
			    "the controller, or free inside its arenas (kept between "
			    "trims, or pages shared with live blocks).\n"
			    "# TYPE kanary_controller_heap_bytes gauge\n"
			    "kanary_controller_heap_bytes{state=\"in_use\"} %zu\n"
			    "kanary_controller_heap_bytes{state=\"free\"} %zu\n",
			    hs.in_use, hs.free);
	}
	if (r == 0) {
		struct kube_recorder_stats es;

		kube_recorder_stats(run->c->recorder, &es);
		r = metrics_events(out, &es);
	}
	return r;
}

static int h_metrics(void *ctx, struct buf *out)
{
	struct run *run = ctx;

	return metrics_render(run->c->metrics, extra_metrics, run, out);
}

static int start_servers(struct run *run)
{
	const struct server_handlers h = {
	    .healthz = h_healthz, .readyz = h_readyz, .metrics = h_metrics, .ctx = run};
	bool moff = false, hoff = false;
	int r;

	server_parse_bind(run->o.metrics_bind, &moff);
	server_parse_bind(run->o.health_bind, &hoff);
	if (!moff && !hoff && strcmp(run->o.metrics_bind, run->o.health_bind) == 0) {
		/* One address for both: one server. */
		hoff = true;
		r = server_start(run->o.metrics_bind, SERVER_HEALTH | SERVER_METRICS, &h,
		                 &run->metrics);
	} else {
		r = moff ? 0 : server_start(run->o.metrics_bind, SERVER_METRICS, &h, &run->metrics);
	}
	if (r < 0) {
		log_msg(LOG_ERROR, NULL, "cannot serve /metrics on %s: %s", run->o.metrics_bind,
		        strerror(-r));
		return r;
	}
	r = hoff ? 0 : server_start(run->o.health_bind, SERVER_HEALTH, &h, &run->health);
	if (r < 0)
		log_msg(LOG_ERROR, NULL, "cannot serve /healthz on %s: %s", run->o.health_bind,
		        strerror(-r));
	return r;
}

/*
 * Waits RUN_TICK_MS for SIGTERM or SIGINT (blocked in every thread, so they
 * arrive here). Returns the signal, or 0.
 */
static int wait_signal(const sigset_t *set)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = RUN_TICK_MS * 1000000L};
	int s = sigtimedwait(set, NULL, &ts);

	return s > 0 ? s : 0;
}

static int start_workers(struct run *run)
{
	const struct kube_client_options co = {.component = "controller",
	                                       .field_manager = CONTROLLER_FIELD_MANAGER};
	int r;

	for (int i = 0; i < run->o.workers; i++) {
		struct worker *w = &run->workers[i];

		w->c = run->c;
		r = kube_client_create(run->c->cfg, &co, &w->kc);
		if (r < 0)
			return r;
		kube_client_set_abort(w->kc, &run->c->abort);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			return -EAGAIN;
		w->started = true;
	}
	return 0;
}

static void stop_workers(struct run *run)
{
	if (run->c)
		queue_shutdown(run->c->queue);
	for (int i = 0; i < KANARY_MAX_WORKERS; i++) {
		struct worker *w = &run->workers[i];

		if (w->started)
			pthread_join(w->thread, NULL);
		w->started = false;
		kube_client_destroy(w->kc);
		w->kc = NULL;
	}
}

static void resync(struct run *run)
{
	const struct kube_obj **all = NULL;
	size_t n = 0;

	if (kube_informer_list(run->c->inf[WATCH_KANARIES], &all, &n) < 0) {
		log_msg(LOG_WARNING, NULL, "resync: cannot read the Kanary cache; next time");
		return;
	}
	for (size_t i = 0; i < n; i++)
		queue_add(run->c->queue, all[i]->key);
	log_msg(LOG_DEBUG, NULL, "resync: %zu Kanaries queued", n);
	kube_objs_unref(all, n);
}

static int setup(struct run *run)
{
	const struct kube_config_options ko = {
	    .kubeconfig = run->o.kubeconfig,
	    .context = run->o.context,
	    .allow_http_token = run->o.allow_http_token,
	};
	struct kube_config_err err = {{0}};
	struct kube_logger lg = {.fn = log_kube, .ctx = NULL};
	int r;

	r = kube_config_load_options(&ko, &run->cfg, &err);
	if (r < 0) {
		log_msg(LOG_ERROR, NULL, "kubeconfig: %s",
		        err.msg[0]     ? err.msg
		        : r == -ENOENT ? "none found"
		                       : strerror(-r));
		return r;
	}
	kube_config_set_logger(run->cfg, &lg);
	log_msg(LOG_INFO, NULL, "API server %s (%s); watching %s", run->cfg->server,
	        run->cfg->origin ? run->cfg->origin : "?",
	        run->o.namespace ? run->o.namespace : "every namespace");
	r = lease_make_identity(run->identity, sizeof(run->identity));
	if (r == 0)
		r = controller_create(&run->o.ctl, run->cfg, run->identity, &run->c);
	if (r < 0)
		log_msg(LOG_ERROR, NULL, "setting up: %s", strerror(-r));
	return r;
}

static void on_lost(void *ctx)
{
	struct run *run = ctx;

	/* Stop writing now; the main thread exits 1, as client-go's users do. */
	atomic_store(&run->c->abort, true);
}

static int elect(struct run *run)
{
	struct lease_options lo = {
	    .cfg = run->cfg,
	    .namespace = run->o.lease_namespace ? run->o.lease_namespace
	                 : run->o.namespace     ? run->o.namespace
	                                        : run->cfg->namespace,
	    .name = run->o.lease_name,
	    .identity = run->identity,
	    .duration_ms = run->o.lease_ms,
	    .renew_deadline_ms = run->o.renew_ms,
	    .retry_period_ms = run->o.retry_ms,
	    .on_lost = on_lost,
	    .ctx = run,
	};
	int r = lease_create(&lo, &run->c->lease);

	if (r == 0)
		r = lease_start(run->c->lease);
	if (r < 0)
		log_msg(LOG_ERROR, NULL, "leader election: %s", strerror(-r));
	return r;
}

static void teardown(struct run *run)
{
	stop_workers(run);
	controller_stop(run->c);
	server_stop(run->metrics);
	server_stop(run->health);
	if (run->c) {
		lease_destroy(run->c->lease);
		run->c->lease = NULL;
	}
	controller_destroy(run->c);
	kube_config_destroy(run->cfg);
}

static int serve(struct run *run, const sigset_t *sigs)
{
	long long next_resync = 0;
	bool synced = false, working = false;
	int sig;

	for (;;) {
		sig = wait_signal(sigs);
		if (sig) {
			log_msg(LOG_INFO, NULL, "%s: finishing the current Kanary, then stopping",
			        sig == SIGTERM ? "SIGTERM" : "SIGINT");
			stop_workers(run);
			if (run->c->lease)
				lease_release(run->c->lease);
			return RUN_OK;
		}
		if (run->c->lease && lease_lost(run->c->lease)) {
			stop_workers(run);
			return RUN_FAILED;
		}
		if (!synced) {
			synced = watches_synced(run->c, NULL, 0);
			if (!synced)
				continue;
			log_msg(LOG_INFO, NULL, "caches synced");
			if (run->o.leader_elect && elect(run) < 0)
				return RUN_FAILED;
		}
		if (!working && controller_may_write(run->c)) {
			if (start_workers(run) < 0) {
				log_msg(LOG_ERROR, NULL, "cannot start the workers");
				return RUN_FAILED;
			}
			atomic_store(&run->leading, true);
			working = true;
			next_resync = monotonic_ms() + run->o.resync_ms;
			log_msg(LOG_INFO, NULL, "working with %d worker(s)", run->o.workers);
		}
		if (working && run->o.resync_ms > 0 && monotonic_ms() >= next_resync) {
			resync(run);
			next_resync = monotonic_ms() + run->o.resync_ms;
		}
	}
}

int cmd_run_main(int argc, char **argv)
{
	struct run *run;
	sigset_t sigs;
	int r, status = RUN_FAILED;

	/*
	 * glibc gives each thread that allocates an arena of its own (up to 8 per
	 * CPU), and an arena keeps what its thread freed. Informers and workers
	 * seldom allocate at the same moment: two arenas took a quarter off the
	 * resident memory at 1,000 Kanaries (bench/controller), at no cost in
	 * time. MALLOC_ARENA_MAX in the environment still wins.
	 */
	heap_limit_arenas(2);
	run = calloc(1, sizeof(*run));
	if (!run) {
		fprintf(stderr, "kanary-controller run: out of memory\n");
		return RUN_FAILED;
	}
	run->o.leader_elect = true;
	run->o.lease_ms = LEASE_DEFAULT_DURATION_MS;
	run->o.renew_ms = LEASE_DEFAULT_RENEW_DEADLINE_MS;
	run->o.retry_ms = LEASE_DEFAULT_RETRY_PERIOD_MS;
	run->o.lease_name = RUN_DEFAULT_LEASE_NAME;
	run->o.metrics_bind = RUN_DEFAULT_METRICS_BIND;
	run->o.health_bind = RUN_DEFAULT_HEALTH_BIND;
	run->o.resync_ms = RUN_DEFAULT_RESYNC_MS;
	run->o.workers = 1;
	run->o.ctl.batch_period_ms = RUN_DEFAULT_BATCH_MS;
	objects_options_init(&run->o.ctl.objects);
	r = parse_options(argc, argv, &run->o);
	if (r != 0) {
		status = r > 0 ? RUN_OK : RUN_USAGE;
		goto out_free;
	}
	run->o.ctl.namespace = run->o.namespace;
	atomic_init(&run->leading, false);
	log_set_verbosity(run->o.verbosity);

	/* Every thread started from here on inherits the mask: signals come to serve(). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (kube_global_init() < 0) {
		log_msg(LOG_ERROR, NULL, "cannot initialise libcurl");
		goto out_free;
	}
	if (setup(run) < 0 || controller_start(run->c) < 0 || start_servers(run) < 0)
		goto out_teardown;
	log_msg(LOG_INFO, NULL, "kanary-controller %s started as %s", KANARY_VERSION,
	        run->identity);
	status = serve(run, &sigs);
	log_msg(status == RUN_OK ? LOG_INFO : LOG_ERROR, NULL, "stopped (exit %d)", status);
out_teardown:
	teardown(run);
	kube_global_cleanup();
	goto out_free;
out_free:
	free(run);
	return status;
}
