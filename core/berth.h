/*
 * berth.h: the whole public API of libberth.
 *
 * Berth is an embeddable placement engine for container groups with the
 * semantics of Azure Container Instances (ACI).  This header is the API: if a
 * name does not appear here, it is not published and may change at any time.
 * Everything public is prefixed `berth_` (types `berth_<noun>_t`, functions
 * `berth_<noun>_<verb>()`); the shared library exports nothing else.
 *
 * Conventions that hold for every function below:
 *
 *  - Errors.  A function that can fail returns 0 on success or a negative
 *    BERTH_E* code.  When the caller passes a non-NULL `berth_error_t *err`,
 *    it is filled with the code, an ACI-style error name, a message and the
 *    JSON path (`target`) at fault, plus every further violation found in
 *    `details`.  A call that fails changes nothing.
 *  - Ownership.  Strings in input structs are borrowed for the duration of the
 *    call and copied when kept.  Objects returned through `**out` belong to the
 *    caller and are released with the matching `berth_*_free()` (which accepts
 *    NULL); buffers returned as `char **out` are released with berth_free().
 *  - Quantities are integers: CPU in millicores (1 core = 1000), memory in MiB
 *    (1 GB in an ACI document = 1024 MiB), GPUs as counts of one SKU.  There is
 *    no floating point in resource accounting.
 *  - No global state.  Engines are independent; one engine must not be used
 *    from two threads at once without the caller's own lock.  Model objects
 *    are immutable after parsing and may be shared between threads.
 */
#ifndef BERTH_H
#define BERTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(BERTH_BUILDING) && defined(__GNUC__)
#define BERTH_EXPORT __attribute__((visibility("default")))
#else
#define BERTH_EXPORT
#endif

/* ------------------------------------------------------------------------ */
/* Version                                                                  */
/* ------------------------------------------------------------------------ */

#define BERTH_VERSION_MAJOR 0
#define BERTH_VERSION_MINOR 1
#define BERTH_VERSION_PATCH 0

/* The layout of a cell in Redis (its keys and change-log entries) this
 * library reads and writes: berth:{CELL}:meta's "schema".  A store refuses
 * a cell of another schema when it opens (BERTH_EIO, "UnknownRecordVersion",
 * naming both), but for schema 1, which it upgrades in place: a schema-1
 * cell is a valid schema-2 one.  Schema 2 added change-log entries holding
 * several ops (a batch of placements) and the documents kept for groups
 * that are not placed.  Upgrade every process of a cell together: one of
 * an older library stops at the next open. */
#define BERTH_CELL_SCHEMA 2

