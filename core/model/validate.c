/*
 * validate.c: the rules a container group must meet beyond its JSON shape:
 * the engine-independent rules that relate members to one another
 * (berth__group_check(), run by berth_group_parse()).  The rules that depend
 * on an engine's tables are request.c's (berth__group_check_engine()); the
 * public berth_engine_group_validate() and berth_engine_group_request() are the engine's
 * (engine.c).  This file is the bottom of the model: it calls nothing of
 * demand.c, request.c or the engine.
 *
 * Every rule is checked and every violation reported, with an ACI-style
 * error name and the JSON path at fault; the group is refused whole.  This
 * file never changes a group, never changes an engine's tables, and never
 * puts a secret's value (secureValue, secret volume contents, registry
 * passwords, storage account keys) into a message.
 *
 * Error names used by the model (berth_group_parse(), berth_engine_group_request()),
 * with the rule each one reports:
 *
 *   Parsing (model.c and json.c)
 *     InvalidRequestContent      not JSON, not UTF-8, not an object; a member
 *                                the spec does not define ("Could not find
 *                                member 'x' on object of type 'T'"), a member
 *                                given twice, a value of the wrong JSON type
 *     RequestTooLarge            document over BERTH_DOCUMENT_MAX bytes
 *     RequestNestingTooDeep      nesting over BERTH_DOCUMENT_DEPTH_MAX
 *     MissingRequiredProperty    a required member absent or empty (containers,
 *                                osType, name, image, resources.requests, cpu,
 *                                memoryInGB, ipAddress ports and type ...)
 *     InvalidEnumValue           osType, restartPolicy, sku, priority,
 *                                protocol, ipAddress type, scheme, label scope
 *     InvalidCpuValue            cpu not a number, <= 0, > 1,000,000, or with
 *     InvalidMemoryValue         more than 3 decimals (same for memoryInGB)
 *     InvalidGpuCount            gpu count not an integer >= 1
 *     InvalidPort                port outside 1..65535
 *     InvalidProbe               probe without exactly one of exec/httpGet,
 *                                exec without a command, negative seconds
 *     InvalidVolume              not exactly one of azureFile, emptyDir,
 *                                secret, gitRepo
 *     InvalidIpAddress           ipAddress with an empty ports array
 *     InvalidZone                zone name empty or over 63 characters
 *     OutOfMemory                allocation failure (BERTH_ENOMEM)
 *     InvalidArgument            a NULL engine, group or output pointer
 *   Cross-member rules (berth__group_check)
 *     InvalidContainerGroupName  group name not 1-63 of [a-z0-9-]
 *     InvalidContainerName       container or init container name, same rule
 *     DuplicateContainerName     two containers or init containers share a name
 *     InvalidVolumeName          volume name, same rule
 *     DuplicateVolumeName        two volumes share a name
 *     VolumeMountNameNotFound    a volumeMount names no volume of the group
 *     InvalidVolumeMountPath     a mountPath empty or containing ':'
 *     DuplicateVolumeMountPath   one container mounts twice at one path
 *     InvalidSecretVolumeValue   a secret volume value that is not base64
 *     InvalidSecretVolumeFileName a secret file name with a path separator,
 *                                or "." / ".." / empty
 *     InvalidGitRepoDirectory    a gitRepo directory that is absolute or has a
 *                                '..' segment
 *     DuplicateContainerPort     one port+protocol twice in the group (its
 *                                containers share one network namespace)
 *     DuplicateIpAddressPort     one port+protocol twice on the IP address
 *     IpAddressPortNotExposed    an IP address port no container exposes
 *     MultipleGpuSkus            two GPU SKUs in one group
 *     ContainerLimitGreaterThanContainerGroupTotalRequest
 *                                a container's cpu, memory or GPU limit above
 *                                the group's total request
 *     UnsupportedWindowsFeature  a Windows group with more than one container,
 *                                init containers, volumes, GPUs or sku
 *                                Confidential
 *   Text (validate_text.c, berth__group_check_text)
 *     InvalidImageReference      an image reference outside the OCI
 *                                distribution grammar or its length limits
 *     ControlCharacterNotAllowed a C0 control character or DEL in a string
 *                                (TAB, LF and CR allowed in environment
 *                                values and configMap contents only)
 *     InvalidEnvironmentVariable both `value` and `secureValue` given
 *   Engine tables (berth__group_check_engine, berth__group_request)
 *     UnsupportedGpuSku          GPU SKU not in the engine's table
 *     UnsupportedGpuCount        group's GPU count not offered for its SKU
 *     CpuLimitExceeded           rounded cores above the group limit or offer
 *     MemoryLimitExceeded        memory above the group limit or offer
 *     TooManyContainers          containers + init containers above the limit
 *     TooManyVolumes             volumes above the limit
 *     TooManyIpAddressPorts      IP address ports above the limit
 *     ConflictingWindowsBuilds   images naming different Windows builds
 *     InvalidZone, TooManyZones  a zone the engine cannot register
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "model-internal.h"
#include "lib/base64.h"

/* One of the group's two container lists, as the document names it. */
typedef struct container_list {
    const char *key;
    const berth_container_t *items;
    size_t n;
} container_list_t;

