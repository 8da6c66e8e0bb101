/*
 * test_codec.c: the msgpack records of the Redis store (core/store/codec.c).
 *
 * Round trips of host and group records, group members at their defaults
 * left out of the encoding, the reading of records as the Redis Functions
 * rewrite them (nil members dropped), and the refusal of records that are
 * malformed or of a schema version this library does not know.  No Redis
 * is needed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store.h"

static berth__bytes_t B(const char *s)
{
    return (berth__bytes_t){s, strlen(s)};
}

static void assert_bytes(berth__bytes_t b, const char *s)
{
    assert_non_null(b.ptr);
    assert_int_equal(b.len, strlen(s));
    assert_memory_equal(b.ptr, s, b.len);
}

static void test_host_round_trip(void **state)
{
    (void)state;
    berth__host_record_t in, out;
    memset(&in, 0, sizeof in);
    in.name = B("host-1.a");
    in.cores = 64;
    in.memory_mib = 262144;
    in.gpu_sku = B("V100");
    in.gpu_count = 4;
    in.os = BERTH_OS_WINDOWS;
    in.os_build = BERTH_WINDOWS_LTSC2022;
    in.zone = B("2");
    in.features = BERTH_HOST_HYPERV;
    in.state = BERTH_HOST_CORDONED;
    in.used_millicores = 12000;
    in.used_memory_mib = 4096;
    in.used_gpus = 2;
    in.groups = 3;
    in.epoch = 1ull << 40;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(berth__host_record_encode(&buf, &in), 0);
    berth_error_t err;
    assert_int_equal(berth__host_record_decode(buf.data, buf.size, &out, &err), 0);
    assert_bytes(out.name, "host-1.a");
    assert_bytes(out.gpu_sku, "V100");
    assert_bytes(out.zone, "2");
    assert_int_equal(out.cores, 64);
    assert_int_equal(out.memory_mib, 262144);
    assert_int_equal(out.gpu_count, 4);
    assert_int_equal(out.os, BERTH_OS_WINDOWS);
    assert_int_equal(out.os_build, BERTH_WINDOWS_LTSC2022);
    assert_int_equal(out.features, BERTH_HOST_HYPERV);
    assert_int_equal(out.state, BERTH_HOST_CORDONED);
    assert_int_equal(out.used_millicores, 12000);
    assert_int_equal(out.used_memory_mib, 4096);
    assert_int_equal(out.used_gpus, 2);
    assert_int_equal(out.groups, 3);
    assert_true(out.epoch == (1ull << 40));

    /* No GPU and no zone: nil, read back as absent. */
    in.gpu_sku = (berth__bytes_t){NULL, 0};
    in.gpu_count = 0;
    in.zone = (berth__bytes_t){NULL, 0};
    msgpack_sbuffer_clear(&buf);
    assert_int_equal(berth__host_record_encode(&buf, &in), 0);
    assert_int_equal(berth__host_record_decode(buf.data, buf.size, &out, &err), 0);
    assert_null(out.gpu_sku.ptr);
    assert_null(out.zone.ptr);
    msgpack_sbuffer_destroy(&buf);
}

static void test_group_round_trip(void **state)
{
    (void)state;
    berth__group_record_t *in = calloc(1, sizeof *in), *out = calloc(1, sizeof *out);
    assert_non_null(in);
    assert_non_null(out);
    in->key = B("sub/rg/web");
    in->host = B("h7");
    in->generation = 42;
    in->millicores = 2000;
    in->requested_millicores = 1250;
    in->memory_mib = 3072;
    in->gpu_count = 1;
    in->gpu_sku = B("K80");
    in->os = BERTH_OS_LINUX;
    in->nzones = 2;
    in->zones[0] = B("1");
    in->zones[1] = B("3");
    in->sku = BERTH_SKU_CONFIDENTIAL;
    in->priority = BERTH_PRIORITY_SPOT;
    in->restart = BERTH_RESTART_NEVER;
    /* Digests use all 64 bits: they must not pass through a double. */
    in->cpu_digest = 0xfedcba9876543211ull;
    in->memory_digest = 0x8000000000000001ull;
    in->gpu_digest = 1;
    in->ports_digest = UINT64_MAX;
    in->spec = B("{\"location\":\"westeurope\"}");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(berth__group_record_encode(&buf, in), 0);
    berth_error_t err;
    assert_int_equal(berth__group_record_decode(buf.data, buf.size, out, &err), 0);
    assert_bytes(out->key, "sub/rg/web");
    assert_bytes(out->host, "h7");
    assert_true(out->generation == 42);
    assert_int_equal(out->millicores, 2000);
    assert_int_equal(out->requested_millicores, 1250);
    assert_int_equal(out->memory_mib, 3072);
    assert_int_equal(out->gpu_count, 1);
    assert_bytes(out->gpu_sku, "K80");
    assert_int_equal(out->nzones, 2);
    assert_bytes(out->zones[0], "1");
    assert_bytes(out->zones[1], "3");
    assert_int_equal(out->sku, BERTH_SKU_CONFIDENTIAL);
    assert_int_equal(out->priority, BERTH_PRIORITY_SPOT);
    assert_int_equal(out->restart, BERTH_RESTART_NEVER);
    assert_true(out->cpu_digest == 0xfedcba9876543211ull);
    assert_true(out->memory_digest == 0x8000000000000001ull);
    assert_true(out->gpu_digest == 1);
    assert_true(out->ports_digest == UINT64_MAX);
    assert_bytes(out->spec, "{\"location\":\"westeurope\"}");

    /* No spec, no zones, no GPU. */
    in->spec = (berth__bytes_t){NULL, 0};
    in->nzones = 0;
    in->gpu_count = 0;
    in->gpu_sku = (berth__bytes_t){NULL, 0};
    msgpack_sbuffer_clear(&buf);
    assert_int_equal(berth__group_record_encode(&buf, in), 0);
    assert_int_equal(berth__group_record_decode(buf.data, buf.size, out, &err), 0);
    assert_null(out->spec.ptr);
    assert_null(out->gpu_sku.ptr);
    assert_int_equal(out->nzones, 0);
    msgpack_sbuffer_destroy(&buf);
    free(in);
    free(out);
}

