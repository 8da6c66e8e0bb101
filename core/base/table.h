/*
 * table.h: libberth's one string-keyed hash table, shared by the engine
 * (host names, group keys) and the store's replica maps (group keys, host
 * names).
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), a power-of-two table at most half full, mapping a 32-bit
 * hash of a key to an id: the owner keeps its records (and their keys) in
 * its own array and compares keys through a callback, so an entry is eight
 * bytes and a lookup allocates nothing.  Lookups and inserts are static
 * inline (the engine's sit on the placement path); growing and deleting,
 * off that path, are table.c's.  Only reserve allocates; nothing here does
 * I/O.  Not published (berth__ names).
 */
#ifndef BERTH_TABLE_H
#define BERTH_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

#define BERTH__TABLE_NIL UINT32_MAX

typedef struct berth__table_entry {
    uint32_t hash;
    uint32_t id;                    /* BERTH__TABLE_NIL: empty              */
} berth__table_entry_t;

typedef struct berth__table {
    berth__table_entry_t *e;
    uint32_t cap;                   /* a power of two, or 0                 */
    uint32_t n;
} berth__table_t;

/* True when record `id` of the owner `ctx` has the key `key`. */
typedef bool (*berth__table_eq_fn)(const void *ctx, uint32_t id, const void *key);

/* The hash of `len` bytes at `key`. */
static inline uint32_t berth__table_hash(const void *key, size_t len)
{
    uint64_t h = berth__mix64(berth__fnv1a(BERTH__FNV_INIT, key, len));
    return (uint32_t)(h ^ (h >> 32));
}

/* The position of `key` (its hash `hash`) in the table, or
 * BERTH__TABLE_NIL. */
static inline uint32_t berth__table_find(const berth__table_t *t, uint32_t hash, const void *key,
                                         berth__table_eq_fn eq, const void *ctx)
{
    if (t->cap == 0)
        return BERTH__TABLE_NIL;
    uint32_t mask = t->cap - 1;
    for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
        const berth__table_entry_t *e = &t->e[i];
        if (e->id == BERTH__TABLE_NIL)
            return BERTH__TABLE_NIL;
        if (e->hash == hash && eq(ctx, e->id, key))
            return i;
    }
}

/* The position holding id `id` under hash `hash`, or BERTH__TABLE_NIL. */
static inline uint32_t berth__table_find_id(const berth__table_t *t, uint32_t hash, uint32_t id)
{
    if (t->cap == 0)
        return BERTH__TABLE_NIL;
    uint32_t mask = t->cap - 1;
    for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
        if (t->e[i].id == BERTH__TABLE_NIL)
            return BERTH__TABLE_NIL;
        if (t->e[i].id == id)
            return i;
    }
}

/* Adds (hash, id); the caller made room with berth__table_reserve() and
 * knows the key is not there. */
static inline void berth__table_put(berth__table_t *t, uint32_t hash, uint32_t id)
{
    uint32_t mask = t->cap - 1;
    uint32_t i = hash & mask;
    while (t->e[i].id != BERTH__TABLE_NIL)
        i = (i + 1) & mask;
    t->e[i].hash = hash;
    t->e[i].id = id;
    t->n++;
}

/* Makes room for one more entry (load stays at most one half).  Returns 0
 * or BERTH_ENOMEM, in which case the table is unchanged. */
int berth__table_reserve(berth__table_t *t);

/* Removes the entry at position `pos`, shifting later entries of the same
 * probe run back so that lookups never meet a hole. */
void berth__table_delete(berth__table_t *t, uint32_t pos);

/* Empties the table, keeping its memory. */
static inline void berth__table_clear(berth__table_t *t)
{
    for (uint32_t i = 0; i < t->cap; i++)
        t->e[i].id = BERTH__TABLE_NIL;
    t->n = 0;
}

/* Frees the table's memory; it is then empty and may be used again. */
static inline void berth__table_free(berth__table_t *t)
{
    free(t->e);
    t->e = NULL;
    t->cap = t->n = 0;
}

#endif
