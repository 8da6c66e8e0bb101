/*
 * ngroup_plan.c: the NGroup planner, berth__ngroup_plan() (contract in
 * store.h): given an NGroup's members (index, zone, host, revision,
 * availability, health), the hosts (zone, eligibility, free room) and the
 * goal (desired count, rollout bounds, pause, replacement, fault domains),
 * it decides one reconcile step's actions: removes, then creates, then
 * updates.  ngroup.c describes the cell to it and carries the actions out.
 *
 * This file must never do I/O or allocate: it is pure, and the tests
 * (tests/test_ngroups.c) drive it directly.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "store.h"

/* The host of zone z that can take one more member: among eligible hosts
 * with room (and, with fault domains, holding fewer than per_host_max
 * members of the NGroup), the one holding the fewest members of the
 * NGroup, then the one left with the least free CPU, then memory (bin
 * packing), then the first.  -1 when none. */
static int plan_host(const berth__ng_input_t *in, int z, const uint32_t *hcount,
                     const uint32_t *fc, const uint32_t *fm, const uint32_t *fg)
{
    int best = -1;
    for (size_t h = 0; h < in->nhosts; h++) {
        const berth__ng_host_t *x = &in->hosts[h];
        if (!x->eligible || x->zone != z || fc[h] < in->millicores || fm[h] < in->memory_mib ||
            fg[h] < in->gpus || (in->per_host_max > 0 && hcount[h] >= in->per_host_max))
            continue;
        if (best < 0 || hcount[h] < hcount[best] ||
            (hcount[h] == hcount[best] &&
             (fc[h] < fc[best] || (fc[h] == fc[best] && fm[h] < fm[best]))))
            best = (int)h;
    }
    return best;
}

/* Whether member i is at an older revision than the input's. */
static bool plan_outdated(const berth__ng_input_t *in, size_t i)
{
    return in->members[i].revision != in->revision;
}

/* Contract (store.h): one step's actions, removes, then creates, then
 * updates; no I/O, no allocation. */
