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
 * its configuration and its HTTP client.
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

#include "berth-plugin.h"
#include "../common/common.h"
#include "engine-api.h"
#include "../common/volumes.h"
#include "lib/base64.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#define DOCKER_PLUGIN_VERSION "1.0.0"
#define DEFAULT_SOCKET "/var/run/docker.sock"
#define DEFAULT_API_VERSION "1.41"
#define DEFAULT_PUBLISH_ADDRESS "127.0.0.1"
#define DEFAULT_DATA_DIR "/var/lib/berth/docker"
#define DEFAULT_SECRET_DIR "/dev/shm/berth-secrets"
#define DEFAULT_SANDBOX_IMAGE "busybox:latest"
#define DEFAULT_STOP_GRACE_S 10
#define SANDBOX_SCRIPT "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"
#define MESSAGE_MAX 384
#define OBJECTS_MAX (2 * BERTH_PLUGIN_CONTAINERS_MAX + 1)
#define EXEC_TIMEOUT_S 300
#define LIST_GROUPS_MAX 100000

typedef struct docker_ctx {
    char host[BERTH_NAME_MAX + 1];
    char *socket;
    char *api_version;
    char *publish_address;
    char *data_dir;
    char *secret_dir;
    char *azure_file_root;
    char *sandbox_image;
    char *git;
    uint32_t stop_grace_s;
    bool ulimits;
    engine_api_t *api;
    volumes_config_t volumes;
} docker_ctx_t;

typedef enum object_role { ROLE_SANDBOX = 0, ROLE_INIT, ROLE_CONTAINER } object_role_t;

/* One runtime object of a group, as the engine's container list shows it. */
typedef struct group_object {
    char id[72];
    object_role_t role;
    uint32_t index;
    char name[BERTH_NAME_MAX + 1];      /* the document's container name   */
    char state[24];                     /* the engine's State               */
    uint64_t generation;
    uint64_t digest;
} group_object_t;

typedef struct group_objects {
    size_t n;
    group_object_t o[OBJECTS_MAX];
    group_object_t *sandbox;            /* NULL when missing                */
} group_objects_t;

/* ---- small helpers ------------------------------------------------------ */

static uint64_t parse_u64(const char *s, int base)
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

/* Calls the engine; any failure to reach it is RuntimeUnavailable. */
static int call(docker_ctx_t *ctx, const char *method, const char *path, const char *body,
                const char *const *headers, long timeout_s, engine_response_t *resp,
                berth_error_t *err)
{
    char errbuf[ENGINE_API_ERROR_MAX];
    if (engine_api_call(ctx->api, method, path, body, headers, timeout_s, resp, errbuf) != 0)
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "",
                               "the container engine at %s did not answer %s %s: %s",
                               ctx->socket, method, path, errbuf);
    return 0;
}

/* Fails with `name` and the engine's message for an unexpected status. */
static int engine_failure(const engine_response_t *resp, int code, const char *name,
                          const char *what, const berth_group_t *spec, berth_error_t *err)
{
    char msg[MESSAGE_MAX];
    engine_response_message(resp, msg, sizeof msg);
    scrub_secrets(spec, msg);
    return berth_error_set(err, code, name, "", "%s: engine answered %ld: %s", what,
                           resp->status, msg);
}

