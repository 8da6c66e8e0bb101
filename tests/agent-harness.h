/*
 * agent-harness.h: what the agent tests share: berth-agent processes
 * started and stopped from the build tree, a scheduler side (an engine and
 * a store on the test's Redis) that places groups the way berthd does, and
 * bounded waits on the instance views the agents write back.
 *
 * Every agent dies with the test process (PR_SET_PDEATHSIG) and every wait
 * gives up after its timeout with a message naming what it waited for.
 */
#ifndef BERTH_TEST_AGENT_HARNESS_H
#define BERTH_TEST_AGENT_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "berth.h"
#include "test-time.h"

/* One berth-agent process. */
typedef struct test_agent {
    pid_t pid;
    char host[64];
    char log_path[256];             /* its stderr                           */
} test_agent_t;

/* Starts `$top_builddir/tools/berth-agent/berth-agent --redis URL --cell CELL --host
 * HOST --plugin PLUGIN --plugin-config CONFIG` plus the NULL-terminated
 * `extra` arguments (may be NULL), plus `--secrets-key test_secrets_key()`
 * unless `extra` names --secrets-key, stderr to a log file in /tmp, under
 * the command words of $BERTH_TEST_AGENT_WRAPPER when set (a checker such
 * as valgrind).  Returns 0 or -1. */
int test_agent_start(test_agent_t *a, const char *url, const char *cell, const char *host,
                     const char *plugin, const char *config, const char *const *extra);

/* The key file every berthd and agent the harnesses start is given
 * (--secrets-key), so that the daemons seal and the agents unseal with the
 * same key: written once per test process under /tmp (mode 0600, key id
 * "test"), removed when the process exits.  Returns its path, or NULL when
 * it cannot be written (the message printed). */
const char *test_secrets_key(void);

/* Whether the NULL-terminated `args` (may be NULL) name `option`. */
bool test_args_have(const char *const *args, const char *option);

/* SIGTERM, then waits (at most 15 s, then SIGKILL).  Returns the exit
 * status, or -1. */
int test_agent_stop(test_agent_t *a);

/* SIGKILL and reap: a crash. */
void test_agent_kill(test_agent_t *a);

/* Prints the agent's log (the last `lines` lines) to stderr. */
void test_agent_dump(const test_agent_t *a, int lines);

/* The scheduler side: an engine replica of the cell and its store. */
typedef struct test_sched {
    berth_engine_t *engine;
    berth_store_t *store;
} test_sched_t;

int test_sched_open(test_sched_t *s, const char *url, const char *cell);
void test_sched_close(test_sched_t *s);

/* Waits (at most timeout_ms) until host `name` is in the cell and ready. */
bool test_sched_wait_host(test_sched_t *s, const char *name, int timeout_ms);

/* Parses the ACI document, builds its request and places (or redeploys)
 * it under `key` where the engine chooses, committing through the store.
 * Stores the placement in *out (may be NULL).  Returns berth_store_place()'s
 * code. */
int test_sched_place(test_sched_t *s, const char *key, const char *doc, berth_placement_t *out);

/* Reads the group's instance view into a JSON object (NULL when none). */
json_t *test_view(test_sched_t *s, const char *key);

/* A predicate on a view. */
typedef bool (*test_view_pred)(json_t *view, void *data);

/* Waits (at most timeout_ms, polling every 50 ms) until the group's view
 * satisfies pred (view NULL when there is none); returns the last view
 * read (json_decref it), or NULL with a message on stderr after the
 * timeout (the last view printed). */
json_t *test_view_wait(test_sched_t *s, const char *key, test_view_pred pred, void *data,
                       int timeout_ms, const char *what);

/* View helpers. */
json_t *test_view_container(json_t *view, const char *name);  /* containers or initContainers */
const char *test_view_cstate(json_t *view, const char *name); /* currentState.state */
int test_view_restarts(json_t *view, const char *name);       /* restartCount, -1 */
bool test_view_has_event(json_t *view, const char *name, const char *event,
                         const char *message_part);           /* name NULL: the group's */
const char *test_view_group_state(json_t *view);              /* instanceView.state */

/* Common predicates.  data: a container name. */
bool test_pred_running(json_t *view, void *data);     /* provisioning Succeeded, container Running */
bool test_pred_gone(json_t *view, void *data);        /* no view */

/* Whether the text file at `path` has a line holding `needle` (a log). */
bool test_file_contains(const char *path, const char *needle);

/* Milliseconds of the monotonic clock. */
int64_t test_now_ms(void);
void test_sleep_ms(int ms);

#endif /* BERTH_TEST_AGENT_HARNESS_H */
