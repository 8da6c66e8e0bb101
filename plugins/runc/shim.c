/*
 * shim.c: the supervisor ("shim") that runs each container.
 *
 * A container starts under a detached supervisor: the caller forks, the
 * child calls setsid() and forks again, and the grandchild runs `runc run`
 * in the foreground with its output on a pipe, writes each line to the log
 * prefixed with its RFC 3339 time, and, when runc returns, records the exit
 * code and the finish time and deletes what runc left.  The caller does
 * not stay: it only waits (bounded) until the container runs or has
 * already ended.  After fork() the supervisor uses only async-signal-safe
 * calls and memory prepared before the fork (lib/spawn's run of `runc
 * delete` included: without capture it only forks, execs, waits and
 * sleeps; it formats a message, with snprintf and strerror, only when the
 * run fails); it must never do otherwise, and never restart its container.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runc.h"
#include "lib/spawn.h"

/* Everything the supervisor needs, prepared before fork(). */
typedef struct shim_plan {
    char *run_argv[10];
    char *delete_argv[8];
    char rid[RUNC_ID_MAX];
    char bundle[RUNC_PATH_MAX];
    char log[RUNC_PATH_MAX];
    char exit_file[RUNC_PATH_MAX];
    char exit_tmp[RUNC_PATH_MAX];
    char finished[RUNC_PATH_MAX];
    char finished_tmp[RUNC_PATH_MAX];
    char pid_file[RUNC_PATH_MAX];
    char pid_tmp[RUNC_PATH_MAX];
} shim_plan_t;

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

/* Writes the current time as "YYYY-MM-DDTHH:MM:SS.mmmZ " (RUNC_TIME_PREFIX_LEN
 * bytes) to buf.  Async-signal-safe (no locale, no time zone). */
