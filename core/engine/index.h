/*
 * index.h: Berth's in-memory placement index (internal).
 *
 * The index owns every host record of an engine and answers one question
 * fast: which ready host should take this request?  Hosts are partitioned
 * into classes by their static attributes (OS, build, GPU SKU, zone,
 * features); each class keeps a grid of buckets keyed by (free GPUs, free
 * whole cores), with a bitmap of non-empty buckets per row, and each bucket
 * is a treap of hosts ordered by (free memory, tie key) whose nodes live in
 * an array beside the host records.  Choosing a host never allocates, never
 * does I/O, and costs O(matching classes x log hosts) for a fixed host shape
 * (the grid walk is bounded by the largest host's cores and GPUs).
 *
 * Everything that allocates (adding host slots, creating classes, growing a
 * class's grid) happens when hosts are added or updated, never when a host is
 * chosen.  Nothing here is published: names are berth__ and the header is for
 * engine.c and the tests only.
 */
#ifndef BERTH_INDEX_H
#define BERTH_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

/* "No host": the null link of treaps, free lists and lookups. */
#define BERTH__NIL UINT32_MAX

/* Largest host the index accepts, so that a class's grid stays small:
 * more cores or GPUs than any machine in service today. */
#define BERTH__HOST_CORES_MAX 4096u
#define BERTH__HOST_GPUS_MAX 63u

/* The static attributes that decide which requests a host can serve.  Hosts
 * with equal attributes share a class.  sku and zone are engine ids, -1 for
 * none. */
typedef struct berth__attrs {
    uint32_t build;                 /* Windows build; 0 on Linux            */
    uint8_t os;                     /* berth_os_t                           */
    uint8_t features;               /* BERTH_HOST_* bits                    */
    int8_t sku;                     /* < BERTH_GPU_SKUS_MAX                 */
    int8_t zone;                    /* < BERTH_ZONES_MAX                    */
    uint64_t subnets;               /* bit i: carries the engine's subnet i */
} berth__attrs_t;

/* One host.  Capacities and usage are integers (millicores used are always
 * whole cores).  Its treap node lives apart, in berth__index_t.nodes. */
typedef struct berth__host {
    char *name;                     /* a heap copy the slot owns (freed with it) */
    uint64_t tie;                   /* berth__mix64(seed ^ fnv1a(name))     */
    berth__attrs_t attrs;
    uint32_t cores;
    uint32_t memory_mib;
    uint32_t gpus;
    uint32_t used_millicores;
    uint32_t used_memory_mib;
    uint32_t used_gpus;
    uint32_t groups;
    uint32_t nimages;               /* entries in `images`                  */
    uint64_t *images;               /* sorted distinct image hashes the host
                                     * holds (berth_image_hash), a heap array
                                     * the slot owns; NULL when none        */
    uint32_t cls;                   /* class id, BERTH__NIL before assignment */
    uint32_t order;                 /* position in add order                */
    uint8_t state;                  /* berth_host_state_t                   */
    bool live;                      /* slot in use                          */
    bool linked;                    /* currently in its class's grid        */
} berth__host_t;

/* A host's treap node, kept in an array of its own so that a descent
 * touches 24 bytes per level rather than a whole host record.  `memory` is
 * the host's free memory when it was linked (it cannot change while linked). */
typedef struct berth__node {
    uint64_t tie;                   /* the host's tie key                   */
    uint32_t left, right;           /* children (slot ids); free list: left */
    uint32_t prio;                  /* treap priority, from `tie`           */
    uint32_t memory;
} berth__node_t;

/* One bucket: the treap of hosts with the same free GPUs and free cores. */
typedef struct berth__bucket {
    uint32_t root;
    uint32_t max;                   /* host with the most free memory       */
    uint32_t max_memory;            /* its free memory, to skip the bucket  */
} berth__bucket_t;

/* A class: hosts with equal attributes, in a grid of nrows (free GPUs
 * 0..nrows-1) by ncols (free cores 0..ncols-1) buckets. */
