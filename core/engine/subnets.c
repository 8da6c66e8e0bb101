/*
 * subnets.c: the engine's virtual network subnets: the public calls on the
 * table (id, IPv4 range, hosts that carry it), its validation, its JSON
 * form, and moving hosts between classes when it changes.
 *
 * A subnet is data the operator declares; a host carries the subnets that
 * list it, which the index keeps as a class attribute (one bit per subnet),
 * so that the placement path reads a single word and this table never.
 * Replacing the table validates and copies everything and reserves the
 * classes the hosts move to before it changes anything: a failing call
 * leaves the table, the hosts and their classes as they were.  The plain
 * data helpers engine.c needs live in subnet_table.c, below engine.c.  This
 * file must never be called from the placement path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "index.h"
#include "subnets.h"

/* ---- CIDRs ------------------------------------------------------------------ */

/* A decimal number from 0 to `max` with no sign and no leading zero; moves
 * *p past it.  Returns false when there is none. */
static bool read_decimal(const char **p, unsigned max, unsigned *out)
{
    const char *s = *p;
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
        return false;
    unsigned v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10u + (unsigned)(*s - '0');
        if (v > max)
            return false;
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

int berth_subnet_cidr_parse(const char *cidr, uint32_t *network, unsigned *prefix,
                            berth_error_t *err)
{
    static const char *const kind = "InvalidSubnetCidr";
    if (cidr == NULL)
        return berth__error_set(err, BERTH_EINVAL, kind, "", "no CIDR given");
    const char *p = cidr;
    uint32_t addr = 0;
    for (int i = 0; i < 4; i++) {
        unsigned octet;
        if (!read_decimal(&p, 255, &octet) || *p != (i < 3 ? '.' : '/'))
            return berth__error_set(err, BERTH_EINVAL, kind, "",
                                    "'%.40s' is not an IPv4 CIDR a.b.c.d/n", cidr);
        addr = addr << 8 | octet;
        p++;
    }
    unsigned n;
    if (!read_decimal(&p, 32, &n) || *p != '\0')
        return berth__error_set(err, BERTH_EINVAL, kind, "",
                                "'%.40s' is not an IPv4 CIDR a.b.c.d/n", cidr);
    if (n < BERTH_SUBNET_PREFIX_MIN || n > BERTH_SUBNET_PREFIX_MAX)
        return berth__error_set(err, BERTH_EINVAL, kind, "",
                                "'%.40s': a subnet's prefix must be /%d to /%d", cidr,
                                BERTH_SUBNET_PREFIX_MIN, BERTH_SUBNET_PREFIX_MAX);
    uint32_t host_bits = UINT32_MAX >> n;
    if (addr & host_bits)
        return berth__error_set(err, BERTH_EINVAL, kind, "",
                                "'%.40s' has host bits set: the network is %u.%u.%u.%u/%u",
                                cidr, addr >> 24, (addr >> 16) & 255u, (addr >> 8) & 255u,
                                (addr & ~host_bits) & 255u, n);
    *network = addr;
    *prefix = n;
    return 0;
}

/* ---- the table ---------------------------------------------------------------- */

static bool id_is_valid(const char *id)
{
    size_t len = id != NULL ? strnlen(id, BERTH_SUBNET_ID_MAX + 1) : 0;
    if (len == 0 || len > BERTH_SUBNET_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] <= ' ' || (unsigned char)id[i] >= 0x7f)
            return false;
    return true;
}

/* Whether two ranges share an address. */
static bool ranges_overlap(uint32_t a, unsigned pa, uint32_t b, unsigned pb)
{
    unsigned p = pa < pb ? pa : pb;
    uint32_t mask = p == 0 ? 0 : UINT32_MAX << (32 - p);
    return (a & mask) == (b & mask);
}

