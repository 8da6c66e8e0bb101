/*
 * index.c: the in-memory placement index behind berth_engine_request_place().
 *
 * Hosts are grouped into classes by static attributes.  Inside a class, a
 * host that can take new groups sits in the bucket (free GPUs, free whole
 * cores) of a grid, in a treap ordered by (free memory, tie key, name).  A
 * per-row bitmap of non-empty buckets and a cached maximum free memory per
 * bucket let a query jump straight to the first bucket that can hold the
 * request, and a lower bound in its treap finds the host.
 *
 * With the vector score (engine option vector_score, binpack only) the walk
 * does not stop at the first bucket that fits: in each class's first row
 * that fits it takes the first fitting host of each of the first
 * BERTH__SCORE_K buckets and ranks them by berth__host_score(), which
 * reads a decayed mean of recent requests kept by
 * berth__index_note_request() (O(1) per request, never recomputed here).
 *
 * The chooser (berth__index_choose) must never allocate, never do I/O and
 * never depend on the order hosts were added (except firstfit, which is the
 * naive baseline and scans in add order by definition).  All allocation
 * happens in berth__index_slot_alloc() and berth__index_class_reserve(),
 * which engine.c calls before it changes anything.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"

#define NIL BERTH__NIL

bool berth__host_matches(const berth__attrs_t *attrs, const berth_request_t *req,
                         berth_isolation_t *iso, unsigned *tier)
{
    if (attrs->os != (uint32_t)req->os)
        return false;
    bool dedicated_host = (attrs->features & BERTH_HOST_DEDICATED) != 0;
    if (dedicated_host != (req->sku == BERTH_SKU_DEDICATED))
        return false;
    bool confidential_host = (attrs->features & BERTH_HOST_CONFIDENTIAL) != 0;
    if (req->sku == BERTH_SKU_CONFIDENTIAL && !confidential_host)
        return false;
    if (req->sandbox && !(attrs->features & BERTH_HOST_SANDBOX))
        return false;
    if (req->demand.gpu_count > 0 && attrs->sku != (int32_t)req->demand.gpu_sku)
        return false;
    if (req->zone_mask != 0 &&
        (attrs->zone < 0 || ((req->zone_mask >> attrs->zone) & 1u) == 0))
        return false;
    if ((attrs->subnets & req->subnet_mask) != req->subnet_mask)
        return false;
    berth_isolation_t i = BERTH_ISOLATION_NONE;
    if (req->os == BERTH_OS_WINDOWS) {
        if (req->os_build == 0 || attrs->build == req->os_build)
            i = BERTH_ISOLATION_PROCESS;
        else if (attrs->build > req->os_build && (attrs->features & BERTH_HOST_HYPERV))
            i = BERTH_ISOLATION_HYPERV;
        else
            return false;
    }
    *iso = i;
    /* Preferences, most important first: do not strand GPUs under CPU-only
     * groups, keep confidential hosts for confidential groups, and run
     * Windows images without the cost of a Hyper-V utility VM. */
    *tier = (req->demand.gpu_count == 0 && attrs->sku >= 0 ? 4u : 0u) |
        (req->sku != BERTH_SKU_CONFIDENTIAL && confidential_host ? 2u : 0u) |
        (i == BERTH_ISOLATION_HYPERV ? 1u : 0u);
    return true;
}

bool berth__host_fits(const berth__host_t *h, const berth_request_t *req)
{
    const berth_demand_t *d = &req->demand;
    return berth__host_free_cores(h) >= d->millicores / 1000u &&
        berth__host_free_memory(h) >= d->memory_mib && berth__host_free_gpus(h) >= d->gpu_count;
}

/* GPU balance: a GPU group should not leave its host's other free GPUs
 * without the cores and memory to use them.  A host is balanced for a
 * request of dg GPUs, dc cores and dm MiB when each of its g free GPUs has
 * the request's share: c * dg >= g * dc and m * dg >= g * dm.  The grid
 * walk reads this as per-row thresholds (balance_min()). */
bool berth__host_balanced(const berth__host_t *h, const berth_request_t *req)
{
    uint64_t dg = req->demand.gpu_count;
    if (dg == 0)
        return true;
    uint64_t g = berth__host_free_gpus(h);
    return (uint64_t)berth__host_free_cores(h) * dg >= g * (req->demand.millicores / 1000u) &&
        (uint64_t)berth__host_free_memory(h) * dg >= g * req->demand.memory_mib;
}

/* The least value v with v * dg >= g * d: what a host with g free GPUs
 * needs of a dimension the request asks d of (for dg GPUs) to be balanced. */
