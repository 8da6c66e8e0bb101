/*
 * converge.c: from assignments to the runtime: converge, adopt, teardown,
 * restart, and the reconciliation at start.
 *
 * Convergence is idempotent and driven by the record, never by the entry:
 * a group whose record is gone or on another host is removed from the
 * runtime; a group whose runtime copy has another generation or document
 * digest is removed and created anew (an update restarts every container
 * on the same host, with images already present); a runtime copy that is
 * whole and current is adopted as it is, with its restart counts and events
 * read back from the last view the agent wrote.  At start every group the
 * runtime holds and every group the cell places on the host is converged
 * so, so that after a crash of the agent nothing runs twice and nothing
 * runs that no record owns.  A group created again on this host (an
 * update, a stop and start, a failed start) asks the plugin for the host
 * ports its ports had here (groups.c remembers them), except after a
 * failed start, when the runtime chooses.
 *
 * A group claimed from a standby pool (docs/standby-pools.md) keeps running
 * as the runtime group of the pool member it took over: its record names
 * that member's key, generation and digest, and the agent adopts that
 * runtime group for the new key (nothing pulled, created or started) and
 * addresses it under the member's key from then on.
 *
 * Config maps are the one part of a document a running group takes in
 * place: the runtime digest leaves them out, so a new generation whose
 * document differs from the running one in its config maps alone is
 * handed to the plugin's `config_maps` (nothing stopped or restarted), as
 * are a claimed member's new document's maps and, after a restart of the
 * agent, those of a group adopted at another generation of the same
 * document.  A plugin without the operation gets the group created anew.
 *
 * It must never act on what an assignment entry says rather than on the
 * record, and never leave a runtime group running that no record owns.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent.h"

static void group_pull_create(agent_t *a, agroup_t *g, const berth_group_t *clear);

/* The registry credential whose server is the image's registry, if any. */
static const berth_registry_credential_t *credential_for(const berth_group_t *s,
                                                         const char *image)
{
    const char *slash = strchr(image, '/');
    if (slash == NULL)
        return NULL;
    size_t n = (size_t)(slash - image);
    for (size_t i = 0; i < s->ncredentials; i++) {
        const char *server = s->credentials[i].server;
        if (server != NULL && strlen(server) == n && strncmp(server, image, n) == 0)
            return &s->credentials[i];
    }
    return NULL;
}

/* A copy of g's document with its secrets unsealed (lib/seal.h), for the
 * runtime calls of one create: the agent keeps only the sealed document.
 * Free with berth__group_free_wiped() as soon as the runtime has it.  NULL when
 * a secret cannot be unsealed (no key file, a key id the file lacks, a
 * value altered) or out of memory: the group is then failed, naming the
 * secret's path, and nothing of it runs. */
static berth_group_t *spec_unsealed(agent_t *a, agroup_t *g)
{
    berth_error_t err;
    berth_error_clear(&err);
    char *text = NULL;
    berth_group_t *clear = NULL;
    int rc = berth_group_to_json(g->spec, 0, &text, NULL);
    if (rc == 0)
        rc = berth_group_parse(text, strlen(text), &clear, &err);
    berth_free(text);
    if (rc == 0)
        rc = berth__unseal_group(a->o.secrets, clear, &err);
    if (rc == 0)
        return clear;
    berth__group_free_wiped(clear);
    if (err.target[0] != '\0')
        fail_group(a, g, "secret %s cannot be unsealed: %s", err.target, err.message);
    else
        fail_group(a, g, "the document cannot be read for the runtime: %s",
                   rc == BERTH_ENOMEM ? "out of memory" : err.message);
    return NULL;
}

/* Pulls what is missing, then creates the group's containers (ACI's
 * Pulling, Pulled and Created events); on failure the group is failed
 * (fail_group()) and nothing of it runs. */
void group_create(agent_t *a, agroup_t *g)
{
    view_touch(g);                  /* its phase, events and perhaps digest */
    if (g->runtime != NULL) {
        /* The claimed runtime group is gone: the group is created as itself. */
        runtime_unindex(a, g);
        free(g->runtime);
        g->runtime = NULL;
        g->digest = berth_runtime_digest(g->spec);
    }
    berth_group_t *clear = spec_unsealed(a, g);
    if (clear == NULL)
        return;
    group_pull_create(a, g, clear);
    berth__group_free_wiped(clear);
}

