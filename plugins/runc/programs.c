/*
 * programs.c: running programs, and runc's subcommands.
 *
 * Programs run through lib/spawn with an argv, never through a shell;
 * every wait is bounded, and a program that outlives its bound is killed
 * and reaped.  This file must never leave a child unreaped or wait on a
 * program without a deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runc.h"
#include "lib/spawn.h"

/* The exit status as a shell reports it: the code, or 128 + the signal. */
int wait_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

/* Runs argv (argv[0] looked up in PATH, no shell) through lib/spawn,
 * within timeout_ms (then killed and reaped), with stdin on /dev/null and
 * stdout and stderr together captured into a new NUL-terminated buffer
 * *out (free() it) of *len bytes when out is not NULL (at most
 * RUNC_OUTPUT_MAX bytes kept), or discarded.  *code receives the exit
 * status as a shell reports it: the code, 128 + the signal that ended it,
 * 127 when it could not be executed, -1 when it timed out.  Returns 0 when
 * *code is set, or -ENOMEM (nothing stored in *out then). */
int run_argv(char *const argv[], int timeout_ms, char **out, size_t *len, int *code)
{
    berth__spawn_options_t opts = {0};
    berth__spawn_result_t res;
    int rc;
    if (out != NULL) {
        opts.capture = BERTH__SPAWN_CAPTURE_STDOUT | BERTH__SPAWN_CAPTURE_STDERR;
        rc = berth__spawn_run_alloc(argv, &opts, timeout_ms, RUNC_OUTPUT_MAX, out, &res);
        if (*out == NULL)
            return -ENOMEM;
        if (len != NULL)
            *len = res.output_len;
    } else {
        rc = berth__spawn_run(argv, &opts, timeout_ms, NULL, 0, &res);
    }
    if (rc == 0)
        *code = res.exit_status;
    else if (res.timed_out)
        *code = -1;
    else if (res.signal != 0)
        *code = 128 + res.signal;
    else
        *code = 127;    /* fork, pipe or exec failed: res.message says which */
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
