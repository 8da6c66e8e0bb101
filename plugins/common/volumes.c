/*
 * volumes.c: a container group's volumes on the host's filesystem
 * (volumes.h), made before the group's containers and bind-mounted into
 * them by the docker and runc plugins.
 *
 * What it must never do: write a secret (a secret volume's content, an
 * Azure storage key) anywhere but the tmpfs under secret_dir, put one in an
 * error message, let a name from the document leave the group's directory,
 * or run a shell: git runs through fork/exec with a bounded wait.  A config
 * map file is never written in place: a reader in the container sees the
 * old content or the new, never a part.
 */
#define _GNU_SOURCE
#include "volumes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "lib/base64.h"
#include "lib/spawn.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#define GIT_TIMEOUT_S 300
#define GIT_STDERR_MAX 400

extern char **environ;

/* <data_dir>/groups/<id>/volumes[/<name>] into buf. */
static int volume_dir(const volumes_config_t *cfg, const char *id, const char *name,
                      char *buf, size_t cap)
{
    int n = name ? snprintf(buf, cap, "%s/groups/%s/volumes/%s", cfg->data_dir, id, name)
                 : snprintf(buf, cap, "%s/groups/%s/volumes", cfg->data_dir, id);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* A name that stays one path component: not empty, no '/', not "." or
 * "..". */
static bool name_is_component(const char *s)
{
    return s != NULL && *s != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0;
}

/* A relative path none of whose components is "..". */
static bool path_stays_below(const char *s)
{
    if (s == NULL || *s == '/')
        return false;
    const char *p = s;
    for (size_t guard = 0; *p != '\0' && guard < VOLUME_PATH_MAX; guard++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return false;
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    return true;
}

/* Runs argv (no shell) with stdin and stdout on /dev/null, waiting at most
 * timeout_s seconds; its stderr's start is kept in errbuf.  Returns the exit
 * status, or -1 when it could not run, was killed or timed out (errbuf
 * says why). */
static int run_program(char *const argv[], int timeout_s, char *errbuf, size_t cap)
{
    /* The environment is built before fork(): git must never prompt. */
    size_t nenv = 0;
    while (environ != NULL && environ[nenv] != NULL && nenv < 4096)
        nenv++;
    char **envp = calloc(nenv + 3, sizeof *envp);
    if (envp == NULL) {
        snprintf(errbuf, cap, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "GIT_TERMINAL_PROMPT=", 20) != 0 &&
            strncmp(environ[i], "GIT_ASKPASS=", 12) != 0)
            envp[k++] = environ[i];
    envp[k++] = "GIT_TERMINAL_PROMPT=0";
    envp[k++] = "GIT_ASKPASS=/bin/false";
    envp[k] = NULL;

    berth__spawn_options_t opts = {
        .env = envp,
        .capture = BERTH__SPAWN_CAPTURE_STDERR,
        .own_process_group = true,
    };
    berth__spawn_result_t res;
    int rc = berth__spawn_run(argv, &opts, (int64_t)timeout_s * 1000, errbuf, cap, &res);
    free(envp);
    /* One line of git's complaint is enough for an error message. */
    for (size_t i = 0; i < res.output_len; i++)
        if (errbuf[i] == '\n')
            errbuf[i] = ' ';
    if (res.timed_out)
        snprintf(errbuf, cap, "timed out after %d s", timeout_s);
    else if (rc != 0)
        snprintf(errbuf, cap, "%s", res.message);
    return rc != 0 ? -1 : res.exit_status;
}

static int prepare_empty_dir(const char *path, size_t i, berth_error_t *err)
{
    int rc = plugin_mkdir_p(path, 0755);
    if (rc == 0 && chmod(path, 0777) != 0)
        rc = -errno;
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "",
                               "cannot create the emptyDir volume of properties.volumes[%zu]: %s",
                               i, strerror(-rc));
    return 0;
}

static int prepare_secret(const volumes_config_t *cfg, const char *id, const berth_volume_t *v,
                          size_t i, berth_error_t *err)
{
    char target[BERTH_ERROR_TARGET_MAX];
    if (cfg->secret_dir == NULL || *cfg->secret_dir == '\0')
        return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "",
                               "no secret directory is configured for secret volumes");
    for (size_t j = 0; j < v->nsecret_items; j++) {
        if (!name_is_component(v->secret_items[j].name)) {
            snprintf(target, sizeof target, "properties.volumes[%zu].secret", i);
            return berth_error_set(err, BERTH_EINVAL, "InvalidVolume", target,
                                   "secret file names may not be empty, \".\", \"..\" or "
                                   "contain '/'");
        }
    }
    int rc = plugin_mkdir_p(cfg->secret_dir, 0700);
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "",
                               "cannot create secret directory %s: %s", cfg->secret_dir,
                               strerror(-rc));
    struct statfs sfs;
    if (statfs(cfg->secret_dir, &sfs) != 0)
        return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "", "cannot statfs %s: %s",
                               cfg->secret_dir, strerror(errno));
    if ((unsigned long)sfs.f_type != (unsigned long)TMPFS_MAGIC)
        return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "",
                               "secret directory %s is not on a tmpfs: secrets must not "
                               "reach a disk",
                               cfg->secret_dir);
    char dir[VOLUME_PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%s/%s/%s", cfg->secret_dir, id, v->name);
    if (n < 0 || (size_t)n >= sizeof dir)
        return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "",
                               "secret volume path too long");
    rc = plugin_mkdir_p(dir, 0700);
    if (rc == 0 && chmod(dir, 0700) != 0)
        rc = -errno;
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "", "cannot create %s: %s",
                               dir, strerror(-rc));
    for (size_t j = 0; j < v->nsecret_items; j++) {
        const berth_pair_t *item = &v->secret_items[j];
        unsigned char *data = NULL;
        size_t len = 0;
        if (berth__base64_decode(item->value ? item->value : "", &data, &len) != 0) {
            snprintf(target, sizeof target, "properties.volumes[%zu].secret.%s", i, item->name);
            return berth_error_set(err, BERTH_EINVAL, "InvalidVolume", target,
                                   "secret value is not valid base64");
        }
        char file[VOLUME_PATH_MAX];
        n = snprintf(file, sizeof file, "%s/%s", dir, item->name);
        int fd = n < 0 || (size_t)n >= sizeof file
                     ? -1
                     : open(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0400);
        int e = errno;
        bool ok = fd >= 0;
        size_t off = 0;
        while (ok && off < len) {
            ssize_t w = write(fd, data + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                e = errno;
                ok = false;
                break;
            }
            off += (size_t)w;
        }
        if (ok && fchmod(fd, 0400) != 0) {
            e = errno;
            ok = false;
        }
        if (fd >= 0 && close(fd) != 0 && ok) {
            e = errno;
            ok = false;
        }
        /* Scrub the decoded secret before the memory goes back. */
        explicit_bzero(data, len);
        free(data);
        if (!ok)
            return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "",
                                   "cannot write secret file %s of properties.volumes[%zu]: %s",
                                   item->name, i, strerror(e));
    }
    if (chmod(dir, 0500) != 0)
        return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "", "cannot chmod %s: %s",
                               dir, strerror(errno));
    return 0;
}

