/*
 * berth-plugin.h: the runtime plugin ABI, and libberth's plugin loader.
 *
 * A runtime plugin carries a host's placements out: it makes the container
 * groups the cell assigned to the host real on a container runtime (Docker
 * Engine, Podman, runc, or a simulator).  `berth-agent` loads one plugin
 * per host and drives it; a plugin never talks to Redis or to the engine.
 *
 * A plugin is a shared object exporting one symbol, BERTH_PLUGIN_ENTRY
 * ("berth_plugin_entry"), a function that returns a pointer to a static
 * berth_plugin_ops_t whose first members are the ABI major version it was
 * built for and the size of the struct it fills.  The loader refuses a
 * plugin built for another major version; a struct shorter than this
 * header's is accepted as long as it reaches the operations a plugin must
 * have (everything through `list`), which lets later minor versions append
 * operations without breaking older plugins.
 *
 * The model.  A runtime group is one container group of the cell on this
 * host, at one generation: its document, the whole cores of the group and
 * each container's share of them.  The plugin names what it creates so that
 * it can find it again after a crash of the agent or of itself: every
 * runtime object carries the group's key, generation and document digest
 * (the `list` operation reports them), and creating what already exists is
 * refused rather than duplicated.  A container's config map (its
 * document's configMap) is the one part of a document a running group
 * takes without being created anew: it is left out of the digest, and the
 * `config_maps` operation delivers it in place.  Restarts are the agent's: a plugin never
 * restarts a container by itself, so that the instance view the agent
 * writes stays true.
 *
 * Threads.  The agent calls a plugin context from one thread at a time,
 * with one exception: an interactive session (session_open and the
 * session_* operations on what it returned) runs on a thread of its own,
 * concurrently with the other operations and with other sessions; a
 * plugin keeps whatever a session needs (an engine connection, a child
 * process) in the session, never shared unguarded with the context.  The
 * operations of one session are never called concurrently.
 * Strings a plugin returns through `char **` are allocated with malloc()
 * and freed by the caller with free().
 */
#ifndef BERTH_PLUGIN_H
#define BERTH_PLUGIN_H

#include "berth.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_PLUGIN_ABI_MAJOR 1
#define BERTH_PLUGIN_ENTRY "berth_plugin_entry"

/* What a host has, as the runtime and the system see it. */
typedef struct berth_plugin_host_info {
    char runtime[64];               /* e.g. "docker 28.2.2", "runc 1.1.5"   */
    uint32_t cores;                 /* online CPUs (0: unknown)             */
    uint64_t memory_mib;            /* physical memory (0: unknown)         */
    berth_os_t os;                  /* BERTH_OS_LINUX for every plugin here */
    uint32_t features;              /* BERTH_HOST_* bits the runtime gives:
                                     * BERTH_HOST_SANDBOX when it runs every
                                     * group under gVisor.  Zeroed by the
                                     * host before probe (older plugins
                                     * leave it so)                         */
} berth_plugin_host_info_t;

/* A container's state, in ACI's words ("Waiting", "Running", "Terminated"). */
typedef enum berth_container_state {
    BERTH_CONTAINER_WAITING = 0,    /* created, or not yet created          */
    BERTH_CONTAINER_RUNNING,
    BERTH_CONTAINER_TERMINATED
} berth_container_state_t;

#define BERTH_PLUGIN_DETAIL_MAX 128

/* One container as the runtime sees it.  Times are milliseconds since the
 * Unix epoch, 0 when unknown. */
typedef struct berth_container_status {
    char name[BERTH_NAME_MAX + 1];
    bool exists;                    /* the runtime holds this container     */
    berth_container_state_t state;
    int exit_code;                  /* meaningful when TERMINATED           */
    bool oom_killed;
    int64_t started_ms;
    int64_t finished_ms;
    char detail[BERTH_PLUGIN_DETAIL_MAX]; /* runtime's words: "Error", "OOMKilled" ... */
} berth_container_status_t;

#define BERTH_PLUGIN_CONTAINERS_MAX 64
#define BERTH_PLUGIN_PORTS_MAX 32

