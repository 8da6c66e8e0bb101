/*
 * lib/spawn.c: fork and exec with bounds (see spawn.h).
 *
 * Between fork() and exec() the child only calls async-signal-safe
 * functions on memory prepared before the fork; it never returns into the
 * caller's code.  The parent never waits without a deadline and never
 * leaves a child it gave up on unkilled or unreaped.
 */
#define _GNU_SOURCE
#include "spawn.h"

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* In the child: stdin on /dev/null, stdout and stderr where asked, the
 * options applied, then exec.  An exec failure's errno (or a refused
 * limit's) goes down `report` (close-on-exec, so a successful exec closes
 * it unwritten). */
static void child_exec(char *const argv[], const berth__spawn_options_t *o, pid_t parent,
                       int out_fd, int err_fd, int report)
{
    if (o->own_process_group)
        setpgid(0, 0);
    if (o->death_signal != 0) {
        prctl(PR_SET_PDEATHSIG, o->death_signal);
        if (getppid() != parent)
            _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (o->nofile > 0) {
        struct rlimit rl = {(rlim_t)o->nofile, (rlim_t)o->nofile};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            int e = errno;
            ssize_t w = write(report, &e, sizeof e);
            (void)w;
            _exit(127);
        }
    }
    int log = o->log_path != NULL ? open(o->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
    if (log >= 0) {
        err_fd = log;
        if (o->log_stdout)
            out_fd = log;
    }
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(out_fd >= 0 ? out_fd : devnull, 1);
        if (err_fd >= 0)
            dup2(err_fd, 2);
        else if (err_fd == -2)
            dup2(devnull, 2);
        if (devnull > 2)
            close(devnull);
    }
    if (log > 2)
        close(log);
    execvpe(argv[0], argv, o->env != NULL ? o->env : environ);
    int e = errno;
    ssize_t w = write(report, &e, sizeof e);
    (void)w;
    _exit(127);
}

/* Reads the exec report: 0 once exec succeeded (the pipe closed empty),
 * else the child's errno. */
static int exec_report(int report)
{
    int e = 0;
    ssize_t r;
    do {
        r = read(report, &e, sizeof e);
    } while (r < 0 && errno == EINTR);
    close(report);
    return r == (ssize_t)sizeof e ? e : 0;
}

/* Forks argv with stdout/stderr on the given descriptors (-1: /dev/null
 * for stdout, inherited for stderr; -2: /dev/null for stderr).  Returns the
 * pid, or -1 with err set (an exec failure is reaped here). */
static pid_t fork_exec(char *const argv[], const berth__spawn_options_t *o, int out_fd,
                       int err_fd, char *err, size_t cap)
{
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        snprintf(err, cap, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, cap, "fork: %s", strerror(errno));
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (pid == 0) {
        close(report[0]);
        child_exec(argv, o, parent, out_fd, err_fd, report[1]);
    }
    close(report[1]);
    int e = exec_report(report[0]);
    if (e != 0) {
        snprintf(err, cap, "cannot run %s: %s", argv[0], strerror(e));
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        return -1;
    }
    return pid;
}

/* Contract: spawn.h. */
pid_t berth__spawn_start(char *const argv[], const berth__spawn_options_t *opts, char *err,
                         size_t cap)
{
    static const berth__spawn_options_t defaults;
    const berth__spawn_options_t *o = opts != NULL ? opts : &defaults;
    err[0] = '\0';
    return fork_exec(argv, o, -1, -1, err, cap);
}

/* Contract: spawn.h. */
int berth__spawn_reap(pid_t pid, int64_t wait_ms, int *status)
{
    int64_t deadline = berth__clock_monotonic_ms() + wait_ms;
    int64_t pause_ms = 1;
    for (;;) {
        int st = 0;
        pid_t got = waitpid(pid, &st, WNOHANG);
        if (got == pid) {
            if (status != NULL)
                *status = st;
            return 0;
        }
        if (got < 0 && errno == ECHILD)
            return 1;
        int64_t left = deadline - berth__clock_monotonic_ms();
        if (left <= 0)
            return -1;
        berth__clock_sleep_ms(pause_ms < left ? pause_ms : left);
        if (pause_ms < 20)
            pause_ms *= 2;
    }
}

/* Contract: spawn.h. */
int berth__spawn_stop(pid_t pid, int signal, int64_t wait_ms)
{
    if (pid <= 0)
        return 0;
    kill(pid, signal);
    if (berth__spawn_reap(pid, wait_ms, NULL) >= 0)
        return 0;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    return 1;
}

/* Where a run keeps the captured streams: a caller's fixed buffer, or one
 * that grows (by doubling) up to a bound.  buf is NUL-terminated whenever
 * it exists; what does not fit is read and dropped. */
typedef struct sink {
    char *buf;
    size_t cap;                     /* bytes buf holds                      */
    size_t max;                     /* the most bytes kept, before the NUL  */
    bool grow;                      /* buf is ours to realloc               */
    bool no_memory;                 /* a growth failed: buf was freed       */
    size_t used;
} sink_t;

