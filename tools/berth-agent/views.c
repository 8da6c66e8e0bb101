/*
 * views.c: the instance view, and the events it shows.
 *
 * A group's view is what the cell shows of it (ACI's instanceView: the
 * group's state and events, each container's current and previous state,
 * restart count and events).  It is rendered only when something it shows
 * may have changed (view_touch(), event_add(), and the state readers of
 * supervise.c mark it so) and written only when its text differs from the
 * last one written; after a restart of the agent the restart counts and
 * events are read back from the last view written.  It must never skip
 * writing a view whose text changed, and never put a secret in a view.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent.h"

/* Marks that something the group's view shows may have changed: the view
 * is rendered again at the end of the tick (and written if it differs). */
void view_touch(agroup_t *g)
{
    g->view_stale = true;
}

/* Records an event in ev, one of g's lists (the group's or a
 * container's); the same name and message again only counts up.  Either
 * way the view shows it: g's view is touched. */
void event_add(agroup_t *g, events_t *ev, const char *name, const char *type,
               const char *fmt, ...)
{
    view_touch(g);
    char msg[sizeof ev->e[0].message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int64_t now = berth__clock_wall_ms();
    for (size_t i = 0; i < ev->n; i++) {
        event_t *e = &ev->e[i];
        if (strcmp(e->name, name) == 0 && strcmp(e->message, msg) == 0) {
            e->count++;
            e->last_ms = now;
            return;
        }
    }
    if (ev->n == EVENTS_MAX) {
        memmove(&ev->e[0], &ev->e[1], (EVENTS_MAX - 1) * sizeof ev->e[0]);
        ev->n--;
    }
    event_t *e = &ev->e[ev->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->type, sizeof e->type, "%s", type);
    snprintf(e->message, sizeof e->message, "%s", msg);
    e->count = 1;
    e->first_ms = e->last_ms = now;
}

/* ---- the instance view ------------------------------------------------------------ */

static json_t *events_json(const events_t *ev)
{
    json_t *arr = json_array();
    char first[40], last[40];
    for (size_t i = 0; arr != NULL && i < ev->n; i++) {
        const event_t *e = &ev->e[i];
        berth__clock_format_iso8601(e->first_ms, first, sizeof first);
        berth__clock_format_iso8601(e->last_ms, last, sizeof last);
        json_array_append_new(arr, json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "count",
                                             (json_int_t)e->count, "firstTimestamp", first,
                                             "lastTimestamp", last, "name", e->name,
                                             "message", e->message, "type", e->type));
    }
    return arr;
}

static void events_load(events_t *ev, json_t *arr)
{
    size_t i;
    json_t *x;
    ev->n = 0;
    json_array_foreach(arr, i, x) {
        if (ev->n == EVENTS_MAX)
            break;
        event_t *e = &ev->e[ev->n];
        const char *name = json_string_value(json_object_get(x, "name"));
        const char *type = json_string_value(json_object_get(x, "type"));
        const char *msg = json_string_value(json_object_get(x, "message"));
        if (name == NULL || type == NULL || msg == NULL)
            continue;
        snprintf(e->name, sizeof e->name, "%s", name);
        snprintf(e->type, sizeof e->type, "%s", type);
        snprintf(e->message, sizeof e->message, "%s", msg);
        e->count = (uint32_t)json_integer_value(json_object_get(x, "count"));
        e->first_ms = e->last_ms = berth__clock_wall_ms();
        ev->n++;
    }
}

static const char *state_name(berth_container_state_t s)
{
    return s == BERTH_CONTAINER_RUNNING ? "Running"
         : s == BERTH_CONTAINER_TERMINATED ? "Terminated" : "Waiting";
}

static json_t *cstate_json(const berth_container_status_t *s)
{
    json_t *o = json_object();
    char t[40];
    json_object_set_new(o, "state", json_string(state_name(s->state)));
    if (s->started_ms > 0) {
        berth__clock_format_iso8601(s->started_ms, t, sizeof t);
        json_object_set_new(o, "startTime", json_string(t));
    }
    if (s->state == BERTH_CONTAINER_TERMINATED) {
        json_object_set_new(o, "exitCode", json_integer(s->exit_code));
        if (s->finished_ms > 0) {
            berth__clock_format_iso8601(s->finished_ms, t, sizeof t);
            json_object_set_new(o, "finishTime", json_string(t));
        }
    }
    json_object_set_new(o, "detailStatus", json_string(s->detail));
    return o;
}

static bool restart_pending(const agroup_t *g)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->c[i].next_start_ms != 0)
            return true;
    return false;
}

/* The group's state in ACI's words.  A group whose containers keep
 * exiting under restartPolicy Always (or failing under OnFailure) is
 * Running, as in ACI, never Succeeded or Failed: it has not finished, its
 * containers are in back-off, about to run again, or starting again. */
static const char *group_state(const agroup_t *g)
{
    if (g->phase == PHASE_FAILED)
        return "Failed";
    if (g->phase != PHASE_RUN)
        return "Pending";
    size_t first = g->spec->ninit_containers;
    bool any_running = false, restarting = false, all_ok = true;
    for (size_t i = first; i < g->n; i++) {
        const berth_container_status_t *s = &g->c[i].cur;
        if (s->state == BERTH_CONTAINER_RUNNING)
            any_running = true;
        else if (s->state != BERTH_CONTAINER_TERMINATED && g->c[i].restart_count == 0)
            return "Pending";
        else if (s->state != BERTH_CONTAINER_TERMINATED || policy_restarts(g, s->exit_code))
            restarting = true;
        else if (s->exit_code != 0)
            all_ok = false;
    }
    if (any_running || restarting || restart_pending(g))
        return "Running";
    return all_ok ? "Succeeded" : "Failed";
}