/* GETs path and parses its JSON body into *out (HTTP 200 only). */
static int get_json(docker_ctx_t *ctx, const char *path, const char *errname, json_t **out,
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
    free(ctx->socket);
    free(ctx->api_version);
    free(ctx->publish_address);
    free(ctx->data_dir);
    free(ctx->secret_dir);
    free(ctx->azure_file_root);
    free(ctx->sandbox_image);
    free(ctx->git);
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
    ctx->api = engine_api_open(ctx->socket, ctx->api_version);
    if (ctx->api == NULL) {
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

/* ---- finding a group's objects ------------------------------------------ */

/* GET /containers/json with a label filter: the host's objects, or (key
 * not NULL) one group's. */
static int list_objects(docker_ctx_t *ctx, const char *key, json_t **out, berth_error_t *err)
{
    *out = NULL;
    json_t *labels = json_array();
    json_t *filters = json_object();
    char *host_label = NULL, *key_label = NULL;
    int rc = 0;
    if (labels == NULL || filters == NULL ||
        asprintf(&host_label, "%s=%s", PLUGIN_LABEL_HOST, ctx->host) < 0) {
        host_label = NULL;
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        goto done;
    }
    json_array_append_new(labels, json_string(host_label));
    if (key != NULL) {
        if (asprintf(&key_label, "%s=%s", PLUGIN_LABEL_KEY, key) < 0) {
            key_label = NULL;
            rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
            goto done;
        }
        json_array_append_new(labels, json_string(key_label));
    }
    json_object_set(filters, "label", labels);
    char *ftext = json_dumps(filters, JSON_COMPACT);
    char *fesc = ftext ? engine_api_escape(ftext) : NULL;
    char *path = NULL;
    if (fesc == NULL || asprintf(&path, "/containers/json?all=1&filters=%s", fesc) < 0) {
        path = NULL;
        rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    } else {
        rc = get_json(ctx, path, "RuntimeError", out, NULL, err);
        if (rc == 0 && !json_is_array(*out)) {
            json_decref(*out);
            *out = NULL;
            rc = berth_error_set(err, BERTH_EIO, "RuntimeError", "",
                                 "the engine's container list is not an array");
        }
    }
    free(path);
    free(fesc);
    free(ftext);
done:
    free(host_label);
    free(key_label);
    json_decref(labels);
    json_decref(filters);
    return rc;
}

static const char *label_of(json_t *labels, const char *name)
{
    return json_string_value(json_object_get(labels, name));
}

/* The group's objects, from the engine's list (the key label is checked
 * again here: a filter the engine ignored must not mix groups). */
static int load_group(docker_ctx_t *ctx, const char *key, group_objects_t *g,
                      berth_error_t *err)
{
    memset(g, 0, sizeof *g);
    json_t *list;
    int rc = list_objects(ctx, key, &list, err);
    if (rc != 0)
        return rc;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        json_t *labels = json_object_get(item, "Labels");
        const char *host = label_of(labels, PLUGIN_LABEL_HOST);
        const char *k = label_of(labels, PLUGIN_LABEL_KEY);
        const char *role = label_of(labels, PLUGIN_LABEL_ROLE);
        const char *id = json_string_value(json_object_get(item, "Id"));
        if (host == NULL || k == NULL || role == NULL || id == NULL ||
            strcmp(host, ctx->host) != 0 || strcmp(k, key) != 0 || g->n >= OBJECTS_MAX)
            continue;
        group_object_t *o = &g->o[g->n];
        if (strcmp(role, "sandbox") == 0)
            o->role = ROLE_SANDBOX;
        else if (strcmp(role, "init") == 0)
            o->role = ROLE_INIT;
        else if (strcmp(role, "container") == 0)
            o->role = ROLE_CONTAINER;
        else
            continue;
        snprintf(o->id, sizeof o->id, "%s", id);
        o->index = (uint32_t)parse_u64(label_of(labels, PLUGIN_LABEL_INDEX), 10);
        const char *cname = label_of(labels, PLUGIN_LABEL_CONTAINER);
        snprintf(o->name, sizeof o->name, "%s", cname ? cname : "");
        const char *state = json_string_value(json_object_get(item, "State"));
        snprintf(o->state, sizeof o->state, "%s", state ? state : "");
        o->generation = parse_u64(label_of(labels, PLUGIN_LABEL_GENERATION), 10);
        o->digest = parse_u64(label_of(labels, PLUGIN_LABEL_DIGEST), 16);
        g->n++;
    }
    json_decref(list);
    /* Sandbox first, then init containers, then containers, by index. */
    for (size_t a = 1; a < g->n; a++) {
        group_object_t t = g->o[a];
        size_t b = a;
        while (b > 0 && (g->o[b - 1].role > t.role ||
                         (g->o[b - 1].role == t.role && g->o[b - 1].index > t.index))) {
            g->o[b] = g->o[b - 1];
            b--;
        }
        g->o[b] = t;
    }
    if (g->n > 0 && g->o[0].role == ROLE_SANDBOX)
        g->sandbox = &g->o[0];
    return 0;
}

static group_object_t *find_container(group_objects_t *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->o[i].role != ROLE_SANDBOX && strcmp(g->o[i].name, name) == 0)
            return &g->o[i];
    return NULL;
}

static int no_group(const char *key, berth_error_t *err)
{
    return berth_error_set(err, BERTH_ENOENT, "ContainerGroupNotFound", "",
                           "the runtime holds no container group %s", key);
}

/* Loads the group and finds `container` in it. */
static int find_named(docker_ctx_t *ctx, const char *key, const char *container,
                      group_objects_t *g, group_object_t **out, berth_error_t *err)
{
    int rc = load_group(ctx, key, g, err);
    if (rc != 0)
        return rc;
    if (g->n == 0)
        return no_group(key, err);
    *out = find_container(g, container);
    if (*out == NULL)
        return berth_error_set(err, BERTH_ENOENT, "ContainerNotFound", "",
                               "container group %s has no container %s", key, container);
    return 0;
}

/* ---- probe and images --------------------------------------------------- */

static int docker_probe(void *c, berth_plugin_host_info_t *info, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    memset(info, 0, sizeof *info);
    json_t *v;
    int rc = get_json(ctx, "/version", "RuntimeUnavailable", &v, NULL, err);
    if (rc != 0)
        return rc;
    const char *version = json_string_value(json_object_get(v, "Version"));
    const char *platform = json_string_value(json_object_get(json_object_get(v, "Platform"),
                                                             "Name"));
    bool podman = platform && strstr(platform, "Podman") != NULL;
    size_t i;
    json_t *comp;
    json_array_foreach(json_object_get(v, "Components"), i, comp)
    {
        const char *name = json_string_value(json_object_get(comp, "Name"));
        if (name && strstr(name, "Podman")) {
            podman = true;
            const char *cv = json_string_value(json_object_get(comp, "Version"));
            if (cv)
                version = cv;
        }
    }
    snprintf(info->runtime, sizeof info->runtime, "%s %s", podman ? "podman" : "docker",
             version ? version : "unknown");
    json_decref(v);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    info->cores = n > 0 ? (uint32_t)n : 0;
    struct sysinfo si;
    if (sysinfo(&si) == 0)
        info->memory_mib = (uint64_t)si.totalram * si.mem_unit / (1024 * 1024);
    else {
        long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
        info->memory_mib = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize >> 20 : 0;
    }
    info->os = BERTH_OS_LINUX;
    return 0;
}