int berth__subnets_check(const berth_subnet_t *subnets, size_t n, uint32_t *nets,
                         unsigned *prefixes, berth_error_t *err)
{
    if (n > BERTH_SUBNETS_MAX)
        return berth__error_add(err, BERTH_ELIMIT, "TooManySubnets", "subnets",
                                "%zu subnets given: an engine holds at most %d", n,
                                BERTH_SUBNETS_MAX);
    if (n > 0 && subnets == NULL)
        return berth__error_add(err, BERTH_EINVAL, "InvalidSubnet", "subnets",
                                "no subnets given");
    int rc = 0;
    bool cidr_ok[BERTH_SUBNETS_MAX];
    char target[64];
    for (size_t i = 0; i < n; i++) {
        const berth_subnet_t *s = &subnets[i];
        snprintf(target, sizeof target, "subnets[%zu].id", i);
        if (!id_is_valid(s->id)) {
            rc = berth__error_add(err, BERTH_EINVAL, "InvalidSubnetId", target,
                                  "a subnet's id must be 1 to %d printable characters "
                                  "without spaces (ACI's subnet resource id or a short name)",
                                  BERTH_SUBNET_ID_MAX);
        } else {
            for (size_t j = 0; j < i; j++)
                if (id_is_valid(subnets[j].id) && strcasecmp(subnets[j].id, s->id) == 0) {
                    rc = berth__error_add(err, BERTH_EINVAL, "DuplicateSubnet", target,
                                          "subnet '%.80s' is declared twice (first as "
                                          "subnets[%zu])", s->id, j);
                    break;
                }
        }
        snprintf(target, sizeof target, "subnets[%zu].cidr", i);
        berth_error_t one;
        cidr_ok[i] = berth_subnet_cidr_parse(s->cidr, &nets[i], &prefixes[i], &one) == 0;
        if (!cidr_ok[i]) {
            rc = berth__error_add(err, BERTH_EINVAL, one.name, target, "%s", one.message);
        } else {
            for (size_t j = 0; j < i; j++)
                if (cidr_ok[j] && ranges_overlap(nets[i], prefixes[i], nets[j], prefixes[j])) {
                    rc = berth__error_add(err, BERTH_EINVAL, "OverlappingSubnets", target,
                                          "%s overlaps subnets[%zu]'s %s", s->cidr, j,
                                          subnets[j].cidr);
                    break;
                }
        }
        if (s->nhosts > 0 && s->hosts == NULL) {
            snprintf(target, sizeof target, "subnets[%zu].hosts", i);
            rc = berth__error_add(err, BERTH_EINVAL, "InvalidSubnet", target,
                                  "%zu hosts announced but none given", s->nhosts);
            continue;
        }
        for (size_t k = 0; k < s->nhosts; k++) {
            snprintf(target, sizeof target, "subnets[%zu].hosts[%zu]", i, k);
            if (!berth__host_name_is_valid(s->hosts[k])) {
                rc = berth__error_add(err, BERTH_EINVAL, "InvalidHostName", target,
                                      "a host name has 1 to %d characters among letters, "
                                      "digits, '-', '_' and '.'", BERTH_NAME_MAX);
                continue;
            }
            for (size_t j = 0; j < k; j++)
                if (berth__host_name_is_valid(s->hosts[j]) &&
                    strcmp(s->hosts[j], s->hosts[k]) == 0) {
                    rc = berth__error_add(err, BERTH_EINVAL, "DuplicateHostName", target,
                                          "host '%s' is listed twice in the subnet",
                                          s->hosts[k]);
                    break;
                }
        }
    }
    return rc;
}

/* Copies a checked table.  Returns 0 or BERTH_ENOMEM (nothing kept). */
static int table_copy(const berth_subnet_t *subnets, size_t n, const uint32_t *nets,
                      const unsigned *prefixes, berth__subnets_t *out)
{
    out->v = NULL;
    out->n = 0;
    if (n == 0)
        return 0;
    if ((out->v = calloc(n, sizeof *out->v)) == NULL)
        return BERTH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const berth_subnet_t *s = &subnets[i];
        berth__subnet_t *d = &out->v[i];
        out->n = i + 1;
        d->network = nets[i];
        d->prefix = prefixes[i];
        snprintf(d->cidr, sizeof d->cidr, "%u.%u.%u.%u/%u", nets[i] >> 24,
                 (nets[i] >> 16) & 255u, (nets[i] >> 8) & 255u, nets[i] & 255u, prefixes[i]);
        if ((d->id = strdup(s->id)) == NULL ||
            (s->nhosts > 0 && (d->hosts = calloc(s->nhosts, sizeof *d->hosts)) == NULL))
            goto fail;
        for (size_t k = 0; k < s->nhosts; k++) {
            if ((d->hosts[k] = strdup(s->hosts[k])) == NULL)
                goto fail;
            d->nhosts = k + 1;
        }
        if (d->nhosts > 1)
            qsort(d->hosts, d->nhosts, sizeof *d->hosts, berth__subnets_name_cmp);
    }
    return 0;