/* A container in back-off (terminated, its restart due later) as ACI shows
 * one: currentState Waiting, "CrashLoopBackOff"; the run that ended is its
 * previousState. */
static bool in_backoff(const cview_t *c)
{
    return c->next_start_ms != 0 && c->cur.state == BERTH_CONTAINER_TERMINATED;
}

static json_t *backoff_state_json(void)
{
    return json_pack("{s:s,s:s}", "state", "Waiting", "detailStatus",
                     "CrashLoopBackOff: Back-off restarting failed container");
}

static char *view_render(const agent_t *a, const agroup_t *g)
{
    char digest[24];
    snprintf(digest, sizeof digest, "%016" PRIx64, g->digest);
    json_t *v = json_pack("{s:s,s:I,s:s,s:s}", "host", a->o.host, "generation",
                          (json_int_t)g->generation, "digest", digest, "provisioningState",
                          g->provisioning);
    /* When it got there: an operation's endTime (berthd's reads.c). */
    if (g->provisioned_ms > 0 && strcmp(g->provisioning, "Creating") != 0)
        json_object_set_new(v, "stateTime", json_integer(g->provisioned_ms));
    json_object_set_new(v, "instanceView",
                        json_pack("{s:s,s:o}", "state", group_state(g), "events",
                                  events_json(&g->ev)));
    if (g->st.exists && (g->st.ip[0] != '\0' || g->st.nports > 0)) {
        json_t *ports = json_array();
        for (size_t i = 0; i < g->st.nports; i++) {
            const berth_published_port_t *p = &g->st.ports[i];
            json_array_append_new(ports, json_pack("{s:I,s:s,s:s,s:I}", "port",
                                                   (json_int_t)p->port, "protocol",
                                                   p->protocol == BERTH_PROTOCOL_UDP ? "UDP"
                                                                                     : "TCP",
                                                   "hostIp", p->host_ip, "hostPort",
                                                   (json_int_t)p->host_port));
        }
        json_object_set_new(v, "ipAddress",
                            json_pack("{s:s,s:o}", "ip", g->st.ip, "ports", ports));
    }
    json_t *inits = json_array(), *ctrs = json_array();
    for (size_t i = 0; i < g->n; i++) {
        const cview_t *c = &g->c[i];
        bool backoff = in_backoff(c);
        json_t *iv = json_pack("{s:I,s:o,s:o}", "restartCount", (json_int_t)c->restart_count,
                               "currentState",
                               backoff ? backoff_state_json() : cstate_json(&c->cur), "events",
                               events_json(&c->ev));
        if (backoff)
            json_object_set_new(iv, "previousState", cstate_json(&c->cur));
        else if (c->has_prev)
            json_object_set_new(iv, "previousState", cstate_json(&c->prev));
        json_array_append_new(c->is_init ? inits : ctrs,
                              json_pack("{s:s,s:o}", "name", c->name, "instanceView", iv));
    }
    json_object_set_new(v, "initContainers", inits);
    json_object_set_new(v, "containers", ctrs);
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(v);
    return s;
}

/* Renders the view and writes it when its text changed.  A view the cell
 * refuses (the group moved on) is dropped quietly: the next assignment
 * says what to do.  The view stays stale when it could not be rendered or
 * written, so that the next tick tries again. */
void view_write(agent_t *a, agroup_t *g)
{
    char *v = view_render(a, g);
    if (v == NULL)
        return;
    if (g->last_view != NULL && strcmp(g->last_view, v) == 0) {
        free(v);
        g->view_stale = false;
        return;
    }
    berth_error_t err;
    int rc = berth_hostlink_view_put(a->link, g->key, g->generation, v, &err);
    if (rc == 0 || rc == BERTH_ENOENT) {
        free(g->last_view);
        g->last_view = v;
        g->view_stale = false;
    } else {
        log_warn(g->key, "instance view not written: %s", err.message);
        free(v);
    }
}

/* Reads back restart counts, events and the time provisioning succeeded
 * from the view written for this generation and document before a restart
 * of the agent. */
void view_restore(agent_t *a, agroup_t *g)
{
    char *text = NULL;
    if (berth_hostlink_view_get(a->link, g->key, &text, NULL) != 0)
        return;
    json_t *v = json_loads(text, 0, NULL);
    berth_free(text);
    char digest[24];
    snprintf(digest, sizeof digest, "%016" PRIx64, g->digest);
    const char *vd = json_string_value(json_object_get(v, "digest"));
    if (v == NULL || vd == NULL || strcmp(vd, digest) != 0 ||
        (uint64_t)json_integer_value(json_object_get(v, "generation")) != g->generation) {
        json_decref(v);
        return;
    }
    events_load(&g->ev, json_object_get(json_object_get(v, "instanceView"), "events"));
    const char *ps = json_string_value(json_object_get(v, "provisioningState"));
    if (ps != NULL && strcmp(ps, "Succeeded") == 0)
        g->provisioned_ms = (int64_t)json_integer_value(json_object_get(v, "stateTime"));
    const char *lists[] = {"initContainers", "containers"};
    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(v, lists[l]), i, x) {
            const char *name = json_string_value(json_object_get(x, "name"));
            json_t *iv = json_object_get(x, "instanceView");
            for (size_t k = 0; name != NULL && k < g->n; k++) {
                cview_t *c = &g->c[k];
                if (c->is_init != (l == 0) || strcmp(c->name, name) != 0)
                    continue;
                c->restart_count = (uint32_t)json_integer_value(
                    json_object_get(iv, "restartCount"));
                events_load(&c->ev, json_object_get(iv, "events"));
            }
        }
    }
    json_decref(v);
}
