/*
 * volumes.h: a container group's volumes on the host's filesystem, for the
 * plugins that bind-mount them into containers (docker, runc).
 *
 * Every volume of group ID lives under one directory per group,
 *   emptyDir   <data_dir>/groups/<ID>/volumes/<name>/      (created empty)
 *   gitRepo    <data_dir>/groups/<ID>/volumes/<name>/      (`git clone` of
 *              repository, checked out at revision, into `directory` below
 *              it when given; the directory may not leave the volume)
 *   secret     <secret_dir>/<ID>/<name>/<file>             (decoded from
 *              base64, mode 0400, directory 0500; secret_dir must be on a
 *              tmpfs so that secrets never reach a disk -- checked)
 *   azureFile  <azure_file_root>/<storageAccountName>/<shareName>/ (a local
 *              directory standing in for the share; created when missing;
 *              the storage account key is never written anywhere)
 * and a config map, one directory per container (never init containers),
 *   configMap  <data_dir>/groups/<ID>/configmap/<container>/<key> (one file
 *              a key, its value the content, mode 0644; bind-mounted
 *              read-only at /mnt/configmap/<container>/, empty or not, and
 *              rewritten in place by volumes_config_maps())
 * and volumes_remove() deletes the group's directories (never the
 * azureFile share).
 */
#ifndef BERTH_PLUGIN_VOLUMES_H
#define BERTH_PLUGIN_VOLUMES_H

#include <stdbool.h>
#include <stddef.h>

#include "berth-plugin.h"

#define VOLUME_PATH_MAX 4096
#define VOLUMES_CONFIG_MAP_ROOT "/mnt/configmap" /* as ACI mounts config maps */

typedef struct volumes_config {
    const char *data_dir;           /* required                             */
    const char *secret_dir;         /* a directory on a tmpfs               */
    const char *azure_file_root;    /* NULL: azureFile volumes are refused  */
    const char *git;                /* the git program ("git")              */
} volumes_config_t;

/* One bind mount into a container. */
typedef struct volume_mount {
    char source[VOLUME_PATH_MAX];
    char target[VOLUME_PATH_MAX];
    bool read_only;
} volume_mount_t;

/* Makes every volume of `spec` exist on disk for group `id`, and its
 * containers' config maps (volumes_config_maps()).  On failure
 * removes what it made and returns BERTH_EINVAL (a bad volume: err names
 * its JSON path, e.g. "properties.volumes[0].gitRepo.directory") or
 * BERTH_EIO ("VolumeMountFailed", e.g. a clone that failed). */
int volumes_prepare(const volumes_config_t *cfg, const char *id, const berth_group_t *spec,
                    berth_error_t *err);

/* The bind mounts of container `c` (one of spec's containers or init
 * containers), a container's config map directory last: writes at most
 * `cap` to out and their number to *n.
 * Returns 0 or BERTH_EINVAL (a mount naming no volume). */
int volumes_mounts(const volumes_config_t *cfg, const char *id, const berth_group_t *spec,
                   const berth_container_t *c, volume_mount_t *out, size_t cap, size_t *n,
                   berth_error_t *err);

/* Makes each container's config map directory hold exactly its keys, each
 * file replaced whole (a temporary file renamed over it), keys no longer
 * given removed; what runs keeps running and sees the new files.  Returns
 * 0, BERTH_EINVAL (a key or container name that cannot be a file name) or
 * BERTH_EIO ("ConfigMapWriteFailed"). */
int volumes_config_maps(const volumes_config_t *cfg, const char *id, const berth_group_t *spec,
                        berth_error_t *err);

/* Deletes the group's volume directories.  Returns 0 or BERTH_EIO. */
int volumes_remove(const volumes_config_t *cfg, const char *id, berth_error_t *err);

#endif /* BERTH_PLUGIN_VOLUMES_H */
