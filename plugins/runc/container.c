/*
 * container.c: the sandbox and each container's life: start, stop, and
 * the removal of a whole group.
 *
 * The sandbox is a runc container running `sleep` from the first
 * container's image with a new network namespace (runc brings its loopback
 * up); it is started at create and does nothing else.  The group has no
 * other address and publishes no port.  A container is started under its
 * supervisor (shim.c) and stopped with SIGTERM, a grace period, then
 * SIGKILL.  The plugin never restarts a container by itself: this file
 * starts one only when asked to.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runc.h"

/* ---- the sandbox ---------------------------------------------------------------- */

/* Makes the group's sandbox run (starting it again when it died) and
 * stores its pid in *pid. */
int sandbox_ensure(runc_ctx_t *ctx, const char *id, int *pid, berth_error_t *err)
{
    char rid[RUNC_ID_MAX];
    runc_id(id, "sandbox", rid);
    runc_state_t st;
    int rc = runc_state_get(ctx, rid, &st, pid, err);
    if (rc != 0)
        return rc;
    if (st == RUNC_RUNNING && *pid > 0)
        return 0;
    if (st != RUNC_ABSENT) {
        const char *del[] = {"delete", "--force", rid, NULL};
        runc_quiet(ctx, del, RUNC_CMD_TIMEOUT_MS);
    }
    char bundle[RUNC_PATH_MAX], log[RUNC_PATH_MAX];
    if (!bundle_file(ctx, id, "sandbox", NULL, bundle, sizeof bundle) ||
        !bundle_file(ctx, id, "sandbox", "runc.log", log, sizeof log))
        return berth_error_set(err, BERTH_EINVAL, "ContainerCreateFailed", "",
                               "data_dir path too long");
    unlink(log);
    /* The sandbox's process keeps runc's stdio, so runc runs with its
     * output on /dev/null and its own errors in runc.log. */
    char *argv[] = {ctx->runc, (char *)"--root", ctx->root, (char *)"--log", log,
                    (char *)"run", (char *)"--detach", (char *)"--bundle", bundle, rid, NULL};
    int code = 0;
    rc = run_argv(argv, RUNC_CMD_TIMEOUT_MS, NULL, NULL, &code);
    if (rc != 0 || code != 0) {
        char text[4096] = "", detail[512] = "";
        if (read_small(log, text, sizeof text) > 0)
            last_line(text, detail, sizeof detail);
        const char *del[] = {"delete", "--force", rid, NULL};
        runc_quiet(ctx, del, RUNC_CMD_TIMEOUT_MS);
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "cannot start the group's sandbox %s: %s", rid,
                               rc != 0 ? strerror(-rc) : detail[0] ? detail : "runc failed");
    }
    rc = runc_state_get(ctx, rid, &st, pid, err);
    if (rc != 0)
        return rc;
    if (st != RUNC_RUNNING || *pid <= 0)
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "the group's sandbox %s is not running", rid);
    return 0;
}

/* ---- container lifecycle ---------------------------------------------------------- */

/* Starts bundle `sub` under a new supervisor and waits (bounded) until it
 * runs or has already ended.  A running container is left alone. */
int container_start(runc_ctx_t *ctx, const char *id, const runc_entry_t *e,
                    int sandbox_pid, berth_error_t *err)
{
    char rid[RUNC_ID_MAX];
    runc_id(id, e->sub, rid);
    runc_state_t st;
    int rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc != 0)
        return rc;
    if (st == RUNC_RUNNING || st == RUNC_PAUSED)
        return 0;
    /* A supervisor still finishing must be done before its container starts
     * again, or its cleanup would hit the new container. */
    if (!shim_wait_done(ctx, id, e->sub, RUNC_SHIM_WAIT_MS))
        return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                               "container '%s' is still being started or stopped", e->name);
    rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc != 0)
        return rc;
    if (st != RUNC_ABSENT) {
        const char *del[] = {"delete", "--force", rid, NULL};
        runc_quiet(ctx, del, RUNC_CMD_TIMEOUT_MS);
    }
    rc = bundle_set_netns(ctx, id, e->sub, sandbox_pid, err);
    if (rc != 0)
        return rc;
    char exit_path[RUNC_PATH_MAX], fin[RUNC_PATH_MAX], started[RUNC_PATH_MAX],
        pidf[RUNC_PATH_MAX];
    if (!bundle_file(ctx, id, e->sub, "exit", exit_path, sizeof exit_path) ||
        !bundle_file(ctx, id, e->sub, "finished", fin, sizeof fin) ||
        !bundle_file(ctx, id, e->sub, "started", started, sizeof started) ||
        !bundle_file(ctx, id, e->sub, "shim.pid", pidf, sizeof pidf))
        return berth_error_set(err, BERTH_EINVAL, "ContainerStartFailed", "",
                               "data_dir path too long");
    unlink(exit_path);
    unlink(fin);
    unlink(pidf);
    char num[32];
    snprintf(num, sizeof num, "%" PRId64 "\n", berth__clock_wall_ms());
    if (write_file(started, num) != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                               "cannot write %s", started);
    rc = shim_spawn(ctx, id, e->sub);
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                               "cannot start the supervisor of '%s': %s", e->name,
                               strerror(-rc));
    int64_t deadline = berth__clock_monotonic_ms() + RUNC_START_WAIT_MS;
    for (;;) {
        if (file_exists(exit_path))
            return 0;  /* ran and ended already: status tells how */
        rc = runc_state_get(ctx, rid, &st, NULL, err);
        if (rc != 0)
            return rc;
        if (st == RUNC_RUNNING || st == RUNC_STOPPED)
            return 0;
        if (!shim_alive(ctx, id, e->sub) && !file_exists(exit_path))
            return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                                   "the supervisor of '%s' ended without a result", e->name);
        if (berth__clock_monotonic_ms() >= deadline)
            return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                                   "container '%s' did not start within %d s", e->name,
                                   RUNC_START_WAIT_MS / 1000);
        berth__clock_sleep_ms(20);
    }
}

