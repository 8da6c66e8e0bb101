/*
 * groups.c: what the agent knows of each group, and its tables of them.
 *
 * The agent keeps one agroup_t per group it runs, found by key, and by the
 * runtime group it runs as when that is another key's (a group claimed
 * from a standby pool), through hash tables (uthash), never by a walk over
 * all.  The table's list is the sweep's order (supervise.c).  Beside
 * them, the host ports each group's ports last had (remembered_t), kept
 * after the group leaves so that a stop and start or an update on this
 * host asks the runtime for the same ones.  This file never calls the
 * runtime or the cell: it only keeps, finds and frees.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

/* Frees an agroup that is in none of the agent's tables. */
void group_free(agroup_t *g)
{
    if (g == NULL)
        return;
    free(g->key);
    free(g->runtime);
    berth_group_free(g->spec);
    free(g->c);
    free(g->last_view);
    usage_free(g->usage);
    free(g);
}

/* The group kept under `key`, or NULL: a hash lookup, since every
 * assignment and call looks its group up. */
agroup_t *group_find(agent_t *a, const char *key)
{
    agroup_t *g = NULL;
    HASH_FIND(hh, a->groups, key, strlen(key), g);
    return g;
}

/* Takes g (kept) out of the runtime index, before its runtime changes or
 * it goes. */
void runtime_unindex(agent_t *a, agroup_t *g)
{
    if (g->kept && g->runtime != NULL)
        HASH_DELETE(hh_rt, a->by_runtime, g);
}

/* Forgets the group kept under `key`, if any, and frees it.  The sweep
 * goes on from the next group, so that none is skipped. */
void group_drop(agent_t *a, const char *key)
{
    agroup_t *g = group_find(a, key);
    if (g == NULL)
        return;
    if (a->sweep_next == g)
        a->sweep_next = g->hh.next;
    if (a->metrics_next == g)
        a->metrics_next = g->hh.next;
    runtime_unindex(a, g);
    HASH_DELETE(hh, a->groups, g);
    g->kept = false;
    group_free(g);
}

/* Keeps g (no group is kept under its key: callers drop the old one
 * first), indexed by key and, when it runs as another key's runtime
 * group, by that key.  It goes at the end of the sweep's order.  Returns
 * 0, or BERTH_ENOMEM with g not kept (the caller still owns it). */
int group_keep(agent_t *a, agroup_t *g)
{
    HASH_ADD_KEYPTR(hh, a->groups, g->key, strlen(g->key), g);
    if (g->hh.tbl == NULL)
        return BERTH_ENOMEM;
    if (g->runtime != NULL) {
        HASH_ADD_KEYPTR(hh_rt, a->by_runtime, g->runtime, strlen(g->runtime), g);
        if (g->hh_rt.tbl == NULL) {
            HASH_DELETE(hh, a->groups, g);
            return BERTH_ENOMEM;
        }
    }
    g->kept = true;
    return 0;
}

/* Forgets and frees every group (at exit; the runtime is left alone). */
void groups_free(agent_t *a)
{
    agroup_t *g, *tmp;
    HASH_ITER(hh, a->groups, g, tmp) {
        runtime_unindex(a, g);
        HASH_DELETE(hh, a->groups, g);
        g->kept = false;
        group_free(g);
    }
    a->sweep_next = NULL;
}

/* The key of the runtime group `g` runs as (every plugin call names it). */
const char *runtime_key(const agroup_t *g)
{
    return g->runtime != NULL ? g->runtime : g->key;
}

/* The group that runs as runtime group `key` on behalf of another key:
 * a hash lookup, as every assignment for an unknown key asks. */
agroup_t *runtime_owner(agent_t *a, const char *key)
{
    agroup_t *g = NULL;
    HASH_FIND(hh_rt, a->by_runtime, key, strlen(key), g);
    return g;
}

/* Container i of s, init containers first: the order of agroup_t.c. */
const berth_container_t *spec_container(const berth_group_t *s, size_t i)
{
    return i < s->ninit_containers ? &s->init_containers[i]
                                   : &s->containers[i - s->ninit_containers];
}