/* The virtual network subnet g's document names (properties.subnetIds[0].id)
 * into id, and its CIDR from the cell's table into cidr; id "" when it
 * names none, or one the cell does not have (a cell without subnets keeps
 * subnetIds as data).  Returns 0, or -1 when the table cannot be read (g
 * is failed). */
static int group_subnet(agent_t *a, agroup_t *g, const berth_group_t *spec, char *id,
                        size_t idcap, char *cidr, size_t cap)
{
    id[0] = '\0';
    json_t *extra = spec->properties_extra_json != NULL
                        ? json_loads(spec->properties_extra_json, 0, NULL) : NULL;
    json_t *first = json_array_get(json_object_get(extra, "subnetIds"), 0);
    const char *sid = json_string_value(json_object_get(first, "id"));
    if (sid != NULL && strlen(sid) < idcap)
        memcpy(id, sid, strlen(sid) + 1);
    json_decref(extra);
    if (id[0] == '\0')
        return 0;
    berth_error_t err;
    int rc = berth_hostlink_subnet_cidr(a->link, id, cidr, cap, &err);
    if (rc == BERTH_ENOENT) {
        log_info(g->key, "subnet %s is not one of the cell's: the group runs on the "
                 "runtime's default network", id);
        id[0] = '\0';
        return 0;
    }
    if (rc != 0) {
        fail_group(a, g, "the cell's subnets cannot be read: %s", err.message);
        return -1;
    }
    return 0;
}

/* group_create() once the document is unsealed: `clear` is g's document
 * with its secrets, for the runtime alone. */
static void group_pull_create(agent_t *a, agroup_t *g, const berth_group_t *clear)
{
    berth_error_t err;
    for (size_t i = 0; i < g->n; i++) {
        const char *image = spec_container(g->spec, i)->image;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(spec_container(g->spec, k)->image, image) == 0;
        if (seen)
            continue;
        bool cached = false;
        event_add(g, &g->c[i].ev, "Pulling", "Normal", "pulling image \"%s\"", image);
        if (a->ops->image_ensure(a->ctx, image, credential_for(clear, image), &cached,
                                 &err) != 0) {
            event_add(g, &g->c[i].ev, "Failed", "Warning", "Failed to pull image \"%s\": %s",
                      image, err.message);
            fail_group(a, g, "image \"%s\" could not be pulled: %s", image, err.message);
            return;
        }
        event_add(g, &g->c[i].ev, "Pulled", "Normal",
                  cached ? "Container image \"%s\" already present on machine"
                         : "Successfully pulled image \"%s\"",
                  image);
        log_info(g->key, "image %s %s", image, cached ? "already present" : "pulled");
        a->images_dirty = a->images_dirty || !cached;
    }
    uint32_t shares[BERTH_PLUGIN_CONTAINERS_MAX] = {0};
    uint32_t total = 0;
    if (g->spec->ncontainers > BERTH_PLUGIN_CONTAINERS_MAX ||
        berth_group_cpu_shares(g->spec, shares, BERTH_PLUGIN_CONTAINERS_MAX) != 0) {
        fail_group(a, g, "the group has more containers than a host runs");
        return;
    }
    for (size_t i = 0; i < g->spec->ncontainers; i++)
        total += shares[i];
    /* A group in a subnet: the subnet's network, at the address berthd
     * gave it (its document's ipAddress.ip). */
    char subnet[BERTH_SUBNET_ID_MAX + 1], cidr[32];
    if (group_subnet(a, g, clear, subnet, sizeof subnet, cidr, sizeof cidr) != 0)
        return;
    const berth_ip_address_t *ip = clear->ip_address;
    berth_runtime_group_t rg = {g->key, g->generation, g->digest, clear, total, shares,
                                NULL, 0, subnet[0] != '\0' ? subnet : NULL,
                                subnet[0] != '\0' ? cidr : NULL,
                                subnet[0] != '\0' && ip != NULL ? ip->ip : NULL};
    /* The host ports the group had here, asked for again -- unless a start
     * failed since, which a port taken meanwhile may have caused. */
    const remembered_t *r = ports_recall(a, g->key);
    g->ports_asked = r != NULL && g->start_failures == 0;
    if (g->ports_asked) {
        rg.host_ports = r->ports;
        rg.nhost_ports = r->n;
        log_info(g->key, "asking the runtime for the %zu host port%s the group had here", r->n,
                 r->n == 1 ? "" : "s");
    } else if (r != NULL) {
        log_info(g->key, "a start failed: the runtime chooses new host ports");
    }
    int rc = a->ops->create(a->ctx, &rg, &err);
    if (rc == BERTH_EEXIST) {
        /* Left over from an interrupted attempt: start from nothing. */
        if (a->ops->remove(a->ctx, g->key, &err) == 0)
            rc = a->ops->create(a->ctx, &rg, &err);
    }
    if (rc != 0) {
        fail_group(a, g, "containers could not be created: %s", err.message);
        return;
    }
    for (size_t i = 0; i < g->n; i++)
        event_add(g, &g->c[i].ev, "Created", "Normal", "Created container %s", g->c[i].name);
    log_info(g->key, "created generation %" PRIu64 " (%zu containers, %zu init)", g->generation,
             g->spec->ncontainers, g->spec->ninit_containers);
    g->phase = g->spec->ninit_containers > 0 ? PHASE_INIT : PHASE_START;
    g->init_next = 0;
}