/* Waits at most ms until the container of bundle `sub` no longer runs. */
static bool container_wait_stopped(runc_ctx_t *ctx, const char *id, const char *sub,
                                   const char *rid, int ms)
{
    int64_t deadline = berth__clock_monotonic_ms() + ms;
    for (;;) {
        if (!shim_alive(ctx, id, sub)) {
            runc_state_t st;
            if (runc_state_get(ctx, rid, &st, NULL, NULL) != 0 || st == RUNC_ABSENT ||
                st == RUNC_STOPPED)
                return true;
        }
        if (berth__clock_monotonic_ms() >= deadline)
            return false;
        berth__clock_sleep_ms(shim_alive(ctx, id, sub) ? 20 : 100);
    }
}

/* Stops bundle `sub`: SIGTERM, grace_s seconds, then SIGKILL; waits until
 * its supervisor has recorded the exit. */
int container_stop(runc_ctx_t *ctx, const char *id, const runc_entry_t *e,
                   uint32_t grace_s, berth_error_t *err)
{
    char rid[RUNC_ID_MAX];
    runc_id(id, e->sub, rid);
    runc_state_t st;
    int rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc != 0)
        return rc;
    if (st == RUNC_RUNNING || st == RUNC_CREATED || st == RUNC_PAUSED) {
        if (st == RUNC_PAUSED) {
            const char *resume[] = {"resume", rid, NULL};
            runc_quiet(ctx, resume, RUNC_CMD_TIMEOUT_MS);
        }
        const char *term[] = {"kill", rid, "TERM", NULL};
        runc_quiet(ctx, term, RUNC_CMD_TIMEOUT_MS);
        uint32_t grace = grace_s > 3600 ? 3600 : grace_s;
        if (!container_wait_stopped(ctx, id, e->sub, rid, (int)grace * 1000)) {
            const char *kill9[] = {"kill", rid, "KILL", NULL};
            runc_quiet(ctx, kill9, RUNC_CMD_TIMEOUT_MS);
            if (!container_wait_stopped(ctx, id, e->sub, rid, RUNC_KILL_WAIT_MS))
                return berth_error_set(err, BERTH_EIO, "ContainerStopFailed", "",
                                       "container '%s' did not stop after SIGKILL", e->name);
        }
    }
    if (!shim_wait_done(ctx, id, e->sub, RUNC_SHIM_WAIT_MS))
        return berth_error_set(err, BERTH_EIO, "ContainerStopFailed", "",
                               "the supervisor of '%s' did not finish", e->name);
    return 0;
}

/* Removes everything of group id: containers, sandbox, volumes, bundles. */
int group_destroy(runc_ctx_t *ctx, const char *id, berth_error_t *err)
{
    char dir[RUNC_PATH_MAX];
    if (!group_dir(ctx, id, dir, sizeof dir))
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config.data_dir",
                               "data_dir path too long");
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *de;
        for (size_t i = 0; i < RUNC_DIR_ENTRIES_MAX && (de = readdir(d)) != NULL; i++) {
            if (de->d_name[0] == '.' || strcmp(de->d_name, "sandbox") == 0 ||
                strlen(de->d_name) >= RUNC_SUB_MAX ||
                (strncmp(de->d_name, "init-", 5) != 0 && strncmp(de->d_name, "c-", 2) != 0))
                continue;
            char rid[RUNC_ID_MAX];
            runc_id(id, de->d_name, rid);
            const char *del[] = {"delete", "--force", rid, NULL};
            runc_quiet(ctx, del, RUNC_CMD_TIMEOUT_MS);
            shim_wait_done(ctx, id, de->d_name, RUNC_SHIM_WAIT_MS);
        }
        closedir(d);
    }
    char rid[RUNC_ID_MAX];
    runc_id(id, "sandbox", rid);
    const char *del[] = {"delete", "--force", rid, NULL};
    runc_quiet(ctx, del, RUNC_CMD_TIMEOUT_MS);
    berth_error_t verr;
    int rc = volumes_remove(&ctx->volumes, id, &verr);
    int trc = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        trc = plugin_remove_tree(dir);
        if (trc == 0)
            break;
        berth__clock_sleep_ms(100);
    }
    if (rc != 0) {
        if (err != NULL)
            *err = verr;
        return rc;
    }
    if (trc != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerGroupDeleteFailed", "",
                               "cannot remove %s: %s", dir, strerror(-trc));
    return 0;
}