/* A group whose optional members are all at their defaults is written
 * with the required members only (its record travels twice per commit:
 * keep it small), and reads back with those defaults. */
static void test_group_defaults_left_out(void **state)
{
    (void)state;
    berth__group_record_t *in = calloc(1, sizeof *in), *out = calloc(1, sizeof *out);
    assert_non_null(in);
    assert_non_null(out);
    in->key = B("g");
    in->host = B("h");
    in->generation = 1;
    in->millicores = 1000;
    in->memory_mib = 512;
    in->os = BERTH_OS_LINUX;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    assert_int_equal(berth__group_record_encode(&buf, in), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, buf.data, buf.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(u.data.via.map.size, 7); /* v, key, host, gen, mc, mem, os */
    msgpack_unpacked_destroy(&u);
    memset(out, 0xff, sizeof *out);
    berth_error_t err;
    assert_int_equal(berth__group_record_decode(buf.data, buf.size, out, &err), 0);
    assert_bytes(out->key, "g");
    assert_bytes(out->host, "h");
    assert_true(out->generation == 1);
    assert_int_equal(out->millicores, 1000);
    assert_int_equal(out->memory_mib, 512);
    assert_int_equal(out->requested_millicores, 0);
    assert_int_equal(out->gpu_count, 0);
    assert_null(out->gpu_sku.ptr);
    assert_int_equal(out->os_build, 0);
    assert_int_equal(out->nzones, 0);
    assert_int_equal(out->sku, 0);
    assert_int_equal(out->priority, 0);
    assert_int_equal(out->restart, 0);
    assert_true(out->cpu_digest == 0 && out->memory_digest == 0 && out->gpu_digest == 0 &&
                out->ports_digest == 0);
    assert_null(out->spec.ptr);

    /* One digest known, the others not: only that one is written. */
    in->memory_digest = 0x8000000000000000ull;
    msgpack_sbuffer_clear(&buf);
    assert_int_equal(berth__group_record_encode(&buf, in), 0);
    assert_int_equal(berth__group_record_decode(buf.data, buf.size, out, &err), 0);
    assert_true(out->memory_digest == 0x8000000000000000ull);
    assert_true(out->cpu_digest == 0 && out->gpu_digest == 0 && out->ports_digest == 0);
    msgpack_sbuffer_destroy(&buf);
    free(in);
    free(out);
}

/* Packs a map of `n` members given as (key, kind, value) triples: kind 'u'
 * an unsigned, 's' a string, 'n' nil. */
static void pack_map(msgpack_sbuffer *buf, size_t n, ...)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        const char *k = va_arg(ap, const char *);
        int kind = va_arg(ap, int);
        msgpack_pack_str_with_body(&pk, k, strlen(k));
        if (kind == 'u') {
            msgpack_pack_uint64(&pk, va_arg(ap, unsigned long long));
        } else if (kind == 's') {
            const char *v = va_arg(ap, const char *);
            msgpack_pack_str_with_body(&pk, v, strlen(v));
        } else {
            msgpack_pack_nil(&pk);
        }
    }
    va_end(ap);
}