/* A published port: the group's port and where the host publishes it. */
typedef struct berth_published_port {
    uint32_t port;
    berth_protocol_t protocol;
    char host_ip[64];
    uint32_t host_port;
} berth_published_port_t;

/* A runtime group's state.  containers[] lists the init containers first,
 * then the containers, in document order; entries for containers the
 * runtime does not hold have exists == false. */
typedef struct berth_group_status {
    bool exists;                    /* the runtime holds the group at all   */
    uint64_t generation;            /* as created                           */
    uint64_t digest;
    char ip[64];                    /* the group's address ("" when none)   */
    size_t nports;
    berth_published_port_t ports[BERTH_PLUGIN_PORTS_MAX];
    size_t ncontainers;
    berth_container_status_t containers[BERTH_PLUGIN_CONTAINERS_MAX];
} berth_group_status_t;

/* One group of the cell on this host, at one generation. */
typedef struct berth_runtime_group {
    const char *key;                /* the group's key in the cell          */
    uint64_t generation;            /* the record's generation (>= 1)       */
    uint64_t digest;                /* the document's digest (berth_runtime_digest()) */
    const berth_group_t *spec;      /* the parsed document                  */
    uint32_t millicores;            /* the group's whole cores, in millicores */
    const uint32_t *shares;         /* spec->ncontainers values: each container's
                                     * part of `millicores` (berth_group_cpu_shares()) */
    /* The host ports the group's ports had the last time it ran on this
     * host (NULL when none; each names a port and protocol of the
     * document's ipAddress.ports): a plugin that publishes ports asks the
     * runtime for the same host port again and takes a new one only when
     * that one is taken (ports stable across stop/start and updates).
     * Appended after `shares`: the agent zeroes them for a plugin that
     * ignores them. */
    const berth_published_port_t *host_ports;
    size_t nhost_ports;
    /* The virtual network subnet the group joins, or NULLs for none (the
     * runtime's default network and published ports): the subnet's id as
     * the cell's table spells it, its IPv4 CIDR "a.b.c.d/n", and the
     * group's private address in it, which berthd chose unique in the
     * subnet (".1" is the gateway on each host).  A plugin that supports
     * subnets puts the group on the subnet's own isolated network with
     * that address and publishes no host ports (ACI's Private groups are
     * reached on their private address alone).  Appended after
     * host_ports, with the same rule. */
    const char *subnet_id;
    const char *subnet_cidr;
    const char *subnet_address;
} berth_runtime_group_t;

/* How an interactive session's process is started. */
typedef struct berth_session_opts {
    bool tty;                       /* a terminal: stdout and stderr are one
                                     * stream, the terminal echoes input   */
    uint16_t rows, cols;            /* the terminal's size (0: the runtime's
                                     * default); used with tty alone       */
} berth_session_opts_t;

/* Called by `list` once per group the runtime holds for this host. */
typedef void (*berth_plugin_list_cb)(const char *key, uint64_t generation, uint64_t digest,
                                     void *data);

/* Called by `images` once per image the runtime holds. */
typedef void (*berth_plugin_image_cb)(const char *image, void *data);

/* One container's usage counters as the runtime keeps them (see `stats`). */
typedef struct berth_container_stats {
    char name[BERTH_NAME_MAX + 1];
    bool running;                   /* false: the counters below are 0      */
    uint64_t cpu_ns;                /* CPU time used since it last started,
                                     * user and system, cumulative          */
    uint64_t memory_bytes;          /* its working set now: memory in use
                                     * less the inactive file cache          */
} berth_container_stats_t;

/* A group's usage counters at one moment (see `stats`). */
typedef struct berth_group_stats {
    /* Bytes received and sent on the group's network namespace, which its
     * containers share, cumulative since the namespace was made (0 for a
     * group without one, e.g. on host networking). */
    uint64_t rx_bytes, tx_bytes;
    size_t ncontainers;             /* the group's containers, never its init
                                     * containers, in the document's order  */
    berth_container_stats_t containers[BERTH_PLUGIN_CONTAINERS_MAX];
} berth_group_stats_t;

/* The operations.  Every operation returns 0 or a negative BERTH_E* code
 * and, on failure, fills *err (ACI-style names such as "ImagePullFailed",
 * "ContainerCreateFailed", "RuntimeUnavailable").  `container` arguments
 * name a container or init container of the group. */
