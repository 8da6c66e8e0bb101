/*
 * logs.c: a container's logs and commands run in it (exec).
 *
 * Logs are read from the log its supervisor writes, each line prefixed
 * with its time (dropped unless timestamps are asked for); exec runs
 * `runc exec` in a running container, bounded.  This file must never
 * write a log or run a command in a container that is not running.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runc.h"

/* Reads group `key` into *g and finds its container `container` (*e points
 * into g).  Returns 0, or BERTH_ENOENT (no such group or container) or the
 * group's read error, described in *err. */
static int container_find(runc_ctx_t *ctx, const char *key, const char *container,
                          runc_group_t *g, const runc_entry_t **e, berth_error_t *err)
{
    int rc = group_find(ctx, key, g, err);
    if (rc == 0 && (container == NULL || (*e = entry_find(g, container)) == NULL))
        rc = berth_error_set(err, BERTH_ENOENT, "ContainerNotFound", "container",
                             "group '%s' has no container '%s'", key,
                             container ? container : "");
    return rc;
}

/* The plugin's logs operation (berth-plugin.h): the last `tail` lines
 * of container `container`'s log (0: all) into a new buffer *out (free()),
 * of *len bytes. */
int op_logs(void *vctx, const char *key, const char *container, uint32_t tail,
            bool timestamps, char **out, size_t *len, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    *out = NULL;
    if (len != NULL)
        *len = 0;
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL)
        return oom(err);
    const runc_entry_t *e = NULL;
    int rc = container_find(ctx, key, container, g, &e, err);
    char path[RUNC_PATH_MAX];
    if (rc == 0 && !bundle_file(ctx, g->id, e->sub, "log", path, sizeof path))
        rc = berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config.data_dir",
                             "data_dir path too long");
    free(g);
    if (rc != 0)
        return rc;
    char *buf = NULL;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        off_t size = fstat(fd, &st) == 0 ? st.st_size : 0;
        off_t from = size > (off_t)RUNC_LOG_READ_MAX ? size - (off_t)RUNC_LOG_READ_MAX : 0;
        size_t want = (size_t)(size - from);
        buf = malloc(want + 1);
        if (buf == NULL) {
            close(fd);
            return oom(err);
        }
        while (n < want) {
            ssize_t r = pread(fd, buf + n, want - n, from + (off_t)n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            n += (size_t)r;
        }
        close(fd);
    } else if (errno != ENOENT) {
        return berth_error_set(err, BERTH_EIO, "LogsUnavailable", "", "cannot read %s: %s",
                               path, strerror(errno));
    } else {
        buf = malloc(1);
        if (buf == NULL)
            return oom(err);
    }
    plugin_tail_lines(buf, &n, tail);
    if (!timestamps) {
        /* Drop each line's "YYYY-MM-DDTHH:MM:SS.mmmZ " prefix. */
        size_t r = 0, w = 0;
        while (r < n) {
            size_t eol = r;
            while (eol < n && buf[eol] != '\n')
                eol++;
            size_t skip = 0;
            if (eol - r >= RUNC_TIME_PREFIX_LEN && buf[r + 4] == '-' && buf[r + 10] == 'T' &&
                buf[r + 23] == 'Z' && buf[r + 24] == ' ')
                skip = RUNC_TIME_PREFIX_LEN;
            size_t end = eol < n ? eol + 1 : n;
            memmove(buf + w, buf + r + skip, end - r - skip);
            w += end - r - skip;
            r = end;
        }
        n = w;
    }
    buf[n] = '\0';
    *out = buf;
    if (len != NULL)
        *len = n;
    return 0;
}

/* Finds running container `container` of group `key` and its runc id
 * (rid).  Returns 0, BERTH_ENOENT (no such group or container), BERTH_EINVAL
 * ("ContainerNotRunning") or runc's error, described in *err. */
int exec_target(runc_ctx_t *ctx, const char *key, const char *container,
                char rid[RUNC_ID_MAX], berth_error_t *err)
{
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL)
        return oom(err);
    const runc_entry_t *e = NULL;
    int rc = container_find(ctx, key, container, g, &e, err);
    if (rc == 0)
        runc_id(g->id, e->sub, rid);
    runc_state_t st = RUNC_ABSENT;
    if (rc == 0)
        rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc == 0 && st != RUNC_RUNNING)
        rc = berth_error_set(err, BERTH_EINVAL, "ContainerNotRunning", "container",
                             "container '%s' is not running", container);
    free(g);
    return rc;
}

/* The plugin's exec operation (berth-plugin.h): runs argv in running
 * container `container`; its output into a new buffer *out (free()) and
 * its exit status into *exit_code. */
int op_exec(void *vctx, const char *key, const char *container, const char *const *argv,
            size_t argc, char **out, size_t *len, int *exit_code, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    *out = NULL;
    if (len != NULL)
        *len = 0;
    if (argv == NULL || argc == 0 || argc > 4096)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "argv",
                               "exec needs a command");
    char rid[RUNC_ID_MAX];
    int rc = exec_target(ctx, key, container, rid, err);
    if (rc != 0)
        return rc;
    char **full = calloc(argc + 6, sizeof *full);
    if (full == NULL)
        return oom(err);
    size_t n = 0;
    full[n++] = ctx->runc;
    full[n++] = (char *)"--root";
    full[n++] = ctx->root;
    full[n++] = (char *)"exec";
    full[n++] = rid;
    for (size_t i = 0; i < argc; i++)
        full[n++] = (char *)argv[i];
    full[n] = NULL;
    int code = 0;
    size_t outlen = 0;
    rc = run_argv(full, RUNC_EXEC_TIMEOUT_MS, out, &outlen, &code);
    free(full);
    if (rc != 0)
        return rc == -ENOMEM ? oom(err)
                             : berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "",
                                               "cannot run %s: %s", ctx->runc, strerror(-rc));
    if (code < 0) {
        free(*out);
        *out = NULL;
        return berth_error_set(err, BERTH_EIO, "ExecTimeout", "",
                               "the command did not finish within %d s",
                               RUNC_EXEC_TIMEOUT_MS / 1000);
    }
    if (len != NULL)
        *len = outlen;
    if (exit_code != NULL)
        *exit_code = code;
    return 0;
}
