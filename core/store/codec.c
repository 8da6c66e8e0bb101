/*
 * codec.c: the msgpack records Berth keeps in Redis (host, group, GPU SKU
 * and the cell's per-group limits).
 *
 * A record is a msgpack map of named members with a schema version `v`.
 * The C side writes records with msgpack-c; the Redis Functions read and
 * rewrite host records with Lua's cmsgpack, which drops nil members and
 * reorders keys, so the reader here looks members up by name, treats a
 * missing optional member as absent and ignores members it does not know
 * (a later minor revision may add some).  It must never accept a record of
 * an unknown version or a member of the wrong type: a record it cannot read
 * exactly is reported, not guessed at.  Decoding borrows: strings point into
 * the caller's bytes and nothing is copied.
 */
#include <string.h>

#include "store.h"

/* ---- encoding ------------------------------------------------------------------ */

/* msgpack-c's packer returns -1 only when its buffer cannot grow. */
#define PACK(call)                                                                   \
    do {                                                                             \
        if ((call) != 0)                                                             \
            return BERTH_ENOMEM;                                                     \
    } while (0)

static int pack_key(msgpack_packer *pk, const char *k)
{
    size_t n = strlen(k);
    PACK(msgpack_pack_str(pk, n));
    PACK(msgpack_pack_str_body(pk, k, n));
    return 0;
}

static int pack_bytes(msgpack_packer *pk, const char *k, berth__bytes_t b)
{
    PACK(pack_key(pk, k));
    if (b.ptr == NULL) {
        PACK(msgpack_pack_nil(pk));
        return 0;
    }
    PACK(msgpack_pack_str(pk, b.len));
    PACK(msgpack_pack_str_body(pk, b.ptr, b.len));
    return 0;
}

static int pack_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
    PACK(pack_key(pk, k));
    PACK(msgpack_pack_uint64(pk, v));
    return 0;
}

/* A 64-bit digest as 8 big-endian bytes (binary-safe string): Lua would
 * round it to a double if it were a number. */
static int pack_digest(msgpack_packer *pk, const char *k, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (56 - 8 * i));
    PACK(pack_key(pk, k));
    PACK(msgpack_pack_str(pk, sizeof b));
    PACK(msgpack_pack_str_body(pk, b, sizeof b));
    return 0;
}

int berth__host_record_encode(msgpack_sbuffer *buf, const berth__host_record_t *r)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, 16));
    PACK(pack_uint(&pk, "v", BERTH__RECORD_VERSION));
    PACK(pack_bytes(&pk, "name", r->name));
    PACK(pack_uint(&pk, "cores", r->cores));
    PACK(pack_uint(&pk, "mem", r->memory_mib));
    PACK(pack_bytes(&pk, "gpu_sku", r->gpu_sku));
    PACK(pack_uint(&pk, "gpu_count", r->gpu_count));
    PACK(pack_uint(&pk, "os", r->os));
    PACK(pack_uint(&pk, "build", r->os_build));
    PACK(pack_bytes(&pk, "zone", r->zone));
    PACK(pack_uint(&pk, "features", r->features));
    PACK(pack_uint(&pk, "state", r->state));
    PACK(pack_uint(&pk, "used_mc", r->used_millicores));
    PACK(pack_uint(&pk, "used_mem", r->used_memory_mib));
    PACK(pack_uint(&pk, "used_gpu", r->used_gpus));
    PACK(pack_uint(&pk, "groups", r->groups));
    PACK(pack_uint(&pk, "epoch", r->epoch));
    return 0;
}