static inline uint64_t balance_min(uint64_t g, uint64_t d, uint64_t dg)
{
    return (g * d + dg - 1) / dg;
}

/* The least free cores (*cmin) and memory (*mmin) a host of a row of g free
 * GPUs must have for a request of dg GPUs, dc cores and dm MiB: the
 * request's own, or with `balance` (GPU requests) the balanced share;
 * false when no bucket of the class can have that many cores. */
static inline bool row_min(const berth__class_t *cls, uint32_t g, uint32_t dg, uint32_t dc,
                           uint32_t dm, bool balance, uint32_t *cmin, uint32_t *mmin)
{
    *cmin = dc;
    *mmin = dm;
    if (!balance || g <= dg)
        return true;
    uint64_t c = balance_min(g, dc, dg), m = balance_min(g, dm, dg);
    if (c >= cls->ncols || m > UINT32_MAX)
        return false;
    *cmin = (uint32_t)c;
    *mmin = (uint32_t)m;
    return true;
}

uint32_t berth__host_images_held(const berth__host_t *h, const berth_request_t *req)
{
    uint32_t held = 0;
    uint32_t n = req->nimages < BERTH_REQUEST_IMAGES_MAX ? req->nimages
                                                         : BERTH_REQUEST_IMAGES_MAX;
    for (uint32_t i = 0; i < n && h->nimages > 0; i++) {
        uint64_t want = req->images[i];
        uint32_t lo = 0, hi = h->nimages;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (h->images[mid] < want)
                lo = mid + 1;
            else
                hi = mid;
        }
        held += lo < h->nimages && h->images[lo] == want;
    }
    return held;
}

/* ---- the vector score ------------------------------------------------------------ */

/* The mix decays by 1/MIX_SPAN per request: about the last 64 weigh. */
#define MIX_SPAN 64

/* One step of a decayed mean towards x: 1/MIX_SPAN of the way, at least one
 * unit, so that a steady mix is reached exactly. */
static uint64_t mix_step(uint64_t mean, int64_t x)
{
    int64_t d = x - (int64_t)mean, step = d / MIX_SPAN;
    if (step == 0)
        step = (d > 0) - (d < 0);
    return (uint64_t)((int64_t)mean + step);
}

void berth__index_note_request(berth__index_t *idx, const berth_request_t *req)
{
    if (!idx->score)
        return;
    int64_t c = (int64_t)(req->demand.millicores / 1000u) << 16;
    int64_t m = (int64_t)req->demand.memory_mib << 16;
    if (idx->mix_seen == 0) {
        idx->mix_cores = (uint64_t)c;
        idx->mix_memory = (uint64_t)m;
    } else {
        idx->mix_cores = mix_step(idx->mix_cores, c);
        idx->mix_memory = mix_step(idx->mix_memory, m);
    }
    if (idx->mix_seen < UINT32_MAX)
        idx->mix_seen++;
}

double berth__host_score(const berth__index_t *idx, const berth__host_t *h,
                         const berth_request_t *req)
{
    double C = h->cores > 0 ? (double)h->cores : 1.0;
    double M = h->memory_mib > 0 ? (double)h->memory_mib : 1.0;
    double lc = (double)(berth__host_free_cores(h) - req->demand.millicores / 1000u);
    double lm = (double)(berth__host_free_memory(h) - req->demand.memory_mib);
    double fc = lc / C, fm = lm / M;
    double score = fc * fc + fm * fm;
    if (idx->mix_seen > 0) {
        double tc = (double)idx->mix_cores / 65536.0, tm = (double)idx->mix_memory / 65536.0;
        if (tc < 1.0 / 65536)
            tc = 1.0 / 65536;
        if (tm < 1.0 / 65536)
            tm = 1.0 / 65536;
        double n = floor(fmin(lc / tc, lm / tm));
        score += BERTH__SCORE_W * ((lc - n * tc) / C + (lm - n * tm) / M);
    }
    return score;
}

/* ---- treaps ------------------------------------------------------------------ */

/* The treap order on nodes, the same as berth__host_tree_cmp() on their hosts. */
static inline int node_cmp(const berth__index_t *idx, uint32_t a, uint32_t b)
{
    const berth__node_t *x = &idx->nodes[a], *y = &idx->nodes[b];
    if (x->memory != y->memory)
        return x->memory < y->memory ? -1 : 1;
    if (x->tie != y->tie)
        return x->tie < y->tie ? -1 : 1;
    return strcmp(idx->hosts[a].name, idx->hosts[b].name);
}

