/*
 * berth-agent.c: Berth's host agent, one per host.
 *
 * The agent makes its host run what the cell places on it.  At start it
 * registers the host in the cell (capacity from the command line, or probed
 * from the system and the runtime plugin; GPUs from the command line or
 * nvidia-smi), then reconciles: every group the runtime holds and every
 * group the cell places on the host is brought in line with the group's
 * record, so that after a crash of the agent nothing runs twice and nothing
 * runs that no record owns.  Then it loops: read the next assignment from
 * the host's stream (consumer group; acknowledged only once its work is
 * done), converge that group, and supervise every group
 * it runs: init containers to completion, in order, then the containers;
 * restartPolicy (Always, OnFailure, Never) with exponential back-off;
 * ACI-like events (Pulling, Pulled, Created, Started, Killing, BackOff,
 * Failed); the instance view written back to the cell whenever it changes;
 * the images the runtime holds reported to the cell (at start, after a
 * pull, and every 30 s) for placement by image locality.
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
 * last one written.  Groups are found by key, and by the runtime group
 * they run as, through hash tables (uthash), never by a walk over all.
 *
 * The heartbeat has a thread of its own, with its own connection, so that
 * a long image pull or a slow runtime call does not let the host expire:
 * it renews the host's alive key every --heartbeat-ms for as long as the
 * loop keeps turning, and withholds it once the loop has not turned for
 * --stall-ms (a stuck runtime call), so that the cell moves the host's
 * groups away.
 *
 * Convergence is idempotent and driven by the record, never by the entry:
 * a group whose record is gone or on another host is removed from the
 * runtime; a group whose runtime copy has another generation or document
 * digest is removed and created anew (an update restarts every container
 * on the same host, with images already present); a runtime copy that is
 * whole and current is adopted as it is, with its restart counts and events
 * read back from the last view the agent wrote.
 *
 * A group claimed from a standby pool (docs/standby-pools.md) keeps running
 * as the runtime group of the pool member it took over: its record names
 * that member's key, generation and digest, and the agent adopts that
 * runtime group for the new key (nothing pulled, created or started) and
 * addresses it under the member's key from then on.
 *
 * Schedulers reach a container's logs and run commands in it through
 * calls on the host's call stream (berth_store_container_logs/_exec),
 * which the agent answers between assignments (looked for when none is
 * waiting, and at least every CALLS_EVERY_MS, 20 ms, while they keep
 * coming).  `berth-agent logs` and
 * `berth-agent exec` run the same plugin operations on this host for an
 * operator.  Secrets (secure environment values, secret
 * volumes, registry passwords) are never logged: log lines name groups,
 * containers, images and events only.
 *
 * It must never leave a settled group unlooked-at for longer than
 * --sweep-ms while the loop turns, never skip writing a view whose text
 * changed, and never log a secret.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

/* An allocation that fails inside uthash leaves the table as it was and
 * the element's hh.tbl NULL: the agent then refuses the one group (and
 * tries its assignment again later) instead of exiting. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "berth-plugin.h"

#define EVENTS_MAX 12
#define START_RETRIES 3             /* creates again after a failed start   */
#define CALLS_EVERY_MS 20           /* calls looked for this often, at least */
#define EXIT_USAGE 2

/* ---- options ------------------------------------------------------------------- */

