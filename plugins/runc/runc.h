/*
 * runc.h: how the parts of Berth's runc runtime plugin meet.  It runs a
 * host's container groups as OCI bundles with the `runc` program, from
 * image root filesystems that are already unpacked on the host (there is
 * no registry to pull from).
 *
 * A group of runtime id ID (common.h) is, on disk,
 *   <data_dir>/groups/ID/group.json        host, key, generation, digest and
 *                                          the containers in document order
 *   <data_dir>/groups/ID/sandbox/          the sandbox's bundle
 *   <data_dir>/groups/ID/init-<i>/         one bundle per init container
 *   <data_dir>/groups/ID/c-<i>/            one bundle per container
 *   <data_dir>/groups/ID/volumes/          emptyDir and gitRepo volumes
 * and, in runc's state directory, the containers "berth-ID-sandbox",
 * "berth-ID-init-<i>" and "berth-ID-c-<i>".  A container's bundle holds its
 * config.json (annotated with the io.berth.* labels) and what its
 * supervisor writes: `log`, `started`, `finished`, `exit` and `shim.pid`.
 * Nothing lives only in memory, so a fresh context (after the agent or the
 * plugin restarted) finds every group again from these files and
 * `runc state`.  An interactive session (session.c) is the exception: it
 * lives as long as its caller holds it, with its files in a private
 * temporary directory, and ends with it.
 *
 *   plugin.c     configuration, the operations table, berth_plugin_entry
 *   state.c      names and paths, group.json, status and list
 *   bundle.c     the OCI bundles (config.json)
 *   container.c  the sandbox; starting and stopping containers; removal
 *   shim.c       the supervisor each container runs under
 *   logs.c       logs and exec
 *   session.c    interactive sessions (runc exec with its stdin open)
 *   stats.c      usage counters from cgroups and /proc
 *   programs.c   running programs and runc's subcommands
 *   util.c       paths and small files
 *
 * Nothing declared here leaves the module: it exports berth_plugin_entry
 * alone, and this header must never be included from outside
 * plugins/runc/.
 */
#ifndef BERTH_RUNC_H
#define BERTH_RUNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "berth-plugin.h"
#include "../common/common.h"
#include "../common/volumes.h"
#include "lib/clock.h"

#define RUNC_PATH_MAX 4096
#define RUNC_ID_MAX 64
#define RUNC_SUB_MAX 24                     /* "sandbox", "init-<i>", "c-<i>" */
#define RUNC_CMD_TIMEOUT_MS 30000           /* one runc subcommand            */
#define RUNC_EXEC_TIMEOUT_MS 120000         /* exec in a container            */
#define RUNC_START_WAIT_MS 15000            /* until a container runs         */
#define RUNC_SHIM_WAIT_MS 10000             /* a supervisor's last steps      */
#define RUNC_KILL_WAIT_MS 10000             /* after SIGKILL                  */
#define RUNC_OUTPUT_MAX (8u << 20)          /* captured output of a program   */
#define RUNC_LOG_READ_MAX (64u << 20)       /* the part of a log logs() reads */
#define RUNC_DIR_ENTRIES_MAX 100000         /* entries one directory scan reads */
#define RUNC_SHIM_NAME "berth-shim"
#define RUNC_TIME_PREFIX_LEN 25             /* "2024-01-02T03:04:05.678Z "    */
#define RUNC_SANDBOX_SLEEP "2147483647"

/* ---- the context ---------------------------------------------------------- */

typedef struct runc_ctx {
    char *host;
    char *runc;                 /* the runc program                          */
    char *root;                 /* runc --root                               */
    char *data_dir;
    char *images_dir;
    char *secret_dir;
    char *azure_file_root;      /* NULL: azureFile volumes are refused       */
    char *git;
    uint32_t stop_grace_s;
    volumes_config_t volumes;
} runc_ctx_t;

/* One container of a group as group.json records it. */
typedef struct runc_entry {
    char name[BERTH_NAME_MAX + 1];
    char sub[RUNC_SUB_MAX];     /* the bundle directory's name               */
    bool init;
} runc_entry_t;

/* A group as group.json records it. */
typedef struct runc_group {
    char id[PLUGIN_ID_LEN + 1];
    uint64_t generation;
    uint64_t digest;
    size_t n;
    runc_entry_t entries[BERTH_PLUGIN_CONTAINERS_MAX];
} runc_group_t;

/* A runc container's state as `runc state` reports it. */
typedef enum runc_state {
    RUNC_ABSENT = 0,
    RUNC_CREATED,
    RUNC_RUNNING,
    RUNC_PAUSED,
    RUNC_STOPPED
} runc_state_t;

/* What bundle_config() builds a config.json from. */
typedef struct bundle_spec {
    const char *role;           /* "sandbox", "init", "container"            */
    const char *name;           /* the container's name ("" for the sandbox) */
    size_t index;
    const char *rootfs;
    const berth_container_t *c; /* NULL for the sandbox                      */
    uint32_t cpu_millicores;    /* 0: no CPU limit                           */
    uint64_t memory_bytes;      /* 0: no memory limit                        */
    const volume_mount_t *mounts;
    size_t nmounts;
} bundle_spec_t;