/* A new agroup for `key` at `generation` holding `spec` (taken; NULL for
 * a record whose document is unusable), not yet kept: keep it with
 * group_keep() or free it with group_free().  NULL when memory runs out,
 * and then spec is still the caller's. */
agroup_t *group_new(const char *key, uint64_t generation, uint64_t digest,
                    berth_group_t *spec)
{
    agroup_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    g->key = strdup(key);
    g->n = spec != NULL ? spec->ninit_containers + spec->ncontainers : 0;
    g->c = calloc(g->n ? g->n : 1, sizeof *g->c);
    if (g->key == NULL || g->c == NULL) {
        free(g->key);
        free(g->c);
        free(g);
        return NULL;
    }
    g->spec = spec;
    g->generation = generation;
    g->digest = digest;
    g->provisioning = "Creating";
    /* Nothing written yet, nothing known: stepped and shown at once. */
    g->busy = true;
    g->view_stale = true;
    for (size_t i = 0; i < g->n; i++) {
        const berth_container_t *c = spec_container(spec, i);
        snprintf(g->c[i].name, sizeof g->c[i].name, "%s", c->name);
        g->c[i].is_init = i < spec->ninit_containers;
    }
    return g;
}

/* ---- remembered host ports ------------------------------------------------------------ */

/* Remembers the host ports g's runtime publishes now (g->st), when it
 * publishes any, under g's key (the newest at the end; beyond
 * PORTS_REMEMBERED_MAX groups the oldest is forgotten).  A port published
 * on another host port than the one asked for is logged: it was taken.
 * Out of memory, nothing is remembered (the next create lets the runtime
 * choose). */
void ports_remember(agent_t *a, agroup_t *g)
{
    if (!g->st.exists || g->st.nports == 0)
        return;
    size_t n = g->st.nports < BERTH_PLUGIN_PORTS_MAX ? g->st.nports : BERTH_PLUGIN_PORTS_MAX;
    for (size_t i = 0; i < n; i++)
        if (g->st.ports[i].host_port == 0)
            return;                 /* not all published yet */
    remembered_t *r = NULL;
    size_t len = strlen(g->key);
    HASH_FIND(hh, a->ports, g->key, len, r);
    if (r != NULL) {
        if (r->n == n && memcmp(r->ports, g->st.ports, n * sizeof r->ports[0]) == 0)
            return;
        for (size_t i = 0; g->ports_asked && i < n; i++) {
            const berth_published_port_t *p = &g->st.ports[i];
            for (size_t k = 0; k < r->n; k++)
                if (r->ports[k].port == p->port && r->ports[k].protocol == p->protocol &&
                    r->ports[k].host_port != p->host_port)
                    log_warn(g->key, "port %u/%s: host port %u was taken; published on %u "
                             "instead", p->port,
                             p->protocol == BERTH_PROTOCOL_UDP ? "UDP" : "TCP",
                             r->ports[k].host_port, p->host_port);
        }
        HASH_DELETE(hh, a->ports, r);
        free(r);
    }
    if (HASH_COUNT(a->ports) >= PORTS_REMEMBERED_MAX) {
        remembered_t *old = a->ports;
        HASH_DELETE(hh, a->ports, old);
        free(old);
    }
    r = malloc(sizeof *r + len + 1);
    if (r == NULL)
        return;
    memcpy(r->key, g->key, len + 1);
    r->n = n;
    memcpy(r->ports, g->st.ports, n * sizeof r->ports[0]);
    HASH_ADD_KEYPTR(hh, a->ports, r->key, len, r);
    if (r->hh.tbl == NULL)
        free(r);
}

/* The host ports remembered for the group under `key`, or NULL. */
const remembered_t *ports_recall(agent_t *a, const char *key)
{
    remembered_t *r = NULL;
    HASH_FIND(hh, a->ports, key, strlen(key), r);
    return r;
}

/* Forgets every remembered port (at exit). */
void ports_forget_all(agent_t *a)
{
    remembered_t *r, *tmp;
    HASH_ITER(hh, a->ports, r, tmp) {
        HASH_DELETE(hh, a->ports, r);
        free(r);
    }
}
