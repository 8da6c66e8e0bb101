/*
 * agent.h: how the parts of berth-agent, Berth's host agent, meet.
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
 *   main.c       options (getopt_long), `berth-agent logs|exec`, start-up,
 *                the loop
 *   register.c   the host's record: capacity, GPUs
 *   converge.c   assignments to the runtime: converge, adopt, teardown,
 *                restart; reconciliation at start
 *   supervise.c  the group state machine, back-off, the supervise tick
 *   views.c      the instance view: events, render, write, restore
 *   groups.c     the agent's groups and their hash tables; the host ports
 *                each group's ports last had on this host
 *   heartbeat.c  the heartbeat thread
 *   images.c     the images the runtime holds, reported to the cell
 *   calls.c      logs and exec calls from schedulers
 *   sessions.c   interactive sessions, a thread each
 *   log.c        clocks and log lines
 *
 * One thread does all but the heartbeat, which has a thread of its own
 * that touches only its beat_t and the log, and the interactive sessions,
 * each on a thread that touches only its session (sessions.c).  Nothing here is Berth's API:
 * the header belongs to the agent alone and must never be installed or
 * included from outside tools/berth-agent/.  No part may log a secret.
 */
#ifndef BERTH_AGENT_H
#define BERTH_AGENT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An allocation that fails inside uthash leaves the table as it was and
 * the element's hh.tbl NULL: the agent then refuses the one group (and
 * tries its assignment again later) instead of exiting. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "berth-plugin.h"
#include "lib/clock.h"
#include "lib/seal.h"

#define EVENTS_MAX 12
#define PORTS_REMEMBERED_MAX 4096   /* groups whose host ports are kept      */

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
    berth__keyring_t *secrets;      /* --secrets-key: unseals a document's
                                     * secrets for the runtime (NULL: a
                                     * sealed secret fails its group)       */
} options_t;

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
    int64_t provisioned_ms;         /* wall ms it became Succeeded or Failed
                                     * (0: not yet); the view's stateTime   */
    cview_t *c;                     /* init containers, then containers     */
    size_t n;
    events_t ev;                    /* the group's own events               */
    berth_group_status_t st;        /* the runtime's last answer            */
    char *last_view;                /* the view last written                */
    bool refresh;                   /* started something: read the state again */
    uint32_t start_failures;        /* starts that failed, each followed by a new create */
    bool ports_asked;               /* created asking for remembered host ports */
    /* Supervision (see supervise.c).  busy: step it every tick;
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

/* The host ports a group's ports last had on this host, by group key.
 * They live in the agent, not in the cell: a stop releases the group (its
 * record and view go) while the ports are this host's alone; an agent
 * that restarts learns them again from the groups the runtime still
 * holds. */
typedef struct remembered {
    UT_hash_handle hh;              /* agent_t.ports, by key; oldest first  */
    size_t n;
    berth_published_port_t ports[BERTH_PLUGIN_PORTS_MAX];
    char key[];
} remembered_t;

/* The heartbeat thread (see heartbeat.c). */
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
    remembered_t *ports;            /* at most PORTS_REMEMBERED_MAX         */
    int64_t last_tick_ms;           /* the last tick, CLOCK_MONOTONIC (0: none) */
    bool images_dirty;              /* an image was pulled: report the set  */
    beat_t beat;
} agent_t;

/* ---- main.c ------------------------------------------------------------------------- */

/* Set by SIGTERM or SIGINT: the loop, the reconciliation and the tick stop
 * at the next group. */
extern volatile sig_atomic_t stopping;

/* ---- log.c -------------------------------------------------------------------------- */

extern const char *log_host;        /* the host's name in log lines ("-")  */

void logf_(const char *level, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_info(key, ...) logf_("info", key, __VA_ARGS__)
#define log_warn(key, ...) logf_("warn", key, __VA_ARGS__)
#define log_error(key, ...) logf_("error", key, __VA_ARGS__)

/* ---- groups.c ----------------------------------------------------------------------- */

agroup_t *group_new(const char *key, uint64_t generation, uint64_t digest,
                    berth_group_t *spec);
void group_free(agroup_t *g);
agroup_t *group_find(agent_t *a, const char *key);
int group_keep(agent_t *a, agroup_t *g);
void group_drop(agent_t *a, const char *key);
void groups_free(agent_t *a);
void runtime_unindex(agent_t *a, agroup_t *g);
const char *runtime_key(const agroup_t *g);
agroup_t *runtime_owner(agent_t *a, const char *key);
const berth_container_t *spec_container(const berth_group_t *s, size_t i);
void ports_remember(agent_t *a, agroup_t *g);
const remembered_t *ports_recall(agent_t *a, const char *key);
void ports_forget_all(agent_t *a);

/* ---- views.c ------------------------------------------------------------------------ */

void view_touch(agroup_t *g);
void event_add(agroup_t *g, events_t *ev, const char *name, const char *type,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void view_write(agent_t *a, agroup_t *g);
void view_restore(agent_t *a, agroup_t *g);

/* ---- supervise.c -------------------------------------------------------------------- */

void fail_group(agent_t *a, agroup_t *g, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void status_absorb(agroup_t *g);
/* Whether a container of g that terminated with exit_code runs again under
 * g's restartPolicy (Always: yes; OnFailure: when exit_code != 0). */
bool policy_restarts(const agroup_t *g, int exit_code);
void group_step(agent_t *a, agroup_t *g);
void supervise(agent_t *a);

/* ---- converge.c --------------------------------------------------------------------- */

void group_create(agent_t *a, agroup_t *g);
int converge(agent_t *a, const char *key, bool restart);
int reconcile(agent_t *a);

/* ---- register.c, images.c, calls.c -------------------------------------------------- */

berth_store_options_t store_options(const options_t *o);
int host_register(agent_t *a);
void images_publish(agent_t *a);
void calls_serve(agent_t *a);

/* ---- sessions.c ------------------------------------------------------------------------- */

/* Starts the interactive session `call` asks for on a thread of its own,
 * on runtime group `runtime_key`; takes the call (freed by the thread, or
 * here when the session cannot start, the caller then told why). */
void session_start(agent_t *a, berth_call_t *call, const char *runtime_key);

/* Waits, bounded, for the session threads to end (they end at `stopping`). */
void sessions_wait(void);

/* ---- heartbeat.c -------------------------------------------------------------------- */

void beat_turned(beat_t *b);
int beat_start(agent_t *a, const berth_store_options_t *so);
void beat_stop(beat_t *b);

#endif