size_t berth__ngroup_plan(const berth__ng_input_t *in, uint32_t *scratch,
                          berth__ng_action_t *out, size_t cap, berth__ng_outcome_t *seen)
{
    size_t nz = in->nzones > 0 ? in->nzones : 1;
    uint32_t *hcount = scratch;
    uint32_t *fc = hcount + in->nhosts;
    uint32_t *fm = fc + in->nhosts;
    uint32_t *fg = fm + in->nhosts;
    uint32_t *zcount = fg + in->nhosts;
    uint32_t *gone = zcount + nz;                   /* per member slot      */
    uint32_t *used = gone + in->nmembers;           /* per member index     */
    memset(scratch, 0, BERTH__NG_SCRATCH(in->nhosts, nz, in->nmembers) * sizeof *scratch);
    berth__ng_outcome_t o;
    memset(&o, 0, sizeof o);
    for (size_t h = 0; h < in->nhosts; h++) {
        fc[h] = in->hosts[h].free_millicores;
        fm[h] = in->hosts[h].free_memory_mib;
        fg[h] = in->hosts[h].free_gpus;
    }
    /* What the rollout stands on, counted before any action. */
    uint32_t fresh = 0, fresh_available = 0;
    for (size_t i = 0; i < in->nmembers; i++) {
        const berth__ng_member_t *m = &in->members[i];
        if (m->host >= 0 && (size_t)m->host < in->nhosts)
            hcount[m->host]++;
        if (m->zone >= 0 && (size_t)m->zone < nz)
            zcount[m->zone]++;
        if (m->index < BERTH_NGROUP_MEMBERS_MAX)
            used[m->index] = 1;
        if (plan_outdated(in, i)) {
            o.outdated++;
            continue;
        }
        fresh++;
        if (m->available) {
            fresh_available++;
        } else {
            o.waiting++;
            o.unhealthy += m->unhealthy;
        }
    }
    o.halted = in->max_unhealthy_percent >= 0 && o.unhealthy > 0 &&
               (uint64_t)o.unhealthy * 100 > (uint64_t)in->max_unhealthy_percent * fresh;
    /* Members at the revision still coming up (the unhealthy ones, within
     * the bound, are tolerated: they hold no batch back).  A batch may
     * start once none is coming up and no pause runs. */
    uint32_t coming = o.waiting - o.unhealthy;
    if (in->max_unhealthy_percent < 0)
        coming = o.waiting;         /* no bound: nothing is tolerated       */
    bool may_start = coming == 0 && !in->paused && !o.halted;
    uint32_t budget = in->batch > coming ? in->batch - coming : 0;
    bool replacing = in->replace && in->batch > 0 && o.outdated > 0 && !in->manual;

    size_t n = 0;
#define EMIT(...)                                                                          \
    do {                                                                                   \
        if (n < cap)                                                                       \
            out[n] = (berth__ng_action_t){__VA_ARGS__};                                    \
        n++;                                                                               \
    } while (0)

    size_t live = in->nmembers;
    if (replacing) {
        /* Old members go once enough new ones are available to stand in
         * for them: the unavailable ones first, then the highest index. */
        uint32_t keep = in->desired > fresh_available ? in->desired - fresh_available : 0;
        uint32_t old = o.outdated;
        while (old > keep) {
            int victim = -1;
            for (size_t i = 0; i < in->nmembers; i++) {
                const berth__ng_member_t *m = &in->members[i];
                if (gone[i] || !plan_outdated(in, i))
                    continue;
                const berth__ng_member_t *v = victim >= 0 ? &in->members[victim] : NULL;
                if (v == NULL || (v->available && !m->available) ||
                    (v->available == m->available && m->index > v->index))
                    victim = (int)i;
            }
            if (victim < 0)
                break;
            const berth__ng_member_t *m = &in->members[victim];
            gone[victim] = 1;
            if (m->zone >= 0 && (size_t)m->zone < nz)
                zcount[m->zone]--;
            if (m->host >= 0 && (size_t)m->host < in->nhosts)
                hcount[m->host]--;
            live--;
            old--;
            o.outdated--;
            EMIT(.kind = BERTH__NG_REMOVE, .index = m->index, .zone = m->zone, .host = -1);
        }
    }
    /* How many members the NGroup should have after this step: the
     * desired count, and while replacing, the old members still standing
     * in for new ones that a batch now places beside them. */
    size_t target = in->desired;
    if (replacing) {
        uint32_t still = in->desired > fresh ? in->desired - fresh : 0;
        uint32_t old_left = o.outdated;
        /* Members to place anyway (lost ones) come on top of the old. */
        size_t want = fresh + old_left < in->desired ? in->desired - fresh - old_left : 0;
        uint32_t surge = 0;
        if (may_start && still > want) {
            surge = (uint32_t)(still - want);
            if (surge > budget)
                surge = budget;
            if (surge > old_left)
                surge = old_left;
        }
        target = fresh + old_left + want + surge;
        o.batch_started = surge > 0;
    }

    /* Surplus: members outside the zones first, then the zone holding the
     * most (the later zone on a tie), its highest index first. */
    while (live > target) {
        int victim = -1;
        for (size_t i = 0; i < in->nmembers; i++) {
            const berth__ng_member_t *m = &in->members[i];
            if (gone[i] || (m->zone >= 0 && (size_t)m->zone < nz))
                continue;
            if (victim < 0 || m->index > in->members[victim].index)
                victim = (int)i;
        }
        if (victim < 0) {
            size_t zmax = 0;
            for (size_t z = 1; z < nz; z++)
                if (zcount[z] >= zcount[zmax])
                    zmax = z;
            for (size_t i = 0; i < in->nmembers; i++) {
                const berth__ng_member_t *m = &in->members[i];
                if (gone[i] || m->zone != (int)zmax)
                    continue;
                if (victim < 0 || m->index > in->members[victim].index)
                    victim = (int)i;
            }
        }
        if (victim < 0)
            break;                  /* cannot happen: live > 0 members remain */
        const berth__ng_member_t *m = &in->members[victim];
        gone[victim] = 1;
        if (m->zone >= 0 && (size_t)m->zone < nz)
            zcount[m->zone]--;
        if (m->host >= 0 && (size_t)m->host < in->nhosts)
            hcount[m->host]--;
        live--;
        if (plan_outdated(in, (size_t)victim) && o.outdated > 0)
            o.outdated--;
        EMIT(.kind = BERTH__NG_REMOVE, .index = m->index, .zone = m->zone, .host = -1);
    }

    /* Missing: the lowest free index, in the zone holding the fewest that
     * has room (the first such zone on a tie). */
    uint32_t next = 0;
    for (size_t k = live; k < target; k++) {
        while (next < BERTH_NGROUP_MEMBERS_MAX && used[next])
            next++;
        if (next >= BERTH_NGROUP_MEMBERS_MAX)
            break;
        size_t zmin = 0;
        for (size_t z = 1; z < nz; z++)
            if (zcount[z] < zcount[zmin])
                zmin = z;
        int zone = -1, host = -1;
        /* Zones by count, then by position: at most nz passes. */
        for (uint32_t c = zcount[zmin]; zone < 0; c++) {
            bool any_left = false;
            for (size_t z = 0; z < nz && zone < 0; z++) {
                if (zcount[z] > c)
                    any_left = true;
                if (zcount[z] != c)
                    continue;
                int h = plan_host(in, (int)z, hcount, fc, fm, fg);
                if (h >= 0) {
                    zone = (int)z;
                    host = h;
                }
            }
            if (!any_left)
                break;
        }
        bool fallback = zone >= 0 && zcount[zone] > zcount[zmin];
        if (zone < 0)
            zone = (int)zmin;       /* no room seen: let the engine say why */
        EMIT(.kind = BERTH__NG_CREATE, .index = next, .zone = zone, .host = host,
             .fallback = fallback);
        used[next] = 1;
        zcount[zone]++;
        if (host >= 0) {
            hcount[host]++;
            fc[host] -= in->millicores;
            fm[host] -= in->memory_mib;
            fg[host] -= in->gpus;
        }
    }
    if (replacing || o.halted || in->manual)
        goto done;

    if (in->batch > 0) {
        /* In place, in batches: at most `batch` members updating at once
         * (those at the revision not yet available count), the
         * unavailable old members first, the available ones only when a
         * batch may start; in index order, so the rollout is predictable. */
        for (int pass = 0; pass < 2 && budget > 0; pass++) {
            if (pass == 1 && !may_start)
                break;
            for (uint32_t idx = 0; idx < BERTH_NGROUP_MEMBERS_MAX && budget > 0; idx++) {
                for (size_t i = 0; i < in->nmembers && budget > 0; i++) {
                    const berth__ng_member_t *m = &in->members[i];
                    if (m->index != idx || gone[i] || !plan_outdated(in, i) ||
                        m->available != (pass == 1))
                        continue;
                    EMIT(.kind = BERTH__NG_UPDATE, .index = m->index, .zone = m->zone,
                         .host = -1);
                    budget--;
                    o.batch_started = o.batch_started || pass == 1;
                }
            }
        }
        goto done;
    }

    /* The former bound.  Redeploying a member that is unavailable anyway
     * costs nothing; the others go in batches within max_unavailable, and
     * a batch starts only once every member at the revision is available. */
    uint32_t unavailable = 0, pending = 0;
    for (size_t i = 0; i < in->nmembers; i++) {
        const berth__ng_member_t *m = &in->members[i];
        if (gone[i] || m->available)
            continue;
        unavailable++;
        if (m->revision == in->revision)
            pending++;
    }
    for (size_t i = 0; i < in->nmembers; i++) {
        const berth__ng_member_t *m = &in->members[i];
        if (!gone[i] && !m->available && m->revision != in->revision)
            EMIT(.kind = BERTH__NG_UPDATE, .index = m->index, .zone = m->zone, .host = -1);
    }
    if (pending == 0 && !in->paused && unavailable < in->max_unavailable) {
        uint32_t left = in->max_unavailable - unavailable;
        /* In index order, so that the rollout is predictable. */
        for (uint32_t idx = 0; idx < BERTH_NGROUP_MEMBERS_MAX && left > 0; idx++) {
            for (size_t i = 0; i < in->nmembers && left > 0; i++) {
                const berth__ng_member_t *m = &in->members[i];
                if (m->index != idx || gone[i] || !m->available || m->revision == in->revision)
                    continue;
                EMIT(.kind = BERTH__NG_UPDATE, .index = m->index, .zone = m->zone, .host = -1);
                left--;
                o.batch_started = true;
            }
        }
    }
done:
#undef EMIT
    if (seen != NULL)
        *seen = o;
    return n < cap ? n : cap;
}