static int prepare_git(const volumes_config_t *cfg, const char *path, const berth_volume_t *v,
                       size_t i, berth_error_t *err)
{
    char target[BERTH_ERROR_TARGET_MAX];
    if (v->repository == NULL || *v->repository == '\0') {
        snprintf(target, sizeof target, "properties.volumes[%zu].gitRepo.repository", i);
        return berth_error_set(err, BERTH_EINVAL, "InvalidVolume", target,
                               "gitRepo needs a repository");
    }
    if (v->directory != NULL && (!path_stays_below(v->directory) || *v->directory == '\0')) {
        snprintf(target, sizeof target, "properties.volumes[%zu].gitRepo.directory", i);
        return berth_error_set(err, BERTH_EINVAL, "InvalidVolume", target,
                               "gitRepo directory must be relative and may not contain a "
                               "\"..\" component");
    }
    if (v->revision != NULL && (*v->revision == '-' || *v->revision == '\0')) {
        snprintf(target, sizeof target, "properties.volumes[%zu].gitRepo.revision", i);
        return berth_error_set(err, BERTH_EINVAL, "InvalidVolume", target,
                               "gitRepo revision may not be empty or start with '-'");
    }
    int rc = plugin_mkdir_p(path, 0755);
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "",
                               "cannot create the gitRepo volume of properties.volumes[%zu]: %s",
                               i, strerror(-rc));
    char dest[VOLUME_PATH_MAX];
    int n = v->directory && strcmp(v->directory, ".") != 0
                ? snprintf(dest, sizeof dest, "%s/%s", path, v->directory)
                : snprintf(dest, sizeof dest, "%s", path);
    if (n < 0 || (size_t)n >= sizeof dest)
        return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "", "path too long");
    const char *git = cfg->git && *cfg->git ? cfg->git : "git";
    char errbuf[GIT_STDERR_MAX];
    char *clone[] = {(char *)git, "clone", "-q", "--", v->repository, dest, NULL};
    int st = run_program(clone, GIT_TIMEOUT_S, errbuf, sizeof errbuf);
    if (st != 0)
        return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "",
                               "git clone for properties.volumes[%zu] failed (%d): %s", i, st,
                               errbuf);
    if (v->revision != NULL) {
        char *checkout[] = {(char *)git, "-C", dest, "checkout", "-q", v->revision, "--", NULL};
        st = run_program(checkout, GIT_TIMEOUT_S, errbuf, sizeof errbuf);
        if (st != 0)
            return berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "",
                                   "git checkout of %s for properties.volumes[%zu] failed (%d): "
                                   "%s",
                                   v->revision, i, st, errbuf);
    }
    return 0;
}