static uint32_t treap_insert(berth__index_t *idx, uint32_t root, uint32_t x)
{
    berth__node_t *ns = idx->nodes;
    if (root == NIL) {
        ns[x].left = ns[x].right = NIL;
        return x;
    }
    berth__node_t *r = &ns[root];
    if (node_cmp(idx, x, root) < 0) {
        r->left = treap_insert(idx, r->left, x);
        uint32_t l = r->left;
        if (ns[l].prio > r->prio) {
            r->left = ns[l].right;
            ns[l].right = root;
            return l;
        }
    } else {
        r->right = treap_insert(idx, r->right, x);
        uint32_t rt = r->right;
        if (ns[rt].prio > r->prio) {
            r->right = ns[rt].left;
            ns[rt].left = root;
            return rt;
        }
    }
    return root;
}

static uint32_t treap_merge(berth__node_t *ns, uint32_t a, uint32_t b)
{
    if (a == NIL)
        return b;
    if (b == NIL)
        return a;
    if (ns[a].prio > ns[b].prio) {
        ns[a].right = treap_merge(ns, ns[a].right, b);
        return a;
    }
    ns[b].left = treap_merge(ns, a, ns[b].left);
    return b;
}

static uint32_t treap_remove(berth__index_t *idx, uint32_t root, uint32_t x)
{
    berth__node_t *ns = idx->nodes;
    if (root == NIL)
        return NIL;
    if (root == x)
        return treap_merge(ns, ns[x].left, ns[x].right);
    if (node_cmp(idx, x, root) < 0)
        ns[root].left = treap_remove(idx, ns[root].left, x);
    else
        ns[root].right = treap_remove(idx, ns[root].right, x);
    return root;
}

/* The host with the least free memory >= `memory` (the first in treap
 * order), or NIL. */
static uint32_t treap_lower_bound(const berth__node_t *ns, uint32_t node, uint32_t memory)
{
    uint32_t best = NIL;
    while (node != NIL) {
        if (ns[node].memory >= memory) {
            best = node;
            node = ns[node].left;
        } else {
            node = ns[node].right;
        }
    }
    return best;
}

static uint32_t treap_last(const berth__node_t *ns, uint32_t node)
{
    if (node == NIL)
        return NIL;
    while (ns[node].right != NIL)
        node = ns[node].right;
    return node;
}

/* ---- slots and order ------------------------------------------------------------ */

void berth__index_init(berth__index_t *idx, berth_policy_t policy)
{
    memset(idx, 0, sizeof *idx);
    idx->policy = policy;
    idx->free_slot = NIL;
}

void berth__index_free(berth__index_t *idx)
{
    if (idx == NULL)
        return;
    for (uint32_t c = 0; c < idx->nclasses; c++) {
        free(idx->classes[c].buckets);
        free(idx->classes[c].bits);
    }
    free(idx->classes);
    free(idx->shape_lists);
    for (uint32_t i = 0; i < idx->nslots; i++) {
        free(idx->hosts[i].name);   /* NULL in free slots */
        free(idx->hosts[i].images);
    }
    free(idx->hosts);
    free(idx->nodes);
    free(idx->order);
    memset(idx, 0, sizeof *idx);
    idx->free_slot = NIL;
}

/* Grows the slot arrays to `cap` slots; each keeps its contents, and
 * capslots moves only when all three have grown, so a failure leaves the
 * index as it was (with spare room).  Returns 0 or BERTH_ENOMEM. */
static int slots_grow(berth__index_t *idx, uint32_t cap)
{
    berth__host_t *hs = realloc(idx->hosts, (size_t)cap * sizeof *hs);
    if (hs == NULL)
        return BERTH_ENOMEM;
    idx->hosts = hs;
    berth__node_t *ns = realloc(idx->nodes, (size_t)cap * sizeof *ns);
    if (ns == NULL)
        return BERTH_ENOMEM;
    idx->nodes = ns;
    uint32_t *order = realloc(idx->order, (size_t)cap * sizeof *order);
    if (order == NULL)
        return BERTH_ENOMEM;
    idx->order = order;
    idx->capslots = cap;
    return 0;
}

int berth__index_reserve(berth__index_t *idx, uint32_t hosts)
{
    if (hosts <= idx->capslots)
        return 0;
    if (hosts >= (NIL - 1) / 2)
        return BERTH_ENOMEM;
    return slots_grow(idx, hosts);
}