/* Whether any container of spec has a config map entry. */
static bool has_config_maps(const berth_group_t *spec)
{
    for (size_t i = 0; i < spec->ncontainers; i++)
        if (spec->containers[i].nconfig_map > 0)
            return true;
    return false;
}

/* Hands spec's config maps to runtime group rt (group key's) in place.
 * Returns 0 when delivered (or, unless `needed`, when the plugin has no
 * such operation and spec has no maps), 1 when the plugin cannot deliver
 * them or the runtime no longer holds the group (it must be created anew),
 * or BERTH_EIO (try again later). */
static int config_deliver(agent_t *a, const char *key, const char *rt,
                          const berth_group_t *spec, bool needed)
{
    const berth_plugin_ops_t *ops = a->ops;
    bool can = ops->size >= offsetof(berth_plugin_ops_t, config_maps) + sizeof ops->config_maps &&
               ops->config_maps != NULL;
    if (!can)
        return needed || has_config_maps(spec) ? 1 : 0;
    berth_error_t err;
    int rc = ops->config_maps(a->ctx, rt, spec, &err);
    if (rc == BERTH_ENOENT)         /* nothing runs to take them: made anew */
        return 1;
    if (rc != 0) {
        log_error(key, "config maps not delivered: %s", err.message);
        return BERTH_EIO;
    }
    return 0;
}

/* Adopts a whole, current runtime copy found at start or after a lost
 * track: the state machine resumes where the runtime stands. */
static void group_adopt(agent_t *a, agroup_t *g)
{
    view_touch(g);
    view_restore(a, g);
    size_t ninit = g->spec->ninit_containers;
    status_absorb(g);
    ports_remember(a, g);
    g->phase = PHASE_RUN;
    g->provisioning = "Creating";
    for (size_t i = 0; i < ninit; i++) {
        const berth_container_status_t *s = &g->c[i].cur;
        if (!(s->state == BERTH_CONTAINER_TERMINATED && s->exit_code == 0)) {
            g->phase = PHASE_INIT;
            g->init_next = i;
            g->provisioning = "Creating";
            break;
        }
    }
    if (g->phase == PHASE_RUN)
        for (size_t i = ninit; i < g->n; i++)
            if (g->c[i].cur.state == BERTH_CONTAINER_WAITING && g->c[i].cur.started_ms == 0) {
                g->phase = PHASE_START;
                g->provisioning = "Creating";
                break;
            }
    /* Terminations before the restart were acted upon already, or will be
     * now: only those after the view's time are new. */
    log_info(g->key, "adopted generation %" PRIu64 " from the runtime", g->generation);
}