int berth__group_record_encode(msgpack_sbuffer *buf, const berth__group_record_t *r)
{
    /* Members at their default (zero, absent, no zones) are left out: every
     * placement writes the record twice (the groups hash and the change
     * log), and Redis's append-only file carries both, so its size bounds
     * the commit rate.  The reader takes a missing member as its default. */
    bool has_sku = r->gpu_sku.ptr != NULL, has_spec = r->spec.ptr != NULL;
    uint32_t n = 7 + (r->requested_millicores != 0) + (r->gpu_count != 0) + has_sku +
                 (r->os_build != 0) + (r->nzones != 0) + (r->sku != 0) +
                 (r->priority != 0) + (r->restart != 0) + (r->cpu_digest != 0) +
                 (r->memory_digest != 0) + (r->gpu_digest != 0) + (r->ports_digest != 0) +
                 has_spec + (r->runtime.ptr != NULL ? 3 : 0);
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, n));
    PACK(pack_uint(&pk, "v", BERTH__RECORD_VERSION));
    PACK(pack_bytes(&pk, "key", r->key));
    PACK(pack_bytes(&pk, "host", r->host));
    PACK(pack_uint(&pk, "gen", r->generation));
    PACK(pack_uint(&pk, "mc", r->millicores));
    if (r->requested_millicores != 0)
        PACK(pack_uint(&pk, "req_mc", r->requested_millicores));
    PACK(pack_uint(&pk, "mem", r->memory_mib));
    if (r->gpu_count != 0)
        PACK(pack_uint(&pk, "gpu_count", r->gpu_count));
    if (has_sku)
        PACK(pack_bytes(&pk, "gpu_sku", r->gpu_sku));
    PACK(pack_uint(&pk, "os", r->os));
    if (r->os_build != 0)
        PACK(pack_uint(&pk, "build", r->os_build));
    if (r->nzones != 0) {
        PACK(pack_key(&pk, "zones"));
        PACK(msgpack_pack_array(&pk, r->nzones));
        for (size_t i = 0; i < r->nzones; i++) {
            PACK(msgpack_pack_str(&pk, r->zones[i].len));
            PACK(msgpack_pack_str_body(&pk, r->zones[i].ptr, r->zones[i].len));
        }
    }
    if (r->sku != 0)
        PACK(pack_uint(&pk, "sku", r->sku));
    if (r->priority != 0)
        PACK(pack_uint(&pk, "priority", r->priority));
    if (r->restart != 0)
        PACK(pack_uint(&pk, "restart", r->restart));
    if (r->cpu_digest != 0)
        PACK(pack_digest(&pk, "cpu_d", r->cpu_digest));
    if (r->memory_digest != 0)
        PACK(pack_digest(&pk, "mem_d", r->memory_digest));
    if (r->gpu_digest != 0)
        PACK(pack_digest(&pk, "gpu_d", r->gpu_digest));
    if (r->ports_digest != 0)
        PACK(pack_digest(&pk, "ports_d", r->ports_digest));
    if (has_spec)
        PACK(pack_bytes(&pk, "spec", r->spec));
    if (r->runtime.ptr != NULL) {
        PACK(pack_bytes(&pk, "runtime", r->runtime));
        PACK(pack_uint(&pk, "rt_gen", r->runtime_generation));
        PACK(pack_digest(&pk, "rt_d", r->runtime_digest));
    }
    return 0;
}

/* ---- decoding ------------------------------------------------------------------ */

static int corrupt(berth_error_t *err, const char *what, const char *member)
{
    return berth__error_set(err, BERTH_EINVAL, "CorruptRecord", member,
                            "%s record: member '%s' is missing or malformed", what, member);
}

static bool key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

/* An unsigned integer up to `max`.  cmsgpack writes integral doubles as
 * integers, but a float that is exactly integral is accepted too. */
static bool get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > max)
            return false;
        *out = o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) {
        double d = o->via.f64;
        /* (double)UINT64_MAX rounds up to 2^64, which uint64_t cannot hold:
         * refuse it before the conversion, which would be undefined. */
        if (!(d >= 0) || d >= 18446744073709551616.0 || d > (double)max ||
            d != (double)(uint64_t)d)
            return false;
        *out = (uint64_t)d;
        return true;
    }
    return false;
}