typedef struct berth__class {
    berth__attrs_t attrs;
    uint32_t nrows, ncols, nwords;  /* nwords: 64-bit words per row bitmap  */
    uint64_t rows;                  /* bit g: row g has a non-empty bucket  */
    uint32_t linked;                /* hosts in the grid                    */
    berth__bucket_t *buckets;       /* nrows * ncols                        */
    uint64_t *bits;                 /* nrows * nwords: non-empty buckets    */
} berth__class_t;

/* Requests with the same shape (what decides which classes match: OS,
 * Windows build, GPU SKU, zones, subnet, SKU, sandbox) match the same classes in
 * the same tiers; the chooser remembers that list for the last shapes it met, so
 * that a request visits only its own classes.  Class attributes never
 * change, so a list stays valid until a new class appears. */
#define BERTH__SHAPES 64

typedef struct berth__shape {
    uint64_t zone_mask;
    uint64_t subnet_mask;
    uint32_t build;                 /* 0 for Linux requests                 */
    int32_t gpu_sku;                /* -1 for CPU-only requests             */
    uint8_t os;
    uint8_t sku;                    /* berth_sku_t; UNSET read as STANDARD  */
    bool sandbox;                   /* needs BERTH_HOST_SANDBOX             */
    bool valid;
    uint32_t n;                     /* entries in the list                  */
} berth__shape_t;

typedef struct berth__index {
    berth_policy_t policy;
    bool locality;                  /* image locality on (binpack only)     */
    bool score;                     /* vector score on (binpack only)       */
    /* The recent request mix for the vector score: exponentially decayed
     * means of the cores and memory of the requests the engine placed or
     * tried to place (berth__index_note_request), in 1/65536 units. */
    uint64_t mix_cores, mix_memory;
    uint32_t mix_seen;
    berth__host_t *hosts;           /* slots; ids are stable while a host lives */
    berth__node_t *nodes;           /* one per slot                         */
    uint32_t nslots, capslots;
    uint32_t free_slot;             /* free list through nodes[].left       */
    uint32_t *order;                /* slot ids in add order (swap-remove), capslots long */
    uint32_t nhosts;
    berth__class_t *classes;
    uint32_t nclasses, capclasses;
    berth__shape_t shapes[BERTH__SHAPES];
    uint32_t *shape_lists;          /* BERTH__SHAPES lists of capclasses
                                     * entries: class id | tier << 24, in
                                     * tier order                          */
} berth__index_t;

/* Prepares an empty index for `policy`.  Never fails. */
void berth__index_init(berth__index_t *idx, berth_policy_t policy);

/* Frees everything the index holds.  Accepts NULL. */
void berth__index_free(berth__index_t *idx);

/* Takes a fresh host slot (zeroed, not in the add order, not in a class) and
 * stores its id in *slot.  The pointer returned by berth__index_host() for
 * other slots may move.  Returns 0 or BERTH_ENOMEM. */
/* Makes room for `hosts` slots at once (nothing when there is).  Returns
 * 0 or BERTH_ENOMEM. */
int berth__index_reserve(berth__index_t *idx, uint32_t hosts);

int berth__index_slot_alloc(berth__index_t *idx, uint32_t *slot);

/* Replaces the image set of host `slot` with `images` (n sorted distinct
 * hashes, a heap array the host takes over; NULL when n is 0), freeing the
 * old one.  Never fails. */
void berth__index_images_take(berth__index_t *idx, uint32_t slot, uint64_t *images,
                              uint32_t n);

/* Returns an unlinked slot that is not in the add order to the free list. */
void berth__index_slot_free(berth__index_t *idx, uint32_t slot);

/* Appends a live slot to the add order (the room was made by
 * berth__index_slot_alloc(), so this never fails). */
void berth__index_order_push(berth__index_t *idx, uint32_t slot);

/* Removes a slot from the add order: the last host takes its place. */
void berth__index_order_remove(berth__index_t *idx, uint32_t slot);

