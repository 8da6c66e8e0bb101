/*
 * store.h: declarations shared by the Redis store's own files (store.c,
 * codec.c, functions.c) and their tests.
 *
 * Nothing here is published: names are berth__ and hidden.  The records
 * described here are the bytes Berth keeps in Redis (store.c documents the
 * keys); their layout is a schema with a version, and a reader must refuse
 * a version it does not know rather than guess.
 */
#ifndef BERTH_STORE_H
#define BERTH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "internal.h"

/* The record schema this library writes and the only one it reads. */
#define BERTH__RECORD_VERSION 1

/* Bytes borrowed from a buffer the caller keeps alive (a decoded record's
 * strings point into the record's own bytes).  ptr NULL: absent (nil). */
typedef struct berth__bytes {
    const char *ptr;
    size_t len;
} berth__bytes_t;

/* A host as Redis holds it under berth:{C}:hosts.  GPU SKU and zone travel
 * by name, never by engine id: ids differ between engines.  `epoch` is the
 * change-log sequence number of the host's last put; a commit names the
 * epoch its replica saw, so a host whose attributes changed meanwhile is a
 * conflict rather than a silent mismatch. */
typedef struct berth__host_record {
    berth__bytes_t name;
    uint32_t cores;
    uint32_t memory_mib;
    berth__bytes_t gpu_sku;         /* absent when gpu_count == 0           */
    uint32_t gpu_count;
    uint32_t os;                    /* berth_os_t                           */
    uint32_t os_build;
    berth__bytes_t zone;            /* absent: no zone                      */
    uint32_t features;              /* BERTH_HOST_* bits                    */
    uint32_t state;                 /* berth_host_state_t                   */
    uint32_t used_millicores;
    uint32_t used_memory_mib;
    uint32_t used_gpus;
    uint32_t groups;
    uint64_t epoch;
} berth__host_record_t;

/* A group as Redis holds it under berth:{C}:groups.  Zones and the GPU SKU
 * by name; the four digests are 64-bit values kept as 8-byte big-endian
 * strings, because the Redis Functions (Lua numbers are doubles) must never
 * carry them as numbers. */
typedef struct berth__group_record {
    berth__bytes_t key;
    berth__bytes_t host;
    uint64_t generation;            /* 1 for the first placement, +1 each commit */
    uint32_t millicores;
    uint32_t requested_millicores;
    uint32_t memory_mib;
    uint32_t gpu_count;
    berth__bytes_t gpu_sku;         /* absent when gpu_count == 0           */
    uint32_t os;
    uint32_t os_build;
    size_t nzones;
    berth__bytes_t zones[BERTH_ZONES_MAX];
    uint32_t sku;                   /* berth_sku_t                          */
    uint32_t priority;              /* berth_priority_t                     */
    uint32_t restart;               /* berth_restart_policy_t               */
    uint64_t cpu_digest, memory_digest, gpu_digest, ports_digest;
    berth__bytes_t spec;            /* the group's document, or absent      */
} berth__group_record_t;

/* Appends the msgpack encoding of *r to `buf` (the caller clears it first
 * when it wants the record alone).  Returns 0 or BERTH_ENOMEM. */
int berth__host_record_encode(msgpack_sbuffer *buf, const berth__host_record_t *r);

/* Decodes one host record of `len` bytes into *r, whose strings then point
 * into `data` (keep it alive while *r is used).  Refuses anything that is
 * not a well-formed record of version BERTH__RECORD_VERSION with
 * BERTH_EINVAL and a message in *err ("CorruptRecord").  Missing optional
 * members (gpu_sku, zone) read as absent: the Redis Functions drop nils.
 * On failure *r is left unspecified. */
int berth__host_record_decode(const char *data, size_t len, berth__host_record_t *r,
                              berth_error_t *err);

/* Same as berth__host_record_encode() for a group record. */
int berth__group_record_encode(msgpack_sbuffer *buf, const berth__group_record_t *r);

/* Same as berth__host_record_decode() for a group record. */
int berth__group_record_decode(const char *data, size_t len, berth__group_record_t *r,
                               berth_error_t *err);

/* The Redis Functions library (Lua, "#!lua name=berth"), loaded with
 * FUNCTION LOAD REPLACE.  A static NUL-terminated string. */
/* Encodes a GPU SKU as the cell's SKU record: {v, name, offers: [[count,
 * max_millicores, max_memory_mib], ...]}.  Returns 0 or BERTH_ENOMEM. */
int berth__sku_record_encode(msgpack_sbuffer *buf, const berth_gpu_sku_t *sku);

/* Decodes a SKU record into *sku.  Returns 0, or BERTH_EINVAL for a record
 * that is malformed or of an unknown version (err says which member). */
int berth__sku_record_decode(const char *data, size_t len, berth_gpu_sku_t *sku,
                             berth_error_t *err);

extern const char berth__functions_source[];

#endif /* BERTH_STORE_H */