static bool get_u32(const msgpack_object *o, uint32_t *out)
{
    uint64_t v;
    if (!get_uint(o, UINT32_MAX, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

/* A string (msgpack str or bin); nil reads as absent when `optional`. */
static bool get_bytes(const msgpack_object *o, bool optional, berth__bytes_t *out)
{
    if (o->type == MSGPACK_OBJECT_NIL && optional) {
        out->ptr = NULL;
        out->len = 0;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_STR) {
        /* An empty string still needs a non-NULL pointer: NULL means absent. */
        out->ptr = o->via.str.size ? o->via.str.ptr : "";
        out->len = o->via.str.size;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        out->ptr = o->via.bin.size ? o->via.bin.ptr : "";
        out->len = o->via.bin.size;
        return true;
    }
    return false;
}

static bool get_digest(const msgpack_object *o, uint64_t *out)
{
    berth__bytes_t b;
    if (!get_bytes(o, false, &b) || b.len != 8)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char)b.ptr[i];
    *out = v;
    return true;
}

/* How deep a record's arrays and maps may nest.  Records nest three deep
 * (a SKU's offers); msgpack-c stops at 32 and reports that as running out
 * of memory, which a corrupt record must not look like. */
#define RECORD_DEPTH_MAX 16

/* Whether the msgpack bytes p[len] can hold the arrays and maps they
 * declare: walks the object headers (no recursion) and refuses a container
 * that announces more elements than bytes remain (each element takes at
 * least one byte), nesting deeper than RECORD_DEPTH_MAX, or a header or
 * payload cut short.  msgpack-c allocates an array or map whole before
 * reading its elements, so without this a five-byte record announcing 2^28
 * map entries costs gigabytes.  Shape only: msgpack_unpack_next() still
 * decodes and checks everything. */
static bool counts_fit(const unsigned char *p, size_t len)
{
    uint64_t todo[RECORD_DEPTH_MAX + 1];    /* objects still to read, per level */
    int depth = 0;
    size_t off = 0;
    todo[0] = 1;
    while (depth >= 0) {
        if (todo[depth] == 0) {
            depth--;
            continue;
        }
        if (off >= len)
            return false;
        unsigned char c = p[off++];
        todo[depth]--;
        enum { SCALAR, ARRAY, MAP } kind = SCALAR;
        uint64_t n = 0;             /* payload bytes, elements or pairs     */
        size_t lenbytes = 0, extra = 0;
        if (c <= 0x7f || c >= 0xe0 || (c >= 0xc0 && c <= 0xc3))
            n = 0;                  /* fixint, nil, (unused), false, true   */
        else if (c <= 0x8f)
            kind = MAP, n = c & 0x0f;
        else if (c <= 0x9f)
            kind = ARRAY, n = c & 0x0f;
        else if (c <= 0xbf)
            n = c & 0x1f;           /* fixstr                               */
        else {
            switch (c) {
            case 0xc4: case 0xd9: lenbytes = 1; break;      /* bin 8, str 8 */
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; extra = 1; break;      /* ext: + type  */
            case 0xc8: lenbytes = 2; extra = 1; break;
            case 0xc9: lenbytes = 4; extra = 1; break;
            case 0xca: case 0xce: case 0xd2: n = 4; break;
            case 0xcb: case 0xcf: case 0xd3: n = 8; break;
            case 0xcc: case 0xd0: n = 1; break;
            case 0xcd: case 0xd1: n = 2; break;
            case 0xd4: n = 2; break;                        /* fixext 1..16 */
            case 0xd5: n = 3; break;
            case 0xd6: n = 5; break;
            case 0xd7: n = 9; break;
            case 0xd8: n = 17; break;
            case 0xdc: kind = ARRAY; lenbytes = 2; break;
            case 0xdd: kind = ARRAY; lenbytes = 4; break;
            case 0xde: kind = MAP; lenbytes = 2; break;
            default: kind = MAP; lenbytes = 4; break;       /* 0xdf         */
            }
        }
        if (len - off < lenbytes)
            return false;
        for (size_t i = 0; i < lenbytes; i++)
            n = (n << 8) | p[off++];
        uint64_t left = len - off;
        if (kind == SCALAR) {
            if (n + extra > left)
                return false;
            off += (size_t)(n + extra);
            continue;
        }
        uint64_t add = kind == MAP ? 2 * n : n, need = add;
        for (int d = 0; d <= depth; d++)
            need += todo[d];
        if (need > left || depth == RECORD_DEPTH_MAX)
            return false;
        todo[++depth] = add;
    }
    return true;
}

/* Unpacks `data` into *u and checks it is a map of the known version.  The
 * caller destroys *u (its strings point into `data`, not into *u). */
static int unpack_map(const char *data, size_t len, msgpack_unpacked *u, const char *what,
                      berth_error_t *err)
{
    msgpack_unpacked_init(u);
    size_t off = 0;
    msgpack_unpack_return ret = MSGPACK_UNPACK_PARSE_ERROR;
    if (counts_fit((const unsigned char *)data, len))
        ret = msgpack_unpack_next(u, data, len, &off);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory to decode a %s record", what);
    if (ret != MSGPACK_UNPACK_SUCCESS || off != len || u->data.type != MSGPACK_OBJECT_MAP)
        return berth__error_set(err, BERTH_EINVAL, "CorruptRecord", "",
                                "%s record is not a msgpack map (%zu bytes)", what, len);
    const msgpack_object_map *m = &u->data.via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        if (!key_is(&m->ptr[i].key, "v"))
            continue;
        uint64_t v;
        if (!get_uint(&m->ptr[i].val, UINT32_MAX, &v))
            return corrupt(err, what, "v");
        if (v != BERTH__RECORD_VERSION)
            return berth__error_set(err, BERTH_EINVAL, "UnknownRecordVersion", "v",
                                    "%s record has schema version %llu; this library "
                                    "reads version %d only", what, (unsigned long long)v,
                                    BERTH__RECORD_VERSION);
        return 0;
    }
    return corrupt(err, what, "v");
}

int berth__host_record_decode(const char *data, size_t len, berth__host_record_t *r,
                              berth_error_t *err)
{
    static const char *const what = "host";
    msgpack_unpacked u;
    int rc = unpack_map(data, len, &u, what, err);
    if (rc < 0) {
        msgpack_unpacked_destroy(&u);
        return rc;
    }
    berth__host_record_t h;
    memset(&h, 0, sizeof h);
    /* Bits for the required members seen. */
    enum { NAME = 1, CORES = 2, MEM = 4, OS = 8, STATE = 16 };
    unsigned seen = 0;
    const char *bad = NULL;
    const msgpack_object_map *m = &u.data.via.map;
    for (uint32_t i = 0; i < m->size && bad == NULL; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
        uint64_t epoch;
#define U32(name, field, bit)                                                        \
    else if (key_is(k, name)) {                                                      \
        if (!get_u32(v, &h.field))                                                   \
            bad = name;                                                              \
        seen |= (bit);                                                               \
    }
        if (key_is(k, "v")) {
            continue;
        } else if (key_is(k, "name")) {
            if (!get_bytes(v, false, &h.name) || h.name.len == 0 ||
                h.name.len > BERTH_NAME_MAX)
                bad = "name";
            seen |= NAME;
        } else if (key_is(k, "gpu_sku")) {
            if (!get_bytes(v, true, &h.gpu_sku) || h.gpu_sku.len > BERTH_GPU_SKU_NAME_MAX)
                bad = "gpu_sku";
        } else if (key_is(k, "zone")) {
            if (!get_bytes(v, true, &h.zone) || h.zone.len > BERTH_NAME_MAX)
                bad = "zone";
        } else if (key_is(k, "epoch")) {
            if (!get_uint(v, UINT64_MAX, &epoch))
                bad = "epoch";
            h.epoch = epoch;
        }
        U32("cores", cores, CORES)
        U32("mem", memory_mib, MEM)
        U32("gpu_count", gpu_count, 0)
        U32("os", os, OS)
        U32("build", os_build, 0)
        U32("features", features, 0)
        U32("state", state, STATE)
        U32("used_mc", used_millicores, 0)
        U32("used_mem", used_memory_mib, 0)
        U32("used_gpu", used_gpus, 0)
        U32("groups", groups, 0)
#undef U32
    }
    if (bad == NULL) {
        if (!(seen & NAME))
            bad = "name";
        else if (!(seen & CORES))
            bad = "cores";
        else if (!(seen & MEM))
            bad = "mem";
        else if (!(seen & OS))
            bad = "os";
        else if (!(seen & STATE) || h.state > BERTH_HOST_DOWN)
            bad = "state";
    }
    msgpack_unpacked_destroy(&u);
    if (bad != NULL)
        return corrupt(err, what, bad);
    *r = h;
    return 0;
}

int berth__group_record_decode(const char *data, size_t len, berth__group_record_t *r,
                               berth_error_t *err)
{
    static const char *const what = "group";
    msgpack_unpacked u;
    int rc = unpack_map(data, len, &u, what, err);
    if (rc < 0) {
        msgpack_unpacked_destroy(&u);
        return rc;
    }
    /* Filled in place: a group record holds 64 zone slots, too much to copy. */
    r->key = r->host = r->gpu_sku = r->spec = r->runtime = (berth__bytes_t){NULL, 0};
    r->runtime_generation = r->runtime_digest = 0;
    r->generation = 0;
    r->millicores = r->requested_millicores = r->memory_mib = r->gpu_count = 0;
    r->os = r->os_build = r->sku = r->priority = r->restart = 0;
    r->nzones = 0;
    r->cpu_digest = r->memory_digest = r->gpu_digest = r->ports_digest = 0;
    enum { KEY = 1, HOST = 2, GEN = 4, MC = 8, MEM = 16, OS = 32 };
    unsigned seen = 0;
    const char *bad = NULL;
    const msgpack_object_map *m = &u.data.via.map;
    for (uint32_t i = 0; i < m->size && bad == NULL; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
#define U32(name, field, bit)                                                        \
    else if (key_is(k, name)) {                                                      \
        if (!get_u32(v, &r->field))                                                  \
            bad = name;                                                              \
        seen |= (bit);                                                               \
    }
#define DIGEST(name, field)                                                          \
    else if (key_is(k, name)) {                                                      \
        if (!get_digest(v, &r->field))                                               \
            bad = name;                                                              \
    }
        if (key_is(k, "v") || key_is(k, "state")) {
            continue;
        } else if (key_is(k, "key")) {
            if (!get_bytes(v, false, &r->key) || r->key.len == 0 || r->key.len > 255)
                bad = "key";
            seen |= KEY;
        } else if (key_is(k, "host")) {
            if (!get_bytes(v, false, &r->host) || r->host.len == 0 ||
                r->host.len > BERTH_NAME_MAX)
                bad = "host";
            seen |= HOST;
        } else if (key_is(k, "gen")) {
            /* Lua compares generations as doubles: keep them below 2^53. */
            if (!get_uint(v, (1ull << 53), &r->generation) || r->generation == 0)
                bad = "gen";
            seen |= GEN;
        } else if (key_is(k, "gpu_sku")) {
            if (!get_bytes(v, true, &r->gpu_sku) || r->gpu_sku.len > BERTH_GPU_SKU_NAME_MAX)
                bad = "gpu_sku";
        } else if (key_is(k, "spec")) {
            if (!get_bytes(v, true, &r->spec))
                bad = "spec";
        } else if (key_is(k, "runtime")) {
            if (!get_bytes(v, true, &r->runtime) || r->runtime.len > 255)
                bad = "runtime";
        } else if (key_is(k, "rt_gen")) {
            if (!get_uint(v, (1ull << 53), &r->runtime_generation))
                bad = "rt_gen";
        } else if (key_is(k, "zones")) {
            if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > BERTH_ZONES_MAX) {
                bad = "zones";
                continue;
            }
            for (uint32_t z = 0; z < v->via.array.size && bad == NULL; z++) {
                berth__bytes_t *zb = &r->zones[z];
                if (!get_bytes(&v->via.array.ptr[z], false, zb) || zb->len == 0 ||
                    zb->len > BERTH_NAME_MAX)
                    bad = "zones";
            }
            r->nzones = v->via.array.size;
        }
        U32("mc", millicores, MC)
        U32("req_mc", requested_millicores, 0)
        U32("mem", memory_mib, MEM)
        U32("gpu_count", gpu_count, 0)
        U32("os", os, OS)
        U32("build", os_build, 0)
        U32("sku", sku, 0)
        U32("priority", priority, 0)
        U32("restart", restart, 0)
        DIGEST("cpu_d", cpu_digest)
        DIGEST("mem_d", memory_digest)
        DIGEST("gpu_d", gpu_digest)
        DIGEST("ports_d", ports_digest)
        DIGEST("rt_d", runtime_digest)
#undef U32
#undef DIGEST
    }
    if (bad == NULL) {
        if (!(seen & KEY))
            bad = "key";
        else if (!(seen & HOST))
            bad = "host";
        else if (!(seen & GEN))
            bad = "gen";
        else if (!(seen & MC))
            bad = "mc";
        else if (!(seen & MEM))
            bad = "mem";
        else if (!(seen & OS))
            bad = "os";
        else if (r->gpu_count > 0 && r->gpu_sku.ptr == NULL)
            bad = "gpu_sku";
    }
    msgpack_unpacked_destroy(&u);
    if (bad != NULL)
        return corrupt(err, what, bad);
    return 0;
}

