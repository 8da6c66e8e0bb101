/*
 * plugin.c: the runc plugin's configuration, its operations table and its
 * entry point, berth_plugin_entry, the module's only exported symbol.
 *
 * The operations that change what runs (create, start, stop, restart,
 * remove) live here and call on the sandbox and containers (container.c),
 * bundles (bundle.c) and group.json (state.c); status and list live in
 * state.c, logs and exec in logs.c, interactive sessions in session.c.
 * Creating what already exists is refused rather than duplicated, and a
 * create that fails leaves nothing behind.  This file must never export another symbol, and never restart
 * a container by itself.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runc.h"

/* ---- configuration ------------------------------------------------------------------ */

static void ctx_free(runc_ctx_t *c)
{
    if (c == NULL)
        return;
    free(c->host);
    free(c->runc);
    free(c->root);
    free(c->data_dir);
    free(c->images_dir);
    free(c->secret_dir);
    free(c->azure_file_root);
    free(c->git);
    free(c);
}

static int config_string(json_t *v, const char *member, char **dst, berth_error_t *err)
{
    char target[BERTH_ERROR_TARGET_MAX];
    snprintf(target, sizeof target, "config.%s", member);
    const char *s = json_string_value(v);
    if (s == NULL || s[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", target,
                               "%s must be a non-empty string", target);
    char *copy = strdup(s);
    if (copy == NULL)
        return oom(err);
    free(*dst);
    *dst = copy;
    return 0;
}

/* ---- operations ------------------------------------------------------------------------ */

static int op_open(const char *config_json, const char *host, void **out, berth_error_t *err)
{
    *out = NULL;
    if (host == NULL || host[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "host",
                               "no host name given");
    runc_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return oom(err);
    c->host = strdup(host);
    c->runc = strdup("runc");
    c->root = strdup("/run/berth-runc");
    c->data_dir = strdup("/var/lib/berth/runc");
    c->images_dir = strdup("/var/lib/berth/images");
    c->secret_dir = strdup("/run/berth-runc-secrets");
    c->git = strdup("git");
    c->stop_grace_s = 10;
    if (!c->host || !c->runc || !c->root || !c->data_dir || !c->images_dir || !c->secret_dir ||
        !c->git) {
        ctx_free(c);
        return oom(err);
    }
    if (config_json != NULL) {
        json_error_t jerr;
        json_t *j = json_loads(config_json, JSON_REJECT_DUPLICATES, &jerr);
        if (j == NULL || !json_is_object(j)) {
            json_decref(j);
            ctx_free(c);
            return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config",
                                   "the configuration is not a JSON object%s%s",
                                   j == NULL ? ": " : "", j == NULL ? jerr.text : "");
        }
        const char *k;
        json_t *v;
        int rc = 0;
        json_object_foreach(j, k, v) {
            if (strcmp(k, "runc") == 0)
                rc = config_string(v, k, &c->runc, err);
            else if (strcmp(k, "root") == 0)
                rc = config_string(v, k, &c->root, err);
            else if (strcmp(k, "data_dir") == 0)
                rc = config_string(v, k, &c->data_dir, err);
            else if (strcmp(k, "images_dir") == 0)
                rc = config_string(v, k, &c->images_dir, err);
            else if (strcmp(k, "secret_dir") == 0)
                rc = config_string(v, k, &c->secret_dir, err);
            else if (strcmp(k, "azure_file_root") == 0)
                rc = config_string(v, k, &c->azure_file_root, err);
            else if (strcmp(k, "git") == 0)
                rc = config_string(v, k, &c->git, err);
            else if (strcmp(k, "stop_grace_s") == 0) {
                if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                    json_integer_value(v) > 3600)
                    rc = berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration",
                                         "config.stop_grace_s",
                                         "config.stop_grace_s must be an integer in 0..3600");
                else
                    c->stop_grace_s = (uint32_t)json_integer_value(v);
            } else {
                char target[BERTH_ERROR_TARGET_MAX];
                snprintf(target, sizeof target, "config.%s", k);
                rc = berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", target,
                                     "unknown configuration member %s", target);
            }
            if (rc != 0)
                break;
        }
        json_decref(j);
        if (rc != 0) {
            ctx_free(c);
            return rc;
        }
    }
    c->volumes.data_dir = c->data_dir;
    c->volumes.secret_dir = c->secret_dir;
    c->volumes.azure_file_root = c->azure_file_root;
    c->volumes.git = c->git;
    *out = c;
    return 0;
}

