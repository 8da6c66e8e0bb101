/*
 * plugin.c: the runtime plugin loader (dlopen) and the runtime digest.
 *
 * A plugin is refused before any of its code runs beyond its entry
 * function: the loader checks the ABI major version, the size of the ops
 * struct and every mandatory operation, and names the file and what is
 * wrong in the error.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "berth-plugin.h"
#include "internal.h"

#ifndef BERTH_PLUGINDIR
#define BERTH_PLUGINDIR "/usr/local/lib/berth/plugins"
#endif

#define PLUGIN_PATH_MAX 4096

struct berth_plugin {
    void *handle;
    const berth_plugin_ops_t *ops;
};

/* The ops struct must reach at least through `list`. */
#define OPS_MIN_SIZE (offsetof(berth_plugin_ops_t, list) + sizeof(((berth_plugin_ops_t *)0)->list))

/* Resolves a bare plugin name to a file: "<dir>/berth-<name>.so" for each
 * directory of $BERTH_PLUGIN_PATH (colon-separated), then the installed
 * directory.  Writes the first existing candidate (or the installed one when
 * none exists, so the error names it) into buf. */
static void resolve_name(const char *name, char *buf, size_t cap)
{
    const char *path = getenv("BERTH_PLUGIN_PATH");
    if (path != NULL) {
        while (*path != '\0') {
            size_t n = strcspn(path, ":");
            if (n > 0) {
                snprintf(buf, cap, "%.*s/berth-%s.so", (int)n, path, name);
                if (access(buf, F_OK) == 0)
                    return;
            }
            path += n;
            if (*path == ':')
                path++;
        }
    }
    snprintf(buf, cap, "%s/berth-%s.so", BERTH_PLUGINDIR, name);
}

static bool name_is_plain(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return false;
    return true;
}

static int refuse(void *handle, berth_error_t *err, int code, const char *file,
                  const char *what)
{
    if (handle != NULL)
        dlclose(handle);
    return berth__error_set(err, code, "InvalidPlugin", file, "plugin %s: %s", file, what);
}

int berth_plugin_load(const char *path, berth_plugin_t **out, berth_error_t *err)
{
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return berth__error_set(err, BERTH_EINVAL, "InvalidPlugin", "plugin",
                                "no plugin path given");
    char file[PLUGIN_PATH_MAX];
    if (strchr(path, '/') == NULL) {
        if (!name_is_plain(path))
            return berth__error_set(err, BERTH_EINVAL, "InvalidPlugin", "plugin",
                                    "plugin name '%s' is neither a path nor a plain name", path);
        resolve_name(path, file, sizeof file);
    } else {
        if (strlen(path) >= sizeof file)
            return berth__error_set(err, BERTH_EINVAL, "InvalidPlugin", "plugin",
                                    "plugin path is too long");
        snprintf(file, sizeof file, "%s", path);
    }
    if (access(file, R_OK) != 0)
        return refuse(NULL, err, BERTH_ENOENT, file, "no such file (or not readable)");

    (void)dlerror();
    void *handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *why = dlerror();
        char msg[BERTH_ERROR_MESSAGE_MAX / 2];
        snprintf(msg, sizeof msg, "cannot be loaded: %s", why != NULL ? why : "unknown error");
        return refuse(NULL, err, BERTH_EINVAL, file, msg);
    }
    (void)dlerror();
    void *sym = dlsym(handle, BERTH_PLUGIN_ENTRY);
    if (sym == NULL)
        return refuse(handle, err, BERTH_EINVAL, file,
                      "has no entry symbol " BERTH_PLUGIN_ENTRY);
    berth_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);     /* object to function pointer */
    const berth_plugin_ops_t *ops = entry();
    if (ops == NULL)
        return refuse(handle, err, BERTH_EINVAL, file, "entry returned no operations");
    if (ops->abi_major != BERTH_PLUGIN_ABI_MAJOR) {
        char msg[128];
        snprintf(msg, sizeof msg, "built for plugin ABI %u, this Berth speaks ABI %u",
                 ops->abi_major, (unsigned)BERTH_PLUGIN_ABI_MAJOR);
        return refuse(handle, err, BERTH_EINVAL, file, msg);
    }
    if (ops->size < OPS_MIN_SIZE) {
        char msg[128];
        snprintf(msg, sizeof msg, "operations struct of %u bytes is shorter than ABI %u's %zu",
                 ops->size, (unsigned)BERTH_PLUGIN_ABI_MAJOR, (size_t)OPS_MIN_SIZE);
        return refuse(handle, err, BERTH_EINVAL, file, msg);
    }
    if (ops->name == NULL || ops->name[0] == '\0')
        return refuse(handle, err, BERTH_EINVAL, file, "has no name");
    static const struct {
        const char *name;
        size_t offset;
    } required[] = {
#define OP(f) {#f, offsetof(berth_plugin_ops_t, f)}
        OP(open), OP(close), OP(probe), OP(image_ensure), OP(images), OP(create),
        OP(start), OP(stop), OP(restart), OP(remove), OP(status), OP(logs), OP(exec),
        OP(list),
#undef OP
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        void *fn;
        memcpy(&fn, (const char *)ops + required[i].offset, sizeof fn);
        if (fn == NULL) {
            char msg[128];
            snprintf(msg, sizeof msg, "lacks the operation '%s'", required[i].name);
            return refuse(handle, err, BERTH_EINVAL, file, msg);
        }
    }
    /* The session operations come as a set: all five, or none. */
    if (ops->size >= offsetof(berth_plugin_ops_t, session_close) + sizeof ops->session_close) {
        int have = (ops->session_open != NULL) + (ops->session_read != NULL) +
                   (ops->session_write != NULL) + (ops->session_resize != NULL) +
                   (ops->session_close != NULL);
        if (have != 0 && have != 5)
            return refuse(handle, err, BERTH_EINVAL, file,
                          "has some of the session operations but not all five");
    }
    berth_plugin_t *p = malloc(sizeof *p);
    if (p == NULL) {
        dlclose(handle);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    p->handle = handle;
    p->ops = ops;
    *out = p;
    return 0;
}

const berth_plugin_ops_t *berth_plugin_ops(const berth_plugin_t *plugin)
{
    return plugin->ops;
}

void berth_plugin_unload(berth_plugin_t *plugin)
{
    if (plugin == NULL)
        return;
    dlclose(plugin->handle);
    free(plugin);
}

uint64_t berth_runtime_digest(const berth_group_t *group)
{
    if (group == NULL)
        return 0;
    char *json = NULL;
    size_t len = 0;
    if (berth_group_to_json(group, BERTH_JSON_NO_CONFIG_MAPS, &json, &len) != 0)
        return 1;     /* out of memory: a digest that matches nothing real */
    uint64_t h = berth__fnv1a(BERTH__FNV_INIT, json, len);
    berth_free(json);
    return h != 0 ? h : 1;
}