int berth__index_slot_alloc(berth__index_t *idx, uint32_t *slot)
{
    uint32_t s;
    if (idx->free_slot != NIL) {
        s = idx->free_slot;
        idx->free_slot = idx->nodes[s].left;
    } else {
        if (idx->nslots == idx->capslots) {
            if (idx->capslots >= (NIL - 1) / 2)
                return BERTH_ENOMEM;
            /* Grow by half: host records are most of an engine's memory. */
            uint32_t cap = idx->capslots ? idx->capslots + idx->capslots / 2 : 16;
            if (slots_grow(idx, cap) < 0)
                return BERTH_ENOMEM;
        }
        s = idx->nslots++;
    }
    berth__host_t *h = &idx->hosts[s];
    memset(h, 0, sizeof *h);
    memset(&idx->nodes[s], 0, sizeof idx->nodes[s]);
    idx->nodes[s].left = idx->nodes[s].right = NIL;
    h->cls = NIL;
    h->order = NIL;
    h->live = true;
    *slot = s;
    return 0;
}

void berth__index_slot_free(berth__index_t *idx, uint32_t slot)
{
    berth__host_t *h = &idx->hosts[slot];
    free(h->name);
    h->name = NULL;
    free(h->images);
    h->images = NULL;
    h->nimages = 0;
    h->live = false;
    idx->nodes[slot].left = idx->free_slot;
    idx->free_slot = slot;
}

void berth__index_images_take(berth__index_t *idx, uint32_t slot, uint64_t *images,
                              uint32_t n)
{
    berth__host_t *h = &idx->hosts[slot];
    free(h->images);
    h->images = n > 0 ? images : NULL;
    h->nimages = n > 0 ? n : 0;
    if (n == 0)
        free(images);
}

void berth__index_order_push(berth__index_t *idx, uint32_t slot)
{
    idx->hosts[slot].order = idx->nhosts;
    idx->order[idx->nhosts++] = slot;
}

void berth__index_order_remove(berth__index_t *idx, uint32_t slot)
{
    uint32_t pos = idx->hosts[slot].order;
    uint32_t last = idx->order[--idx->nhosts];
    idx->order[pos] = last;
    idx->hosts[last].order = pos;
    idx->hosts[slot].order = NIL;
}

/* ---- classes ------------------------------------------------------------------------ */

static bool attrs_equal(const berth__attrs_t *a, const berth__attrs_t *b)
{
    return a->os == b->os && a->build == b->build && a->sku == b->sku &&
        a->zone == b->zone && a->features == b->features && a->subnets == b->subnets;
}

/* Grows a class's grid to at least nrows x ncols, keeping every bucket at
 * its (free GPUs, free cores) position. */
static int class_grow(berth__class_t *cls, uint32_t nrows, uint32_t ncols)
{
    if (nrows <= cls->nrows && ncols <= cls->ncols)
        return 0;
    if (nrows < cls->nrows)
        nrows = cls->nrows;
    if (ncols < cls->ncols)
        ncols = cls->ncols;
    uint32_t nwords = (ncols + 63) / 64;
    berth__bucket_t *b = malloc((size_t)nrows * ncols * sizeof *b);
    uint64_t *bits = calloc((size_t)nrows * nwords, sizeof *bits);
    if (b == NULL || bits == NULL) {
        free(b);
        free(bits);
        return BERTH_ENOMEM;
    }
    for (size_t i = 0; i < (size_t)nrows * ncols; i++)
        b[i] = (berth__bucket_t){NIL, NIL, 0};
    for (uint32_t g = 0; g < cls->nrows; g++) {
        memcpy(&b[(size_t)g * ncols], &cls->buckets[(size_t)g * cls->ncols],
               cls->ncols * sizeof *b);
        memcpy(&bits[(size_t)g * nwords], &cls->bits[(size_t)g * cls->nwords],
               cls->nwords * sizeof *bits);
    }
    free(cls->buckets);
    free(cls->bits);
    cls->buckets = b;
    cls->bits = bits;
    cls->nrows = nrows;
    cls->ncols = ncols;
    cls->nwords = nwords;
    return 0;
}

