/* SPDX-License-Identifier: Apache-2.0 */
/* Leader election on a coordination.k8s.io/v1 Lease. */
#include "controller/lease.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/io/monotonic.h"
#include "common/json_field.h"
#include "common/kube/client.h"
#include "common/limits.h"
#include "common/io/log.h"

struct lease {
	struct lease_options o;
	char *namespace, *name, *identity;
	char path[KANARY_MAX_URL];
	struct kube_client *client; /* the lease thread's, and lease_release's after it ends */

	pthread_t thread;
	bool started, joined;
	atomic_bool stop;
	atomic_bool leader;
	atomic_bool lost;
	pthread_mutex_t lock; /* with cond: the thread's sleeps, cut short by stop */
	pthread_cond_t cond;

	/* Lease thread only (and lease_release after the join). */
	struct json_object *observed; /* the last spec seen, or NULL */
	long long observed_at;        /* monotonic ms when it last changed */
	char rv[KANARY_MAX_RESOURCE_VERSION + 1];
	uint64_t rng;
};

/* metav1.MicroTime: "2006-01-02T15:04:05.000000Z". */
static void micro_time(char out[32])
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	/* The year fits four digits until 9999, so n is 19 and the rest fits. */
	snprintf(out + n, 32 - n, ".%06dZ", (int)(ts.tv_nsec / 1000) % 1000000);
}

int lease_make_identity(char *out, size_t size)
{
	char host[256];
	uint64_t rnd = 0;
	int fd, n;

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "kanary-controller");
	host[sizeof(host) - 1] = '\0';
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd))
			rnd = 0;
		close(fd);
	}
	if (rnd == 0)
		rnd = (uint64_t)monotonic_ms() ^ ((uint64_t)getpid() << 32);
	n = snprintf(out, size, "%s_%016llx", host, (unsigned long long)rnd);
	return n < 0 || (size_t)n >= size ? -E2BIG : 0;
}

int lease_create(const struct lease_options *o, struct lease **ret)
{
	struct kube_client_options co = {.component = "controller"};
	pthread_condattr_t ca;
	struct lease *l;
	int r;

	if (!o->cfg || !o->namespace || !o->name || !o->identity || o->retry_period_ms <= 0 ||
	    o->renew_deadline_ms <= o->retry_period_ms || o->duration_ms <= o->renew_deadline_ms)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->o = *o;
	l->namespace = strdup(o->namespace);
	l->name = strdup(o->name);
	l->identity = strdup(o->identity);
	if (!l->namespace || !l->name || !l->identity) {
		r = -ENOMEM;
		goto out_free;
	}
	l->o.namespace = l->namespace;
	l->o.name = l->name;
	l->o.identity = l->identity;
	r = kube_path(l->path, sizeof(l->path), "coordination.k8s.io", "v1", "leases", l->namespace,
	              l->name, NULL);
	if (r < 0)
		goto out_free;
	/* A renewal that hangs must not outlast the deadline it is racing. */
	co.request_timeout_ms = o->renew_deadline_ms / 2 > 1000 ? o->renew_deadline_ms / 2 : 1000;
	co.connect_timeout_ms = co.request_timeout_ms;
	r = kube_client_create(o->cfg, &co, &l->client);
	if (r < 0)
		goto out_free;
	atomic_init(&l->stop, false);
	atomic_init(&l->leader, false);
	atomic_init(&l->lost, false);
	kube_client_set_abort(l->client, &l->stop);
	r = -ENOMEM;
	if (pthread_mutex_init(&l->lock, NULL) != 0)
		goto out_client;
	if (pthread_condattr_init(&ca) != 0)
		goto out_lock;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&l->cond, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto out_lock;
	}
	pthread_condattr_destroy(&ca);
	l->rng = (uint64_t)monotonic_ms() * 0x9E3779B97F4A7C15ULL + (uint64_t)(uintptr_t)l;
	*ret = l;
	return 0;
out_lock:
	pthread_mutex_destroy(&l->lock);
out_client:
	kube_client_destroy(l->client);
out_free:
	free(l->namespace);
	free(l->name);
	free(l->identity);
	free(l);
	return r;
}

/* Remembers spec and, when it changed, the local time it did. spec is borrowed. */
static void observe(struct lease *l, const struct json_object *spec, long long now)
{
	struct json_object *copy = NULL;

	if (l->observed && spec && json_object_equal((struct json_object *)spec, l->observed))
		return;
	if (spec && json_object_deep_copy((struct json_object *)spec, &copy, NULL) != 0)
		copy = NULL;
	json_object_put(l->observed);
	l->observed = copy;
	l->observed_at = now;
}

