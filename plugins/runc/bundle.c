/*
 * bundle.c: the OCI bundles: each container's config.json.
 *
 * A container's bundle holds its config.json (annotated with the io.berth.*
 * labels): its root filesystem, mounts, limits and namespaces.  Every
 * container and init container joins the sandbox's network namespace
 * through /proc/<sandbox pid>/ns/net (set at start, bundle_set_netns()),
 * so the group's containers reach each other on 127.0.0.1.  This file
 * must never start anything: it writes bundles only.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runc.h"

static json_t *str_array(const char *const *items, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_string(items[i]));
    return a;
}

static json_t *mount_new(const char *dest, const char *type, const char *source,
                         const char *const *options, size_t noptions)
{
    json_t *m = json_object();
    json_object_set_new(m, "destination", json_string(dest));
    json_object_set_new(m, "type", json_string(type));
    json_object_set_new(m, "source", json_string(source));
    if (noptions > 0)
        json_object_set_new(m, "options", str_array(options, noptions));
    return m;
}

/* The mounts every bundle has. */
static json_t *base_mounts(void)
{
    static const char *const dev[] = {"nosuid", "strictatime", "mode=755", "size=65536k"};
    static const char *const pts[] = {"nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                      "mode=0620", "gid=5"};
    static const char *const shm[] = {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"};
    static const char *const mq[] = {"nosuid", "noexec", "nodev"};
    static const char *const sys[] = {"nosuid", "noexec", "nodev", "ro"};
    static const char *const cg[] = {"nosuid", "noexec", "nodev", "relatime", "ro"};
    static const char *const tmp[] = {"nosuid", "nodev", "mode=1777"};
    json_t *a = json_array();
    json_array_append_new(a, mount_new("/proc", "proc", "proc", NULL, 0));
    json_array_append_new(a, mount_new("/dev", "tmpfs", "tmpfs", dev, 4));
    json_array_append_new(a, mount_new("/dev/pts", "devpts", "devpts", pts, 6));
    json_array_append_new(a, mount_new("/dev/shm", "tmpfs", "shm", shm, 5));
    json_array_append_new(a, mount_new("/dev/mqueue", "mqueue", "mqueue", mq, 3));
    json_array_append_new(a, mount_new("/sys", "sysfs", "sysfs", sys, 4));
    json_array_append_new(a, mount_new("/sys/fs/cgroup", "cgroup", "cgroup", cg, 5));
    json_array_append_new(a, mount_new("/tmp", "tmpfs", "tmpfs", tmp, 3));
    return a;
}

/* Docker's default capability set. */
static json_t *capabilities(void)
{
    static const char *const caps[] = {
        "CAP_CHOWN",      "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
        "CAP_MKNOD",      "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
        "CAP_SETFCAP",    "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
        "CAP_KILL",       "CAP_AUDIT_WRITE"};
    size_t n = sizeof caps / sizeof caps[0];
    json_t *c = json_object();
    json_object_set_new(c, "bounding", str_array(caps, n));
    json_object_set_new(c, "effective", str_array(caps, n));
    json_object_set_new(c, "permitted", str_array(caps, n));
    return c;
}

/* Builds a bundle's config.json.  The network namespace of a container
 * gets its path at start (bundle_set_netns()). */
json_t *bundle_config(const runc_ctx_t *ctx, const berth_runtime_group_t *group,
                      const char *rid, const bundle_spec_t *b)
{
    json_t *root = json_object();
    json_object_set_new(root, "ociVersion", json_string("1.0.2"));

    json_t *proc = json_object();
    json_object_set_new(proc, "terminal", json_false());
    json_t *user = json_object();
    json_object_set_new(user, "uid", json_integer(0));
    json_object_set_new(user, "gid", json_integer(0));
    json_object_set_new(proc, "user", user);
    json_t *args = json_array();
    if (b->c == NULL) {
        json_array_append_new(args, json_string("sleep"));
        json_array_append_new(args, json_string(RUNC_SANDBOX_SLEEP));
    } else if (b->c->has_command && b->c->ncommand > 0) {
        for (size_t i = 0; i < b->c->ncommand; i++)
            json_array_append_new(args, json_string(b->c->command[i]));
    } else {
        json_array_append_new(args, json_string("sh"));
    }
    json_object_set_new(proc, "args", args);
    json_t *env = json_array();
    bool has_path = false;
    for (size_t i = 0; b->c != NULL && i < b->c->nenv; i++) {
        const berth_env_var_t *e = &b->c->env[i];
        const char *v = e->value ? e->value : e->secure_value ? e->secure_value : "";
        size_t n = strlen(e->name) + strlen(v) + 2;
        char *kv = malloc(n);
        if (kv == NULL)
            continue;
        snprintf(kv, n, "%s=%s", e->name, v);
        json_array_append_new(env, json_string(kv));
        free(kv);
        if (strcmp(e->name, "PATH") == 0)
            has_path = true;
    }
    if (!has_path)
        json_array_insert_new(
            env, 0, json_string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    json_object_set_new(proc, "env", env);
    json_object_set_new(proc, "cwd", json_string("/"));
    json_object_set_new(proc, "capabilities", capabilities());
    json_t *rl = json_object();
    json_object_set_new(rl, "type", json_string("RLIMIT_NOFILE"));
    json_object_set_new(rl, "hard", json_integer(1024));
    json_object_set_new(rl, "soft", json_integer(1024));
    json_t *rls = json_array();
    json_array_append_new(rls, rl);
    json_object_set_new(proc, "rlimits", rls);
    json_object_set_new(proc, "noNewPrivileges", json_true());
    json_object_set_new(root, "process", proc);

    json_t *r = json_object();
    json_object_set_new(r, "path", json_string(b->rootfs));
    json_object_set_new(r, "readonly", json_true());
    json_object_set_new(root, "root", r);
    char hostname[BERTH_NAME_MAX + 1];
    snprintf(hostname, sizeof hostname, "%s",
             group->spec->name && group->spec->name[0] ? group->spec->name : "berth");
    json_object_set_new(root, "hostname", json_string(hostname));

    json_t *mounts = base_mounts();
    for (size_t i = 0; i < b->nmounts; i++) {
        const char *opts[] = {"rbind", "rprivate", b->mounts[i].read_only ? "ro" : "rw"};
        json_array_append_new(mounts, mount_new(b->mounts[i].target, "bind",
                                                b->mounts[i].source, opts, 3));
    }
    json_object_set_new(root, "mounts", mounts);

    json_t *ann = json_object();
    char num[32];
    json_object_set_new(ann, PLUGIN_LABEL_HOST, json_string(ctx->host));
    json_object_set_new(ann, PLUGIN_LABEL_KEY, json_string(group->key));
    snprintf(num, sizeof num, "%" PRIu64, group->generation);
    json_object_set_new(ann, PLUGIN_LABEL_GENERATION, json_string(num));
    snprintf(num, sizeof num, "%016" PRIx64, group->digest);
    json_object_set_new(ann, PLUGIN_LABEL_DIGEST, json_string(num));
    json_object_set_new(ann, PLUGIN_LABEL_ROLE, json_string(b->role));
    json_object_set_new(ann, PLUGIN_LABEL_CONTAINER, json_string(b->name));
    snprintf(num, sizeof num, "%zu", b->index);
    json_object_set_new(ann, PLUGIN_LABEL_INDEX, json_string(num));
    json_object_set_new(root, "annotations", ann);

    json_t *linux_ = json_object();
    json_t *res = json_object();
    json_t *devs = json_array();
    json_t *deny = json_object();
    json_object_set_new(deny, "allow", json_false());
    json_object_set_new(deny, "access", json_string("rwm"));
    json_array_append_new(devs, deny);
    json_object_set_new(res, "devices", devs);
    if (b->cpu_millicores > 0) {
        json_t *cpu = json_object();
        json_object_set_new(cpu, "quota", json_integer((json_int_t)b->cpu_millicores * 100));
        json_object_set_new(cpu, "period", json_integer(100000));
        uint64_t shares = (uint64_t)b->cpu_millicores * 1024 / 1000;
        json_object_set_new(cpu, "shares", json_integer((json_int_t)(shares < 2 ? 2 : shares)));
        json_object_set_new(res, "cpu", cpu);
    }
    if (b->memory_bytes > 0) {
        json_t *mem = json_object();
        json_object_set_new(mem, "limit", json_integer((json_int_t)b->memory_bytes));
        json_object_set_new(res, "memory", mem);
    }
    json_object_set_new(linux_, "resources", res);
    char cgpath[RUNC_ID_MAX + 16];
    snprintf(cgpath, sizeof cgpath, "/berth/%s", rid);
    json_object_set_new(linux_, "cgroupsPath", json_string(cgpath));
    json_t *ns = json_array();
    static const char *const kinds[] = {"pid", "network", "ipc", "uts", "mount"};
    for (size_t i = 0; i < 5; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(kinds[i]));
        json_array_append_new(ns, o);
    }
    json_object_set_new(linux_, "namespaces", ns);
    static const char *const masked[] = {
        "/proc/acpi",        "/proc/asound",      "/proc/kcore",      "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/sys/firmware",     "/proc/scsi"};
    static const char *const ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                     "/proc/sysrq-trigger"};
    json_object_set_new(linux_, "maskedPaths", str_array(masked, 10));
    json_object_set_new(linux_, "readonlyPaths", str_array(ro, 5));
    json_object_set_new(root, "linux", linux_);
    return root;
}

/* Writes config.json for bundle `sub`. */
int bundle_write(const runc_ctx_t *ctx, const char *id, const char *sub, json_t *config,
                 berth_error_t *err)
{
    char dir[RUNC_PATH_MAX], path[RUNC_PATH_MAX], tmp[RUNC_PATH_MAX];
    if (!bundle_file(ctx, id, sub, NULL, dir, sizeof dir) ||
        !bundle_file(ctx, id, sub, "config.json", path, sizeof path) ||
        !bundle_file(ctx, id, sub, "config.json.tmp", tmp, sizeof tmp))
        return berth_error_set(err, BERTH_EINVAL, "ContainerCreateFailed", "",
                               "data_dir path too long");
    int rc = plugin_mkdir_p(dir, 0700);
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "cannot create %s: %s", dir, strerror(-rc));
    if (json_dump_file(config, tmp, JSON_INDENT(1)) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return berth_error_set(err, BERTH_EIO, "ContainerCreateFailed", "",
                               "cannot write %s", path);
    }
    return 0;
}

