/*
 * subnet_table.c: the engine's subnet table as plain data (subnets.h): a
 * host's subnet bits, a subnet's index by id, a group's subnet from its
 * document, and freeing the table.
 *
 * engine.c calls these when hosts are added or updated, when a group's
 * request is computed and when the engine is freed; subnets.c, which
 * validates and replaces the table, sits above both.  This file must never
 * call into engine.c (the layers check refuses a loop) and never be called
 * from the placement path.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "subnets.h"

int berth__subnets_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

uint64_t berth__subnets_host_mask(const berth__subnets_t *t, const char *name)
{
    uint64_t mask = 0;
    for (size_t i = 0; i < t->n; i++) {
        const berth__subnet_t *s = &t->v[i];
        /* An empty list has no array: bsearch() must not see NULL. */
        if (s->nhosts > 0 &&
            bsearch(&name, s->hosts, s->nhosts, sizeof *s->hosts, berth__subnets_name_cmp))
            mask |= UINT64_C(1) << i;
    }
    return mask;
}

static void subnet_free(berth__subnet_t *s)
{
    for (size_t j = 0; j < s->nhosts; j++)
        free(s->hosts[j]);
    free(s->hosts);
    free(s->id);
}

void berth__subnets_clear(berth__subnets_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        subnet_free(&t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

int berth__subnets_find(const berth__subnets_t *t, const char *id)
{
    for (size_t i = 0; id != NULL && i < t->n; i++)
        if (strcasecmp(t->v[i].id, id) == 0)
            return (int)i;
    return BERTH_ENOENT;
}

/* ---- a group's subnet ------------------------------------------------------- */

int berth__subnets_request(const berth__subnets_t *t, const berth_group_t *group,
                           uint64_t *mask, berth_error_t *err)
{
    *mask = 0;
    /* A cell without subnets keeps subnetIds and the IP type as data, as
     * ACI documents keep them, and acts on neither. */
    if (t->n == 0)
        return 0;
    json_t *extra = NULL, *ids = NULL;
    if (group->properties_extra_json != NULL) {
        extra = json_loads(group->properties_extra_json, JSON_REJECT_DUPLICATES, NULL);
        if (extra == NULL)
            return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                    "out of memory reading properties.subnetIds");
        ids = json_object_get(extra, "subnetIds");
    }
    int rc = 0;
    bool is_private = group->ip_address != NULL && group->ip_address->type == BERTH_IP_PRIVATE;
    size_t n = json_array_size(ids);
    if (ids != NULL && (!json_is_array(ids) || n > 1)) {
        rc = berth__error_set(err, BERTH_EINVAL, "InvalidSubnetIds", "properties.subnetIds",
                              "'subnetIds' must be an array of one subnet {\"id\", \"name\"}: "
                              "a container group joins at most one subnet");
    } else if (n == 1) {
        json_t *s = json_array_get(ids, 0);
        const char *id = json_string_value(json_object_get(s, "id"));
        json_t *name = json_object_get(s, "name");
        int i;
        if (!json_is_object(s) || id == NULL)
            rc = berth__error_set(err, BERTH_EINVAL, "InvalidSubnetIds",
                                  "properties.subnetIds[0].id",
                                  "a subnet reference needs 'id', the subnet's resource id");
        else if (name != NULL && !json_is_string(name))
            rc = berth__error_set(err, BERTH_EINVAL, "InvalidSubnetIds",
                                  "properties.subnetIds[0].name",
                                  "a subnet's 'name' must be a string");
        else if ((i = berth__subnets_find(t, id)) < 0)
            rc = berth__error_set(err, BERTH_EINVAL, "SubnetNotFound",
                                  "properties.subnetIds[0].id",
                                  "subnet '%.200s' is not one of the cell's subnets", id);
        else if (group->ip_address != NULL && group->ip_address->type == BERTH_IP_PUBLIC)
            rc = berth__error_set(err, BERTH_EINVAL, "InvalidIpAddressType",
                                  "properties.ipAddress.type",
                                  "a container group in a subnet has a private IP: "
                                  "'ipAddress.type' must be \"Private\"");
        else
            *mask = UINT64_C(1) << i;
    } else if (is_private) {
        rc = berth__error_set(err, BERTH_EINVAL, "InvalidIpAddressType",
                              "properties.ipAddress.type",
                              "'ipAddress.type' \"Private\" needs properties.subnetIds: a "
                              "private IP comes from the group's subnet");
    }
    json_decref(extra);
    return rc;
}