static void container_lists(const berth_group_t *g, container_list_t lists[2])
{
    lists[0] = (container_list_t){"containers", g->containers, g->ncontainers};
    lists[1] = (container_list_t){"initContainers", g->init_containers, g->ninit_containers};
}

static berth_protocol_t protocol_of(const berth_port_t *p)
{
    return p->protocol == BERTH_PROTOCOL_UNSET ? BERTH_PROTOCOL_TCP : p->protocol;
}

/* True when `s` can name a file inside a directory: not empty, not "." or
 * "..", and without a path separator. */
static bool secret_file_name_ok(const char *s)
{
    return s[0] != '\0' && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
           strpbrk(s, "/\\") == NULL;
}

/* True when the path has a ".." segment ('/' or '\\' separated). */
static bool has_parent_segment(const char *s)
{
    const char *seg = s;
    for (const char *c = s;; c++) {
        if (*c == '/' || *c == '\\' || *c == '\0') {
            if (c - seg == 2 && seg[0] == '.' && seg[1] == '.')
                return true;
            if (*c == '\0')
                return false;
            seg = c + 1;
        }
    }
}

/* A value to find duplicates of (a number, a string, or both) and its
 * place in document order.  Sorting these finds duplicates and answers
 * look-ups in O(n log n), so that a hostile document of a megabyte with
 * tens of thousands of ports or mounts is checked in milliseconds, not
 * with a quadratic scan. */
typedef struct key_ref {
    uint64_t num;
    const char *str;
    size_t seq;
} key_ref_t;

static int key_cmp_value(const void *a, const void *b)
{
    const key_ref_t *x = a, *y = b;
    if (x->num != y->num)
        return x->num < y->num ? -1 : 1;
    return strcmp(x->str != NULL ? x->str : "", y->str != NULL ? y->str : "");
}

