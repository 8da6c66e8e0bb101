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

/* A Rolling update without maxBatchPercent updates this percent at once;
 * a pause is at most a day. */
#define BD_NGROUP_BATCH_PERCENT_DEFAULT 20
#define BD_NGROUP_PAUSE_MAX_MS (24u * 3600u * 1000u)

/* What an NGroup PUT body (ACI's NGroup) asks for.  Strings point into
 * `doc`.  Free with bd_ngroup_body_free(). */
typedef struct bd_ngroup_body {
    int64_t desired;                /* elasticProfile.desiredCount (0 absent) */
    bool maintain_desired_count;    /* true unless given false              */
    const char *prefix;             /* guidNamingPolicy.prefix, or NULL     */
    bool manual;                    /* updateMode Manual (also when absent) */
    uint32_t batch_percent;         /* maxBatchPercent, 1..100 (default above) */
    bool has_unhealthy;             /* maxUnhealthyPercent given ...        */
    uint32_t unhealthy_percent;     /* ... 0..100                           */
    uint32_t pause_ms;              /* pauseTimeBetweenBatches (0 absent)   */
    bool in_place;                  /* inPlaceUpdate (false absent)         */
    uint32_t fault_domains;         /* placementProfile.faultDomainCount, 0 absent */
    const char *zones[BERTH_NGROUP_ZONES_MAX];
    size_t nzones;
    const char *profile_id;         /* containerGroupProfiles[0].resource.id,
                                     * NULL when there is no profile        */
    uint64_t profile_revision;      /* its revision, 0: the latest          */
    char *overlay_json;             /* {"properties": containerGroupProperties}
                                     * to lay over the profile's document, or
                                     * NULL: owned                          */
    char *metadata_json;            /* {location, subscription, resourceGroup,
                                     * body: the body without its read-only
                                     * members}: owned                      */
    json_t *doc;                    /* the parsed body (owned)              */
} bd_ngroup_body_t;

/* Reads an NGroup PUT body (`len` bytes of `text`, any bytes) for the
 * NGroup in subscription `sub` and resource group `rg` (both borrowed,
 * copied into the metadata).  Berth's former members (properties.
 * containerGroupProfile, properties.zones, rollingUpdateProfile.
 * maxUnavailable) are refused naming what to use instead; unknown members
 * are refused.  Returns 0 and fills *out, or BERTH_EINVAL (BERTH_ENOMEM)
 * with *err set and *out empty. */
int bd_ngroup_body_read(const char *text, size_t len, const char *sub, const char *rg,
                        bd_ngroup_body_t *out, berth_error_t *err);

/* Frees what *body holds and empties it; accepts an empty body. */
void bd_ngroup_body_free(bd_ngroup_body_t *body);

/* The container group profile an NGroup PUT body (patch false) or PATCH
 * body (patch true: only its properties.containerGroupProfiles, if any,
 * are looked at) names.  A PUT body is read whole (bd_ngroup_body_read()),
 * so a bad one is refused here.  Returns 1 with a copy of the profile's id
 * in *id (free()) and its revision in *revision (0: the latest), 0 when it
 * names none, or BERTH_EINVAL (BERTH_ENOMEM) with *err set. */
int bd_ngroup_profile_ref(const char *text, size_t len, bool patch, char **id,
                          uint64_t *revision, berth_error_t *err);

/* A PATCH (ACI's NGroupPatch: tags, zones, identity, properties) merged
 * over `stored` (the body an NGroup keeps, NULL for none): objects member
 * by member, anything else replaced.  The result, in *merged (free()), is
 * then read as a PUT body, so errors name the same paths.  Returns 0, or
 * BERTH_EINVAL (BERTH_ENOMEM) with *err set and *merged NULL. */
int bd_ngroup_patch_merge(const char *stored, const char *text, size_t len, char **merged,
                          berth_error_t *err);

/* Rewrites the library's targets of an NGroup put (berth_store_ngroup_put():
 * "desiredCount", "maxBatchPercent", "faultDomainCount", "zones[1]",
 * "template.properties...") into the body's paths ("properties.
 * elasticProfile.desiredCount", ..., "properties.containerGroupProfiles[0].
 * containerGroupProperties..."), in err->target and every detail's. */
void bd_ngroup_error_map(berth_error_t *err);

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