fail:
    berth__subnets_clear(out);
    return BERTH_ENOMEM;
}

int berth_engine_subnets_set(berth_engine_t *engine, const berth_subnet_t *subnets, size_t n,
                             berth_error_t *err)
{
    berth_error_clear(err);
    uint32_t nets[BERTH_SUBNETS_MAX];
    unsigned prefixes[BERTH_SUBNETS_MAX];
    int rc = berth__subnets_check(subnets, n, nets, prefixes, err);
    if (rc < 0)
        return rc;
    berth__subnets_t fresh;
    if (table_copy(subnets, n, nets, prefixes, &fresh) < 0)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for %zu subnets", n);
    /* Reserve the class each host moves to before moving any. */
    berth__index_t *idx = berth__engine_index(engine);
    uint32_t *cls = malloc(((size_t)idx->nhosts + 1) * sizeof *cls);
    if (cls == NULL) {
        berth__subnets_clear(&fresh);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory to move hosts between subnets");
    }
    for (uint32_t i = 0; i < idx->nhosts; i++) {
        berth__host_t *h = berth__index_host(idx, idx->order[i]);
        berth__attrs_t attrs = h->attrs;
        attrs.subnets = berth__subnets_host_mask(&fresh, h->name);
        cls[i] = h->cls;
        if (attrs.subnets != h->attrs.subnets &&
            berth__index_class_reserve(idx, &attrs, h->cores, h->gpus, &cls[i]) < 0) {
            free(cls);
            berth__subnets_clear(&fresh);
            return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                    "no memory to move host '%s' between subnets", h->name);
        }
    }
    for (uint32_t i = 0; i < idx->nhosts; i++) {
        uint32_t slot = idx->order[i];
        berth__host_t *h = berth__index_host(idx, slot);
        if (cls[i] == h->cls)
            continue;
        berth__index_unlink(idx, slot);
        h->attrs.subnets = berth__subnets_host_mask(&fresh, h->name);
        h->cls = cls[i];
        berth__index_link(idx, slot);
    }
    free(cls);
    berth__subnets_t *t = berth__engine_subnets(engine);
    berth__subnets_clear(t);
    *t = fresh;
    return 0;
}

size_t berth_engine_subnet_count(const berth_engine_t *engine)
{
    /* Reads only: the engine's tables have no const accessor. */
    return berth__engine_subnets((berth_engine_t *)engine)->n;
}

int berth_engine_subnet_at(const berth_engine_t *engine, size_t i, berth_subnet_t *out)
{
    const berth__subnets_t *t = berth__engine_subnets((berth_engine_t *)engine);
    if (i >= t->n)
        return BERTH_ENOENT;
    out->id = t->v[i].id;
    out->cidr = t->v[i].cidr;
    out->hosts = (const char *const *)t->v[i].hosts;
    out->nhosts = t->v[i].nhosts;
    return 0;
}

int berth_engine_subnet_find(const berth_engine_t *engine, const char *id)
{
    return berth__subnets_find(berth__engine_subnets((berth_engine_t *)engine), id);
}

/* ---- JSON ------------------------------------------------------------------------ */

/* The depth of {"subnets": [{"hosts": [name]}]} and a size far above 64
 * subnets of thousands of hosts each. */
#define SUBNETS_JSON_MAX_BYTES ((size_t)16 << 20)
#define SUBNETS_JSON_MAX_DEPTH 5

void berth__subnets_doc_free(berth__subnets_doc_t *doc)
{
    free(doc->v);
    free(doc->hosts);
    doc->v = NULL;
    doc->hosts = NULL;
    doc->n = 0;
}

/* Records one shape violation at subnets[i] (plus `member`). */
static int shape_error(berth_error_t *err, size_t i, const char *member, const char *msg)
{
    char target[64];
    if (member != NULL)
        snprintf(target, sizeof target, "subnets[%zu].%s", i, member);
    else
        snprintf(target, sizeof target, "subnets[%zu]", i);
    return berth__error_add(err, BERTH_EINVAL, "InvalidSubnet", target, "%s", msg);
}

