/*
 * docker.c: Berth's runtime plugin for the Docker Engine API, which also
 * drives Podman through Podman's Docker-compatible API service.
 *
 * A container group is one sandbox container (a long-running busybox that
 * owns the group's network namespace and publishes the group's ports on
 * publish_address) and one container per init container and container of
 * the document, each joined to the sandbox's network namespace
 * ("container:<sandbox id>") so that the group's containers reach each other
 * on localhost, as in ACI.  Objects are named after the group's runtime id
 * (common.h) and labelled with its host, key, generation and digest, which
 * is how this plugin finds them again: it keeps no state of its own beyond
 * its configuration and its HTTP client.  An interactive session
 * (session.c) holds its own engine connection and client, never this
 * context's, so that it may run on a thread of its own.
 *
 * The engine's own restart policy is always "no": restarts are the agent's.
 * Secure environment values and registry passwords go to the engine only;
 * they are never logged and never put in an error message (messages the
 * engine sends back are scrubbed of them too).
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

/* ---- small helpers ------------------------------------------------------ */

uint64_t parse_u64(const char *s, int base)
{
    if (s == NULL)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    return errno || end == s ? 0 : (uint64_t)v;
}

/* Replaces every occurrence of each secure value of `spec` in msg with
 * "***", so that an engine that echoes a request never leaks one. */
static void scrub_secrets(const berth_group_t *spec, char *msg)
{
    if (spec == NULL)
        return;
    for (size_t pass = 0; pass < 2; pass++) {
        const berth_container_t *list = pass ? spec->init_containers : spec->containers;
        size_t n = pass ? spec->ninit_containers : spec->ncontainers;
        for (size_t i = 0; i < n && list; i++) {
            for (size_t e = 0; e < list[i].nenv; e++) {
                const char *sv = list[i].env[e].secure_value;
                size_t svlen = sv ? strlen(sv) : 0;
                if (svlen == 0)
                    continue;
                char *hit;
                for (size_t guard = 0; (hit = strstr(msg, sv)) != NULL && guard < 64; guard++) {
                    size_t rest = strlen(hit + svlen);
                    memcpy(hit, "***", 3);
                    memmove(hit + 3, hit + svlen, rest + 1);
                    if (svlen < 3)
                        break;
                }
            }
        }
    }
}

/* Calls the engine through `api` (at `socket`); any failure to reach it is
 * RuntimeUnavailable. */
static int call_api(engine_api_t *api, const char *socket, const char *method,
                    const char *path, const char *body, const char *const *headers,
                    long timeout_s, engine_response_t *resp, berth_error_t *err)
{
    char errbuf[ENGINE_API_ERROR_MAX];
    if (engine_api_call(api, method, path, body, headers, timeout_s, resp, errbuf) != 0)
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "",
                               "the container engine at %s did not answer %s %s: %s", socket,
                               method, path, errbuf);
    return 0;
}

/* Calls the engine at the context's socket (call_api()'s contract). */
int call(docker_ctx_t *ctx, const char *method, const char *path, const char *body,
         const char *const *headers, long timeout_s, engine_response_t *resp,
         berth_error_t *err)
{
    return call_api(ctx->api, ctx->socket, method, path, body, headers, timeout_s, resp, err);
}

/* Calls the engine that creates a group's containers: the Podman service
 * at runtime_socket when configured, else the context's (call_api()'s
 * contract). */
int call_runtime(docker_ctx_t *ctx, const char *method, const char *path, const char *body,
                 long timeout_s, engine_response_t *resp, berth_error_t *err)
{
    if (ctx->runtime_api == NULL)
        return call(ctx, method, path, body, NULL, timeout_s, resp, err);
    return call_api(ctx->runtime_api, ctx->runtime_socket, method, path, body, NULL, timeout_s,
                    resp, err);
}

/* Fails with `name` and the engine's message for an unexpected status. */
int engine_failure(const engine_response_t *resp, int code, const char *name,
                   const char *what, const berth_group_t *spec, berth_error_t *err)
{
    char msg[MESSAGE_MAX];
    engine_response_message(resp, msg, sizeof msg);
    scrub_secrets(spec, msg);
    return berth_error_set(err, code, name, "", "%s: engine answered %ld: %s", what,
                           resp->status, msg);
}

