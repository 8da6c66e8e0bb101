/*
 * subnets.h: an engine's table of virtual network subnets (internal).
 *
 * The table is data: each subnet's id, its IPv4 range and the names of the
 * hosts that carry it.  A host's set of subnets is a class attribute (a bit
 * per subnet, berth__attrs_t.subnets), computed from the table when the
 * host is added or updated and for every host when the table changes, so
 * that placement reads one 64-bit word and never this table.  Nothing here
 * is published.  subnet_table.c holds what engine.c needs (it sits below
 * engine.c); subnets.c, which checks and replaces the table, sits above.
 */
#ifndef BERTH_SUBNETS_H
#define BERTH_SUBNETS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "internal.h"

/* One subnet the engine holds: heap copies it owns. */
typedef struct berth__subnet {
    char *id;
    char cidr[20];                  /* "255.255.255.255/32" fits           */
    uint32_t network;               /* host byte order                      */
    unsigned prefix;
    char **hosts;                   /* sorted by strcmp, distinct           */
    size_t nhosts;
} berth__subnet_t;

typedef struct berth__subnets {
    berth__subnet_t *v;             /* n entries, NULL when empty           */
    size_t n;
} berth__subnets_t;

/* ---- engine.c ---- */

/* The engine's table (never NULL for a live engine). */
berth__subnets_t *berth__engine_subnets(berth_engine_t *engine);

/* ---- subnet_table.c: plain data, below engine.c ---- */

/* The subnets host `name` carries: bit i for each subnet i listing it.
 * O(subnets x log hosts per subnet); never on the placement path. */
uint64_t berth__subnets_host_mask(const berth__subnets_t *t, const char *name);

/* The subnet a group joins, from its properties.subnetIds, as a mask for
 * berth_request_t.subnet_mask.  While the table is empty, subnetIds
 * and ipAddress.type are data and *mask is 0.  Otherwise subnetIds holds at
 * most one {id, name} whose id is one of the engine's subnets (400
 * SubnetNotFound naming properties.subnetIds[0].id), a group in a subnet
 * has a private IP (type "Private" or no ipAddress) and a "Private" type
 * needs a subnet.  Returns 0, BERTH_EINVAL or BERTH_ENOMEM. */
int berth__subnets_request(const berth__subnets_t *t, const berth_group_t *group,
                           uint64_t *mask, berth_error_t *err);

/* The index of the subnet whose id is `id` (without case), or
 * BERTH_ENOENT. */
int berth__subnets_find(const berth__subnets_t *t, const char *id);

/* strcmp() of two `char *` array entries, for sorting and searching host
 * lists. */
int berth__subnets_name_cmp(const void *a, const void *b);

/* Frees the table's contents and leaves it empty.  t may hold nothing. */
void berth__subnets_clear(berth__subnets_t *t);

/* ---- subnets.c: checking, reading and replacing the table, above engine.c ---- */

/* Checks a table for berth_engine_subnets_set() and adds every violation
 * to err (berth__error_add(): err is not reset; targets
 * "subnets[I].member").  Fills nets[i] and prefixes[i] (arrays of
 * BERTH_SUBNETS_MAX) for the valid CIDRs.  Returns 0, BERTH_EINVAL or
 * BERTH_ELIMIT. */
int berth__subnets_check(const berth_subnet_t *subnets, size_t n, uint32_t *nets,
                         unsigned *prefixes, berth_error_t *err);

/* A subnet table read from JSON: v[0..n) with strings pointing into the
 * JSON tree (which must outlive it) and host lists into `hosts`. */
typedef struct berth__subnets_doc {
    berth_subnet_t *v;
    const char **hosts;
    size_t n;
} berth__subnets_doc_t;

/* Reads `array` ([{"id", "cidr", "hosts": [names]}]) into *doc and checks
 * it (berth__subnets_check()), adding every violation to err with targets
 * "subnets[I]...".  Returns 0, BERTH_EINVAL, BERTH_ELIMIT or BERTH_ENOMEM;
 * *doc is to be freed with berth__subnets_doc_free() in every case. */
int berth__subnets_read(json_t *array, berth__subnets_doc_t *doc, berth_error_t *err);

/* subnets[0..n) as the JSON array berth_engine_subnets_load() reads, or
 * NULL when out of memory; free with free(). */
char *berth__subnets_encode(const berth_subnet_t *subnets, size_t n);

/* Frees what berth__subnets_read() allocated.  Accepts an empty doc. */
void berth__subnets_doc_free(berth__subnets_doc_t *doc);

#endif /* BERTH_SUBNETS_H */
