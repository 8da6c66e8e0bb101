/*
 * supervise.c: the group state machine, restart back-off, and the
 * supervise tick.
 *
 * Each group runs its init containers to completion, in order, then its
 * containers, under its restartPolicy (Always, OnFailure, Never) with
 * exponential back-off; the events (Started, BackOff, Failed) go to its
 * view.
 *
 * Supervision costs what changes, not what the host holds, so that an
 * agent with thousands of groups stays cheap.  Every --tick-ms it steps
 * (asks the runtime, moves the state machine) each group that is still
 * converging or has something due: init containers or the start under
 * way, provisioning not yet Succeeded, a container starting or seen
 * terminated and not yet acted upon, a restart whose back-off has run out.
 * The groups that have settled are stepped in slices, a sweep in the order
 * they came, sized so that each is stepped again at least every
 * --sweep-ms: that bounds how late a crashed container is noticed.  A
 * group's view is rendered only when something it shows may have changed
 * (a runtime state other than the one last absorbed, an event, its phase
 * or provisioning state) and written only when its text differs from the
 * last one written.
 *
 * It must never leave a settled group unlooked-at for longer than
 * --sweep-ms while the loop turns, and never restart a container the
 * group's policy keeps terminated.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"

#define START_RETRIES 3             /* creates again after a failed start   */

/* Marks g failed (phase and provisioning Failed: nothing more runs for it
 * until a new generation comes), with a Failed event and an error line
 * that both say why. */
void fail_group(agent_t *a, agroup_t *g, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    g->phase = PHASE_FAILED;
    g->provisioning = "Failed";
    g->provisioned_ms = berth__clock_wall_ms();
    view_touch(g);
    event_add(g, &g->ev, "Failed", "Warning", "%s", msg);
    log_error(g->key, "%s", msg);
}

static bool start_one(agent_t *a, agroup_t *g, size_t i)
{
    berth_error_t err;
    g->refresh = true;
    if (a->ops->start(a->ctx, runtime_key(g), g->c[i].name, &err) != 0) {
        event_add(g, &g->c[i].ev, "Failed", "Warning", "Error: %s", err.message);
        log_warn(g->key, "container %s did not start: %s", g->c[i].name, err.message);
        return false;
    }
    event_add(g, &g->c[i].ev, "Started", "Normal", "Started container %s", g->c[i].name);
    return true;
}

/* Whether two container states would read the same in the view (what
 * cstate_json() shows of them). */
static bool cstate_same(const berth_container_status_t *x, const berth_container_status_t *y)
{
    return x->state == y->state && x->exit_code == y->exit_code &&
           x->started_ms == y->started_ms && x->finished_ms == y->finished_ms &&
           strcmp(x->detail, y->detail) == 0;
}

/* Copies the runtime's view of each container into the agent's, keeping
 * the previous state when a new run began; touches the view when a
 * container's state reads otherwise than the one last absorbed. */
void status_absorb(agroup_t *g)
{
    for (size_t i = 0; i < g->n && i < g->st.ncontainers; i++) {
        cview_t *c = &g->c[i];
        const berth_container_status_t *s = &g->st.containers[i];
        if (!cstate_same(&c->cur, s))
            view_touch(g);
        /* A run that began after the one the agent saw terminate. */
        if (c->cur.state == BERTH_CONTAINER_TERMINATED && s->started_ms != c->cur.started_ms &&
            s->started_ms != 0) {
            c->prev = c->cur;
            c->has_prev = true;
        }
        c->cur = *s;
    }
}

/* Asks the runtime for g's state, into g->st (the containers are not
 * absorbed: status_absorb() does that).  The view shows the group's
 * address and ports: when they read otherwise than before, or the call
 * failed (g->st may be half written), the view is touched, and the host
 * ports read are remembered (ports_remember()).  Returns the plugin's
 * code. */
static int status_read(agent_t *a, agroup_t *g, berth_error_t *err)
{
    /* Only what the view shows is kept aside, not the whole status (a
     * few KiB of container slots, per step of every group). */
    bool existed = g->st.exists;
    char ip[sizeof g->st.ip];
    size_t nports = g->st.nports < BERTH_PLUGIN_PORTS_MAX ? g->st.nports
                                                          : BERTH_PLUGIN_PORTS_MAX;
    berth_published_port_t ports[BERTH_PLUGIN_PORTS_MAX];
    memcpy(ip, g->st.ip, sizeof ip);
    memcpy(ports, g->st.ports, nports * sizeof ports[0]);
    int rc = a->ops->status(a->ctx, runtime_key(g), &g->st, err);
    if (rc != 0 || g->st.exists != existed || g->st.nports != nports ||
        strncmp(g->st.ip, ip, sizeof ip) != 0 ||
        memcmp(g->st.ports, ports, nports * sizeof ports[0]) != 0) {
        view_touch(g);
        if (rc == 0)
            ports_remember(a, g);
    }
    return rc;
}

