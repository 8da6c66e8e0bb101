/*
 * docker.h: how the parts of Berth's docker runtime plugin meet: its
 * context, a group's runtime objects, and the calls one file makes into
 * another.
 *
 *   docker.c   configuration, the engine calls' helpers, berth_plugin_entry
 *   images.c   probe, the image list, image pulls
 *   create.c   creating a group's sandbox and containers
 *   groups.c   finding a group's objects; start, stop, restart, remove,
 *              status and list
 *   exec.c     logs and exec
 *   session.c  interactive sessions (an exec with its stdin, maybe a tty)
 *
 * Nothing declared here leaves the module (it exports berth_plugin_entry
 * alone); this header must never be included from outside plugins/docker/.
 * Each function's contract sits above its definition.
 */
#ifndef BERTH_DOCKER_H
#define BERTH_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "berth-plugin.h"
#include "../common/common.h"
#include "engine-api.h"
#include "../common/volumes.h"


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
    char *runtime;                      /* the engine's gVisor runtime for a
                                         * group's containers; NULL: its default */
    char *runtime_socket;               /* a second Podman service whose runtime
                                         * is gVisor: a group's containers are
                                         * created through it; NULL: none     */
    uint32_t stop_grace_s;
    bool ulimits;
    engine_api_t *api;
    engine_api_t *runtime_api;          /* runtime_socket's client, or NULL */
    volumes_config_t volumes;
} docker_ctx_t;

/* Whether the plugin runs groups under gVisor (runtime or runtime_socket). */
static inline bool docker_sandboxed(const docker_ctx_t *ctx)
{
    return ctx->runtime != NULL || ctx->runtime_socket != NULL;
}

/* The name of what runs groups under gVisor, for messages. */
static inline const char *docker_sandbox_name(const docker_ctx_t *ctx)
{
    return ctx->runtime != NULL ? ctx->runtime : ctx->runtime_socket;
}

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

/* ---- docker.c ------------------------------------------------------------------ */

uint64_t parse_u64(const char *s, int base);
int call(docker_ctx_t *ctx, const char *method, const char *path, const char *body,
         const char *const *headers, long timeout_s, engine_response_t *resp,
         berth_error_t *err);
int call_runtime(docker_ctx_t *ctx, const char *method, const char *path, const char *body,
                 long timeout_s, engine_response_t *resp, berth_error_t *err);
int engine_failure(const engine_response_t *resp, int code, const char *name,
                   const char *what, const berth_group_t *spec, berth_error_t *err);
int get_json(docker_ctx_t *ctx, const char *path, const char *errname, json_t **out,
             long *status, berth_error_t *err);

/* ---- images.c ------------------------------------------------------------------ */

int docker_probe(void *c, berth_plugin_host_info_t *info, berth_error_t *err);
int docker_images(void *c, berth_plugin_image_cb cb, void *data, berth_error_t *err);
int image_present(docker_ctx_t *ctx, const char *image, berth_error_t *err);
int pull_image(docker_ctx_t *ctx, const char *image,
               const berth_registry_credential_t *cred, berth_error_t *err);
int docker_image_ensure(void *c, const char *image,
                        const berth_registry_credential_t *cred, bool *cached,
                        berth_error_t *err);

/* ---- create.c ------------------------------------------------------------------ */

int docker_create(void *c, const berth_runtime_group_t *group, berth_error_t *err);

/* ---- networks.c ---------------------------------------------------------------- */

/* The engine network name of subnet `id` into out (cap at least 80):
 * "berth-sn-", the id's last path segment (at most 32 characters, others
 * than letters, digits, '-', '_' and '.' as '_'), '-' and 16 hex digits
 * of FNV-1a 64 of the id in lower case. */
void docker_subnet_network_name(const char *id, char *out, size_t cap);

/* Makes sure the engine holds the network of the group's subnet
 * (group->subnet_id, _cidr): found with the same CIDR, or created (bridge,
 * Internal, the CIDR with ".1" as gateway); its name goes to `name`.
 * Returns 0, BERTH_EINVAL (no subnet, a bad CIDR), BERTH_EIO (the engine
 * failed, or a network of that name has another CIDR:
 * SubnetNetworkConflict) or BERTH_ENOMEM. */
int docker_subnet_network(docker_ctx_t *ctx, const berth_runtime_group_t *group, char *name,
                          size_t cap, berth_error_t *err);

/* ---- groups.c ------------------------------------------------------------------ */

int load_group(docker_ctx_t *ctx, const char *key, group_objects_t *g,
               berth_error_t *err);
int find_named(docker_ctx_t *ctx, const char *key, const char *container,
               group_objects_t *g, group_object_t **out, berth_error_t *err);
int docker_start(void *c, const char *key, const char *container, berth_error_t *err);
int docker_stop(void *c, const char *key, const char *container, uint32_t grace_s,
                berth_error_t *err);
int docker_restart(void *c, const char *key, uint32_t grace_s, berth_error_t *err);
int docker_remove(void *c, const char *key, berth_error_t *err);
/* berth_plugin_ops_t.config_maps: the group's config map files rewritten
 * in place (volumes_config_maps()); BERTH_ENOENT when the engine holds no
 * object of the group. */
int docker_config_maps(void *c, const char *key, const berth_group_t *spec, berth_error_t *err);
int docker_status(void *c, const char *key, berth_group_status_t *out,
                  berth_error_t *err);
int docker_list(void *c, berth_plugin_list_cb cb, void *data, berth_error_t *err);

/* ---- stats.c ------------------------------------------------------------------- */

/* berth_plugin_ops_t.stats: the group's counters from the engine's stats
 * API; BERTH_ENOENT when the engine holds no object of the group. */
int docker_stats(void *c, const char *key, berth_group_stats_t *out, berth_error_t *err);

/* ---- exec.c -------------------------------------------------------------------- */

int docker_logs(void *c, const char *key, const char *container, uint32_t tail,
                bool timestamps, char **out, size_t *len, berth_error_t *err);
int docker_exec(void *c, const char *key, const char *container,
                const char *const *argv, size_t argc, char **out, size_t *len,
                int *exit_code, berth_error_t *err);

/* ---- session.c ----------------------------------------------------------------- */

/* The five session operations of berth_plugin_ops_t (contracts in
 * berth-plugin.h, this plugin's ways in session.c's opening comment).  A
 * session owns its stream socket and an engine client of its own: it never
 * uses the context's client, so it may run beside the other operations. */
int docker_session_open(void *c, const char *key, const char *container,
                        const char *const *argv, size_t argc,
                        const berth_session_opts_t *opts, void **session, int *fd,
                        berth_error_t *err);
int docker_session_read(void *session, char *buf, size_t cap, size_t *n, berth_error_t *err);
int docker_session_write(void *session, const char *data, size_t len, berth_error_t *err);
int docker_session_resize(void *session, uint16_t rows, uint16_t cols, berth_error_t *err);
int docker_session_close(void *session, int *exit_code, berth_error_t *err);

#endif