static void op_close(void *ctx)
{
    ctx_free(ctx);
}

static int op_probe(void *vctx, berth_plugin_host_info_t *info, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    memset(info, 0, sizeof *info);
    char *argv[] = {ctx->runc, (char *)"--version", NULL};
    char *out = NULL;
    int code = 0;
    int rc = run_argv(argv, RUNC_CMD_TIMEOUT_MS, &out, NULL, &code);
    if (rc != 0 || code != 0) {
        free(out);
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "config.runc",
                               "cannot run %s --version", ctx->runc);
    }
    /* "runc version 1.1.5+ds1\ncommit: ..." */
    const char *v = strstr(out, "version ");
    if (v != NULL) {
        v += strlen("version ");
        snprintf(info->runtime, sizeof info->runtime, "runc %.*s", (int)strcspn(v, " \r\n"), v);
    } else {
        snprintf(info->runtime, sizeof info->runtime, "runc");
    }
    free(out);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    info->cores = cpus > 0 ? (uint32_t)cpus : 0;
    info->memory_mib = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page >> 20 : 0;
    info->os = BERTH_OS_LINUX;
    return 0;
}

static int op_image_ensure(void *vctx, const char *image, const berth_registry_credential_t *cred,
                           bool *cached, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    (void)cred;
    if (cached != NULL)
        *cached = false;
    char rootfs[RUNC_PATH_MAX];
    if (!image_rootfs(ctx, image, rootfs, sizeof rootfs))
        return berth_error_set(err, BERTH_EINVAL, "InvalidImage", "image",
                               "'%s' is not an image name", image ? image : "");
    if (!dir_exists(rootfs))
        return berth_error_set(err, BERTH_EIO, "ImagePullFailed", "image",
                               "image '%s': the runc runtime has no registry to pull from and "
                               "no unpacked root filesystem for it under %s (expected %s)",
                               image, ctx->images_dir, rootfs);
    if (cached != NULL)
        *cached = true;
    return 0;
}

static int op_images(void *vctx, berth_plugin_image_cb cb, void *data, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    DIR *d = opendir(ctx->images_dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "config.images_dir",
                               "cannot read %s: %s", ctx->images_dir, strerror(errno));
    }
    struct dirent *de;
    for (size_t i = 0; i < RUNC_DIR_ENTRIES_MAX && (de = readdir(d)) != NULL; i++) {
        if (de->d_name[0] == '.')
            continue;
        char rootfs[RUNC_PATH_MAX];
        if (!path_fmt(rootfs, sizeof rootfs, "%s/%s/rootfs", ctx->images_dir, de->d_name) ||
            !dir_exists(rootfs))
            continue;
        /* "name_tag" -> "name:tag" (a '/' in the name also became '_'). */
        char name[256];
        snprintf(name, sizeof name, "%s", de->d_name);
        char *us = strrchr(name, '_');
        if (us != NULL)
            *us = ':';
        cb(name, data);
    }
    closedir(d);
    return 0;
}