/* The library's version as "MAJOR.MINOR.PATCH"; a static string. */
BERTH_EXPORT const char *berth_version(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

enum {
    BERTH_OK = 0,
    BERTH_EINVAL = -1,      /* bad input: syntax, type, value, validation   */
    BERTH_ENOMEM = -2,      /* out of memory                                */
    BERTH_ENOENT = -3,      /* no such host, group or GPU SKU               */
    BERTH_EEXIST = -4,      /* already exists                               */
    BERTH_ENOSPC = -5,      /* no host can take the group (resource not available) */
    BERTH_ECONFLICT = -6,   /* update changes a property that needs a delete */
    BERTH_EBUSY = -7,       /* host still holds groups                      */
    BERTH_ETOOBIG = -8,     /* document too large or too deeply nested      */
    BERTH_ELIMIT = -9,      /* an engine table is full (zones, GPU SKUs)    */
    BERTH_EIO = -10,        /* I/O failure (files, network, store)          */
    BERTH_ESTALE = -11      /* a record changed since the caller read it    */
};

#define BERTH_ERROR_NAME_MAX 64
#define BERTH_ERROR_MESSAGE_MAX 512
#define BERTH_ERROR_TARGET_MAX 256
#define BERTH_ERROR_DETAILS_MAX 8

/* One violation: an ACI error name (e.g. "InvalidContainerName"), a sentence,
 * and the JSON path of the value at fault (e.g.
 * "properties.containers[1].properties.resources.requests.cpu"), or "" when
 * no single value is at fault. */
typedef struct berth_error_detail {
    char name[BERTH_ERROR_NAME_MAX];
    char message[BERTH_ERROR_MESSAGE_MAX];
    char target[BERTH_ERROR_TARGET_MAX];
} berth_error_detail_t;

/* The error out-parameter.  `code` is the negative BERTH_E* value; the first
 * violation is also copied into the top-level name/message/target.
 * `ndetails` counts all violations found, of which the first
 * BERTH_ERROR_DETAILS_MAX are stored in `details`.  Plain data: the caller
 * owns it (usually on the stack) and never frees anything in it. */
typedef struct berth_error {
    int code;
    char name[BERTH_ERROR_NAME_MAX];
    char message[BERTH_ERROR_MESSAGE_MAX];
    char target[BERTH_ERROR_TARGET_MAX];
    size_t ndetails;
    berth_error_detail_t details[BERTH_ERROR_DETAILS_MAX];
} berth_error_t;

/* A static, human-readable string for a BERTH_E* code ("invalid input" ...). */
BERTH_EXPORT const char *berth_strerror(int code);

/* Resets *err to "no error".  Accepts NULL. */
BERTH_EXPORT void berth_error_clear(berth_error_t *err);

/* Sets *err to one violation: code (a negative BERTH_E* value), an ACI-style
 * name, the JSON path or argument at fault ("" or NULL for none) and a
 * printf-style message; clears any earlier content.  For plugins and
 * callers that report errors in the library's form.  Returns `code`, so that
 * `return berth_error_set(err, ...)` works.  err may be NULL. */
BERTH_EXPORT int berth_error_set(berth_error_t *err, int code, const char *name,
                                 const char *target, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Renders *err as an ACI CloudError document,
 * {"error": {"code", "message", "target", "details": [...]}}, into a new
 * NUL-terminated buffer stored in *out (free with berth_free()).
 * Returns 0, or BERTH_ENOMEM. */
BERTH_EXPORT int berth_error_to_json(const berth_error_t *err, char **out);

/* Frees a buffer the library returned through a `char **out`.  Accepts NULL. */
BERTH_EXPORT void berth_free(void *p);

/* ------------------------------------------------------------------------ */
/* The ACI container-group model                                            */
/* ------------------------------------------------------------------------ */
/*
 * berth_group_parse() turns an ACI container-group document (api-versions
 * 2021-03-01 to 2023-05-01) into the structures below; berth_group_to_json()
 * turns them back.  The round trip keeps every field: members Berth models
 * are typed; members the spec defines that Berth does not interpret
 * (identity, diagnostics, networkProfile, subnetIds, extensions,
 * encryptionProperties, confidentialComputeProperties, securityContext,
 * instanceView, provisioningState, id, type) are kept verbatim in the
 * `extra_json` members.  Members the spec does not define are refused.
 *
 * Optional scalars use 0/NULL/UNSET for "absent"; optional arrays carry a
 * `has_` flag so that an empty array and an absent one round-trip apart.
 * All structures are owned by the berth_group_t that holds them and are
 * read-only to callers.
 */

#define BERTH_NAME_MAX 63           /* group, container, host names         */
#define BERTH_DOCUMENT_MAX (1u << 20) /* bytes in one ACI document           */
#define BERTH_DOCUMENT_DEPTH_MAX 32 /* nesting of objects and arrays        */
/* A container's configMap (api-version 2024-05-01-preview on): each key is
 * a file name of 1 to BERTH_CONFIG_KEY_MAX bytes of [A-Za-z0-9._-] (not "."
 * or ".."), each value that file's content of at most
 * BERTH_CONFIG_VALUE_MAX bytes, and one container's keys and values
 * together at most BERTH_CONFIG_TOTAL_MAX bytes. */
#define BERTH_CONFIG_KEY_MAX 253
#define BERTH_CONFIG_VALUE_MAX (64u << 10)
#define BERTH_CONFIG_TOTAL_MAX (256u << 10)

typedef enum berth_os {
    BERTH_OS_UNSET = 0,
    BERTH_OS_LINUX,
    BERTH_OS_WINDOWS
} berth_os_t;

typedef enum berth_restart_policy {
    BERTH_RESTART_UNSET = 0,        /* absent: ACI's default is Always      */
    BERTH_RESTART_ALWAYS,
    BERTH_RESTART_ON_FAILURE,
    BERTH_RESTART_NEVER
} berth_restart_policy_t;

typedef enum berth_sku {
    BERTH_SKU_UNSET = 0,            /* absent: Standard                     */
    BERTH_SKU_STANDARD,
    BERTH_SKU_DEDICATED,
    BERTH_SKU_CONFIDENTIAL
} berth_sku_t;

typedef enum berth_priority {
    BERTH_PRIORITY_UNSET = 0,       /* absent: Regular                      */
    BERTH_PRIORITY_REGULAR,
    BERTH_PRIORITY_SPOT
} berth_priority_t;

typedef enum berth_protocol {
    BERTH_PROTOCOL_UNSET = 0,       /* absent: TCP                          */
    BERTH_PROTOCOL_TCP,
    BERTH_PROTOCOL_UDP
} berth_protocol_t;

typedef enum berth_ip_type {
    BERTH_IP_UNSET = 0,
    BERTH_IP_PUBLIC,
    BERTH_IP_PRIVATE
} berth_ip_type_t;

typedef enum berth_tristate {
    BERTH_UNSET = 0,
    BERTH_FALSE,
    BERTH_TRUE
} berth_tristate_t;

/* A name/value pair: tags, secret volume files, HTTP headers. */
typedef struct berth_pair {
    char *name;
    char *value;
} berth_pair_t;

typedef struct berth_port {
    uint32_t port;                  /* 1..65535                             */
    berth_protocol_t protocol;
} berth_port_t;

typedef struct berth_env_var {
    char *name;
    char *value;                    /* NULL when absent                     */
    char *secure_value;             /* NULL when absent; a secret           */
} berth_env_var_t;

typedef struct berth_gpu {
    uint32_t count;                 /* 0: no GPU                            */
    char *sku;                      /* e.g. "V100"; checked against the engine's table */
} berth_gpu_t;

/* Requests or limits.  cpu in millicores, memory in thousandths of a GB as
 * written in the document (1.5 GB -> 1500), so that documents round-trip
 * exactly; accounting converts memory to MiB (berth_demand_t).  In limits,
 * 0 means "not given". */
typedef struct berth_resources {
    uint32_t cpu_millicores;
    uint32_t memory_milli_gb;
    berth_gpu_t gpu;
} berth_resources_t;

typedef struct berth_volume_mount {
    char *name;
    char *mount_path;
    berth_tristate_t read_only;
} berth_volume_mount_t;

typedef struct berth_probe {
    char **exec_command;            /* exec.command                         */
    size_t nexec_command;
    bool has_exec;
    bool has_http_get;
    char *http_path;                /* httpGet.path                         */
    uint32_t http_port;             /* httpGet.port                         */
    char *http_scheme;              /* "http" | "https" | NULL              */
    berth_pair_t *http_headers;
    size_t nhttp_headers;
    bool has_http_headers;
    /* -1 when absent */
    int32_t initial_delay_seconds;
    int32_t period_seconds;
    int32_t failure_threshold;
    int32_t success_threshold;
    int32_t timeout_seconds;
} berth_probe_t;

/* A container or an init container (init containers have no resources,
 * ports or probes: those members stay zero). */
typedef struct berth_container {
    char *name;
    char *image;
    char **command;
    size_t ncommand;
    bool has_command;
    berth_port_t *ports;
    size_t nports;
    bool has_ports;
    berth_env_var_t *env;
    size_t nenv;
    bool has_env;
    berth_resources_t requests;
    berth_resources_t limits;
    bool has_limits;
    berth_volume_mount_t *mounts;
    size_t nmounts;
    bool has_mounts;
    berth_probe_t *liveness;        /* NULL when absent                     */
    berth_probe_t *readiness;
    char *extra_json;               /* securityContext, instanceView: a JSON object text, or NULL */
    /* configMap.keyValuePairs: file name -> content, in document order
     * (containers only; not a secret: ACI shows it).  A runtime delivers
     * them as read-only files under /mnt/configmap/<container name>/ and
     * updates them without restarting the container. */
    berth_pair_t *config_map;
    size_t nconfig_map;
    bool has_config_map;
} berth_container_t;

typedef enum berth_volume_kind {
    BERTH_VOLUME_AZURE_FILE = 1,
    BERTH_VOLUME_EMPTY_DIR,
    BERTH_VOLUME_SECRET,
    BERTH_VOLUME_GIT_REPO
} berth_volume_kind_t;

typedef struct berth_volume {
    char *name;
    berth_volume_kind_t kind;
    /* azureFile */
    char *share_name;
    char *storage_account_name;
    char *storage_account_key;      /* a secret                             */
    berth_tristate_t read_only;
    /* secret: file name -> base64 content (secrets) */
    berth_pair_t *secret_items;
    size_t nsecret_items;
    /* gitRepo */
    char *repository;
    char *directory;
    char *revision;
} berth_volume_t;

typedef struct berth_ip_address {
    berth_port_t *ports;
    size_t nports;
    berth_ip_type_t type;
    char *ip;
    char *dns_name_label;
    char *fqdn;
    char *label_scope;              /* autoGeneratedDomainNameLabelScope    */
} berth_ip_address_t;

typedef struct berth_registry_credential {
    char *server;
    char *username;
    char *password;                 /* a secret                             */
    char *identity;
    char *identity_url;
} berth_registry_credential_t;

typedef struct berth_dns_config {
    char **name_servers;
    size_t nname_servers;
    char *search_domains;
    char *options;
} berth_dns_config_t;

typedef struct berth_group {
    char *name;
    char *location;
    berth_pair_t *tags;
    size_t ntags;
    bool has_tags;
    char **zones;
    size_t nzones;
    bool has_zones;
    berth_container_t *containers;
    size_t ncontainers;
    berth_container_t *init_containers;
    size_t ninit_containers;
    bool has_init_containers;
    berth_os_t os_type;
    berth_restart_policy_t restart_policy;
    berth_ip_address_t *ip_address; /* NULL when absent                     */
    berth_volume_t *volumes;
    size_t nvolumes;
    bool has_volumes;
    berth_registry_credential_t *credentials;
    size_t ncredentials;
    bool has_credentials;
    berth_dns_config_t *dns_config; /* NULL when absent                     */
    berth_sku_t sku;
    berth_priority_t priority;
    char *extra_json;               /* top level: id, type, identity ...    */
    char *properties_extra_json;    /* in properties: diagnostics, subnetIds ... */
} berth_group_t;

/* Parses one ACI container-group document of `len` bytes (it need not be
 * NUL-terminated).  Checks JSON syntax, UTF-8, size (BERTH_DOCUMENT_MAX) and
 * depth (BERTH_DOCUMENT_DEPTH_MAX), member names, types, required members,
 * enum values, name formats, and every rule that needs no engine (ports,
 * volumes, mounts, Windows restrictions, ...).  Rules that depend on an
 * engine's tables (GPU SKUs, per-group limits) are berth_engine_group_validate()'s.
 * On success stores a new group in *out (free with berth_group_free()).  On
 * failure returns BERTH_EINVAL or BERTH_ETOOBIG (BERTH_ENOMEM), fills *err
 * with every violation found, and leaves *out NULL. */
BERTH_EXPORT int berth_group_parse(const char *json, size_t len,
                                   berth_group_t **out, berth_error_t *err);

/* Frees a group from berth_group_parse().  Accepts NULL. */
BERTH_EXPORT void berth_group_free(berth_group_t *group);

/* Serialization flags for berth_group_to_json(). */
#define BERTH_JSON_REDACT 0x1u  /* omit every secret (secureValue, secret volume
                                 * contents, passwords, storage and workspace keys) */
#define BERTH_JSON_PRETTY 0x2u  /* indent                                      */
#define BERTH_JSON_NO_CONFIG_MAPS 0x4u /* omit every container's configMap: what a
                                 * runtime group and a standby pool's template
                                 * are compared on (a running container takes
                                 * new config maps without a restart) */

/* Serializes `group` back to an ACI document in a new NUL-terminated buffer
 * stored in *out (free with berth_free()); *len (if not NULL) receives its
 * length.  Without BERTH_JSON_REDACT, parse -> to_json -> parse yields an
 * equal document.  Returns 0 or BERTH_ENOMEM. */
BERTH_EXPORT int berth_group_to_json(const berth_group_t *group, unsigned flags,
                                     char **out, size_t *len);

/* ------------------------------------------------------------------------ */
/* Resource accounting                                                      */
/* ------------------------------------------------------------------------ */

/* What a group takes from its host.  `millicores` is the sum of the
 * containers' CPU requests rounded up to whole cores (always a multiple of
 * 1000); `requested_millicores` is the unrounded sum; memory is the sum of
 * requests in MiB (rounded up to a whole MiB); GPUs are counted for the one
 * SKU the group uses (`gpu_sku` is an engine's SKU id, meaningful only when
 * gpu_count > 0).  Init containers run before the others and take nothing
 * beyond the group's demand. */
typedef struct berth_demand {
    uint32_t millicores;
    uint32_t requested_millicores;
    uint32_t memory_mib;
    uint32_t gpu_count;
    uint32_t gpu_sku;
} berth_demand_t;

/* Shares the group's rounded cores among its containers in proportion to
 * their requests (ACI: 0.75 + 0.5 cores -> 2 cores, shared 1.2 / 0.8).
 * Writes group->ncontainers values, in millicores, to shares[0..n-1]; they
 * sum exactly to the rounded total (largest remainder, ties to the earlier
 * container).  Returns 0, or BERTH_EINVAL when n < group->ncontainers. */
BERTH_EXPORT int berth_group_cpu_shares(const berth_group_t *group,
                                        uint32_t *shares, size_t n);

/* ------------------------------------------------------------------------ */
/* Engine configuration: GPU SKUs and per-group limits                      */
/* ------------------------------------------------------------------------ */

#define BERTH_GPU_SKU_NAME_MAX 15
#define BERTH_GPU_OFFERS_MAX 8
#define BERTH_GPU_SKUS_MAX 32
#define BERTH_ZONES_MAX 64

/* One GPU count a SKU is offered in, with the largest CPU and memory a group
 * of that count may request (ACI: K80 x1 -> 6 cores, 56 GB). */
typedef struct berth_gpu_offer {
    uint32_t count;
    uint32_t max_millicores;
    uint32_t max_memory_mib;
} berth_gpu_offer_t;

/* A GPU SKU: the table is data.  Engines start with K80, P100 and V100 in 1,
 * 2 and 4 GPUs; an operator adds more (T4, A100 ...). */
typedef struct berth_gpu_sku {
    char name[BERTH_GPU_SKU_NAME_MAX + 1];
    size_t noffers;
    berth_gpu_offer_t offers[BERTH_GPU_OFFERS_MAX];
} berth_gpu_sku_t;

/* Per-group limits for groups without GPUs (GPU groups take theirs from the
 * SKU offer).  Defaults are ACI's: 4 cores, 16 GB, 60 containers, 20
 * volumes, 5 ports on the IP address. */
typedef struct berth_limits {
    uint32_t max_millicores;
    uint32_t max_memory_mib;
    uint32_t max_containers;        /* containers + init containers         */
    uint32_t max_volumes;
    uint32_t max_ip_ports;
} berth_limits_t;

typedef enum berth_policy {
    BERTH_POLICY_BINPACK = 0,       /* best fit: fill hosts, keep whole ones free */
    BERTH_POLICY_SPREAD,            /* worst fit: the emptiest host         */
    BERTH_POLICY_FIRSTFIT           /* naive linear scan in host order: the baseline */
} berth_policy_t;

/* Which groups the engine places only on hosts with BERTH_HOST_SANDBOX: a
 * hard constraint, like a Windows build. */
typedef enum berth_sandbox_policy {
    BERTH_SANDBOX_NONE = 0,         /* none: any host                       */
    BERTH_SANDBOX_ALL               /* every group of the cell              */
} berth_sandbox_policy_t;

/* Parses a sandbox policy name ("none", "all") into *out.  Returns 0 or
 * BERTH_EINVAL. */
BERTH_EXPORT int berth_sandbox_policy_parse(const char *name, berth_sandbox_policy_t *out);

/* The sandbox policy's name as berth_sandbox_policy_parse() reads it; a
 * static string ("unknown" for a value out of range). */
BERTH_EXPORT const char *berth_sandbox_policy_name(berth_sandbox_policy_t policy);

/* Engine options.  Initialise with berth_engine_options_init(), then set
 * what differs.  `size` is sizeof(berth_engine_options_t) as the caller
 * compiled it, so that later versions can append members. */
typedef struct berth_engine_options {
    size_t size;
    berth_policy_t policy;
    uint64_t seed;                  /* breaks ties between equal hosts      */
    berth_limits_t limits;
    uint32_t expected_hosts;        /* room for this many hosts is made at
                                     * once (0: grown as hosts come), so a
                                     * cluster of known size wastes nothing */
    /* Image locality (binpack): among hosts that fit a request equally well
     * (see "Image locality" below), prefer those already holding its
     * images.  1 (the default) on, 0 off, for baselines. */
    int image_locality;
    /* Vector score (binpack): instead of taking the lexicographic best fit
     * (fewest free GPUs, then cores, then memory), rank a bounded set of
     * best-fit candidates by how well the free vector left behind fits
     * the requests the engine has seen lately (see "Vector score" in
     * README).  0 (the default) off, 1 on. */
    int vector_score;
    /* Which groups must run on a host with BERTH_HOST_SANDBOX (see
     * "Sandboxed groups" in README): BERTH_SANDBOX_NONE (the default) or
     * BERTH_SANDBOX_ALL. */
    berth_sandbox_policy_t sandbox;
} berth_engine_options_t;

/* Fills *opts with the defaults: binpack, seed 0, ACI's limits. */
BERTH_EXPORT void berth_engine_options_init(berth_engine_options_t *opts);

/* Parses a policy name ("binpack", "spread", "firstfit") into *out.
 * Returns 0 or BERTH_EINVAL. */
BERTH_EXPORT int berth_policy_parse(const char *name, berth_policy_t *out);

/* The policy's name as berth_policy_parse() reads it; a static string. */
BERTH_EXPORT const char *berth_policy_name(berth_policy_t policy);

/* ------------------------------------------------------------------------ */
/* Engine                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct berth_engine berth_engine_t;

/* Creates an empty engine (no hosts, the default GPU SKU table) in *out;
 * free it with berth_engine_free().  `opts` may be NULL for the defaults.
 * Returns 0, BERTH_EINVAL for bad options, or BERTH_ENOMEM. */
BERTH_EXPORT int berth_engine_new(const berth_engine_options_t *opts,
                                  berth_engine_t **out, berth_error_t *err);

/* Frees an engine with all its hosts and groups.  Accepts NULL. */
BERTH_EXPORT void berth_engine_free(berth_engine_t *engine);

/* Adds a GPU SKU to the engine's table, or replaces the offers of a SKU of
 * the same name.  Offers must have distinct, non-zero counts.  Returns 0,
 * BERTH_EINVAL, or BERTH_ELIMIT when the table holds BERTH_GPU_SKUS_MAX. */
BERTH_EXPORT int berth_engine_gpu_sku_add(berth_engine_t *engine,
                                          const berth_gpu_sku_t *sku,
                                          berth_error_t *err);

/* Looks a GPU SKU up by name (case-sensitive, as ACI's enum).  Returns the
 * entry (owned by the engine, valid until the next berth_engine_gpu_sku_add)
 * and stores its id in *id when id is not NULL; NULL when unknown. */
BERTH_EXPORT const berth_gpu_sku_t *berth_engine_gpu_sku_find(
    const berth_engine_t *engine, const char *name, uint32_t *id);

/* The name of GPU SKU `id`, or NULL when there is none. */
BERTH_EXPORT const char *berth_engine_gpu_sku_name(const berth_engine_t *engine,
                                                   uint32_t id);

/* Replaces the engine's per-group limits for groups without GPUs (GPU groups
 * keep their SKU offer's).  Every member must be above zero.  Groups already
 * placed stay where they are; the new limits apply to the groups validated
 * or placed from now on.  Returns 0, or BERTH_EINVAL (nothing changed). */
BERTH_EXPORT int berth_engine_limits_set(berth_engine_t *engine, const berth_limits_t *limits,
                                         berth_error_t *err);

/* Copies the engine's per-group limits for groups without GPUs into *out:
 * the options' at creation (ACI's by default), or the last ones set by
 * berth_engine_limits_set(), an inventory's `limits` or the cell. */
BERTH_EXPORT void berth_engine_limits_get(const berth_engine_t *engine, berth_limits_t *out);

/* Replaces the engine's sandbox policy.  Groups already placed stay where
 * they are (on hosts without the sandbox feature too); the requests computed
 * from now on by berth_engine_group_request() carry the policy's
 * requirement.  Returns 0, or BERTH_EINVAL for an unknown policy (nothing
 * changed). */
BERTH_EXPORT int berth_engine_sandbox_set(berth_engine_t *engine,
                                          berth_sandbox_policy_t policy, berth_error_t *err);

/* The engine's sandbox policy: the options' at creation, or the last one set
 * by berth_engine_sandbox_set() or an inventory's `sandbox`. */
BERTH_EXPORT berth_sandbox_policy_t berth_engine_sandbox_get(const berth_engine_t *engine);

/* ------------------------------------------------------------------------ */
/* Hosts                                                                    */
/* ------------------------------------------------------------------------ */

/* Host features (bit set). */
#define BERTH_HOST_CONFIDENTIAL 0x1u  /* runs the Confidential SKU            */
#define BERTH_HOST_DEDICATED 0x2u     /* reserved for the Dedicated SKU: one group, the whole host */
#define BERTH_HOST_HYPERV 0x4u        /* Windows host with Hyper-V isolation  */
#define BERTH_HOST_SANDBOX 0x8u       /* runs each group in a sandbox of its own
                                       * kernel (gVisor): what the sandbox
                                       * policy asks for                      */

typedef enum berth_host_state {
    BERTH_HOST_READY = 0,
    BERTH_HOST_CORDONED,            /* keeps its groups, takes no new ones  */
    BERTH_HOST_DOWN                 /* takes nothing; its groups must move  */
} berth_host_state_t;

/* Windows OS builds. */
#define BERTH_WINDOWS_LTSC2019 17763u
#define BERTH_WINDOWS_LTSC2022 20348u
#define BERTH_WINDOWS_LTSC2025 26100u

/* A host's description.  As input, strings are borrowed; as output of
 * berth_engine_host_get(), they point into the engine and stay valid until that
 * host is updated or removed. */
typedef struct berth_host {
    const char *name;               /* 1..63 chars: letters, digits, '-', '_', '.' */
    uint32_t cores;                 /* whole cores                          */
    uint32_t memory_mib;
    const char *gpu_sku;            /* NULL or "" when gpu_count == 0       */
    uint32_t gpu_count;
    berth_os_t os;
    uint32_t os_build;              /* Windows: 17763, 20348, 26100 ...; Linux: 0 */
    const char *zone;               /* NULL or "" for none                  */
    uint32_t features;              /* BERTH_HOST_* bits                    */
    berth_host_state_t state;
} berth_host_t;

/* What is allocated on a host. */
typedef struct berth_host_usage {
    uint32_t millicores;
    uint32_t memory_mib;
    uint32_t gpu_count;
    uint32_t groups;
} berth_host_usage_t;

/* Adds a host.  Returns 0, BERTH_EEXIST for a name already present,
 * BERTH_EINVAL for a bad description (name, zero capacity, unknown GPU SKU,
 * Windows without a build ...), BERTH_ELIMIT, or BERTH_ENOMEM. */
BERTH_EXPORT int berth_engine_host_add(berth_engine_t *engine, const berth_host_t *host,
                                       berth_error_t *err);

/* Replaces the description of the host named host->name.  A host holding
 * groups may change its capacity (never below what is allocated), zone,
 * features and state, but not its OS, build or GPU SKU (BERTH_EBUSY).
 * Returns 0, BERTH_ENOENT, BERTH_EINVAL, BERTH_EBUSY or BERTH_ENOMEM. */
BERTH_EXPORT int berth_engine_host_update(berth_engine_t *engine, const berth_host_t *host,
                                          berth_error_t *err);

/* Sets a host's state (ready, cordoned, down).  Groups stay where they are;
 * a down host's groups move at their next redeploy.  Returns 0 or
 * BERTH_ENOENT. */
BERTH_EXPORT int berth_engine_host_set_state(berth_engine_t *engine, const char *name,
                                             berth_host_state_t state, berth_error_t *err);

/* Removes an empty host.  Returns 0, BERTH_ENOENT, or BERTH_EBUSY when it
 * still holds groups (release or move them first). */
BERTH_EXPORT int berth_engine_host_remove(berth_engine_t *engine, const char *name,
                                          berth_error_t *err);

/* Looks a host up by name and copies its description to *host and its
 * allocation to *usage (either may be NULL).  Returns 0 or BERTH_ENOENT. */
BERTH_EXPORT int berth_engine_host_get(const berth_engine_t *engine, const char *name,
                                       berth_host_t *host, berth_host_usage_t *usage);

/* The number of hosts. */
BERTH_EXPORT size_t berth_engine_host_count(const berth_engine_t *engine);

/* Host number `i` (0 <= i < berth_engine_host_count()), in the order hosts
 * were added (removing a host moves the last one into its place).  Same
 * outputs as berth_engine_host_get().  Returns 0 or BERTH_ENOENT. */
BERTH_EXPORT int berth_engine_host_at(const berth_engine_t *engine, size_t i,
                                      berth_host_t *host, berth_host_usage_t *usage);

/* ------------------------------------------------------------------------ */
/* Placement                                                                */
/* ------------------------------------------------------------------------ */

/* Windows isolation a placement runs with. */
typedef enum berth_isolation {
    BERTH_ISOLATION_NONE = 0,       /* Linux                                */
    BERTH_ISOLATION_PROCESS,        /* image build == host build            */
    BERTH_ISOLATION_HYPERV          /* host newer than the image            */
} berth_isolation_t;

/* The most images a request carries for image locality. */
#define BERTH_REQUEST_IMAGES_MAX 8

/* Everything placement needs to know about a group: its demand and its hard
 * constraints, in the engine's ids.  Built from a document by
 * berth_engine_group_request(), or filled in directly by callers that do not use
 * ACI documents (benchmarks, other front ends): zero the struct, then set
 * demand, os and what differs. */
typedef struct berth_request {
    berth_demand_t demand;
    berth_os_t os;
    uint32_t os_build;              /* Windows image build; 0: any          */
    uint64_t zone_mask;             /* bit i: engine zone id i; 0: any zone */
    berth_sku_t sku;
    berth_priority_t priority;
    berth_restart_policy_t restart_policy;
    /* Fingerprints of the properties a redeploy must not change (per
     * container CPU, memory, GPU; the group's ports).  0 when unknown. */
    uint64_t cpu_digest;
    uint64_t memory_digest;
    uint64_t gpu_digest;
    uint64_t ports_digest;
    /* The group's distinct images as berth_image_hash() values (containers
     * and init containers, in document order, the first
     * BERTH_REQUEST_IMAGES_MAX of them), filled by berth_engine_group_request();
     * nimages 0: unknown, and image locality plays no part. */
    uint32_t nimages;
    uint64_t images[BERTH_REQUEST_IMAGES_MAX];
    /* The virtual network subnet the group joins: bit i is the engine's
     * subnet i (berth_engine_subnet_find()); a group names at most one
     * subnet, so at most one bit is set.  0: no subnet (any host). */
    uint64_t subnet_mask;
    /* Only a host with BERTH_HOST_SANDBOX may take the group: set by
     * berth_engine_group_request() when the engine's sandbox policy is
     * BERTH_SANDBOX_ALL. */
    bool sandbox;
} berth_request_t;

/* Validates `group` against the engine's tables (GPU SKUs and the counts they
 * are offered in, one SKU per group, per-group limits, container limits not
 * above the group's total request) and computes its request into *out.
 * `engine` may not be NULL.  Zone names the engine has not seen yet are
 * registered (BERTH_ELIMIT past BERTH_ZONES_MAX).  Returns 0, BERTH_EINVAL
 * with every violation in *err, or BERTH_ELIMIT. */
BERTH_EXPORT int berth_engine_group_request(berth_engine_t *engine,
                                            const berth_group_t *group,
                                            berth_request_t *out, berth_error_t *err);

/* Validates `group` against the engine's tables without computing anything;
 * berth_engine_group_request() without the output. */
BERTH_EXPORT int berth_engine_group_validate(berth_engine_t *engine,
                                             const berth_group_t *group,
                                             berth_error_t *err);

/* The engine's id for zone `name`, registering it when new.  Returns the id
 * (0 .. BERTH_ZONES_MAX-1), or BERTH_ELIMIT / BERTH_EINVAL. */
BERTH_EXPORT int berth_engine_zone_id(berth_engine_t *engine, const char *name);

/* ---- virtual network subnets ---------------------------------------------- */

/* An engine knows at most 64 subnets (one bit each in a host's class and in
 * berth_request_t.subnet_mask). */
#define BERTH_SUBNETS_MAX 64
/* A subnet id is ACI's subnet resource id (/subscriptions/.../
 * virtualNetworks/V/subnets/S) or a short name. */
#define BERTH_SUBNET_ID_MAX 400
/* The widest and narrowest prefixes a subnet may have: /8 to /29 (a /29
 * holds the gateway and five groups). */
#define BERTH_SUBNET_PREFIX_MIN 8
#define BERTH_SUBNET_PREFIX_MAX 29

/* One subnet of the cell's virtual networks, as data: its id, its IPv4
 * range and the hosts that carry it (a host carries a subnet when it has
 * the subnet's bridge; a group of the subnet is placed only there). */
typedef struct berth_subnet {
    const char *id;                 /* 1..BERTH_SUBNET_ID_MAX printable
                                     * characters, no space; compared
                                     * without case, as ARM ids are     */
    const char *cidr;               /* "a.b.c.d/n", host bits zero       */
    const char *const *hosts;       /* host names (hosts need not exist yet) */
    size_t nhosts;
} berth_subnet_t;

/* Parses an IPv4 CIDR "a.b.c.d/n" (n from BERTH_SUBNET_PREFIX_MIN to
 * BERTH_SUBNET_PREFIX_MAX, host bits zero, no leading zeros) into the
 * network address (host byte order) and the prefix length.  Returns 0, or
 * BERTH_EINVAL with a message saying what is wrong (target ""). */
BERTH_EXPORT int berth_subnet_cidr_parse(const char *cidr, uint32_t *network,
                                         unsigned *prefix, berth_error_t *err);

/* Replaces the engine's subnet table with `subnets[0..n)` (n at most
 * BERTH_SUBNETS_MAX; ids distinct without case; CIDRs valid and not
 * overlapping; host names valid and not repeated within a subnet).  Each
 * host is then in the classes of the subnets that list it, hosts added
 * later too.  The engine copies everything.  Groups already placed stay
 * where they are.  Returns 0, or BERTH_EINVAL (every violation in *err, its
 * target "subnets[I].id", "subnets[I].cidr" or "subnets[I].hosts[J]"),
 * BERTH_ELIMIT or BERTH_ENOMEM; a failure changes nothing. */
BERTH_EXPORT int berth_engine_subnets_set(berth_engine_t *engine,
                                          const berth_subnet_t *subnets, size_t n,
                                          berth_error_t *err);

/* berth_engine_subnets_set() from JSON: an array of {"id", "cidr",
 * "hosts": [names]} or an object {"subnets": [...]}; every violation at its
 * path ("subnets[I].member").  Returns 0, BERTH_EINVAL, BERTH_ETOOBIG,
 * BERTH_ELIMIT or BERTH_ENOMEM; a failure changes nothing. */
BERTH_EXPORT int berth_engine_subnets_load(berth_engine_t *engine, const char *json,
                                           size_t len, berth_error_t *err);

/* The engine's subnet table as a compact JSON array in the form
 * berth_engine_subnets_load() reads (hosts sorted), in *out (free with
 * berth_free()).  Returns 0 or BERTH_ENOMEM (*out NULL). */
BERTH_EXPORT int berth_engine_subnets_json(const berth_engine_t *engine, char **out);

/* The number of subnets in the engine's table. */
BERTH_EXPORT size_t berth_engine_subnet_count(const berth_engine_t *engine);

/* Fills *out with subnet `i` (its bit in berth_request_t.subnet_mask is
 * 1 << i); the strings belong to the engine and stay valid until the next
 * berth_engine_subnets_set().  Returns 0 or BERTH_ENOENT. */
BERTH_EXPORT int berth_engine_subnet_at(const berth_engine_t *engine, size_t i,
                                        berth_subnet_t *out);

/* The index of the subnet whose id is `id` (without case), or
 * BERTH_ENOENT. */
BERTH_EXPORT int berth_engine_subnet_find(const berth_engine_t *engine, const char *id);

typedef enum berth_placement_kind {
    BERTH_PLACED_NEW = 1,           /* created                              */
    BERTH_PLACED_STAYED,            /* redeployed on the same host          */
    BERTH_PLACED_MOVED              /* redeployed on another host           */
} berth_placement_kind_t;

/* Where a group went. */
typedef struct berth_placement {
    char host[BERTH_NAME_MAX + 1];
    char previous_host[BERTH_NAME_MAX + 1]; /* for BERTH_PLACED_MOVED, else "" */
    berth_placement_kind_t kind;
    berth_isolation_t isolation;
    berth_demand_t demand;
    /* Spot groups this placement evicted to make room (0 almost always);
     * berth_engine_victim_get() names them.  See "Priority and preemption". */
    uint32_t evicted;
} berth_placement_t;

/* Places (creates) or redeploys (updates) the group stored under `key`, with
 * ACI's create-or-update semantics:
 *  - `key` unknown: picks a host by the engine's policy among those meeting
 *    every hard constraint (OS and Windows build, GPU SKU and count, zone,
 *    Dedicated/Confidential SKU, state ready, free capacity) -> PLACED_NEW.
 *  - `key` known: refuses with BERTH_ECONFLICT when the request changes the
 *    OS type, CPU, memory, GPU, restart policy or ports (ACI: "... you must
 *    delete it first and then create a new one", naming the property);
 *    otherwise keeps the group on its host when the new demand fits there
 *    once the old allocation is released and the host still meets the
 *    constraints (PLACED_STAYED), else moves it (PLACED_MOVED).
 * No host fitting gives BERTH_ENOSPC with a message naming the constraint
 * that found none ("no host with 2 free V100 GPUs in zone '1'"); the group's
 * previous placement, if any, is kept.  `key` is copied (1..255 bytes).
 * Choosing the host does no I/O and no heap allocation; its cost grows with
 * the logarithm of the number of hosts.  *out may be NULL. */
BERTH_EXPORT int berth_engine_request_place(berth_engine_t *engine, const char *key,
                                            const berth_request_t *request,
                                            berth_placement_t *out, berth_error_t *err);

/* Places or redeploys the group under `key` on the host named `host`
 * instead of letting the policy choose: used to replay placements that were
 * decided elsewhere (replicas of a shared store, recovery).  The host must
 * exist (BERTH_ENOENT), not be down, meet the request's static constraints
 * and have the free capacity (BERTH_ENOSPC); a cordoned host is accepted.
 * A known key is redeployed with the same update rules as
 * berth_engine_request_place() (BERTH_ECONFLICT).  *out may be NULL. */
BERTH_EXPORT int berth_engine_request_assign(berth_engine_t *engine, const char *key,
                                             const berth_request_t *request, const char *host,
                                             berth_placement_t *out, berth_error_t *err);

/* berth_engine_group_request() then berth_engine_request_place(): validates the document
 * against the engine and places or redeploys it under `key`. */
BERTH_EXPORT int berth_engine_group_place(berth_engine_t *engine, const char *key,
                                          const berth_group_t *group,
                                          berth_placement_t *out, berth_error_t *err);

/* Releases the group stored under `key` (deleted, stopped or terminated),
 * returning its allocation to its host.  Returns 0 or BERTH_ENOENT. */
BERTH_EXPORT int berth_engine_group_release(berth_engine_t *engine, const char *key,
                                            berth_error_t *err);

/*
 * Priority and preemption.  A group's request carries its ACI priority
 * (properties.priority): Regular (or unset) or Spot.  Spot groups fill
 * spare capacity and may be evicted; Regular groups never are.
 *
 * When berth_engine_request_place() or berth_engine_group_place() finds no host for a
 * NEW Regular group, it preempts: over the ready hosts that meet the
 * request's static constraints (OS and build, GPU SKU, zone, SKU feature),
 * it looks for the smallest set of one host's Spot groups whose release
 * makes the request fit on every dimension (whole cores, memory, GPUs; on
 * a Dedicated host, every group the host holds, all of them Spot).  Plans
 * are compared by (1) fewest victims, (2) least evicted capacity -- the
 * victims' summed whole cores, then memory, then GPUs --, (3) the host's
 * name, and within a host the first set in the order (cores, memory, GPUs
 * descending, then key ascending) of its Spot groups.  The search is exact
 * (branch and bound) within BERTH_PREEMPT_EXACT_NODES search nodes per
 * host.  Past that budget, a host where a set of the fewest victims was
 * already found keeps the least one found so far; otherwise its set is
 * built greedily (the group covering most of what is still missing first,
 * then every victim the set can spare dropped), which may evict more than
 * the fewest.  The victims are released (as by
 * berth_engine_group_release()) and the group placed on that host, in one call:
 * on any failure nothing changes.  A redeploy (known key) of a Regular
 * group that fits nowhere, its own allocation counted as free, stays on
 * its host by the same search over that host's Spot groups only (the host
 * not down, still meeting the request; cordoned is fine): never another
 * host's.  A Spot request never preempts, and berth_engine_request_assign() never
 * does.  berth_engine_preemption_plan() plans for a new group.
 * The preemption path scans the engine's groups and allocates; a request
 * that fits, and any refusal while the engine holds no Spot group, cost
 * nothing extra.
 */
#define BERTH_PREEMPT_EXACT_NODES 4096u

/* A preemption plan: where a request would go and what it would evict. */
typedef struct berth_preemption {
    char host[BERTH_NAME_MAX + 1];
    uint32_t victims;               /* Spot groups evicted; 0: fits as is   */
    berth_demand_t evicted;         /* their summed demand (millicores,
                                     * memory_mib, gpu_count)               */
} berth_preemption_t;

/* Computes, without changing any placement, where a new Regular request
 * would go and which Spot groups placing it would evict, by the rules
 * above; the victims' keys are then read with berth_engine_victim_get().  A
 * request that fits somewhere gives victims 0 and the policy's host.
 * Returns 0, BERTH_EINVAL (a bad request), BERTH_ENOSPC (no plan: a Spot
 * request, or no host where evicting Spot groups makes room; the message
 * says which) or BERTH_ENOMEM.  *out may not be NULL. */
BERTH_EXPORT int berth_engine_preemption_plan(berth_engine_t *engine,
                                              const berth_request_t *request,
                                              berth_preemption_t *out, berth_error_t *err);

/* The key of victim `i` (0-based) of the last preemption this engine
 * planned (berth_engine_preemption_plan()) or carried out (a placement whose
 * `evicted` is above 0), or NULL past the last.  The string belongs to the
 * engine and stays valid until the next preemption is planned or carried
 * out on it; other calls leave it alone. */
BERTH_EXPORT const char *berth_engine_victim_get(const berth_engine_t *engine, size_t i);

/* The number of Spot groups the engine holds.  O(1). */
BERTH_EXPORT size_t berth_engine_spot_count(const berth_engine_t *engine);

/* Looks up where the group under `key` is; fills *out (kind is that of its
 * last placement).  Returns 0 or BERTH_ENOENT. */
BERTH_EXPORT int berth_engine_group_get(const berth_engine_t *engine, const char *key,
                                        berth_placement_t *out);

/* Releases every group and removes every host, keeping the options, the
 * GPU SKU table, the zone names and the subnet table: the engine is as new.  Used to reload a
 * replica from a snapshot. */
BERTH_EXPORT void berth_engine_reset(berth_engine_t *engine);

/* The number of groups placed. */
BERTH_EXPORT size_t berth_engine_group_count(const berth_engine_t *engine);

/* Calls cb(key, data) for every group placed whose key starts with
 * `prefix` (NULL or "": every group), in no particular order; cb returns 0
 * to go on, anything else to stop (that value is returned).  The engine
 * must not change during the walk.  Returns 0 or cb's stop value. */
typedef int (*berth_engine_key_cb)(const char *key, void *data);
BERTH_EXPORT int berth_engine_group_keys(const berth_engine_t *engine, const char *prefix,
                                         berth_engine_key_cb cb, void *data);

/* Totals over all hosts, for utilization summaries. */
typedef struct berth_engine_stats {
    size_t hosts;
    size_t hosts_used;              /* hosts holding at least one group     */
    size_t groups;
    uint64_t capacity_millicores, used_millicores;
    uint64_t capacity_memory_mib, used_memory_mib;
    uint64_t capacity_gpus, used_gpus;
    /* New placements chosen by the policy whose request named images
     * (nimages > 0), and those among them whose host already held every
     * one of the request's images when it was chosen. */
    uint64_t placements_with_images;
    uint64_t placements_images_cached;
} berth_engine_stats_t;

/* Fills *stats.  O(1). */
BERTH_EXPORT void berth_engine_stats(const berth_engine_t *engine,
                                     berth_engine_stats_t *stats);

/* ------------------------------------------------------------------------ */
/* Host inventories                                                         */
/* ------------------------------------------------------------------------ */

/* Loads a host inventory document into the engine: either a JSON array of
 * hosts, or an object {"gpuSkus": [...], "limits": {...}, "sandbox":
 * "all", "hosts": [...]} that also declares GPU SKUs, the per-group limits
 * for groups without GPUs (berth_engine_limits_set(); members absent keep
 * the engine's value) and the sandbox policy ("none" or "all":
 * berth_engine_sandbox_set()).  Host features are "confidential",
 * "dedicated", "hyperv" and "sandbox".  A host is named like ACI's own fields:
 *   {"name": "h1", "cpu": 16, "memoryInGB": 64,
 *    "gpu": {"sku": "V100", "count": 4}, "osType": "Linux",
 *    "osBuild": 20348, "zone": "1", "features": ["confidential"],
 *    "state": "ready"}
 * a SKU as {"name": "T4", "offers": [{"count": 1, "cpu": 8,
 * "memoryInGB": 32}, ...]}, and the limits as {"cpu": 16 (whole cores),
 * "memoryInGB": 64, "containers": 60, "volumes": 20, "ports": 5}, each
 * optional and above zero.  The object may also give "subnets": [{"id":
 * "sn-a", "cidr": "10.0.0.0/24", "hosts": ["h1", ...]}, ...], which
 * replaces the engine's subnet table (berth_engine_subnets_set()'s rules;
 * a host named need not exist yet).  All or nothing: on any error (with its JSON
 * path in *err) the engine is left as it was.  Returns 0, BERTH_EINVAL,
 * BERTH_ETOOBIG, BERTH_EEXIST, BERTH_ELIMIT or BERTH_ENOMEM. */
BERTH_EXPORT int berth_engine_inventory_load(berth_engine_t *engine, const char *json,
                                             size_t len, berth_error_t *err);

/* ------------------------------------------------------------------------ */
/* Image locality                                                           */
/* ------------------------------------------------------------------------ */

/*
 * A host's agent reports the images its runtime holds; the engine keeps
 * them per host as a sorted array of 64-bit hashes of normalized image
 * references.  With binpack (and engine option image_locality on), among
 * the hosts that fit a request equally well -- the same class of static
 * attributes, the same free GPUs and the same free whole cores, and among
 * the first BERTH_LOCALITY_SCAN of them by least free memory that still
 * fits -- the host holding the most of the request's images wins; the
 * order of free memory decides between hosts holding as many.  Choosing
 * stays allocation-free and its extra cost is bounded by
 * BERTH_LOCALITY_SCAN lookups.
 */
#define BERTH_LOCALITY_SCAN 8
#define BERTH_HOST_IMAGES_MAX 4096

/* The hash of image reference `ref` after normalization: a reference
 * without a registry is Docker Hub's ("busybox" -> "docker.io/library/
 * busybox", "user/app" -> "docker.io/user/app"; "index.docker.io" reads as
 * "docker.io"), and one without a tag or digest gets ":latest", so
 * "busybox", "busybox:latest" and "docker.io/library/busybox:latest" hash
 * alike.  Never 0; 0 for NULL or an empty or over-long (> 1024 bytes)
 * reference. */
BERTH_EXPORT uint64_t berth_image_hash(const char *ref);

/* Replaces the images host `host` holds with the `n` references in
 * `images` (hashed with berth_image_hash(); duplicates count once; n 0
 * clears them).  The engine keeps its own copy.  Returns 0, BERTH_ENOENT
 * (no such host), BERTH_EINVAL (an empty reference, or more than
 * BERTH_HOST_IMAGES_MAX) or BERTH_ENOMEM; a failing call changes nothing. */
BERTH_EXPORT int berth_engine_host_images_set(berth_engine_t *engine, const char *host,
                                              const char *const *images, size_t n,
                                              berth_error_t *err);

/* The number of distinct images the engine holds for `host`, or
 * BERTH_ENOENT. */
BERTH_EXPORT int berth_engine_host_images_count(const berth_engine_t *engine,
                                                const char *host);

/* ------------------------------------------------------------------------ */
/* The Redis store: shared state, atomic commits, replicas                 */
/* ------------------------------------------------------------------------ */
/*
 * A cell is a set of hosts whose state lives in Redis under one hash tag,
 * `berth:{CELL}:...`, so that all of a cell's keys sit in one slot of a
 * Redis Cluster (store.c documents every key).  A store binds one engine, a
 * replica of the cell: berth_store_open() loads it from a snapshot, and
 * every call that reads or commits first applies the cell's change log, so
 * several scheduler processes may serve one cell, each with its own engine.
 *
 * Commits are optimistic: the engine chooses a host in memory, then a Redis
 * Function re-checks the host's free capacity (and the group's generation)
 * and applies the change, appends the assignment to the host's stream and
 * the change to the cell's log, all in one atomic step.  A conflict (another
 * scheduler took the room) catches the replica up and retries, at most
 * `max_retries` times.  A call returns success only after Redis has applied
 * the commit; what Redis then keeps across a crash is its persistence's
 * (store.c: AOF with appendfsync everysec by default, always for none lost).
 *
 * The store is synchronous and blocking (hiredis): it is for library
 * callers, tools and tests.  The store never frees the engine it binds; the
 * engine must outlive it and must not be changed except through it.
 */

typedef struct berth_store berth_store_t;

/* Reads every host's image set from the store's cell (the SET
 * berth:{C}:images:<host> each agent writes, berth_hostlink_images_put())
 * into the store's engine: a host with no set holds no images.  Hosts the
 * engine does not know are skipped.  Blocking: one round trip (a MULTI of
 * SMEMBERS) per 256 hosts.
 * Returns 0, BERTH_EIO (Redis failing; hosts read before the failure keep
 * their new images, the others their old ones) or BERTH_ENOMEM. */
BERTH_EXPORT int berth_store_images_sync(berth_store_t *store, berth_error_t *err);

typedef struct berth_store_options {
    size_t size;                    /* sizeof(berth_store_options_t)        */
    const char *url;                /* "redis://HOST:PORT" or "unix:///PATH" */
    const char *cell;               /* 1..63 of [a-z0-9-]                   */
    uint32_t timeout_ms;            /* connect and command timeout (5000)   */
    uint32_t max_retries;           /* conflicts retried per commit (8)     */
    uint32_t log_max_len;           /* change-log entries Redis keeps (100000) */
    /* Durability across a master's failure: with wait_replicas above 0,
     * every commit is followed on its connection by Redis's WAIT, and is
     * reported a success only once that many replicas have confirmed it
     * within wait_timeout_ms (1000; below timeout_ms).  A commit they did
     * not all confirm in time was applied by the master but is reported
     * BERTH_EIO ("NotReplicated"): a master lost now could lose it, and
     * the caller retries as after any unanswered commit. */
    uint32_t wait_replicas;
    uint32_t wait_timeout_ms;
} berth_store_options_t;

/* Fills *opts with the defaults (url "redis://127.0.0.1:6379", cell
 * "default", no replica confirmation). */
BERTH_EXPORT void berth_store_options_init(berth_store_options_t *opts);

/* Connects to Redis (following a Cluster's MOVED redirection to the node
 * that owns the cell's slot), loads Berth's Redis Functions, creates the
 * cell when it is new, and loads `engine` (which must hold no hosts or
 * groups) from the cell's snapshot (hosts, groups, GPU SKUs, and the
 * cell's per-group limits, sandbox policy and subnets when they were set:
 * berth_store_limits_put(), berth_store_sandbox_put(),
 * berth_store_subnets_put(); otherwise the engine
 * keeps its own).  On success stores a new store in *out
 * (close with berth_store_close()).  Returns 0, BERTH_EINVAL (options),
 * BERTH_EIO (Redis unreachable or failing; err says what Redis said),
 * BERTH_EEXIST (engine not empty), or BERTH_ENOMEM. */
BERTH_EXPORT int berth_store_open(const berth_store_options_t *opts,
                                  berth_engine_t *engine, berth_store_t **out,
                                  berth_error_t *err);

/* Closes the connection and frees the store (not its engine).  Accepts NULL. */
BERTH_EXPORT void berth_store_close(berth_store_t *store);

/* Applies the cell's change log to the engine; reloads the snapshot when
 * the log was trimmed past this replica.  Returns 0 or BERTH_EIO. */
BERTH_EXPORT int berth_store_sync(berth_store_t *store, berth_error_t *err);

/* Adds or replaces a GPU SKU in the cell's table, so that every replica
 * knows it (berth_engine_gpu_sku_add()'s rules).  berth_store_host_put()
 * records the SKU of a GPU host from the engine's table by itself.
 * Returns 0, BERTH_EINVAL, BERTH_ELIMIT or BERTH_EIO. */
BERTH_EXPORT int berth_store_gpu_sku_put(berth_store_t *store, const berth_gpu_sku_t *sku,
                                         berth_error_t *err);

/* Sets the cell's per-group limits for groups without GPUs
 * (berth_engine_limits_set()'s rules), in one atomic step, so that every
 * store opened on the cell, and every replica as it syncs, applies them to
 * its engine.  A cell that never had limits set leaves each replica's engine
 * with the limits it was created with.  Returns 0, BERTH_EINVAL or
 * BERTH_EIO. */
BERTH_EXPORT int berth_store_limits_put(berth_store_t *store, const berth_limits_t *limits,
                                        berth_error_t *err);

/* Sets the cell's sandbox policy (berth_engine_sandbox_set()'s values), in
 * one atomic step, so that every store opened on the cell, and every
 * replica as it syncs, applies it to its engine.  A cell that never had one
 * set leaves each replica's engine with the policy it was created with.
 * Setting the policy the cell holds logs nothing.  Returns 0, BERTH_EINVAL
 * (an unknown policy: nothing changed) or BERTH_EIO. */
BERTH_EXPORT int berth_store_sandbox_put(berth_store_t *store, berth_sandbox_policy_t policy,
                                         berth_error_t *err);

/* Replaces the cell's virtual network subnet table (berth_engine_subnets_set()'s
 * rules, the same paths in *err) in one atomic step logged as one change,
 * so that every replica's engine holds it.  A table equal to the cell's
 * changes nothing.  A cell whose table was never set leaves each engine
 * its own.  Returns 0, BERTH_EINVAL, BERTH_ELIMIT, BERTH_ENOMEM or
 * BERTH_EIO. */
BERTH_EXPORT int berth_store_subnets_put(berth_store_t *store, const berth_subnet_t *subnets,
                                         size_t n, berth_error_t *err);

/* Adds or replaces a host in the cell (capacity, attributes, state), with
 * the rules of berth_engine_host_add()/berth_engine_host_update() checked against Redis's
 * copy atomically.  Returns 0, BERTH_EINVAL, BERTH_EBUSY, BERTH_EIO. */
BERTH_EXPORT int berth_store_host_put(berth_store_t *store, const berth_host_t *host,
                                      berth_error_t *err);

/* Sets a host's state in the cell.  Returns 0, BERTH_ENOENT or BERTH_EIO. */
BERTH_EXPORT int berth_store_host_set_state(berth_store_t *store, const char *name,
                                            berth_host_state_t state, berth_error_t *err);

/* Removes an empty host from the cell.  Returns 0, BERTH_ENOENT,
 * BERTH_EBUSY or BERTH_EIO. */
BERTH_EXPORT int berth_store_host_remove(berth_store_t *store, const char *name,
                                         berth_error_t *err);

/* Places or redeploys the group under `key` (berth_engine_request_place()'s
 * semantics) and commits it: returns 0 only once Redis holds the
 * placement.  `spec_json` (may be NULL) is the group's document, kept in its
 * record.  Errors: those of berth_engine_request_place(), BERTH_EIO, or
 * BERTH_ENOSPC after max_retries conflicts.  *out may be NULL. */
BERTH_EXPORT int berth_store_place(berth_store_t *store, const char *key,
                                   const berth_request_t *request, const char *spec_json,
                                   berth_placement_t *out, berth_error_t *err);

/* berth_store_place() for a group that is not placed, trying host
 * `prefer_host` first (when it exists and the group fits there under
 * every constraint) and the engine's choice otherwise: a stopped group
 * started again goes back to its old host when it can.  A redeploy ignores
 * the preference (it stays on its host when it fits, as always). */
BERTH_EXPORT int berth_store_place_prefer(berth_store_t *store, const char *key,
                                          const berth_request_t *request,
                                          const char *prefer_host, const char *spec_json,
                                          berth_placement_t *out, berth_error_t *err);

/* Places n groups with their commits pipelined (one round trip for the
 * batch, plus one per retry round); then each Regular group that found no
 * room preempts, one at a time in batch order, as berth_store_place()
 * would (its outs[i].evicted counts its victims; berth_engine_victim_get()
 * names the last preemption's).  results[i] receives each group's 0 or
 * negative code and outs[i] (outs may be NULL) its placement.  Returns 0
 * when every commit got an answer (look at results), or BERTH_EIO. */
BERTH_EXPORT int berth_store_place_batch(berth_store_t *store, size_t n,
                                         const char *const *keys,
                                         const berth_request_t *requests,
                                         berth_placement_t *outs, int *results,
                                         berth_error_t *err);

/*
 * Preemption in the store.  berth_store_place() and berth_store_place_prefer()
 * of a Regular group that fits nowhere (new, or a redeploy, which evicts on
 * its own host only) plan a preemption in the store's engine and commit it
 * in one atomic step
 * (the Redis Function berth_preempt): it re-checks that every victim is
 * still a Spot group on the plan's host at the generation the replica saw,
 * releases each one (records, the host's group set, a release entry on the
 * host's assignment stream for its agent, a change-log entry), records the
 * eviction under berth:{C}:evictions and places the group -- all or nothing;
 * a stale plan catches up and is planned again, like any conflict.  Other
 * replicas see the releases and the placement through the log.  On success
 * out->evicted counts the victims and berth_engine_victim_get() on the store's
 * engine names them.  A batch (berth_store_place_batch()) preempts for its
 * Regular groups after its pipelined round; the asynchronous store
 * preempts like the synchronous one, each in a round of its own.  Through
 * berthd a redeploy cannot change a group's demand (ACI refuses CPU,
 * memory and GPU updates), so a redeploy preempts for library callers
 * that resize a group.
 */

/* How and when a group was evicted (berth_store_eviction_read()). */
typedef struct berth_eviction {
    char host[BERTH_NAME_MAX + 1];  /* the host it was evicted from         */
    char by[256];                   /* the key of the group that took the room */
    uint64_t time_ms;               /* when, in ms since the epoch (Redis's clock) */
} berth_eviction_t;

/* Reads the eviction record of the group under `key` into *out.  A record
 * stays until berth_store_eviction_forget(); it describes the group's last
 * eviction, whatever happened since (callers check the group's placement).
 * The evicted group's document stays in the cell beside it until the
 * group is placed again or forgotten (berth_store_async_document_read()).
 * Returns 0, BERTH_ENOENT (never evicted, or forgotten), BERTH_EINVAL (a bad
 * key or a malformed record) or BERTH_EIO. */
BERTH_EXPORT int berth_store_eviction_read(berth_store_t *store, const char *key,
                                           berth_eviction_t *out, berth_error_t *err);

/* Drops the eviction record of the group under `key` and the document
 * kept with it (none: nothing to do).  Returns 0, BERTH_EINVAL or
 * BERTH_EIO. */
BERTH_EXPORT int berth_store_eviction_forget(berth_store_t *store, const char *key,
                                             berth_error_t *err);

/* Releases the group under `key` in the cell.  Returns 0, BERTH_ENOENT or
 * BERTH_EIO. */
BERTH_EXPORT int berth_store_release(berth_store_t *store, const char *key,
                                     berth_error_t *err);

/* Reads the group's record from Redis: its document (NULL when none was
 * given; free with berth_free()) and generation, either may be NULL.
 * Returns 0, BERTH_ENOENT or BERTH_EIO. */
BERTH_EXPORT int berth_store_group_read(berth_store_t *store, const char *key,
                                        char **spec_json, uint64_t *generation,
                                        berth_error_t *err);

/* Reads the group's document, placed or not: the one its record holds
 * (with its generation), else the one the cell keeps for it after a
 * release with BERTH_RELEASE_KEEP_DOCUMENT or an eviction (generation 0).
 * *spec_json: free with berth_free(); generation may be NULL.  Returns 0,
 * BERTH_ENOENT (neither, or a record without a document) or BERTH_EIO. */
BERTH_EXPORT int berth_store_document_read(berth_store_t *store, const char *key,
                                           char **spec_json, uint64_t *generation,
                                           berth_error_t *err);

/* Asks the agent of the group's host to restart every container of the
 * group in place (an entry "restart" on the host's assignment stream).
 * Returns 0 once Redis holds the request, BERTH_ENOENT (no such group),
 * BERTH_EINVAL or BERTH_EIO. */
BERTH_EXPORT int berth_store_group_restart(berth_store_t *store, const char *key,
                                           berth_error_t *err);

/* Called by berth_store_hosts_expire(): once with key NULL when `host` is
 * marked down, then once per group of a down host it re-placed, with the
 * new host (NULL) and the outcome (0 or a negative code such as
 * BERTH_ENOSPC: the group stays where it was, to be tried again). */
typedef void (*berth_store_expire_cb)(const char *host, const char *key, const char *new_host,
                                      int status, void *data);

/* Marks down every host an agent served (from its first
 * berth_hostlink_heartbeat() on) whose heartbeat expired, and re-places
 * the groups of down hosts whose restart policy wants them running
 * (Always, OnFailure; a Never group stays, as its containers would not be
 * started again anyway): they move to other hosts, and the down host's
 * stream gets their release, which its agent carries out when it returns.
 * A scheduler calls this periodically.
 * Returns the number of changes (hosts marked down, groups re-placed or
 * tried) or BERTH_EIO. */
BERTH_EXPORT int berth_store_hosts_expire(berth_store_t *store, berth_store_expire_cb cb,
                                          void *data, berth_error_t *err);

/* Reads the group's instance view as its host's agent last wrote it: a
 * JSON object text (free with berth_free()) with members host, generation
 * (of the record it describes; compare with berth_store_group_read()'s),
 * digest, provisioningState, stateTime (ms since the epoch when
 * provisioningState became Succeeded or Failed; absent before), instanceView
 * {state, events}, ipAddress {ip, ports} and containers [{name,
 * instanceView {restartCount, currentState, previousState, events}}] in
 * ACI's shapes.  Returns 0, BERTH_ENOENT (none written yet), BERTH_EINVAL
 * or BERTH_EIO. */
BERTH_EXPORT int berth_store_view_read(berth_store_t *store, const char *key, char **json,
                                       berth_error_t *err);

/* Reads the group's usage metrics as its host's agent last wrote them
 * (berth_hostlink_metrics_put()): a JSON object text (free with
 * berth_free()) with members host, generation, interval (seconds between
 * samples) and samples, oldest first, at most BERTH_METRICS_SAMPLES_MAX,
 * each {time (ms since the epoch), rx, tx (the group's network bytes per
 * second received and sent over the interval before), containers [{name,
 * cpu (millicores used over the interval before), memory (working set,
 * bytes)}]}.  Returns 0, BERTH_ENOENT (none written: no sample yet, or a
 * runtime plugin without usage metrics), BERTH_EINVAL or BERTH_EIO. */
BERTH_EXPORT int berth_store_metrics_read(berth_store_t *store, const char *key, char **json,
                                          berth_error_t *err);

/* Asks the agent of the group's host for a container's output (stdout and
 * stderr): its last `tail` lines (0: all), each prefixed with its RFC 3339
 * time when `timestamps`, waiting at most `timeout_ms` for the answer.
 * `container` names a container or init container.  On success stores the
 * text in *out (free with berth_free()).  Returns 0, BERTH_ENOENT (no such
 * group, or the runtime holds no such container: err says which),
 * BERTH_EINVAL, or BERTH_EIO (Redis failing, or "AgentUnavailable": no
 * answer in time). */
BERTH_EXPORT int berth_store_container_logs(berth_store_t *store, const char *key,
                                            const char *container, uint32_t tail,
                                            bool timestamps, uint32_t timeout_ms, char **out,
                                            berth_error_t *err);

/* Asks the agent of the group's host to run argv[0..argc-1] in a running
 * container and waits (at most timeout_ms) for its output (stdout and
 * stderr, in *out; free with berth_free()) and exit code.  Returns
 * berth_store_container_logs()'s codes. */
BERTH_EXPORT int berth_store_container_exec(berth_store_t *store, const char *key,
                                            const char *container, const char *const *argv,
                                            size_t argc, uint32_t timeout_ms, char **out,
                                            int *exit_code, berth_error_t *err);

/* Called by berth_store_fsck() once per violation found, with a sentence
 * naming the host/group and what is wrong. */
typedef void (*berth_store_fsck_cb)(const char *violation, void *data);

/* Checks the cell in Redis against Berth's promises: no host over capacity
 * on any dimension, host usage equal to the sum of its groups, every group on
 * an existing host and in that host's group set and no set member without a
 * group, record schema versions known, and the log's sequence consistent.
 * Calls cb for each violation.  Returns the number of violations (>= 0) or
 * BERTH_EIO. */
BERTH_EXPORT int berth_store_fsck(berth_store_t *store, berth_store_fsck_cb cb,
                                  void *data, berth_error_t *err);

/* ------------------------------------------------------------------------ */
/* Effects: a caller's own records, written with a commit                   */
/* ------------------------------------------------------------------------ */
/*
 * A scheduler that keeps records of its own beside the cell (an API's
 * resource records, operation records, name claims) can have them written
 * in the same atomic step as a placement, release or restart: a list of
 * effects rides with the commit, and Redis applies all of it or none.
 * Guards among them (BERTH_EFFECT_EXPECT, BERTH_EFFECT_CLAIM) are checked
 * before anything is written, so a record that changed since the caller
 * read it refuses the whole commit.
 *
 * `key` names a key of the cell without its prefix: "resources" is
 * berth:{CELL}:resources, in the cell's hash slot.  Names the store itself
 * uses (meta, hosts, skus, groups, log, seq, views, agents, ngroups,
 * ngroupnotes, pools, poolseq, evictions, documents, and every name
 * starting with hostgroups:, assign:, alive:, images:, poolmembers:,
 * calls: or reply:) are refused: effects never touch the cell's own
 * state, but for two things a caller owns there: a group's eviction record
 * (BERTH_EFFECT_HDEL of "evictions", field the group's key) and the
 * document kept for a group that is not placed (BERTH_EFFECT_HDEL of
 * "documents"; berth_store_async_document_read()) may be dropped.
 */
#define BERTH_EFFECTS_MAX 32        /* effects one commit carries           */
#define BERTH_EFFECT_VALUE_MAX (64u << 20) /* bytes in one value            */
#define BERTH_EFFECT_TTL_MAX (10 * 366 * 86400LL) /* SET's seconds, at most  */
#define BERTH_EFFECT_DELTA_MAX (1LL << 40) /* |HINCRBY's n|, at most          */

typedef enum berth_effect_op {
    BERTH_EFFECT_HSET = 1,          /* HSET key field value                 */
    BERTH_EFFECT_HDEL,              /* HDEL key field                       */
    BERTH_EFFECT_ZADD,              /* ZADD key 0 field                     */
    BERTH_EFFECT_ZREM,              /* ZREM key field                       */
    BERTH_EFFECT_HINCRBY,           /* HINCRBY key field n; a field that
                                     * falls to 0 or below is deleted        */
    BERTH_EFFECT_SET,               /* SET key value, EX n when n > 0       */
    BERTH_EFFECT_DEL,               /* DEL key                              */
    BERTH_EFFECT_EXPECT,            /* guard: the hash field's SHA-1 is the
                                     * 40 hex digits of value, or the field
                                     * is absent when value is "" (or NULL) */
    BERTH_EFFECT_CLAIM,             /* guard and write: the hash field is
                                     * absent or equals value; then HSET    */
    BERTH_EFFECT_UNCLAIM            /* HDEL the field while it equals value */
} berth_effect_op_t;

typedef struct berth_effect {
    berth_effect_op_t op;
    const char *key;                /* within the cell (above)              */
    const char *field;              /* hash field or set member; NULL for
                                     * SET and DEL                          */
    const char *value;              /* NULL: ""                             */
    size_t value_len;               /* 0 with a non-NULL value: strlen()    */
    int64_t n;                      /* HINCRBY's delta, SET's seconds       */
} berth_effect_t;

/* A commit refused by an effect's guard fails with BERTH_ESTALE and error
 * name "RecordChanged" (EXPECT), or BERTH_EEXIST and "RecordTaken" (CLAIM),
 * with target "effects[I]", I the 0-based index of the effect that
 * refused.  Nothing was written; the store does not retry it.  Guards
 * see the cell as it was before the commit.  An effect Redis could not
 * carry out (a key of another type, a field that holds no integer) refuses
 * the whole commit before anything is written: BERTH_EINVAL, target
 * "effects[I]". */

/* ------------------------------------------------------------------------ */
/* The Redis store, asynchronous: commits from an event loop               */
/* ------------------------------------------------------------------------ */
/*
 * The same store for a scheduler daemon that runs a libevent loop: every
 * call after open queues its work and returns at once; the work runs on the
 * caller's event_base (the store never runs or owns the loop) and a callback
 * reports each outcome.  The semantics are berth_store_place()'s and
 * berth_store_release()'s: the engine holds only what the cell's log says,
 * a commit succeeds only once Redis has applied it, a conflict catches the
 * replica up and retries (max_retries, then BERTH_ENOSPC).
 *
 * Many calls may be in flight at once.  They are served in rounds, one
 * round in flight at a time: the placements queued meanwhile are chosen
 * together (so they see one another), and their commits are pipelined and
 * ordered by Redis.  A round ends after a release, so later placements see
 * the room it frees; two calls for one key go in separate rounds, in the
 * order they were made.  Each phase of a round is bounded by timeout_ms.
 *
 * A lost connection completes every commit in flight with BERTH_EIO (never
 * with success without Redis's reply: such a commit may or may not have
 * been applied, and the log will say); the next call reconnects.  A Cluster
 * MOVED reply is followed: the next round connects to the node named.
 * SIGPIPE is blocked around the store's socket reads and writes and never
 * reaches the caller.  Connecting to a host by name resolves it with
 * getaddrinfo(), which blocks: give Redis's address as an IP or a unix
 * socket.  Not thread-safe: use a store from its event_base's thread.
 */

struct event_base;
typedef struct berth_store_async berth_store_async_t;

/* Reports one call's outcome, from the event loop, exactly once.  `status`
 * is 0 or a negative BERTH_E* code; `placement` is where the group went for
 * a successful place, else NULL; `err` holds the detail when status is
 * negative, else NULL.  Both point at memory the store owns and frees after
 * the callback returns: copy what is needed.  `data` is the caller's, given
 * with the call.  The callback may queue more calls and may close the
 * store. */
typedef void (*berth_store_done_cb)(int status, const berth_placement_t *placement,
                                    const berth_error_t *err, void *data);

/* Opens an asynchronous store on `engine` (berth_store_open()'s rules and
 * errors: the engine must be empty, must outlive the store and must not be
 * changed except through it), attached to `base`.  This one call BLOCKS:
 * it connects, loads Berth's Redis Functions and the cell's snapshot
 * synchronously, so make it at start-up; nothing after it blocks.  On
 * success stores a new store in *out (close with berth_store_async_close()).
 * Returns 0, BERTH_EINVAL (options, no base), BERTH_EIO, BERTH_EEXIST or
 * BERTH_ENOMEM. */
BERTH_EXPORT int berth_store_async_open(const berth_store_options_t *opts,
                                        berth_engine_t *engine, struct event_base *base,
                                        berth_store_async_t **out, berth_error_t *err);

/* Queues a place or redeploy of the group under `key` (berth_store_place()'s
 * semantics; `key`, *request and `spec_json`, which may be NULL, are
 * copied).  Returns 0 when queued: cb is then called exactly once, from the
 * event loop, with 0 only after Redis applied the commit and the engine
 * holds it; else with the engine's errors (BERTH_ENOSPC, BERTH_ECONFLICT,
 * ...), BERTH_ENOSPC after max_retries conflicts, or BERTH_EIO.  A negative
 * return (BERTH_EINVAL for a key not of 1..255 bytes or a NULL request or
 * callback, BERTH_EIO "Closed" while closing, BERTH_ENOMEM) means nothing
 * was queued and cb is never called. */
BERTH_EXPORT int berth_store_async_place(berth_store_async_t *store, const char *key,
                                         const berth_request_t *request,
                                         const char *spec_json, berth_store_done_cb cb,
                                         void *data, berth_error_t *err);

/* Queues the release of the group under `key` (berth_store_release()'s
 * semantics), with berth_store_async_place()'s rules for the return value
 * and the callback; the callback's status is 0, BERTH_ENOENT or BERTH_EIO. */
BERTH_EXPORT int berth_store_async_release(berth_store_async_t *store, const char *key,
                                           berth_store_done_cb cb, void *data,
                                           berth_error_t *err);

/* berth_store_async_place() and berth_store_async_release() with effects
 * (above, "Effects"; effects[0..n-1] are copied, n at most
 * BERTH_EFFECTS_MAX): Redis writes them in the same atomic step as the
 * commit, and only when the commit applies; a guard that refuses fails the
 * call (BERTH_ESTALE or BERTH_EEXIST, not retried).  A Regular placement
 * that fits nowhere preempts Spot groups as berth_store_place() does, in a
 * round of its own (placement->evicted counts the victims).  Bad effects
 * are refused at once (BERTH_EINVAL, BERTH_ETOOBIG; nothing queued).
 * With effects, the commit is pinned to the generation the replica holds
 * for `key` when the call is made (0: not placed), which is the one a
 * caller building records reads with berth_store_async_generation() in the
 * same loop turn: when the group has moved on by the time of the commit
 * (another writer, a host's failure), the call fails with BERTH_ESTALE,
 * "RecordChanged", target "generation", and nothing is written; read and
 * build again.  Conflicts over a host's room are retried as usual. */
BERTH_EXPORT int berth_store_async_place_with(berth_store_async_t *store, const char *key,
                                              const berth_request_t *request,
                                              const char *spec_json,
                                              const berth_effect_t *effects, size_t n,
                                              berth_store_done_cb cb, void *data,
                                              berth_error_t *err);
/* berth_store_async_place_with() trying host `prefer_host` (may be NULL)
 * first for a group that is not placed: berth_store_place_prefer()'s
 * rule, for a stopped group started again. */
BERTH_EXPORT int berth_store_async_place_prefer_with(berth_store_async_t *store,
                                                     const char *key,
                                                     const berth_request_t *request,
                                                     const char *spec_json,
                                                     const char *prefer_host,
                                                     const berth_effect_t *effects, size_t n,
                                                     berth_store_done_cb cb, void *data,
                                                     berth_error_t *err);
/* berth_store_async_release() with effects (as above).  With flags
 * BERTH_RELEASE_KEEP_DOCUMENT the group's document stays in the cell
 * (berth_store_async_document_read() answers it, at generation 0) until
 * the group is placed again or an effect drops it: a stopped group its
 * owner may start again.  Other flags are refused (BERTH_EINVAL). */
#define BERTH_RELEASE_KEEP_DOCUMENT 1u
BERTH_EXPORT int berth_store_async_release_with(berth_store_async_t *store, const char *key,
                                                unsigned flags,
                                                const berth_effect_t *effects, size_t n,
                                                berth_store_done_cb cb, void *data,
                                                berth_error_t *err);

/* Queues berth_store_group_restart() of the placed group `key` (at the
 * generation the replica holds, retried when it changes), with effects.
 * The callback's status is 0, BERTH_ENOENT (not placed), a guard's
 * refusal or BERTH_EIO. */
BERTH_EXPORT int berth_store_async_restart(berth_store_async_t *store, const char *key,
                                           const berth_effect_t *effects, size_t n,
                                           berth_store_done_cb cb, void *data,
                                           berth_error_t *err);

/* Queues effects alone, in one atomic step that first checks the group
 * under `key`: at `generation` (0: not placed; -1: no check).  The
 * callback's status is 0, BERTH_ESTALE ("RecordChanged", target
 * "generation": the group is at another generation), a guard's refusal, or
 * BERTH_EIO.  Placements are unchanged. */
BERTH_EXPORT int berth_store_async_records(berth_store_async_t *store, const char *key,
                                           int64_t generation, const berth_effect_t *effects,
                                           size_t n, berth_store_done_cb cb, void *data,
                                           berth_error_t *err);

/* Queues a catch-up of the store's replica with the cell's log (hosts
 * that joined, commits of other schedulers); cb's status is 0 once the
 * engine holds everything the log said when the round began, or
 * BERTH_EIO.  Calls made in one loop turn share one catch-up with the
 * commits queued meanwhile. */
BERTH_EXPORT int berth_store_async_sync(berth_store_async_t *store, berth_store_done_cb cb,
                                        void *data, berth_error_t *err);

/* The generation of the group under `key` in the store's replica (as of
 * its last catch-up), in *generation.  Returns 0 or BERTH_ENOENT (not
 * placed, as far as the replica knows).  No I/O. */
BERTH_EXPORT int berth_store_async_generation(berth_store_async_t *store, const char *key,
                                              uint64_t *generation);

/* The engine the store binds, for reading placements (berth_engine_group_get(),
 * berth_engine_stats() ...) between calls; never change it. */
BERTH_EXPORT berth_engine_t *berth_store_async_engine(berth_store_async_t *store);

/* Closes the connection and frees the store (not its engine or base).
 * Every call still pending has its callback called once before this
 * returns: those whose outcome is known with it, the others with
 * BERTH_EIO and error name "Closed" (a commit already sent may or may not
 * have been applied).  Safe to call from inside one of the store's
 * callbacks: the store is then closed as soon as that callback returns.
 * Accepts NULL. */
BERTH_EXPORT void berth_store_async_close(berth_store_async_t *store);

/* ------------------------------------------------------------------------ */
/* The Redis store, asynchronous: reads and agent calls                    */
/* ------------------------------------------------------------------------ */
/*
 * The synchronous store's reads (instance views, group records, eviction
 * records, image sets) and agent calls (logs, exec) for the same daemon:
 * each call queues its work and returns at once, and its callback runs
 * later from the event loop, exactly once -- never from inside the call
 * that queued it.  Outcomes, error codes, names and messages are those of
 * the synchronous counterpart named with each call.  Any number of calls
 * may be in flight; they do not wait for the store's commits, nor for one
 * another: a call waiting for an agent holds no connection.
 *
 * They use connections of their own, opened on first use: one for
 * commands, and one subscribed to the cell's channel on which agents
 * announce their answers (berth:{CELL}:replies), so that an agent call
 * never blocks a connection the way berth_store_container_logs()'s BLPOP
 * does.  A read is bounded by the store's timeout_ms, an agent call's wait
 * for its answer by its own timeout_ms; past it the call completes with
 * BERTH_EIO, "RedisUnavailable" for Redis, "AgentUnavailable" for the
 * agent.  A lost connection completes the calls that had a command in
 * flight on it with BERTH_EIO, and a call waiting for an answer whose
 * subscription is lost and cannot be made again; the next call
 * reconnects.  A Cluster MOVED reply is followed (once per command, as the
 * synchronous store does).  SIGPIPE never reaches the caller.
 *
 * Every call below returns 0 when its work was queued (its callback is
 * then called exactly once) or a negative code when nothing was queued
 * and the callback is never called: BERTH_EINVAL (a NULL store or
 * callback, or an argument the synchronous call refuses; err names it),
 * BERTH_EIO "Closed" while the store is closing, or BERTH_ENOMEM.  Closing
 * the store (berth_store_async_close()) calls the callback of every call
 * still pending before it returns: with its outcome when it is known, else
 * with BERTH_EIO and error name "Closed".  A callback may queue more calls
 * and may close the store; the store is then gone when
 * berth_store_async_close() returns, so that callback must not use it
 * afterwards.
 *
 * Callbacks: `status` is 0 or a negative BERTH_E* code; `err` holds the
 * detail when status is negative, else it is NULL; every pointer handed to
 * a callback points at memory the store owns and frees once the callback
 * returns (copy what is needed); `data` is the caller's, given with the
 * call.  On failure the other arguments are NULL or 0.
 */

/* A text the store read: `text` (len bytes, NUL-terminated) or NULL. */
typedef void (*berth_store_read_cb)(int status, const char *text, size_t len,
                                    const berth_error_t *err, void *data);

/* A group's record: its document (NULL when the record holds none),
 * generation and host. */
typedef void (*berth_store_group_cb)(int status, const char *spec, uint64_t generation,
                                     const char *host, const berth_error_t *err, void *data);

/* An eviction record (berth_store_eviction_read()'s *out). */
typedef void (*berth_store_eviction_cb)(int status, const berth_eviction_t *eviction,
                                        const berth_error_t *err, void *data);

/* An agent's answer: the output (len bytes, NUL-terminated, which need not
 * be UTF-8 and may hold NUL bytes) and, for exec, the command's exit code
 * (0 for logs). */
typedef void (*berth_store_call_cb)(int status, const char *output, size_t len, int exit_code,
                                    const berth_error_t *err, void *data);

/* A list of image references: `n` strings (images NULL when n is 0). */
typedef void (*berth_store_images_cb)(int status, const char *const *images, size_t n,
                                      const berth_error_t *err, void *data);

/* Reads the instance view of the group under `key` (`key` is copied), as
 * berth_store_view_read() does: cb gets the view's JSON text, or
 * BERTH_ENOENT (none written yet) or BERTH_EIO.  A key not of 1 to 255
 * bytes is refused at once with BERTH_EINVAL. */
BERTH_EXPORT int berth_store_async_view_read(berth_store_async_t *store, const char *key,
                                             berth_store_read_cb cb, void *data,
                                             berth_error_t *err);

/* Reads the usage metrics of the group under `key` (`key` is copied), as
 * berth_store_metrics_read() does: cb gets the JSON text, or BERTH_ENOENT
 * (none written) or BERTH_EIO.  A key not of 1 to 255 bytes is refused at
 * once with BERTH_EINVAL. */
BERTH_EXPORT int berth_store_async_metrics_read(berth_store_async_t *store, const char *key,
                                                berth_store_read_cb cb, void *data,
                                                berth_error_t *err);

/* Reads the record of the group under `key` from Redis (not the replica),
 * as berth_store_group_read() does, with its host: cb gets the document,
 * generation and host, or BERTH_ENOENT (no such group in the cell) or
 * BERTH_EIO (Redis failing, or a record that does not decode).  A key not
 * of 1 to 255 bytes is refused at once with BERTH_EINVAL (where
 * berth_store_group_read() answers an empty key with BERTH_ENOENT). */
BERTH_EXPORT int berth_store_async_group_read(berth_store_async_t *store, const char *key,
                                              berth_store_group_cb cb, void *data,
                                              berth_error_t *err);

/* Reads the document of the group under `key`, placed or not: the one its
 * record holds (cb gets it with the group's generation and host), else the
 * one the cell keeps for it (a release with BERTH_RELEASE_KEEP_DOCUMENT,
 * or an eviction: generation 0, host NULL).  BERTH_ENOENT when there is
 * neither (or a record without a document), BERTH_EIO as for
 * berth_store_async_group_read(); a bad key is refused at once with
 * BERTH_EINVAL.  This is where a scheduler that keeps no copy of its own
 * reads a group's document. */
BERTH_EXPORT int berth_store_async_document_read(berth_store_async_t *store, const char *key,
                                                 berth_store_group_cb cb, void *data,
                                                 berth_error_t *err);

/* Reads the eviction record of the group under `key`, as
 * berth_store_eviction_read() does: cb gets the record, or BERTH_ENOENT,
 * BERTH_EINVAL ("CorruptRecord": a malformed record) or BERTH_EIO.  A bad
 * key is refused at once with BERTH_EINVAL. */
BERTH_EXPORT int berth_store_async_eviction_read(berth_store_async_t *store, const char *key,
                                                 berth_store_eviction_cb cb, void *data,
                                                 berth_error_t *err);

/* Asks the agent of the group's host for a container's output, as
 * berth_store_container_logs() does (the host is read from the group's
 * record in Redis).  cb gets the output, or BERTH_ENOENT (no such group,
 * or the runtime holds no such container), BERTH_EIO ("RedisUnavailable",
 * or "AgentUnavailable": no answer within timeout_ms) or the agent's
 * failure.  A bad key or container name, or timeout_ms 0, is refused at
 * once with BERTH_EINVAL. */
BERTH_EXPORT int berth_store_async_container_logs(berth_store_async_t *store, const char *key,
                                                  const char *container, uint32_t tail,
                                                  bool timestamps, uint32_t timeout_ms,
                                                  berth_store_call_cb cb, void *data,
                                                  berth_error_t *err);

/* Asks the agent of the group's host to run argv[0..argc-1] (copied) in a
 * running container, as berth_store_container_exec() does; cb gets the
 * output and exit code, or berth_store_async_container_logs()'s codes.
 * No command, or a word that is NULL or not UTF-8, is refused at once
 * with BERTH_EINVAL "InvalidCommand" (before the group is looked up, where
 * the synchronous call looks the group up first). */
BERTH_EXPORT int berth_store_async_container_exec(berth_store_async_t *store, const char *key,
                                                  const char *container,
                                                  const char *const *argv, size_t argc,
                                                  uint32_t timeout_ms, berth_store_call_cb cb,
                                                  void *data, berth_error_t *err);

/* ---- interactive sessions (exec with stdin), the caller's side ----
 *
 * A session is a process in a running container that its caller talks to
 * while it runs: input in, output out, the terminal's size, the exit
 * status at the end.  The bytes go through the cell's Redis: the caller
 * puts the session on the host's call stream (op "session"), the agent
 * runs it through its plugin on a thread of its own
 * (berth_hostlink_session_open()) and pushes the output to a list the
 * caller pops when the agent announces it; the caller pushes input to a
 * second list the agent waits on.  Each side tells the other it is still
 * there every BERTH_SESSION_KEEPALIVE_MS; a side that hears nothing for
 * BERTH_SESSION_SILENCE_MS ends the session.  Nothing of a session is
 * durable: both lists expire once neither side touches them. */
#define BERTH_SESSION_KEEPALIVE_MS 10000u
#define BERTH_SESSION_SILENCE_MS 30000u
#define BERTH_SESSION_CHUNK_MAX (64u * 1024u) /* one input or output chunk */

typedef struct berth_store_async_session berth_store_async_session_t;

/* What a session reports: output (bytes, len), or its end: status 0 with
 * the process's exit code (-1 when it had to be ended), or a failure
 * (err: AgentUnavailable, ContainerNotRunning, ...).  After the end the
 * session reports nothing more; the caller still closes it. */
typedef void (*berth_store_session_cb)(berth_store_async_session_t *session, bool ended,
                                       const char *bytes, size_t len, int status,
                                       int exit_code, const berth_error_t *err, void *data);

/* Opens a session running argv[0..argc-1] (copied) in running container
 * `container` of group `key`, under a terminal of opts' size when
 * opts->tty.  The agent must start it within start_ms (else the session
 * ends with "AgentUnavailable").  cb runs from the store's loop, never
 * from inside this call.  On success stores the session in *out (close
 * with berth_store_async_session_close()).  Bad arguments are refused at
 * once (berth_store_async_container_exec()'s rules). */
BERTH_EXPORT int berth_store_async_session_open(berth_store_async_t *store, const char *key,
                                                const char *container,
                                                const char *const *argv, size_t argc,
                                                bool tty, uint16_t rows, uint16_t cols,
                                                uint32_t start_ms, berth_store_session_cb cb,
                                                void *data, berth_store_async_session_t **out,
                                                berth_error_t *err);

/* Sends input bytes (len at most BERTH_SESSION_CHUNK_MAX; len 0: end of
 * input, stdin closed).  Returns 0, BERTH_EINVAL (too long, or the session
 * ended) or BERTH_ENOMEM.  Input is delivered in order. */
BERTH_EXPORT int berth_store_async_session_input(berth_store_async_session_t *session,
                                                 const char *bytes, size_t len,
                                                 berth_error_t *err);

/* Sends a new terminal size.  Returns as berth_store_async_session_input(). */
BERTH_EXPORT int berth_store_async_session_resize(berth_store_async_session_t *session,
                                                  uint16_t rows, uint16_t cols,
                                                  berth_error_t *err);

/* Input sent and not yet taken by Redis: a caller stops reading its own
 * client above a bound of its choosing. */
BERTH_EXPORT size_t berth_store_async_session_backlog(const berth_store_async_session_t *session);

/* Holds (true) or resumes (false) the reading of output: while held the
 * agent's list fills and the agent stops reading the process (flow
 * control for a slow client). */
BERTH_EXPORT void berth_store_async_session_hold(berth_store_async_session_t *session,
                                                 bool hold);

/* Closes the session: the agent is told to end the process (when it has
 * not ended), cb is never called again, the session is freed once no
 * command of it is out.  May be called from inside cb.  Accepts NULL. */
BERTH_EXPORT void berth_store_async_session_close(berth_store_async_session_t *session);

/* The union of the images every host of the store's engine (the replica
 * as it is when the work starts) reports in the cell (the sets
 * berth_hostlink_images_put() writes), sorted by strcmp() and each once;
 * members that are not image references (berth_image_hash() 0) are left
 * out.  Read in slices of at most 256 hosts per round trip, each bounded
 * by timeout_ms.  cb gets the list, or BERTH_EIO or BERTH_ENOMEM. */
BERTH_EXPORT int berth_store_async_images_list(berth_store_async_t *store,
                                               berth_store_images_cb cb, void *data,
                                               berth_error_t *err);

/* berth_store_images_sync()'s work without blocking: every host's image
 * set from the cell into the store's engine, in slices of at most 256
 * hosts per round trip (each bounded by timeout_ms), the engine's hosts
 * taken when the work starts; hosts removed meanwhile are skipped.  cb's
 * text is NULL; its status is 0, BERTH_EIO (hosts read before the failure
 * keep their new images, the others their old ones) or BERTH_ENOMEM. */
BERTH_EXPORT int berth_store_async_images_sync(berth_store_async_t *store,
                                               berth_store_read_cb cb, void *data,
                                               berth_error_t *err);

/* ------------------------------------------------------------------------ */
/* Standby pools                                                            */
/* ------------------------------------------------------------------------ */
/*
 * A standby pool keeps `size` groups of one template placed and running
 * (images pulled, containers started) so that a create matching the
 * template takes one of them over instead of being placed and started
 * anew.  Pools live in the cell (berth:{CELL}:pools, store.c); their
 * members are ordinary groups under reserved keys "pool:NAME:ID" (ID never
 * used twice in a cell), placed by berth_store_pool_reconcile() and
 * carried out by the agents like any group.  A claim moves a ready member's record
 * to the new group's key on the same host in one atomic step, and the
 * host's agent adopts the member's runtime group for the new key without
 * recreating it.  docs/standby-pools.md describes the whole.
 *
 * A create matches a pool when their template digests are equal: a digest
 * of the document's canonical JSON (berth_group_to_json(), keys sorted)
 * without the members that name a group rather than describe what runs:
 * top-level name, location, tags, id and type, and properties.ipAddress's
 * dnsNameLabel, fqdn, ip and autoGeneratedDomainNameLabelScope, and every
 * container's configMap: the claiming create brings its own config maps
 * and the claimed group runs the create's document, maps and all, the
 * agent delivering them to the running containers.  Everything
 * else (containers, init containers, images, commands, environment,
 * resources, ports and the address type, volumes, OS, restart policy, SKU,
 * priority, GPUs, zones, credentials, DNS config, identity ...) must be
 * equal.
 */

#define BERTH_POOL_NAME_MAX 200     /* bytes in a pool's name               */
#define BERTH_POOL_SIZE_MAX 2000    /* members one pool keeps               */
#define BERTH_POOL_ANNOTATION_MAX 65536 /* bytes of a pool's annotation     */
#define BERTH_POOL_ZONES_MAX 16       /* zones one pool spreads across        */

/* Computes the template digest of `group` (above) into *out.  Two
 * documents match one another exactly when their digests are equal
 * (barring 64-bit collisions; claims compare the documents too).  Returns
 * 0 or BERTH_ENOMEM. */
BERTH_EXPORT int berth_group_template_digest(const berth_group_t *group, uint64_t *out);

/* What berth_store_pool_get() reports of a pool. */
typedef struct berth_pool_info {
    uint32_t size;                  /* members the pool keeps ready         */
    uint32_t members;               /* members placed, of the current template */
    uint32_t ready;                 /* of those, members whose agent reports
                                     * them Succeeded: claimable now        */
    uint64_t digest;                /* the template digest                  */
} berth_pool_info_t;

/* Creates or replaces the pool `name` (1..BERTH_POOL_NAME_MAX bytes of
 * printable ASCII other than ':' and space) keeping `size` (0 ..
 * BERTH_POOL_SIZE_MAX) members of the ACI document `template_json` (`len`
 * bytes), which is parsed and validated against the store's engine like a
 * create (errors name their JSON path, prefixed with "template.").  Only
 * the pool record is written: members are placed, replaced (a changed
 * template) or released (a smaller size) by berth_store_pool_reconcile().
 * A failing call changes nothing.  Returns 0, BERTH_EINVAL, BERTH_ETOOBIG,
 * BERTH_ENOMEM or BERTH_EIO. */
BERTH_EXPORT int berth_store_pool_put(berth_store_t *store, const char *name,
                                      const char *template_json, size_t len, uint32_t size,
                                      berth_error_t *err);

/* berth_store_pool_put() that also keeps `annotation` (NULL: none), the
 * caller's own JSON object of at most BERTH_POOL_ANNOTATION_MAX bytes, in
 * the pool record, written in the same step: berthd keeps a pool's ARM
 * resource there.  The library never interprets it.  A call without one
 * (berth_store_pool_put()) drops the one kept.  Returns as
 * berth_store_pool_put(), BERTH_EINVAL also for an annotation that is no
 * such object. */
BERTH_EXPORT int berth_store_pool_put_annotated(berth_store_t *store, const char *name,
                                                const char *template_json, size_t len,
                                                uint32_t size, const char *annotation,
                                                berth_error_t *err);

/* What a pool should be, for berth_store_pool_put_spec().  Strings are
 * borrowed for the call. */
typedef struct berth_pool_spec {
    const char *name;               /* as berth_store_pool_put() takes it   */
    const char *template_json;      /* the members' ACI document            */
    size_t len;                     /* its bytes                            */
    uint32_t size;                  /* members kept ready                   */
    const char *const *zones;       /* zones the members spread across: each
                                     * member's document names one of them
                                     * (zones [z], whatever the template says);
                                     * a new member goes to the zone holding
                                     * the fewest that still has room        */
    size_t nzones;                  /* 0..BERTH_POOL_ZONES_MAX; 0: any host  */
    const char *annotation;         /* as berth_store_pool_put_annotated()  */
} berth_pool_spec_t;

/* berth_store_pool_put_annotated() with zones (above).  A zone no host of
 * the cell has is no error: its members find no room, and each
 * reconciliation step tries again.  Returns as berth_store_pool_put(),
 * BERTH_EINVAL also for a zone that is empty, too long, unprintable or
 * named twice (target "zones[I]"). */
BERTH_EXPORT int berth_store_pool_put_spec(berth_store_t *store, const berth_pool_spec_t *spec,
                                           berth_error_t *err);

/* One zone of a pool, as berth_store_pool_zones_get() reports it. */
typedef struct berth_pool_zone_info {
    char zone[BERTH_NAME_MAX + 1];
    uint32_t members;               /* members placed there, current template */
    uint32_t ready;                 /* of those, claimable now              */
} berth_pool_zone_info_t;

/* Counts pool `name`'s members per zone: out[0..min(*n, cap)-1] in the
 * pool's zone order, *n the pool's number of zones (0 for a pool without
 * zones).  Returns 0, BERTH_ENOENT, BERTH_EINVAL or BERTH_EIO. */
BERTH_EXPORT int berth_store_pool_zones_get(berth_store_t *store, const char *name,
                                            berth_pool_zone_info_t *out, size_t cap, size_t *n,
                                            berth_error_t *err);

/* berth_store_pool_get() that also reads the pool's annotation into
 * *annotation (may be NULL; NULL when it keeps none; free with
 * berth_free()). */
BERTH_EXPORT int berth_store_pool_get_annotated(berth_store_t *store, const char *name,
                                                berth_pool_info_t *info, char **template_json,
                                                char **annotation, berth_error_t *err);

/* Reads pool `name`: *info (may be NULL) and its template document
 * (may be NULL; free with berth_free()).  Returns 0, BERTH_ENOENT,
 * BERTH_EINVAL (a bad name) or BERTH_EIO. */
BERTH_EXPORT int berth_store_pool_get(berth_store_t *store, const char *name,
                                      berth_pool_info_t *info, char **template_json,
                                      berth_error_t *err);

/* Deletes pool `name` and releases every member it still has (their
 * agents remove them).  Members already claimed are ordinary groups and
 * stay.  Returns 0, BERTH_ENOENT, BERTH_EINVAL or BERTH_EIO (the pool
 * record is removed last, so a failed call can be repeated). */
BERTH_EXPORT int berth_store_pool_delete(berth_store_t *store, const char *name,
                                         berth_error_t *err);

/* Called by berth_store_pool_list() once per pool name. */
typedef void (*berth_store_pool_cb)(const char *name, void *data);

/* Reports the name of every pool of the cell, in byte order.  Returns the
 * number of pools, BERTH_ENOMEM or BERTH_EIO. */
BERTH_EXPORT int berth_store_pool_list(berth_store_t *store, berth_store_pool_cb cb, void *data,
                                       berth_error_t *err);

/* One reconciliation step over every pool of the cell: adopts into each
 * pool's member set the groups under its member prefix "pool:NAME:" that
 * the set misses (left by schedulers reconciling at once) and releases
 * those of pools without a record, releases members of an older template,
 * members whose agent reports them Failed and members past the pool's
 * size (those not ready first), then places new members until the pool
 * has its size.  A member that fits on no host now is left for a later
 * step.  *changes (may be NULL) receives the number of members adopted,
 * placed and released.  Returns 0 or
 * BERTH_EIO (Redis failing: some changes may have been made, each one
 * whole). */
BERTH_EXPORT int berth_store_pool_reconcile(berth_store_t *store, uint32_t *changes,
                                            berth_error_t *err);

/* Creates the group under `key` (which must not exist) by claiming a
 * ready member of a pool whose template digest equals that of the
 * document `spec_json` (the group's canonical document, as
 * berth_store_place() takes it; the documents must also be equal once the
 * excluded members are dropped), with `request` its request.  Only pools
 * whose name begins with `pool_prefix` are looked at (NULL or "": every
 * pool of the cell), so that a tenant's creates claim only its own pools
 * (berthd passes "<subscription>/").  The member's
 * record becomes the group's record on the member's host, at generation 1,
 * naming the member's runtime group, which the host's agent adopts; the
 * member's key vanishes; the pool is short one member until the next
 * berth_store_pool_reconcile().  *out (may be NULL) is filled as by
 * berth_store_place() (kind BERTH_PLACED_NEW).  Returns 0; BERTH_ENOENT
 * when no pool matches or none of its members is ready (the caller then
 * places the group anew; nothing changed); BERTH_EEXIST when `key`
 * exists; BERTH_EINVAL (bad key or document) or BERTH_EIO. */
BERTH_EXPORT int berth_store_pool_claim(berth_store_t *store, const char *key,
                                        const berth_request_t *request, const char *spec_json,
                                        const char *pool_prefix, berth_placement_t *out,
                                        berth_error_t *err);

/* berth_store_pool_claim() with effects (above, "Effects"; effects[0..n-1]
 * are checked and copied first, n at most BERTH_EFFECTS_MAX; n 0 is
 * berth_store_pool_claim()): Redis writes them in the same atomic step as
 * the claim, and only when a member is claimed; when none is (BERTH_ENOENT
 * and every other failure) nothing of them is written.  The guards are
 * checked before the member is: a guard that refuses fails the call with
 * BERTH_ESTALE ("RecordChanged") or BERTH_EEXIST ("RecordTaken"), target
 * "effects[I]", and an effect Redis could not carry out with BERTH_EINVAL,
 * target "effects[I]", as the asynchronous store reports them; nothing is
 * changed and no other member is tried.  Bad effects are refused before
 * any I/O (BERTH_EINVAL, BERTH_ETOOBIG). */
BERTH_EXPORT int berth_store_pool_claim_with(berth_store_t *store, const char *key,
                                             const berth_request_t *request,
                                             const char *spec_json, const char *pool_prefix,
                                             const berth_effect_t *effects, size_t n,
                                             berth_placement_t *out, berth_error_t *err);

/* berth_store_pool_claim_with() from the pool named `pool` alone (its
 * exact name, not a prefix): the template digests must still match.
 * BERTH_ENOENT when that pool does not exist, does not match or has no
 * ready member; BERTH_EINVAL for a bad pool name. */
BERTH_EXPORT int berth_store_pool_claim_from(berth_store_t *store, const char *key,
                                             const berth_request_t *request,
                                             const char *spec_json, const char *pool,
                                             const berth_effect_t *effects, size_t n,
                                             berth_placement_t *out, berth_error_t *err);

/* ------------------------------------------------------------------------ */
/* The host side: what a host's agent reads from and writes to its cell    */
/* ------------------------------------------------------------------------ */
/*
 * A host link is one agent's connection to its cell, for one host.  The
 * cell tells the host what to run through the host's assignment stream
 * (berth:{CELL}:assign:HOST: place, release and restart assignments, each
 * naming a group key and generation; a batch of placements writes its
 * assignments for one host as one entry), read through the consumer group
 * "agents" so that an entry read but not acknowledged is read again after a
 * crash of the agent: acknowledge an assignment only once its work is done
 * (the entry goes once all of its assignments are acknowledged).  The work is
 * always "make the host match the group's record": the record, not the
 * entry, says what should run (berth_hostlink_group()).  The agent writes
 * back the group's instance view and keeps its host alive with a
 * heartbeat that expires unless renewed.
 */

typedef struct berth_hostlink berth_hostlink_t;

typedef enum berth_assign_op {
    BERTH_ASSIGN_PLACE = 1,         /* the group is (re)placed here         */
    BERTH_ASSIGN_RELEASE,           /* the group left this host             */
    BERTH_ASSIGN_RESTART            /* restart every container in place     */
} berth_assign_op_t;

#define BERTH_ASSIGNMENT_ID_MAX 47
#define BERTH_GROUP_KEY_MAX 255

/* One assignment of the host's assignment stream. */
typedef struct berth_assignment {
    char id[BERTH_ASSIGNMENT_ID_MAX + 1];   /* its stream entry's id        */
    berth_assign_op_t op;
    char key[BERTH_GROUP_KEY_MAX + 1];
    uint64_t generation;
} berth_assignment_t;

/* Connects to the cell (berth_store_open()'s options; no engine, no
 * snapshot) for host `host` (a valid host name) and creates the consumer
 * group on the host's assignment stream when it is missing.  On success
 * stores the link in *out (close with berth_hostlink_close()).  Returns 0,
 * BERTH_EINVAL, BERTH_EIO or BERTH_ENOMEM. */
BERTH_EXPORT int berth_hostlink_open(const berth_store_options_t *opts, const char *host,
                                     berth_hostlink_t **out, berth_error_t *err);

/* Closes the connection and frees the link.  Accepts NULL. */
BERTH_EXPORT void berth_hostlink_close(berth_hostlink_t *link);

/* Marks the host alive for `ttl_ms` milliseconds (berth:{CELL}:alive:HOST)
 * and, from the first heartbeat on, subject to berth_store_hosts_expire();
 * a host that was marked down because its heartbeat expired is ready again.
 * Returns 0, BERTH_EINVAL (ttl 0) or BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_heartbeat(berth_hostlink_t *link, uint32_t ttl_ms,
                                          berth_error_t *err);

/* Reads the next assignment: first those of every entry this host read
 * before and never acknowledged whole (after a restart of the agent), then
 * new ones, in stream order, waiting at most `block_ms` (0: do not wait)
 * for one.  Returns 1 with *out filled, 0 when none came, BERTH_ENOMEM or
 * BERTH_EIO.  Entries that are not well-formed are acknowledged and
 * skipped. */
BERTH_EXPORT int berth_hostlink_next(berth_hostlink_t *link, uint32_t block_ms,
                                     berth_assignment_t *out, berth_error_t *err);

/* Acknowledges an assignment whose work is done; its entry is
 * acknowledged and dropped from the stream once each of its assignments
 * is.  Returns 0 or BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_ack(berth_hostlink_t *link, const berth_assignment_t *a,
                                    berth_error_t *err);

/* Reads the group's record: its document (free with berth_free(); NULL
 * when the record holds none), generation and host (BERTH_NAME_MAX + 1
 * bytes); each output may be NULL.  Returns 0, BERTH_ENOENT (no such group
 * in the cell) or BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_group(berth_hostlink_t *link, const char *key,
                                      char **spec_json, uint64_t *generation, char *host,
                                      berth_error_t *err);

/* Reads which runtime group carries the group under `key`: a group
 * claimed from a standby pool runs as its former member's runtime group,
 * whose key (`cap` bytes, at least BERTH_GROUP_KEY_MAX + 1), generation
 * and document digest (berth_runtime_digest()) are stored in *runtime,
 * *generation and *digest (each may be NULL).  Returns 1 when the record
 * names such a runtime group, 0 when the group runs as itself (the
 * outputs are then "" and 0), BERTH_ENOENT, BERTH_EINVAL or BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_group_runtime(berth_hostlink_t *link, const char *key,
                                              char *runtime, size_t cap,
                                              uint64_t *generation, uint64_t *digest,
                                              berth_error_t *err);

/* Called by berth_hostlink_groups() once per group key. */
typedef void (*berth_hostlink_key_cb)(const char *key, void *data);

/* Reports every group the cell places on this host.  Returns 0 or
 * BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_groups(berth_hostlink_t *link, berth_hostlink_key_cb cb,
                                       void *data, berth_error_t *err);

/* Writes the group's instance view (a JSON object text; see
 * berth_store_view_read()) for the record at `generation` on this host.
 * Returns 0, BERTH_ENOENT when the group is no longer at that generation
 * on this host (nothing is written), BERTH_EINVAL or BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_view_put(berth_hostlink_t *link, const char *key,
                                         uint64_t generation, const char *view_json,
                                         berth_error_t *err);

/* Reads the group's instance view (berth_store_view_read()'s rules). */
BERTH_EXPORT int berth_hostlink_view_get(berth_hostlink_t *link, const char *key,
                                         char **view_json, berth_error_t *err);

/* The most usage samples a group's metrics text should carry. */
#define BERTH_METRICS_SAMPLES_MAX 60

/* Writes the group's usage metrics (berth:{CELL}:metrics, a JSON object
 * text: see berth_store_metrics_read()) for the record at `generation` on
 * this host, replacing what was there: the caller keeps the window of
 * samples (at most BERTH_METRICS_SAMPLES_MAX) and writes it whole.
 * Returns 0, BERTH_ENOENT when the group is no longer at that generation
 * on this host (nothing is written), BERTH_EINVAL or BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_metrics_put(berth_hostlink_t *link, const char *key,
                                            uint64_t generation, const char *metrics_json,
                                            berth_error_t *err);

/* Reads the group's usage metrics (berth_store_metrics_read()'s rules):
 * what this host's agent wrote before it restarted, to go on from. */
BERTH_EXPORT int berth_hostlink_metrics_get(berth_hostlink_t *link, const char *key,
                                            char **metrics_json, berth_error_t *err);

/* Drops the usage metrics this host wrote for a group that is no longer on
 * it.  Returns 0 (also when there were none) or BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_metrics_delete(berth_hostlink_t *link, const char *key,
                                               berth_error_t *err);

/* The IPv4 CIDR of the cell's subnet `id` (compared without case), as
 * the cell's table holds it (berth_store_subnets_put()), into cidr (cap
 * bytes, at least 19): for the runtime network of a group in that subnet.
 * Returns 0, BERTH_ENOENT (no such subnet: *err says which), BERTH_EINVAL
 * or BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_subnet_cidr(berth_hostlink_t *link, const char *id,
                                            char *cidr, size_t cap, berth_error_t *err);

/* Replaces the set of images the host holds (berth:{CELL}:images:HOST),
 * as its runtime reports them, for placement by image locality.  Returns 0,
 * BERTH_EINVAL or BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_images_put(berth_hostlink_t *link, const char *const *images,
                                           size_t n, berth_error_t *err);

/* A request for this host's agent from a scheduler
 * (berth_store_container_logs() / _exec()).  Free with berth_call_free(). */
typedef enum berth_call_op {
    BERTH_CALL_LOGS = 1,
    BERTH_CALL_EXEC,
    BERTH_CALL_SESSION              /* berth_hostlink_session_open()        */
} berth_call_op_t;

typedef struct berth_call {
    berth_call_op_t op;
    char key[BERTH_GROUP_KEY_MAX + 1];
    char container[BERTH_NAME_MAX + 1];
    uint32_t tail;                  /* logs                                 */
    bool timestamps;                /* logs                                 */
    char **argv;                    /* exec: argc words                     */
    size_t argc;
    uint32_t timeout_ms;            /* how long its caller waits            */
    char reply[160];                /* where the answer goes (internal)     */
    bool tty;                       /* session: under a terminal            */
    uint16_t rows, cols;            /* session: the terminal's size         */
} berth_call_t;

/* Reads the next call addressed to this host, without waiting: returns 1
 * with a new call in *out, 0 when there is none, or BERTH_EIO.  Calls whose
 * callers had given up before the link opened are skipped. */
BERTH_EXPORT int berth_hostlink_call_next(berth_hostlink_t *link, berth_call_t **out,
                                          berth_error_t *err);

/* Answers a call: status 0 with `output` (len bytes) and, for exec, the
 * exit code; or a failure described by *error.  Returns 0 or BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_call_reply(berth_hostlink_t *link, const berth_call_t *call,
                                           const char *output, size_t len, int exit_code,
                                           const berth_error_t *error, berth_error_t *err);

/* Frees a call.  Accepts NULL. */
BERTH_EXPORT void berth_call_free(berth_call_t *call);

/* ---- interactive sessions, the agent's side ---- */

typedef struct berth_session_link berth_session_link_t;

typedef enum berth_session_msg_kind {
    BERTH_SESSION_INPUT = 1,        /* bytes for the process's stdin        */
    BERTH_SESSION_EOF,              /* end of input: close stdin            */
    BERTH_SESSION_RESIZE,           /* the terminal's new size              */
    BERTH_SESSION_END               /* the caller left or went silent: end it */
} berth_session_msg_kind_t;

typedef struct berth_session_msg {
    berth_session_msg_kind_t kind;
    const char *bytes;              /* INPUT: valid until the next call     */
    size_t len;
    uint16_t rows, cols;            /* RESIZE                               */
} berth_session_msg_t;

/* Opens the agent's end of the session `call` asks for (op
 * BERTH_CALL_SESSION): two connections of its own to the cell's Redis, so
 * that it runs on a thread of its own beside the link.  Returns 0 with
 * *out (close with berth_session_link_close()), BERTH_EINVAL (not a
 * session call), BERTH_EIO or BERTH_ENOMEM. */
BERTH_EXPORT int berth_hostlink_session_open(berth_hostlink_t *link, const berth_call_t *call,
                                             berth_session_link_t **out, berth_error_t *err);

/* The descriptor that polls readable when the caller may have said
 * something (call berth_session_link_next() then). */
BERTH_EXPORT int berth_session_link_fd(const berth_session_link_t *s);

/* Takes what the caller said, without blocking (after the descriptor
 * polled readable, or at any time): 1 with *msg, 0 when nothing is there
 * yet (END comes when the caller has been silent for
 * BERTH_SESSION_SILENCE_MS), or BERTH_EIO. */
BERTH_EXPORT int berth_session_link_next(berth_session_link_t *s, berth_session_msg_t *msg,
                                         berth_error_t *err);

/* Sends output (len at most BERTH_SESSION_CHUNK_MAX); *backlog (may be
 * NULL) gets the chunks the caller has not taken yet.  Returns 0 or
 * BERTH_EIO. */
BERTH_EXPORT int berth_session_link_output(berth_session_link_t *s, const char *bytes,
                                           size_t len, size_t *backlog, berth_error_t *err);

/* The chunks the caller has not taken yet; BERTH_EIO on failure. */
BERTH_EXPORT int berth_session_link_backlog(berth_session_link_t *s, size_t *backlog,
                                            berth_error_t *err);

/* Tells the caller the session is alive (started, or still there): the
 * first one ends its wait for the start.  Send one at least every
 * BERTH_SESSION_KEEPALIVE_MS.  Returns 0 or BERTH_EIO. */
BERTH_EXPORT int berth_session_link_alive(berth_session_link_t *s, berth_error_t *err);

/* Ends the session for the caller: the exit code, or the failure *error.
 * Returns 0 or BERTH_EIO. */
BERTH_EXPORT int berth_session_link_end(berth_session_link_t *s, int exit_code,
                                        const berth_error_t *error, berth_error_t *err);

/* Drops the input list and closes both connections.  Accepts NULL. */
BERTH_EXPORT void berth_session_link_close(berth_session_link_t *s);

/* Drops the view this host wrote for a group that is no longer on it.
 * Returns 0 (also when there was none) or BERTH_EIO. */
BERTH_EXPORT int berth_hostlink_view_delete(berth_hostlink_t *link, const char *key,
                                            berth_error_t *err);

/* ------------------------------------------------------------------------ */
/* NGroups: a template kept at a desired count, spread across zones        */
/* ------------------------------------------------------------------------ */
/*
 * An NGroup is a container-group template (an ACI document) plus a desired
 * count.  Berth keeps that many members placed, spread across the NGroup's
 * zones (member counts of two zones never differ by more than one while
 * every zone has room) and, within a zone, across hosts (a host holding
 * fewer members of the NGroup wins, then bin packing).  With
 * fault_domain_count F, a fault domain is a host (a host record has a zone
 * and nothing finer, such as a rack): no host holds more than
 * ceil(desired / F) members, so the members span at least min(F, desired)
 * hosts; a member that no host can take within that bound is not placed
 * (noted in the message).
 *
 * A template change bumps the NGroup's revision and is rolled out.  With
 * max_batch_percent P, at most floor(P * desired / 100) members (at least
 * 1) update at once: a member redeployed counts until it is available.  A
 * batch starts as soon as every member at the revision is available and
 * pause_between_batches_ms has passed since that was first seen (by any
 * reconcile of the cell: the time is kept in the cell).  With
 * max_unhealthy_percent U set, no member is updated while more than U
 * percent of the members at the revision are unhealthy (their view says
 * Failed, Stopped or Terminated): the rollout stops and the message says
 * why; it resumes if they recover or the template changes again.  Within
 * U, unhealthy members are tolerated: they hold no batch back (without U,
 * a batch waits for every member at the revision to be available).  In
 * place (the default) a member is redeployed under its own key; with
 * replace_on_update a batch places new members (new indexes, so new
 * names) beside the old ones and releases old members as the new ones
 * become available.  Without max_batch_percent, the former bound holds:
 * at most `max_unavailable` members unavailable at any time.
 *
 * With manual_update, a template change updates no member: members placed
 * later (scale-out, replacements, a start after a stop) run the new
 * revision.  An NGroup may have no template (template_json NULL): it then
 * places nothing (its message says why) and leaves any members it has as
 * they are, but for a stop or a delete, which release them.
 *
 * A stopped NGroup has no member placed: stopping releases them (their
 * documents follow from the template, which stays), starting places the
 * desired count again.  Restarting asks the agents to restart the
 * containers of every placed member.
 *
 * Members are ordinary container groups of the cell: member n has the key
 * "<ngroup key>/<prefix><name>-<n>" and the document of the template with
 * name "<prefix><name>-<n>" (prefix: member_prefix, "" by default), zones
 * [its zone] (when the NGroup has zones) and the tags "berth-ngroup" (the
 * NGroup's key) and "berth-ngroup-revision".  A member is available when
 * its host's agent reports, for the member's current generation,
 * provisioningState "Succeeded" and state "Running".
 *
 * The NGroup's record lives in the cell (store.c documents the keys);
 * members are placed and released through the store like any group, so
 * every promise of the store holds for them.  berth_store_ngroup_put()
 * only records the goal: berth_store_ngroup_reconcile() moves the cell one
 * step towards it, and a scheduler calls it periodically (berthd does, for
 * every NGroup of its cell, and often for those mid-rollout).  All calls
 * here block (the synchronous store).
 */

#define BERTH_NGROUP_KEY_MAX 191      /* bytes in an NGroup's key             */
#define BERTH_NGROUP_NAME_MAX 58      /* so that "<name>-<n>" is a group name */
#define BERTH_NGROUP_MEMBERS_MAX 1000 /* the largest desired count            */
#define BERTH_NGROUP_ZONES_MAX 16

/* What an NGroup should be.  Strings are borrowed for the call. */
typedef struct berth_ngroup_spec {
    const char *key;                /* the NGroup's id in the cell: 1..BERTH_NGROUP_KEY_MAX
                                     * bytes, no control bytes (berthd: "sub/rg/name") */
    const char *name;               /* members' name prefix: a container-group name
                                     * ([a-z0-9-]) of 1..BERTH_NGROUP_NAME_MAX */
    const char *template_json;      /* an ACI container-group document; its name
                                     * member, if any, is replaced per member;
                                     * NULL: none (nothing is placed)       */
    int64_t desired;                /* 0..BERTH_NGROUP_MEMBERS_MAX          */
    const char *const *zones;       /* zones the members spread across; every one
                                     * must be some host's zone in the cell */
    size_t nzones;                  /* 0: no zones (any host)               */
    int64_t max_unavailable;        /* >= 1: the rolling update's bound     */
    const char *metadata_json;      /* a JSON object kept with the NGroup and
                                     * returned as is (NULL: none), for callers'
                                     * own attributes (berthd: location, tags) */
    /* The fields below keep the former behaviour when zero. */
    uint32_t max_batch_percent;     /* 1..100: members updating at once are at
                                     * most floor(this * desired / 100), at
                                     * least 1; 0: max_unavailable bounds */
    bool max_unhealthy_set;         /* max_unhealthy_percent applies        */
    uint32_t max_unhealthy_percent; /* 0..100: the rollout stops while more
                                     * than this percent of the members at the
                                     * revision are unhealthy               */
    uint32_t pause_between_batches_ms; /* after a batch is available, before
                                     * the next starts (at most 1 day)     */
    bool replace_on_update;         /* false: members redeployed in place;
                                     * true: new members (new names) placed
                                     * first, old ones released once they
                                     * are available (needs max_batch_percent) */
    const char *member_prefix;      /* NULL or "": none; else prepended to the
                                     * members' names ([a-z0-9-], the whole
                                     * name at most BERTH_NGROUP_NAME_MAX);
                                     * fixed at creation                   */
    uint32_t fault_domain_count;    /* 0: none; 1..BERTH_NGROUP_MEMBERS_MAX
                                     * hosts to spread across; fixed at
                                     * creation                             */
    bool manual_update;             /* a template change updates no member:
                                     * only members placed later (scale-out,
                                     * replacements, a start) run it        */
} berth_ngroup_spec_t;

/* One member as berth_store_ngroup_get() reports it. */
typedef struct berth_ngroup_member {
    uint32_t index;                 /* n in "<name>-<n>"                    */
    char key[BERTH_GROUP_KEY_MAX + 1];
    char name[BERTH_NAME_MAX + 1];
    char host[BERTH_NAME_MAX + 1];
    char zone[BERTH_NAME_MAX + 1];  /* its host's zone, "" for none         */
    uint64_t revision;              /* of the template it runs (0: unknown) */
    uint64_t generation;            /* of its group record                  */
    char state[32];                 /* the view's state for that generation:
                                     * Running, Pending, Failed, ...; "Creating"
                                     * while no view describes it */
    bool available;
} berth_ngroup_member_t;

/* An NGroup's goal and status.  Owned by the caller: berth_ngroup_free(). */
typedef struct berth_ngroup {
    char *key;
    char *name;
    char *template_json;            /* the template as stored: it holds the
                                     * document's secrets; redact before showing;
                                     * "" for none                          */
    char *metadata_json;            /* NULL when none was given             */
    uint32_t desired;
    uint32_t max_unavailable;
    char **zones;
    size_t nzones;
    uint64_t revision;              /* 1 at creation, +1 per template change */
    bool deleting;                  /* a delete is releasing the members    */
    berth_ngroup_member_t *members; /* by index                             */
    size_t nmembers;
    uint32_t running;               /* members available                    */
    uint32_t updated;               /* members at `revision`                */
    /* The last reconcile step's note: a zone without room whose members went
     * to another zone, or members that could not be placed at all ("" when
     * the last step had nothing to report). */
    char message[BERTH_ERROR_MESSAGE_MAX];
    bool steady;                    /* desired members, all at `revision`,
                                     * all available (a stopped NGroup: none
                                     * placed)                              */
    /* The spec's later fields, as stored (see berth_ngroup_spec_t). */
    uint32_t max_batch_percent;
    int32_t max_unhealthy_percent;  /* -1: not set                          */
    uint32_t pause_between_batches_ms;
    bool replace_on_update;
    char *member_prefix;            /* "" for none                          */
    uint32_t fault_domain_count;
    bool stopped;                   /* berth_store_ngroup_stop() was called
                                     * last (not start)                     */
    bool manual_update;
    uint32_t unhealthy;             /* members at `revision` that are
                                     * unhealthy                            */
} berth_ngroup_t;

/* Frees an NGroup from berth_store_ngroup_get().  Accepts NULL. */
BERTH_EXPORT void berth_ngroup_free(berth_ngroup_t *ngroup);

/* Creates the NGroup spec->key in the store's cell, or replaces its goal.
 * Everything is checked before anything changes: the key, the name, the
 * count, the bounds, the zones (distinct, at most BERTH_NGROUP_ZONES_MAX,
 * each one some host's zone; the template may then not name zones itself),
 * the metadata and the template (berth_group_parse() and
 * berth_engine_group_validate() against the store's engine).  Error targets are
 * "key", "name", "desiredCount", "maxUnavailable", "maxBatchPercent",
 * "maxUnhealthyPercent", "pauseBetweenBatches", "replaceOnUpdate",
 * "memberPrefix", "faultDomainCount", "zones[i]", "metadata" and
 * "template.<path in the document>".  The revision starts at 1 and is
 * bumped when the template changes (compared after parsing, so formatting
 * does not count); the zones, name, member prefix and fault domain count of
 * an existing NGroup cannot change (BERTH_ECONFLICT, target "zones",
 * "name", "memberPrefix" or "faultDomainCount": delete it first), nor can an
 * NGroup being deleted be put (BERTH_ECONFLICT, target "key") until the
 * delete is done.  Members are not touched: berth_store_ngroup_reconcile()
 * does that.  A put keeps the NGroup stopped or started as it was (a new
 * one is started).  Stores the NGroup's revision in *revision (may be
 * NULL).  Returns 0, BERTH_EINVAL, BERTH_ECONFLICT, BERTH_EIO or
 * BERTH_ENOMEM. */
BERTH_EXPORT int berth_store_ngroup_put(berth_store_t *store, const berth_ngroup_spec_t *spec,
                                        uint64_t *revision, berth_error_t *err);

/* Reads the NGroup `key` with its members' placement and state (the
 * replica is synced first).  On success stores a new NGroup in *out (free
 * with berth_ngroup_free()).  Returns 0, BERTH_ENOENT, BERTH_EINVAL (a bad
 * key), BERTH_EIO or BERTH_ENOMEM. */
BERTH_EXPORT int berth_store_ngroup_get(berth_store_t *store, const char *key,
                                        berth_ngroup_t **out, berth_error_t *err);

/* What one reconcile step did. */
typedef struct berth_ngroup_step {
    uint32_t created;               /* members placed                       */
    uint32_t removed;               /* members released                     */
    uint32_t updated;               /* members redeployed at the revision   */
    uint32_t failed;                /* actions that failed (no room ...): the
                                     * NGroup's message says which          */
    uint32_t waiting;               /* members at the revision not yet
                                     * available: the rollout waits for them */
    bool steady;                    /* nothing was left to do               */
    bool deleted;                   /* the NGroup was being deleted and is gone */
    bool halted;                    /* the rollout is stopped: too many
                                     * unhealthy members (the message says) */
    bool pausing;                   /* the pause between batches runs       */
} berth_ngroup_step_t;

/* Moves the NGroup one step towards its goal, deciding from the cell as it
 * is now: releases surplus members (from the zone holding the most, the
 * highest index first), places missing ones (lowest free index, in the
 * zone holding the fewest that has room -- the next zone when it has none,
 * noted in the message -- on the host of that zone holding the fewest
 * members of this NGroup, then by bin packing, within the fault domain
 * bound) and updates members of an older revision as the section's opening
 * comment says (batches of max_batch_percent, in place or by replacement,
 * the pause, max_unhealthy_percent; else the former max_unavailable bound;
 * nothing with manual_update).  A redeploy the engine refuses because the
 * template changed a property that needs a delete releases the member and
 * places a replacement under the lowest free index (a new name: the key
 * is not placed again at once, which an agent could take for the group it
 * runs).  A stopped NGroup has its members released.  An NGroup being deleted has its members released and its record
 * removed (out->deleted).  Call it again until out->steady (or
 * periodically): each call makes the decisions of one step.  A placement
 * failing for want of room is not an error: it is counted in out->failed
 * and noted in the NGroup's message.  *out may be NULL.  Returns 0,
 * BERTH_ENOENT (no such NGroup), BERTH_EINVAL, BERTH_EIO or BERTH_ENOMEM
 * (the actions done before such a failure stay done). */
BERTH_EXPORT int berth_store_ngroup_reconcile(berth_store_t *store, const char *key,
                                              berth_ngroup_step_t *out, berth_error_t *err);

/* Deletes the NGroup `key`: marks it deleting (so that any scheduler's
 * reconcile finishes the job after a crash), releases every member and
 * removes its record.  Returns 0, BERTH_ENOENT, BERTH_EINVAL, BERTH_EIO or
 * BERTH_ENOMEM. */
BERTH_EXPORT int berth_store_ngroup_delete(berth_store_t *store, const char *key,
                                           berth_error_t *err);

/* Stops the NGroup `key`: records it stopped, so that reconciling releases
 * every member and places none until berth_store_ngroup_start(), then
 * takes one reconcile step.  Stopping a stopped NGroup changes nothing.
 * Returns 0, BERTH_ENOENT (none, or being deleted), BERTH_EINVAL,
 * BERTH_EIO or BERTH_ENOMEM. */
BERTH_EXPORT int berth_store_ngroup_stop(berth_store_t *store, const char *key,
                                         berth_error_t *err);

/* Starts the NGroup `key` again: records it started (members are placed
 * up to the desired count, at the current revision), then takes one
 * reconcile step.  Starting a started NGroup changes nothing.  Returns
 * like berth_store_ngroup_stop(). */
BERTH_EXPORT int berth_store_ngroup_start(berth_store_t *store, const char *key,
                                          berth_error_t *err);

/* Restarts the containers of every placed member of the NGroup `key`
 * (berth_store_group_restart() of each), in place.  A stopped NGroup has
 * none: BERTH_ECONFLICT (target "key").  Stores the number of members asked
 * in *restarted (may be NULL).  Returns 0, BERTH_ENOENT, BERTH_ECONFLICT,
 * BERTH_EINVAL, BERTH_EIO or BERTH_ENOMEM. */
BERTH_EXPORT int berth_store_ngroup_restart(berth_store_t *store, const char *key,
                                            uint32_t *restarted, berth_error_t *err);

/* Called by berth_store_ngroup_list() once per NGroup key. */
typedef void (*berth_store_ngroup_cb)(const char *key, void *data);

/* Reports the key of every NGroup of the cell, in no particular order.
 * Returns the number of NGroups, or BERTH_EIO. */
BERTH_EXPORT int berth_store_ngroup_list(berth_store_t *store, berth_store_ngroup_cb cb,
                                         void *data, berth_error_t *err);

/* ------------------------------------------------------------------------ */
/* Former names                                                             */
/* ------------------------------------------------------------------------ */
/*
 * Every call is named berth_<receiver>_<verb>, the receiver being the
 * object the call acts on (its first argument).  The calls below were
 * renamed to follow that rule; their former names stay for this release as
 * deprecated aliases (each calls the new name, with the same contract) and
 * will be removed in the next one.  README.md ("Renamed calls") lists them.
 */

#if defined(__GNUC__) || defined(__clang__)
#define BERTH_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define BERTH_DEPRECATED(msg)
#endif

BERTH_EXPORT int berth_host_add(berth_engine_t *engine, const berth_host_t *host,
                                berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_host_add");
BERTH_EXPORT int berth_host_update(berth_engine_t *engine, const berth_host_t *host,
                                   berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_host_update");
BERTH_EXPORT int berth_host_set_state(berth_engine_t *engine, const char *name,
                                      berth_host_state_t state, berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_host_set_state");
BERTH_EXPORT int berth_host_remove(berth_engine_t *engine, const char *name,
                                   berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_host_remove");
BERTH_EXPORT int berth_host_get(const berth_engine_t *engine, const char *name,
                                berth_host_t *host, berth_host_usage_t *usage)
    BERTH_DEPRECATED("renamed berth_engine_host_get");
BERTH_EXPORT int berth_group_request(berth_engine_t *engine, const berth_group_t *group,
                                     berth_request_t *out, berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_group_request");
BERTH_EXPORT int berth_group_validate(berth_engine_t *engine, const berth_group_t *group,
                                      berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_group_validate");
BERTH_EXPORT int berth_request_place(berth_engine_t *engine, const char *key,
                                     const berth_request_t *request, berth_placement_t *out,
                                     berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_request_place");
BERTH_EXPORT int berth_request_assign(berth_engine_t *engine, const char *key,
                                      const berth_request_t *request, const char *host,
                                      berth_placement_t *out, berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_request_assign");
BERTH_EXPORT int berth_group_place(berth_engine_t *engine, const char *key,
                                   const berth_group_t *group, berth_placement_t *out,
                                   berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_group_place");
BERTH_EXPORT int berth_group_release(berth_engine_t *engine, const char *key,
                                     berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_group_release");
BERTH_EXPORT int berth_request_preemption(berth_engine_t *engine,
                                          const berth_request_t *request,
                                          berth_preemption_t *out, berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_preemption_plan");
BERTH_EXPORT const char *berth_engine_victim(const berth_engine_t *engine, size_t i)
    BERTH_DEPRECATED("renamed berth_engine_victim_get");
BERTH_EXPORT int berth_group_get(const berth_engine_t *engine, const char *key,
                                 berth_placement_t *out)
    BERTH_DEPRECATED("renamed berth_engine_group_get");
BERTH_EXPORT int berth_inventory_load(berth_engine_t *engine, const char *json, size_t len,
                                      berth_error_t *err)
    BERTH_DEPRECATED("renamed berth_engine_inventory_load");
BERTH_EXPORT int berth_template_digest(const berth_group_t *group, uint64_t *out)
    BERTH_DEPRECATED("renamed berth_group_template_digest");

#ifdef __cplusplus
}
#endif

#endif /* BERTH_H */
