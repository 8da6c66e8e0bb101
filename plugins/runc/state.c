/*
 * state.c: where a group lives on disk, its group.json, and its status.
 *
 * A group's names and paths (its directory, its bundles, runc's container
 * ids, the images' root filesystems) are made here and only here, and
 * group.json is written and read here only.  A container's state comes
 * from `runc state` and the files its supervisor writes (shim.c).  This
 * file must never change what runs: it reads, and writes group.json once
 * at create.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runc.h"

/* ---- names and paths -------------------------------------------------------- */

/* The directory of group id, <data_dir>/groups/ID; false when it does not fit. */
bool group_dir(const runc_ctx_t *ctx, const char *id, char *buf, size_t cap)
{
    return path_fmt(buf, cap, "%s/groups/%s", ctx->data_dir, id);
}

/* The path of `file` in bundle `sub` of group id (file NULL: the bundle
 * directory itself); false when it does not fit. */
bool bundle_file(const runc_ctx_t *ctx, const char *id, const char *sub,
                 const char *file, char *buf, size_t cap)
{
    if (file == NULL)
        return path_fmt(buf, cap, "%s/groups/%s/%s", ctx->data_dir, id, sub);
    return path_fmt(buf, cap, "%s/groups/%s/%s/%s", ctx->data_dir, id, sub, file);
}

/* runc's id of bundle `sub` of group id: "berth-ID-SUB". */
void runc_id(const char *id, const char *sub, char rid[RUNC_ID_MAX])
{
    snprintf(rid, RUNC_ID_MAX, "berth-%s-%s", id, sub);
}

/* The directory of image "name[:tag]" under images_dir: '/', ':' and '@'
 * become '_', and a name without a tag means ":latest".  False when the
 * image name is empty or the path does not fit. */
static bool image_dir(const runc_ctx_t *ctx, const char *image, char *buf, size_t cap)
{
    if (image == NULL || image[0] == '\0' || strlen(image) > 1024)
        return false;
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(slash ? slash : image, ':');
    bool tagged = colon != NULL || strchr(image, '@') != NULL;
    char name[1100];
    snprintf(name, sizeof name, "%s%s", image, tagged ? "" : ":latest");
    for (char *p = name; *p != '\0'; p++)
        if (*p == '/' || *p == ':' || *p == '@')
            *p = '_';
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return path_fmt(buf, cap, "%s/%s", ctx->images_dir, name);
}

/* The unpacked root filesystem of `image` (image_dir()/rootfs); false
 * when the name is unusable or the path does not fit. */
bool image_rootfs(const runc_ctx_t *ctx, const char *image, char *buf, size_t cap)
{
    char dir[RUNC_PATH_MAX];
    return image_dir(ctx, image, dir, sizeof dir) && path_fmt(buf, cap, "%s/rootfs", dir);
}

/* ---- group.json --------------------------------------------------------------- */

/* Loads group.json of group id into *g; checks that it belongs to host and
 * key (key NULL: any key of host, stored into key_out when not NULL).
 * Returns true when the group exists for them. */
static bool group_load(const runc_ctx_t *ctx, const char *id, const char *key, runc_group_t *g,
                       char **key_out)
{
    char path[RUNC_PATH_MAX];
    if (!path_fmt(path, sizeof path, "%s/groups/%s/group.json", ctx->data_dir, id))
        return false;
    json_t *j = json_load_file(path, 0, NULL);
    if (j == NULL)
        return false;
    bool ok = false;
    const char *host = json_string_value(json_object_get(j, "host"));
    const char *k = json_string_value(json_object_get(j, "key"));
    const char *gen = json_string_value(json_object_get(j, "generation"));
    const char *dig = json_string_value(json_object_get(j, "digest"));
    json_t *cs = json_object_get(j, "containers");
    if (host == NULL || k == NULL || gen == NULL || dig == NULL || !json_is_array(cs) ||
        strcmp(host, ctx->host) != 0 || (key != NULL && strcmp(k, key) != 0) ||
        json_array_size(cs) > BERTH_PLUGIN_CONTAINERS_MAX)
        goto done;
    memset(g, 0, sizeof *g);
    snprintf(g->id, sizeof g->id, "%s", id);
    g->generation = strtoull(gen, NULL, 10);
    g->digest = strtoull(dig, NULL, 16);
    size_t i;
    json_t *c;
    json_array_foreach(cs, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *sub = json_string_value(json_object_get(c, "bundle"));
        const char *role = json_string_value(json_object_get(c, "role"));
        if (name == NULL || sub == NULL || role == NULL)
            goto done;
        runc_entry_t *e = &g->entries[g->n++];
        snprintf(e->name, sizeof e->name, "%s", name);
        snprintf(e->sub, sizeof e->sub, "%s", sub);
        e->init = strcmp(role, "init") == 0;
    }
    if (key_out != NULL) {
        *key_out = strdup(k);
        if (*key_out == NULL)
            goto done;
    }
    ok = true;
done:
    json_decref(j);
    return ok;
}