/* Removes the group from the runtime and forgets it. */
static int group_teardown(agent_t *a, const char *key)
{
    berth_error_t err;
    agroup_t *g = group_find(a, key);
    if (g != NULL && g->spec != NULL)
        for (size_t i = 0; i < g->n; i++)
            if (g->c[i].cur.state == BERTH_CONTAINER_RUNNING)
                event_add(g, &g->c[i].ev, "Killing", "Normal", "Stopping container %s",
                          g->c[i].name);
    if (a->ops->remove(a->ctx, g != NULL ? runtime_key(g) : key, &err) != 0) {
        log_error(key, "could not remove the group: %s", err.message);
        return BERTH_EIO;
    }
    group_drop(a, key);
    if (berth_hostlink_view_delete(a->link, key, &err) < 0)
        log_warn(key, "instance view not dropped: %s", err.message);
    if (berth_hostlink_metrics_delete(a->link, key, &err) < 0)
        log_warn(key, "usage metrics not dropped: %s", err.message);
    log_info(key, "removed");
    return 0;
}

static void group_restart(agent_t *a, agroup_t *g)
{
    berth_error_t err;
    size_t ninit = g->spec->ninit_containers;
    /* Whatever the runtime did, the next tick reads what it runs now. */
    g->busy = true;
    for (size_t i = ninit; i < g->n; i++)
        event_add(g, &g->c[i].ev, "Killing", "Normal", "Stopping container %s", g->c[i].name);
    if (a->ops->restart(a->ctx, runtime_key(g), a->o.stop_grace_s, &err) != 0) {
        log_error(g->key, "restart failed: %s", err.message);
        return;
    }
    for (size_t i = ninit; i < g->n; i++) {
        g->c[i].restart_count++;
        g->c[i].next_start_ms = 0;
        event_add(g, &g->c[i].ev, "Started", "Normal", "Started container %s", g->c[i].name);
    }
    log_info(g->key, "restarted every container in place");
}

/* A group claimed from a standby pool (ng, new, not yet kept): adopts the
 * former member's runtime group when it is whole and the one the claim
 * saw (generation and digest), dropping the member's own tracking without
 * touching the runtime.  Returns 1 when adopted (ng is kept), 0 when the
 * group is to be converged as itself (a stale copy of the member is
 * removed first), or a negative code (ng freed) to try again later. */
static int converge_claimed(agent_t *a, agroup_t *ng)
{
    berth_error_t err;
    char rt[BERTH_GROUP_KEY_MAX + 1];
    uint64_t rt_gen = 0, rt_digest = 0;
    int rc = berth_hostlink_group_runtime(a->link, ng->key, rt, sizeof rt, &rt_gen, &rt_digest,
                                          &err);
    if (rc == 0 || rc == BERTH_ENOENT || strcmp(rt, ng->key) == 0)
        return 0;
    if (rc < 0) {
        log_warn(ng->key, "record unreadable: %s", err.message);
        group_free(ng);
        return rc;
    }
    if (a->ops->status(a->ctx, rt, &ng->st, &err) != 0) {
        log_warn(ng->key, "status unavailable: %s", err.message);
        group_free(ng);
        return BERTH_EIO;
    }
    bool whole = ng->st.exists && ng->st.generation == rt_gen && ng->st.digest == rt_digest &&
                 ng->st.ncontainers == ng->n;
    for (size_t i = 0; whole && i < ng->n; i++)
        whole = ng->st.containers[i].exists;
    agroup_t *member = group_find(a, rt);
    /* The claim took the member's record and view; its usage metrics go too. */
    if (berth_hostlink_metrics_delete(a->link, rt, &err) < 0)
        log_warn(ng->key, "usage metrics of %s not dropped: %s", rt, err.message);
    /* The claim's document brings its own config maps. */
    int cm = whole ? config_deliver(a, ng->key, rt, ng->spec, false) : 0;
    if (cm < 0) {
        group_free(ng);
        return cm;
    }
    whole = whole && cm == 0;
    if (!whole) {
        if (ng->st.exists && a->ops->remove(a->ctx, rt, &err) != 0) {
            log_error(ng->key, "could not remove the stale standby copy %s: %s", rt,
                      err.message);
            group_free(ng);
            return BERTH_EIO;
        }
        if (member != NULL)
            group_drop(a, rt);
        memset(&ng->st, 0, sizeof ng->st);
        return 0;
    }
    ng->runtime = strdup(rt);
    if (ng->runtime == NULL) {
        group_free(ng);
        return BERTH_ENOMEM;
    }
    ng->digest = rt_digest;
    if (member != NULL)
        group_drop(a, rt);
    if (group_keep(a, ng) != 0) {
        group_free(ng);
        return BERTH_ENOMEM;
    }
    group_adopt(a, ng);
    group_step(a, ng);
    view_write(a, ng);
    log_info(ng->key, "claimed standby group %s: running as it, nothing recreated", rt);
    return 1;
}

