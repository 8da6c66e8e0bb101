/*
 * index-oracle.c: what the tests check the placement index against: the
 * same choice as berth__index_choose() computed by a linear scan over every
 * host (berth__index_choose_brute()), and a walk over the index's own
 * invariants (berth__index_check()).
 *
 * Test code only: these are never linked into libberth.  They read the
 * index and never change it; they share with the index only the definition
 * of a host's values and of the policies' order (index.h), never its
 * treaps, grids or memos.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "index-oracle.h"

#define NIL BERTH__NIL

/* firstfit, by its definition: the first host in add order that meets
 * every constraint. */
static int first_fit(const berth__index_t *idx, const berth_request_t *req, uint32_t *slot,
                     berth_isolation_t *iso)
{
    for (uint32_t i = 0; i < idx->nhosts; i++) {
        const berth__host_t *h = &idx->hosts[idx->order[i]];
        unsigned tier;
        if (berth__host_open(h) && berth__host_matches(&h->attrs, req, iso, &tier) &&
            berth__host_fits(h, req)) {
            *slot = idx->order[i];
            return 0;
        }
    }
    return BERTH_ENOSPC;
}

/* The last node of a treap in order (its maximum), or NIL. */
static uint32_t treap_last(const berth__node_t *ns, uint32_t node)
{
    if (node == NIL)
        return NIL;
    while (ns[node].right != NIL)
        node = ns[node].right;
    return node;
}

/* The vector score's candidate test, by its definition: open, matching in
 * `tier`, fitting, and in the balanced pass balanced. */
static bool score_cand(const berth__host_t *h, const berth_request_t *req, unsigned tier,
                       bool bal_pass)
{
    berth_isolation_t hi;
    unsigned t;
    return berth__host_open(h) && berth__host_matches(&h->attrs, req, &hi, &t) && t == tier &&
        berth__host_fits(h, req) && (!bal_pass || berth__host_balanced(h, req));
}

static bool same_bucket(const berth__host_t *a, const berth__host_t *b)
{
    return a->cls == b->cls && berth__host_free_gpus(a) == berth__host_free_gpus(b) &&
        berth__host_free_cores(a) == berth__host_free_cores(b);
}

/* binpack with the vector score, by its definition: in the best tier (and
 * for a GPU request its balanced hosts when it has any), the candidates of
 * each class are in its fewest-free-GPU row of candidates, in the first
 * BERTH__SCORE_K of that row's free-core values (fewest first); each
 * value's representative is its least candidate in tree order, or with
 * image locality the one holding most images among its first
 * BERTH_LOCALITY_SCAN (the least in tree order among equals).  The winner
 * is the representative with the fewest free GPUs, then the least
 * berth__host_score(), the most images held, then the least in
 * berth__host_pick_cmp() order. */