static void shim_time_prefix(char *buf)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t secs = ts.tv_sec;
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    /* Howard Hinnant's civil_from_days. */
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    unsigned yy = (unsigned)(y < 0 ? 0 : y > 9999 ? 9999 : y);
    put2(buf, yy / 100);
    put2(buf + 2, yy % 100);
    buf[4] = '-';
    put2(buf + 5, m);
    buf[7] = '-';
    put2(buf + 8, d);
    buf[10] = 'T';
    put2(buf + 11, (unsigned)(rem / 3600));
    buf[13] = ':';
    put2(buf + 14, (unsigned)(rem / 60 % 60));
    buf[16] = ':';
    put2(buf + 17, (unsigned)(rem % 60));
    buf[19] = '.';
    buf[20] = (char)('0' + ms / 100);
    put2(buf + 21, ms % 100);
    buf[23] = 'Z';
    buf[24] = ' ';
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* The supervisor: runs in the grandchild, never returns. */
static __attribute__((noreturn)) void shim_main(const shim_plan_t *plan)
{
    prctl(PR_SET_NAME, RUNC_SHIM_NAME, 0, 0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGCHLD, SIG_DFL);   /* the caller may ignore it; we wait for runc */
    close_from(0);
    int null = open("/dev/null", O_RDWR);   /* fd 0 */
    if (null != 0)
        _exit(1);
    dup2(0, 1);
    dup2(0, 2);
    int logfd = open(plan->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        _exit(1);
    pid_t child = fork();
    if (child == 0) {
        signal(SIGPIPE, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        execvp(plan->run_argv[0], plan->run_argv);
        static const char msg[] = "berth: cannot execute the runc program\n";
        write_all(2, msg, sizeof msg - 1);
        _exit(127);
    }
    close(fds[1]);
    int code = 127;
    if (child > 0) {
        /* Copy the output to the log, each line prefixed with its time. */
        bool line_start = true;
        char buf[4096];
        for (;;) {
            ssize_t r = read(fds[0], buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            if (logfd < 0)
                continue;
            ssize_t i = 0;
            while (i < r) {
                if (line_start) {
                    char prefix[RUNC_TIME_PREFIX_LEN];
                    shim_time_prefix(prefix);
                    write_all(logfd, prefix, sizeof prefix);
                    line_start = false;
                }
                const char *nl = memchr(buf + i, '\n', (size_t)(r - i));
                ssize_t end = nl ? (ssize_t)(nl - buf) + 1 : r;
                write_all(logfd, buf + i, (size_t)(end - i));
                if (nl != NULL)
                    line_start = true;
                i = end;
            }
        }
        if (!line_start && logfd >= 0)
            write_all(logfd, "\n", 1);
        int st;
        while (waitpid(child, &st, 0) < 0) {
            if (errno != EINTR) {
                st = -1;
                break;
            }
        }
        code = st == -1 ? 255 : wait_code(st);
    }
    close(fds[0]);
    /* `runc run` deletes the container itself; this covers a runc that was
     * killed before it could. */
    /* Bounded: a runc delete that hangs is killed at RUNC_CMD_TIMEOUT_MS. */
    berth__spawn_result_t deleted;
    berth__spawn_run(plan->delete_argv, NULL, RUNC_CMD_TIMEOUT_MS, NULL, 0, &deleted);
    char num[32];
    size_t n = fmt_i64(num, berth__clock_wall_ms());
    num[n++] = '\n';
    write_atomic(plan->finished, plan->finished_tmp, num, n);
    n = fmt_i64(num, code);
    num[n++] = '\n';
    write_atomic(plan->exit_file, plan->exit_tmp, num, n);
    if (logfd >= 0)
        close(logfd);
    _exit(0);
}

/* Starts the supervisor of bundle `sub` detached from the caller: the
 * caller's child calls setsid() and forks the supervisor, records its pid
 * in shim.pid and exits at once.  Returns 0 or -errno. */
int shim_spawn(runc_ctx_t *ctx, const char *id, const char *sub)
{
    shim_plan_t *plan = calloc(1, sizeof *plan);
    if (plan == NULL)
        return -ENOMEM;
    runc_id(id, sub, plan->rid);
    bool ok = bundle_file(ctx, id, sub, NULL, plan->bundle, sizeof plan->bundle) &&
              bundle_file(ctx, id, sub, "log", plan->log, sizeof plan->log) &&
              bundle_file(ctx, id, sub, "exit", plan->exit_file, sizeof plan->exit_file) &&
              bundle_file(ctx, id, sub, "exit.tmp", plan->exit_tmp, sizeof plan->exit_tmp) &&
              bundle_file(ctx, id, sub, "finished", plan->finished, sizeof plan->finished) &&
              bundle_file(ctx, id, sub, "finished.tmp", plan->finished_tmp,
                          sizeof plan->finished_tmp) &&
              bundle_file(ctx, id, sub, "shim.pid", plan->pid_file, sizeof plan->pid_file) &&
              bundle_file(ctx, id, sub, "shim.pid.tmp", plan->pid_tmp, sizeof plan->pid_tmp);
    if (!ok) {
        free(plan);
        return -ENAMETOOLONG;
    }
    char **a = plan->run_argv;
    a[0] = ctx->runc;
    a[1] = (char *)"--root";
    a[2] = ctx->root;
    a[3] = (char *)"run";
    a[4] = (char *)"--bundle";
    a[5] = plan->bundle;
    a[6] = plan->rid;
    a[7] = NULL;
    char **d = plan->delete_argv;
    d[0] = ctx->runc;
    d[1] = (char *)"--root";
    d[2] = ctx->root;
    d[3] = (char *)"delete";
    d[4] = plan->rid;
    d[5] = NULL;
    unlink(plan->pid_file);
    pid_t a_pid = fork();
    if (a_pid < 0) {
        int e = errno;
        free(plan);
        return -e;
    }
    if (a_pid == 0) {
        setsid();
        /* Named before the fork, the supervisor has its name from its first
         * instant: shim_alive() recognises it as soon as shim.pid exists,
         * not only once it has run far enough to name itself. */
        prctl(PR_SET_NAME, RUNC_SHIM_NAME, 0, 0, 0);
        pid_t b = fork();
        if (b == 0)
            shim_main(plan);
        if (b < 0)
            _exit(1);
        char num[32];
        size_t n = fmt_i64(num, b);
        num[n++] = '\n';
        write_atomic(plan->pid_file, plan->pid_tmp, num, n);
        _exit(0);
    }
    /* The child writes shim.pid once the supervisor exists: that file,
     * not the child's exit status, says whether the supervisor started. */
    if (berth__spawn_reap(a_pid, RUNC_CMD_TIMEOUT_MS, NULL) < 0)
        berth__spawn_stop(a_pid, SIGKILL, RUNC_KILL_WAIT_MS);
    bool started = file_exists(plan->pid_file);
    free(plan);
    return started ? 0 : -ECHILD;
}

/* Whether the supervisor recorded for bundle `sub` is still at work (alive
 * and not a zombie). */
bool shim_alive(const runc_ctx_t *ctx, const char *id, const char *sub)
{
    char path[RUNC_PATH_MAX];
    int64_t pid;
    if (!bundle_file(ctx, id, sub, "shim.pid", path, sizeof path) || !read_i64(path, &pid) ||
        pid <= 1)
        return false;
    char stat_path[64], buf[512];
    snprintf(stat_path, sizeof stat_path, "/proc/%" PRId64 "/stat", pid);
    if (read_small(stat_path, buf, sizeof buf) <= 0)
        return false;
    /* "pid (comm) S ...": the name must be the supervisor's, the state not Z/X. */
    char *open_paren = strchr(buf, '(');
    char *close_paren = strrchr(buf, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren < open_paren)
        return false;
    size_t nlen = (size_t)(close_paren - open_paren - 1);
    if (nlen != strlen(RUNC_SHIM_NAME) || memcmp(open_paren + 1, RUNC_SHIM_NAME, nlen) != 0)
        return false;
    char state = close_paren[1] == ' ' ? close_paren[2] : '?';
    return state != 'Z' && state != 'X' && state != 'x';
}

/* Waits at most ms until the supervisor of `sub` has finished. */
bool shim_wait_done(const runc_ctx_t *ctx, const char *id, const char *sub, int ms)
{
    int64_t deadline = berth__clock_monotonic_ms() + ms;
    while (shim_alive(ctx, id, sub)) {
        if (berth__clock_monotonic_ms() >= deadline)
            return false;
        berth__clock_sleep_ms(20);
    }
    return true;
}
