/* SPDX-License-Identifier: Apache-2.0 */
/* The offline `kanary-controller render` subcommand: the objects a Kanary would become. */
#include "controller/cmd_render.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/integer.h"
#include "common/kanary_check.h"
#include "common/io/input.h"
#include "common/kerr.h"
#include "common/limits.h"
#include "common/objects.h"
#include "common/render.h"
#include "common/yamlout.h"
#include "controller/state.h"

enum render_exit {
	RENDER_OK = 0,
	RENDER_INVALID = 1,
	RENDER_UNREADABLE = 2,
};

/* What render prints of each Kanary. */
enum render_what {
	RENDER_WHAT_OBJECTS = 0,
	RENDER_WHAT_CONFIG, /* --config-only: haproxy.cfg, the structure */
	RENDER_WHAT_STATE,  /* --state-only: state.json, what the agent applies */
};

enum render_opt {
	OPT_CONFIG_ONLY = 0x100,
	OPT_STATE_ONLY,
	OPT_PREVIOUS_STATE,
	OPT_IMAGE,
	OPT_IMAGE_PULL_POLICY,
	OPT_BIND,
	OPT_PROXY_PORT,
	OPT_PROBE_PORT,
	OPT_METRICS_PORT,
	OPT_RUNTIME_DIR,
};

static void render_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: kanary-controller render [-f FILE]... [--config-only|--state-only] [options]\n"
	    "\n"
	    "Prints exactly the objects the controller would apply for each Kanary in the\n"
	    "input (a YAML stream: the structure ConfigMap, the state ConfigMap, the agent's\n"
	    "ServiceAccount, Role and RoleBinding, Deployment, PodDisruptionBudget, Service),\n"
	    "with the Services and EndpointSlices of the input standing in for the cluster.\n"
	    "Input is YAML or JSON; standard input when no file is given.\n"
	    "\n"
	    "Options:\n"
	    "  -f, --filename FILE      read FILE (\"-\" for standard input); repeatable\n"
	    "  --config-only            print only haproxy.cfg, the structure (the input must\n"
	    "                           hold one Kanary)\n"
	    "  --state-only             print only state.json, the weights and endpoints the\n"
	    "                           agent applies (the input must hold one Kanary)\n"
	    "  --previous-state FILE    the state.json in force: routes keep its slots while\n"
	    "                           their endpoints fit, and the generation follows it\n"
	    "  --haproxy-image IMAGE    HAProxy image of the Deployment (default %s)\n"
	    "  --haproxy-image-pull-policy POLICY\n"
	    "                           Always, IfNotPresent or Never (default: unset)\n"
	    "  --bind-address ADDR      address HAProxy binds its listeners to (default: all)\n"
	    "  --proxy-port PORT        HAProxy's traffic port in the pod (default %d)\n"
	    "  --probe-port PORT        /healthz and /ready port (default %d)\n"
	    "  --metrics-port PORT      Prometheus /metrics port (default %d)\n"
	    "  --runtime-dir DIR        directory of HAProxy's admin socket, where the agent\n"
	    "                           applies the state (default /var/run/haproxy)\n"
	    "  -h, --help               show this help\n"
	    "\n"
	    "Exit status: 0 rendered, 1 a Kanary is invalid (every field error on standard\n"
	    "error, nothing on standard output), 2 unreadable input or bad options.\n",
	    OBJECTS_DEFAULT_IMAGE, RENDER_DEFAULT_PROXY_PORT, RENDER_DEFAULT_PROBE_PORT,
	    RENDER_DEFAULT_METRICS_PORT);
}

static int parse_port(const char *opt, const char *s, int *ret)
{
	long v;

	if (integer_parse(s, 1, 65535, &v) < 0) {
		fprintf(stderr, "kanary-controller render: %s: \"%s\" is not a port (1-65535)\n",
		        opt, s);
		return -EINVAL;
	}
	*ret = (int)v;
	return 0;
}

/*
 * Renders one checked Kanary into out: the YAML stream of its objects (the
 * structure ConfigMap, the state ConfigMap and the rest), or the structure's
 * haproxy.cfg alone, or the state's state.json alone. The slots and the
 * generation follow prev, the state in force (NULL: none), as in reconcile.
 */
static int render_one(const struct kanary *k, const struct kanary_resolution *res,
                      const struct objects_options *o, const struct json_object *prev,
                      enum render_what what, struct buf *out)
{
	struct json_object *objs = NULL, *state = NULL;
	int slots[KANARY_MAX_ROUTES];
	char *cfg = NULL, hash[65], hash8[9];
	const char *state_text;
	size_t len;
	int r;

