/*
 * calls.c: logs and exec for a scheduler.
 *
 * Schedulers reach a container's logs and run commands in it through
 * calls on the host's call stream (berth_store_container_logs/_exec),
 * which the agent answers between assignments (looked for when none is
 * waiting, and at least every CALLS_EVERY_MS, 20 ms, while they keep
 * coming; main.c's loop).  An interactive session is handed to a thread
 * of its own (sessions.c).  It must never hold the loop for more than a
 * few calls per round, and never log a call's command or output.
 */
#include <stdlib.h>

#include "agent.h"

/* Answers the calls waiting for this host (at most a few per round, so
 * that assignments and supervision go on). */
void calls_serve(agent_t *a)
{
    for (int i = 0; i < 8; i++) {
        berth_call_t *c = NULL;
        berth_error_t err;
        int rc = berth_hostlink_call_next(a->link, &c, &err);
        if (rc < 0)
            log_warn(NULL, "calls unavailable: %s", err.message);
        if (rc != 1)
            return;
        char *out = NULL;
        size_t len = 0;
        int code = 0;
        berth_error_t failure;
        const agroup_t *cg = group_find(a, c->key);
        const char *rk = cg != NULL ? runtime_key(cg) : c->key;
        if (c->op == BERTH_CALL_SESSION) {
            log_info(c->key, "session in container %s: starting", c->container);
            session_start(a, c, rk);
            continue;
        }
        rc = c->op == BERTH_CALL_LOGS
            ? a->ops->logs(a->ctx, rk, c->container, c->tail, c->timestamps, &out, &len,
                           &failure)
            : a->ops->exec(a->ctx, rk, c->container, (const char *const *)c->argv,
                           c->argc, &out, &len, &code, &failure);
        log_info(c->key, "%s in container %s: %s", c->op == BERTH_CALL_LOGS ? "logs" : "exec",
                 c->container, rc == 0 ? "done" : failure.message);
        if (berth_hostlink_call_reply(a->link, c, out, len, code, rc == 0 ? NULL : &failure,
                                      &err) != 0)
            log_warn(c->key, "call not answered: %s", err.message);
        free(out);
        berth_call_free(c);
    }
}