static void test_host_as_lua_writes_it(void **state)
{
    (void)state;
    /* cmsgpack drops nil members and reorders the rest. */
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    pack_map(&buf, 7, "state", 'u', 0ull, "os", 'u', 1ull, "mem", 'u', 1024ull, "cores", 'u',
             2ull, "name", 's', "h1", "v", 'u', 1ull, "epoch", 'u', 9ull);
    berth__host_record_t r;
    berth_error_t err;
    assert_int_equal(berth__host_record_decode(buf.data, buf.size, &r, &err), 0);
    assert_bytes(r.name, "h1");
    assert_null(r.gpu_sku.ptr);
    assert_null(r.zone.ptr);
    assert_int_equal(r.epoch, 9);
    msgpack_sbuffer_destroy(&buf);
}

static void test_refusals(void **state)
{
    (void)state;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    berth_error_t err;
    berth__host_record_t h;
    berth__group_record_t *g = malloc(sizeof *g);
    assert_non_null(g);

    /* An unknown schema version. */
    pack_map(&buf, 6, "v", 'u', 2ull, "name", 's', "h1", "cores", 'u', 2ull, "mem", 'u',
             1024ull, "os", 'u', 1ull, "state", 'u', 0ull);
    assert_int_equal(berth__host_record_decode(buf.data, buf.size, &h, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "UnknownRecordVersion");
    assert_int_equal(berth__group_record_decode(buf.data, buf.size, g, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "UnknownRecordVersion");

    /* No version at all. */
    msgpack_sbuffer_clear(&buf);
    pack_map(&buf, 1, "name", 's', "h1");
    assert_int_equal(berth__host_record_decode(buf.data, buf.size, &h, &err), BERTH_EINVAL);
    assert_string_equal(err.name, "CorruptRecord");

    /* A required member missing (cores), and one of the wrong type. */
    msgpack_sbuffer_clear(&buf);
    pack_map(&buf, 5, "v", 'u', 1ull, "name", 's', "h1", "mem", 'u', 1024ull, "os", 'u', 1ull,
             "state", 'u', 0ull);
    assert_int_equal(berth__host_record_decode(buf.data, buf.size, &h, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "cores");
    msgpack_sbuffer_clear(&buf);
    pack_map(&buf, 6, "v", 'u', 1ull, "name", 's', "h1", "cores", 's', "two", "mem", 'u',
             1024ull, "os", 'u', 1ull, "state", 'u', 0ull);
    assert_int_equal(berth__host_record_decode(buf.data, buf.size, &h, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "cores");

    /* A group whose digest is not 8 bytes, and one with generation 0. */
    msgpack_sbuffer_clear(&buf);
    pack_map(&buf, 8, "v", 'u', 1ull, "key", 's', "k", "host", 's', "h1", "gen", 'u', 1ull,
             "mc", 'u', 1000ull, "mem", 'u', 512ull, "os", 'u', 1ull, "cpu_d", 's', "short");
    assert_int_equal(berth__group_record_decode(buf.data, buf.size, g, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "cpu_d");
    msgpack_sbuffer_clear(&buf);
    pack_map(&buf, 7, "v", 'u', 1ull, "key", 's', "k", "host", 's', "h1", "gen", 'u', 0ull,
             "mc", 'u', 1000ull, "mem", 'u', 512ull, "os", 'u', 1ull);
    assert_int_equal(berth__group_record_decode(buf.data, buf.size, g, &err), BERTH_EINVAL);
    assert_string_equal(err.target, "gen");

    /* Not a map; truncated; trailing bytes. */
    static const char not_map[] = "\x93\x01\x02\x03";
    assert_int_equal(berth__host_record_decode(not_map, 4, &h, &err), BERTH_EINVAL);
    berth__host_record_t good;
    memset(&good, 0, sizeof good);
    good.name = B("h1");
    good.cores = 1;
    good.memory_mib = 1;
    good.os = BERTH_OS_LINUX;
    msgpack_sbuffer_clear(&buf);
    assert_int_equal(berth__host_record_encode(&buf, &good), 0);
    assert_int_equal(berth__host_record_decode(buf.data, buf.size - 1, &h, &err), BERTH_EINVAL);
    assert_int_equal(berth__host_record_decode(buf.data, buf.size, &h, &err), 0);
    msgpack_sbuffer_write(&buf, "\xc0", 1);
    assert_int_equal(berth__host_record_decode(buf.data, buf.size, &h, &err), BERTH_EINVAL);
    assert_int_equal(berth__host_record_decode("", 0, &h, &err), BERTH_EINVAL);
    free(g);
    msgpack_sbuffer_destroy(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_round_trip),
        cmocka_unit_test(test_group_round_trip),
        cmocka_unit_test(test_group_defaults_left_out),
        cmocka_unit_test(test_host_as_lua_writes_it),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
