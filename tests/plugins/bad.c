/*
 * bad.c: plugins that break the ABI's rules, one per build flag, for the
 * loader's tests (tests/test_plugin.c):
 *   BAD_ABI     reports an ABI major version the loader does not speak
 *   NO_ENTRY    exports no berth_plugin_entry at all
 *   SHORT_OPS   reports an operations struct too short to hold them all
 *   MISSING_OP  leaves an operation (exec) NULL
 */
#include "berth-plugin.h"

static int op_open(const char *config_json, const char *host, void **ctx, berth_error_t *err)
{
    *ctx = NULL;
    return 0;
}

static void op_close(void *ctx)
{
}

static int op_probe(void *ctx, berth_plugin_host_info_t *info, berth_error_t *err)
{
    return 0;
}

static int op_image_ensure(void *ctx, const char *image, const berth_registry_credential_t *cred,
                           bool *cached, berth_error_t *err)
{
    return 0;
}

static int op_images(void *ctx, berth_plugin_image_cb cb, void *data, berth_error_t *err)
{
    return 0;
}

static int op_create(void *ctx, const berth_runtime_group_t *group, berth_error_t *err)
{
    return 0;
}

static int op_start(void *ctx, const char *key, const char *container, berth_error_t *err)
{
    return 0;
}

static int op_stop(void *ctx, const char *key, const char *container, uint32_t grace_s,
                   berth_error_t *err)
{
    return 0;
}

static int op_restart(void *ctx, const char *key, uint32_t grace_s, berth_error_t *err)
{
    return 0;
}

static int op_remove(void *ctx, const char *key, berth_error_t *err)
{
    return 0;
}

static int op_status(void *ctx, const char *key, berth_group_status_t *out, berth_error_t *err)
{
    return 0;
}

static int op_logs(void *ctx, const char *key, const char *container, uint32_t tail,
                   bool timestamps, char **out, size_t *len, berth_error_t *err)
{
    return 0;
}

static int op_exec(void *ctx, const char *key, const char *container, const char *const *argv,
                   size_t argc, char **out, size_t *len, int *exit_code, berth_error_t *err)
{
    return 0;
}

static int op_list(void *ctx, berth_plugin_list_cb cb, void *data, berth_error_t *err)
{
    return 0;
}

static const berth_plugin_ops_t ops = {
#ifdef BAD_ABI
    .abi_major = BERTH_PLUGIN_ABI_MAJOR + 1,
#else
    .abi_major = BERTH_PLUGIN_ABI_MAJOR,
#endif
#ifdef SHORT_OPS
    .size = 40,
#else
    .size = sizeof(berth_plugin_ops_t),
#endif
    .name = "bad",
    .version = "0",
    .open = op_open,
    .close = op_close,
    .probe = op_probe,
    .image_ensure = op_image_ensure,
    .images = op_images,
    .create = op_create,
    .start = op_start,
    .stop = op_stop,
    .restart = op_restart,
    .remove = op_remove,
    .status = op_status,
    .logs = op_logs,
#ifndef MISSING_OP
    .exec = op_exec,
#endif
    .list = op_list,
};

#ifdef NO_ENTRY
/* The right operations under the wrong name. */
const berth_plugin_ops_t *bad_plugin_entry(void);
const berth_plugin_ops_t *bad_plugin_entry(void)
#else
const berth_plugin_ops_t *berth_plugin_entry(void);
const berth_plugin_ops_t *berth_plugin_entry(void)
#endif
{
    (void)op_exec;
    return &ops;
}