/* Points bundle `sub`'s network namespace at the sandbox's. */
int bundle_set_netns(const runc_ctx_t *ctx, const char *id, const char *sub,
                     int sandbox_pid, berth_error_t *err)
{
    char path[RUNC_PATH_MAX], tmp[RUNC_PATH_MAX];
    if (!bundle_file(ctx, id, sub, "config.json", path, sizeof path) ||
        !bundle_file(ctx, id, sub, "config.json.tmp", tmp, sizeof tmp))
        return berth_error_set(err, BERTH_EINVAL, "ContainerStartFailed", "",
                               "data_dir path too long");
    json_t *config = json_load_file(path, 0, NULL);
    if (config == NULL)
        return berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "",
                               "cannot read %s", path);
    json_t *ns = json_object_get(json_object_get(config, "linux"), "namespaces");
    size_t i;
    json_t *o;
    char netns[64];
    snprintf(netns, sizeof netns, "/proc/%d/ns/net", sandbox_pid);
    json_array_foreach(ns, i, o) {
        const char *t = json_string_value(json_object_get(o, "type"));
        if (t != NULL && strcmp(t, "network") == 0)
            json_object_set_new(o, "path", json_string(netns));
    }
    int rc = 0;
    if (json_dump_file(config, tmp, JSON_INDENT(1)) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        rc = berth_error_set(err, BERTH_EIO, "ContainerStartFailed", "", "cannot write %s",
                             path);
    }
    json_decref(config);
    return rc;
}