/* Keeps what fits of chunk[0..n) in the sink. */
static void keep(sink_t *s, const char *chunk, size_t n)
{
    if (s->no_memory || s->used >= s->max)
        return;
    size_t take = n < s->max - s->used ? n : s->max - s->used;
    if (s->grow && s->used + take + 1 > s->cap) {
        size_t cap = s->cap < 4096 ? 4096 : s->cap;
        while (cap < s->used + take + 1)
            cap *= 2;
        if (cap > s->max + 1)
            cap = s->max + 1;
        char *nb = realloc(s->buf, cap);
        if (nb == NULL) {
            free(s->buf);
            s->buf = NULL;
            s->no_memory = true;
            return;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->used, chunk, take);
    s->used += take;
    s->buf[s->used] = '\0';
}

/* Runs argv to completion into sink `s` (see berth__spawn_run()). */
static int run_into(char *const argv[], const berth__spawn_options_t *opts,
                    int64_t timeout_ms, sink_t *s, berth__spawn_result_t *res)
{
    berth__spawn_options_t o_run = {0};
    if (opts != NULL)
        o_run = *opts;
    o_run.log_path = NULL;          /* the captured streams go to the pipe */
    const berth__spawn_options_t *o = &o_run;
    memset(res, 0, sizeof *res);
    res->exit_status = -1;

    int fds[2] = {-1, -1};
    if (o->capture != 0 && pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(res->message, sizeof res->message, "pipe: %s", strerror(errno));
        return -1;
    }
    int out_fd = o->capture & BERTH__SPAWN_CAPTURE_STDOUT ? fds[1] : -1;
    int err_fd = o->capture & BERTH__SPAWN_CAPTURE_STDERR ? fds[1] : -2;
    pid_t pid = fork_exec(argv, o, out_fd, err_fd, res->message, sizeof res->message);
    if (fds[1] >= 0)
        close(fds[1]);
    if (pid < 0) {
        if (fds[0] >= 0)
            close(fds[0]);
        return -1;
    }

    int64_t deadline = berth__clock_monotonic_ms() + timeout_ms;
    int status = 0;
    bool reaped = false;
    int open_pipe = fds[0];
    while (!reaped) {
        int64_t left = deadline - berth__clock_monotonic_ms();
        if (left <= 0) {
            res->timed_out = true;
            if (o->own_process_group)
                kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
        if (open_pipe >= 0) {
            /* The pipe's end (EOF) usually comes with the exit. */
            struct pollfd p = {open_pipe, POLLIN, 0};
            if (poll(&p, 1, left < 50 ? (int)left : 50) > 0) {
                char chunk[4096];
                ssize_t r = read(open_pipe, chunk, sizeof chunk);
                if (r > 0)
                    keep(s, chunk, (size_t)r);
                else if (r == 0 || errno != EINTR)
                    open_pipe = -1;
            }
        } else {
            berth__clock_sleep_ms(left < 10 ? left : 10);
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            reaped = true;
        else if (w < 0 && errno != EINTR) {
            snprintf(res->message, sizeof res->message, "waitpid: %s", strerror(errno));
            if (fds[0] >= 0)
                close(fds[0]);
            return -1;
        }
    }
    /* What the child wrote just before exiting is still in the pipe (a
     * full pipe buffer, 64 KiB by default, fits the bound many times); a
     * grandchild that keeps the pipe open does not hold us past the exit. */
    for (int drained = 0; !res->timed_out && open_pipe >= 0 && drained < 256; drained++) {
        struct pollfd p = {open_pipe, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0)
            break;
        char chunk[4096];
        ssize_t r = read(open_pipe, chunk, sizeof chunk);
        if (r <= 0)
            break;
        keep(s, chunk, (size_t)r);
    }
    res->output_len = s->used;
    if (fds[0] >= 0)
        close(fds[0]);

    if (res->timed_out) {
        res->signal = SIGKILL;
        snprintf(res->message, sizeof res->message, "timed out after %lld ms",
                 (long long)timeout_ms);
        return -1;
    }
    if (WIFEXITED(status)) {
        res->exit_status = WEXITSTATUS(status);
        return 0;
    }
    res->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    snprintf(res->message, sizeof res->message, "killed by signal %d", res->signal);
    return -1;
}

/* Contract: spawn.h. */
int berth__spawn_run(char *const argv[], const berth__spawn_options_t *opts, int64_t timeout_ms,
                     char *output, size_t output_cap, berth__spawn_result_t *res)
{
    sink_t s = {output, output_cap, output_cap > 0 ? output_cap - 1 : 0, false, false, 0};
    if (output_cap > 0)
        output[0] = '\0';
    return run_into(argv, opts, timeout_ms, &s, res);
}

/* Contract: spawn.h. */
int berth__spawn_run_alloc(char *const argv[], const berth__spawn_options_t *opts,
                           int64_t timeout_ms, size_t max_output, char **output,
                           berth__spawn_result_t *res)
{
    *output = NULL;
    sink_t s = {calloc(1, 1), 1, max_output, true, false, 0};
    if (s.buf == NULL) {
        memset(res, 0, sizeof *res);
        res->exit_status = -1;
        snprintf(res->message, sizeof res->message, "out of memory");
        return -1;
    }
    int rc = run_into(argv, opts, timeout_ms, &s, res);
    if (s.no_memory) {
        res->output_len = 0;
        snprintf(res->message, sizeof res->message, "out of memory");
        return -1;
    }
    *output = s.buf;
    return rc;
}