/* The Lease we write: holder, duration, times and transitions. */
static struct json_object *lease_object(const struct lease *l, const char *holder, int64_t dur_s,
                                        const char *acquire, const char *renew, int64_t transitions,
                                        const char *rv)
{
	struct json_object *o = json_object_new_object();
	struct json_object *md = json_object_new_object();
	struct json_object *spec = json_object_new_object();

	if (!o || !md || !spec)
		goto out_nomem;
	if (json_object_object_add(o, "apiVersion",
	                           json_object_new_string("coordination.k8s.io/v1")) ||
	    json_object_object_add(o, "kind", json_object_new_string("Lease")) ||
	    json_object_object_add(md, "name", json_object_new_string(l->name)) ||
	    json_object_object_add(md, "namespace", json_object_new_string(l->namespace)) ||
	    (rv && json_object_object_add(md, "resourceVersion", json_object_new_string(rv))) ||
	    json_object_object_add(spec, "holderIdentity", json_object_new_string(holder)) ||
	    json_object_object_add(spec, "leaseDurationSeconds", json_object_new_int64(dur_s)) ||
	    json_object_object_add(spec, "acquireTime", json_object_new_string(acquire)) ||
	    json_object_object_add(spec, "renewTime", json_object_new_string(renew)) ||
	    json_object_object_add(spec, "leaseTransitions", json_object_new_int64(transitions)))
		goto out_nomem;
	if (json_object_object_add(o, "metadata", md)) {
		md = NULL;
		goto out_nomem;
	}
	md = NULL;
	if (json_object_object_add(o, "spec", spec)) {
		spec = NULL;
		goto out_nomem;
	}
	return o;
out_nomem:
	json_object_put(spec);
	json_object_put(md);
	json_object_put(o);
	return NULL;
}

static int64_t duration_s(const struct lease *l)
{
	int64_t s = l->o.duration_ms / 1000;

	return s >= 1 ? s : 1;
}

/* Remembers the resourceVersion of what the server returned; "" when none. */
static void keep_rv(struct lease *l, const struct json_object *obj)
{
	struct json_object *md, *rv;

	l->rv[0] = '\0';
	if (obj && json_object_object_get_ex(obj, "metadata", &md) &&
	    json_object_object_get_ex(md, "resourceVersion", &rv) &&
	    json_object_is_type(rv, json_type_string) &&
	    strlen(json_object_get_string(rv)) <= KANARY_MAX_RESOURCE_VERSION)
		memcpy(l->rv, json_object_get_string(rv), strlen(json_object_get_string(rv)) + 1);
}

/* client-go's tryAcquireOrRenew: true when we hold the Lease now. */
static bool try_acquire_or_renew(struct lease *l)
{
	struct json_object *cur = NULL, *spec = NULL, *want = NULL, *got = NULL, *wspec;
	struct kube_result res;
	char now_s[32];
	const char *holder, *acquire;
	long long now = monotonic_ms();
	bool mine, ok = false;
	int r;

	micro_time(now_s);
	r = kube_get(l->client, l->path, &cur, &res);
	if (r == -ENOENT) {
		char coll[KANARY_MAX_URL];

		want = lease_object(l, l->identity, duration_s(l), now_s, now_s, 0, NULL);
		if (!want || kube_path(coll, sizeof(coll), "coordination.k8s.io", "v1", "leases",
		                       l->namespace, NULL, NULL) < 0)
			goto out;
		r = kube_create(l->client, coll, want, &got, &res);
		if (r < 0) {
			log_msg(LOG_DEBUG, NULL, "lease %s/%s: create: %s", l->namespace, l->name,
			        res.message);
			goto out;
		}
		goto won;
	}
	if (r < 0) {
		log_msg(LOG_WARNING, NULL, "lease %s/%s: get: %s (%s); trying again in %ld ms",
		        l->namespace, l->name, kube_reason_name(res.reason), res.message,
		        l->o.retry_period_ms);
		goto out;
	}
	json_object_object_get_ex(cur, "spec", &spec);
	observe(l, spec, now);
	keep_rv(l, cur);
	holder = json_field_str(spec, "holderIdentity");
	mine = holder && strcmp(holder, l->identity) == 0;
	/* Someone else's, and their record moved within the lease duration by our clock. */
	if (holder && holder[0] && !mine && now < l->observed_at + l->o.duration_ms)
		goto out;
	acquire = mine && json_field_str(spec, "acquireTime") ? json_field_str(spec, "acquireTime")
	                                                      : now_s;
	want = lease_object(l, l->identity, duration_s(l), acquire, now_s,
	                    json_field_int_or(spec, "leaseTransitions", 0) + (mine ? 0 : 1), l->rv);
	if (!want)
		goto out;
	r = kube_update(l->client, l->path, want, &got, &res);
	if (r < 0) {
		log_msg(r == -EBUSY ? LOG_DEBUG : LOG_WARNING, NULL, "lease %s/%s: update: %s (%s)",
		        l->namespace, l->name, kube_reason_name(res.reason), res.message);
		goto out;
	}
won:
	if (json_object_object_get_ex(got, "spec", &wspec))
		observe(l, wspec, monotonic_ms());
	keep_rv(l, got);
	ok = true;
out:
	json_object_put(got);
	json_object_put(want);
	json_object_put(cur);
	return ok;
}

