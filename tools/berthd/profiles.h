/*
 * profiles.h: container group profiles (Microsoft.ContainerInstance/
 * containerGroupProfiles, api-versions 2024-05-01-preview on): templates
 * of a container group kept in revisions, their routes, and the resolver
 * that turns a profile reference into a container-group document for the
 * routes that create groups from one (a container group's PUT, NGroups,
 * standby pools).
 *
 * REDIS KEYS (in the cell's hash tag beside records.h's, written only as
 * effects of a commit, read through records.c; this module is their one
 * owner):
 *   profiles        HASH  "<sub>/<rg>/<name>" (lowercase) -> profile record
 *                         JSON {id, name, location, tags, zones, latest,
 *                         created, updated}; `latest` is the newest
 *                         revision's number (1 on)
 *   profileindex    ZSET  score 0, the same keys, for listing
 *   profilerevs:<h> HASH  one per profile, <h> the SHA-1 (40 hex digits) of
 *                         its key (the cell's key names are short):
 *                         field "<n>" -> revision n's container-group
 *                         document {"location", ["zones",] "properties"},
 *                         its secrets sealed (secrets.h; berth_group_to_json()
 *                         of the parsed, sealed document: canonical text,
 *                         and sealing is deterministic, so equal documents
 *                         have equal text)
 *
 * WRITES.  A PUT, PATCH or DELETE reads the profile record, decides, and
 * makes one commit (berth_store_async_records(), no generation check)
 * whose effects are an EXPECT guard on the record as read (its SHA-1, or
 * absent), the record and index entry, and the new revision (or the
 * DEL of the revisions' hash).  A guard's refusal reads again and decides
 * again, at most PROFILE_ATTEMPTS times, then answers 409: two berthds
 * never lose each other's revision.  A PUT whose document equals the
 * latest revision's keeps that revision.
 *
 * Everything here runs on berthd's loop and never blocks it.
 */
#ifndef BERTHD_PROFILES_H
#define BERTHD_PROFILES_H

#include <stddef.h>
#include <stdint.h>

#include "berthd.h"

/* How many times a profile's write starts again from its read when the
 * record changed under it, before it answers 409 Conflict. */
#define PROFILE_ATTEMPTS 5

/* Whether `v` is an api-version that has container group profiles with
 * revisions: a preview from 2024-05-01-preview on, or 2025-09-01 and
 * later stable versions. */
bool bd_profile_api_version_ok(const char *v);

/* Answers one request under /subscriptions/S/resourceGroups/RG/providers/
 * Microsoft.ContainerInstance/containerGroupProfiles[/NAME[/revisions[/N]]]
 * (n 7 to 10) or /subscriptions/S/providers/Microsoft.ContainerInstance/
 * containerGroupProfiles (n 5): seg[0..n-1] the path's segments, seg[1] a
 * valid subscription the caller may touch.  Replies exactly once, now or
 * from a later callback on the loop; never blocks. */
void bd_profiles_handle(bd_api_t *api, const bd_request_t *req, bd_reply_t *reply, char **seg,
                        int n);

/* Called once from the loop (never from inside bd_profile_resolve()).
 * status: 0, BERTH_EINVAL (malformed reference), BERTH_ENOENT (no such
 * profile or revision: err's message names which), or BERTH_EIO.
 * document: on 0, an ACI container-group document {"location": ...,
 * "properties": {...}} of that revision, secrets sealed (never show
 * it to a user as is); revision: the revision resolved.  Both valid only
 * during the call.
 * (err's target is "id" for a malformed reference or a missing profile,
 * "revision" for a missing revision: callers prefix their own path.  The
 * document also holds "zones" when the profile names some.) */
typedef void (*bd_profile_cb)(int status, const char *document, uint64_t revision,
                              const berth_error_t *err, void *data);
/* Resolves the profile reference `id` (an ARM id ".../resourceGroups/RG/providers/
 * Microsoft.ContainerInstance/containerGroupProfiles/NAME", case-insensitive) of
 * subscription `sub` (a reference into another subscription is BERTH_EINVAL) at
 * `revision` (0: the latest) without blocking.  Returns 0 (cb will be called once)
 * or BERTH_ENOMEM (never called). */
int bd_profile_resolve(bd_api_t *api, const char *sub, const char *id,
                       uint64_t revision, bd_profile_cb cb, void *data);

/* ---- a container group created from a profile (no I/O) ------------------------------- */

/* Finds properties.containerGroupProfile in a container group's PUT body
 * body[0..len-1].  Returns 0 when there is none; 1 when there is one,
 * with a copy of its id in *id (free()) and its revision in *revision (0
 * when absent: the latest); or BERTH_EINVAL with err naming the JSON path
 * at fault (a body that is no JSON object is left to the document's
 * parse: 0). */
int bd_profile_reference(const char *body, size_t len, char **id, uint64_t *revision,
                         berth_error_t *err);

/* The document of a group created from a profile: the profile's document
 * `profile_doc` as the base, the request's body[0..len-1] over it (its
 * top-level members replace the profile's; in properties, each member
 * replaces the profile's, but for "containers" and "initContainers",
 * matched by name: a container the request names gets the profile's
 * container's properties with the request's over them member by member,
 * and containers of the request the profile lacks are added), without
 * properties.containerGroupProfile.  Stores the new text in *out (free())
 * and its length in *out_len.  Returns 0, BERTH_EINVAL (err: a body that
 * is no JSON object, or profile_doc unreadable) or BERTH_ENOMEM. */
int bd_profile_merge(const char *profile_doc, const char *body, size_t len, char **out,
                     size_t *out_len, berth_error_t *err);

#endif /* BERTHD_PROFILES_H */