/* ---- util.c ------------------------------------------------------------------ */

bool path_fmt(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool file_exists(const char *path);
bool dir_exists(const char *path);
ssize_t read_small(const char *path, char *buf, size_t cap);
int write_atomic(const char *path, const char *tmp, const char *data, size_t len);
int write_file(const char *path, const char *data);
bool read_i64(const char *path, int64_t *out);
size_t fmt_i64(char *buf, int64_t v);
void close_from(int from);
int oom(berth_error_t *err);

/* ---- programs.c -------------------------------------------------------------- */

int wait_code(int st);
int run_argv(char *const argv[], int timeout_ms, char **out, size_t *len, int *code);
void last_line(const char *text, char *buf, size_t cap);
int runc_state_get(runc_ctx_t *ctx, const char *rid, runc_state_t *state, int *pid,
                   berth_error_t *err);
void runc_quiet(runc_ctx_t *ctx, const char *const *args, int timeout_ms);

/* ---- state.c ----------------------------------------------------------------- */

bool group_dir(const runc_ctx_t *ctx, const char *id, char *buf, size_t cap);
bool bundle_file(const runc_ctx_t *ctx, const char *id, const char *sub, const char *file,
                 char *buf, size_t cap);
void runc_id(const char *id, const char *sub, char rid[RUNC_ID_MAX]);
bool image_rootfs(const runc_ctx_t *ctx, const char *image, char *buf, size_t cap);
int group_find(runc_ctx_t *ctx, const char *key, runc_group_t *g, berth_error_t *err);
const runc_entry_t *entry_find(const runc_group_t *g, const char *name);
int write_group_state(runc_ctx_t *ctx, const berth_runtime_group_t *group, const char *id,
                      berth_error_t *err);
int op_status(void *vctx, const char *key, berth_group_status_t *out, berth_error_t *err);
int op_list(void *vctx, berth_plugin_list_cb cb, void *data, berth_error_t *err);

/* ---- shim.c ------------------------------------------------------------------ */

int shim_spawn(runc_ctx_t *ctx, const char *id, const char *sub);
bool shim_alive(const runc_ctx_t *ctx, const char *id, const char *sub);
bool shim_wait_done(const runc_ctx_t *ctx, const char *id, const char *sub, int ms);

/* ---- bundle.c ---------------------------------------------------------------- */

json_t *bundle_config(const runc_ctx_t *ctx, const berth_runtime_group_t *group,
                      const char *rid, const bundle_spec_t *b);
int bundle_write(const runc_ctx_t *ctx, const char *id, const char *sub, json_t *config,
                 berth_error_t *err);
int bundle_set_netns(const runc_ctx_t *ctx, const char *id, const char *sub, int sandbox_pid,
                     berth_error_t *err);
int create_container_bundle(runc_ctx_t *ctx, const berth_runtime_group_t *group,
                            const char *id, const berth_container_t *c, bool init,
                            size_t index, berth_error_t *err);

/* ---- container.c ------------------------------------------------------------- */

int sandbox_ensure(runc_ctx_t *ctx, const char *id, int *pid, berth_error_t *err);
int container_start(runc_ctx_t *ctx, const char *id, const runc_entry_t *e, int sandbox_pid,
                    berth_error_t *err);
int container_stop(runc_ctx_t *ctx, const char *id, const runc_entry_t *e, uint32_t grace_s,
                   berth_error_t *err);
int group_destroy(runc_ctx_t *ctx, const char *id, berth_error_t *err);

/* ---- logs.c ------------------------------------------------------------------ */

int op_logs(void *vctx, const char *key, const char *container, uint32_t tail,
            bool timestamps, char **out, size_t *len, berth_error_t *err);
int op_exec(void *vctx, const char *key, const char *container, const char *const *argv,
            size_t argc, char **out, size_t *len, int *exit_code, berth_error_t *err);
int exec_target(runc_ctx_t *ctx, const char *key, const char *container,
                char rid[RUNC_ID_MAX], berth_error_t *err);

/* ---- stats.c ----------------------------------------------------------------- */

int op_stats(void *vctx, const char *key, berth_group_stats_t *out, berth_error_t *err);

/* ---- session.c --------------------------------------------------------------- */

int op_session_open(void *vctx, const char *key, const char *container,
                    const char *const *argv, size_t argc, const berth_session_opts_t *opts,
                    void **session, int *fd, berth_error_t *err);
int op_session_read(void *session, char *buf, size_t cap, size_t *n, berth_error_t *err);
int op_session_write(void *session, const char *data, size_t len, berth_error_t *err);
int op_session_resize(void *session, uint16_t rows, uint16_t cols, berth_error_t *err);
int op_session_close(void *session, int *exit_code, berth_error_t *err);

#endif