/* Makes the runtime match the group's record.  Returns 0 when done (the
 * assignment may be acknowledged) or a negative code to try again later. */
int converge(agent_t *a, const char *key, bool restart)
{
    berth_error_t err;
    char *doc = NULL, host[BERTH_NAME_MAX + 1] = "";
    uint64_t gen = 0;
    int rc = berth_hostlink_group(a->link, key, &doc, &gen, host, &err);
    if (rc == BERTH_ENOENT && runtime_owner(a, key) != NULL) {
        /* A standby member claimed by another key: its runtime group is
         * that key's now. */
        return 0;
    }
    if (rc == BERTH_ENOENT || (rc == 0 && strcmp(host, a->o.host) != 0)) {
        berth_free(doc);
        return group_teardown(a, key);
    }
    if (rc < 0) {
        log_warn(key, "record unreadable: %s", err.message);
        return rc;
    }
    agroup_t *g = group_find(a, key);
    if (g != NULL && g->generation == gen) {
        berth_free(doc);
        if (restart && g->spec != NULL && g->phase != PHASE_FAILED)
            group_restart(a, g);
        return 0;
    }
    berth_group_t *spec = NULL;
    if (doc == NULL || berth_group_parse(doc, strlen(doc), &spec, &err) != 0) {
        berth_free(doc);
        g = group_new(key, gen, 0, NULL);
        if (g == NULL)
            return BERTH_ENOMEM;
        group_drop(a, key);
        if (group_keep(a, g) != 0) {
            group_free(g);
            return BERTH_ENOMEM;
        }
        fail_group(a, g, doc == NULL ? "the record holds no document"
                                     : "the record's document is unusable");
        return 0;
    }
    berth_free(doc);
    uint64_t digest = berth_runtime_digest(spec);
    if (g != NULL && g->spec != NULL && g->phase != PHASE_FAILED &&
        berth_runtime_digest(g->spec) == digest) {
        /* Only the config maps changed: delivered to what runs. */
        int cm = config_deliver(a, key, runtime_key(g), spec, true);
        if (cm < 0) {
            berth_group_free(spec);
            return cm;
        }
        if (cm == 0) {
            berth_group_free(g->spec);
            g->spec = spec;
            g->generation = gen;
            view_touch(g);
            view_write(a, g);
            log_info(key, "generation %" PRIu64 ": config maps updated in place", gen);
            return 0;
        }
    }
    agroup_t *ng = group_new(key, gen, digest, spec);
    if (ng == NULL) {
        berth_group_free(spec);
        return BERTH_ENOMEM;
    }
    if (g == NULL) {
        int claimed = converge_claimed(a, ng);
        if (claimed != 0)
            return claimed < 0 ? claimed : 0;
    } else if (g->runtime != NULL) {
        /* A claimed group redeployed: it runs as itself from now on. */
        if (a->ops->remove(a->ctx, g->runtime, &err) != 0) {
            log_error(key, "could not remove the claimed copy: %s", err.message);
            group_free(ng);
            return BERTH_EIO;
        }
    }
    if (a->ops->status(a->ctx, key, &ng->st, &err) != 0) {
        log_warn(key, "status unavailable: %s", err.message);
        group_free(ng);
        return BERTH_EIO;
    }
    /* Another generation of the same document (its config maps aside)
     * is adopted too, its maps delivered. */
    bool whole = ng->st.exists && ng->st.digest == digest && ng->st.ncontainers == ng->n;
    for (size_t i = 0; whole && i < ng->n; i++)
        whole = ng->st.containers[i].exists;
    if (whole && g == NULL) {
        int cm = config_deliver(a, key, key, ng->spec, ng->st.generation != gen);
        if (cm < 0) {
            group_free(ng);
            return cm;
        }
        whole = cm == 0;
    }
    if (whole && g == NULL) {
        if (group_keep(a, ng) != 0) {
            group_free(ng);
            return BERTH_ENOMEM;
        }
        group_adopt(a, ng);
        group_step(a, ng);
        view_write(a, ng);
        return 0;
    }
    if (ng->st.exists) {
        log_info(key, "replacing runtime generation %" PRIu64 " with %" PRIu64,
                 ng->st.generation, gen);
        for (size_t i = 0; i < ng->n; i++)
            event_add(ng, &ng->c[i].ev, "Killing", "Normal", "Stopping container %s",
                      ng->c[i].name);
        if (a->ops->remove(a->ctx, key, &err) != 0) {
            log_error(key, "could not remove the old copy: %s", err.message);
            group_free(ng);
            return BERTH_EIO;
        }
    }
    group_drop(a, key);
    if (group_keep(a, ng) != 0) {
        group_free(ng);
        return BERTH_ENOMEM;
    }
    memset(&ng->st, 0, sizeof ng->st);
    view_write(a, ng);              /* Creating */
    group_create(a, ng);
    group_step(a, ng);
    view_write(a, ng);
    return 0;
}

