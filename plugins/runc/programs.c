/*
 * programs.c: running programs, and runc's subcommands.
 *
 * Programs run with fork()/execvp() and an argv, never through a shell;
 * every wait is bounded, and a program that outlives its bound is killed
 * and reaped.  This file must never leave a child unreaped or wait on a
 * program without a deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runc.h"

/* The exit status as a shell reports it: the code, or 128 + the signal. */
int wait_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Waits for pid at most timeout_ms, then kills it with SIGKILL and reaps it.
 * Returns the exit status (wait_code()), or -1 when it timed out. */
int wait_bounded(pid_t pid, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return wait_code(st);
        if (r < 0 && errno != EINTR)
            return -1;
        if (mono_ms() >= deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            return -1;
        }
        sleep_ms(5);
    }
}

/* Runs argv (argv[0] looked up in PATH, no shell) with stdin on /dev/null
 * and stdout and stderr together captured into a new NUL-terminated buffer
 * *out (free()) of *len bytes when out is not NULL, or discarded.  Waits at
 * most timeout_ms, then kills the program.  *code receives its exit status
 * (128 + signal when killed; 127 when it could not be executed; -1 on
 * timeout).  Returns 0 when the program ran, or -errno when it could not be
 * started (nothing is stored in *out then). */
int run_argv(char *const argv[], int timeout_ms, char **out, size_t *len, int *code)
{
    int fds[2] = {-1, -1};
    if (out != NULL) {
        *out = NULL;
        if (pipe2(fds, O_CLOEXEC) != 0)
            return -errno;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        if (out != NULL) {
            close(fds[0]);
            close(fds[1]);
        }
        return -e;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0)
            dup2(null, 0);
        int w = out != NULL ? fds[1] : null;
        if (w >= 0) {
            dup2(w, 1);
            dup2(w, 2);
        }
        close_from(3);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (out == NULL) {
        int c = wait_bounded(pid, timeout_ms);
        *code = c;
        return 0;
    }
    close(fds[1]);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int64_t deadline = mono_ms() + timeout_ms;
    bool exited = false, eof = false, timed_out = false;
    int st = 0;
    /* Read until the program has exited and its output is drained; a
     * grandchild keeping the pipe open does not hold us past its exit. */
    while (!eof) {
        int64_t now = mono_ms();
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int wait = exited ? 0 : (int)(deadline - now < 20 ? deadline - now : 20);
        int pr = poll(&p, 1, wait);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr > 0) {
            char chunk[4096];
            ssize_t r = read(fds[0], chunk, sizeof chunk);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                eof = true;
                break;
            }
            if (buf != NULL && n + (size_t)r < RUNC_OUTPUT_MAX) {
                if (n + (size_t)r + 1 > cap) {
                    size_t ncap = cap;
                    while (n + (size_t)r + 1 > ncap)
                        ncap *= 2;
                    char *nb = realloc(buf, ncap);
                    if (nb == NULL) {
                        free(buf);
                        buf = NULL;
                    } else {
                        buf = nb;
                        cap = ncap;
                    }
                }
                if (buf != NULL) {
                    memcpy(buf + n, chunk, (size_t)r);
                    n += (size_t)r;
                }
            }
            continue;
        }
        if (exited)
            break;  /* exited and nothing more to read right now */
        if (!exited) {
            pid_t r = waitpid(pid, &st, WNOHANG);
            if (r == pid)
                exited = true;
        }
    }
    close(fds[0]);
    int c;
    if (timed_out) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        c = -1;
    } else if (exited) {
        c = wait_code(st);
    } else {
        int64_t left = deadline - mono_ms();
        c = wait_bounded(pid, left > 0 ? (int)left : 0);
    }
    if (buf == NULL)
        return -ENOMEM;
    buf[n] = '\0';
    *out = buf;
    if (len != NULL)
        *len = n;
    *code = c;
    return 0;
}

/* The last non-empty line of a program's output, for error messages. */
void last_line(const char *text, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (text == NULL)
        return;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    size_t start = n;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    snprintf(buf, cap, "%.*s", (int)(n - start), text + start);
}

/* Runs `runc --root <root> <args...>` (args NULL-terminated, at most 16). */
static int runc_run(runc_ctx_t *ctx, const char *const *args, int timeout_ms, char **out,
                    size_t *len, int *code)
{
    char *argv[20];
    size_t n = 0;
    argv[n++] = ctx->runc;
    argv[n++] = (char *)"--root";
    argv[n++] = ctx->root;
    for (size_t i = 0; args[i] != NULL && n < 19; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return run_argv(argv, timeout_ms, out, len, code);
}


/* Asks runc for container rid's state and, when it exists, its pid.
 * Returns 0, or BERTH_EIO ("RuntimeUnavailable") when runc cannot run. */
int runc_state_get(runc_ctx_t *ctx, const char *rid, runc_state_t *state, int *pid,
                          berth_error_t *err)
{
    *state = RUNC_ABSENT;
    if (pid != NULL)
        *pid = 0;
    const char *args[] = {"state", rid, NULL};
    char *out = NULL;
    int code = 0;
    int rc = runc_run(ctx, args, RUNC_CMD_TIMEOUT_MS, &out, NULL, &code);
    if (rc != 0 || code == 127 || code < 0) {
        free(out);
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "",
                               "cannot run %s state %s (%s)", ctx->runc, rid,
                               rc != 0 ? strerror(-rc) : code < 0 ? "timed out" : "not found");
    }
    if (code != 0) {
        free(out);
        return 0;  /* "container does not exist" */
    }
    const char *brace = strchr(out, '{');
    json_t *j = brace ? json_loads(brace, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    free(out);
    if (j == NULL)
        return 0;
    const char *s = json_string_value(json_object_get(j, "status"));
    if (s == NULL)
        *state = RUNC_ABSENT;
    else if (strcmp(s, "running") == 0)
        *state = RUNC_RUNNING;
    else if (strcmp(s, "created") == 0 || strcmp(s, "creating") == 0)
        *state = RUNC_CREATED;
    else if (strcmp(s, "paused") == 0 || strcmp(s, "pausing") == 0)
        *state = RUNC_PAUSED;
    else
        *state = RUNC_STOPPED;
    if (pid != NULL)
        *pid = (int)json_integer_value(json_object_get(j, "pid"));
    json_decref(j);
    return 0;
}

/* Runs `runc <verb> ...` for its effect, ignoring its exit status. */
void runc_quiet(runc_ctx_t *ctx, const char *const *args, int timeout_ms)
{
    char *out = NULL;
    int code = 0;
    if (runc_run(ctx, args, timeout_ms, &out, NULL, &code) == 0)
        free(out);
}