/* The memory limit of container c in bytes: its limit, else its request. */
static uint64_t memory_bytes(const berth_container_t *c)
{
    uint32_t milli_gb = c->has_limits && c->limits.memory_milli_gb > 0
                            ? c->limits.memory_milli_gb
                            : c->requests.memory_milli_gb;
    return (uint64_t)milli_gb * 1024u * 1024u * 1024u / 1000u;
}

/* Writes the bundle of container c (init container or container number
 * `index`) of `group` (group id), with its volumes' mounts; fails with
 * ImagePullFailed when its image has no unpacked root filesystem. */
int create_container_bundle(runc_ctx_t *ctx, const berth_runtime_group_t *group,
                            const char *id, const berth_container_t *c, bool init,
                            size_t index, berth_error_t *err)
{
    char sub[RUNC_SUB_MAX], rid[RUNC_ID_MAX], rootfs[RUNC_PATH_MAX];
    snprintf(sub, sizeof sub, "%s-%zu", init ? "init" : "c", index);
    runc_id(id, sub, rid);
    char target[128];
    snprintf(target, sizeof target, "properties.%s[%zu].properties.image",
             init ? "initContainers" : "containers", index);
    if (!image_rootfs(ctx, c->image, rootfs, sizeof rootfs) || !dir_exists(rootfs))
        return berth_error_set(err, BERTH_EIO, "ImagePullFailed", target,
                               "image '%s': no unpacked root filesystem under %s",
                               c->image ? c->image : "", ctx->images_dir);
    volume_mount_t *mounts = calloc(BERTH_PLUGIN_CONTAINERS_MAX, sizeof *mounts);
    if (mounts == NULL)
        return oom(err);
    size_t nmounts = 0;
    int rc = volumes_mounts(&ctx->volumes, id, group->spec, c, mounts,
                            BERTH_PLUGIN_CONTAINERS_MAX, &nmounts, err);
    if (rc != 0) {
        free(mounts);
        return rc;
    }
    bundle_spec_t b = {
        .role = init ? "init" : "container",
        .name = c->name,
        .index = index,
        .rootfs = rootfs,
        .c = c,
        .cpu_millicores = init ? group->millicores
                          : c->has_limits && c->limits.cpu_millicores > 0
                              ? c->limits.cpu_millicores
                              : (group->shares ? group->shares[index] : c->requests.cpu_millicores),
        .memory_bytes = init ? 0 : memory_bytes(c),
        .mounts = mounts,
        .nmounts = nmounts,
    };
    json_t *config = bundle_config(ctx, group, rid, &b);
    free(mounts);
    if (config == NULL)
        return oom(err);
    rc = bundle_write(ctx, id, sub, config, err);
    json_decref(config);
    return rc;
}