int berth__subnets_read(json_t *array, berth__subnets_doc_t *doc, berth_error_t *err)
{
    memset(doc, 0, sizeof *doc);
    size_t n = json_array_size(array);
    if (!json_is_array(array) || n > BERTH_SUBNETS_MAX)
        return berth__error_add(err, BERTH_EINVAL, "InvalidSubnet", "subnets",
                                "'subnets' must be an array of at most %d subnets "
                                "{\"id\", \"cidr\", \"hosts\"}", BERTH_SUBNETS_MAX);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += json_array_size(json_object_get(json_array_get(array, i), "hosts"));
    doc->v = calloc(n > 0 ? n : 1, sizeof *doc->v);
    doc->hosts = calloc(total > 0 ? total : 1, sizeof *doc->hosts);
    if (doc->v == NULL || doc->hosts == NULL)
        return berth__error_add(err, BERTH_ENOMEM, "OutOfMemory", "subnets",
                                "out of memory reading subnets");
    int rc = 0;
    const char **next = doc->hosts;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(array, i);
        berth_subnet_t *s = &doc->v[i];
        if (!json_is_object(o)) {
            rc = shape_error(err, i, NULL,
                             "a subnet must be an object {\"id\", \"cidr\", \"hosts\"}");
            continue;
        }
        const char *key;
        json_t *value;
        json_object_foreach(o, key, value) {
            if (strcmp(key, "id") != 0 && strcmp(key, "cidr") != 0 && strcmp(key, "hosts") != 0)
                rc = shape_error(err, i, key, "not a member of a subnet (id, cidr, hosts)");
        }
        /* Members of the wrong type read as absent: the check names them. */
        s->id = json_string_value(json_object_get(o, "id"));
        s->cidr = json_string_value(json_object_get(o, "cidr"));
        json_t *hosts = json_object_get(o, "hosts");
        if (!json_is_array(hosts))
            rc = shape_error(err, i, "hosts", "a subnet needs 'hosts', an array of host names");
        s->hosts = next;
        s->nhosts = json_array_size(hosts);
        for (size_t k = 0; k < s->nhosts; k++)
            *next++ = json_string_value(json_array_get(hosts, k));
    }
    doc->n = n;
    uint32_t nets[BERTH_SUBNETS_MAX];
    unsigned prefixes[BERTH_SUBNETS_MAX];
    int check = berth__subnets_check(doc->v, n, nets, prefixes, err);
    return rc < 0 ? rc : check;
}

int berth_engine_subnets_load(berth_engine_t *engine, const char *json, size_t len,
                              berth_error_t *err)
{
    berth_error_clear(err);
    json_t *root = NULL;
    int rc = berth__json_load(json, len, SUBNETS_JSON_MAX_BYTES, SUBNETS_JSON_MAX_DEPTH, &root,
                              err);
    if (rc < 0)
        return rc;
    json_t *array = json_is_object(root) ? json_object_get(root, "subnets") : root;
    if (json_is_object(root) && (array == NULL || json_object_size(root) != 1)) {
        json_decref(root);
        return berth__error_set(err, BERTH_EINVAL, "InvalidSubnet", "",
                                "a subnet table is an array of subnets or {\"subnets\": [...]}");
    }
    berth__subnets_doc_t doc;
    rc = berth__subnets_read(array, &doc, err);
    if (rc == 0)
        rc = berth_engine_subnets_set(engine, doc.v, doc.n, err);
    berth__subnets_doc_free(&doc);
    json_decref(root);
    return rc;
}

char *berth__subnets_encode(const berth_subnet_t *v, size_t n)
{
    json_t *array = json_array();
    bool ok = array != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *hosts = json_array();
        ok = hosts != NULL;
        for (size_t k = 0; ok && k < v[i].nhosts; k++)
            ok = json_array_append_new(hosts, json_string(v[i].hosts[k])) == 0;
        ok = ok && json_array_append_new(array, json_pack("{s:s, s:s, s:o}", "id", v[i].id,
                                                          "cidr", v[i].cidr, "hosts",
                                                          hosts)) == 0;
    }
    char *out = ok ? json_dumps(array, JSON_COMPACT) : NULL;
    json_decref(array);
    return out;
}

int berth_engine_subnets_json(const berth_engine_t *engine, char **out)
{
    berth_subnet_t v[BERTH_SUBNETS_MAX];
    size_t n = berth_engine_subnet_count(engine);
    for (size_t i = 0; i < n; i++)
        berth_engine_subnet_at(engine, i, &v[i]);
    *out = berth__subnets_encode(v, n);
    return *out != NULL ? 0 : BERTH_ENOMEM;
}