static int key_cmp(const void *a, const void *b)
{
    int c = key_cmp_value(a, b);
    if (c != 0)
        return c;
    const key_ref_t *x = a, *y = b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Sorts keys[0..n) and sets dup[seq] for every key equal to one earlier in
 * document order (dup must hold false for every seq). */
static void mark_duplicates(key_ref_t *keys, size_t n, bool *dup)
{
    if (n == 0)
        return;
    qsort(keys, n, sizeof *keys, key_cmp);
    for (size_t i = 1; i < n; i++)
        if (key_cmp_value(&keys[i - 1], &keys[i]) == 0)
            dup[keys[i].seq] = true;
}

/* True when a key with k's value is among the n sorted keys. */
static bool key_find(const key_ref_t *keys, size_t n, const key_ref_t *k)
{
    return n > 0 && bsearch(k, keys, n, sizeof *keys, key_cmp_value) != NULL;
}

/* Allocates n keys and n duplicate flags; false (and *nomem) on failure.
 * n == 0 allocates nothing and succeeds. */
static bool key_alloc(size_t n, key_ref_t **keys, bool **dup, bool *nomem)
{
    *keys = NULL;
    *dup = NULL;
    if (n == 0)
        return true;
    *keys = malloc(n * sizeof **keys);
    *dup = calloc(n, sizeof **dup);
    if (*keys == NULL || *dup == NULL) {
        free(*keys);
        free(*dup);
        *keys = NULL;
        *dup = NULL;
        *nomem = true;
        return false;
    }
    return true;
}

static size_t check_names(const berth_group_t *g, berth_error_t *err, bool *nomem)
{
    size_t n = 0;
    char t[BERTH_ERROR_TARGET_MAX];
    if (g->name != NULL && !berth__name_is_valid(g->name, BERTH_NAME_MAX))
        n += berth__report(err, "InvalidContainerGroupName", "name",
                    "The container group name '%.63s' is not valid: it must have 1 to %d "
                    "lowercase letters, digits or '-', and not start or end with '-'.",
                    g->name, BERTH_NAME_MAX);
    container_list_t lists[2];
    container_lists(g, lists);
    size_t total = g->ncontainers + g->ninit_containers;
    key_ref_t *keys;
    bool *dup;
    if (!key_alloc(total, &keys, &dup, nomem))
        return n;
    size_t nkeys = 0;
    for (size_t l = 0, seq = 0; l < 2; l++) {
        for (size_t i = 0; i < lists[l].n; i++, seq++) {
            const char *name = lists[l].items[i].name;
            if (name == NULL)
                continue;
            if (berth__name_is_valid(name, BERTH_NAME_MAX)) {
                keys[nkeys++] = (key_ref_t){0, name, seq};
                continue;
            }
            snprintf(t, sizeof t, "properties.%s[%zu].name", lists[l].key, i);
            n += berth__report(err, "InvalidContainerName", t,
                        "The container name '%.63s' is not valid: it must have 1 to %d "
                        "lowercase letters, digits or '-', and not start or end with '-'.",
                        name, BERTH_NAME_MAX);
        }
    }
    /* Containers and init containers share one name space. */
    mark_duplicates(keys, nkeys, dup);
    for (size_t l = 0, seq = 0; l < 2; l++) {
        for (size_t i = 0; i < lists[l].n; i++, seq++) {
            if (!dup[seq])
                continue;
            snprintf(t, sizeof t, "properties.%s[%zu].name", lists[l].key, i);
            n += berth__report(err, "DuplicateContainerName", t,
                        "The container name '%s' is used more than once in the group.",
                        lists[l].items[i].name);
        }
    }
    free(keys);
    free(dup);
    return n;
}

static size_t check_volumes(const berth_group_t *g, berth_error_t *err, bool *nomem)
{
    size_t n = 0;
    char t[BERTH_ERROR_TARGET_MAX];
    key_ref_t *keys;
    bool *dup;
    if (!key_alloc(g->nvolumes, &keys, &dup, nomem))
        return n;
    size_t nkeys = 0;
    for (size_t i = 0; i < g->nvolumes; i++) {
        const berth_volume_t *v = &g->volumes[i];
        snprintf(t, sizeof t, "properties.volumes[%zu].name", i);
        if (v->name != NULL && !berth__name_is_valid(v->name, BERTH_NAME_MAX))
            n += berth__report(err, "InvalidVolumeName", t,
                        "The volume name '%.63s' is not valid: it must have 1 to %d lowercase "
                        "letters, digits or '-', and not start or end with '-'.",
                        v->name, BERTH_NAME_MAX);
        else if (v->name != NULL)
            keys[nkeys++] = (key_ref_t){0, v->name, i};
        for (size_t k = 0; v->kind == BERTH_VOLUME_SECRET && k < v->nsecret_items; k++) {
            const berth_pair_t *item = &v->secret_items[k];
            if (item->name != NULL && !secret_file_name_ok(item->name)) {
                snprintf(t, sizeof t, "properties.volumes[%zu].secret", i);
                n += berth__report(err, "InvalidSecretVolumeFileName", t,
                            "The secret file name '%.100s' in volume '%.63s' is not valid: it "
                            "must be a plain file name, without '/', '\\' or a '.' or '..' "
                            "name of its own.", item->name, v->name != NULL ? v->name : "");
            }
            if (item->value != NULL && !berth__base64_is_valid(item->value)) {
                snprintf(t, sizeof t, "properties.volumes[%zu].secret.%s", i,
                         item->name != NULL ? item->name : "");
                /* Name the file, never its content. */
                n += berth__report(err, "InvalidSecretVolumeValue", t,
                            "The content of secret file '%.100s' in volume '%.63s' is not "
                            "valid base64.", item->name != NULL ? item->name : "",
                            v->name != NULL ? v->name : "");
            }
        }
        if (v->kind == BERTH_VOLUME_GIT_REPO && v->directory != NULL &&
            (has_parent_segment(v->directory) || v->directory[0] == '/' ||
             v->directory[0] == '\\')) {
            snprintf(t, sizeof t, "properties.volumes[%zu].gitRepo.directory", i);
            n += berth__report(err, "InvalidGitRepoDirectory", t,
                        "The gitRepo directory '%.200s' must be a path inside the volume: "
                        "relative, without a '..' segment.", v->directory);
        }
    }
    mark_duplicates(keys, nkeys, dup);
    for (size_t i = 0; i < g->nvolumes; i++) {
        if (!dup[i])
            continue;
        snprintf(t, sizeof t, "properties.volumes[%zu].name", i);
        n += berth__report(err, "DuplicateVolumeName", t,
                    "The volume name '%s' is used more than once in the group.",
                    g->volumes[i].name);
    }
    free(keys);
    free(dup);
    return n;
}

static size_t check_mounts(const berth_group_t *g, berth_error_t *err, bool *nomem)
{
    size_t n = 0;
    char t[BERTH_ERROR_TARGET_MAX];
    container_list_t lists[2];
    container_lists(g, lists);
    size_t nmounts = 0;
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; i < lists[l].n; i++)
            nmounts += lists[l].items[i].nmounts;
    key_ref_t *volumes, *paths;
    bool *unused, *dup;
    if (!key_alloc(g->nvolumes, &volumes, &unused, nomem))
        return n;
    if (!key_alloc(nmounts, &paths, &dup, nomem)) {
        free(volumes);
        free(unused);
        return n;
    }
    size_t nvolumes = 0, npaths = 0;
    for (size_t v = 0; v < g->nvolumes; v++)
        if (g->volumes[v].name != NULL)
            volumes[nvolumes++] = (key_ref_t){0, g->volumes[v].name, v};
    if (nvolumes > 0)
        qsort(volumes, nvolumes, sizeof *volumes, key_cmp);
    for (size_t l = 0, seq = 0, owner = 0; l < 2; l++) {
        for (size_t i = 0; i < lists[l].n; i++, owner++) {
            const berth_container_t *c = &lists[l].items[i];
            for (size_t k = 0; k < c->nmounts; k++, seq++) {
                const berth_volume_mount_t *m = &c->mounts[k];
                key_ref_t name = {0, m->name, 0};
                if (m->name != NULL && !key_find(volumes, nvolumes, &name)) {
                    snprintf(t, sizeof t, "properties.%s[%zu].properties.volumeMounts[%zu].name",
                             lists[l].key, i, k);
                    n += berth__report(err, "VolumeMountNameNotFound", t,
                                "The volume mount names volume '%.63s', which the group does "
                                "not define.", m->name);
                }
                if (m->mount_path == NULL)
                    continue;
                if (m->mount_path[0] != '\0' && strchr(m->mount_path, ':') == NULL) {
                    /* Paths are unique per container: the owner is part of the key. */
                    paths[npaths++] = (key_ref_t){owner, m->mount_path, seq};
                    continue;
                }
                snprintf(t, sizeof t, "properties.%s[%zu].properties.volumeMounts[%zu].mountPath",
                         lists[l].key, i, k);
                n += berth__report(err, "InvalidVolumeMountPath", t,
                            "The mount path '%.200s' must not be empty or contain ':'.",
                            m->mount_path);
            }
        }
    }
    mark_duplicates(paths, npaths, dup);
    for (size_t l = 0, seq = 0; l < 2; l++) {
        for (size_t i = 0; i < lists[l].n; i++) {
            const berth_container_t *c = &lists[l].items[i];
            for (size_t k = 0; k < c->nmounts; k++, seq++) {
                if (!dup[seq])
                    continue;
                snprintf(t, sizeof t, "properties.%s[%zu].properties.volumeMounts[%zu].mountPath",
                         lists[l].key, i, k);
                n += berth__report(err, "DuplicateVolumeMountPath", t,
                            "The container mounts two volumes at '%.200s'.",
                            c->mounts[k].mount_path);
            }
        }
    }
    free(volumes);
    free(unused);
    free(paths);
    free(dup);
    return n;
}