int berth__sku_record_encode(msgpack_sbuffer *buf, const berth_gpu_sku_t *sku)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, 3));
    PACK(pack_uint(&pk, "v", BERTH__RECORD_VERSION));
    size_t n = strnlen(sku->name, sizeof sku->name);
    PACK(pack_bytes(&pk, "name", (berth__bytes_t){sku->name, n}));
    PACK(pack_key(&pk, "offers"));
    PACK(msgpack_pack_array(&pk, sku->noffers));
    for (size_t i = 0; i < sku->noffers; i++) {
        PACK(msgpack_pack_array(&pk, 3));
        PACK(msgpack_pack_uint32(&pk, sku->offers[i].count));
        PACK(msgpack_pack_uint32(&pk, sku->offers[i].max_millicores));
        PACK(msgpack_pack_uint32(&pk, sku->offers[i].max_memory_mib));
    }
    return 0;
}

/* The offers array of a SKU record into *sku; false when malformed. */
static bool get_offers(const msgpack_object *o, berth_gpu_sku_t *sku)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 ||
        o->via.array.size > BERTH_GPU_OFFERS_MAX)
        return false;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *t = &o->via.array.ptr[i];
        berth_gpu_offer_t *offer = &sku->offers[i];
        if (t->type != MSGPACK_OBJECT_ARRAY || t->via.array.size != 3 ||
            !get_u32(&t->via.array.ptr[0], &offer->count) ||
            !get_u32(&t->via.array.ptr[1], &offer->max_millicores) ||
            !get_u32(&t->via.array.ptr[2], &offer->max_memory_mib))
            return false;
    }
    sku->noffers = o->via.array.size;
    return true;
}

