/*
 * exec.c: the docker plugin's logs and exec: a container's log, tailed and
 * demultiplexed, and a command run in a running container.
 *
 * It must never run a command in a container that is not running, nor
 * wait on an exec beyond EXEC_TIMEOUT_S.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "docker.h"
#include "lib/base64.h"

/* ---- logs and exec ------------------------------------------------------ */

/* Hands a response body over as a malloc'd NUL-terminated buffer. */
static void take_body(engine_response_t *r, char **out, size_t *len)
{
    *out = r->body;
    *len = r->len;
    (*out)[*len] = '\0';
    r->body = NULL;
    r->len = 0;
}

int docker_logs(void *c, const char *key, const char *container, uint32_t tail,
                bool timestamps, char **out, size_t *len, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    *out = NULL;
    *len = 0;
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    group_object_t *o;
    int rc = find_named(ctx, key, container, g, &o, err);
    if (rc != 0) {
        free(g);
        return rc;
    }
    char path[256], tailq[24];
    if (tail > 0)
        snprintf(tailq, sizeof tailq, "%u", tail);
    else
        snprintf(tailq, sizeof tailq, "all");
    snprintf(path, sizeof path, "/containers/%s/logs?stdout=1&stderr=1&timestamps=%d&tail=%s",
             o->id, timestamps ? 1 : 0, tailq);
    free(g);
    engine_response_t r;
    rc = call(ctx, "GET", path, NULL, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    if (rc != 0)
        return rc;
    if (r.status != 200) {
        rc = engine_failure(&r, r.status == 404 ? BERTH_ENOENT : BERTH_EIO, "ContainerLogsFailed",
                            "reading logs", NULL, err);
        engine_response_free(&r);
        return rc;
    }
    engine_demux(r.body, &r.len);
    plugin_tail_lines(r.body, &r.len, tail);
    take_body(&r, out, len);
    return 0;
}

int docker_exec(void *c, const char *key, const char *container,
                const char *const *argv, size_t argc, char **out, size_t *len,
                int *exit_code, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    *out = NULL;
    *len = 0;
    *exit_code = -1;
    if (argv == NULL || argc == 0)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "command",
                               "exec needs a command");
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    group_object_t *o;
    int rc = find_named(ctx, key, container, g, &o, err);
    char cid[72];
    if (rc == 0)
        snprintf(cid, sizeof cid, "%s", o->id);
    free(g);
    if (rc != 0)
        return rc;
    json_t *cmd = json_array();
    for (size_t i = 0; i < argc; i++)
        json_array_append_new(cmd, json_string(argv[i] ? argv[i] : ""));
    json_t *body = json_pack("{s:b, s:b, s:b, s:b, s:o}", "AttachStdin", 0, "AttachStdout", 1,
                             "AttachStderr", 1, "Tty", 0, "Cmd", cmd);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    char path[256];
    snprintf(path, sizeof path, "/containers/%s/exec", cid);
    engine_response_t r;
    rc = call(ctx, "POST", path, text, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    free(text);
    if (rc != 0)
        return rc;
    if (r.status != 201 && r.status != 200) {
        rc = engine_failure(&r, r.status == 404 ? BERTH_ENOENT : BERTH_EIO,
                            r.status == 409 ? "ContainerNotRunning" : "ContainerExecFailed",
                            "creating the exec", NULL, err);
        engine_response_free(&r);
        return rc;
    }
    json_t *j = json_loadb(r.body, r.len, 0, NULL);
    engine_response_free(&r);
    const char *eid = json_string_value(json_object_get(j, "Id"));
    char exec_id[80];
    snprintf(exec_id, sizeof exec_id, "%s", eid ? eid : "");
    json_decref(j);
    if (exec_id[0] == '\0')
        return berth_error_set(err, BERTH_EIO, "ContainerExecFailed", "",
                               "the engine sent no exec id");
    snprintf(path, sizeof path, "/exec/%s/start", exec_id);
    rc = call(ctx, "POST", path, "{\"Detach\":false,\"Tty\":false}", NULL, EXEC_TIMEOUT_S, &r,
              err);
    if (rc != 0)
        return rc;
    if (r.status != 200 && r.status != 101) {
        rc = engine_failure(&r, BERTH_EIO, "ContainerExecFailed", "starting the exec", NULL,
                            err);
        engine_response_free(&r);
        return rc;
    }
    engine_demux(r.body, &r.len);
    /* The stream ends with the process; the engine may record its exit a
     * moment later. */
    snprintf(path, sizeof path, "/exec/%s/json", exec_id);
    for (int attempt = 0; attempt < 100; attempt++) {
        json_t *info = NULL;
        rc = get_json(ctx, path, "ContainerExecFailed", &info, NULL, err);
        if (rc != 0) {
            engine_response_free(&r);
            return rc;
        }
        json_t *code = json_object_get(info, "ExitCode");
        bool running = json_is_true(json_object_get(info, "Running"));
        if (!running && json_is_integer(code)) {
            *exit_code = (int)json_integer_value(code);
            json_decref(info);
            break;
        }
        json_decref(info);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (*exit_code < 0) {
        engine_response_free(&r);
        return berth_error_set(err, BERTH_EIO, "ContainerExecFailed", "",
                               "the exec's exit code never came");
    }
    take_body(&r, out, len);
    return 0;
}