int berth__index_class_reserve(berth__index_t *idx, const berth__attrs_t *attrs,
                               uint32_t cores, uint32_t gpus, uint32_t *cls)
{
    uint32_t c;
    for (c = 0; c < idx->nclasses; c++)
        if (attrs_equal(&idx->classes[c].attrs, attrs))
            break;
    if (c == idx->nclasses) {
        if (idx->nclasses == idx->capclasses) {
            /* Shape lists keep a class id in 24 bits. */
            if (idx->capclasses >= (1u << 24))
                return BERTH_ENOMEM;
            uint32_t cap = idx->capclasses ? idx->capclasses * 2 : 8;
            berth__class_t *cs = realloc(idx->classes, (size_t)cap * sizeof *cs);
            if (cs == NULL)
                return BERTH_ENOMEM;
            idx->classes = cs;
            uint32_t *lists = malloc((size_t)cap * BERTH__SHAPES * sizeof *lists);
            if (lists == NULL)
                return BERTH_ENOMEM; /* classes grew; harmless */
            free(idx->shape_lists);
            idx->shape_lists = lists;
            idx->capclasses = cap;
        }
        berth__class_t *k = &idx->classes[c];
        memset(k, 0, sizeof *k);
        k->attrs = *attrs;
        idx->nclasses++;
        /* A new class may match any shape: forget them all. */
        for (size_t i = 0; i < BERTH__SHAPES; i++)
            idx->shapes[i].valid = false;
    }
    /* A new class that fails to get its grid stays, empty: harmless. */
    int rc = class_grow(&idx->classes[c], gpus + 1, cores + 1);
    if (rc < 0)
        return rc;
    *cls = c;
    return 0;
}

/* ---- linking --------------------------------------------------------------------------- */

void berth__index_set_tie(berth__index_t *idx, uint32_t slot, uint64_t tie)
{
    idx->hosts[slot].tie = tie;
    idx->nodes[slot].tie = tie;
    idx->nodes[slot].prio = (uint32_t)(berth__mix64(tie) >> 32);
}

void berth__index_link(berth__index_t *idx, uint32_t slot)
{
    berth__host_t *h = &idx->hosts[slot];
    if (h->linked || h->cls == NIL || idx->policy == BERTH_POLICY_FIRSTFIT ||
        !berth__host_linkable(h))
        return;
    berth__class_t *cls = &idx->classes[h->cls];
    uint32_t g = berth__host_free_gpus(h), c = berth__host_free_cores(h);
    berth__bucket_t *b = &cls->buckets[(size_t)g * cls->ncols + c];
    idx->nodes[slot].memory = berth__host_free_memory(h);
    b->root = treap_insert(idx, b->root, slot);
    if (b->max == NIL || node_cmp(idx, slot, b->max) > 0) {
        b->max = slot;
        b->max_memory = berth__host_free_memory(h);
    }
    cls->bits[(size_t)g * cls->nwords + c / 64] |= 1ull << (c % 64);
    cls->rows |= 1ull << g;
    cls->linked++;
    h->linked = true;
}

void berth__index_unlink(berth__index_t *idx, uint32_t slot)
{
    berth__host_t *h = &idx->hosts[slot];
    if (!h->linked)
        return;
    berth__class_t *cls = &idx->classes[h->cls];
    uint32_t g = berth__host_free_gpus(h), c = berth__host_free_cores(h);
    berth__bucket_t *b = &cls->buckets[(size_t)g * cls->ncols + c];
    b->root = treap_remove(idx, b->root, slot);
    if (b->max == slot) {
        b->max = treap_last(idx->nodes, b->root);
        b->max_memory = b->max == NIL ? 0 : idx->nodes[b->max].memory;
    }
    if (b->root == NIL) {
        uint64_t *row = &cls->bits[(size_t)g * cls->nwords];
        row[c / 64] &= ~(1ull << (c % 64));
        bool empty = true;
        for (uint32_t w = 0; w < cls->nwords && empty; w++)
            empty = row[w] == 0;
        if (empty)
            cls->rows &= ~(1ull << g);
    }
    cls->linked--;
    h->linked = false;
}

/* ---- choosing ---------------------------------------------------------------------------- */

/* The host after `node` in treap order under `root`, or NIL: a descent
 * from the root, as nodes keep no parent link. */
static uint32_t treap_next(const berth__index_t *idx, uint32_t root, uint32_t node)
{
    uint32_t next = NIL;
    while (root != NIL) {
        if (node_cmp(idx, root, node) > 0) {
            next = root;
            root = idx->nodes[root].left;
        } else {
            root = idx->nodes[root].right;
        }
    }
    return next;
}

/* Image locality inside one bucket: from `first` (the least free memory
 * that fits), the first BERTH_LOCALITY_SCAN hosts in treap order all fit
 * equally well; the one holding most of the request's images wins, the
 * earliest among equals.  Stores its count in *held. */
static uint32_t bucket_locality(const berth__index_t *idx, uint32_t root, uint32_t first,
                                const berth_request_t *req, uint32_t *held)
{
    uint32_t best = first;
    uint32_t most = berth__host_images_held(&idx->hosts[first], req);
    uint32_t at = first;
    for (unsigned k = 1; k < BERTH_LOCALITY_SCAN && most < req->nimages; k++) {
        at = treap_next(idx, root, at);
        if (at == NIL)
            break;
        uint32_t n = berth__host_images_held(&idx->hosts[at], req);
        if (n > most) {
            most = n;
            best = at;
        }
    }
    *held = most;
    return best;
}

