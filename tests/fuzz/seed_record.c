/*
 * seed_record.c: writes the seed corpus of the record fuzz target
 * (tests/fuzz/corpus/record/) with Berth's own encoders, so the seeds are
 * exactly the bytes the store writes.  Not built by "make"; from a
 * configured build directory:
 *
 *   gcc -std=gnu11 -I../core -Icore $(pkg-config --cflags msgpack) \
 *       ../tests/fuzz/seed_record.c core/.libs/libberth-core.a \
 *       $(pkg-config --libs jansson hiredis msgpack libevent_core) -ldl -lm \
 *       -o seed-record && ./seed-record ../tests/fuzz/corpus/record
 *
 * (msgpack-c 6 names its pkg-config module msgpack-c.)  Writes host-*,
 * group-* and sku-* files into the directory given; exits 0 or 1.
 */
#include <stdio.h>
#include <string.h>

#include "store.h"

static int write_seed(const char *dir, const char *name, const msgpack_sbuffer *buf)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf->data, 1, buf->size, f) != buf->size || fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

#define BYTES(s) ((berth__bytes_t){(s), sizeof(s) - 1})

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int rc = 0;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);

    berth__host_record_t h;
    memset(&h, 0, sizeof h);
    h.name = BYTES("host-1");
    h.cores = 16;
    h.memory_mib = 65536;
    h.state = 0;
    h.epoch = 42;
    rc |= berth__host_record_encode(&buf, &h) | write_seed(dir, "host-plain", &buf);
    msgpack_sbuffer_clear(&buf);
    h.name = BYTES("gpu-host-7");
    h.gpu_sku = BYTES("V100");
    h.gpu_count = 4;
    h.zone = BYTES("1");
    h.os = 1;
    h.os_build = 20348;
    h.features = 1;
    h.state = 1;
    h.used_millicores = 3000;
    h.used_memory_mib = 2048;
    h.used_gpus = 2;
    h.groups = 3;
    h.epoch = UINT64_MAX;
    rc |= berth__host_record_encode(&buf, &h) | write_seed(dir, "host-gpu", &buf);
    msgpack_sbuffer_clear(&buf);

    static berth__group_record_t g;
    g.key = BYTES("sub/rg/web");
    g.host = BYTES("host-1");
    g.generation = 1;
    g.millicores = 1000;
    g.memory_mib = 512;
    rc |= berth__group_record_encode(&buf, &g) | write_seed(dir, "group-minimal", &buf);
    msgpack_sbuffer_clear(&buf);
    g.generation = 1ull << 53;
    g.requested_millicores = 500;
    g.gpu_count = 1;
    g.gpu_sku = BYTES("K80");
    g.os = 1;
    g.os_build = 17763;
    g.nzones = 3;
    g.zones[0] = BYTES("1");
    g.zones[1] = BYTES("2");
    g.zones[2] = BYTES("3");
    g.sku = 1;
    g.priority = 1;
    g.restart = 2;
    g.cpu_digest = 0x0123456789abcdefull;
    g.memory_digest = 1;
    g.gpu_digest = UINT64_MAX;
    g.ports_digest = 0x8000000000000000ull;
    g.spec = BYTES("{\"name\":\"web\",\"properties\":{\"containers\":[]}}");
    rc |= berth__group_record_encode(&buf, &g) | write_seed(dir, "group-full", &buf);
    msgpack_sbuffer_clear(&buf);

    berth_gpu_sku_t sku;
    memset(&sku, 0, sizeof sku);
    strcpy(sku.name, "V100");
    sku.noffers = 3;
    sku.offers[0] = (berth_gpu_offer_t){1, 6000, 112 * 1024};
    sku.offers[1] = (berth_gpu_offer_t){2, 12000, 224 * 1024};
    sku.offers[2] = (berth_gpu_offer_t){4, 24000, 448 * 1024};
    rc |= berth__sku_record_encode(&buf, &sku) | write_seed(dir, "sku-v100", &buf);
    msgpack_sbuffer_clear(&buf);
    strcpy(sku.name, "K80");
    sku.noffers = 1;
    rc |= berth__sku_record_encode(&buf, &sku) | write_seed(dir, "sku-k80", &buf);

    msgpack_sbuffer_destroy(&buf);
    return rc != 0;
}
