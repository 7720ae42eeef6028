/* SPDX-License-Identifier: Apache-2.0 */
/* The controller's parts, created and destroyed together: caches, index, queue, memos. */
#include "controller/controller.h"

#include <errno.h>
#include <stdlib.h>

#include "controller/reconcile.h"
#include "controller/watches.h"

int controller_create(const struct controller_options *o, struct kube_config *cfg,
                      const char *identity, struct controller **ret)
{
	const struct queue_options qo = {0};
	struct controller *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->o = *o;
	c->cfg = cfg;
	atomic_init(&c->abort, false);
	r = index_create(&c->idx);
	if (r == 0)
		r = queue_create(&qo, &c->queue);
	if (r == 0)
		r = metrics_create(&c->metrics);
	if (r == 0)
		r = kube_recorder_create(cfg,
		                         &(struct kube_recorder_options){
		                             .component = CONTROLLER_COMPONENT, .host = identity},
		                         &c->recorder);
	if (r == 0)
		r = kube_recorder_start(c->recorder);
	if (r == 0)
		r = reconcile_memos_create(&c->memos);
	if (r == 0)
		r = watches_create(c);
	if (r < 0) {
		controller_destroy(c);
		return r;
	}
	*ret = c;
	return 0;
}

int controller_start(struct controller *c)
{
	return watches_start(c);
}

void controller_stop(struct controller *c)
{
	if (c)
		watches_stop(c);
}

void controller_destroy(struct controller *c)
{
	if (!c)
		return;
	watches_destroy(c);
	kube_recorder_destroy(c->recorder);
	metrics_destroy(c->metrics);
	queue_destroy(c->queue);
	index_destroy(c->idx);
	reconcile_memos_destroy(c->memos);
	free(c);
}
