/*
 * table.c: the parts of libberth's hash table (table.h) that are off the
 * placement path: growing the table and deleting from it.  Never does I/O.
 */
#include "table.h"

/* Contract: table.h. */
int berth__table_reserve(berth__table_t *t)
{
    if ((t->n + 1) * 2 <= t->cap)
        return 0;
    if (t->cap >= (1u << 31))
        return BERTH_ENOMEM;
    uint32_t cap = t->cap ? t->cap * 2 : 64;
    berth__table_entry_t *e = malloc((size_t)cap * sizeof *e);
    if (e == NULL)
        return BERTH_ENOMEM;
    for (uint32_t i = 0; i < cap; i++)
        e[i].id = BERTH__TABLE_NIL;
    berth__table_t old = *t;
    t->e = e;
    t->cap = cap;
    t->n = 0;
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.e[i].id != BERTH__TABLE_NIL)
            berth__table_put(t, old.e[i].hash, old.e[i].id);
    free(old.e);
    return 0;
}

/* Contract: table.h. */
void berth__table_delete(berth__table_t *t, uint32_t pos)
{
    uint32_t mask = t->cap - 1;
    uint32_t i = pos;
    for (uint32_t j = (i + 1) & mask; t->e[j].id != BERTH__TABLE_NIL; j = (j + 1) & mask) {
        uint32_t home = t->e[j].hash & mask;
        /* Move e[j] into the hole at i unless its home lies in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->e[i] = t->e[j];
            i = j;
        }
    }
    t->e[i].id = BERTH__TABLE_NIL;
    t->n--;
}