/* The host in slot `slot`. */
static inline berth__host_t *berth__index_host(const berth__index_t *idx, uint32_t slot)
{
    return &idx->hosts[slot];
}

/* Finds or creates the class for `attrs` and makes its grid large enough for
 * a host of `cores` and `gpus`; stores the class id in *cls.  Allocates, so
 * it is called before anything changes.  Returns 0 or BERTH_ENOMEM. */
int berth__index_class_reserve(berth__index_t *idx, const berth__attrs_t *attrs,
                               uint32_t cores, uint32_t gpus, uint32_t *cls);

/* Puts host `slot` into its class's grid when it can take new groups (ready,
 * not a dedicated host already holding a group, at least one free core and
 * some free memory); otherwise does nothing.  The host's tie key must be
 * set (berth__index_set_tie()).
 * Call after every change of the host's usage, capacity, attributes or
 * state, each preceded by berth__index_unlink().  Never allocates. */
void berth__index_link(berth__index_t *idx, uint32_t slot);

/* Sets the tie key (and from it the treap priority) of an unlinked host. */
void berth__index_set_tie(berth__index_t *idx, uint32_t slot, uint64_t tie);

/* Takes host `slot` out of its class's grid if it is there. */
void berth__index_unlink(berth__index_t *idx, uint32_t slot);

/* ---- host values (the chooser's and the tests' one definition) ---------------- */

static inline uint32_t berth__host_free_gpus(const berth__host_t *h)
{
    return h->gpus - h->used_gpus;
}

static inline uint32_t berth__host_free_cores(const berth__host_t *h)
{
    return h->cores - h->used_millicores / 1000u;
}

static inline uint32_t berth__host_free_memory(const berth__host_t *h)
{
    return h->memory_mib - h->used_memory_mib;
}

/* A host takes new groups when it is ready, and a dedicated host only while
 * it is empty: it belongs to one group alone. */
static inline bool berth__host_open(const berth__host_t *h)
{
    return h->state == BERTH_HOST_READY &&
        !((h->attrs.features & BERTH_HOST_DEDICATED) && h->groups > 0);
}

/* The grid holds only hosts that can take some group: every group needs a
 * core and some memory, so full hosts stay out and the treaps stay short. */
static inline bool berth__host_linkable(const berth__host_t *h)
{
    return berth__host_open(h) && berth__host_free_cores(h) > 0 && berth__host_free_memory(h) > 0;
}

/* The order of a treap: free memory, then the tie key, then the name (tie
 * keys of two names collide only by accident, and names are unique). */
static inline int berth__host_tree_cmp(const berth__host_t *a, const berth__host_t *b)
{
    uint32_t ma = berth__host_free_memory(a), mb = berth__host_free_memory(b);
    if (ma != mb)
        return ma < mb ? -1 : 1;
    if (a->tie != b->tie)
        return a->tie < b->tie ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* binpack's order between two picks: free GPUs, free cores, then (with
 * locality) more images held first (held_a, held_b), then the treap
 * order. */
static inline int berth__host_pick_cmp(const berth__host_t *a, uint32_t held_a,
                                       const berth__host_t *b, uint32_t held_b, bool locality)
{
    uint32_t ga = berth__host_free_gpus(a), gb = berth__host_free_gpus(b);
    if (ga != gb)
        return ga < gb ? -1 : 1;
    uint32_t ca = berth__host_free_cores(a), cb = berth__host_free_cores(b);
    if (ca != cb)
        return ca < cb ? -1 : 1;
    if (locality && held_a != held_b)
        return held_a > held_b ? -1 : 1;
    return berth__host_tree_cmp(a, b);
}

/* The total order of the policies: binpack takes the smallest host, spread
 * the largest.  Free GPUs first, so that GPUs are not spread thin; then free
 * cores, then free memory, then the tie key. */
static inline int berth__host_cmp(const berth__host_t *a, const berth__host_t *b)
{
    return berth__host_pick_cmp(a, 0, b, 0, false);
}

