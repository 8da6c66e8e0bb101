/*
 * bodies.h: berthd's readers of NGroup and standby-pool request bodies
 * (ngroups.c, pools.c): body text in, what it asks for or an error out.
 *
 * The readers are pure: no I/O, no Redis, no engine (whatever needs the
 * cell -- zones known to its hosts, the template against its engine --
 * is the library's to check when the caller stores the result).  Every
 * refusal is a berth_error_t with code BERTH_EINVAL (BERTH_ENOMEM when
 * memory ran out), an ACI error name, a message and the JSON path in the
 * body at fault (`target`), which berthd answers as a 400 CloudError.  A
 * failing call leaves *out empty (its free function is still safe).
 * tests/fuzz/fuzz_body.c feeds them arbitrary bytes.
 */
#ifndef BERTHD_BODIES_H
#define BERTHD_BODIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "berth.h"

/* ---- NGroups -------------------------------------------------------------------- */

/* What an NGroup PUT body asks for.  Free with bd_ngroup_body_free(). */
typedef struct bd_ngroup_body {
    int64_t desired;                /* 0..BERTH_NGROUP_MEMBERS_MAX          */
    int64_t max_unavailable;        /* 1..BERTH_NGROUP_MEMBERS_MAX (1 when absent) */
    const char *zones[BERTH_NGROUP_ZONES_MAX]; /* strings inside `doc`      */
    size_t nzones;
    bool zones_in_properties;       /* given as properties.zones, not zones */
    char *template_json;            /* {"location", "properties"}: owned    */
    char *metadata_json;            /* location, subscription, resource group,
                                     * zonesInProperties, tags: owned        */
    json_t *doc;                    /* the parsed body (owned)              */
} bd_ngroup_body_t;

/* Reads an NGroup PUT body (`len` bytes of `text`, any bytes) for the
 * NGroup in subscription `sub` and resource group `rg` (both borrowed,
 * copied into the metadata).  Returns 0 and fills *out, or BERTH_EINVAL
 * (BERTH_ENOMEM) with *err set and *out empty. */
int bd_ngroup_body_read(const char *text, size_t len, const char *sub, const char *rg,
                        bd_ngroup_body_t *out, berth_error_t *err);

/* Frees what *body holds and empties it; accepts an empty body. */
void bd_ngroup_body_free(bd_ngroup_body_t *body);

/* What an NGroup PATCH body asks for.  Free with bd_ngroup_patch_free(). */
typedef struct bd_ngroup_patch {
    bool has_desired, has_max_unavailable;
    int64_t desired;                /* checked like a PUT's                 */
    int64_t max_unavailable;
    json_t *tags;                   /* an object inside `doc`, or NULL      */
    json_t *doc;                    /* the parsed body (owned)              */
} bd_ngroup_patch_t;

/* Reads an NGroup PATCH body: tags, properties.elasticProfile.desiredCount
 * and properties.updateProfile.rollingUpdateProfile.maxUnavailable, each
 * optional, nothing else.  Returns 0, or BERTH_EINVAL (BERTH_ENOMEM) with
 * *err set and *out empty. */
int bd_ngroup_patch_read(const char *text, size_t len, bd_ngroup_patch_t *out,
                         berth_error_t *err);

void bd_ngroup_patch_free(bd_ngroup_patch_t *patch);

/* Rewrites the library's targets of an NGroup put (berth_store_ngroup_put():
 * "desiredCount", "zones[1]", "template.properties...") into the body's
 * paths ("properties.elasticProfile.desiredCount", "properties.zones[1]"
 * when the zones were given there, "properties.containerGroupProfile.
 * properties..."), in err->target and every detail's. */
void bd_ngroup_error_map(berth_error_t *err, bool zones_in_properties);

/* ---- standby pools ---------------------------------------------------------------- */

/* What a standby pool PUT or PATCH body asks for (the Microsoft.StandbyPool
 * schema, bodies.c).  Free with bd_pool_body_free(). */
typedef struct bd_pool_body {
    bool has_size;                  /* maxReadyCapacity given (always on a PUT) */
    uint32_t size;                  /* maxReadyCapacity: 0..BERTH_POOL_SIZE_MAX */
    char *profile_id;               /* containerGroupProfile.id; NULL when a
                                     * PATCH gives none: owned (free())     */
    uint64_t revision;              /* containerGroupProfile.revision, 0: none
                                     * given (the latest)                   */
    char *resource_json;            /* the resource as given, normalized:
                                     * {"location"?, "tags"?, "properties"?:
                                     * {"elasticityProfile"?,
                                     * "containerGroupProperties"?, "zones"?}}
                                     * with only the members Berth keeps:
                                     * owned (free())                       */
} bd_pool_body_t;

/* Reads a standby pool PUT body (StandbyContainerGroupPoolResource):
 * location, elasticityProfile.maxReadyCapacity and containerGroupProfile
 * {id, revision?} required; a containerGroupProfile holding a container
 * group document (Berth's former form) is refused with its path.  Returns
 * 0, or BERTH_EINVAL (BERTH_ENOMEM) with *err set and *out empty. */
int bd_pool_body_read(const char *text, size_t len, bd_pool_body_t *out, berth_error_t *err);

/* Reads a standby pool PATCH body (StandbyContainerGroupPoolResourceUpdate:
 * tags and properties, every member optional).  As bd_pool_body_read(). */
int bd_pool_patch_read(const char *text, size_t len, bd_pool_body_t *out, berth_error_t *err);

void bd_pool_body_free(bd_pool_body_t *body);

/* Rewrites the library's "template..." targets of a pool put into the
 * body's ("properties.containerGroupProperties.containerGroupProfile..."). */
void bd_pool_error_map(berth_error_t *err);

#endif /* BERTHD_BODIES_H */