typedef struct options {
    const char *host;
    const char *plugin;
    char *plugin_config;            /* JSON text, or NULL                   */
    const char *redis;
    const char *cell;
    uint32_t cores;                 /* 0: probe                             */
    uint32_t memory_mib;            /* 0: probe                             */
    const char *gpu_sku;
    int gpu_count;                  /* -1: probe with nvidia-smi            */
    const char *zone;
    uint32_t heartbeat_ms, ttl_ms, tick_ms;
    uint32_t sweep_ms;              /* a settled group is stepped this often */
    uint32_t stall_ms;              /* loop stuck this long: no heartbeat   */
    uint32_t backoff_initial_ms, backoff_max_ms, backoff_reset_ms;
    uint32_t stop_grace_s;
    bool no_register;
} options_t;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void time_format(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

static const char *log_host = "-";

static void logf_(const char *level, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One structured log line on stderr: time, level, host, group, message. */
static void logf_(const char *level, const char *key, const char *fmt, ...)
{
    char ts[40], msg[1024];
    time_format(now_ms(), ts, sizeof ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '"' || *p == '\n')
            *p = *p == '"' ? '\'' : ' ';
    fprintf(stderr, "time=%s level=%s host=%s%s%s msg=\"%s\"\n", ts, level, log_host,
            key ? " group=" : "", key ? key : "", msg);
}

#define log_info(key, ...) logf_("info", key, __VA_ARGS__)
#define log_warn(key, ...) logf_("warn", key, __VA_ARGS__)
#define log_error(key, ...) logf_("error", key, __VA_ARGS__)

/* ---- what the agent knows of each group ----------------------------------------- */

typedef struct event {
    char name[16];                  /* Pulling, Pulled, Created, Started ... */
    char type[8];                   /* Normal | Warning                     */
    char message[200];
    uint32_t count;
    int64_t first_ms, last_ms;
} event_t;

typedef struct events {
    event_t e[EVENTS_MAX];
    size_t n;
} events_t;

typedef struct cview {
    char name[BERTH_NAME_MAX + 1];
    bool is_init;
    uint32_t restart_count;
    uint32_t backoff_ms;            /* the next back-off                    */
    int64_t next_start_ms;          /* a restart is due then (0: none)      */
    int64_t seen_finish_ms;         /* the last termination acted upon      */
    berth_container_status_t cur, prev;
    bool has_prev;
    events_t ev;
} cview_t;

typedef enum phase {
    PHASE_INIT,                     /* running init containers in order     */
    PHASE_START,                    /* starting the containers              */
    PHASE_RUN,                      /* supervising                          */
    PHASE_FAILED                    /* creation failed; nothing runs        */
} phase_t;

typedef struct agroup {
    char *key;
    /* The runtime group it runs as when that is not its own key: a group
     * claimed from a standby pool keeps its former member's runtime group
     * (the record's runtime fields), so that nothing is pulled, created or
     * started again.  NULL: the runtime group is `key`'s. */
    char *runtime;
    uint64_t generation, digest;
    berth_group_t *spec;            /* NULL when the document was unusable  */
    phase_t phase;
    size_t init_next;               /* the init container running or next  */
    const char *provisioning;       /* Creating | Succeeded | Failed        */
    cview_t *c;                     /* init containers, then containers     */
    size_t n;
    events_t ev;                    /* the group's own events               */
    berth_group_status_t st;        /* the runtime's last answer            */
    char *last_view;                /* the view last written                */
    bool refresh;                   /* started something: read the state again */
    uint32_t start_failures;        /* starts that failed, each followed by a new create */
    /* Supervision (see the top of the file).  busy: step it every tick;
     * due_ms: the earliest restart back-off's end (0: none), when it is
     * stepped again whatever the sweep; swept_ms: when the sweep last
     * passed it, CLOCK_MONOTONIC (0: never, so the sweep takes it when
     * it comes by, whatever its pace). */
    bool busy;
    bool sweep_now;                 /* the sweep chose it in this tick     */
    int64_t due_ms, swept_ms;
    /* Something view_render() reads changed since the view was last
     * written (or the write failed): every change to what it shows sets
     * it, through view_touch(), event_add() and status_read(). */
    bool view_stale;
    bool kept;                      /* in the agent's tables               */
    UT_hash_handle hh;              /* agent_t.groups, by key              */
    UT_hash_handle hh_rt;           /* agent_t.by_runtime, by runtime      */
} agroup_t;

/* The heartbeat thread (see the top of the file). */
typedef struct beat {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* signalled on stop; CLOCK_MONOTONIC   */
    bool stop;                      /* under mu                             */
    bool started;
    berth_hostlink_t *link;         /* the thread's own connection          */
    uint32_t period_ms, ttl_ms, stall_ms;
    _Atomic int64_t turned_ms;      /* the loop's last turn (monotonic)     */
} beat_t;

typedef struct agent {
    options_t o;
    berth_plugin_t *plugin;
    const berth_plugin_ops_t *ops;
    void *ctx;
    berth_hostlink_t *link;
    /* Every group, by key; the list runs in the order they were kept,
     * which is the sweep's order.  by_runtime holds those that run as
     * another key's runtime group (agroup_t.runtime), by that key. */
    agroup_t *groups;
    agroup_t *by_runtime;
    agroup_t *sweep_next;           /* where the sweep goes on (NULL: the head) */
    int64_t last_tick_ms;           /* the last tick, CLOCK_MONOTONIC (0: none) */
    bool images_dirty;              /* an image was pulled: report the set  */
    beat_t beat;
} agent_t;

/* Marks that something the group's view shows may have changed: the view
 * is rendered again at the end of the tick (and written if it differs). */
static void view_touch(agroup_t *g)
{
    g->view_stale = true;
}

static void event_add(agroup_t *g, events_t *ev, const char *name, const char *type,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Records an event in ev, one of g's lists (the group's or a
 * container's); the same name and message again only counts up.  Either
 * way the view shows it: g's view is touched. */
static void event_add(agroup_t *g, events_t *ev, const char *name, const char *type,
                      const char *fmt, ...)
{
    view_touch(g);
    char msg[sizeof ev->e[0].message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int64_t now = now_ms();
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

/* Frees an agroup that is in none of the agent's tables. */
static void group_free(agroup_t *g)
{
    if (g == NULL)
        return;
    free(g->key);
    free(g->runtime);
    berth_group_free(g->spec);
    free(g->c);
    free(g->last_view);
    free(g);
}

/* The group kept under `key`, or NULL: a hash lookup, since every
 * assignment and call looks its group up. */
static agroup_t *group_find(agent_t *a, const char *key)
{
    agroup_t *g = NULL;
    HASH_FIND(hh, a->groups, key, strlen(key), g);
    return g;
}

/* Takes g (kept) out of the runtime index, before its runtime changes or
 * it goes. */
static void runtime_unindex(agent_t *a, agroup_t *g)
{
    if (g->kept && g->runtime != NULL)
        HASH_DELETE(hh_rt, a->by_runtime, g);
}

/* Forgets the group kept under `key`, if any, and frees it.  The sweep
 * goes on from the next group, so that none is skipped. */
static void group_drop(agent_t *a, const char *key)
{
    agroup_t *g = group_find(a, key);
    if (g == NULL)
        return;
    if (a->sweep_next == g)
        a->sweep_next = g->hh.next;
    runtime_unindex(a, g);
    HASH_DELETE(hh, a->groups, g);
    g->kept = false;
    group_free(g);
}

/* Keeps g (no group is kept under its key: callers drop the old one
 * first), indexed by key and, when it runs as another key's runtime
 * group, by that key.  It goes at the end of the sweep's order.  Returns
 * 0, or BERTH_ENOMEM with g not kept (the caller still owns it). */
static int group_keep(agent_t *a, agroup_t *g)
{
    HASH_ADD_KEYPTR(hh, a->groups, g->key, strlen(g->key), g);
    if (g->hh.tbl == NULL)
        return BERTH_ENOMEM;
    if (g->runtime != NULL) {
        HASH_ADD_KEYPTR(hh_rt, a->by_runtime, g->runtime, strlen(g->runtime), g);
        if (g->hh_rt.tbl == NULL) {
            HASH_DELETE(hh, a->groups, g);
            return BERTH_ENOMEM;
        }
    }
    g->kept = true;
    return 0;
}

/* Forgets and frees every group (at exit; the runtime is left alone). */
static void groups_free(agent_t *a)
{
    agroup_t *g, *tmp;
    HASH_ITER(hh, a->groups, g, tmp) {
        runtime_unindex(a, g);
        HASH_DELETE(hh, a->groups, g);
        g->kept = false;
        group_free(g);
    }
    a->sweep_next = NULL;
}

/* The key of the runtime group `g` runs as (every plugin call names it). */
static const char *runtime_key(const agroup_t *g)
{
    return g->runtime != NULL ? g->runtime : g->key;
}

/* The group that runs as runtime group `key` on behalf of another key:
 * a hash lookup, as every assignment for an unknown key asks. */
static agroup_t *runtime_owner(agent_t *a, const char *key)
{
    agroup_t *g = NULL;
    HASH_FIND(hh_rt, a->by_runtime, key, strlen(key), g);
    return g;
}

static const berth_container_t *spec_container(const berth_group_t *s, size_t i)
{
    return i < s->ninit_containers ? &s->init_containers[i]
                                   : &s->containers[i - s->ninit_containers];
}

/* A new agroup for `key` at `generation` holding `spec` (taken). */
static agroup_t *group_new(const char *key, uint64_t generation, uint64_t digest,
                           berth_group_t *spec)
{
    agroup_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    g->key = strdup(key);
    g->n = spec != NULL ? spec->ninit_containers + spec->ncontainers : 0;
    g->c = calloc(g->n ? g->n : 1, sizeof *g->c);
    if (g->key == NULL || g->c == NULL) {
        free(g->key);
        free(g->c);
        free(g);
        return NULL;
    }
    g->spec = spec;
    g->generation = generation;
    g->digest = digest;
    g->provisioning = "Creating";
    /* Nothing written yet, nothing known: stepped and shown at once. */
    g->busy = true;
    g->view_stale = true;
    for (size_t i = 0; i < g->n; i++) {
        const berth_container_t *c = spec_container(spec, i);
        snprintf(g->c[i].name, sizeof g->c[i].name, "%s", c->name);
        g->c[i].is_init = i < spec->ninit_containers;
    }
    return g;
}

/* ---- the instance view ------------------------------------------------------------ */

static json_t *events_json(const events_t *ev)
{
    json_t *arr = json_array();
    char first[40], last[40];
    for (size_t i = 0; arr != NULL && i < ev->n; i++) {
        const event_t *e = &ev->e[i];
        time_format(e->first_ms, first, sizeof first);
        time_format(e->last_ms, last, sizeof last);
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
        e->first_ms = e->last_ms = now_ms();
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
        time_format(s->started_ms, t, sizeof t);
        json_object_set_new(o, "startTime", json_string(t));
    }
    if (s->state == BERTH_CONTAINER_TERMINATED) {
        json_object_set_new(o, "exitCode", json_integer(s->exit_code));
        if (s->finished_ms > 0) {
            time_format(s->finished_ms, t, sizeof t);
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

/* The group's state in ACI's words. */
static const char *group_state(const agroup_t *g)
{
    if (g->phase == PHASE_FAILED)
        return "Failed";
    if (g->phase != PHASE_RUN)
        return "Pending";
    size_t first = g->spec->ninit_containers;
    bool any_running = false, all_ok = true;
    for (size_t i = first; i < g->n; i++) {
        const berth_container_status_t *s = &g->c[i].cur;
        if (s->state == BERTH_CONTAINER_RUNNING)
            any_running = true;
        else if (s->state != BERTH_CONTAINER_TERMINATED)
            return "Pending";
        else if (s->exit_code != 0)
            all_ok = false;
    }
    if (any_running || restart_pending(g))
        return "Running";
    return all_ok ? "Succeeded" : "Failed";
}

static char *view_render(const agent_t *a, const agroup_t *g)
{
    char digest[24];
    snprintf(digest, sizeof digest, "%016" PRIx64, g->digest);
    json_t *v = json_pack("{s:s,s:I,s:s,s:s}", "host", a->o.host, "generation",
                          (json_int_t)g->generation, "digest", digest, "provisioningState",
                          g->provisioning);
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
        json_t *iv = json_pack("{s:I,s:o,s:o}", "restartCount", (json_int_t)c->restart_count,
                               "currentState", cstate_json(&c->cur), "events",
                               events_json(&c->ev));
        if (c->has_prev)
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
static void view_write(agent_t *a, agroup_t *g)
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

/* Reads back restart counts and events from the view written for this
 * generation and document before a restart of the agent. */
static void view_restore(agent_t *a, agroup_t *g)
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

/* ---- driving the plugin ------------------------------------------------------------ */

/* The registry credential whose server is the image's registry, if any. */
static const berth_registry_credential_t *credential_for(const berth_group_t *s,
                                                         const char *image)
{
    const char *slash = strchr(image, '/');
    if (slash == NULL)
        return NULL;
    size_t n = (size_t)(slash - image);
    for (size_t i = 0; i < s->ncredentials; i++) {
        const char *server = s->credentials[i].server;
        if (server != NULL && strlen(server) == n && strncmp(server, image, n) == 0)
            return &s->credentials[i];
    }
    return NULL;
}

static void fail_group(agent_t *a, agroup_t *g, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_group(agent_t *a, agroup_t *g, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    g->phase = PHASE_FAILED;
    g->provisioning = "Failed";
    view_touch(g);
    event_add(g, &g->ev, "Failed", "Warning", "%s", msg);
    log_error(g->key, "%s", msg);
}

/* Pulls what is missing, then creates the group's containers. */
static void group_create(agent_t *a, agroup_t *g)
{
    berth_error_t err;
    view_touch(g);                  /* its phase, events and perhaps digest */
    if (g->runtime != NULL) {
        /* The claimed runtime group is gone: the group is created as itself. */
        runtime_unindex(a, g);
        free(g->runtime);
        g->runtime = NULL;
        g->digest = berth_runtime_digest(g->spec);
    }
    for (size_t i = 0; i < g->n; i++) {
        const char *image = spec_container(g->spec, i)->image;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(spec_container(g->spec, k)->image, image) == 0;
        if (seen)
            continue;
        bool cached = false;
        event_add(g, &g->c[i].ev, "Pulling", "Normal", "pulling image \"%s\"", image);
        if (a->ops->image_ensure(a->ctx, image, credential_for(g->spec, image), &cached,
                                 &err) != 0) {
            event_add(g, &g->c[i].ev, "Failed", "Warning", "Failed to pull image \"%s\": %s",
                      image, err.message);
            fail_group(a, g, "image \"%s\" could not be pulled: %s", image, err.message);
            return;
        }
        event_add(g, &g->c[i].ev, "Pulled", "Normal",
                  cached ? "Container image \"%s\" already present on machine"
                         : "Successfully pulled image \"%s\"",
                  image);
        log_info(g->key, "image %s %s", image, cached ? "already present" : "pulled");
        a->images_dirty = a->images_dirty || !cached;
    }
    uint32_t shares[BERTH_PLUGIN_CONTAINERS_MAX] = {0};
    uint32_t total = 0;
    if (g->spec->ncontainers > BERTH_PLUGIN_CONTAINERS_MAX ||
        berth_group_cpu_shares(g->spec, shares, BERTH_PLUGIN_CONTAINERS_MAX) != 0) {
        fail_group(a, g, "the group has more containers than a host runs");
        return;
    }
    for (size_t i = 0; i < g->spec->ncontainers; i++)
        total += shares[i];
    berth_runtime_group_t rg = {g->key, g->generation, g->digest, g->spec, total, shares};
    int rc = a->ops->create(a->ctx, &rg, &err);
    if (rc == BERTH_EEXIST) {
        /* Left over from an interrupted attempt: start from nothing. */
        if (a->ops->remove(a->ctx, g->key, &err) == 0)
            rc = a->ops->create(a->ctx, &rg, &err);
    }
    if (rc != 0) {
        fail_group(a, g, "containers could not be created: %s", err.message);
        return;
    }
    for (size_t i = 0; i < g->n; i++)
        event_add(g, &g->c[i].ev, "Created", "Normal", "Created container %s", g->c[i].name);
    log_info(g->key, "created generation %" PRIu64 " (%zu containers, %zu init)", g->generation,
             g->spec->ncontainers, g->spec->ninit_containers);
    g->phase = g->spec->ninit_containers > 0 ? PHASE_INIT : PHASE_START;
    g->init_next = 0;
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
static void status_absorb(agroup_t *g)
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
 * failed (g->st may be half written), the view is touched.  Returns the
 * plugin's code. */
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
        memcmp(g->st.ports, ports, nports * sizeof ports[0]) != 0)
        view_touch(g);
    return rc;
}

/* Whether a terminated container runs again under the group's policy. */
static bool policy_restarts(const agroup_t *g, int exit_code)
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
static void group_step(agent_t *a, agroup_t *g)
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
    int64_t now = now_ms();
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

/* Adopts a whole, current runtime copy found at start or after a lost
 * track: the state machine resumes where the runtime stands. */
static void group_adopt(agent_t *a, agroup_t *g)
{
    view_touch(g);
    view_restore(a, g);
    size_t ninit = g->spec->ninit_containers;
    status_absorb(g);
    g->phase = PHASE_RUN;
    g->provisioning = "Creating";
    for (size_t i = 0; i < ninit; i++) {
        const berth_container_status_t *s = &g->c[i].cur;
        if (!(s->state == BERTH_CONTAINER_TERMINATED && s->exit_code == 0)) {
            g->phase = PHASE_INIT;
            g->init_next = i;
            g->provisioning = "Creating";
            break;
        }
    }
    if (g->phase == PHASE_RUN)
        for (size_t i = ninit; i < g->n; i++)
            if (g->c[i].cur.state == BERTH_CONTAINER_WAITING && g->c[i].cur.started_ms == 0) {
                g->phase = PHASE_START;
                g->provisioning = "Creating";
                break;
            }
    /* Terminations before the restart were acted upon already, or will be
     * now: only those after the view's time are new. */
    log_info(g->key, "adopted generation %" PRIu64 " from the runtime", g->generation);
}

/* Removes the group from the runtime and forgets it. */
static int group_teardown(agent_t *a, const char *key)
{
    berth_error_t err;
    agroup_t *g = group_find(a, key);
    if (g != NULL && g->spec != NULL)
        for (size_t i = 0; i < g->n; i++)
            if (g->c[i].cur.state == BERTH_CONTAINER_RUNNING)
                event_add(g, &g->c[i].ev, "Killing", "Normal", "Stopping container %s",
                          g->c[i].name);
    if (a->ops->remove(a->ctx, g != NULL ? runtime_key(g) : key, &err) != 0) {
        log_error(key, "could not remove the group: %s", err.message);
        return BERTH_EIO;
    }
    group_drop(a, key);
    if (berth_hostlink_view_delete(a->link, key, &err) < 0)
        log_warn(key, "instance view not dropped: %s", err.message);
    log_info(key, "removed");
    return 0;
}

static void group_restart(agent_t *a, agroup_t *g)
{
    berth_error_t err;
    size_t ninit = g->spec->ninit_containers;
    /* Whatever the runtime did, the next tick reads what it runs now. */
    g->busy = true;
    for (size_t i = ninit; i < g->n; i++)
        event_add(g, &g->c[i].ev, "Killing", "Normal", "Stopping container %s", g->c[i].name);
    if (a->ops->restart(a->ctx, runtime_key(g), a->o.stop_grace_s, &err) != 0) {
        log_error(g->key, "restart failed: %s", err.message);
        return;
    }
    for (size_t i = ninit; i < g->n; i++) {
        g->c[i].restart_count++;
        g->c[i].next_start_ms = 0;
        event_add(g, &g->c[i].ev, "Started", "Normal", "Started container %s", g->c[i].name);
    }
    log_info(g->key, "restarted every container in place");
}

/* A group claimed from a standby pool (ng, new, not yet kept): adopts the
 * former member's runtime group when it is whole and the one the claim
 * saw (generation and digest), dropping the member's own tracking without
 * touching the runtime.  Returns 1 when adopted (ng is kept), 0 when the
 * group is to be converged as itself (a stale copy of the member is
 * removed first), or a negative code (ng freed) to try again later. */
static int converge_claimed(agent_t *a, agroup_t *ng)
{
    berth_error_t err;
    char rt[BERTH_GROUP_KEY_MAX + 1];
    uint64_t rt_gen = 0, rt_digest = 0;
    int rc = berth_hostlink_group_runtime(a->link, ng->key, rt, sizeof rt, &rt_gen, &rt_digest,
                                          &err);
    if (rc == 0 || rc == BERTH_ENOENT || strcmp(rt, ng->key) == 0)
        return 0;
    if (rc < 0) {
        log_warn(ng->key, "record unreadable: %s", err.message);
        group_free(ng);
        return rc;
    }
    if (a->ops->status(a->ctx, rt, &ng->st, &err) != 0) {
        log_warn(ng->key, "status unavailable: %s", err.message);
        group_free(ng);
        return BERTH_EIO;
    }
    bool whole = ng->st.exists && ng->st.generation == rt_gen && ng->st.digest == rt_digest &&
                 ng->st.ncontainers == ng->n;
    for (size_t i = 0; whole && i < ng->n; i++)
        whole = ng->st.containers[i].exists;
    agroup_t *member = group_find(a, rt);
    if (!whole) {
        if (ng->st.exists && a->ops->remove(a->ctx, rt, &err) != 0) {
            log_error(ng->key, "could not remove the stale standby copy %s: %s", rt,
                      err.message);
            group_free(ng);
            return BERTH_EIO;
        }
        if (member != NULL)
            group_drop(a, rt);
        memset(&ng->st, 0, sizeof ng->st);
        return 0;
    }
    ng->runtime = strdup(rt);
    if (ng->runtime == NULL) {
        group_free(ng);
        return BERTH_ENOMEM;
    }
    ng->digest = rt_digest;
    if (member != NULL)
        group_drop(a, rt);
    if (group_keep(a, ng) != 0) {
        group_free(ng);
        return BERTH_ENOMEM;
    }
    group_adopt(a, ng);
    group_step(a, ng);
    view_write(a, ng);
    log_info(ng->key, "claimed standby group %s: running as it, nothing recreated", rt);
    return 1;
}

/* Makes the runtime match the group's record.  Returns 0 when done (the
 * assignment may be acknowledged) or a negative code to try again later. */
static int converge(agent_t *a, const char *key, bool restart)
{
    berth_error_t err;
    char *doc = NULL, host[BERTH_NAME_MAX + 1] = "";
    uint64_t gen = 0;
    int rc = berth_hostlink_group(a->link, key, &doc, &gen, host, &err);
    if (rc == BERTH_ENOENT && runtime_owner(a, key) != NULL) {
        /* A standby member claimed by another key: its runtime group is
         * that key's now. */
        return 0;
    }
    if (rc == BERTH_ENOENT || (rc == 0 && strcmp(host, a->o.host) != 0)) {
        berth_free(doc);
        return group_teardown(a, key);
    }
    if (rc < 0) {
        log_warn(key, "record unreadable: %s", err.message);
        return rc;
    }
    agroup_t *g = group_find(a, key);
    if (g != NULL && g->generation == gen) {
        berth_free(doc);
        if (restart && g->spec != NULL && g->phase != PHASE_FAILED)
            group_restart(a, g);
        return 0;
    }
    berth_group_t *spec = NULL;
    if (doc == NULL || berth_group_parse(doc, strlen(doc), &spec, &err) != 0) {
        berth_free(doc);
        g = group_new(key, gen, 0, NULL);
        if (g == NULL)
            return BERTH_ENOMEM;
        group_drop(a, key);
        if (group_keep(a, g) != 0) {
            group_free(g);
            return BERTH_ENOMEM;
        }
        fail_group(a, g, doc == NULL ? "the record holds no document"
                                     : "the record's document is unusable");
        return 0;
    }
    berth_free(doc);
    uint64_t digest = berth_runtime_digest(spec);
    agroup_t *ng = group_new(key, gen, digest, spec);
    if (ng == NULL) {
        berth_group_free(spec);
        return BERTH_ENOMEM;
    }
    if (g == NULL) {
        int claimed = converge_claimed(a, ng);
        if (claimed != 0)
            return claimed < 0 ? claimed : 0;
    } else if (g->runtime != NULL) {
        /* A claimed group redeployed: it runs as itself from now on. */
        if (a->ops->remove(a->ctx, g->runtime, &err) != 0) {
            log_error(key, "could not remove the claimed copy: %s", err.message);
            group_free(ng);
            return BERTH_EIO;
        }
    }
    if (a->ops->status(a->ctx, key, &ng->st, &err) != 0) {
        log_warn(key, "status unavailable: %s", err.message);
        group_free(ng);
        return BERTH_EIO;
    }
    bool whole = ng->st.exists && ng->st.generation == gen && ng->st.digest == digest &&
                 ng->st.ncontainers == ng->n;
    for (size_t i = 0; whole && i < ng->n; i++)
        whole = ng->st.containers[i].exists;
    if (whole && g == NULL) {
        if (group_keep(a, ng) != 0) {
            group_free(ng);
            return BERTH_ENOMEM;
        }
        group_adopt(a, ng);
        group_step(a, ng);
        view_write(a, ng);
        return 0;
    }
    if (ng->st.exists) {
        log_info(key, "replacing runtime generation %" PRIu64 " with %" PRIu64,
                 ng->st.generation, gen);
        for (size_t i = 0; i < ng->n; i++)
            event_add(ng, &ng->c[i].ev, "Killing", "Normal", "Stopping container %s",
                      ng->c[i].name);
        if (a->ops->remove(a->ctx, key, &err) != 0) {
            log_error(key, "could not remove the old copy: %s", err.message);
            group_free(ng);
            return BERTH_EIO;
        }
    }
    group_drop(a, key);
    if (group_keep(a, ng) != 0) {
        group_free(ng);
        return BERTH_ENOMEM;
    }
    memset(&ng->st, 0, sizeof ng->st);
    view_write(a, ng);              /* Creating */
    group_create(a, ng);
    group_step(a, ng);
    view_write(a, ng);
    return 0;
}

/* ---- reconciliation ----------------------------------------------------------------- */

/* A set of keys that remembers their order: the cell's groups, then the
 * runtime's, each once.  A hash set, not a list walked per key: both
 * lists name every group of the host. */
typedef struct key_entry {
    UT_hash_handle hh;
    char key[];
} key_entry_t;

typedef struct keys {
    key_entry_t *set;               /* uthash head; its list is the order   */
    bool incomplete;                /* a key could not be added (no memory) */
} keys_t;

/* Adds `key` unless it is there already; when it cannot (no memory),
 * marks the set incomplete, so that reconciliation is tried again rather
 * than leaving a group out. */
static void keys_add(keys_t *ks, const char *key)
{
    size_t len = strlen(key);
    key_entry_t *e = NULL;
    HASH_FIND(hh, ks->set, key, len, e);
    if (e != NULL)
        return;
    e = malloc(sizeof *e + len + 1);
    if (e != NULL) {
        memcpy(e->key, key, len + 1);
        HASH_ADD_KEYPTR(hh, ks->set, e->key, len, e);
        if (e->hh.tbl != NULL)
            return;
        free(e);
    }
    ks->incomplete = true;
}

static void keys_free(keys_t *ks)
{
    key_entry_t *e, *tmp;
    HASH_ITER(hh, ks->set, e, tmp) {
        HASH_DELETE(hh, ks->set, e);
        free(e);
    }
}

static void list_cb(const char *key, uint64_t generation, uint64_t digest, void *data)
{
    keys_add(data, key);
}

static void cell_cb(const char *key, void *data)
{
    keys_add(data, key);
}

/* Converges every group the runtime holds or the cell places here.
 * Returns 0 or a negative code (try again). */
static int reconcile(agent_t *a)
{
    keys_t ks = {0};
    berth_error_t err;
    /* The cell's groups first: a group claimed from a standby pool adopts
     * its member's runtime group before that key, which no record owns
     * any more, comes up from the runtime's list. */
    int rc = berth_hostlink_groups(a->link, cell_cb, &ks, &err);
    if (rc == 0)
        rc = a->ops->list(a->ctx, list_cb, &ks, &err);
    if (rc != 0) {
        log_error(NULL, "reconciliation could not list groups: %s", err.message);
        keys_free(&ks);
        return rc;
    }
    if (ks.incomplete) {
        log_error(NULL, "reconciliation could not list groups: out of memory");
        keys_free(&ks);
        return BERTH_ENOMEM;
    }
    int bad = 0;
    for (const key_entry_t *e = ks.set; e != NULL && !stopping; e = e->hh.next)
        if (converge(a, e->key, false) < 0)
            bad = BERTH_EIO;
    log_info(NULL, "reconciled %u groups", HASH_COUNT(ks.set));
    keys_free(&ks);
    return bad;
}

/* ---- host registration -------------------------------------------------------------- */

/* Counts GPUs with nvidia-smi when it is installed: sets *count and the
 * SKU (K80, P100, V100, T4 ... from the product name). */
static void gpus_probe(char *sku, size_t cap, int *count)
{
    *count = 0;
    int fds[2];
    if (access("/usr/bin/nvidia-smi", X_OK) != 0 || pipe(fds) != 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/usr/bin/nvidia-smi", "nvidia-smi", "--query-gpu=name",
              "--format=csv,noheader", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t k;
    while (pid > 0 && n < sizeof buf - 1 && (k = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    close(fds[0]);
    int status;
    if (pid <= 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return;
    static const char *known[] = {"K80", "P100", "V100", "T4", "A100", "H100"};
    for (char *line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strstr(line, known[i]) != NULL) {
                snprintf(sku, cap, "%s", known[i]);
                (*count)++;
                break;
            }
    }
}

static berth_store_options_t store_options(const options_t *o)
{
    berth_store_options_t so;
    berth_store_options_init(&so);
    if (o->redis != NULL)
        so.url = o->redis;
    if (o->cell != NULL)
        so.cell = o->cell;
    return so;
}

static int host_register(agent_t *a)
{
    berth_error_t err;
    berth_plugin_host_info_t info;
    if (a->ops->probe(a->ctx, &info, &err) != 0) {
        log_error(NULL, "the runtime did not answer its probe: %s", err.message);
        return -1;
    }
    char sku[BERTH_GPU_SKU_NAME_MAX + 1] = "";
    int gpus = a->o.gpu_count;
    if (gpus < 0)
        gpus_probe(sku, sizeof sku, &gpus);
    else if (a->o.gpu_sku != NULL)
        snprintf(sku, sizeof sku, "%s", a->o.gpu_sku);
    struct sysinfo si;
    uint32_t sys_mib = sysinfo(&si) == 0
        ? (uint32_t)((uint64_t)si.totalram * si.mem_unit / (1024 * 1024)) : 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    berth_host_t h = {
        .name = a->o.host,
        .cores = a->o.cores ? a->o.cores : info.cores ? info.cores : (uint32_t)(cpus > 0 ? cpus : 1),
        .memory_mib = a->o.memory_mib ? a->o.memory_mib
                    : info.memory_mib ? (uint32_t)info.memory_mib : sys_mib,
        .gpu_sku = gpus > 0 ? sku : NULL,
        .gpu_count = gpus > 0 ? (uint32_t)gpus : 0,
        .os = BERTH_OS_LINUX,
        .zone = a->o.zone,
        .state = BERTH_HOST_READY,
    };
    berth_engine_t *engine = NULL;
    berth_store_t *store = NULL;
    berth_store_options_t so = store_options(&a->o);
    int rc = berth_engine_new(NULL, &engine, &err);
    if (rc == 0)
        rc = berth_store_open(&so, engine, &store, &err);
    if (rc == 0)
        rc = berth_store_host_put(store, &h, &err);
    berth_store_close(store);
    berth_engine_free(engine);
    if (rc != 0) {
        log_error(NULL, "host not registered: %s", err.message);
        return -1;
    }
    log_info(NULL, "registered: %u cores, %u MiB, %u GPUs%s%s, runtime %s", h.cores,
             h.memory_mib, h.gpu_count, h.gpu_count ? " " : "", h.gpu_count ? sku : "",
             info.runtime);
    return 0;
}

/* ---- images -------------------------------------------------------------------------- */

typedef struct names {
    char **v;
    size_t n, cap;
} names_t;

static void image_cb(const char *image, void *data)
{
    names_t *ns = data;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 64;
        char **p = realloc(ns->v, cap * sizeof *p);
        if (p == NULL)
            return;
        ns->v = p;
        ns->cap = cap;
    }
    char *copy = strdup(image);
    if (copy != NULL)
        ns->v[ns->n++] = copy;
}

/* Reports the images the runtime holds to the cell, for image locality. */
static void images_publish(agent_t *a)
{
    names_t ns = {0};
    berth_error_t err;
    if (a->ops->images(a->ctx, image_cb, &ns, &err) != 0)
        log_warn(NULL, "images not listed: %s", err.message);
    else if (berth_hostlink_images_put(a->link, (const char *const *)ns.v, ns.n, &err) != 0)
        log_warn(NULL, "images not reported: %s", err.message);
    else
        a->images_dirty = false;
    for (size_t i = 0; i < ns.n; i++)
        free(ns.v[i]);
    free(ns.v);
}

/* ---- calls: logs and exec for a scheduler ---------------------------------------------- */

/* Answers the calls waiting for this host (at most a few per round, so
 * that assignments and supervision go on). */
static void calls_serve(agent_t *a)
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

/* ---- the heartbeat ------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Tells the heartbeat thread that the loop is turning. */
static void beat_turned(beat_t *b)
{
    atomic_store_explicit(&b->turned_ms, mono_ms(), memory_order_relaxed);
}

static void *beat_main(void *data)
{
    beat_t *b = data;
    bool withheld = false;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        pthread_mutex_unlock(&b->mu);
        int64_t idle = mono_ms() - atomic_load_explicit(&b->turned_ms, memory_order_relaxed);
        berth_error_t err;
        if (idle >= (int64_t)b->stall_ms) {
            if (!withheld)
                log_error(NULL, "the agent's loop has not turned for %" PRId64
                          " ms: heartbeat withheld until it does", idle);
            withheld = true;
        } else {
            if (withheld)
                log_info(NULL, "the agent's loop turns again: heartbeat resumed");
            withheld = false;
            if (berth_hostlink_heartbeat(b->link, b->ttl_ms, &err) != 0)
                log_warn(NULL, "heartbeat failed: %s", err.message);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += b->period_ms / 1000;
        until.tv_nsec += (long)(b->period_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&b->mu);
        while (!b->stop && pthread_cond_timedwait(&b->cv, &b->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Opens the thread's connection, renews the heartbeat once (so that the
 * host is alive before its first assignment) and starts the thread, with
 * SIGTERM and SIGINT left to the main thread.  Returns 0 or -1, logged. */
static int beat_start(agent_t *a, const berth_store_options_t *so)
{
    beat_t *b = &a->beat;
    b->period_ms = a->o.heartbeat_ms;
    b->ttl_ms = a->o.ttl_ms;
    b->stall_ms = a->o.stall_ms;
    beat_turned(b);
    berth_error_t err;
    if (berth_hostlink_open(so, a->o.host, &b->link, &err) != 0) {
        log_error(NULL, "cannot reach the cell: %s", err.message);
        return -1;
    }
    if (berth_hostlink_heartbeat(b->link, b->ttl_ms, &err) != 0)
        log_warn(NULL, "heartbeat failed: %s", err.message);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&b->mu, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&b->thread, NULL, beat_main, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        log_error(NULL, "cannot start the heartbeat: %s", strerror(rc));
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        berth_hostlink_close(b->link);
        b->link = NULL;
        return -1;
    }
    b->started = true;
    return 0;
}

/* Stops and joins the heartbeat thread and closes its connection (the
 * alive key then expires by itself).  Safe when it never started. */
static void beat_stop(beat_t *b)
{
    if (b->started) {
        pthread_mutex_lock(&b->mu);
        b->stop = true;
        pthread_cond_signal(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        b->started = false;
    }
    berth_hostlink_close(b->link);
    b->link = NULL;
}

/* ---- the loop ------------------------------------------------------------------------ */

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
static void supervise(agent_t *a)
{
    sweep_choose(a, mono_ms());
    int64_t now = now_ms();         /* the clock restarts are due by        */
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

/* The agent's loop (see the top of the file) until SIGTERM or SIGINT.
 * Returns 0. */
static int run(agent_t *a)
{
    berth_error_t err;
    int64_t next_tick = 0, next_reconcile = 0;
    bool reconciled = false;
    /* Image locality can count this host's images from its first placement on. */
    images_publish(a);
    int64_t next_images = now_ms() + 30000, next_calls = 0;
    while (!stopping) {
        beat_turned(&a->beat);
        int64_t now = now_ms();
        if (!reconciled && now >= next_reconcile) {
            reconciled = reconcile(a) == 0;
            next_reconcile = now + 1000;
        }
        berth_assignment_t as;
        int rc = berth_hostlink_next(a->link, a->o.tick_ms, &as, &err);
        if (rc < 0) {
            log_warn(NULL, "assignments unavailable: %s", err.message);
            struct timespec ts = {0, 500 * 1000 * 1000};
            nanosleep(&ts, NULL);
        } else if (rc == 1) {
            log_info(as.key, "assignment %s %s generation %" PRIu64, as.id,
                     as.op == BERTH_ASSIGN_PLACE ? "place"
                     : as.op == BERTH_ASSIGN_RELEASE ? "release" : "restart",
                     as.generation);
            if (converge(a, as.key, as.op == BERTH_ASSIGN_RESTART) == 0 &&
                berth_hostlink_ack(a->link, &as, &err) != 0)
                log_warn(as.key, "assignment not acknowledged: %s", err.message);
        }
        /* Calls are looked for when no assignment came, and at least every
         * CALLS_EVERY_MS while assignments keep coming: not one round trip
         * per assignment, and a logs or exec call never waits long. */
        now = now_ms();
        if (rc != 1 || now >= next_calls) {
            calls_serve(a);
            next_calls = now + CALLS_EVERY_MS;
        }
        now = now_ms();
        if (a->images_dirty || now >= next_images) {
            images_publish(a);
            next_images = now + 30000;
        }
        if (now >= next_tick) {
            supervise(a);
            next_tick = now + a->o.tick_ms;
        }
    }
    log_info(NULL, "stopping; containers keep running");
    return 0;
}

/* ---- command line -------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: berth-agent --host NAME --plugin NAME|PATH [options]\n"
    "       berth-agent logs --plugin NAME [--plugin-config JSON] --host NAME\n"
    "                        [--tail N] [--timestamps] KEY CONTAINER\n"
    "       berth-agent exec --plugin NAME [--plugin-config JSON] --host NAME\n"
    "                        KEY CONTAINER -- COMMAND [ARG...]\n"
    "\n"
    "Runs the container groups the cell places on host NAME through a runtime\n"
    "plugin (docker, runc, sim, or a path to a plugin), until SIGTERM or SIGINT;\n"
    "the containers keep running when the agent stops.\n"
    "\n"
    "  --redis URL            redis://HOST:PORT or unix:///PATH (redis://127.0.0.1:6379)\n"
    "  --cell NAME            the cell (default)\n"
    "  --plugin-config JSON   the plugin's configuration, or @FILE\n"
    "  --cores N --memory-mib N\n"
    "                         capacity to register (default: probed)\n"
    "  --gpu-sku SKU --gpu-count N\n"
    "                         GPUs to register (default: nvidia-smi, when present)\n"
    "  --zone Z               the host's availability zone\n"
    "  --no-register          the host is in the cell already; leave its record alone\n"
    "  --heartbeat-ms N       heartbeat period (1000); --ttl-ms N its lifetime (10000)\n"
    "  --stall-ms N           no heartbeat once the agent's loop has been stuck this\n"
    "                         long, e.g. in a runtime call (900000)\n"
    "  --tick-ms N            supervision period (250): a group still starting, or with\n"
    "                         a restart due, is looked at every tick\n"
    "  --sweep-ms N           a settled group is looked at again at least this often,\n"
    "                         which bounds how late a crashed container is noticed\n"
    "                         (1000; at least --tick-ms)\n"
    "  --backoff-initial-ms N first restart delay (1000), doubling up to\n"
    "  --backoff-max-ms N     (300000); reset after a run of --backoff-reset-ms (600000)\n"
    "  --stop-grace-s N       SIGTERM to SIGKILL on stop and restart (10)\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("berth-agent: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(berth-agent --help shows the options)\n", stderr);
    return EXIT_USAGE;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || s[0] == '\0' || s[0] == '-' || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static char *read_config(const char *arg)
{
    if (arg[0] != '@')
        return strdup(arg);
    FILE *f = fopen(arg + 1, "r");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF && n < (1u << 20)) {
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 4096;
            char *p = realloc(buf, cap);
            if (p == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        buf[n++] = (char)ch;
    }
    fclose(f);
    if (buf != NULL)
        buf[n] = '\0';
    return buf != NULL ? buf : strdup("");
}

enum {
    OPT_HOST = 1000, OPT_PLUGIN, OPT_PLUGIN_CONFIG, OPT_REDIS, OPT_CELL, OPT_CORES, OPT_MEMORY,
    OPT_GPU_SKU, OPT_GPU_COUNT, OPT_ZONE, OPT_NO_REGISTER, OPT_HEARTBEAT, OPT_TTL, OPT_TICK,
    OPT_STALL, OPT_SWEEP, OPT_BACKOFF_INITIAL, OPT_BACKOFF_MAX, OPT_BACKOFF_RESET,
    OPT_STOP_GRACE, OPT_TAIL, OPT_TIMESTAMPS, OPT_HELP, OPT_VERSION
};

static const struct option long_opts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"plugin", required_argument, NULL, OPT_PLUGIN},
    {"plugin-config", required_argument, NULL, OPT_PLUGIN_CONFIG},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"cell", required_argument, NULL, OPT_CELL},
    {"cores", required_argument, NULL, OPT_CORES},
    {"memory-mib", required_argument, NULL, OPT_MEMORY},
    {"gpu-sku", required_argument, NULL, OPT_GPU_SKU},
    {"gpu-count", required_argument, NULL, OPT_GPU_COUNT},
    {"zone", required_argument, NULL, OPT_ZONE},
    {"no-register", no_argument, NULL, OPT_NO_REGISTER},
    {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
    {"ttl-ms", required_argument, NULL, OPT_TTL},
    {"tick-ms", required_argument, NULL, OPT_TICK},
    {"stall-ms", required_argument, NULL, OPT_STALL},
    {"sweep-ms", required_argument, NULL, OPT_SWEEP},
    {"backoff-initial-ms", required_argument, NULL, OPT_BACKOFF_INITIAL},
    {"backoff-max-ms", required_argument, NULL, OPT_BACKOFF_MAX},
    {"backoff-reset-ms", required_argument, NULL, OPT_BACKOFF_RESET},
    {"stop-grace-s", required_argument, NULL, OPT_STOP_GRACE},
    {"tail", required_argument, NULL, OPT_TAIL},
    {"timestamps", no_argument, NULL, OPT_TIMESTAMPS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Parses the options into *o; returns -1 to go on, or an exit status. */
static int parse_options(int argc, char **argv, options_t *o, uint32_t *tail, bool *timestamps)
{
    *o = (options_t){.gpu_count = -1, .heartbeat_ms = 1000, .ttl_ms = 10000, .tick_ms = 250,
                     .stall_ms = 900000, .sweep_ms = 1000,
                     .backoff_initial_ms = 1000, .backoff_max_ms = 300000,
                     .backoff_reset_ms = 600000, .stop_grace_s = 10};
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+", long_opts, NULL)) != -1) {
        uint32_t *u = NULL;
        switch (ch) {
        case OPT_HOST: o->host = optarg; break;
        case OPT_PLUGIN: o->plugin = optarg; break;
        case OPT_PLUGIN_CONFIG:
            free(o->plugin_config);
            o->plugin_config = read_config(optarg);
            if (o->plugin_config == NULL)
                return usage_error("--plugin-config %s: cannot be read", optarg);
            break;
        case OPT_REDIS: o->redis = optarg; break;
        case OPT_CELL: o->cell = optarg; break;
        case OPT_GPU_SKU: o->gpu_sku = optarg; break;
        case OPT_ZONE: o->zone = optarg; break;
        case OPT_NO_REGISTER: o->no_register = true; break;
        case OPT_TIMESTAMPS: *timestamps = true; break;
        case OPT_CORES: u = &o->cores; break;
        case OPT_MEMORY: u = &o->memory_mib; break;
        case OPT_HEARTBEAT: u = &o->heartbeat_ms; break;
        case OPT_TTL: u = &o->ttl_ms; break;
        case OPT_TICK: u = &o->tick_ms; break;
        case OPT_STALL: u = &o->stall_ms; break;
        case OPT_SWEEP: u = &o->sweep_ms; break;
        case OPT_BACKOFF_INITIAL: u = &o->backoff_initial_ms; break;
        case OPT_BACKOFF_MAX: u = &o->backoff_max_ms; break;
        case OPT_BACKOFF_RESET: u = &o->backoff_reset_ms; break;
        case OPT_STOP_GRACE: u = &o->stop_grace_s; break;
        case OPT_TAIL: u = tail; break;
        case OPT_GPU_COUNT: {
            uint32_t n;
            if (!parse_u32(optarg, &n) || n > 63)
                return usage_error("--gpu-count: expected 0 to 63, got '%s'", optarg);
            o->gpu_count = (int)n;
            break;
        }
        case OPT_HELP: fputs(usage_text, stdout); return 0;
        case OPT_VERSION: printf("berth-agent %s\n", berth_version()); return 0;
        default:
            return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
        if (u != NULL && !parse_u32(optarg, u))
            return usage_error("%s: expected a non-negative integer, got '%s'",
                               argv[optind - 2], optarg);
    }
    if (o->host == NULL)
        return usage_error("--host is required");
    if (o->plugin == NULL)
        return usage_error("--plugin is required");
    if (o->heartbeat_ms == 0 || o->ttl_ms <= o->heartbeat_ms)
        return usage_error("--ttl-ms must exceed --heartbeat-ms, which must be above zero");
    if (o->tick_ms == 0 || o->tick_ms > 2000)
        return usage_error("--tick-ms: expected 1 to 2000");
    if (o->sweep_ms < o->tick_ms || o->sweep_ms > 3600000)
        return usage_error("--sweep-ms: expected --tick-ms (%u) to 3600000", o->tick_ms);
    if (o->stall_ms <= o->ttl_ms)
        return usage_error("--stall-ms must exceed --ttl-ms");
    if (o->backoff_initial_ms == 0 || o->backoff_max_ms < o->backoff_initial_ms)
        return usage_error("--backoff-max-ms must be at least --backoff-initial-ms (> 0)");
    if (o->gpu_sku != NULL && o->gpu_count < 0)
        return usage_error("--gpu-sku needs --gpu-count");
    return -1;
}

static int plugin_open(agent_t *a)
{
    berth_error_t err;
    if (berth_plugin_load(a->o.plugin, &a->plugin, &err) != 0) {
        fprintf(stderr, "berth-agent: %s\n", err.message);
        return EXIT_USAGE;
    }
    a->ops = berth_plugin_ops(a->plugin);
    if (a->ops->open(a->o.plugin_config, a->o.host, &a->ctx, &err) != 0) {
        fprintf(stderr, "berth-agent: plugin %s: %s%s%s\n", a->ops->name, err.message,
                err.target[0] ? " at " : "", err.target);
        return EXIT_USAGE;
    }
    return 0;
}

/* `berth-agent logs|exec`: one plugin operation for an operator. */
static int one_shot(agent_t *a, const char *verb, int argc, char **argv, uint32_t tail,
                    bool timestamps)
{
    if (argc - optind < 2)
        return usage_error("%s needs KEY and CONTAINER", verb);
    const char *key = argv[optind], *container = argv[optind + 1];
    int rc = plugin_open(a);
    if (rc != 0)
        return rc;
    berth_error_t err;
    char *out = NULL;
    size_t len = 0;
    int code = 0;
    if (strcmp(verb, "logs") == 0) {
        rc = a->ops->logs(a->ctx, key, container, tail, timestamps, &out, &len, &err);
    } else {
        int first = optind + 2;
        if (first < argc && strcmp(argv[first], "--") == 0)
            first++;
        if (first >= argc)
            return usage_error("exec needs a command after --");
        rc = a->ops->exec(a->ctx, key, container, (const char *const *)&argv[first],
                          (size_t)(argc - first), &out, &len, &code, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "berth-agent: %s: %s\n", verb, err.message);
        return 1;
    }
    fwrite(out, 1, len, stdout);
    free(out);
    return strcmp(verb, "exec") == 0 ? code : 0;
}

int main(int argc, char **argv)
{
    const char *verb = NULL;
    if (argc > 1 && (strcmp(argv[1], "logs") == 0 || strcmp(argv[1], "exec") == 0)) {
        verb = argv[1];
        argv++;
        argc--;
    }
    agent_t a = {0};
    uint32_t tail = 0;
    bool timestamps = false;
    int rc = parse_options(argc, argv, &a.o, &tail, &timestamps);
    if (rc >= 0) {
        free(a.o.plugin_config);
        return rc;
    }
    log_host = a.o.host;
    if (verb != NULL) {
        rc = one_shot(&a, verb, argc, argv, tail, timestamps);
    } else if ((rc = plugin_open(&a)) == 0) {
        struct sigaction sa = {0};
        sa.sa_handler = on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        berth_error_t err;
        berth_store_options_t so = store_options(&a.o);
        if (!a.o.no_register && host_register(&a) != 0) {
            rc = 1;
        } else if (berth_hostlink_open(&so, a.o.host, &a.link, &err) != 0) {
            log_error(NULL, "cannot reach the cell: %s", err.message);
            rc = 1;
        } else if (beat_start(&a, &so) != 0) {
            rc = 1;
        } else {
            rc = run(&a);
        }
        beat_stop(&a.beat);
    }
    groups_free(&a);
    berth_hostlink_close(a.link);
    if (a.ops != NULL && a.ctx != NULL)
        a.ops->close(a.ctx);
    berth_plugin_unload(a.plugin);
    free(a.o.plugin_config);
    return rc;
}
