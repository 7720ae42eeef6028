/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the event recorder's queue: kube_record never waits for the API server. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/kube/config.h"
#include "common/kube/events.h"

/*
 * The API server here is a TCP socket that listens and never accepts: the
 * kernel completes the handshake, the request goes out, no answer ever
 * comes. That is an API server at its slowest, with no behaviour to imitate.
 */
struct silent_server {
	int fd;
	char dir[64];
	char kubeconfig[128];
};

/* What the recorder logged, kept for the assertions (the writer thread logs too). */
struct logged {
	pthread_mutex_t lock;
	char lines[16][512];
	size_t n;
};

static void capture(void *ctx, enum kube_log_level level, const char *msg)
{
	struct logged *l = ctx;

	pthread_mutex_lock(&l->lock);
	if (l->n < sizeof(l->lines) / sizeof(l->lines[0]))
		snprintf(l->lines[l->n++], sizeof(l->lines[0]), "%s", msg);
	pthread_mutex_unlock(&l->lock);
}

static size_t logged_with(struct logged *l, const char *part)
{
	size_t n = 0;

	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->n; i++)
		if (strstr(l->lines[i], part))
			n++;
	pthread_mutex_unlock(&l->lock);
	return n;
}

static void silent_server_start(struct silent_server *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	FILE *f;

	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 16), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	snprintf(s->dir, sizeof(s->dir), "/tmp/kanary-events-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->kubeconfig, sizeof(s->kubeconfig), "%s/kubeconfig", s->dir);
	f = fopen(s->kubeconfig, "w");
	assert_non_null(f);
	fprintf(f,
	        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
	        "clusters: [{name: k, cluster: {server: \"http://127.0.0.1:%u\"}}]\n"
	        "users: [{name: u, user: {}}]\n"
	        "contexts: [{name: c, context: {cluster: k, user: u}}]\n",
	        (unsigned)ntohs(a.sin_port));
	assert_int_equal(fclose(f), 0);
}

static void silent_server_stop(struct silent_server *s)
{
	close(s->fd);
	unlink(s->kubeconfig);
	rmdir(s->dir);
}

struct world {
	struct silent_server server;
	struct kube_config *cfg;
	struct logged log;
	struct json_object *obj;
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct kube_config_err err = {{0}};
	const char *path;
	struct kube_logger lg;

	assert_non_null(w);
	pthread_mutex_init(&w->log.lock, NULL);
	silent_server_start(&w->server);
	path = w->server.kubeconfig;
	assert_int_equal(kube_config_from_kubeconfig(&path, 1, NULL, &w->cfg, &err), 0);
	lg = (struct kube_logger){.fn = capture, .ctx = &w->log};
	kube_config_set_logger(w->cfg, &lg);
	w->obj = json_tokener_parse("{\"apiVersion\":\"kanary.pyxida.io/v1alpha1\",\"kind\":"
	                            "\"Kanary\",\"metadata\":{\"name\":\"myapp\",\"namespace\":"
	                            "\"shop\",\"uid\":\"u-1\"}}");
	assert_non_null(w->obj);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	json_object_put(w->obj);
	kube_config_destroy(w->cfg);
	silent_server_stop(&w->server);
	pthread_mutex_destroy(&w->log.lock);
	free(w);
	return 0;
}

static struct kube_recorder *recorder(struct world *w, size_t queue_size)
{
	struct kube_recorder_options o = {
	    .component = "kanary-test", .host = "here", .queue_size = queue_size};
	struct kube_recorder *rec = NULL;

	assert_int_equal(kube_recorder_create(w->cfg, &o, &rec), 0);
	return rec;
}

static void stats(struct kube_recorder *rec, struct kube_recorder_stats *st)
{
	kube_recorder_stats(rec, st);
}

static void record_drops_and_counts_when_the_queue_is_full(void **state)
{
	struct world *w = *state;
	struct kube_recorder *rec = recorder(w, 4);
	struct kube_recorder_stats st;

	/* No writer yet: every Event waits in the queue, and the queue holds four. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(
		    kube_record(rec, w->obj, KUBE_RECORD_WARNING, "ApplyConflict", "try %d", i), 0);
	for (int i = 4; i < 10; i++)
		assert_int_equal(
		    kube_record(rec, w->obj, KUBE_RECORD_WARNING, "ApplyConflict", "try %d", i),
		    -ENOSPC);
	stats(rec, &st);
	assert_int_equal(st.queued, 4);
	assert_int_equal(st.queue_size, 4);
	assert_int_equal(st.queue_dropped, 6);
	assert_int_equal(st.recorded, 4);
	assert_int_equal(st.created + st.patched + st.failed + st.dropped, 0);
	/* One line for the run of drops, naming the first Event dropped; not one per drop. */
	assert_int_equal(logged_with(&w->log, "event queue full"), 1);
	assert_int_equal(logged_with(&w->log, "Warning ApplyConflict for Kanary shop/myapp"), 1);
	/* An object the Event cannot name is refused before it is queued. */
	json_object_object_del(w->obj, "kind");
	assert_int_equal(kube_record(rec, w->obj, KUBE_RECORD_NORMAL, "X", "y"), -EINVAL);
	stats(rec, &st);
	assert_int_equal(st.queue_dropped, 6);
	kube_recorder_destroy(rec);
	/* What never was written is said when the recorder goes. */
	assert_int_equal(logged_with(&w->log, "4 events dropped: the recorder stopped first"), 1);
	kube_recorder_destroy(NULL);
}

/* Until the writer took every queued Event (it is then inside its API call). */
static void wait_for_the_writer_to_take_all(struct kube_recorder *rec)
{
	struct kube_recorder_stats st;

	for (long i = 0; i < 100000000L; i++) {
		stats(rec, &st);
		if (st.queued == 0)
			return;
		sched_yield();
	}
	fail_msg("the writer never took the queued Event");
}

static void record_never_waits_for_a_silent_api_server(void **state)
{
	struct world *w = *state;
	struct kube_recorder *rec = recorder(w, 3);
	struct kube_recorder_stats st;

	assert_int_equal(kube_recorder_start(rec), 0);
	assert_int_equal(kube_recorder_start(rec), -EALREADY);
	assert_int_equal(kube_record(rec, w->obj, KUBE_RECORD_NORMAL, "Applied", "first"), 0);
	wait_for_the_writer_to_take_all(rec);
	/*
	 * The writer waits for an answer that never comes. Recording goes on
	 * regardless: three more fill the queue, the next ones are dropped, and
	 * every call returns (a call that waited for the server would hang here
	 * until the test's timeout).
	 */
	for (int i = 0; i < 3; i++)
		assert_int_equal(kube_record(rec, w->obj, KUBE_RECORD_NORMAL, "Applied", "%d", i),
		                 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(
		    kube_record(rec, w->obj, KUBE_RECORD_WARNING, "ApplyConflict", "%d", i),
		    -ENOSPC);
	stats(rec, &st);
	assert_int_equal(st.queued, 3);
	assert_int_equal(st.queue_dropped, 100);
	assert_int_equal(st.created + st.patched, 0);
	assert_int_equal(logged_with(&w->log, "event queue full"), 1);
	/* Stopping does not wait for the server either: the write in flight is cut. */
	kube_recorder_destroy(rec);
	assert_int_equal(logged_with(&w->log, "events dropped: the recorder stopped first"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(record_drops_and_counts_when_the_queue_is_full, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(record_never_waits_for_a_silent_api_server, setup,
	                                    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