static int score_brute(const berth__index_t *idx, const berth_request_t *req, uint32_t *slot,
                       berth_isolation_t *iso)
{
    unsigned best_tier = 8;
    for (uint32_t i = 0; i < idx->nhosts; i++) {
        const berth__host_t *h = &idx->hosts[idx->order[i]];
        berth_isolation_t hi;
        unsigned tier;
        if (berth__host_open(h) && berth__host_matches(&h->attrs, req, &hi, &tier) &&
            berth__host_fits(h, req) && tier < best_tier)
            best_tier = tier;
    }
    if (best_tier == 8)
        return BERTH_ENOSPC;
    bool bal_pass = false;
    for (uint32_t i = 0; i < idx->nhosts && req->demand.gpu_count > 0 && !bal_pass; i++)
        bal_pass = score_cand(&idx->hosts[idx->order[i]], req, best_tier, true);
    bool locality = idx->locality && req->nimages > 0;
    uint32_t best = NIL, best_held = 0;
    double best_score = 0;
    for (uint32_t i = 0; i < idx->nhosts; i++) {
        const berth__host_t *h = &idx->hosts[idx->order[i]];
        if (!score_cand(h, req, best_tier, bal_pass))
            continue;
        uint32_t g = berth__host_free_gpus(h), c = berth__host_free_cores(h);
        bool in_row = true;
        unsigned rank = 0, pos = 0;
        uint32_t held = locality ? berth__host_images_held(h, req) : 0;
        for (uint32_t j = 0; j < idx->nhosts && in_row; j++) {
            const berth__host_t *o = &idx->hosts[idx->order[j]];
            if (o == h || o->cls != h->cls || !score_cand(o, req, best_tier, bal_pass))
                continue;
            if (berth__host_free_gpus(o) < g) {
                in_row = false;
            } else if (berth__host_free_gpus(o) == g && berth__host_free_cores(o) < c) {
                /* count each smaller free-core value once: by its least host */
                bool least = true;
                for (uint32_t k = 0; k < idx->nhosts && least; k++) {
                    const berth__host_t *q = &idx->hosts[idx->order[k]];
                    least = q == o || !same_bucket(q, o) ||
                        !score_cand(q, req, best_tier, bal_pass) ||
                        berth__host_tree_cmp(q, o) > 0;
                }
                rank += least;
            } else if (same_bucket(o, h) && berth__host_tree_cmp(o, h) < 0) {
                pos++;
            }
        }
        if (!in_row || rank >= BERTH__SCORE_K || pos >= (locality ? BERTH_LOCALITY_SCAN : 1))
            continue;
        /* the representative of its bucket: no host of the window holds
         * more images, nor as many while coming earlier */
        bool rep = true;
        for (uint32_t j = 0; j < idx->nhosts && rep && locality; j++) {
            const berth__host_t *o = &idx->hosts[idx->order[j]];
            if (o == h || !same_bucket(o, h) || !score_cand(o, req, best_tier, bal_pass))
                continue;
            unsigned opos = 0;
            for (uint32_t k = 0; k < idx->nhosts; k++) {
                const berth__host_t *q = &idx->hosts[idx->order[k]];
                opos += q != o && same_bucket(q, o) && score_cand(q, req, best_tier, bal_pass) &&
                    berth__host_tree_cmp(q, o) < 0;
            }
            if (opos >= BERTH_LOCALITY_SCAN)
                continue;
            uint32_t oh = berth__host_images_held(o, req);
            rep = oh < held || (oh == held && berth__host_tree_cmp(o, h) > 0);
        }
        if (!rep)
            continue;
        double sc = berth__host_score(idx, h, req);
        if (best != NIL) {
            const berth__host_t *b = &idx->hosts[best];
            uint32_t gb = berth__host_free_gpus(b);
            if (g != gb ? g > gb
                        : sc != best_score ? sc > best_score
                        : held != best_held ? held < best_held
                        : berth__host_pick_cmp(h, 0, b, 0, false) > 0)
                continue;
        }
        best = idx->order[i];
        best_score = sc;
        best_held = held;
    }
    unsigned t;
    berth__host_matches(&idx->hosts[best].attrs, req, iso, &t);
    *slot = best;
    return 0;
}