typedef struct berth_plugin_ops {
    uint32_t abi_major;             /* BERTH_PLUGIN_ABI_MAJOR               */
    uint32_t size;                  /* sizeof(berth_plugin_ops_t) as built  */
    const char *name;               /* "docker", "runc", "sim"              */
    const char *version;

    /* Opens a context for host `host` with the plugin's configuration, a
     * JSON object text (NULL: defaults).  Unknown configuration members are
     * refused with their path. */
    int (*open)(const char *config_json, const char *host, void **ctx, berth_error_t *err);
    /* Closes the context; what runs keeps running.  Accepts NULL. */
    void (*close)(void *ctx);
    /* Fills *info from the runtime and the system. */
    int (*probe)(void *ctx, berth_plugin_host_info_t *info, berth_error_t *err);
    /* Makes `image` present, pulling it with `cred` (may be NULL) when it
     * is not; *cached (may be NULL) tells whether it already was. */
    int (*image_ensure)(void *ctx, const char *image, const berth_registry_credential_t *cred,
                        bool *cached, berth_error_t *err);
    /* Reports every image the runtime holds. */
    int (*images)(void *ctx, berth_plugin_image_cb cb, void *data, berth_error_t *err);
    /* Creates the group's sandbox (its network namespace and volumes) and
     * every container and init container, none started.  BERTH_EEXIST when
     * the runtime already holds the group (any generation). */
    int (*create)(void *ctx, const berth_runtime_group_t *group, berth_error_t *err);
    /* Starts one container or init container, or (container NULL) every
     * container of the group that is not running, never the init
     * containers: the agent runs those one by one, to completion, first.
     * Starts the sandbox when it is not running.  A terminated container
     * starts again (a restart).  BERTH_ENOENT when the runtime holds no
     * such group or container. */
    int (*start)(void *ctx, const char *key, const char *container, berth_error_t *err);
    /* Stops one container, or every one (container NULL), giving each
     * `grace_s` seconds after SIGTERM before SIGKILL.  Stopping what is not
     * running succeeds. */
    int (*stop)(void *ctx, const char *key, const char *container, uint32_t grace_s,
                berth_error_t *err);
    /* Restarts every container of the group (not the init containers) in
     * place -- same sandbox, same address, no pull: stop all, then start
     * all. */
    int (*restart)(void *ctx, const char *key, uint32_t grace_s, berth_error_t *err);
    /* Deletes the group: its containers, sandbox and volumes.  Deleting a
     * group the runtime does not hold succeeds. */
    int (*remove)(void *ctx, const char *key, berth_error_t *err);
    /* Fills *out with the group's state; out->exists is false when the
     * runtime holds nothing of it (that is not an error). */
    int (*status)(void *ctx, const char *key, berth_group_status_t *out, berth_error_t *err);
    /* The container's output (stdout and stderr), its last `tail` lines
     * (0: all), each line prefixed with its RFC 3339 time when `timestamps`. */
    int (*logs)(void *ctx, const char *key, const char *container, uint32_t tail,
                bool timestamps, char **out, size_t *len, berth_error_t *err);
    /* Runs argv[0..argc-1] in the running container and waits for it:
     * its output (stdout and stderr) and exit code. */
    int (*exec)(void *ctx, const char *key, const char *container, const char *const *argv,
                size_t argc, char **out, size_t *len, int *exit_code, berth_error_t *err);
    /* Reports every group the runtime holds for this host. */
    int (*list)(void *ctx, berth_plugin_list_cb cb, void *data, berth_error_t *err);

    /* Appended operations: optional (NULL, or past a shorter `size`). */

    /* Makes each container of group `key` see exactly the config map of
     * `spec` (its containers[i].config_map), one read-only file a key under
     * /mnt/configmap/<container name>/, each file replaced whole, keys no
     * longer given removed -- without stopping or restarting anything.
     * `create` delivers the document's config maps itself; the agent calls
     * this when a running group's document changes in its config maps
     * alone, and when it takes over a standby member.  BERTH_ENOENT when
     * the runtime holds no such group. */
    int (*config_maps)(void *ctx, const char *key, const berth_group_t *spec,
                       berth_error_t *err);

    /* Interactive sessions: optional, all five or none.
     *
     * Starts argv[0..argc-1] in running container `container` of group
     * `key` with its stdin open (under a terminal of opts' size when
     * opts->tty) and hands back the session (*session) and a descriptor
     * (*fd, owned by the session) that polls readable when output may be
     * waiting or the output ended.  BERTH_ENOENT when the runtime holds no
     * such group or container; BERTH_EINVAL ("ContainerNotRunning") when
     * the container is not running. */
    int (*session_open)(void *ctx, const char *key, const char *container,
                        const char *const *argv, size_t argc,
                        const berth_session_opts_t *opts, void **session, int *fd,
                        berth_error_t *err);
    /* Reads the output waiting (stdout and stderr as they come) into buf,
     * at most cap bytes, without blocking beyond a short bounded wait: 0
     * with *n bytes read (*n may be 0 when nothing whole could be read
     * yet), 1 when the output has ended (the process closed it: it
     * exited), or a negative code. */
    int (*session_read)(void *session, char *buf, size_t cap, size_t *n, berth_error_t *err);
    /* Writes all of data to the process's stdin (bounded in time: a
     * process that reads nothing for seconds fails it); len 0 closes
     * stdin (end of input).  Writing after the output ended fails. */
    int (*session_write)(void *session, const char *data, size_t len, berth_error_t *err);
    /* Sets the terminal's size; succeeds and does nothing without a tty. */
    int (*session_resize)(void *session, uint16_t rows, uint16_t cols, berth_error_t *err);
    /* Ends the session and frees it, whatever it returns.  After the
     * output ended it waits, bounded (a few seconds), for the exit status
     * and stores it in *exit_code; before, it ends the process (closes its
     * input and terminal; a process still running after a grace is killed
     * where the runtime allows it) and stores -1. */
    int (*session_close)(void *session, int *exit_code, berth_error_t *err);

    /* Usage metrics: optional (a plugin without it reports none).
     *
     * Fills *out with the usage counters of group `key` as the runtime
     * keeps them now: one entry per container (not init container), each
     * counter cumulative or instantaneous as berth_group_stats_t says, so
     * that the caller derives rates from two readings.  A container that
     * is not running is reported with running false.  Reads only: it
     * starts, stops and changes nothing.  BERTH_ENOENT when the runtime
     * holds no such group. */
    int (*stats)(void *ctx, const char *key, berth_group_stats_t *out, berth_error_t *err);
} berth_plugin_ops_t;