/* binpack in one class: the first non-empty row (fewest free GPUs) and the
 * first bucket in it (fewest free cores) whose largest free memory suffices;
 * inside it, the host with the least free memory that suffices, or with
 * `locality`, the host bucket_locality() picks (its image count in *held).
 * With `balance` (GPU requests), a row of g free GPUs only counts buckets
 * and hosts with the balanced share (berth__host_balanced()): at least
 * ceil(g * dc / dg) free cores and ceil(g * dm / dg) free memory. */
static uint32_t class_best_fit(const berth__index_t *idx, const berth__class_t *cls,
                               const berth_request_t *req, bool balance, bool locality,
                               uint32_t *held)
{
    uint32_t dg = req->demand.gpu_count, dc = req->demand.millicores / 1000u;
    uint32_t dm = req->demand.memory_mib;
    if (dc >= cls->ncols || dg >= cls->nrows)
        return NIL;
    uint64_t rows = cls->rows & (~0ull << dg);
    while (rows != 0) {
        uint32_t g = (uint32_t)__builtin_ctzll(rows);
        rows &= rows - 1;
        uint32_t cmin, mmin;
        if (!row_min(cls, g, dg, dc, dm, balance, &cmin, &mmin))
            continue;
        const uint64_t *row = &cls->bits[(size_t)g * cls->nwords];
        const berth__bucket_t *brow = &cls->buckets[(size_t)g * cls->ncols];
        uint32_t w = cmin / 64;
        uint64_t word = row[w] & (~0ull << (cmin % 64));
        for (;;) {
            while (word != 0) {
                uint32_t c = w * 64 + (uint32_t)__builtin_ctzll(word);
                word &= word - 1;
                if (brow[c].max_memory >= mmin) {
                    uint32_t s = treap_lower_bound(idx->nodes, brow[c].root, mmin);
                    if (locality)
                        s = bucket_locality(idx, brow[c].root, s, req, held);
                    return s;
                }
            }
            if (++w == cls->nwords)
                break;
            word = row[w];
        }
    }
    return NIL;
}

/* The vector score in one class: the first row (fewest free GPUs) with a
 * bucket that fits, as class_best_fit() finds it; in that row, the first
 * fitting host of each of the first BERTH__SCORE_K buckets that fit (fewest
 * free cores first), or with `locality` the host bucket_locality() picks in
 * each; of these the one with the least berth__host_score(), then the most
 * images held, then the least in berth__host_pick_cmp() order.  Stores its
 * score in *score and image count in *held. */
static uint32_t class_scored(const berth__index_t *idx, const berth__class_t *cls,
                             const berth_request_t *req, bool balance, bool locality,
                             double *score, uint32_t *held)
{
    uint32_t dg = req->demand.gpu_count, dc = req->demand.millicores / 1000u;
    uint32_t dm = req->demand.memory_mib;
    if (dc >= cls->ncols || dg >= cls->nrows)
        return NIL;
    uint64_t rows = cls->rows & (~0ull << dg);
    while (rows != 0) {
        uint32_t g = (uint32_t)__builtin_ctzll(rows);
        rows &= rows - 1;
        uint32_t cmin, mmin;
        if (!row_min(cls, g, dg, dc, dm, balance, &cmin, &mmin))
            continue;
        const uint64_t *row = &cls->bits[(size_t)g * cls->nwords];
        const berth__bucket_t *brow = &cls->buckets[(size_t)g * cls->ncols];
        uint32_t w = cmin / 64;
        uint64_t word = row[w] & (~0ull << (cmin % 64));
        uint32_t best = NIL, best_held = 0, seen = 0;
        double best_score = 0;
        for (;;) {
            while (word != 0 && seen < BERTH__SCORE_K) {
                uint32_t c = w * 64 + (uint32_t)__builtin_ctzll(word);
                word &= word - 1;
                if (brow[c].max_memory < mmin)
                    continue;
                uint32_t h = 0;
                uint32_t s = treap_lower_bound(idx->nodes, brow[c].root, mmin);
                if (locality)
                    s = bucket_locality(idx, brow[c].root, s, req, &h);
                double sc = berth__host_score(idx, &idx->hosts[s], req);
                seen++;
                if (best == NIL || sc < best_score ||
                    (sc == best_score &&
                     (h > best_held ||
                      (h == best_held &&
                       berth__host_pick_cmp(&idx->hosts[s], 0, &idx->hosts[best], 0, false) < 0)))) {
                    best = s;
                    best_score = sc;
                    best_held = h;
                }
            }
            if (seen >= BERTH__SCORE_K || ++w == cls->nwords)
                break;
            word = row[w];
        }
        if (best != NIL) {
            *score = best_score;
            *held = best_held;
            return best;
        }
    }
    return NIL;
}