/* Finds the group of `key` on this host; BERTH_ENOENT when there is none. */
int group_find(runc_ctx_t *ctx, const char *key, runc_group_t *g, berth_error_t *err)
{
    if (key == NULL || key[0] == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "key", "no group key");
    char id[PLUGIN_ID_LEN + 1];
    plugin_group_id(ctx->host, key, id);
    if (!group_load(ctx, id, key, g, NULL))
        return berth_error_set(err, BERTH_ENOENT, "ResourceNotFound", "key",
                               "the runtime holds no group '%s' on host '%s'", key, ctx->host);
    return 0;
}

/* The entry of container `name` in g, or NULL. */
const runc_entry_t *entry_find(const runc_group_t *g, const char *name)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->entries[i].name, name) == 0)
            return &g->entries[i];
    return NULL;
}

/* Writes group.json for `group` (group id): host, key, generation,
 * digest and the containers in document order, init containers first. */
int write_group_state(runc_ctx_t *ctx, const berth_runtime_group_t *group,
                      const char *id, berth_error_t *err)
{
    const berth_group_t *s = group->spec;
    json_t *j = json_object();
    char num[32];
    json_object_set_new(j, "host", json_string(ctx->host));
    json_object_set_new(j, "key", json_string(group->key));
    snprintf(num, sizeof num, "%" PRIu64, group->generation);
    json_object_set_new(j, "generation", json_string(num));
    snprintf(num, sizeof num, "%016" PRIx64, group->digest);
    json_object_set_new(j, "digest", json_string(num));
    json_t *cs = json_array();
    for (size_t pass = 0; pass < 2; pass++) {
        bool init = pass == 0;
        size_t n = init ? s->ninit_containers : s->ncontainers;
        for (size_t i = 0; i < n; i++) {
            const berth_container_t *c = init ? &s->init_containers[i] : &s->containers[i];
            char sub[RUNC_SUB_MAX];
            snprintf(sub, sizeof sub, "%s-%zu", init ? "init" : "c", i);
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(c->name));
            json_object_set_new(o, "role", json_string(init ? "init" : "container"));
            json_object_set_new(o, "index", json_integer((json_int_t)i));
            json_object_set_new(o, "bundle", json_string(sub));
            json_array_append_new(cs, o);
        }
    }
    json_object_set_new(j, "containers", cs);
    char *text = json_dumps(j, JSON_INDENT(1));
    json_decref(j);
    if (text == NULL)
        return oom(err);
    char path[RUNC_PATH_MAX];
    int rc = -ENAMETOOLONG;
    if (path_fmt(path, sizeof path, "%s/groups/%s/group.json", ctx->data_dir, id))
        rc = write_file(path, text);
    free(text);
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "cannot write the group's state: %s", strerror(-rc));
    return 0;
}


/* ---- status and list ----------------------------------------------------------- */