/* GETs path and parses its JSON body into *out (HTTP 200 only). */
int get_json(docker_ctx_t *ctx, const char *path, const char *errname, json_t **out,
             long *status, berth_error_t *err)
{
    engine_response_t r;
    *out = NULL;
    int rc = call(ctx, "GET", path, NULL, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    if (rc != 0)
        return rc;
    if (status)
        *status = r.status;
    if (r.status != 200) {
        if (status && r.status == 404) {
            engine_response_free(&r);
            return 0;
        }
        rc = engine_failure(&r, r.status == 404 ? BERTH_ENOENT : BERTH_EIO, errname, path,
                            NULL, err);
        engine_response_free(&r);
        return rc;
    }
    json_error_t jerr;
    *out = json_loadb(r.body, r.len, 0, &jerr);
    engine_response_free(&r);
    if (*out == NULL)
        return berth_error_set(err, BERTH_EIO, errname, "", "%s: engine sent bad JSON: %s",
                               path, jerr.text);
    return 0;
}

/* ---- configuration ------------------------------------------------------ */

static void ctx_free(docker_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    engine_api_close(ctx->api);
    engine_api_close(ctx->runtime_api);
    free(ctx->socket);
    free(ctx->api_version);
    free(ctx->publish_address);
    free(ctx->data_dir);
    free(ctx->secret_dir);
    free(ctx->azure_file_root);
    free(ctx->sandbox_image);
    free(ctx->git);
    free(ctx->runtime);
    free(ctx->runtime_socket);
    free(ctx);
}

static char **string_slot(docker_ctx_t *ctx, const char *key)
{
    if (strcmp(key, "socket") == 0)
        return &ctx->socket;
    if (strcmp(key, "api_version") == 0)
        return &ctx->api_version;
    if (strcmp(key, "publish_address") == 0)
        return &ctx->publish_address;
    if (strcmp(key, "data_dir") == 0)
        return &ctx->data_dir;
    if (strcmp(key, "secret_dir") == 0)
        return &ctx->secret_dir;
    if (strcmp(key, "azure_file_root") == 0)
        return &ctx->azure_file_root;
    if (strcmp(key, "sandbox_image") == 0)
        return &ctx->sandbox_image;
    if (strcmp(key, "git") == 0)
        return &ctx->git;
    if (strcmp(key, "runtime") == 0)
        return &ctx->runtime;
    if (strcmp(key, "runtime_socket") == 0)
        return &ctx->runtime_socket;
    return NULL;
}

static int parse_config(docker_ctx_t *ctx, const char *config_json, berth_error_t *err)
{
    if (config_json == NULL || *config_json == '\0')
        return 0;
    json_error_t jerr;
    json_t *root = json_loads(config_json, 0, &jerr);
    if (root == NULL)
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config",
                               "configuration is not JSON: %s (line %d)", jerr.text, jerr.line);
    if (!json_is_object(root)) {
        json_decref(root);
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config",
                               "configuration must be a JSON object");
    }
    const char *key;
    json_t *value;
    char target[BERTH_ERROR_TARGET_MAX];
    int rc = 0;
    json_object_foreach(root, key, value)
    {
        snprintf(target, sizeof target, "config.%s", key);
        char **slot = string_slot(ctx, key);
        if (slot != NULL) {
            if (!json_is_string(value) ||
                (strcmp(key, "azure_file_root") != 0 && json_string_length(value) == 0)) {
                rc = berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", target,
                                     "%s must be a non-empty string", key);
                break;
            }
            free(*slot);
            *slot = strdup(json_string_value(value));
            if (*slot == NULL) {
                rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", target, "out of memory");
                break;
            }
        } else if (strcmp(key, "stop_grace_s") == 0) {
            if (!json_is_integer(value) || json_integer_value(value) < 0 ||
                json_integer_value(value) > 3600) {
                rc = berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", target,
                                     "stop_grace_s must be an integer from 0 to 3600");
                break;
            }
            ctx->stop_grace_s = (uint32_t)json_integer_value(value);
        } else if (strcmp(key, "ulimits") == 0) {
            if (!json_is_boolean(value)) {
                rc = berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", target,
                                     "ulimits must be true or false");
                break;
            }
            ctx->ulimits = json_is_true(value);
        } else {
            rc = berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", target,
                                 "unknown configuration member \"%s\"", key);
            break;
        }
    }
    json_decref(root);
    if (rc == 0 && ctx->api_version) {
        /* Digits and dots only: the version goes into every path. */
        for (const char *p = ctx->api_version; *p; p++)
            if ((*p < '0' || *p > '9') && *p != '.')
                return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration",
                                       "config.api_version",
                                       "api_version must look like \"1.41\"");
        if (strlen(ctx->api_version) > 16)
            return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration",
                                   "config.api_version", "api_version is too long");
    }
    return rc;
}

/* Refuses a secret_dir that is not (or would not be, for one still to be
 * made) on a tmpfs: the nearest existing ancestor decides. */