/* Sleeps ms, or less when stopped. */
static void lease_sleep(struct lease *l, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&l->lock);
	while (!atomic_load(&l->stop))
		if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&l->lock);
}

/* client-go's JitterUntil(RetryPeriod, 1.2): candidates spread their tries. */
static long jittered(struct lease *l, long ms)
{
	uint64_t x = l->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	l->rng = x;
	return ms + (long)((x * 0x2545F4914F6CDD1DULL) % (uint64_t)(ms * 12 / 10 + 1));
}

static void *lease_thread(void *arg)
{
	struct lease *l = arg;
	long long last_renew;

	log_msg(LOG_INFO, NULL, "lease %s/%s: trying to become leader as %s", l->namespace, l->name,
	        l->identity);
	while (!atomic_load(&l->stop)) {
		if (try_acquire_or_renew(l))
			break;
		lease_sleep(l, jittered(l, l->o.retry_period_ms));
	}
	if (atomic_load(&l->stop))
		return NULL;
	atomic_store(&l->leader, true);
	log_msg(LOG_INFO, NULL, "lease %s/%s: became leader as %s", l->namespace, l->name,
	        l->identity);
	if (l->o.on_started)
		l->o.on_started(l->o.ctx);
	last_renew = monotonic_ms();
	while (!atomic_load(&l->stop)) {
		lease_sleep(l, l->o.retry_period_ms);
		if (atomic_load(&l->stop))
			break;
		if (try_acquire_or_renew(l)) {
			last_renew = monotonic_ms();
			continue;
		}
		if (atomic_load(&l->stop))
			break;
		if (monotonic_ms() - last_renew >= l->o.renew_deadline_ms) {
			atomic_store(&l->leader, false);
			atomic_store(&l->lost, true);
			log_msg(LOG_ERROR, NULL,
			        "lease %s/%s: leadership lost: no renewal for %lld ms (deadline "
			        "%ld ms)",
			        l->namespace, l->name, monotonic_ms() - last_renew,
			        l->o.renew_deadline_ms);
			if (l->o.on_lost)
				l->o.on_lost(l->o.ctx);
			break;
		}
	}
	return NULL;
}

int lease_start(struct lease *l)
{
	if (l->started)
		return -EALREADY;
	if (pthread_create(&l->thread, NULL, lease_thread, l) != 0)
		return -EAGAIN;
	l->started = true;
	return 0;
}

bool lease_is_leader(struct lease *l)
{
	return atomic_load(&l->leader);
}

bool lease_lost(struct lease *l)
{
	return atomic_load(&l->lost);
}

static void stop_thread(struct lease *l)
{
	if (!l->started || l->joined)
		return;
	pthread_mutex_lock(&l->lock);
	atomic_store(&l->stop, true);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	l->joined = true;
}

int lease_release(struct lease *l)
{
	struct json_object *want;
	struct kube_result res;
	char now_s[32];
	const char *holder;
	int r;

	stop_thread(l);
	if (!atomic_load(&l->leader))
		return 0;
	atomic_store(&l->leader, false);
	/* The thread's abort flag is up; this last write needs the client back. */
	kube_client_set_abort(l->client, NULL);
	holder = json_field_str(l->observed, "holderIdentity");
	if (!holder || strcmp(holder, l->identity) != 0 || !l->rv[0])
		return 0;
	micro_time(now_s);
	want = lease_object(l, "", 1, now_s, now_s,
	                    json_field_int_or(l->observed, "leaseTransitions", 0), l->rv);
	if (!want)
		return -ENOMEM;
	r = kube_update(l->client, l->path, want, NULL, &res);
	json_object_put(want);
	if (r < 0) {
		log_msg(LOG_WARNING, NULL, "lease %s/%s: release: %s (%s)", l->namespace, l->name,
		        kube_reason_name(res.reason), res.message);
		return r;
	}
	log_msg(LOG_INFO, NULL, "lease %s/%s: released", l->namespace, l->name);
	return 0;
}

void lease_destroy(struct lease *l)
{
	if (!l)
		return;
	stop_thread(l);
	kube_client_destroy(l->client);
	json_object_put(l->observed);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l->namespace);
	free(l->name);
	free(l->identity);
	free(l);
}