/* <azure_file_root>/<account>/<share> into buf, or an error. */
static int azure_path(const volumes_config_t *cfg, const berth_volume_t *v, size_t i,
                      char *buf, size_t cap, berth_error_t *err)
{
    char target[BERTH_ERROR_TARGET_MAX];
    snprintf(target, sizeof target, "properties.volumes[%zu].azureFile", i);
    if (cfg->azure_file_root == NULL || *cfg->azure_file_root == '\0')
        return berth_error_set(err, BERTH_EINVAL, "AzureFileVolumeUnsupported", target,
                               "this host has no azure_file_root for azureFile volumes");
    if (!name_is_component(v->storage_account_name) || !name_is_component(v->share_name))
        return berth_error_set(err, BERTH_EINVAL, "InvalidVolume", target,
                               "azureFile account and share names must be single path "
                               "components");
    int n = snprintf(buf, cap, "%s/%s/%s", cfg->azure_file_root, v->storage_account_name,
                     v->share_name);
    if (n < 0 || (size_t)n >= cap)
        return berth_error_set(err, BERTH_EINVAL, "InvalidVolume", target, "path too long");
    return 0;
}

int volumes_prepare(const volumes_config_t *cfg, const char *id, const berth_group_t *spec,
                    berth_error_t *err)
{
    if (cfg == NULL || cfg->data_dir == NULL || id == NULL || spec == NULL)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                               "volumes_prepare needs a data_dir, an id and a group");
    int rc = 0;
    for (size_t i = 0; i < spec->nvolumes && rc == 0; i++) {
        const berth_volume_t *v = &spec->volumes[i];
        char target[BERTH_ERROR_TARGET_MAX];
        char path[VOLUME_PATH_MAX];
        if (!name_is_component(v->name)) {
            snprintf(target, sizeof target, "properties.volumes[%zu].name", i);
            rc = berth_error_set(err, BERTH_EINVAL, "InvalidVolume", target,
                                 "volume names must be single path components");
            break;
        }
        if (volume_dir(cfg, id, v->name, path, sizeof path) != 0) {
            rc = berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "", "path too long");
            break;
        }
        switch (v->kind) {
        case BERTH_VOLUME_EMPTY_DIR:
            rc = prepare_empty_dir(path, i, err);
            break;
        case BERTH_VOLUME_SECRET:
            rc = prepare_secret(cfg, id, v, i, err);
            break;
        case BERTH_VOLUME_GIT_REPO:
            rc = prepare_git(cfg, path, v, i, err);
            break;
        case BERTH_VOLUME_AZURE_FILE: {
            char share[VOLUME_PATH_MAX];
            rc = azure_path(cfg, v, i, share, sizeof share, err);
            if (rc == 0) {
                int r = plugin_mkdir_p(share, 0755);
                if (r != 0)
                    rc = berth_error_set(err, BERTH_EIO, "VolumeMountFailed", "",
                                         "cannot create azureFile share %s: %s", share,
                                         strerror(-r));
            }
            break;
        }
        default:
            snprintf(target, sizeof target, "properties.volumes[%zu]", i);
            rc = berth_error_set(err, BERTH_EINVAL, "InvalidVolume", target,
                                 "unknown volume kind");
            break;
        }
    }
    if (rc == 0)
        rc = volumes_config_maps(cfg, id, spec, err);
    if (rc != 0)
        volumes_remove(cfg, id, NULL);
    return rc;
}

