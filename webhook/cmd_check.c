/* SPDX-License-Identifier: Apache-2.0 */
/* The offline `kanary-webhook check` subcommand: would admission accept these Kanaries. */
#include "webhook/cmd_check.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/buf.h"
#include "common/kanary_check.h"
#include "common/io/input.h"
#include "common/kerr.h"
#include "common/limits.h"

enum check_exit {
	CHECK_ALLOWED = 0,
	CHECK_DENIED = 1,
	CHECK_UNREADABLE = 2,
};

static void check_usage(FILE *out)
{
	fprintf(out,
	        "Usage: kanary-webhook check [-f FILE]...\n"
	        "\n"
	        "Checks every Kanary in the input exactly as the admission webhook would:\n"
	        "defaults, validation, and the lookup of each backend Service and port, with\n"
	        "the Services and EndpointSlices of the input standing in for the cluster.\n"
	        "Input is YAML or JSON, one or more documents per file (a `kind: List` counts\n"
	        "as its items); standard input when no file is given.\n"
	        "\n"
	        "Prints one line per Kanary:\n"
	        "  <namespace>/<name>: allowed\n"
	        "  <namespace>/<name>: denied: <every field error, separated by \"; \">\n"
	        "\n"
	        "Options:\n"
	        "  -f, --filename FILE  read FILE (\"-\" for standard input); repeatable\n"
	        "  -h, --help           show this help\n"
	        "\n"
	        "Exit status: 0 every Kanary allowed, 1 any denied, 2 unreadable input\n"
	        "(including input with no Kanary at all).\n");
}

/* Prints the verdict line for one Kanary and says whether it was allowed; 0 or -errno. */
static int check_one(const struct json_object *obj, const struct catalog *cat, bool *ret_allowed)
{
	struct kanary_resolution res;
	struct kerr_list errs;
	struct kanary *k = NULL;
	struct buf line;
	unsigned defaulted;
	int r;

	kerr_init(&errs);
	buf_init(&line, KANARY_MAX_OUTPUT);
	r = kanary_check(obj, cat, KANARY_CHECK_REQUIRE_NAME, &k, &res, &defaulted, &errs);
	if (r < 0)
		goto out_finish;
	r = buf_printf(&line, "%s/%s: ", k->namespace,
	               k->name && k->name[0] ? k->name : "<no name>");
	if (r == 0 && !kerr_any(&errs))
		r = buf_puts(&line, "allowed");
	if (r == 0 && kerr_any(&errs)) {
		r = buf_puts(&line, "denied: ");
		if (r == 0)
			r = kerr_join(&errs, "; ", &line);
	}
	if (r == 0) {
		puts(line.data);
		*ret_allowed = !kerr_any(&errs);
	}
	kanary_resolution_finish(&res);
	kanary_destroy(k);
out_finish:
	buf_finish(&line);
	kerr_finish(&errs);
	return r;
}

int cmd_check_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"filename", required_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct json_object *docs = NULL;
	struct catalog *cat = NULL;
	struct input_err ierr = {{0}};
	const char **files;
	size_t nfiles = 0, nkanary = 0;
	bool all_allowed = true;
	int c, r, status = CHECK_UNREADABLE;

	files = calloc((size_t)argc + 1, sizeof(*files));
	if (!files) {
		fprintf(stderr, "kanary-webhook check: out of memory\n");
		return CHECK_UNREADABLE;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			files[nfiles++] = optarg;
			break;
		case 'h':
			check_usage(stdout);
			status = CHECK_ALLOWED;
			goto out_free_files;
		default:
			check_usage(stderr);
			goto out_free_files;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
		        "kanary-webhook check: unexpected argument \"%s\" (files go after -f)\n",
		        argv[optind]);
		goto out_free_files;
	}
	r = input_load("kanary-webhook check", files, nfiles, &docs, &ierr);
	if (r < 0) {
		fprintf(stderr, "kanary-webhook check: %s\n", ierr.msg);
		goto out_free_files;
	}
	r = catalog_create_from(docs, "default", &cat);
	for (size_t i = 0; r >= 0 && i < json_object_array_length(docs); i++) {
		const struct json_object *d = json_object_array_get_idx(docs, i);
		bool allowed = false;
		if (!kanary_is_kanary(d))
			continue;
		nkanary++;
		r = check_one(d, cat, &allowed);
		if (!allowed)
			all_allowed = false;
	}
	if (r < 0) {
		fprintf(stderr, "kanary-webhook check: %s\n", strerror(-r));
		goto out_destroy;
	}
	if (nkanary == 0) {
		fprintf(stderr, "kanary-webhook check: no Kanary (apiVersion %s) in the input\n",
		        KANARY_API_VERSION);
		goto out_destroy;
	}
	status = all_allowed ? CHECK_ALLOWED : CHECK_DENIED;
out_destroy:
	catalog_destroy(cat);
	json_object_put(docs);
out_free_files:
	free(files);
	if (fflush(stdout) != 0 && status != CHECK_UNREADABLE) {
		fprintf(stderr, "kanary-webhook check: writing the output: %s\n", strerror(errno));
		status = CHECK_UNREADABLE;
	}
	return status;
}