int berth__index_choose_brute(const berth__index_t *idx, const berth_request_t *req,
                              uint32_t *slot, berth_isolation_t *iso)
{
    if (idx->policy == BERTH_POLICY_FIRSTFIT)
        return first_fit(idx, req, slot, iso);
    if (idx->score)
        return score_brute(idx, req, slot, iso);
    bool spread = idx->policy == BERTH_POLICY_SPREAD;
    uint32_t best = NIL;
    unsigned best_tier = 0;
    bool best_bal = false;
    berth_isolation_t best_iso = BERTH_ISOLATION_NONE;
    for (uint32_t i = 0; i < idx->nhosts; i++) {
        uint32_t s = idx->order[i];
        const berth__host_t *h = &idx->hosts[s];
        berth_isolation_t hi;
        unsigned tier;
        if (!berth__host_open(h) || !berth__host_matches(&h->attrs, req, &hi, &tier) ||
            !berth__host_fits(h, req))
            continue;
        /* binpack: balanced hosts first within a tier (spread: no such
         * preference) */
        bool bal = spread || berth__host_balanced(h, req);
        bool better;
        if (best == NIL || tier != best_tier) {
            better = best == NIL || tier < best_tier;
        } else if (bal != best_bal) {
            better = bal;
        } else {
            int cmp = berth__host_cmp(h, &idx->hosts[best]);
            better = spread ? cmp > 0 : cmp < 0;
        }
        if (better) {
            best = s;
            best_tier = tier;
            best_bal = bal;
            best_iso = hi;
        }
    }
    if (best == NIL)
        return BERTH_ENOSPC;
    if (!spread && idx->locality && req->nimages > 0) {
        /* Image locality, by its definition: the hosts that tie with `best`
         * on (tier, balance, free GPUs, free cores) form, per class, a list
         * in treap order; the first BERTH_LOCALITY_SCAN of each list are
         * candidates, and the one holding the most images wins, the least
         * in treap order among equals. */
        const berth__host_t *b = &idx->hosts[best];
        uint32_t pick = best, pick_held = berth__host_images_held(b, req);
        for (uint32_t i = 0; i < idx->nhosts; i++) {
            uint32_t s = idx->order[i];
            const berth__host_t *h = &idx->hosts[s];
            berth_isolation_t hi;
            unsigned tier;
            if (!berth__host_open(h) || !berth__host_matches(&h->attrs, req, &hi, &tier) ||
                !berth__host_fits(h, req) || tier != best_tier ||
                berth__host_balanced(h, req) != best_bal || berth__host_free_gpus(h) != berth__host_free_gpus(b) ||
                berth__host_free_cores(h) != berth__host_free_cores(b))
                continue;
            unsigned rank = 0;
            for (uint32_t j = 0; j < idx->nhosts; j++) {
                const berth__host_t *o = &idx->hosts[idx->order[j]];
                berth_isolation_t oi;
                unsigned ot;
                if (o != h && o->cls == h->cls && berth__host_open(o) &&
                    berth__host_matches(&o->attrs, req, &oi, &ot) && berth__host_fits(o, req) &&
                    berth__host_balanced(o, req) == best_bal && berth__host_free_gpus(o) == berth__host_free_gpus(h) &&
                    berth__host_free_cores(o) == berth__host_free_cores(h) && berth__host_tree_cmp(o, h) < 0)
                    rank++;
            }
            if (rank >= BERTH_LOCALITY_SCAN)
                continue;
            uint32_t held = berth__host_images_held(h, req);
            if (held > pick_held ||
                (held == pick_held && berth__host_tree_cmp(h, &idx->hosts[pick]) < 0)) {
                pick = s;
                pick_held = held;
                best_iso = hi;
            }
        }
        best = pick;
    }
    *slot = best;
    *iso = best_iso;
    return 0;
}

/* Walks one treap: in order, heap ordered, every node in the right bucket.
 * Returns the number of nodes, or -1 with `why` filled. */
static long check_treap(const berth__index_t *idx, uint32_t cls_id, uint32_t g, uint32_t c,
                        uint32_t node, const berth__host_t **prev, unsigned depth,
                        char *why, size_t cap)
{
    if (node == NIL)
        return 0;
    const berth__node_t *ns = idx->nodes;
    const berth__host_t *h = &idx->hosts[node];
    const berth__node_t *n = &ns[node];
    if (node >= idx->nslots || !h->live || !h->linked || h->cls != cls_id ||
        berth__host_free_gpus(h) != g || berth__host_free_cores(h) != c || depth > 4096) {
        snprintf(why, cap, "host slot %u is in the wrong bucket (class %u, %u GPUs, %u cores)",
                 node, cls_id, g, c);
        return -1;
    }
    if (n->memory != berth__host_free_memory(h) || n->tie != h->tie) {
        snprintf(why, cap, "the node of host '%s' is stale", h->name);
        return -1;
    }
    if ((n->left != NIL && ns[n->left].prio > n->prio) ||
        (n->right != NIL && ns[n->right].prio > n->prio)) {
        snprintf(why, cap, "treap heap order broken under host '%s'", h->name);
        return -1;
    }
    long l = check_treap(idx, cls_id, g, c, n->left, prev, depth + 1, why, cap);
    if (l < 0)
        return -1;
    if (*prev != NULL && berth__host_tree_cmp(*prev, h) >= 0) {
        snprintf(why, cap, "treap order broken at host '%s'", h->name);
        return -1;
    }
    *prev = h;
    long r = check_treap(idx, cls_id, g, c, n->right, prev, depth + 1, why, cap);
    if (r < 0)
        return -1;
    return l + r + 1;
}