int berth__sku_record_decode(const char *data, size_t len, berth_gpu_sku_t *sku,
                             berth_error_t *err)
{
    static const char *const what = "GPU SKU";
    msgpack_unpacked u;
    int rc = unpack_map(data, len, &u, what, err);
    if (rc < 0) {
        msgpack_unpacked_destroy(&u);
        return rc;
    }
    berth_gpu_sku_t out;
    memset(&out, 0, sizeof out);
    const char *bad = NULL;
    bool has_name = false, has_offers = false;
    const msgpack_object_map *m = &u.data.via.map;
    for (uint32_t i = 0; i < m->size && bad == NULL; i++) {
        const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
        berth__bytes_t name;
        if (key_is(k, "name")) {
            if (!get_bytes(v, false, &name) || name.len == 0 ||
                name.len > BERTH_GPU_SKU_NAME_MAX)
                bad = "name";
            else
                memcpy(out.name, name.ptr, name.len);
            has_name = true;
        } else if (key_is(k, "offers")) {
            if (!get_offers(v, &out))
                bad = "offers";
            has_offers = true;
        }
    }
    if (bad == NULL && !has_name)
        bad = "name";
    if (bad == NULL && !has_offers)
        bad = "offers";
    msgpack_unpacked_destroy(&u);
    if (bad != NULL)
        return corrupt(err, what, bad);
    *sku = out;
    return 0;
}