static int op_create(void *vctx, const berth_runtime_group_t *group, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    if (group == NULL || group->spec == NULL || group->key == NULL || group->key[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "group",
                               "no group given");
    const berth_group_t *s = group->spec;
    if (s->ncontainers == 0)
        return berth_error_set(err, BERTH_EINVAL, "ContainerCreateFailed",
                               "properties.containers", "the group has no container");
    if (s->ncontainers + s->ninit_containers > BERTH_PLUGIN_CONTAINERS_MAX)
        return berth_error_set(err, BERTH_EINVAL, "ContainerCreateFailed",
                               "properties.containers", "more than %d containers",
                               BERTH_PLUGIN_CONTAINERS_MAX);
    if (s->os_type == BERTH_OS_WINDOWS)
        return berth_error_set(err, BERTH_EINVAL, "UnsupportedOsType", "properties.osType",
                               "the runc runtime runs Linux containers only");
    for (size_t i = 0; i < s->ncontainers; i++)
        if (s->containers[i].requests.gpu.count > 0 || s->containers[i].limits.gpu.count > 0) {
            char target[128];
            snprintf(target, sizeof target,
                     "properties.containers[%zu].properties.resources.requests.gpu", i);
            return berth_error_set(err, BERTH_EINVAL, "GpuNotSupported", target,
                                   "the runc runtime has no GPUs");
        }
    char id[PLUGIN_ID_LEN + 1], dir[RUNC_PATH_MAX], rid[RUNC_ID_MAX];
    plugin_group_id(ctx->host, group->key, id);
    runc_id(id, "sandbox", rid);
    if (!group_dir(ctx, id, dir, sizeof dir))
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config.data_dir",
                               "data_dir path too long");
    runc_state_t st;
    int rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc != 0)
        return rc;
    if (file_exists(dir) || st != RUNC_ABSENT)
        return berth_error_set(err, BERTH_EEXIST, "ContainerGroupExists", "key",
                               "the runtime already holds group '%s' on host '%s'", group->key,
                               ctx->host);
    /* Every image first, so that a missing one changes nothing. */
    for (size_t pass = 0; pass < 2; pass++) {
        size_t n = pass == 0 ? s->ninit_containers : s->ncontainers;
        for (size_t i = 0; i < n; i++) {
            const berth_container_t *c = pass == 0 ? &s->init_containers[i] : &s->containers[i];
            char rootfs[RUNC_PATH_MAX];
            if (!image_rootfs(ctx, c->image, rootfs, sizeof rootfs) || !dir_exists(rootfs)) {
                char target[128];
                snprintf(target, sizeof target, "properties.%s[%zu].properties.image",
                         pass == 0 ? "initContainers" : "containers", i);
                return berth_error_set(err, BERTH_EIO, "ImagePullFailed", target,
                                       "image '%s': the runc runtime has no registry to pull "
                                       "from and no unpacked root filesystem for it under %s",
                                       c->image ? c->image : "", ctx->images_dir);
            }
        }
    }
    rc = plugin_mkdir_p(dir, 0700);
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "cannot create %s: %s", dir, strerror(-rc));
    berth_error_t ignored;
    rc = volumes_prepare(&ctx->volumes, id, s, err);
    if (rc != 0) {
        plugin_remove_tree(dir);
        return rc;
    }
    char rootfs[RUNC_PATH_MAX];
    image_rootfs(ctx, s->containers[0].image, rootfs, sizeof rootfs);
    bundle_spec_t sb = {.role = "sandbox", .name = "", .index = 0, .rootfs = rootfs};
    json_t *config = bundle_config(ctx, group, rid, &sb);
    if (config == NULL) {
        group_destroy(ctx, id, &ignored);
        return oom(err);
    }
    rc = bundle_write(ctx, id, "sandbox", config, err);
    json_decref(config);
    for (size_t i = 0; rc == 0 && i < s->ninit_containers; i++)
        rc = create_container_bundle(ctx, group, id, &s->init_containers[i], true, i, err);
    for (size_t i = 0; rc == 0 && i < s->ncontainers; i++)
        rc = create_container_bundle(ctx, group, id, &s->containers[i], false, i, err);
    int pid = 0;
    if (rc == 0)
        rc = sandbox_ensure(ctx, id, &pid, err);
    if (rc == 0)
        rc = write_group_state(ctx, group, id, err);
    if (rc != 0) {
        group_destroy(ctx, id, &ignored);
        return rc;
    }
    return 0;
}

static int op_start(void *vctx, const char *key, const char *container, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL)
        return oom(err);
    int rc = group_find(ctx, key, g, err);
    const runc_entry_t *one = NULL;
    if (rc == 0 && container != NULL) {
        one = entry_find(g, container);
        if (one == NULL)
            rc = berth_error_set(err, BERTH_ENOENT, "ContainerNotFound", "container",
                                 "group '%s' has no container '%s'", key, container);
    }
    int pid = 0;
    if (rc == 0)
        rc = sandbox_ensure(ctx, g->id, &pid, err);
    if (rc == 0 && one != NULL) {
        rc = container_start(ctx, g->id, one, pid, err);
    } else if (rc == 0) {
        /* Every container; init containers are the agent's to run, one at
         * a time, before it starts the group. */
        for (size_t i = 0; rc == 0 && i < g->n; i++)
            if (!g->entries[i].init)
                rc = container_start(ctx, g->id, &g->entries[i], pid, err);
    }
    free(g);
    return rc;
}