/* True when a host with attributes `attrs` meets every constraint of `req`
 * except readiness, dedicated-host emptiness and capacity (OS and build,
 * GPU SKU, zone, Dedicated/Confidential); stores the isolation the group would run with in *iso and the host's preference tier
 * for the request in *tier (0 is best: no GPUs stranded, no confidential
 * host used by a standard group, process isolation). */
bool berth__host_matches(const berth__attrs_t *attrs, const berth_request_t *req,
                         berth_isolation_t *iso, unsigned *tier);

/* True when host `h` has free capacity for `req` on every dimension (free
 * whole cores, memory, GPUs). */
bool berth__host_fits(const berth__host_t *h, const berth_request_t *req);

/* True when host `h`, which fits `req`, keeps the GPU balance a GPU request
 * asks for: it has at least the request's cores and memory per GPU for each
 * of its free GPUs (free cores x request GPUs >= free GPUs x request cores,
 * and the same for memory), so the GPUs left after the placement still have
 * the request's share of cores and memory each.  Always true for requests
 * without GPUs. */
bool berth__host_balanced(const berth__host_t *h, const berth_request_t *req);

/* How many of the request's images host `h` holds (0 .. req->nimages). */
uint32_t berth__host_images_held(const berth__host_t *h, const berth_request_t *req);

/* Chooses a ready host for `req` by the index's policy, without allocating:
 * stores its slot in *slot and the isolation in *iso, or returns
 * BERTH_ENOSPC.  binpack orders fitting hosts by (tier, GPU balance: for a
 * GPU request, balanced hosts (berth__host_balanced) before the others,
 * free GPUs, free cores, then -- with image locality on and images in the
 * request, among the first BERTH_LOCALITY_SCAN hosts of the same class and
 * (free GPUs, free cores) by the next key -- most of the request's images
 * held, then free memory, tie key, name) and takes the least; spread takes,
 * in the best tier, the host with the most free (GPUs, cores, memory);
 * ties go to the smaller (binpack) or larger (spread) tie key.  firstfit
 * scans in add order.  binpack with the vector score (idx->score) keeps the
 * tier, balance and fewest-free-GPU keys, and then, instead of (free
 * cores, ..., free memory), ranks per class the first fitting host (or
 * locality's pick) of each of the first BERTH__SCORE_K free-core values
 * that fit in that class's row by (berth__host_score(), images held, free
 * cores, free memory, tie key, name).
 * `req` must be valid (whole cores, known GPU SKU).  It may refresh the
 * index's memo of request shapes (preallocated, never grown here). */
int berth__index_choose(berth__index_t *idx, const berth_request_t *req,
                        uint32_t *slot, berth_isolation_t *iso);

/* The vector score's candidates per class: the first fitting host of
 * each of the first BERTH__SCORE_K buckets on the best-fit walk. */
#define BERTH__SCORE_K 4

/* The weight of the leftover the mix's mean request cannot use, against
 * the squared norm of the leftover (berth__host_score()). */
#define BERTH__SCORE_W 100.0

/* Adds `req` to the index's recent request mix (the vector score reads
 * it): O(1), no allocation. */
void berth__index_note_request(berth__index_t *idx, const berth_request_t *req);

/* The vector score of placing `req` on host `h` (which fits it): lower is
 * better.  With (lc, lm) the cores and memory free after the placement,
 * (C, M) the host's capacity and (tc, tm) the recent request mix's mean
 * request: (lc/C)^2 + (lm/M)^2 plus, for the part of the leftover that the
 * mix's mean request cannot use (n = min(lc/tc, lm/tm) mean requests fit;
 * what is left of each dimension after them), SCORE_W times its share of
 * the capacity.  Without a mix (nothing seen yet) only the first term. */
double berth__host_score(const berth__index_t *idx, const berth__host_t *h,
                         const berth_request_t *req);

/* Heap bytes the index holds (slots, order, classes and their grids). */
size_t berth__index_bytes(const berth__index_t *idx);

/* The index of a live engine (engine.c), for tests. */
berth__index_t *berth__engine_index(berth_engine_t *engine);

#endif /* BERTH_INDEX_H */