static int docker_images(void *c, berth_plugin_image_cb cb, void *data, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    json_t *list;
    int rc = get_json(ctx, "/images/json", "RuntimeError", &list, NULL, err);
    if (rc != 0)
        return rc;
    size_t i, j;
    json_t *img, *tag;
    json_array_foreach(list, i, img)
    {
        json_array_foreach(json_object_get(img, "RepoTags"), j, tag)
        {
            const char *t = json_string_value(tag);
            if (t && strcmp(t, "<none>:<none>") != 0)
                cb(t, data);
        }
    }
    json_decref(list);
    return 0;
}

/* Splits an image reference into repository and tag (or digest). */
static int split_image(const char *image, char **repo, char **tag)
{
    *repo = *tag = NULL;
    const char *at = strchr(image, '@');
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(image, ':');
    size_t rlen;
    const char *t;
    if (at != NULL) {
        rlen = (size_t)(at - image);
        t = at + 1;
    } else if (colon != NULL && (slash == NULL || colon > slash)) {
        rlen = (size_t)(colon - image);
        t = colon + 1;
    } else {
        rlen = strlen(image);
        t = "latest";
    }
    *repo = strndup(image, rlen);
    *tag = strdup(t);
    if (*repo == NULL || *tag == NULL) {
        free(*repo);
        free(*tag);
        *repo = *tag = NULL;
        return -1;
    }
    return 0;
}