static int op_stop(void *vctx, const char *key, const char *container, uint32_t grace_s,
                   berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL)
        return oom(err);
    int rc = group_find(ctx, key, g, err);
    if (rc == 0 && container != NULL) {
        const runc_entry_t *e = entry_find(g, container);
        rc = e == NULL ? berth_error_set(err, BERTH_ENOENT, "ContainerNotFound", "container",
                                         "group '%s' has no container '%s'", key, container)
                       : container_stop(ctx, g->id, e, grace_s, err);
    } else if (rc == 0) {
        /* SIGTERM to everything first, so that the grace periods overlap. */
        for (size_t i = 0; i < g->n; i++) {
            char rid[RUNC_ID_MAX];
            runc_id(g->id, g->entries[i].sub, rid);
            const char *term[] = {"kill", rid, "TERM", NULL};
            runc_quiet(ctx, term, RUNC_CMD_TIMEOUT_MS);
        }
        for (size_t i = g->n; rc == 0 && i > 0; i--)
            rc = container_stop(ctx, g->id, &g->entries[i - 1], grace_s, err);
    }
    free(g);
    return rc;
}

static int op_restart(void *vctx, const char *key, uint32_t grace_s, berth_error_t *err)
{
    int rc = op_stop(vctx, key, NULL, grace_s, err);
    return rc != 0 ? rc : op_start(vctx, key, NULL, err);
}

static int op_remove(void *vctx, const char *key, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    if (key == NULL || key[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "key", "no group key");
    char id[PLUGIN_ID_LEN + 1];
    plugin_group_id(ctx->host, key, id);
    /* Containers first get stop_grace_s seconds to end on SIGTERM. */
    berth_error_t ignored;
    (void)op_stop(vctx, key, NULL, ctx->stop_grace_s, &ignored);
    return group_destroy(ctx, id, err);
}

/* The containers bind-mount the config map directories (bundle.c, through
 * volumes_mounts()): the files change under them, nothing restarts. */
static int op_config_maps(void *vctx, const char *key, const berth_group_t *spec,
                          berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    berth_group_status_t *st = malloc(sizeof *st);
    if (st == NULL)
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    int rc = op_status(vctx, key, st, err);
    bool held = rc == 0 && st->exists;
    free(st);
    if (rc != 0)
        return rc;
    if (!held)
        return berth_error_set(err, BERTH_ENOENT, "ContainerGroupNotFound", "key",
                               "the host holds no container group '%s'", key);
    char id[PLUGIN_ID_LEN + 1];
    plugin_group_id(ctx->host, key, id);
    return volumes_config_maps(&ctx->volumes, id, spec, err);
}

static const berth_plugin_ops_t runc_ops = {
    .abi_major = BERTH_PLUGIN_ABI_MAJOR,
    .size = sizeof(berth_plugin_ops_t),
    .name = "runc",
    .version = "0.1.0",
    .open = op_open,
    .close = op_close,
    .probe = op_probe,
    .image_ensure = op_image_ensure,
    .images = op_images,
    .create = op_create,
    .start = op_start,
    .stop = op_stop,
    .restart = op_restart,
    .remove = op_remove,
    .status = op_status,
    .logs = op_logs,
    .exec = op_exec,
    .list = op_list,
    .config_maps = op_config_maps,
    .session_open = op_session_open,
    .session_read = op_session_read,
    .session_write = op_session_write,
    .session_resize = op_session_resize,
    .session_close = op_session_close,
    .stats = op_stats,
};

/* The plugin's entry point: returns the static operations table (never
 * NULL); the table lives as long as the loaded module. */
__attribute__((visibility("default"))) const berth_plugin_ops_t *berth_plugin_entry(void);
const berth_plugin_ops_t *berth_plugin_entry(void)
{
    return &runc_ops;
}