int berth__index_check(const berth__index_t *idx, char *why, size_t cap)
{
    size_t linked = 0;
    for (uint32_t s = 0; s < idx->nslots; s++) {
        const berth__host_t *h = &idx->hosts[s];
        if (!h->live)
            continue;
        bool want = idx->policy != BERTH_POLICY_FIRSTFIT && h->cls != NIL && berth__host_linkable(h);
        if (h->linked != want) {
            snprintf(why, cap, "host '%s' is %slinked", h->name, h->linked ? "" : "not ");
            return BERTH_EINVAL;
        }
        if (h->used_millicores > h->cores * 1000u || h->used_memory_mib > h->memory_mib ||
            h->used_gpus > h->gpus) {
            snprintf(why, cap, "host '%s' is over capacity", h->name);
            return BERTH_EINVAL;
        }
        if (h->linked)
            linked++;
    }
    for (uint32_t s = 0; s < idx->nhosts; s++) {
        if (idx->hosts[idx->order[s]].order != s || !idx->hosts[idx->order[s]].live) {
            snprintf(why, cap, "add order broken at position %u", s);
            return BERTH_EINVAL;
        }
    }
    size_t total = 0;
    for (uint32_t k = 0; k < idx->nclasses; k++) {
        const berth__class_t *cls = &idx->classes[k];
        size_t in_class = 0;
        for (uint32_t g = 0; g < cls->nrows; g++) {
            bool row_used = false;
            for (uint32_t c = 0; c < cls->ncols; c++) {
                const berth__bucket_t *b = &cls->buckets[(size_t)g * cls->ncols + c];
                bool bit = (cls->bits[(size_t)g * cls->nwords + c / 64] >> (c % 64)) & 1u;
                if (bit != (b->root != NIL)) {
                    snprintf(why, cap, "class %u bucket (%u, %u): bitmap disagrees", k, g, c);
                    return BERTH_EINVAL;
                }
                const berth__host_t *prev = NULL;
                long n = check_treap(idx, k, g, c, b->root, &prev, 0, why, cap);
                if (n < 0)
                    return BERTH_EINVAL;
                uint32_t last = treap_last(idx->nodes, b->root);
                if (b->max != last ||
                    (last != NIL && b->max_memory != berth__host_free_memory(&idx->hosts[last]))) {
                    snprintf(why, cap, "class %u bucket (%u, %u): stale maximum", k, g, c);
                    return BERTH_EINVAL;
                }
                in_class += (size_t)n;
                row_used |= n > 0;
            }
            if (row_used != (((cls->rows >> g) & 1u) != 0)) {
                snprintf(why, cap, "class %u row %u: row bitmap disagrees", k, g);
                return BERTH_EINVAL;
            }
        }
        if (in_class != cls->linked) {
            snprintf(why, cap, "class %u counts %u hosts, holds %zu", k, cls->linked, in_class);
            return BERTH_EINVAL;
        }
        total += in_class;
    }
    if (total != linked) {
        snprintf(why, cap, "%zu hosts linked, %zu in the grids", linked, total);
        return BERTH_EINVAL;
    }
    return 0;
}