/* spread in one class: the last non-empty row (most free GPUs) and the last
 * bucket in it (most free cores) whose largest free memory suffices; its
 * host with the most free memory. */
static uint32_t class_worst_fit(const berth__class_t *cls, uint32_t dg, uint32_t dc,
                                uint32_t dm)
{
    if (dc >= cls->ncols || dg >= cls->nrows)
        return NIL;
    uint64_t rows = cls->rows & (~0ull << dg);
    uint32_t wlow = dc / 64;
    uint64_t lowmask = ~0ull << (dc % 64);
    while (rows != 0) {
        uint32_t g = 63u - (uint32_t)__builtin_clzll(rows);
        rows &= ~(1ull << g);
        const uint64_t *row = &cls->bits[(size_t)g * cls->nwords];
        const berth__bucket_t *brow = &cls->buckets[(size_t)g * cls->ncols];
        for (uint32_t w = cls->nwords; w-- > wlow;) {
            uint64_t word = row[w];
            if (w == wlow)
                word &= lowmask;
            while (word != 0) {
                uint32_t bit = 63u - (uint32_t)__builtin_clzll(word);
                word &= ~(1ull << bit);
                const berth__bucket_t *b = &brow[w * 64 + bit];
                if (b->max_memory >= dm)
                    return b->max;
            }
        }
    }
    return NIL;
}

/* firstfit: the first host in add order that meets every constraint. */
static int choose_first_fit(const berth__index_t *idx, const berth_request_t *req,
                            uint32_t *slot, berth_isolation_t *iso)
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

/* The classes matching the request's shape, in tier order: from the memo,
 * or computed into it (the memo's storage exists already). */
static const uint32_t *shape_classes(berth__index_t *idx, const berth_request_t *req,
                                     uint32_t *n)
{
    berth__shape_t key;
    memset(&key, 0, sizeof key);
    key.zone_mask = req->zone_mask;
    key.subnet_mask = req->subnet_mask;
    key.build = req->os == BERTH_OS_WINDOWS ? req->os_build : 0;
    key.gpu_sku = req->demand.gpu_count > 0 ? (int32_t)req->demand.gpu_sku : -1;
    key.os = (uint8_t)req->os;
    key.sku = (uint8_t)(req->sku == BERTH_SKU_UNSET ? BERTH_SKU_STANDARD : req->sku);
    key.sandbox = req->sandbox;
    uint64_t h = berth__mix64(key.zone_mask ^ berth__mix64(key.subnet_mask) ^
                              ((uint64_t)key.build << 20) ^
                              ((uint64_t)(uint32_t)key.gpu_sku << 40) ^
                              ((uint64_t)key.os << 56) ^ ((uint64_t)key.sku << 60) ^
                              ((uint64_t)key.sandbox << 63));
    size_t at = (size_t)(h % BERTH__SHAPES);
    berth__shape_t *s = &idx->shapes[at];
    uint32_t *list = &idx->shape_lists[at * idx->capclasses];
    if (s->valid && s->zone_mask == key.zone_mask && s->subnet_mask == key.subnet_mask &&
        s->build == key.build && s->gpu_sku == key.gpu_sku && s->os == key.os &&
        s->sku == key.sku && s->sandbox == key.sandbox) {
        *n = s->n;
        return list;
    }
    /* A representative request of the shape: matching reads nothing else. */
    berth_request_t probe;
    memset(&probe, 0, sizeof probe);
    probe.os = req->os;
    probe.os_build = req->os_build;
    probe.zone_mask = req->zone_mask;
    probe.subnet_mask = req->subnet_mask;
    probe.sku = req->sku;
    probe.sandbox = req->sandbox;
    probe.demand.gpu_count = req->demand.gpu_count > 0 ? 1 : 0;
    probe.demand.gpu_sku = req->demand.gpu_sku;
    uint32_t count = 0;
    for (unsigned tier = 0; tier < 8; tier++) {
        for (uint32_t c = 0; c < idx->nclasses; c++) {
            berth_isolation_t i;
            unsigned t;
            if (berth__host_matches(&idx->classes[c].attrs, &probe, &i, &t) && t == tier)
                list[count++] = c | (uint32_t)tier << 24;
        }
    }
    key.valid = true;
    key.n = count;
    *s = key;
    *n = count;
    return list;
}