int berth__limits_record_encode(msgpack_sbuffer *buf, const berth_limits_t *limits)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, 6));
    PACK(pack_uint(&pk, "v", BERTH__RECORD_VERSION));
    PACK(pack_uint(&pk, "mc", limits->max_millicores));
    PACK(pack_uint(&pk, "mem", limits->max_memory_mib));
    PACK(pack_uint(&pk, "containers", limits->max_containers));
    PACK(pack_uint(&pk, "volumes", limits->max_volumes));
    PACK(pack_uint(&pk, "ports", limits->max_ip_ports));
    return 0;
}

int berth__limits_record_decode(const char *data, size_t len, berth_limits_t *limits,
                                berth_error_t *err)
{
    static const char *const what = "limits";
    static const char *const names[] = {"mc", "mem", "containers", "volumes", "ports"};
    msgpack_unpacked u;
    int rc = unpack_map(data, len, &u, what, err);
    if (rc < 0) {
        msgpack_unpacked_destroy(&u);
        return rc;
    }
    uint32_t v[5] = {0, 0, 0, 0, 0};
    const char *bad = NULL;
    const msgpack_object_map *m = &u.data.via.map;
    for (uint32_t i = 0; i < m->size && bad == NULL; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        for (size_t j = 0; j < 5; j++)
            if (key_is(k, names[j]) && (!get_u32(&m->ptr[i].val, &v[j]) || v[j] == 0))
                bad = names[j];
    }
    /* Every limit is required and above zero. */
    for (size_t j = 0; j < 5 && bad == NULL; j++)
        if (v[j] == 0)
            bad = names[j];
    msgpack_unpacked_destroy(&u);
    if (bad != NULL)
        return corrupt(err, what, bad);
    limits->max_millicores = v[0];
    limits->max_memory_mib = v[1];
    limits->max_containers = v[2];
    limits->max_volumes = v[3];
    limits->max_ip_ports = v[4];
    return 0;
}
