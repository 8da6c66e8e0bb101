/*
 * former_names.c: the deprecated aliases of calls renamed to the
 * berth_<receiver>_<verb> rule (berth.h, "Former names").  Each calls its
 * new name with its arguments unchanged, so that a program built against
 * the previous release links and behaves as before.
 *
 * It holds no logic and must never grow any: an alias that did more than
 * forward would be a second implementation.  It sits in the top layer
 * because it forwards to every layer.  The aliases go in the next release.
 */
#include "berth.h"

int berth_host_add(berth_engine_t *engine, const berth_host_t *host, berth_error_t *err)
{
    return berth_engine_host_add(engine, host, err);
}

int berth_host_update(berth_engine_t *engine, const berth_host_t *host, berth_error_t *err)
{
    return berth_engine_host_update(engine, host, err);
}

int berth_host_set_state(berth_engine_t *engine, const char *name, berth_host_state_t state,
                         berth_error_t *err)
{
    return berth_engine_host_set_state(engine, name, state, err);
}

int berth_host_remove(berth_engine_t *engine, const char *name, berth_error_t *err)
{
    return berth_engine_host_remove(engine, name, err);
}

int berth_host_get(const berth_engine_t *engine, const char *name, berth_host_t *host,
                   berth_host_usage_t *usage)
{
    return berth_engine_host_get(engine, name, host, usage);
}

int berth_group_request(berth_engine_t *engine, const berth_group_t *group,
                        berth_request_t *out, berth_error_t *err)
{
    return berth_engine_group_request(engine, group, out, err);
}

int berth_group_validate(berth_engine_t *engine, const berth_group_t *group, berth_error_t *err)
{
    return berth_engine_group_validate(engine, group, err);
}

int berth_request_place(berth_engine_t *engine, const char *key, const berth_request_t *request,
                        berth_placement_t *out, berth_error_t *err)
{
    return berth_engine_request_place(engine, key, request, out, err);
}

int berth_request_assign(berth_engine_t *engine, const char *key,
                         const berth_request_t *request, const char *host,
                         berth_placement_t *out, berth_error_t *err)
{
    return berth_engine_request_assign(engine, key, request, host, out, err);
}

int berth_group_place(berth_engine_t *engine, const char *key, const berth_group_t *group,
                      berth_placement_t *out, berth_error_t *err)
{
    return berth_engine_group_place(engine, key, group, out, err);
}

int berth_group_release(berth_engine_t *engine, const char *key, berth_error_t *err)
{
    return berth_engine_group_release(engine, key, err);
}

int berth_request_preemption(berth_engine_t *engine, const berth_request_t *request,
                             berth_preemption_t *out, berth_error_t *err)
{
    return berth_engine_preemption_plan(engine, request, out, err);
}

const char *berth_engine_victim(const berth_engine_t *engine, size_t i)
{
    return berth_engine_victim_get(engine, i);
}

int berth_group_get(const berth_engine_t *engine, const char *key, berth_placement_t *out)
{
    return berth_engine_group_get(engine, key, out);
}

int berth_inventory_load(berth_engine_t *engine, const char *json, size_t len,
                         berth_error_t *err)
{
    return berth_engine_inventory_load(engine, json, len, err);
}

int berth_template_digest(const berth_group_t *group, uint64_t *out)
{
    return berth_group_template_digest(group, out);
}
