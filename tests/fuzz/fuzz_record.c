/*
 * fuzz_record.c: libFuzzer target for the msgpack records Berth keeps in
 * Redis (core/store/codec.c).
 *
 * The input is one record's bytes, given to all three decoders (host,
 * group, GPU SKU).  Each must accept or refuse it without reading outside
 * it; an accepted record's strings must lie inside the input (an empty one
 * may be any non-NULL pointer), its members within the documented limits,
 * and encoding it again must give a record that decodes to the same values.
 */
#include <string.h>

#include "fuzz.h"
#include "store.h"

static const char *in_data;
static size_t in_size;

/* A decoded string: absent (NULL, length 0) when `optional`, else non-NULL;
 * a non-empty one lies inside the input. */
static void check_bytes(berth__bytes_t b, bool optional, size_t max)
{
    if (b.ptr == NULL) {
        FUZZ_CHECK(optional && b.len == 0);
        return;
    }
    FUZZ_CHECK(b.len <= max);
    if (b.len > 0)
        FUZZ_CHECK(b.ptr >= in_data && b.len <= in_size &&
                   (size_t)(b.ptr - in_data) <= in_size - b.len);
}

static bool bytes_eq(berth__bytes_t a, berth__bytes_t b)
{
    if (a.ptr == NULL || b.ptr == NULL)
        return a.ptr == b.ptr;
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* A refusal is EINVAL with the error filled in.  Not ENOMEM: decoding
 * takes memory in proportion to the record, and the fuzzers' inputs are
 * small, so running out means the decoder believed a count in the input. */
static void check_refusal(int rc, const berth_error_t *err)
{
    FUZZ_CHECK(rc == BERTH_EINVAL);
    FUZZ_CHECK(err->code == rc && err->name[0] != '\0');
}

static void host(void)
{
    berth__host_record_t h, h2;
    berth_error_t err;
    int rc = berth__host_record_decode(in_data, in_size, &h, &err);
    if (rc != 0) {
        check_refusal(rc, &err);
        return;
    }
    check_bytes(h.name, false, BERTH_NAME_MAX);
    FUZZ_CHECK(h.name.len > 0);
    check_bytes(h.gpu_sku, true, BERTH_GPU_SKU_NAME_MAX);
    check_bytes(h.zone, true, BERTH_NAME_MAX);
    FUZZ_CHECK(h.state <= BERTH_HOST_DOWN);

    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    FUZZ_CHECK(berth__host_record_encode(&buf, &h) == 0);
    FUZZ_CHECK(berth__host_record_decode(buf.data, buf.size, &h2, &err) == 0);
    FUZZ_CHECK(bytes_eq(h.name, h2.name) && bytes_eq(h.gpu_sku, h2.gpu_sku) &&
               bytes_eq(h.zone, h2.zone));
    FUZZ_CHECK(h.cores == h2.cores && h.memory_mib == h2.memory_mib &&
               h.gpu_count == h2.gpu_count && h.os == h2.os && h.os_build == h2.os_build &&
               h.features == h2.features && h.state == h2.state &&
               h.used_millicores == h2.used_millicores &&
               h.used_memory_mib == h2.used_memory_mib && h.used_gpus == h2.used_gpus &&
               h.groups == h2.groups && h.epoch == h2.epoch);
    msgpack_sbuffer_destroy(&buf);
}

static void group(void)
{
    /* Two zone tables are too large for the stack of a fuzzing thread. */
    berth__group_record_t *g = malloc(sizeof *g), *g2 = malloc(sizeof *g2);
    FUZZ_CHECK(g != NULL && g2 != NULL);
    berth_error_t err;
    int rc = berth__group_record_decode(in_data, in_size, g, &err);
    if (rc != 0) {
        check_refusal(rc, &err);
        free(g2);
        free(g);
        return;
    }
    check_bytes(g->key, false, 255);
    check_bytes(g->host, false, BERTH_NAME_MAX);
    FUZZ_CHECK(g->key.len > 0 && g->host.len > 0);
    check_bytes(g->gpu_sku, true, BERTH_GPU_SKU_NAME_MAX);
    check_bytes(g->spec, true, in_size);
    FUZZ_CHECK(g->generation >= 1 && g->generation <= (1ull << 53));
    FUZZ_CHECK(g->gpu_count == 0 || g->gpu_sku.ptr != NULL);
    FUZZ_CHECK(g->nzones <= BERTH_ZONES_MAX);
    for (size_t i = 0; i < g->nzones; i++) {
        check_bytes(g->zones[i], false, BERTH_NAME_MAX);
        FUZZ_CHECK(g->zones[i].len > 0);
    }

    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    FUZZ_CHECK(berth__group_record_encode(&buf, g) == 0);
    FUZZ_CHECK(berth__group_record_decode(buf.data, buf.size, g2, &err) == 0);
    FUZZ_CHECK(bytes_eq(g->key, g2->key) && bytes_eq(g->host, g2->host) &&
               bytes_eq(g->gpu_sku, g2->gpu_sku) && bytes_eq(g->spec, g2->spec));
    FUZZ_CHECK(g->generation == g2->generation && g->millicores == g2->millicores &&
               g->requested_millicores == g2->requested_millicores &&
               g->memory_mib == g2->memory_mib && g->gpu_count == g2->gpu_count &&
               g->os == g2->os && g->os_build == g2->os_build && g->sku == g2->sku &&
               g->priority == g2->priority && g->restart == g2->restart &&
               g->cpu_digest == g2->cpu_digest && g->memory_digest == g2->memory_digest &&
               g->gpu_digest == g2->gpu_digest && g->ports_digest == g2->ports_digest);
    FUZZ_CHECK(g->nzones == g2->nzones);
    for (size_t i = 0; i < g->nzones; i++)
        FUZZ_CHECK(bytes_eq(g->zones[i], g2->zones[i]));
    msgpack_sbuffer_destroy(&buf);
    free(g2);
    free(g);
}

static void sku(void)
{
    berth_gpu_sku_t s, s2;
    berth_error_t err;
    int rc = berth__sku_record_decode(in_data, in_size, &s, &err);
    if (rc != 0) {
        check_refusal(rc, &err);
        return;
    }
    FUZZ_CHECK(memchr(s.name, '\0', sizeof s.name) != NULL);
    FUZZ_CHECK(s.noffers >= 1 && s.noffers <= BERTH_GPU_OFFERS_MAX);
    /* A name holding a NUL byte is cut there by the encoder (the table
     * keys SKUs by C string), so only the part before it survives. */
    if (s.name[0] == '\0')
        return;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    FUZZ_CHECK(berth__sku_record_encode(&buf, &s) == 0);
    FUZZ_CHECK(berth__sku_record_decode(buf.data, buf.size, &s2, &err) == 0);
    FUZZ_CHECK(strcmp(s.name, s2.name) == 0 && s.noffers == s2.noffers);
    for (size_t i = 0; i < s.noffers; i++)
        FUZZ_CHECK(s.offers[i].count == s2.offers[i].count &&
                   s.offers[i].max_millicores == s2.offers[i].max_millicores &&
                   s.offers[i].max_memory_mib == s2.offers[i].max_memory_mib);
    msgpack_sbuffer_destroy(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in_data = (const char *)data;
    in_size = size;
    host();
    group();
    sku();
    return 0;
}