	r = state_slots(k, res, prev, slots);
	if (r < 0)
		return r;
	r = render_structure(k, res, slots, &o->render, &cfg, &len);
	if (r < 0)
		return r;
	if (what == RENDER_WHAT_CONFIG) {
		r = buf_append(out, cfg, len);
		goto out_free_cfg;
	}
	r = render_hash(cfg, len, hash);
	if (r < 0)
		goto out_free_cfg;
	memcpy(hash8, hash, 8);
	hash8[8] = '\0';
	r = state_build(k, res, slots, hash8, prev, &state);
	if (r < 0)
		goto out_free_cfg;
	state_text = json_object_to_json_string_ext(state, JSON_C_TO_STRING_PLAIN);
	if (!state_text) {
		r = -ENOMEM;
		goto out_put_state;
	}
	if (what == RENDER_WHAT_STATE) {
		r = buf_printf(out, "%s\n", state_text);
		goto out_put_state;
	}
	r = objects_desired(k, cfg, hash, state_text, o, &objs);
	if (r < 0)
		goto out_put_state;
	for (size_t i = 0; r == 0 && i < json_object_array_length(objs); i++)
		r = yamlout_document(json_object_array_get_idx(objs, i), out);
	json_object_put(objs);
out_put_state:
	json_object_put(state);
out_free_cfg:
	free(cfg);
	return r;
}

/*
 * Checks and renders every Kanary in docs into out. Invalid ones and any
 * failure are reported on stderr here; returns 0 or -errno.
 */
static int render_all(struct json_object *docs, const struct catalog *cat,
                      const struct objects_options *o, const struct json_object *prev,
                      enum render_what what, struct buf *out, size_t *ret_kanaries,
                      size_t *ret_invalid)
{
	size_t nk = 0, ninvalid = 0;
	int r = 0;

	for (size_t i = 0; r == 0 && i < json_object_array_length(docs); i++) {
		const struct json_object *d = json_object_array_get_idx(docs, i);
		struct kanary_resolution res;
		struct kerr_list errs;
		struct kanary *k = NULL;
		unsigned defaulted;

		if (!kanary_is_kanary(d))
			continue;
		nk++;
		kerr_init(&errs);
		r = kanary_check(d, cat, KANARY_CHECK_REQUIRE_NAME, &k, &res, &defaulted, &errs);
		if (r < 0) {
			fprintf(stderr, "kanary-controller render: %s\n", strerror(-r));
			kerr_finish(&errs);
			break;
		}
		if (kerr_any(&errs)) {
			struct buf line;
			ninvalid++;
			buf_init(&line, KANARY_MAX_OUTPUT);
			r = kerr_join(&errs, "; ", &line);
			if (r == 0)
				fprintf(stderr, "%s/%s: invalid: %s\n", k->namespace,
				        k->name && k->name[0] ? k->name : "<no name>", line.data);
			buf_finish(&line);
		} else if (ninvalid == 0) {
			r = render_one(k, &res, o, prev, what, out);
			if (r < 0)
				fprintf(stderr, "kanary-controller render: %s/%s: %s\n",
				        k->namespace, k->name,
				        r == -E2BIG ? "output over the size limit" : strerror(-r));
		}
		kanary_resolution_finish(&res);
		kanary_destroy(k);
		kerr_finish(&errs);
	}
	*ret_kanaries = nk;
	*ret_invalid = ninvalid;
	return r;
}