static int check_secret_dir(const char *dir, berth_error_t *err)
{
    char path[VOLUME_PATH_MAX];
    snprintf(path, sizeof path, "%s", dir);
    if (path[0] != '/')
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config.secret_dir",
                               "secret_dir must be an absolute path");
    struct statfs sfs;
    for (size_t guard = 0; guard < VOLUME_PATH_MAX; guard++) {
        if (statfs(path, &sfs) == 0)
            break;
        char *slash = strrchr(path, '/');
        if (errno != ENOENT || slash == NULL)
            return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration",
                                   "config.secret_dir", "cannot statfs %s: %s", path,
                                   strerror(errno));
        if (slash == path)
            path[1] = '\0';
        else
            *slash = '\0';
    }
    if ((unsigned long)sfs.f_type != (unsigned long)TMPFS_MAGIC)
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config.secret_dir",
                               "secret_dir %s is not on a tmpfs: secrets must not reach a disk",
                               dir);
    return 0;
}

static int docker_open(const char *config_json, const char *host, void **out,
                       berth_error_t *err)
{
    *out = NULL;
    if (host == NULL || *host == '\0' || strlen(host) > BERTH_NAME_MAX)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "host",
                               "the host name must have 1 to %d characters", BERTH_NAME_MAX);
    docker_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    snprintf(ctx->host, sizeof ctx->host, "%s", host);
    ctx->stop_grace_s = DEFAULT_STOP_GRACE_S;
    int rc = parse_config(ctx, config_json, err);
    if (rc != 0) {
        ctx_free(ctx);
        return rc;
    }
    struct {
        char **slot;
        const char *value;
    } defaults[] = {
        {&ctx->socket, DEFAULT_SOCKET},
        {&ctx->api_version, DEFAULT_API_VERSION},
        {&ctx->publish_address, DEFAULT_PUBLISH_ADDRESS},
        {&ctx->data_dir, DEFAULT_DATA_DIR},
        {&ctx->secret_dir, DEFAULT_SECRET_DIR},
        {&ctx->sandbox_image, DEFAULT_SANDBOX_IMAGE},
        {&ctx->git, "git"},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        if (*defaults[i].slot == NULL && (*defaults[i].slot = strdup(defaults[i].value)) == NULL) {
            ctx_free(ctx);
            return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        }
    }
    if (ctx->azure_file_root != NULL && *ctx->azure_file_root == '\0') {
        free(ctx->azure_file_root);
        ctx->azure_file_root = NULL;
    }
    rc = check_secret_dir(ctx->secret_dir, err);
    if (rc != 0) {
        ctx_free(ctx);
        return rc;
    }
    if (ctx->runtime != NULL && ctx->runtime_socket != NULL) {
        ctx_free(ctx);
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration",
                               "config.runtime_socket",
                               "runtime (Docker) and runtime_socket (Podman) exclude each other");
    }
    ctx->api = engine_api_open(ctx->socket, ctx->api_version);
    if (ctx->api != NULL && ctx->runtime_socket != NULL)
        ctx->runtime_api = engine_api_open(ctx->runtime_socket, ctx->api_version);
    if (ctx->api == NULL || (ctx->runtime_socket != NULL && ctx->runtime_api == NULL)) {
        ctx_free(ctx);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    ctx->volumes.data_dir = ctx->data_dir;
    ctx->volumes.secret_dir = ctx->secret_dir;
    ctx->volumes.azure_file_root = ctx->azure_file_root;
    ctx->volumes.git = ctx->git;
    *out = ctx;
    return 0;
}

static void docker_close(void *c)
{
    ctx_free(c);
}

/* ---- the entry ---------------------------------------------------------- */

static const berth_plugin_ops_t docker_ops = {
    .abi_major = BERTH_PLUGIN_ABI_MAJOR,
    .size = sizeof(berth_plugin_ops_t),
    .name = "docker",
    .version = DOCKER_PLUGIN_VERSION,
    .open = docker_open,
    .close = docker_close,
    .probe = docker_probe,
    .image_ensure = docker_image_ensure,
    .images = docker_images,
    .create = docker_create,
    .start = docker_start,
    .stop = docker_stop,
    .restart = docker_restart,
    .remove = docker_remove,
    .status = docker_status,
    .logs = docker_logs,
    .exec = docker_exec,
    .list = docker_list,
    .config_maps = docker_config_maps,
    .session_open = docker_session_open,
    .session_read = docker_session_read,
    .session_write = docker_session_write,
    .session_resize = docker_session_resize,
    .session_close = docker_session_close,
};

const berth_plugin_ops_t *berth_plugin_entry(void);

/* The plugin's entry symbol: returns the docker plugin's operations (a
 * static table valid while the module is loaded). */
__attribute__((visibility("default"))) const berth_plugin_ops_t *berth_plugin_entry(void)
{
    return &docker_ops;
}