/* ---- reconciliation ----------------------------------------------------------------- */

/* A set of keys that remembers their order: the cell's groups, then the
 * runtime's, each once.  A hash set, not a list walked per key: both
 * lists name every group of the host. */
typedef struct key_entry {
    UT_hash_handle hh;
    char key[];
} key_entry_t;

typedef struct keys {
    key_entry_t *set;               /* uthash head; its list is the order   */
    bool incomplete;                /* a key could not be added (no memory) */
} keys_t;

/* Adds `key` unless it is there already; when it cannot (no memory),
 * marks the set incomplete, so that reconciliation is tried again rather
 * than leaving a group out. */
static void keys_add(keys_t *ks, const char *key)
{
    size_t len = strlen(key);
    key_entry_t *e = NULL;
    HASH_FIND(hh, ks->set, key, len, e);
    if (e != NULL)
        return;
    e = malloc(sizeof *e + len + 1);
    if (e != NULL) {
        memcpy(e->key, key, len + 1);
        HASH_ADD_KEYPTR(hh, ks->set, e->key, len, e);
        if (e->hh.tbl != NULL)
            return;
        free(e);
    }
    ks->incomplete = true;
}

static void keys_free(keys_t *ks)
{
    key_entry_t *e, *tmp;
    HASH_ITER(hh, ks->set, e, tmp) {
        HASH_DELETE(hh, ks->set, e);
        free(e);
    }
}

static void list_cb(const char *key, uint64_t generation, uint64_t digest, void *data)
{
    keys_add(data, key);
}

static void cell_cb(const char *key, void *data)
{
    keys_add(data, key);
}

/* Converges every group the runtime holds or the cell places here.
 * Returns 0 or a negative code (try again). */
int reconcile(agent_t *a)
{
    keys_t ks = {0};
    berth_error_t err;
    /* The cell's groups first: a group claimed from a standby pool adopts
     * its member's runtime group before that key, which no record owns
     * any more, comes up from the runtime's list. */
    int rc = berth_hostlink_groups(a->link, cell_cb, &ks, &err);
    if (rc == 0)
        rc = a->ops->list(a->ctx, list_cb, &ks, &err);
    if (rc != 0) {
        log_error(NULL, "reconciliation could not list groups: %s", err.message);
        keys_free(&ks);
        return rc;
    }
    if (ks.incomplete) {
        log_error(NULL, "reconciliation could not list groups: out of memory");
        keys_free(&ks);
        return BERTH_ENOMEM;
    }
    int bad = 0;
    for (const key_entry_t *e = ks.set; e != NULL && !stopping; e = e->hh.next)
        if (converge(a, e->key, false) < 0)
            bad = BERTH_EIO;
    log_info(NULL, "reconciled %u groups", HASH_COUNT(ks.set));
    keys_free(&ks);
    return bad;
}