int cmd_render_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"filename", required_argument, NULL, 'f'},
	    {"config-only", no_argument, NULL, OPT_CONFIG_ONLY},
	    {"state-only", no_argument, NULL, OPT_STATE_ONLY},
	    {"previous-state", required_argument, NULL, OPT_PREVIOUS_STATE},
	    {"haproxy-image", required_argument, NULL, OPT_IMAGE},
	    {"haproxy-image-pull-policy", required_argument, NULL, OPT_IMAGE_PULL_POLICY},
	    {"bind-address", required_argument, NULL, OPT_BIND},
	    {"proxy-port", required_argument, NULL, OPT_PROXY_PORT},
	    {"probe-port", required_argument, NULL, OPT_PROBE_PORT},
	    {"metrics-port", required_argument, NULL, OPT_METRICS_PORT},
	    {"runtime-dir", required_argument, NULL, OPT_RUNTIME_DIR},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct objects_options opts;
	struct json_object *docs = NULL, *prev = NULL;
	const char *prev_file = NULL, *why = NULL;
	struct catalog *cat = NULL;
	struct input_err ierr = {{0}};
	struct buf out;
	const char **files;
	size_t nfiles = 0, nk = 0, ninvalid = 0;
	enum render_what what = RENDER_WHAT_OBJECTS;
	int c, r, status = RENDER_UNREADABLE;

	objects_options_init(&opts);
	buf_init(&out, KANARY_MAX_OUTPUT);
	files = calloc((size_t)argc + 1, sizeof(*files));
	if (!files) {
		fprintf(stderr, "kanary-controller render: out of memory\n");
		return RENDER_UNREADABLE;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			files[nfiles++] = optarg;
			break;
		case OPT_CONFIG_ONLY:
		case OPT_STATE_ONLY:
			if (what != RENDER_WHAT_OBJECTS) {
				fprintf(stderr, "kanary-controller render: --config-only and "
				                "--state-only exclude each other\n");
				goto out_free_files;
			}
			what = c == OPT_CONFIG_ONLY ? RENDER_WHAT_CONFIG : RENDER_WHAT_STATE;
			break;
		case OPT_PREVIOUS_STATE:
			prev_file = optarg;
			break;
		case OPT_IMAGE:
			opts.image = optarg;
			break;
		case OPT_IMAGE_PULL_POLICY:
			if (!objects_pull_policy_valid(optarg)) {
				fprintf(stderr,
				        "kanary-controller render: --haproxy-image-pull-policy: "
				        "\"%s\" is "
				        "not Always, IfNotPresent or Never\n",
				        optarg);
				goto out_free_files;
			}
			opts.image_pull_policy = optarg;
			break;
		case OPT_BIND:
			opts.render.bind_address = optarg;
			break;
		case OPT_PROXY_PORT:
			if (parse_port("--proxy-port", optarg, &opts.render.proxy_port) < 0)
				goto out_free_files;
			break;
		case OPT_PROBE_PORT:
			if (parse_port("--probe-port", optarg, &opts.render.probe_port) < 0)
				goto out_free_files;
			break;
		case OPT_METRICS_PORT:
			if (parse_port("--metrics-port", optarg, &opts.render.metrics_port) < 0)
				goto out_free_files;
			break;
		case OPT_RUNTIME_DIR:
			/*
			 * No directory would render a structure without an admin
			 * socket, whose routes the agent could never fill.
			 */
			if (!optarg[0]) {
				fprintf(stderr, "kanary-controller render: --runtime-dir: \"\" is "
				                "not a directory; the agent applies the state "
				                "through the admin socket there\n");
				goto out_free_files;
			}
			opts.render.runtime_dir = optarg;
			break;
		case 'h':
			render_usage(stdout);
			status = RENDER_OK;
			goto out_free_files;
		default:
			render_usage(stderr);
			goto out_free_files;
		}
	}
	if (optind < argc) {
		fprintf(
		    stderr,
		    "kanary-controller render: unexpected argument \"%s\" (files go after -f)\n",
		    argv[optind]);
		goto out_free_files;
	}
	/* The objects need options the Deployment can run with; say which do not. */
	if (what == RENDER_WHAT_OBJECTS && objects_options_check(&opts, &why) < 0) {
		fprintf(stderr, "kanary-controller render: the HAProxy options do not fit: %s\n",
		        why);
		goto out_free_files;
	}
	if (prev_file) {
		prev = json_object_from_file(prev_file);
		if (!prev || !json_object_is_type(prev, json_type_object)) {
			fprintf(
			    stderr,
			    "kanary-controller render: --previous-state %s: not a JSON object\n",
			    prev_file);
			goto out_free_files;
		}
	}
	r = input_load("kanary-controller render", files, nfiles, &docs, &ierr);
	if (r < 0) {
		fprintf(stderr, "kanary-controller render: %s\n", ierr.msg);
		goto out_free_files;
	}
	r = catalog_create_from(docs, "default", &cat);
	if (r < 0) {
		fprintf(stderr, "kanary-controller render: %s\n", strerror(-r));
		goto out_destroy;
	}
	r = render_all(docs, cat, &opts, prev, what, &out, &nk, &ninvalid);
	if (r < 0)
		goto out_destroy; /* render_all said why */
	if (nk == 0) {
		fprintf(stderr,
		        "kanary-controller render: no Kanary (apiVersion %s) in the input\n",
		        KANARY_API_VERSION);
		goto out_destroy;
	}
	if (what != RENDER_WHAT_OBJECTS && nk > 1) {
		fprintf(stderr,
		        "kanary-controller render: --%s-only needs exactly one Kanary; the input "
		        "has %zu\n",
		        what == RENDER_WHAT_CONFIG ? "config" : "state", nk);
		goto out_destroy;
	}
	if (ninvalid > 0) {
		status = RENDER_INVALID;
		goto out_destroy;
	}
	if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
		fprintf(stderr, "kanary-controller render: writing the output: %s\n",
		        strerror(errno));
		goto out_destroy;
	}
	status = RENDER_OK;
out_destroy:
	catalog_destroy(cat);
	json_object_put(docs);
out_free_files:
	json_object_put(prev);
	free(files);
	buf_finish(&out);
	if (fflush(stdout) != 0 && status == RENDER_OK) {
		fprintf(stderr, "kanary-controller render: writing the output: %s\n",
		        strerror(errno));
		status = RENDER_UNREADABLE;
	}
	return status;
}