static uint64_t port_key(const berth_port_t *p)
{
    return (uint64_t)p->port << 8 | (uint64_t)protocol_of(p);
}

static const char *protocol_name(const berth_port_t *p)
{
    return protocol_of(p) == BERTH_PROTOCOL_UDP ? "UDP" : "TCP";
}

static size_t check_ports(const berth_group_t *g, berth_error_t *err, bool *nomem)
{
    size_t n = 0;
    char t[BERTH_ERROR_TARGET_MAX];
    size_t nports = 0;
    for (size_t i = 0; i < g->ncontainers; i++)
        nports += g->containers[i].nports;
    size_t nip = g->ip_address != NULL ? g->ip_address->nports : 0;
    key_ref_t *ports, *ip;
    bool *dup, *ipdup;
    if (!key_alloc(nports, &ports, &dup, nomem))
        return n;
    if (!key_alloc(nip, &ip, &ipdup, nomem)) {
        free(ports);
        free(dup);
        return n;
    }
    /* The containers of a group share one network namespace and ACI maps
     * no ports, so a port+protocol may be exposed only once in the group. */
    size_t nkeys = 0;
    for (size_t i = 0, seq = 0; i < g->ncontainers; i++)
        for (size_t k = 0; k < g->containers[i].nports; k++, seq++)
            if (g->containers[i].ports[k].port != 0)
                ports[nkeys++] = (key_ref_t){port_key(&g->containers[i].ports[k]), NULL, seq};
    mark_duplicates(ports, nkeys, dup);
    for (size_t i = 0, seq = 0; i < g->ncontainers; i++) {
        for (size_t k = 0; k < g->containers[i].nports; k++, seq++) {
            if (!dup[seq])
                continue;
            const berth_port_t *p = &g->containers[i].ports[k];
            snprintf(t, sizeof t, "properties.containers[%zu].properties.ports[%zu].port", i, k);
            n += berth__report(err, "DuplicateContainerPort", t,
                        "Port %u/%s is exposed more than once in the group; its containers "
                        "share one network namespace.", p->port, protocol_name(p));
        }
    }
    size_t nipkeys = 0;
    for (size_t k = 0; k < nip; k++)
        if (g->ip_address->ports[k].port != 0)
            ip[nipkeys++] = (key_ref_t){port_key(&g->ip_address->ports[k]), NULL, k};
    mark_duplicates(ip, nipkeys, ipdup);
    for (size_t k = 0; k < nip; k++) {
        const berth_port_t *p = &g->ip_address->ports[k];
        if (p->port == 0)
            continue;
        snprintf(t, sizeof t, "properties.ipAddress.ports[%zu].port", k);
        key_ref_t want = {port_key(p), NULL, 0};
        if (ipdup[k])
            n += berth__report(err, "DuplicateIpAddressPort", t,
                        "Port %u/%s is given more than once on the IP address.", p->port,
                        protocol_name(p));
        else if (!key_find(ports, nkeys, &want))
            n += berth__report(err, "IpAddressPortNotExposed", t,
                        "Port %u/%s of the IP address is exposed by no container of the group.",
                        p->port, protocol_name(p));
    }
    free(ports);
    free(dup);
    free(ip);
    free(ipdup);
    return n;
}