/* Contract: agent.h. */
bool policy_restarts(const agroup_t *g, int exit_code)
{
    switch (g->spec->restart_policy) {
    case BERTH_RESTART_NEVER:
        return false;
    case BERTH_RESTART_ON_FAILURE:
        return exit_code != 0;
    default:
        return true;
    }
}

/* Schedules the restart of container i after its back-off. */
static void backoff_schedule(agent_t *a, agroup_t *g, size_t i, int64_t now)
{
    cview_t *c = &g->c[i];
    int64_t ran = c->cur.finished_ms - c->cur.started_ms;
    if (c->backoff_ms == 0 || ran >= (int64_t)a->o.backoff_reset_ms)
        c->backoff_ms = a->o.backoff_initial_ms;
    c->next_start_ms = now + c->backoff_ms;
    event_add(g, &c->ev, "BackOff", "Warning", "Back-off restarting failed container %s",
              c->name);
    log_info(g->key, "container %s exited with %d; restart in %u ms", c->name,
             c->cur.exit_code, c->backoff_ms);
    c->backoff_ms = c->backoff_ms * 2 > a->o.backoff_max_ms ? a->o.backoff_max_ms
                                                           : c->backoff_ms * 2;
}

static void group_advance(agent_t *a, agroup_t *g);

/* Decides, after a step, how soon g is stepped again: busy (every tick)
 * while it converges or has something to act upon, else at its restart's
 * due time (due_ms) or when the sweep comes by.  Cheap (no runtime call,
 * no lookup): it runs once per step. */
static void group_plan(agroup_t *g)
{
    g->due_ms = 0;
    g->busy = false;
    if (g->spec == NULL || g->phase == PHASE_FAILED)
        return;                     /* nothing more happens to it           */
    /* Converging: init containers or the start under way, containers not
     * yet up, or something just started whose state is still to come. */
    if (g->phase != PHASE_RUN || strcmp(g->provisioning, "Succeeded") != 0 || g->refresh)
        g->busy = true;
    for (size_t i = g->spec->ninit_containers; i < g->n; i++) {
        const cview_t *c = &g->c[i];
        if (c->next_start_ms != 0 && (g->due_ms == 0 || c->next_start_ms < g->due_ms))
            g->due_ms = c->next_start_ms;
        /* A container starting (its Running is to be shown as soon as it
         * comes), or one seen terminated that no step has acted upon. */
        if (c->cur.state == BERTH_CONTAINER_WAITING ||
            (c->cur.state == BERTH_CONTAINER_TERMINATED && c->next_start_ms == 0 &&
             c->cur.finished_ms != c->seen_finish_ms))
            g->busy = true;
    }
}

/* One supervision step: refresh the runtime's state and move the group's
 * state machine along; what it started is read back at once, so that the
 * view never shows a container as still terminated after its restart.
 * Then plans when the group is stepped next. */
void group_step(agent_t *a, agroup_t *g)
{
    g->refresh = false;
    group_advance(a, g);
    if (g->refresh && g->phase != PHASE_FAILED) {
        berth_error_t err;
        if (status_read(a, g, &err) == 0 && g->st.exists)
            status_absorb(g);
    }
    group_plan(g);
}

