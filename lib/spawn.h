/*
 * lib/spawn.h: running another program from Berth's daemon, plugins, bench
 * and tests: an argv executed directly (never through a shell), started in
 * the background or run to completion within a time bound with its output
 * captured, and stopped or reaped with a bounded wait.
 *
 * Nothing here may wait without a bound, leave a timed-out child running,
 * or pass a string to a shell.  The functions are blocking and belong in
 * tools, plugins' worker calls and tests, never on an event loop's thread
 * (a daemon starts its helpers before its loop runs).
 */
#ifndef BERTH_LIB_SPAWN_H
#define BERTH_LIB_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Which of the child's streams berth__spawn_run() keeps. */
#define BERTH__SPAWN_CAPTURE_STDOUT 1
#define BERTH__SPAWN_CAPTURE_STDERR 2

/* How to start a child.  All-zero (or NULL) is valid: the caller's
 * environment, stdin and stdout on /dev/null, stderr inherited, same
 * process group, no death signal, the caller's limits. */
typedef struct berth__spawn_options {
    char *const *env;               /* the whole environment; NULL: environ */
    int capture;                    /* BERTH__SPAWN_CAPTURE_* bits (run only);
                                       streams not captured go to /dev/null,
                                       except stderr for start, inherited  */
    bool own_process_group;         /* setpgid(0, 0): a terminal's ^C or a
                                       kill of the group spares the parent */
    int death_signal;               /* nonzero: sent to the child when the
                                       parent dies (PR_SET_PDEATHSIG)      */
    const char *log_path;           /* start only: stderr appended to this
                                       file (made 0600); NULL: inherited   */
    bool log_stdout;                /* start only: stdout to log_path too  */
    unsigned long nofile;           /* nonzero: the child's RLIMIT_NOFILE,
                                       soft and hard (exec fails if refused) */
} berth__spawn_options_t;

/* How a run ended. */
typedef struct berth__spawn_result {
    int exit_status;                /* 0..255 when it exited, else -1       */
    int signal;                     /* the signal that ended it, else 0     */
    bool timed_out;                 /* killed (SIGKILL) at the bound        */
    size_t output_len;              /* bytes kept in the output buffer      */
    char message[160];              /* why it failed, "" when it exited     */
} berth__spawn_result_t;

/* Starts argv[0] (found through PATH) with argv, in the background.
 * Returns the child's pid (stop it with berth__spawn_stop() or reap it
 * with berth__spawn_reap()), or -1 with the reason in err[cap] when it
 * could not be forked or executed (an exec failure is seen here: the child
 * reports it before exiting, and is reaped). */
pid_t berth__spawn_start(char *const argv[], const berth__spawn_options_t *opts, char *err,
                         size_t cap);

/* Runs argv to completion, waiting at most timeout_ms, and keeps the
 * captured streams' first output_cap - 1 bytes in output (NUL-terminated;
 * output may be NULL when output_cap is 0; the rest is read and dropped).
 * At the bound the child (and its group, when it has its own) is killed
 * and reaped.  Returns 0 when the program exited (any status: see
 * res->exit_status), or -1 when it could not run, was killed by a signal or
 * timed out (res->message says which). */
int berth__spawn_run(char *const argv[], const berth__spawn_options_t *opts, int64_t timeout_ms,
                     char *output, size_t output_cap, berth__spawn_result_t *res);

/* Runs argv as berth__spawn_run() does, keeping the captured streams' first
 * max_output bytes in a buffer that grows as they arrive (the rest is read
 * and dropped).  *output receives a new NUL-terminated buffer of
 * res->output_len bytes whatever the return (free() it), except when memory
 * ran out: then *output is NULL, -1 is returned and res->message says
 * "out of memory" (the program was still run to its end or its bound).
 * Returns as berth__spawn_run(). */
int berth__spawn_run_alloc(char *const argv[], const berth__spawn_options_t *opts,
                           int64_t timeout_ms, size_t max_output, char **output,
                           berth__spawn_result_t *res);

/* Waits at most wait_ms for child `pid` to end and reaps it.  Returns 0
 * with its wait status in *status (when status is not NULL), 1 when it was
 * not ours to reap (ECHILD: reaped elsewhere), or -1 on timeout. */
int berth__spawn_reap(pid_t pid, int64_t wait_ms, int *status);

/* Stops child `pid`: sends `signal` (SIGTERM to ask, SIGKILL to force),
 * waits at most wait_ms, then sends SIGKILL and reaps it.  Returns 0 when
 * it ended within the wait, 1 when it had to be killed. */
int berth__spawn_stop(pid_t pid, int signal, int64_t wait_ms);

#endif