/* The group's GPU SKU name (borrowed from the group) or NULL; the path of
 * the member that names it goes to *path when not NULL. */
const char *berth__group_gpu_sku(const berth_group_t *g, berth__path_t *path)
{
    for (size_t i = 0; i < g->ncontainers; i++) {
        const berth_container_t *c = &g->containers[i];
        const berth_resources_t *r[2] = {&c->requests, &c->limits};
        static const char *const keys[2] = {"requests", "limits"};
        for (size_t k = 0; k < 2; k++) {
            if (r[k]->gpu.sku == NULL)
                continue;
            if (path != NULL) {
                berth__path_init(path);
                berth__path_key(path, "properties.containers");
                berth__path_index(path, i);
                berth__path_key(path, "properties.resources");
                berth__path_key(path, keys[k]);
                berth__path_key(path, "gpu.sku");
            }
            return r[k]->gpu.sku;
        }
    }
    return NULL;
}

static size_t check_resources(const berth_group_t *g, berth_error_t *err)
{
    size_t n = 0;
    char t[BERTH_ERROR_TARGET_MAX];
    uint64_t cpu = 0, memory = 0, gpus = 0;
    for (size_t i = 0; i < g->ncontainers; i++) {
        cpu += g->containers[i].requests.cpu_millicores;
        memory += g->containers[i].requests.memory_milli_gb;
        gpus += g->containers[i].requests.gpu.count;
    }
    const char *sku = berth__group_gpu_sku(g, NULL);
    for (size_t i = 0; i < g->ncontainers; i++) {
        const berth_container_t *c = &g->containers[i];
        const berth_resources_t *r[2] = {&c->requests, &c->limits};
        static const char *const keys[2] = {"requests", "limits"};
        for (size_t k = 0; k < 2; k++) {
            if (r[k]->gpu.sku != NULL && sku != NULL && strcmp(r[k]->gpu.sku, sku) != 0) {
                snprintf(t, sizeof t, "properties.containers[%zu].properties.resources.%s.gpu.sku",
                         i, keys[k]);
                n += berth__report(err, "MultipleGpuSkus", t,
                            "The group uses GPU SKUs '%.15s' and '%.15s'; a group may use "
                            "only one.", sku, r[k]->gpu.sku);
            }
        }
        if (!c->has_limits)
            continue;
        /* A limit lets a container burst into what its siblings requested
         * but do not use; beyond the group's total there is nothing. */
        const struct {
            const char *what, *key;
            uint64_t limit, total;
        } q[3] = {
            {"cpu", "cpu", c->limits.cpu_millicores, cpu},
            {"memory", "memoryInGB", c->limits.memory_milli_gb, memory},
            {"GPU", "gpu.count", c->limits.gpu.count, gpus},
        };
        for (size_t k = 0; k < 3; k++) {
            if (q[k].limit <= q[k].total)
                continue;
            snprintf(t, sizeof t, "properties.containers[%zu].properties.resources.limits.%s", i,
                     q[k].key);
            n += berth__report(err, "ContainerLimitGreaterThanContainerGroupTotalRequest", t,
                        "The %s limit of container '%.63s' is greater than the container "
                        "group's total %s request.", q[k].what, c->name != NULL ? c->name : "",
                        q[k].what);
        }
    }
    return n;
}