/* The type of the entry symbol. */
typedef const berth_plugin_ops_t *(*berth_plugin_entry_fn)(void);

/* ---- the loader --------------------------------------------------------- */

typedef struct berth_plugin berth_plugin_t;

/* Loads the plugin at `path` (a file path; a name without '/' is looked up
 * as "<dir>/berth-<name>.so" in $BERTH_PLUGIN_PATH, then in the installed
 * plugin directory).  Refuses, with BERTH_ENOENT or BERTH_EINVAL and a
 * message naming the file, a missing or unloadable file, a missing entry
 * symbol, another ABI major version, an ops struct too short, and a missing
 * operation.  On success stores the plugin in *out (close with
 * berth_plugin_unload()). */
BERTH_EXPORT int berth_plugin_load(const char *path, berth_plugin_t **out,
                                   berth_error_t *err);

/* The loaded plugin's operations (valid until berth_plugin_unload()). */
BERTH_EXPORT const berth_plugin_ops_t *berth_plugin_ops(const berth_plugin_t *plugin);

/* Unloads the plugin; every context opened from it must be closed first.
 * Accepts NULL. */
BERTH_EXPORT void berth_plugin_unload(berth_plugin_t *plugin);

/* The digest that tells two documents of one group key apart (FNV-1a 64 of
 * the canonical, unredacted JSON of `group` without its config maps, which
 * a running group takes in place: see `config_maps`).  Returns 0 only for
 * NULL. */
BERTH_EXPORT uint64_t berth_runtime_digest(const berth_group_t *group);

#ifdef __cplusplus
}
#endif

#endif /* BERTH_PLUGIN_H */