/* binpack over the classes list[from..to) of one tier, in one balance pass. */
static uint32_t tier_best_fit(const berth__index_t *idx, const uint32_t *list, uint32_t from,
                              uint32_t to, const berth_request_t *req, bool balance,
                              bool locality)
{
    uint32_t best = NIL, best_held = 0;
    double best_score = 0;
    for (uint32_t k = from; k < to; k++) {
        const berth__class_t *cls = &idx->classes[list[k] & 0xffffffu];
        if (cls->linked == 0)
            continue;
        uint32_t held = 0;
        if (idx->score) {
            /* fewest free GPUs, then the score, images held, pick order */
            double sc = 0;
            uint32_t s = class_scored(idx, cls, req, balance, locality, &sc, &held);
            if (s == NIL)
                continue;
            if (best != NIL) {
                uint32_t gs = berth__host_free_gpus(&idx->hosts[s]);
                uint32_t gb = berth__host_free_gpus(&idx->hosts[best]);
                if (gs != gb ? gs > gb
                             : sc != best_score ? sc > best_score
                             : held != best_held ? held < best_held
                             : berth__host_pick_cmp(&idx->hosts[s], 0, &idx->hosts[best], 0,
                                                    false) > 0)
                    continue;
            }
            best = s;
            best_held = held;
            best_score = sc;
            continue;
        }
        uint32_t s = class_best_fit(idx, cls, req, balance, locality, &held);
        if (s != NIL && (best == NIL || berth__host_pick_cmp(&idx->hosts[s], held,
                                                             &idx->hosts[best], best_held,
                                                             locality) < 0)) {
            best = s;
            best_held = held;
        }
    }
    return best;
}

int berth__index_choose(berth__index_t *idx, const berth_request_t *req,
                        uint32_t *slot, berth_isolation_t *iso)
{
    if (idx->policy == BERTH_POLICY_FIRSTFIT)
        return choose_first_fit(idx, req, slot, iso);
    uint32_t dg = req->demand.gpu_count, dc = req->demand.millicores / 1000u;
    uint32_t dm = req->demand.memory_mib;
    bool spread = idx->policy == BERTH_POLICY_SPREAD;
    uint32_t n;
    const uint32_t *list = shape_classes(idx, req, &n);
    uint32_t best = NIL;
    if (!spread) {
        /* The best tier with any fitting host wins; inside it, a GPU
         * request's balanced hosts before the others. */
        bool locality = idx->locality && req->nimages > 0;
        for (uint32_t from = 0; from < n && best == NIL;) {
            uint32_t tier = list[from] >> 24, to = from + 1;
            while (to < n && list[to] >> 24 == tier)
                to++;
            best = tier_best_fit(idx, list, from, to, req, dg > 0, locality);
            if (best == NIL && dg > 0)
                best = tier_best_fit(idx, list, from, to, req, false, locality);
            from = to;
        }
    } else {
        /* The best tier with any fitting host wins; inside it, the most
         * free (GPUs, cores, memory) across classes. */
        uint32_t best_tier = 0;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t tier = list[k] >> 24;
            if (best != NIL && tier != best_tier)
                break;
            const berth__class_t *cls = &idx->classes[list[k] & 0xffffffu];
            if (cls->linked == 0)
                continue;
            uint32_t s = class_worst_fit(cls, dg, dc, dm);
            if (s == NIL)
                continue;
            if (best == NIL) {
                best = s;
                best_tier = tier;
            } else if (berth__host_cmp(&idx->hosts[s], &idx->hosts[best]) > 0) {
                best = s;
            }
        }
    }
    if (best == NIL)
        return BERTH_ENOSPC;
    unsigned t;
    berth__host_matches(&idx->hosts[best].attrs, req, iso, &t);
    *slot = best;
    return 0;
}

/* ---- checking and accounting ---------------------------------------------------------------- */

size_t berth__index_bytes(const berth__index_t *idx)
{
    size_t n = (size_t)idx->capslots *
            (sizeof(berth__host_t) + sizeof(berth__node_t) + sizeof(uint32_t)) +
        (size_t)idx->capclasses * (sizeof(berth__class_t) + BERTH__SHAPES * sizeof(uint32_t));
    for (uint32_t k = 0; k < idx->nclasses; k++) {
        const berth__class_t *cls = &idx->classes[k];
        n += (size_t)cls->nrows * cls->ncols * sizeof(berth__bucket_t) +
            (size_t)cls->nrows * cls->nwords * sizeof(uint64_t);
    }
    return n;
}