/* <data_dir>/groups/<id>/configmap/<container> into buf. */
static int config_dir(const volumes_config_t *cfg, const char *id, const char *container,
                      char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/groups/%s/configmap/%s", cfg->data_dir, id, container);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Writes `len` bytes to dir/name through a temporary file renamed over it.
 * The temporary name begins with '+', which no key holds.  Returns 0 or a
 * negative errno. */
static int write_replace(const char *dir, const char *name, const char *data, size_t len)
{
    char tmp[VOLUME_PATH_MAX], dst[VOLUME_PATH_MAX];
    int n1 = snprintf(tmp, sizeof tmp, "%s/+%s", dir, name);
    int n2 = snprintf(dst, sizeof dst, "%s/%s", dir, name);
    if (n1 < 0 || (size_t)n1 >= sizeof tmp || n2 < 0 || (size_t)n2 >= sizeof dst)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno != EINTR)
            rc = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (rc == 0 && fchmod(fd, 0644) != 0)   /* whatever the umask */
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* Removes every entry of dir that is not a key of c's config map. */
static int prune_config_dir(const char *dir, const berth_container_t *c)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -errno;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        bool keep = false;
        for (size_t k = 0; k < c->nconfig_map && !keep; k++)
            keep = c->config_map[k].name != NULL && strcmp(c->config_map[k].name, e->d_name) == 0;
        if (keep)
            continue;
        char path[VOLUME_PATH_MAX];
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int r = n < 0 || (size_t)n >= sizeof path ? -ENAMETOOLONG : plugin_remove_tree(path);
        if (r != 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    return rc;
}

int volumes_config_maps(const volumes_config_t *cfg, const char *id, const berth_group_t *spec,
                        berth_error_t *err)
{
    if (cfg == NULL || cfg->data_dir == NULL || id == NULL || spec == NULL)
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                               "volumes_config_maps needs a data_dir, an id and a group");
    for (size_t i = 0; i < spec->ncontainers; i++) {
        const berth_container_t *c = &spec->containers[i];
        char dir[VOLUME_PATH_MAX], target[BERTH_ERROR_TARGET_MAX];
        snprintf(target, sizeof target, "properties.containers[%zu].properties.configMap", i);
        if (!name_is_component(c->name) || config_dir(cfg, id, c->name, dir, sizeof dir) != 0)
            return berth_error_set(err, BERTH_EINVAL, "InvalidConfigMap", target,
                                   "the container's name cannot name a directory");
        int rc = plugin_mkdir_p(dir, 0755);
        for (size_t k = 0; rc == 0 && k < c->nconfig_map; k++) {
            const berth_pair_t *kv = &c->config_map[k];
            if (!name_is_component(kv->name) || kv->name[0] == '+')
                return berth_error_set(err, BERTH_EINVAL, "InvalidConfigMapKey", target,
                                       "a config map key must be a file name");
            const char *v = kv->value != NULL ? kv->value : "";
            rc = write_replace(dir, kv->name, v, strlen(v));
        }
        if (rc == 0)
            rc = prune_config_dir(dir, c);
        if (rc != 0)
            return berth_error_set(err, BERTH_EIO, "ConfigMapWriteFailed", target,
                                   "cannot write the config map of container '%s': %s",
                                   c->name, strerror(-rc));
    }
    return 0;
}

/* The JSON path of container c within spec, for error targets. */
static void container_path(const berth_group_t *spec, const berth_container_t *c, char *buf,
                           size_t cap)
{
    if (c >= spec->containers && c < spec->containers + spec->ncontainers)
        snprintf(buf, cap, "properties.containers[%zu]", (size_t)(c - spec->containers));
    else if (spec->init_containers != NULL && c >= spec->init_containers &&
             c < spec->init_containers + spec->ninit_containers)
        snprintf(buf, cap, "properties.initContainers[%zu]",
                 (size_t)(c - spec->init_containers));
    else
        snprintf(buf, cap, "container %s", c->name ? c->name : "");
}