static void group_advance(agent_t *a, agroup_t *g)
{
    if (g->phase == PHASE_FAILED || g->spec == NULL)
        return;
    berth_error_t err;
    if (status_read(a, g, &err) != 0) {
        log_warn(g->key, "status unavailable: %s", err.message);
        return;
    }
    if (!g->st.exists) {
        /* Someone removed it behind the agent's back: create it again. */
        log_warn(g->key, "the runtime lost the group; creating it again");
        g->phase = PHASE_INIT;
        group_create(a, g);
        return;
    }
    status_absorb(g);
    int64_t now = berth__clock_wall_ms();
    size_t ninit = g->spec->ninit_containers;

    if (g->phase == PHASE_INIT) {
        cview_t *c = &g->c[g->init_next];
        const berth_container_status_t *s = &c->cur;
        if (s->state == BERTH_CONTAINER_WAITING && s->started_ms == 0 && c->next_start_ms == 0) {
            start_one(a, g, g->init_next);
        } else if (s->state == BERTH_CONTAINER_TERMINATED && s->exit_code == 0) {
            g->init_next++;
            view_touch(g);
            if (g->init_next == ninit)
                g->phase = PHASE_START;
            else
                start_one(a, g, g->init_next);
        } else if (s->state == BERTH_CONTAINER_TERMINATED && c->next_start_ms == 0 &&
                   s->finished_ms != c->seen_finish_ms) {
            c->seen_finish_ms = s->finished_ms;
            if (g->spec->restart_policy == BERTH_RESTART_NEVER) {
                fail_group(a, g, "init container %s exited with code %d", c->name,
                           s->exit_code);
                return;
            }
            backoff_schedule(a, g, g->init_next, now);
        }
        if (c->next_start_ms != 0 && now >= c->next_start_ms) {
            c->next_start_ms = 0;
            view_touch(g);
            if (start_one(a, g, g->init_next))
                c->restart_count++;
        }
    }
    if (g->phase == PHASE_START) {
        if (a->ops->start(a->ctx, runtime_key(g), NULL, &err) != 0) {
            /* Leftovers of an interrupted attempt can make a start fail:
             * remove the group and create it anew, a few times at most. */
            if (++g->start_failures <= START_RETRIES) {
                log_warn(g->key, "containers did not start (%s); creating them again, "
                         "attempt %u of %u", err.message, g->start_failures, START_RETRIES);
                event_add(g, &g->ev, "BackOff", "Warning", "containers did not start: %s",
                          err.message);
                berth_error_t rerr;
                if (a->ops->remove(a->ctx, runtime_key(g), &rerr) == 0)
                    group_create(a, g);
                return;
            }
            fail_group(a, g, "containers did not start: %s", err.message);
            return;
        }
        for (size_t i = ninit; i < g->n; i++)
            event_add(g, &g->c[i].ev, "Started", "Normal", "Started container %s", g->c[i].name);
        g->phase = PHASE_RUN;
        g->refresh = true;
        log_info(g->key, "started generation %" PRIu64, g->generation);
        return;
    }
    if (g->phase != PHASE_RUN)
        return;
    /* Provisioned once every container has come up (or already ended). */
    bool all_up = true;
    for (size_t i = ninit; i < g->n; i++)
        all_up = all_up && (g->c[i].cur.state != BERTH_CONTAINER_WAITING ||
                            g->c[i].restart_count > 0);
    if (all_up && strcmp(g->provisioning, "Succeeded") != 0) {
        g->provisioning = "Succeeded";
        /* Kept when it was Succeeded before a restart of the agent. */
        if (g->provisioned_ms == 0)
            g->provisioned_ms = now;
        view_touch(g);
    }
    for (size_t i = ninit; i < g->n; i++) {
        cview_t *c = &g->c[i];
        const berth_container_status_t *s = &c->cur;
        if (s->state == BERTH_CONTAINER_TERMINATED && c->next_start_ms == 0 &&
            s->finished_ms != c->seen_finish_ms) {
            c->seen_finish_ms = s->finished_ms;
            if (policy_restarts(g, s->exit_code))
                backoff_schedule(a, g, i, now);
            else
                log_info(g->key, "container %s terminated with %d; restartPolicy keeps it so",
                         c->name, s->exit_code);
        }
        if (c->next_start_ms != 0 && now >= c->next_start_ms) {
            c->next_start_ms = 0;
            view_touch(g);
            if (start_one(a, g, i))
                c->restart_count++;
        }
    }
}

/* Chooses the groups this tick's sweep steps (sweep_now): from where the
 * sweep stopped, in the order the groups were kept, as many as keep a pace
 * of one whole pass per (--sweep-ms - --tick-ms) over the time since the
 * last tick, rounded up, and then more while the next one's last pass is
 * that long ago (a late tick catches up; a group kept since is taken when
 * reached).  Why a tick less than --sweep-ms: groups are stepped on ticks
 * only, so the pass must end by the last tick before a group's --sweep-ms
 * runs out, not at the first one after.  At most one pass per tick; busy
 * groups are passed like the others (they are stepped anyway).  mono: now,
 * CLOCK_MONOTONIC ms, which no clock change moves. */
static void sweep_choose(agent_t *a, int64_t mono)
{
    size_t n = HASH_COUNT(a->groups);
    int64_t period = (int64_t)a->o.sweep_ms - (int64_t)a->o.tick_ms;
    int64_t elapsed = a->last_tick_ms > 0 ? mono - a->last_tick_ms : period;
    uint64_t pace = period <= 0 ? n
                  : ((uint64_t)n * (uint64_t)elapsed + (uint64_t)period - 1) / (uint64_t)period;
    for (size_t taken = 0; taken < n; taken++) {
        agroup_t *g = a->sweep_next != NULL ? a->sweep_next : a->groups;
        if (taken >= pace && g->swept_ms != 0 && mono - g->swept_ms < period)
            break;
        g->sweep_now = true;
        g->swept_ms = mono;
        a->sweep_next = g->hh.next;
    }
    a->last_tick_ms = mono;
}

/* One supervision tick: steps every group that is busy, has a restart
 * due, or was chosen by the sweep, then renders and writes the views that
 * may have changed.  The walk reads a few fields of each group; what
 * costs (a runtime call, a rendering, a write) is done for those only. */
void supervise(agent_t *a)
{
    sweep_choose(a, berth__clock_monotonic_ms());
    int64_t now = berth__clock_wall_ms();         /* the clock restarts are due by        */
    agroup_t *g, *tmp;
    HASH_ITER(hh, a->groups, g, tmp) {
        if (stopping)
            break;
        if (g->busy || g->sweep_now || (g->due_ms != 0 && now >= g->due_ms)) {
            g->sweep_now = false;
            group_step(a, g);
        }
        if (g->view_stale)
            view_write(a, g);
    }
}