/* 1 when the engine holds `image`, 0 when not, or an error. */
static int image_present(docker_ctx_t *ctx, const char *image, berth_error_t *err)
{
    char *esc = engine_api_escape(image);
    char *path = NULL;
    if (esc == NULL || asprintf(&path, "/images/%s/json", esc) < 0) {
        free(esc);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    free(esc);
    engine_response_t r;
    int rc = call(ctx, "GET", path, NULL, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    free(path);
    if (rc != 0)
        return rc;
    if (r.status == 200)
        rc = 1;
    else if (r.status == 404)
        rc = 0;
    else
        rc = engine_failure(&r, BERTH_EIO, "ImagePullFailed", "inspecting the image", NULL,
                            err);
    engine_response_free(&r);
    return rc;
}

/* The X-Registry-Auth header line for cred, or NULL (out of memory). */
static char *registry_auth_header(const berth_registry_credential_t *cred)
{
    json_t *auth = json_pack("{s:s, s:s, s:s}", "username", cred->username ? cred->username : "",
                             "password", cred->password ? cred->password : "",
                             "serveraddress", cred->server ? cred->server : "");
    if (auth == NULL)
        return NULL;
    char *text = json_dumps(auth, JSON_COMPACT);
    json_decref(auth);
    if (text == NULL)
        return NULL;
    size_t tlen = strlen(text);
    char *b64 = berth__base64_encode(text, tlen, BERTH__BASE64_URL);
    explicit_bzero(text, tlen);
    free(text);
    if (b64 == NULL)
        return NULL;
    char *line = NULL;
    size_t blen = strlen(b64);
    if (asprintf(&line, "X-Registry-Auth: %s", b64) < 0)
        line = NULL;
    explicit_bzero(b64, blen);
    free(b64);
    return line;
}

/* Scans a pull's streamed JSON lines for an error into msg; true when one
 * was found. */
static bool pull_stream_error(const char *body, size_t len, char *msg, size_t cap)
{
    const char *p = body, *end = body + len;
    size_t guard = 0;
    while (p < end && guard++ < 1000000) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t llen = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *j = llen ? json_loadb(p, llen, 0, NULL) : NULL;
        const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
        if (e == NULL && j)
            e = json_string_value(
                json_object_get(json_object_get(j, "errorDetail"), "message"));
        if (e != NULL) {
            snprintf(msg, cap, "%s", e);
            json_decref(j);
            return true;
        }
        json_decref(j);
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return false;
}

static int pull_image(docker_ctx_t *ctx, const char *image,
                      const berth_registry_credential_t *cred, berth_error_t *err)
{
    char *repo, *tag;
    if (split_image(image, &repo, &tag) != 0)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    char *erepo = engine_api_escape(repo), *etag = engine_api_escape(tag);
    char *path = NULL;
    if (erepo == NULL || etag == NULL ||
        asprintf(&path, "/images/create?fromImage=%s&tag=%s", erepo, etag) < 0)
        path = NULL;
    free(erepo);
    free(etag);
    free(repo);
    free(tag);
    char *auth = path && cred ? registry_auth_header(cred) : NULL;
    if (path == NULL || (cred && auth == NULL)) {
        free(path);
        free(auth);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    const char *headers[] = {auth, NULL};
    engine_response_t r;
    int rc = call(ctx, "POST", path, NULL, auth ? headers : NULL, ENGINE_API_PULL_TIMEOUT_S, &r,
                  err);
    free(path);
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    if (rc != 0) {
        berth_error_t inner = *err;
        return berth_error_set(err, BERTH_EIO, "ImagePullFailed", "",
                               "pulling %s failed: %s", image, inner.message);
    }
    char msg[MESSAGE_MAX];
    if (r.status != 200) {
        engine_response_message(&r, msg, sizeof msg);
        rc = berth_error_set(err, BERTH_EIO, "ImagePullFailed", "",
                             "pulling %s failed (engine answered %ld): %s", image, r.status,
                             msg);
    } else if (pull_stream_error(r.body, r.len, msg, sizeof msg)) {
        rc = berth_error_set(err, BERTH_EIO, "ImagePullFailed", "", "pulling %s failed: %s",
                             image, msg);
    }
    engine_response_free(&r);
    if (rc != 0)
        return rc;
    rc = image_present(ctx, image, err);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return berth_error_set(err, BERTH_EIO, "ImagePullFailed", "",
                               "pulling %s ended without the image", image);
    return 0;
}

static int docker_image_ensure(void *c, const char *image,
                               const berth_registry_credential_t *cred, bool *cached,
                               berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    if (cached)
        *cached = false;
    if (image == NULL || *image == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidImage", "", "no image named");
    int rc = image_present(ctx, image, err);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        if (cached)
            *cached = true;
        return 0;
    }
    return pull_image(ctx, image, cred, err);
}

/* ---- create ------------------------------------------------------------- */

static json_t *labels_for(docker_ctx_t *ctx, const berth_runtime_group_t *group,
                          const char *role, const char *container, size_t index)
{
    char gen[24], digest[24], idx[24];
    snprintf(gen, sizeof gen, "%llu", (unsigned long long)group->generation);
    snprintf(digest, sizeof digest, "%016llx", (unsigned long long)group->digest);
    snprintf(idx, sizeof idx, "%zu", index);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", PLUGIN_LABEL_HOST, ctx->host,
                     PLUGIN_LABEL_KEY, group->key, PLUGIN_LABEL_GENERATION, gen,
                     PLUGIN_LABEL_DIGEST, digest, PLUGIN_LABEL_ROLE, role,
                     PLUGIN_LABEL_CONTAINER, container ? container : "", PLUGIN_LABEL_INDEX,
                     idx);
}

static void add_ulimits(docker_ctx_t *ctx, json_t *hostcfg)
{
    if (!ctx->ulimits)
        return;
    json_object_set_new(hostcfg, "Ulimits",
                        json_pack("[{s:s, s:i, s:i}, {s:s, s:i, s:i}]", "Name", "nofile", "Soft",
                                  1024, "Hard", 1024, "Name", "nproc", "Soft", 1024, "Hard",
                                  1024));
}

/* Splits s on blanks into a new JSON array of strings. */
static json_t *words(const char *s)
{
    json_t *a = json_array();
    if (a == NULL || s == NULL)
        return a;
    const char *p = s;
    for (size_t guard = 0; *p && guard < 4096; guard++) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *q = p;
        while (*q && *q != ' ' && *q != '\t')
            q++;
        if (q > p)
            json_array_append_new(a, json_stringn(p, (size_t)(q - p)));
        p = q;
    }
    return a;
}

/* POSTs a create; stores the new object's id in id_out. */
static int create_object(docker_ctx_t *ctx, const char *name, json_t *body,
                         const berth_group_t *spec, char *id_out, size_t id_cap,
                         berth_error_t *err)
{
    char *text = json_dumps(body, JSON_COMPACT);
    char *path = NULL;
    if (text == NULL || asprintf(&path, "/containers/create?name=%s", name) < 0) {
        free(text);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    engine_response_t r;
    int rc = call(ctx, "POST", path, text, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    /* The body may hold secure environment values. */
    explicit_bzero(text, strlen(text));
    free(text);
    free(path);
    if (rc != 0)
        return rc;
    if (r.status == 201 || r.status == 200) {
        json_t *j = json_loadb(r.body, r.len, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "Id"));
        if (id == NULL)
            rc = berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                                 "creating %s: the engine sent no id", name);
        else
            snprintf(id_out, id_cap, "%s", id);
        json_decref(j);
    } else if (r.status == 409) {
        rc = engine_failure(&r, BERTH_EEXIST, "ContainerGroupExists", name, spec, err);
    } else {
        char what[128];
        snprintf(what, sizeof what, "creating %s", name);
        rc = engine_failure(&r, BERTH_EIO, "ContainerCreateFailed", what, spec, err);
    }
    engine_response_free(&r);
    return rc;
}

/* Bytes for thousandths of a GB, rounded up to a page. */
static int64_t memory_bytes(uint32_t milli_gb)
{
    if (milli_gb == 0)
        return 0;
    uint64_t bytes = ((uint64_t)milli_gb * 1024ull * 1024ull * 1024ull + 999) / 1000;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t p = page > 0 ? (uint64_t)page : 4096;
    return (int64_t)((bytes + p - 1) / p * p);
}

static uint32_t container_memory(const berth_container_t *c)
{
    if (c->has_limits && c->limits.memory_milli_gb > 0)
        return c->limits.memory_milli_gb;
    return c->requests.memory_milli_gb;
}

static int create_sandbox(docker_ctx_t *ctx, const berth_runtime_group_t *group,
                          const char *gid, char *sandbox_id, size_t cap, berth_error_t *err)
{
    const berth_group_t *spec = group->spec;
    json_t *body = json_object();
    json_t *hostcfg = json_object();
    json_t *exposed = json_object();
    json_t *bindings = json_object();
    if (!body || !hostcfg || !exposed || !bindings) {
        json_decref(body);
        json_decref(hostcfg);
        json_decref(exposed);
        json_decref(bindings);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    json_object_set_new(body, "Image", json_string(ctx->sandbox_image));
    json_object_set_new(body, "Cmd", json_pack("[s, s, s]", "sh", "-c", SANDBOX_SCRIPT));
    json_object_set_new(body, "Labels", labels_for(ctx, group, "sandbox", "", 0));
    if (spec->name != NULL && strlen(spec->name) <= 63)
        json_object_set_new(body, "Hostname", json_string(spec->name));
    for (size_t i = 0; spec->ip_address && i < spec->ip_address->nports; i++) {
        const berth_port_t *p = &spec->ip_address->ports[i];
        char k[32];
        snprintf(k, sizeof k, "%u/%s", p->port, p->protocol == BERTH_PROTOCOL_UDP ? "udp" : "tcp");
        json_object_set_new(exposed, k, json_object());
        json_object_set_new(bindings, k,
                            json_pack("[{s:s, s:s}]", "HostIp", ctx->publish_address,
                                      "HostPort", ""));
    }
    json_object_set_new(body, "ExposedPorts", exposed);
    json_object_set_new(hostcfg, "PortBindings", bindings);
    json_object_set_new(hostcfg, "RestartPolicy", json_pack("{s:s}", "Name", "no"));
    add_ulimits(ctx, hostcfg);
    if (spec->dns_config != NULL) {
        json_t *ns = json_array();
        for (size_t i = 0; i < spec->dns_config->nname_servers; i++)
            json_array_append_new(ns, json_string(spec->dns_config->name_servers[i]));
        json_object_set_new(hostcfg, "Dns", ns);
        if (spec->dns_config->search_domains)
            json_object_set_new(hostcfg, "DnsSearch", words(spec->dns_config->search_domains));
        if (spec->dns_config->options)
            json_object_set_new(hostcfg, "DnsOptions", words(spec->dns_config->options));
    }
    json_object_set_new(body, "HostConfig", hostcfg);
    char name[64];
    snprintf(name, sizeof name, "berth-%s-sandbox", gid);
    /* The sandbox image is the plugin's business, not the document's. */
    int rc = image_present(ctx, ctx->sandbox_image, err);
    if (rc == 0)
        rc = pull_image(ctx, ctx->sandbox_image, NULL, err);
    if (rc >= 0)
        rc = create_object(ctx, name, body, spec, sandbox_id, cap, err);
    json_decref(body);
    return rc;
}

/* 1 when the image has an entrypoint of its own, 0 when not (or unknown). */
static int image_has_entrypoint(docker_ctx_t *ctx, const char *image)
{
    char *esc = engine_api_escape(image);
    char *path = NULL;
    if (esc == NULL || asprintf(&path, "/images/%s/json", esc) < 0) {
        free(esc);
        return 0;
    }
    free(esc);
    json_t *j = NULL;
    long status = 0;
    berth_error_t ignored;
    int has = 0;
    if (get_json(ctx, path, "RuntimeError", &j, &status, &ignored) == 0 && j != NULL) {
        json_t *ep = json_object_get(json_object_get(j, "Config"), "Entrypoint");
        has = json_is_array(ep) && json_array_size(ep) > 0;
    }
    json_decref(j);
    free(path);
    return has;
}

static int create_member(docker_ctx_t *ctx, const berth_runtime_group_t *group,
                         const char *gid, const char *sandbox_id, bool init, size_t index,
                         berth_error_t *err)
{
    const berth_group_t *spec = group->spec;
    const berth_container_t *c = init ? &spec->init_containers[index] : &spec->containers[index];
    volume_mount_t *mounts = calloc(BERTH_PLUGIN_CONTAINERS_MAX, sizeof *mounts);
    if (mounts == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    size_t nmounts = 0;
    int rc = volumes_mounts(&ctx->volumes, gid, spec, c, mounts, BERTH_PLUGIN_CONTAINERS_MAX,
                            &nmounts, err);
    if (rc != 0) {
        free(mounts);
        return rc;
    }
    json_t *body = json_object();
    json_t *hostcfg = json_object();
    json_t *env = json_array();
    json_t *binds = json_array();
    if (!body || !hostcfg || !env || !binds) {
        json_decref(body);
        json_decref(hostcfg);
        json_decref(env);
        json_decref(binds);
        free(mounts);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    json_object_set_new(body, "Image", json_string(c->image ? c->image : ""));
    if (c->has_command && c->ncommand > 0) {
        json_t *cmd = json_array();
        size_t first = 0;
        if (image_has_entrypoint(ctx, c->image ? c->image : "")) {
            /* ACI's command replaces the image's entrypoint too. */
            json_object_set_new(body, "Entrypoint", json_pack("[s]", c->command[0]));
            first = 1;
        }
        for (size_t i = first; i < c->ncommand; i++)
            json_array_append_new(cmd, json_string(c->command[i]));
        json_object_set_new(body, "Cmd", cmd);
    }
    for (size_t i = 0; i < c->nenv; i++) {
        const berth_env_var_t *e = &c->env[i];
        const char *v = e->secure_value ? e->secure_value : e->value ? e->value : "";
        char *kv = NULL;
        if (asprintf(&kv, "%s=%s", e->name, v) < 0)
            continue;
        json_array_append_new(env, json_string(kv));
        explicit_bzero(kv, strlen(kv));
        free(kv);
    }
    json_object_set_new(body, "Env", env);
    json_object_set_new(body, "Labels", labels_for(ctx, group, init ? "init" : "container",
                                                   c->name, index));
    for (size_t i = 0; i < nmounts; i++) {
        char *b = NULL;
        if (asprintf(&b, "%s:%s%s", mounts[i].source, mounts[i].target,
                     mounts[i].read_only ? ":ro" : "") >= 0) {
            json_array_append_new(binds, json_string(b));
            free(b);
        }
    }
    free(mounts);
    json_object_set_new(hostcfg, "Binds", binds);
    char netmode[128];
    snprintf(netmode, sizeof netmode, "container:%s", sandbox_id);
    json_object_set_new(hostcfg, "NetworkMode", json_string(netmode));
    json_object_set_new(hostcfg, "RestartPolicy", json_pack("{s:s}", "Name", "no"));
    add_ulimits(ctx, hostcfg);
    uint32_t millicores;
    uint32_t memory_milli_gb = 0;
    if (init) {
        /* Init containers run alone before the others: the group's whole. */
        millicores = group->millicores;
        for (size_t i = 0; i < spec->ncontainers; i++)
            memory_milli_gb += spec->containers[i].requests.memory_milli_gb;
    } else {
        millicores = group->shares ? group->shares[index] : 0;
        memory_milli_gb = container_memory(c);
    }
    if (millicores > 0) {
        uint32_t cpu_shares = millicores * 1024u / 1000u;
        json_object_set_new(hostcfg, "NanoCpus", json_integer((json_int_t)millicores * 1000000));
        json_object_set_new(hostcfg, "CpuShares", json_integer(cpu_shares < 2 ? 2 : cpu_shares));
    }
    if (memory_milli_gb > 0)
        json_object_set_new(hostcfg, "Memory", json_integer(memory_bytes(memory_milli_gb)));
    json_object_set_new(body, "HostConfig", hostcfg);
    char name[64];
    snprintf(name, sizeof name, "berth-%s-%s-%zu", gid, init ? "init" : "c", index);
    char id[72];
    rc = create_object(ctx, name, body, spec, id, sizeof id, err);
    json_decref(body);
    return rc;
}

static int docker_remove(void *c, const char *key, berth_error_t *err);

static int docker_create(void *c, const berth_runtime_group_t *group, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    if (group == NULL || group->key == NULL || group->spec == NULL)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                               "create needs a group with a key and a document");
    const berth_group_t *spec = group->spec;
    if (spec->ncontainers + spec->ninit_containers > BERTH_PLUGIN_CONTAINERS_MAX)
        return berth_error_set(err, BERTH_EINVAL, "TooManyContainers", "properties.containers",
                               "a group may hold at most %d containers",
                               BERTH_PLUGIN_CONTAINERS_MAX);
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    int rc = load_group(ctx, group->key, g, err);
    size_t existing = g->n;
    free(g);
    if (rc != 0)
        return rc;
    if (existing > 0)
        return berth_error_set(err, BERTH_EEXIST, "ContainerGroupExists", "",
                               "the runtime already holds container group %s", group->key);
    char gid[PLUGIN_ID_LEN + 1];
    plugin_group_id(ctx->host, group->key, gid);
    rc = volumes_prepare(&ctx->volumes, gid, spec, err);
    if (rc != 0)
        return rc;
    char sandbox_id[72];
    rc = create_sandbox(ctx, group, gid, sandbox_id, sizeof sandbox_id, err);
    if (rc == BERTH_EEXIST) {
        /* Another creator won the race: what exists is theirs. */
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < spec->ninit_containers; i++)
        rc = create_member(ctx, group, gid, sandbox_id, true, i, err);
    for (size_t i = 0; rc == 0 && i < spec->ncontainers; i++)
        rc = create_member(ctx, group, gid, sandbox_id, false, i, err);
    if (rc != 0) {
        berth_error_t ignored;
        docker_remove(ctx, group->key, &ignored);
        if (rc == BERTH_EEXIST)
            rc = BERTH_EIO;
        if (err)
            err->code = rc;
    }
    return rc;
}

/* ---- start, stop, restart, remove --------------------------------------- */

static int object_post(docker_ctx_t *ctx, const char *id, const char *verb, const char *query,
                       long timeout_s, const char *errname, berth_error_t *err)
{
    char path[256];
    snprintf(path, sizeof path, "/containers/%s/%s%s", id, verb, query ? query : "");
    engine_response_t r;
    int rc = call(ctx, "POST", path, NULL, NULL, timeout_s, &r, err);
    if (rc != 0)
        return rc;
    if (r.status != 204 && r.status != 304 && r.status != 200) {
        char what[160];
        snprintf(what, sizeof what, "%s container %.12s", verb, id);
        rc = engine_failure(&r, r.status == 404 ? BERTH_ENOENT : BERTH_EIO, errname, what,
                            NULL, err);
    }
    engine_response_free(&r);
    return rc;
}

static int start_sandbox(docker_ctx_t *ctx, group_objects_t *g, const char *key,
                         berth_error_t *err)
{
    if (g->sandbox == NULL)
        return berth_error_set(err, BERTH_ENOENT, "ContainerGroupNotFound", "",
                               "container group %s has lost its sandbox", key);
    if (strcmp(g->sandbox->state, "running") == 0)
        return 0;
    return object_post(ctx, g->sandbox->id, "start", NULL, ENGINE_API_TIMEOUT_S,
                       "ContainerStartFailed", err);
}

static int docker_start(void *c, const char *key, const char *container, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    group_object_t *one = NULL;
    int rc = container ? find_named(ctx, key, container, g, &one, err)
                       : load_group(ctx, key, g, err);
    if (rc == 0 && g->n == 0)
        rc = no_group(key, err);
    if (rc == 0)
        rc = start_sandbox(ctx, g, key, err);
    /* One container, or (none named) every container but the init ones,
     * which the agent runs itself before the others. */
    for (size_t i = 0; rc == 0 && i < g->n; i++) {
        group_object_t *o = &g->o[i];
        if (one != NULL ? o == one : o->role == ROLE_CONTAINER)
            rc = object_post(ctx, o->id, "start", NULL, ENGINE_API_TIMEOUT_S,
                             "ContainerStartFailed", err);
    }
    free(g);
    return rc;
}

static int stop_one(docker_ctx_t *ctx, const group_object_t *o, uint32_t grace_s,
                    berth_error_t *err)
{
    char query[32];
    snprintf(query, sizeof query, "?t=%u", grace_s);
    /* The engine waits up to the grace period, then kills: allow for both. */
    int rc = object_post(ctx, o->id, "stop", query, (long)grace_s + ENGINE_API_TIMEOUT_S,
                         "ContainerStopFailed", err);
    return rc == BERTH_ENOENT ? 0 : rc;
}

static int docker_stop(void *c, const char *key, const char *container, uint32_t grace_s,
                       berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    group_object_t *one = NULL;
    int rc = container ? find_named(ctx, key, container, g, &one, err)
                       : load_group(ctx, key, g, err);
    if (rc == 0 && g->n == 0)
        rc = no_group(key, err);
    if (rc == 0 && one != NULL) {
        rc = stop_one(ctx, one, grace_s, err);
    } else if (rc == 0) {
        /* Containers in reverse document order, init containers last. */
        for (size_t i = g->n; rc == 0 && i > 0; i--) {
            const group_object_t *o = &g->o[i - 1];
            if (o->role != ROLE_SANDBOX && strcmp(o->state, "created") != 0 &&
                strcmp(o->state, "exited") != 0)
                rc = stop_one(ctx, o, grace_s, err);
        }
    }
    free(g);
    return rc;
}

static int docker_restart(void *c, const char *key, uint32_t grace_s, berth_error_t *err)
{
    int rc = docker_stop(c, key, NULL, grace_s, err);
    return rc != 0 ? rc : docker_start(c, key, NULL, err);
}

static int delete_object(docker_ctx_t *ctx, const char *id, berth_error_t *err)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s?force=1&v=1", id);
    engine_response_t r;
    int rc = call(ctx, "DELETE", path, NULL, NULL, ENGINE_API_TIMEOUT_S, &r, err);
    if (rc != 0)
        return rc;
    if (r.status != 204 && r.status != 200 && r.status != 404) {
        char what[128];
        snprintf(what, sizeof what, "deleting container %.12s", id);
        rc = engine_failure(&r, BERTH_EIO, "ContainerDeleteFailed", what, NULL, err);
    }
    engine_response_free(&r);
    return rc;
}

static int docker_remove(void *c, const char *key, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    int rc = load_group(ctx, key, g, err);
    /* Containers first get stop_grace_s seconds to end on SIGTERM. */
    if (rc == 0 && g->n > 0) {
        berth_error_t ignored;
        (void)docker_stop(ctx, key, NULL, ctx->stop_grace_s, &ignored);
    }
    /* Members before the sandbox whose namespace they share. */
    for (size_t i = g->n; rc == 0 && i > 0; i--)
        rc = delete_object(ctx, g->o[i - 1].id, err);
    free(g);
    if (rc != 0)
        return rc;
    char gid[PLUGIN_ID_LEN + 1];
    plugin_group_id(ctx->host, key, gid);
    return volumes_remove(&ctx->volumes, gid, err);
}

/* ---- status ------------------------------------------------------------- */

static void fill_ports(json_t *ports, berth_group_status_t *out)
{
    const char *k;
    json_t *bindings;
    json_object_foreach(ports, k, bindings)
    {
        if (!json_is_array(bindings) || json_array_size(bindings) == 0 ||
            out->nports >= BERTH_PLUGIN_PORTS_MAX)
            continue;
        json_t *b = json_array_get(bindings, 0);
        /* One binding per port: prefer an IPv4 one when the engine lists
         * the IPv6 twin as well. */
        for (size_t i = 0; i < json_array_size(bindings); i++) {
            const char *ip = json_string_value(json_object_get(json_array_get(bindings, i),
                                                                "HostIp"));
            if (ip && strchr(ip, ':') == NULL) {
                b = json_array_get(bindings, i);
                break;
            }
        }
        berth_published_port_t *p = &out->ports[out->nports];
        char proto[8] = "tcp";
        unsigned port = 0;
        if (sscanf(k, "%u/%7s", &port, proto) < 1 || port == 0 || port > 65535)
            continue;
        p->port = port;
        p->protocol = strcmp(proto, "udp") == 0 ? BERTH_PROTOCOL_UDP : BERTH_PROTOCOL_TCP;
        const char *hip = json_string_value(json_object_get(b, "HostIp"));
        const char *hport = json_string_value(json_object_get(b, "HostPort"));
        snprintf(p->host_ip, sizeof p->host_ip, "%s", hip ? hip : "");
        p->host_port = (uint32_t)parse_u64(hport, 10);
        out->nports++;
    }
}

static void fill_container(const group_object_t *o, json_t *inspect,
                           berth_container_status_t *cs)
{
    snprintf(cs->name, sizeof cs->name, "%s", o->name);
    cs->exists = true;
    json_t *state = json_object_get(inspect, "State");
    const char *status = json_string_value(json_object_get(state, "Status"));
    if (status == NULL)
        status = o->state;
    cs->exit_code = (int)json_integer_value(json_object_get(state, "ExitCode"));
    cs->oom_killed = json_is_true(json_object_get(state, "OOMKilled"));
    cs->started_ms = plugin_time_parse(json_string_value(json_object_get(state, "StartedAt")));
    cs->finished_ms = plugin_time_parse(json_string_value(json_object_get(state, "FinishedAt")));
    if (strcmp(status, "running") == 0 || strcmp(status, "restarting") == 0 ||
        strcmp(status, "paused") == 0) {
        cs->state = BERTH_CONTAINER_RUNNING;
        snprintf(cs->detail, sizeof cs->detail, "%s", strcmp(status, "running") ? status : "");
    } else if (strcmp(status, "exited") == 0 || strcmp(status, "dead") == 0 ||
               strcmp(status, "stopped") == 0 || strcmp(status, "removing") == 0) {
        cs->state = BERTH_CONTAINER_TERMINATED;
        snprintf(cs->detail, sizeof cs->detail, "%s",
                 cs->oom_killed ? "OOMKilled" : cs->exit_code == 0 ? "Completed" : "Error");
    } else {
        /* created, configured, initialized: made but never run. */
        cs->state = BERTH_CONTAINER_WAITING;
        cs->exit_code = 0;
        snprintf(cs->detail, sizeof cs->detail, "%s", "Created");
    }
    if (cs->state != BERTH_CONTAINER_TERMINATED)
        cs->finished_ms = 0;
    /* Podman may stamp a quick container's end a little before its start. */
    else if (cs->finished_ms != 0 && cs->finished_ms < cs->started_ms)
        cs->finished_ms = cs->started_ms;
}

static int inspect(docker_ctx_t *ctx, const char *id, json_t **out, long *status,
                   berth_error_t *err)
{
    char path[160];
    snprintf(path, sizeof path, "/containers/%s/json", id);
    return get_json(ctx, path, "RuntimeError", out, status, err);
}

static int docker_status(void *c, const char *key, berth_group_status_t *out,
                         berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    memset(out, 0, sizeof *out);
    group_objects_t *g = malloc(sizeof *g);
    if (g == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    int rc = load_group(ctx, key, g, err);
    if (rc != 0 || g->n == 0) {
        free(g);
        return rc;
    }
    out->exists = true;
    out->generation = g->o[0].generation;
    out->digest = g->o[0].digest;
    for (size_t i = 0; rc == 0 && i < g->n; i++) {
        json_t *j = NULL;
        long st = 0;
        rc = inspect(ctx, g->o[i].id, &j, &st, err);
        if (rc != 0 || j == NULL)
            continue; /* removed meanwhile */
        if (g->o[i].role == ROLE_SANDBOX) {
            json_t *ns = json_object_get(j, "NetworkSettings");
            const char *ip = json_string_value(json_object_get(ns, "IPAddress"));
            if (ip == NULL || *ip == '\0') {
                const char *nk;
                json_t *net;
                json_object_foreach(json_object_get(ns, "Networks"), nk, net)
                {
                    const char *nip = json_string_value(json_object_get(net, "IPAddress"));
                    if (nip && *nip) {
                        ip = nip;
                        break;
                    }
                }
            }
            snprintf(out->ip, sizeof out->ip, "%s", ip ? ip : "");
            fill_ports(json_object_get(ns, "Ports"), out);
        } else if (out->ncontainers < BERTH_PLUGIN_CONTAINERS_MAX) {
            fill_container(&g->o[i], j, &out->containers[out->ncontainers++]);
        }
        json_decref(j);
    }
    free(g);
    return rc;
}

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

static int docker_logs(void *c, const char *key, const char *container, uint32_t tail,
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

static int docker_exec(void *c, const char *key, const char *container,
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

/* ---- list --------------------------------------------------------------- */

typedef struct listed {
    char *key;
    uint64_t generation;
    uint64_t digest;
} listed_t;

static int docker_list(void *c, berth_plugin_list_cb cb, void *data, berth_error_t *err)
{
    docker_ctx_t *ctx = c;
    json_t *list;
    int rc = list_objects(ctx, NULL, &list, err);
    if (rc != 0)
        return rc;
    size_t n = 0, cap = 0;
    listed_t *keys = NULL;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        json_t *labels = json_object_get(item, "Labels");
        const char *host = label_of(labels, PLUGIN_LABEL_HOST);
        const char *key = label_of(labels, PLUGIN_LABEL_KEY);
        if (host == NULL || key == NULL || strcmp(host, ctx->host) != 0)
            continue;
        const char *role = label_of(labels, PLUGIN_LABEL_ROLE);
        bool sandbox = role && strcmp(role, "sandbox") == 0;
        size_t k = 0;
        while (k < n && strcmp(keys[k].key, key) != 0)
            k++;
        if (k == n) {
            if (n >= LIST_GROUPS_MAX)
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                listed_t *p = realloc(keys, ncap * sizeof *p);
                if (p == NULL) {
                    rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
                    break;
                }
                keys = p;
                cap = ncap;
            }
            keys[n].key = strdup(key);
            if (keys[n].key == NULL) {
                rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
                break;
            }
            n++;
        } else if (!sandbox) {
            continue;
        }
        /* The sandbox's labels win: it is made first and removed last. */
        keys[k].generation = parse_u64(label_of(labels, PLUGIN_LABEL_GENERATION), 10);
        keys[k].digest = parse_u64(label_of(labels, PLUGIN_LABEL_DIGEST), 16);
    }
    json_decref(list);
    for (size_t k = 0; k < n; k++) {
        if (rc == 0)
            cb(keys[k].key, keys[k].generation, keys[k].digest, data);
        free(keys[k].key);
    }
    free(keys);
    return rc;
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
};

const berth_plugin_ops_t *berth_plugin_entry(void);

/* The plugin's entry symbol: returns the docker plugin's operations (a
 * static table valid while the module is loaded). */
__attribute__((visibility("default"))) const berth_plugin_ops_t *berth_plugin_entry(void)
{
    return &docker_ops;
}
