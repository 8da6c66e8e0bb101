/*
 * apiversions.h: the Microsoft.ContainerInstance api-versions berthd
 * serves, in order, and what each one's container-group schema has: which
 * request properties (and enum values) a PUT may use under a version, and
 * which properties an answer under a version leaves out.
 *
 * Pure: no I/O, no loop, no state (the tables are constants); safe on any
 * thread.  Property paths are written as in the spec with "[]" for every
 * element of an array ("properties.containers[].properties.configMap");
 * targets name the element ("properties.containers[0].properties.configMap").
 * Members of a document are matched without regard to case, as the core's
 * parser matches them.
 */
#ifndef BERTHD_APIVERSIONS_H
#define BERTHD_APIVERSIONS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define BD_APIV_TARGET_MAX 256

/* The number of api-versions served (bd_apiv_name(0) is the oldest). */
size_t bd_apiv_count(void);

/* The i-th api-version served, oldest first; NULL when i >= bd_apiv_count(). */
const char *bd_apiv_name(size_t i);

/* The position of api-version `v` (exact, case-sensitive, as ARM compares
 * them) in the ordered list, or -1 when berthd does not serve it (NULL
 * included). */
int bd_apiv_index(const char *v);

/* Whether berthd serves api-version `v` for container groups, locations and
 * operations. */
bool bd_apiv_known(const char *v);

/* Every api-version served, oldest first, comma-separated (a constant
 * string, for error messages). */
const char *bd_apiv_list(void);

/* The first api-version whose spec has NGroups (Microsoft.ContainerInstance
 * /nGroups). */
const char *bd_apiv_ngroups_first(void);

/* Whether `v` is served and has NGroups (bd_apiv_ngroups_first() or later). */
bool bd_apiv_ngroups_ok(const char *v);

/* One gated property of a container group: `path` (spec spelling, "[]" for
 * array elements), `value` (NULL: the property itself is gated; else only
 * this enum value of it), `first` (the first api-version whose spec has it)
 * and `request` (false: only answers carry it, it is read-only). */
typedef struct bd_apiv_field {
    const char *path;
    const char *value;
    const char *first;
    bool request;
} bd_apiv_field_t;

/* The number of gated properties, and the i-th (NULL past the end). */
size_t bd_apiv_field_count(void);
const bd_apiv_field_t *bd_apiv_field_at(size_t i);

/* Why a document was refused: the table's entry and the JSON path in the
 * document at fault, with array indices. */
typedef struct bd_apiv_refusal {
    const bd_apiv_field_t *field;
    char target[BD_APIV_TARGET_MAX];
} bd_apiv_refusal_t;

/* Whether container-group document `doc` (a PUT body, borrowed) uses only
 * request properties and values that api-version `v` (served) has.  Returns
 * true, or false with *why naming the first gated entry (table order) the
 * document uses and where (document order).  A member whose value is JSON
 * null counts as absent.  A `doc` that is not an object passes (the parser
 * refuses it). */
bool bd_apiv_request_ok(const json_t *doc, const char *v, bd_apiv_refusal_t *why);

/* Removes from container-group body `body` (modified in place) every
 * property that api-version `v`'s spec lacks.  Enum values are left as they
 * are (an answer says what the group is).  NULL body, or `v` unknown:
 * nothing changes. */
void bd_apiv_shape(json_t *body, const char *v);

#endif /* BERTHD_APIVERSIONS_H */
