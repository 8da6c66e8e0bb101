/*
 * model-internal.h: declarations shared by the container-group model
 * (model.c), its validation (validate.c) and its resource accounting
 * (demand.c).
 *
 * Nothing here is published; every name is `berth__`-prefixed.  These
 * functions read a berth_group_t and never change it; none of them does I/O.
 */
#ifndef BERTH_MODEL_INTERNAL_H
#define BERTH_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* The largest cpu or memoryInGB a document may give, in thousandths
 * (1,000,000 cores or GB): far above any host, and small enough that one
 * value fits a uint32_t. */
#define BERTH__QUANTITY_MAX_MILLI 1000000000u

/* The engine-independent rules that relate members to one another (names
 * and their uniqueness, ports, volumes and mounts, GPU SKUs, container
 * limits against the group's total request, Windows restrictions).  Appends
 * one violation per broken rule to *err (which may be NULL; it is not
 * cleared).  Returns 0, BERTH_EINVAL when a rule is broken, or BERTH_ENOMEM
 * when its scratch space could not be allocated.  Tolerates a partly built
 * group (NULL strings), so that a parse can report these rules alongside
 * type errors.  Runs in O(n log n) in the number of names, ports and
 * mounts. */
int berth__group_check(const berth_group_t *group, berth_error_t *err);

/* The rules on text (validate_text.c): image references by the OCI
 * distribution grammar, no C0 control character or DEL in any string
 * (environment values and configMap contents may hold TAB, LF, CR), an
 * environment variable with `value` or `secureValue`, not both.  Appends
 * one violation per string at fault to *err (may be NULL, not cleared) and
 * returns how many.  Tolerates NULL strings; allocates nothing. */
size_t berth__group_check_text(const berth_group_t *group, berth_error_t *err);

/* The rules that depend on an engine's tables: GPU SKU known, GPU count
 * offered, per-group limits (cfg->limits for groups without GPUs, the SKU
 * offer for groups with them).  Appends violations to *err (may be NULL,
 * not cleared) and returns how many were found.  Reads cfg only. */
size_t berth__group_check_engine(const berth__config_t *cfg, const berth_group_t *group,
                                 berth_error_t *err);

/* Sums the group's requests into *out: millicores (rounded up to whole
 * cores), requested_millicores, memory_mib (rounded up), gpu_count;
 * gpu_sku is set to 0.  Sums saturate at UINT32_MAX instead of wrapping, so
 * that a limit check on an absurd group still fails. */
void berth__group_demand(const berth_group_t *group, berth_demand_t *out);

/* The GPU SKU name the group uses (the first container request or limit
 * naming one), or NULL when it uses no GPU.  *path, when not NULL, receives
 * the JSON path of that member. */
const char *berth__group_gpu_sku(const berth_group_t *group, berth__path_t *path);


#endif /* BERTH_MODEL_INTERNAL_H */