/* Fills *cs for bundle `e` from runc's state and the supervisor's files. */
static int container_status(runc_ctx_t *ctx, const char *id, const runc_entry_t *e,
                            berth_container_status_t *cs, berth_error_t *err)
{
    memset(cs, 0, sizeof *cs);
    snprintf(cs->name, sizeof cs->name, "%s", e->name);
    char path[RUNC_PATH_MAX];
    cs->exists = bundle_file(ctx, id, e->sub, "config.json", path, sizeof path) &&
                 file_exists(path);
    /* The supervisor writes `exit` before it ends: asking whether it is
     * alive before reading `exit` means a dead one has left its result. */
    bool shim = shim_alive(ctx, id, e->sub);
    char rid[RUNC_ID_MAX];
    runc_id(id, e->sub, rid);
    runc_state_t st;
    int rc = runc_state_get(ctx, rid, &st, NULL, err);
    if (rc != 0)
        return rc;
    int64_t started = 0, finished = 0, code = 0;
    bool has_started = bundle_file(ctx, id, e->sub, "started", path, sizeof path) &&
                       read_i64(path, &started);
    bool has_exit = bundle_file(ctx, id, e->sub, "exit", path, sizeof path) &&
                    read_i64(path, &code);
    if (bundle_file(ctx, id, e->sub, "finished", path, sizeof path))
        read_i64(path, &finished);
    cs->started_ms = has_started ? started : 0;
    if (st == RUNC_RUNNING || st == RUNC_PAUSED) {
        cs->state = BERTH_CONTAINER_RUNNING;
        snprintf(cs->detail, sizeof cs->detail, "%s", st == RUNC_PAUSED ? "Paused" : "Running");
        return 0;
    }
    if (has_exit) {
        cs->state = BERTH_CONTAINER_TERMINATED;
        cs->exit_code = (int)code;
        cs->finished_ms = finished;
        snprintf(cs->detail, sizeof cs->detail, "%s", code == 0 ? "Completed" : "Error");
        return 0;
    }
    if (st == RUNC_CREATED || (shim && st == RUNC_ABSENT)) {
        cs->state = BERTH_CONTAINER_WAITING;
        snprintf(cs->detail, sizeof cs->detail, "ContainerCreating");
    } else if (shim) {
        cs->state = BERTH_CONTAINER_RUNNING;   /* ended; its exit is being recorded */
        snprintf(cs->detail, sizeof cs->detail, "Running");
    } else if (has_started || st == RUNC_STOPPED) {
        /* Started, but nobody recorded how it ended (the host restarted). */
        cs->state = BERTH_CONTAINER_TERMINATED;
        cs->exit_code = -1;
        snprintf(cs->detail, sizeof cs->detail, "Unknown");
    } else {
        cs->state = BERTH_CONTAINER_WAITING;
        snprintf(cs->detail, sizeof cs->detail, "Created");
    }
    return 0;
}

/* The plugin's status operation (berth-plugin.h): the group of `key` and
 * each container's state into *out, zeroed first; a group the runtime
 * does not hold is no error (out->exists false). */
int op_status(void *vctx, const char *key, berth_group_status_t *out, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    memset(out, 0, sizeof *out);
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL)
        return oom(err);
    berth_error_t ignored;
    int rc = group_find(ctx, key, g, &ignored);
    if (rc != 0) {
        free(g);
        return rc == BERTH_ENOENT ? 0 : berth_error_set(err, rc, ignored.name, ignored.target,
                                                        "%s", ignored.message);
    }
    out->exists = true;
    out->generation = g->generation;
    out->digest = g->digest;
    for (size_t i = 0; rc == 0 && i < g->n; i++)
        rc = container_status(ctx, g->id, &g->entries[i], &out->containers[i], err);
    out->ncontainers = rc == 0 ? g->n : 0;
    free(g);
    return rc;
}

/* The plugin's list operation (berth-plugin.h): cb once for every group
 * of this host under data_dir, with its key, generation and digest. */
int op_list(void *vctx, berth_plugin_list_cb cb, void *data, berth_error_t *err)
{
    runc_ctx_t *ctx = vctx;
    char dir[RUNC_PATH_MAX];
    if (!path_fmt(dir, sizeof dir, "%s/groups", ctx->data_dir))
        return berth_error_set(err, BERTH_EINVAL, "InvalidConfiguration", "config.data_dir",
                               "data_dir path too long");
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        return berth_error_set(err, BERTH_EIO, "RuntimeUnavailable", "config.data_dir",
                               "cannot read %s: %s", dir, strerror(errno));
    }
    runc_group_t *g = malloc(sizeof *g);
    if (g == NULL) {
        closedir(d);
        return oom(err);
    }
    struct dirent *de;
    for (size_t i = 0; i < RUNC_DIR_ENTRIES_MAX && (de = readdir(d)) != NULL; i++) {
        if (strlen(de->d_name) != PLUGIN_ID_LEN)
            continue;
        char *key = NULL;
        if (group_load(ctx, de->d_name, NULL, g, &key)) {
            cb(key, g->generation, g->digest, data);
            free(key);
        }
    }
    free(g);
    closedir(d);
    return 0;
}