int volumes_mounts(const volumes_config_t *cfg, const char *id, const berth_group_t *spec,
                   const berth_container_t *c, volume_mount_t *out, size_t cap, size_t *n,
                   berth_error_t *err)
{
    *n = 0;
    char where[128], target[BERTH_ERROR_TARGET_MAX];
    container_path(spec, c, where, sizeof where);
    for (size_t j = 0; j < c->nmounts; j++) {
        const berth_volume_mount_t *m = &c->mounts[j];
        const berth_volume_t *v = NULL;
        size_t vi = 0;
        for (size_t i = 0; i < spec->nvolumes; i++) {
            if (m->name && spec->volumes[i].name && strcmp(m->name, spec->volumes[i].name) == 0) {
                v = &spec->volumes[i];
                vi = i;
                break;
            }
        }
        if (v == NULL) {
            snprintf(target, sizeof target, "%s.properties.volumeMounts[%zu].name", where, j);
            return berth_error_set(err, BERTH_EINVAL, "InvalidVolumeMount", target,
                                   "the mount names no volume of the group");
        }
        if (m->mount_path == NULL || m->mount_path[0] != '/' || strchr(m->mount_path, ':')) {
            snprintf(target, sizeof target, "%s.properties.volumeMounts[%zu].mountPath", where,
                     j);
            return berth_error_set(err, BERTH_EINVAL, "InvalidVolumeMount", target,
                                   "mount paths must be absolute and may not contain ':'");
        }
        if (*n >= cap) {
            snprintf(target, sizeof target, "%s.properties.volumeMounts", where);
            return berth_error_set(err, BERTH_EINVAL, "InvalidVolumeMount", target,
                                   "too many volume mounts");
        }
        volume_mount_t *o = &out[*n];
        int len;
        o->read_only = m->read_only == BERTH_TRUE;
        switch (v->kind) {
        case BERTH_VOLUME_SECRET:
            len = snprintf(o->source, sizeof o->source, "%s/%s/%s",
                           cfg->secret_dir ? cfg->secret_dir : "", id, v->name);
            o->read_only = true;
            break;
        case BERTH_VOLUME_AZURE_FILE: {
            int rc = azure_path(cfg, v, vi, o->source, sizeof o->source, err);
            if (rc != 0)
                return rc;
            len = 0;
            if (v->read_only == BERTH_TRUE)
                o->read_only = true;
            break;
        }
        default:
            len = volume_dir(cfg, id, v->name, o->source, sizeof o->source);
            break;
        }
        if (len < 0 || (size_t)len >= sizeof o->source || strchr(o->source, ':')) {
            snprintf(target, sizeof target, "%s.properties.volumeMounts[%zu]", where, j);
            return berth_error_set(err, BERTH_EINVAL, "InvalidVolumeMount", target,
                                   "the volume's host path is too long or contains ':'");
        }
        snprintf(o->target, sizeof o->target, "%s", m->mount_path);
        (*n)++;
    }
    /* Every container (never an init container) sees its config map,
     * empty or not, so that later maps reach it without a restart. */
    bool container = c >= spec->containers && c < spec->containers + spec->ncontainers;
    if (container) {
        if (*n >= cap) {
            snprintf(target, sizeof target, "%s.properties.volumeMounts", where);
            return berth_error_set(err, BERTH_EINVAL, "InvalidVolumeMount", target,
                                   "too many volume mounts");
        }
        volume_mount_t *o = &out[*n];
        if (!name_is_component(c->name) ||
            config_dir(cfg, id, c->name, o->source, sizeof o->source) != 0 ||
            strchr(o->source, ':') != NULL)
            return berth_error_set(err, BERTH_EINVAL, "InvalidConfigMap", where,
                                   "the config map's host path is too long or contains ':'");
        snprintf(o->target, sizeof o->target, "%s/%s", VOLUMES_CONFIG_MAP_ROOT, c->name);
        o->read_only = true;
        (*n)++;
    }
    return 0;
}

int volumes_remove(const volumes_config_t *cfg, const char *id, berth_error_t *err)
{
    if (cfg == NULL || cfg->data_dir == NULL || id == NULL || *id == '\0')
        return berth_error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                               "volumes_remove needs a data_dir and an id");
    char path[VOLUME_PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/groups/%s", cfg->data_dir, id);
    int rc = n < 0 || (size_t)n >= sizeof path ? -ENAMETOOLONG : plugin_remove_tree(path);
    if (rc != 0)
        return berth_error_set(err, BERTH_EIO, "VolumeRemoveFailed", "", "cannot remove %s: %s",
                               path, strerror(-rc));
    if (cfg->secret_dir != NULL && *cfg->secret_dir != '\0') {
        n = snprintf(path, sizeof path, "%s/%s", cfg->secret_dir, id);
        rc = n < 0 || (size_t)n >= sizeof path ? -ENAMETOOLONG : plugin_remove_tree(path);
        if (rc != 0)
            return berth_error_set(err, BERTH_EIO, "VolumeRemoveFailed", "",
                                   "cannot remove %s: %s", path, strerror(-rc));
    }
    return 0;
}