static size_t check_windows(const berth_group_t *g, berth_error_t *err)
{
    if (g->os_type != BERTH_OS_WINDOWS)
        return 0;
    size_t n = 0;
    if (g->ncontainers > 1)
        n += berth__report(err, "UnsupportedWindowsFeature", "properties.containers",
                    "A Windows container group may hold only one container.");
    if (g->ninit_containers > 0)
        n += berth__report(err, "UnsupportedWindowsFeature", "properties.initContainers",
                    "Init containers are not supported for Windows container groups.");
    if (g->nvolumes > 0)
        n += berth__report(err, "UnsupportedWindowsFeature", "properties.volumes",
                    "Volumes are not supported for Windows container groups.");
    berth__path_t path;
    if (berth__group_gpu_sku(g, &path) != NULL)
        n += berth__report(err, "UnsupportedWindowsFeature", path.buf,
                    "GPUs are not supported for Windows container groups.");
    if (g->sku == BERTH_SKU_CONFIDENTIAL)
        n += berth__report(err, "UnsupportedWindowsFeature", "properties.sku",
                    "The Confidential SKU is not supported for Windows container groups.");
    return n;
}

/* Engine-independent cross-member rules; see model-internal.h.  Returns 0,
 * BERTH_EINVAL (violations appended to *err) or BERTH_ENOMEM. */
int berth__group_check(const berth_group_t *group, berth_error_t *err)
{
    bool nomem = false;
    size_t n = check_names(group, err, &nomem) + check_volumes(group, err, &nomem) +
               check_mounts(group, err, &nomem) + check_ports(group, err, &nomem) +
               check_resources(group, err) + check_windows(group, err) +
               berth__group_check_text(group, err);
    if (nomem)
        return berth__error_add(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "out of memory while validating the container group");
    return n > 0 ? BERTH_EINVAL : 0;
}
