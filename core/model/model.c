/*
 * model.c: ACI container-group documents in and out: berth_group_parse(),
 * berth_group_free() and berth_group_to_json().
 *
 * The parser walks a document by the 2023-05-01 spec (a superset of
 * 2021-03-01): every member Berth models is typed into berth_group_t, every
 * member the spec defines but Berth does not interpret is kept verbatim in
 * an `extra_json` member, and every member the spec does not define is
 * refused, so that a document round-trips without loss and a typo never
 * passes silently.  A container's configMap (2024-05-01-preview on) is
 * typed too: its keys become file names, so they are checked as such.  Member names and enum values are matched without regard
 * to case, as ACI does, and written back in their canonical spelling.
 * Violations are collected, never stopped at, and the document is refused
 * whole.  This file must never echo a secret's value in an error, and never
 * keep a partly built group after a failure.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "internal.h"
#include "model-internal.h"

/* ------------------------------------------------------------------------ */
/* Enum tables: index + 1 is the berth.h enum value (0 stays UNSET)          */
/* ------------------------------------------------------------------------ */

static const char *const os_names[] = {"Linux", "Windows"};
static const char *const restart_names[] = {"Always", "OnFailure", "Never"};
static const char *const sku_names[] = {"Standard", "Dedicated", "Confidential"};
static const char *const priority_names[] = {"Regular", "Spot"};
static const char *const protocol_names[] = {"TCP", "UDP"};
static const char *const ip_type_names[] = {"Public", "Private"};
static const char *const scheme_names[] = {"http", "https"};
static const char *const label_scope_names[] = {"Unsecure", "TenantReuse", "SubscriptionReuse",
                                                "ResourceGroupReuse", "Noreuse"};

/* ------------------------------------------------------------------------ */
/* Parser state and reporting                                               */
/* ------------------------------------------------------------------------ */

typedef struct parser {
    berth_error_t *err;
    berth__path_t path;  /* JSON path of the value being read */
    size_t nviolations;
    bool nomem;
} parser_t;

static void violation(parser_t *p, const char *name, const char *fmt, ...) BERTH__PRINTF(3, 4);

/* Records one violation at the current path. */
static void violation(parser_t *p, const char *name, const char *fmt, ...)
{
    p->nviolations++;
    va_list ap;
    va_start(ap, fmt);
    berth__error_addv(p->err, BERTH_EINVAL, name, p->path.buf, fmt, ap);
    va_end(ap);
}

/* Copies a JSON string, noting (not reporting) an allocation failure. */
static char *copy_string(parser_t *p, const char *s)
{
    char *d = berth__strdup(s);
    if (d == NULL && s != NULL)
        p->nomem = true;
    return d;
}

/* Sorts obj's members into vals[] by the member table `names` (NULL entries
 * are members this object does not take).  Names match without regard to
 * case; an unknown member, or one given twice in different cases, is a
 * violation. */
static void members(parser_t *p, json_t *obj, const char *type, const char *const *names,
                    size_t n, json_t **vals)
{
    for (size_t i = 0; i < n; i++)
        vals[i] = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        size_t i = 0;
        while (i < n && (names[i] == NULL || strcasecmp(names[i], key) != 0))
            i++;
        size_t mark = berth__path_key(&p->path, key);
        if (i == n)
            violation(p, "InvalidRequestContent",
                      "Could not find member '%s' on object of type '%s'.", key, type);
        else if (vals[i] != NULL)
            violation(p, "InvalidRequestContent",
                      "Member '%s' is given more than once on object of type '%s'.",
                      names[i], type);
        else
            vals[i] = v;
        berth__path_pop(&p->path, mark);
    }
}

enum { OPT = 0, REQ = 1, NONEMPTY = 2 };

/* Reports a missing required member `key` of the current object. */
static void missing(parser_t *p, const char *key)
{
    size_t mark = berth__path_key(&p->path, key);
    violation(p, "MissingRequiredProperty", "The required property '%s' is missing.", key);
    berth__path_pop(&p->path, mark);
}

static const char *type_phrase(json_type t)
{
    switch (t) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "a number";
    }
}

/* True when v (non-NULL, at member `key`) has JSON type t; reports it
 * otherwise.  JSON_TRUE stands for either boolean. */
static bool typed(parser_t *p, json_t *v, const char *key, json_type t)
{
    bool ok = t == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == t;
    if (!ok) {
        size_t mark = berth__path_key(&p->path, key);
        violation(p, "InvalidRequestContent", "The value of '%s' must be %s.", key,
                  type_phrase(t));
        berth__path_pop(&p->path, mark);
    }
    return ok;
}

/* Like typed(), but a NULL v is fine unless `required`. */
static bool present(parser_t *p, json_t *v, const char *key, json_type t, bool required)
{
    if (v == NULL) {
        if (required)
            missing(p, key);
        return false;
    }
    return typed(p, v, key, t);
}

/* Reads string member `key` into *out (flags: REQ, NONEMPTY).  Strings with
 * NUL characters are refused: they could not be kept exactly. */
static void string_member(parser_t *p, json_t *v, const char *key, unsigned flags, char **out)
{
    if (!present(p, v, key, JSON_STRING, flags & REQ))
        return;
    const char *s = json_string_value(v);
    size_t mark = berth__path_key(&p->path, key);
    if (strlen(s) != json_string_length(v))
        violation(p, "InvalidRequestContent", "The value of '%s' must not contain NUL characters.",
                  key);
    else if ((flags & NONEMPTY) && s[0] == '\0')
        violation(p, "MissingRequiredProperty", "The property '%s' must not be empty.", key);
    else
        *out = copy_string(p, s);
    berth__path_pop(&p->path, mark);
}

static void bool_member(parser_t *p, json_t *v, const char *key, berth_tristate_t *out)
{
    if (present(p, v, key, JSON_TRUE, false))
        *out = json_is_true(v) ? BERTH_TRUE : BERTH_FALSE;
}

/* Reads integer member `key` in [min, max]; out of range is violation
 * `badname`.  Returns true when a value was stored. */
static bool int_member(parser_t *p, json_t *v, const char *key, bool required, json_int_t min,
                       json_int_t max, const char *badname, json_int_t *out)
{
    if (!present(p, v, key, JSON_INTEGER, required))
        return false;
    json_int_t x = json_integer_value(v);
    if (x < min || x > max) {
        size_t mark = berth__path_key(&p->path, key);
        violation(p, badname, "The value of '%s' must be between %lld and %lld.", key,
                  (long long)min, (long long)max);
        berth__path_pop(&p->path, mark);
        return false;
    }
    *out = x;
    return true;
}

/* Reads an enum member case-insensitively; *out gets index + 1. */
static void enum_member(parser_t *p, json_t *v, const char *key, bool required,
                        const char *const *names, size_t n, int *out)
{
    if (!present(p, v, key, JSON_STRING, required))
        return;
    const char *s = json_string_value(v);
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(s, names[i]) == 0 && strlen(s) == json_string_length(v)) {
            *out = (int)i + 1;
            return;
        }
    }
    char list[128] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(list, names[i], sizeof list - strlen(list) - 1);
        if (i + 1 < n)
            strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    size_t mark = berth__path_key(&p->path, key);
    violation(p, "InvalidEnumValue", "The value of '%s' is not valid; accepted values are: %s.",
              key, list);
    berth__path_pop(&p->path, mark);
}

/* Reads a cpu or memoryInGB quantity as an integer count of thousandths.
 * The document's number is decimal text; three decimals is ACI's precision,
 * so a value is accepted only when it is within rounding noise of a whole
 * number of thousandths, and from then on only integers are used. */
static void quantity_member(parser_t *p, json_t *v, const char *key, bool required,
                            const char *badname, uint32_t *out)
{
    if (v == NULL) {
        if (required)
            missing(p, key);
        return;
    }
    size_t mark = berth__path_key(&p->path, key);
    const double max = BERTH__QUANTITY_MAX_MILLI / 1000.0;
    if (!json_is_number(v)) {
        violation(p, badname, "The value of '%s' must be a number.", key);
    } else {
        double d = json_number_value(v);
        double milli = d * 1000.0;
        double whole = nearbyint(milli);
        if (!(d > 0))
            violation(p, badname, "The value of '%s' must be greater than zero.", key);
        else if (d > max)
            violation(p, badname, "The value of '%s' must be at most %.0f.", key, max);
        else if (fabs(milli - whole) > 1e-4 || whole < 1)
            violation(p, badname, "The value of '%s' may have at most 3 decimals.", key);
        else
            *out = (uint32_t)whole;
    }
    berth__path_pop(&p->path, mark);
}

/* Reads an array of strings; *has records that the member was present. */
static void strings_member(parser_t *p, json_t *v, const char *key, bool required, char ***out,
                           size_t *n, bool *has)
{
    if (!present(p, v, key, JSON_ARRAY, required))
        return;
    if (has != NULL)
        *has = true;
    size_t count = json_array_size(v);
    if (count == 0)
        return;
    char **a = calloc(count, sizeof *a);
    if (a == NULL) {
        p->nomem = true;
        return;
    }
    *out = a;
    *n = count;
    size_t mark = berth__path_key(&p->path, key);
    for (size_t i = 0; i < count; i++) {
        size_t m2 = berth__path_index(&p->path, i);
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e))
            violation(p, "InvalidRequestContent", "Each item of '%s' must be a string.", key);
        else
            a[i] = copy_string(p, json_string_value(e));
        berth__path_pop(&p->path, m2);
    }
    berth__path_pop(&p->path, mark);
}

/* Reads an object whose values are all strings (tags, secret volumes). */
static void pairs_member(parser_t *p, json_t *v, const char *key, berth_pair_t **out, size_t *n,
                         bool *has)
{
    if (!present(p, v, key, JSON_OBJECT, false))
        return;
    if (has != NULL)
        *has = true;
    size_t count = json_object_size(v);
    if (count == 0)
        return;
    berth_pair_t *a = calloc(count, sizeof *a);
    if (a == NULL) {
        p->nomem = true;
        return;
    }
    *out = a;
    *n = count;
    size_t mark = berth__path_key(&p->path, key);
    size_t i = 0;
    const char *k;
    json_t *e;
    json_object_foreach(v, k, e) {
        size_t m2 = berth__path_key(&p->path, k);
        a[i].name = copy_string(p, k);
        /* The value may be a secret: say what is wrong, never what it is. */
        if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e))
            violation(p, "InvalidRequestContent", "Each value of '%s' must be a string.", key);
        else
            a[i].value = copy_string(p, json_string_value(e));
        berth__path_pop(&p->path, m2);
        i++;
    }
    berth__path_pop(&p->path, mark);
}

/* Adds a verbatim member to *extra (created on first use). */
static void keep_member(parser_t *p, json_t **extra, const char *key, json_t *v)
{
    if (*extra == NULL && (*extra = json_object()) == NULL) {
        p->nomem = true;
        return;
    }
    if (json_object_set(*extra, key, v) != 0)
        p->nomem = true;
}

/* Type-checks a verbatim member and keeps it.  Its inside is not
 * interpreted, so it is not checked either: a member Berth does not read
 * cannot make it misbehave. */
static void verbatim_member(parser_t *p, json_t *v, const char *key, json_type t, json_t **extra)
{
    if (present(p, v, key, t, false))
        keep_member(p, extra, key, v);
}

/* Serializes the verbatim members kept for one object. */
static char *extra_text(parser_t *p, json_t *extra)
{
    if (extra == NULL)
        return NULL;
    /* Default real precision (17 digits) reproduces every double exactly. */
    char *s = json_dumps(extra, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s == NULL)
        p->nomem = true;
    json_decref(extra);
    return s;
}

/* Runs the statements given with `key` (or index `i`) pushed on the path. */
#define WITH_KEY(p, key, ...)                                   \
    do {                                                        \
        size_t mark_ = berth__path_key(&(p)->path, (key));      \
        __VA_ARGS__;                                            \
        berth__path_pop(&(p)->path, mark_);                     \
    } while (0)
#define WITH_INDEX(p, i, ...)                                   \
    do {                                                        \
        size_t mark_i_ = berth__path_index(&(p)->path, (i));    \
        __VA_ARGS__;                                            \
        berth__path_pop(&(p)->path, mark_i_);                   \
    } while (0)

/* Allocates a zeroed array of n elements for an array member. */
static void *array_alloc(parser_t *p, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    void *a = calloc(n, size);
    if (a == NULL)
        p->nomem = true;
    return a;
}

/* ------------------------------------------------------------------------ */
/* Containers                                                               */
/* ------------------------------------------------------------------------ */

static void parse_port(parser_t *p, json_t *v, const char *type, berth_port_t *out)
{
    enum { P_PORT, P_PROTOCOL, P_N };
    static const char *const names[P_N] = {"port", "protocol"};
    json_t *m[P_N];
    members(p, v, type, names, P_N, m);
    json_int_t port;
    if (int_member(p, m[P_PORT], "port", true, 1, 65535, "InvalidPort", &port))
        out->port = (uint32_t)port;
    int proto = 0;
    enum_member(p, m[P_PROTOCOL], "protocol", false, protocol_names, 2, &proto);
    out->protocol = (berth_protocol_t)proto;
}

/* Reads array member `key` of objects: checks its type, runs `has` when it
 * is present, allocates `arr` and `count`, and runs `elem_body` on each
 * element (`elem`, index `idx`) with its path pushed. */
#define ARRAY_MEMBER(p, v, key, required, has, arr, count, elem_body)              \
    do {                                                                            \
        if (present((p), (v), (key), JSON_ARRAY, (required))) {                     \
            has;                                                                    \
            size_t n_ = json_array_size(v);                                         \
            (arr) = array_alloc((p), n_, sizeof *(arr));                            \
            if ((arr) != NULL || n_ == 0) {                                         \
                (count) = n_;                                                       \
                size_t mk_ = berth__path_key(&(p)->path, (key));                    \
                for (size_t i_ = 0; i_ < n_; i_++) {                                \
                    json_t *e_ = json_array_get((v), i_);                           \
                    size_t mi_ = berth__path_index(&(p)->path, i_);                 \
                    if (!json_is_object(e_))                                        \
                        violation((p), "InvalidRequestContent",                     \
                                  "Each item of '%s' must be an object.", (key));   \
                    else {                                                          \
                        json_t *elem = e_;                                          \
                        size_t idx = i_;                                            \
                        elem_body;                                                  \
                    }                                                               \
                    berth__path_pop(&(p)->path, mi_);                               \
                }                                                                   \
                berth__path_pop(&(p)->path, mk_);                                   \
            }                                                                       \
        }                                                                           \
    } while (0)

static void parse_env(parser_t *p, json_t *v, berth_env_var_t *out)
{
    enum { E_NAME, E_VALUE, E_SECURE, E_N };
    static const char *const names[E_N] = {"name", "value", "secureValue"};
    json_t *m[E_N];
    members(p, v, "EnvironmentVariable", names, E_N, m);
    string_member(p, m[E_NAME], "name", REQ | NONEMPTY, &out->name);
    string_member(p, m[E_VALUE], "value", OPT, &out->value);
    /* A secret: its value appears in no message (string_member never
     * echoes values). */
    string_member(p, m[E_SECURE], "secureValue", OPT, &out->secure_value);
}

static void parse_gpu(parser_t *p, json_t *v, berth_gpu_t *out)
{
    enum { G_COUNT, G_SKU, G_N };
    static const char *const names[G_N] = {"count", "sku"};
    json_t *m[G_N];
    members(p, v, "GpuResource", names, G_N, m);
    json_int_t count;
    if (int_member(p, m[G_COUNT], "count", true, 1, UINT32_MAX, "InvalidGpuCount", &count))
        out->count = (uint32_t)count;
    string_member(p, m[G_SKU], "sku", REQ | NONEMPTY, &out->sku);
}

static void parse_quantities(parser_t *p, json_t *v, const char *type, bool required,
                             berth_resources_t *out)
{
    enum { Q_MEMORY, Q_CPU, Q_GPU, Q_N };
    static const char *const names[Q_N] = {"memoryInGB", "cpu", "gpu"};
    json_t *m[Q_N];
    members(p, v, type, names, Q_N, m);
    quantity_member(p, m[Q_CPU], "cpu", required, "InvalidCpuValue", &out->cpu_millicores);
    quantity_member(p, m[Q_MEMORY], "memoryInGB", required, "InvalidMemoryValue",
                    &out->memory_milli_gb);
    if (present(p, m[Q_GPU], "gpu", JSON_OBJECT, false))
        WITH_KEY(p, "gpu", parse_gpu(p, m[Q_GPU], &out->gpu));
}

static void parse_resources(parser_t *p, json_t *v, berth_container_t *c)
{
    enum { R_REQUESTS, R_LIMITS, R_N };
    static const char *const names[R_N] = {"requests", "limits"};
    json_t *m[R_N];
    members(p, v, "ResourceRequirements", names, R_N, m);
    if (present(p, m[R_REQUESTS], "requests", JSON_OBJECT, true))
        WITH_KEY(p, "requests",
                 parse_quantities(p, m[R_REQUESTS], "ResourceRequests", true, &c->requests));
    if (present(p, m[R_LIMITS], "limits", JSON_OBJECT, false)) {
        c->has_limits = true;
        WITH_KEY(p, "limits", parse_quantities(p, m[R_LIMITS], "ResourceLimits", false, &c->limits));
    }
}

static void parse_mount(parser_t *p, json_t *v, berth_volume_mount_t *out)
{
    enum { M_NAME, M_PATH, M_READONLY, M_N };
    static const char *const names[M_N] = {"name", "mountPath", "readOnly"};
    json_t *m[M_N];
    members(p, v, "VolumeMount", names, M_N, m);
    string_member(p, m[M_NAME], "name", REQ | NONEMPTY, &out->name);
    string_member(p, m[M_PATH], "mountPath", REQ | NONEMPTY, &out->mount_path);
    bool_member(p, m[M_READONLY], "readOnly", &out->read_only);
}

static void parse_header(parser_t *p, json_t *v, berth_pair_t *out)
{
    enum { H_NAME, H_VALUE, H_N };
    static const char *const names[H_N] = {"name", "value"};
    json_t *m[H_N];
    members(p, v, "HttpHeader", names, H_N, m);
    string_member(p, m[H_NAME], "name", OPT, &out->name);
    string_member(p, m[H_VALUE], "value", OPT, &out->value);
}

static void parse_http_get(parser_t *p, json_t *v, berth_probe_t *out)
{
    enum { H_PATH, H_PORT, H_SCHEME, H_HEADERS, H_N };
    static const char *const names[H_N] = {"path", "port", "scheme", "httpHeaders"};
    json_t *m[H_N];
    members(p, v, "ContainerHttpGet", names, H_N, m);
    string_member(p, m[H_PATH], "path", OPT, &out->http_path);
    json_int_t port;
    if (int_member(p, m[H_PORT], "port", true, 1, 65535, "InvalidPort", &port))
        out->http_port = (uint32_t)port;
    int scheme = 0;
    enum_member(p, m[H_SCHEME], "scheme", false, scheme_names, 2, &scheme);
    if (scheme > 0)
        out->http_scheme = copy_string(p, scheme_names[scheme - 1]);
    ARRAY_MEMBER(p, m[H_HEADERS], "httpHeaders", false, out->has_http_headers = true,
                 out->http_headers, out->nhttp_headers,
                 parse_header(p, elem, &out->http_headers[idx]));
}

static void parse_exec(parser_t *p, json_t *v, berth_probe_t *out)
{
    static const char *const names[1] = {"command"};
    json_t *cmd;
    members(p, v, "ContainerExec", names, 1, &cmd);
    strings_member(p, cmd, "command", true, &out->exec_command, &out->nexec_command, NULL);
    /* An exec probe that runs nothing cannot report health, and an absent
     * command could not be told from an empty one. */
    if (cmd != NULL && json_is_array(cmd) && json_array_size(cmd) == 0)
        WITH_KEY(p, "command", violation(p, "InvalidProbe", "An exec probe needs a command."));
}

static void parse_probe(parser_t *p, json_t *v, berth_probe_t *out)
{
    enum { P_EXEC, P_HTTP, P_DELAY, P_PERIOD, P_FAILURE, P_SUCCESS, P_TIMEOUT, P_N };
    static const char *const names[P_N] = {"exec", "httpGet", "initialDelaySeconds",
                                           "periodSeconds", "failureThreshold",
                                           "successThreshold", "timeoutSeconds"};
    json_t *m[P_N];
    members(p, v, "ContainerProbe", names, P_N, m);
    if (present(p, m[P_EXEC], "exec", JSON_OBJECT, false)) {
        out->has_exec = true;
        WITH_KEY(p, "exec", parse_exec(p, m[P_EXEC], out));
    }
    if (present(p, m[P_HTTP], "httpGet", JSON_OBJECT, false)) {
        out->has_http_get = true;
        WITH_KEY(p, "httpGet", parse_http_get(p, m[P_HTTP], out));
    }
    if (m[P_EXEC] == NULL && m[P_HTTP] == NULL)
        violation(p, "InvalidProbe", "A probe needs either 'exec' or 'httpGet'.");
    else if (m[P_EXEC] != NULL && m[P_HTTP] != NULL)
        violation(p, "InvalidProbe", "A probe takes either 'exec' or 'httpGet', not both.");
    int32_t *fields[] = {&out->initial_delay_seconds, &out->period_seconds,
                         &out->failure_threshold, &out->success_threshold,
                         &out->timeout_seconds};
    for (size_t i = 0; i < BERTH__ARRAY_LEN(fields); i++) {
        json_int_t x;
        *fields[i] = -1;
        if (int_member(p, m[P_DELAY + i], names[P_DELAY + i], false, 0, INT32_MAX,
                       "InvalidProbe", &x))
            *fields[i] = (int32_t)x;
    }
}

/* Container and init-container properties share one member table; an init
 * container's table leaves out what it does not take. */
enum {
    C_IMAGE, C_COMMAND, C_PORTS, C_ENV, C_INSTANCE_VIEW, C_RESOURCES, C_MOUNTS, C_LIVENESS,
    C_READINESS, C_SECURITY, C_CONFIG_MAP, C_N
};
static const char *const container_names[C_N] = {
    "image", "command", "ports", "environmentVariables", "instanceView", "resources",
    "volumeMounts", "livenessProbe", "readinessProbe", "securityContext", "configMap"};
static const char *const init_container_names[C_N] = {
    [C_IMAGE] = "image", [C_COMMAND] = "command", [C_ENV] = "environmentVariables",
    [C_INSTANCE_VIEW] = "instanceView", [C_MOUNTS] = "volumeMounts",
    [C_SECURITY] = "securityContext"};

static void parse_probe_member(parser_t *p, json_t *v, const char *key, berth_probe_t **out)
{
    if (!present(p, v, key, JSON_OBJECT, false))
        return;
    *out = calloc(1, sizeof **out);
    if (*out == NULL) {
        p->nomem = true;
        return;
    }
    WITH_KEY(p, key, parse_probe(p, v, *out));
}

/* A config map key is a file name of its own directory. */
static bool config_key_ok(const char *k, size_t n)
{
    if (n == 0 || n > BERTH_CONFIG_KEY_MAX || strcmp(k, ".") == 0 || strcmp(k, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
              (k[i] >= '0' && k[i] <= '9') || k[i] == '.' || k[i] == '_' || k[i] == '-'))
            return false;
    return true;
}

/* Reads configMap {keyValuePairs: {file name: content}} (BERTH_CONFIG_*:
 * every bad key and value is reported at its own path). */
static void parse_config_map(parser_t *p, json_t *v, berth_container_t *c)
{
    enum { K_PAIRS, K_N };
    static const char *const names[K_N] = {"keyValuePairs"};
    json_t *m[K_N];
    c->has_config_map = true;
    members(p, v, "ConfigMap", names, K_N, m);
    if (!present(p, m[K_PAIRS], "keyValuePairs", JSON_OBJECT, false))
        return;
    size_t mark = berth__path_key(&p->path, "keyValuePairs");
    size_t total = 0;
    const char *k;
    json_t *e;
    json_object_foreach(m[K_PAIRS], k, e) {
        size_t m2 = berth__path_key(&p->path, k);
        size_t klen = strlen(k);
        if (!config_key_ok(k, klen))
            violation(p, "InvalidConfigMapKey",
                      "A config map key is a file name: 1 to %d characters of letters, digits, "
                      "'.', '_' and '-', and not '.' or '..'.", BERTH_CONFIG_KEY_MAX);
        else if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e))
            violation(p, "InvalidRequestContent",
                      "Each value of 'keyValuePairs' must be a string without NUL characters.");
        else if (json_string_length(e) > BERTH_CONFIG_VALUE_MAX)
            violation(p, "InvalidConfigMapValue",
                      "A config map value may have at most %u bytes; this one has %zu.",
                      BERTH_CONFIG_VALUE_MAX, json_string_length(e));
        else if ((total += klen + json_string_length(e)) > BERTH_CONFIG_TOTAL_MAX)
            violation(p, "ConfigMapTooLarge",
                      "A container's config map may hold at most %u bytes of keys and values.",
                      BERTH_CONFIG_TOTAL_MAX);
        berth__path_pop(&p->path, m2);
    }
    berth__path_pop(&p->path, mark);
    size_t count = json_object_size(m[K_PAIRS]);
    if (p->nviolations > 0 || count == 0)
        return;
    if ((c->config_map = calloc(count, sizeof *c->config_map)) == NULL) {
        p->nomem = true;
        return;
    }
    json_object_foreach(m[K_PAIRS], k, e) {
        c->config_map[c->nconfig_map].name = copy_string(p, k);
        c->config_map[c->nconfig_map].value = copy_string(p, json_string_value(e));
        c->nconfig_map++;
    }
}

static void parse_container_properties(parser_t *p, json_t *v, bool init, berth_container_t *c)
{
    json_t *m[C_N];
    members(p, v, init ? "InitContainerPropertiesDefinition" : "ContainerProperties",
            init ? init_container_names : container_names, C_N, m);
    string_member(p, m[C_IMAGE], "image", REQ | NONEMPTY, &c->image);
    strings_member(p, m[C_COMMAND], "command", false, &c->command, &c->ncommand,
                   &c->has_command);
    ARRAY_MEMBER(p, m[C_PORTS], "ports", false, c->has_ports = true, c->ports, c->nports,
                 parse_port(p, elem, "ContainerPort", &c->ports[idx]));
    ARRAY_MEMBER(p, m[C_ENV], "environmentVariables", false, c->has_env = true, c->env, c->nenv,
                 parse_env(p, elem, &c->env[idx]));
    if (!init && present(p, m[C_RESOURCES], "resources", JSON_OBJECT, true))
        WITH_KEY(p, "resources", parse_resources(p, m[C_RESOURCES], c));
    ARRAY_MEMBER(p, m[C_MOUNTS], "volumeMounts", false, c->has_mounts = true, c->mounts,
                 c->nmounts, parse_mount(p, elem, &c->mounts[idx]));
    parse_probe_member(p, m[C_LIVENESS], "livenessProbe", &c->liveness);
    parse_probe_member(p, m[C_READINESS], "readinessProbe", &c->readiness);
    if (present(p, m[C_CONFIG_MAP], "configMap", JSON_OBJECT, false))
        WITH_KEY(p, "configMap", parse_config_map(p, m[C_CONFIG_MAP], c));
    json_t *extra = NULL;
    verbatim_member(p, m[C_INSTANCE_VIEW], "instanceView", JSON_OBJECT, &extra);
    verbatim_member(p, m[C_SECURITY], "securityContext", JSON_OBJECT, &extra);
    c->extra_json = extra_text(p, extra);
}

static void parse_container(parser_t *p, json_t *v, bool init, berth_container_t *c)
{
    enum { N_NAME, N_PROPERTIES, N_N };
    static const char *const names[N_N] = {"name", "properties"};
    json_t *m[N_N];
    members(p, v, init ? "InitContainerDefinition" : "Container", names, N_N, m);
    string_member(p, m[N_NAME], "name", REQ, &c->name);
    if (present(p, m[N_PROPERTIES], "properties", JSON_OBJECT, true))
        WITH_KEY(p, "properties", parse_container_properties(p, m[N_PROPERTIES], init, c));
}

/* ------------------------------------------------------------------------ */
/* Group properties                                                         */
/* ------------------------------------------------------------------------ */

static void parse_volume(parser_t *p, json_t *v, berth_volume_t *out)
{
    enum { V_NAME, V_AZURE, V_EMPTY, V_SECRET, V_GIT, V_N };
    static const char *const names[V_N] = {"name", "azureFile", "emptyDir", "secret", "gitRepo"};
    json_t *m[V_N];
    members(p, v, "Volume", names, V_N, m);
    string_member(p, m[V_NAME], "name", REQ, &out->name);
    int kinds = (m[V_AZURE] != NULL) + (m[V_EMPTY] != NULL) + (m[V_SECRET] != NULL) +
                (m[V_GIT] != NULL);
    if (kinds != 1) {
        violation(p, "InvalidVolume",
                  "A volume needs exactly one of 'azureFile', 'emptyDir', 'secret' or "
                  "'gitRepo'; %d are given.", kinds);
        return;
    }
    if (m[V_AZURE] != NULL && typed(p, m[V_AZURE], "azureFile", JSON_OBJECT)) {
        out->kind = BERTH_VOLUME_AZURE_FILE;
        enum { A_SHARE, A_READONLY, A_ACCOUNT, A_KEY, A_N };
        static const char *const an[A_N] = {"shareName", "readOnly", "storageAccountName",
                                            "storageAccountKey"};
        json_t *a[A_N];
        WITH_KEY(p, "azureFile", {
            members(p, m[V_AZURE], "AzureFileVolume", an, A_N, a);
            string_member(p, a[A_SHARE], "shareName", REQ | NONEMPTY, &out->share_name);
            bool_member(p, a[A_READONLY], "readOnly", &out->read_only);
            string_member(p, a[A_ACCOUNT], "storageAccountName", REQ | NONEMPTY,
                          &out->storage_account_name);
            string_member(p, a[A_KEY], "storageAccountKey", OPT, &out->storage_account_key);
        });
    } else if (m[V_EMPTY] != NULL && typed(p, m[V_EMPTY], "emptyDir", JSON_OBJECT)) {
        out->kind = BERTH_VOLUME_EMPTY_DIR;
        WITH_KEY(p, "emptyDir", members(p, m[V_EMPTY], "EmptyDirVolume", NULL, 0, NULL));
    } else if (m[V_SECRET] != NULL) {
        bool has = false;
        pairs_member(p, m[V_SECRET], "secret", &out->secret_items, &out->nsecret_items, &has);
        if (has)
            out->kind = BERTH_VOLUME_SECRET;
    } else if (m[V_GIT] != NULL && typed(p, m[V_GIT], "gitRepo", JSON_OBJECT)) {
        out->kind = BERTH_VOLUME_GIT_REPO;
        enum { G_DIR, G_REPO, G_REV, G_N };
        static const char *const gn[G_N] = {"directory", "repository", "revision"};
        json_t *g[G_N];
        WITH_KEY(p, "gitRepo", {
            members(p, m[V_GIT], "GitRepoVolume", gn, G_N, g);
            string_member(p, g[G_DIR], "directory", OPT, &out->directory);
            string_member(p, g[G_REPO], "repository", REQ | NONEMPTY, &out->repository);
            string_member(p, g[G_REV], "revision", OPT, &out->revision);
        });
    }
}

static void parse_ip_address(parser_t *p, json_t *v, berth_ip_address_t *out)
{
    enum { I_PORTS, I_TYPE, I_IP, I_DNS, I_SCOPE, I_FQDN, I_N };
    static const char *const names[I_N] = {"ports", "type", "ip", "dnsNameLabel",
                                           "autoGeneratedDomainNameLabelScope", "fqdn"};
    json_t *m[I_N];
    members(p, v, "IpAddress", names, I_N, m);
    ARRAY_MEMBER(p, m[I_PORTS], "ports", true, (void)0, out->ports, out->nports,
                 parse_port(p, elem, "Port", &out->ports[idx]));
    if (m[I_PORTS] != NULL && json_is_array(m[I_PORTS]) && json_array_size(m[I_PORTS]) == 0)
        WITH_KEY(p, "ports", violation(p, "InvalidIpAddress",
                                       "An IP address needs at least one port."));
    int type = 0;
    enum_member(p, m[I_TYPE], "type", true, ip_type_names, 2, &type);
    out->type = (berth_ip_type_t)type;
    string_member(p, m[I_IP], "ip", OPT, &out->ip);
    string_member(p, m[I_DNS], "dnsNameLabel", OPT, &out->dns_name_label);
    int scope = 0;
    enum_member(p, m[I_SCOPE], "autoGeneratedDomainNameLabelScope", false, label_scope_names,
                BERTH__ARRAY_LEN(label_scope_names), &scope);
    if (scope > 0)
        out->label_scope = copy_string(p, label_scope_names[scope - 1]);
    string_member(p, m[I_FQDN], "fqdn", OPT, &out->fqdn);
}

static void parse_credential(parser_t *p, json_t *v, berth_registry_credential_t *out)
{
    enum { R_SERVER, R_USER, R_PASSWORD, R_IDENTITY, R_IDENTITY_URL, R_N };
    static const char *const names[R_N] = {"server", "username", "password", "identity",
                                           "identityUrl"};
    json_t *m[R_N];
    members(p, v, "ImageRegistryCredential", names, R_N, m);
    string_member(p, m[R_SERVER], "server", REQ | NONEMPTY, &out->server);
    string_member(p, m[R_USER], "username", OPT, &out->username);
    string_member(p, m[R_PASSWORD], "password", OPT, &out->password);
    string_member(p, m[R_IDENTITY], "identity", OPT, &out->identity);
    string_member(p, m[R_IDENTITY_URL], "identityUrl", OPT, &out->identity_url);
}

static void parse_dns(parser_t *p, json_t *v, berth_dns_config_t *out)
{
    enum { D_SERVERS, D_SEARCH, D_OPTIONS, D_N };
    static const char *const names[D_N] = {"nameServers", "searchDomains", "options"};
    json_t *m[D_N];
    members(p, v, "DnsConfiguration", names, D_N, m);
    strings_member(p, m[D_SERVERS], "nameServers", true, &out->name_servers, &out->nname_servers,
                   NULL);
    string_member(p, m[D_SEARCH], "searchDomains", OPT, &out->search_domains);
    string_member(p, m[D_OPTIONS], "options", OPT, &out->options);
}

enum {
    GP_PROVISIONING, GP_CONTAINERS, GP_CREDENTIALS, GP_RESTART, GP_IP, GP_OS, GP_VOLUMES,
    GP_INSTANCE_VIEW, GP_DIAGNOSTICS, GP_NETWORK_PROFILE, GP_SUBNETS, GP_DNS, GP_SKU,
    GP_ENCRYPTION, GP_INIT, GP_EXTENSIONS, GP_CONFIDENTIAL, GP_PRIORITY, GP_N
};
static const char *const group_properties_names[GP_N] = {
    "provisioningState", "containers", "imageRegistryCredentials", "restartPolicy",
    "ipAddress", "osType", "volumes", "instanceView", "diagnostics", "networkProfile",
    "subnetIds", "dnsConfig", "sku", "encryptionProperties", "initContainers", "extensions",
    "confidentialComputeProperties", "priority"};

static void parse_group_properties(parser_t *p, json_t *v, berth_group_t *g)
{
    json_t *m[GP_N];
    members(p, v, "ContainerGroupProperties", group_properties_names, GP_N, m);
    ARRAY_MEMBER(p, m[GP_CONTAINERS], "containers", true, (void)0, g->containers,
                 g->ncontainers, parse_container(p, elem, false, &g->containers[idx]));
    if (m[GP_CONTAINERS] != NULL && json_is_array(m[GP_CONTAINERS]) &&
        json_array_size(m[GP_CONTAINERS]) == 0)
        WITH_KEY(p, "containers", violation(p, "MissingRequiredProperty",
                                            "A container group needs at least one container."));
    ARRAY_MEMBER(p, m[GP_INIT], "initContainers", false, g->has_init_containers = true,
                 g->init_containers, g->ninit_containers,
                 parse_container(p, elem, true, &g->init_containers[idx]));
    ARRAY_MEMBER(p, m[GP_CREDENTIALS], "imageRegistryCredentials", false,
                 g->has_credentials = true, g->credentials, g->ncredentials,
                 parse_credential(p, elem, &g->credentials[idx]));
    int e = 0;
    enum_member(p, m[GP_RESTART], "restartPolicy", false, restart_names, 3, &e);
    g->restart_policy = (berth_restart_policy_t)e;
    e = 0;
    enum_member(p, m[GP_OS], "osType", true, os_names, 2, &e);
    g->os_type = (berth_os_t)e;
    e = 0;
    enum_member(p, m[GP_SKU], "sku", false, sku_names, 3, &e);
    g->sku = (berth_sku_t)e;
    e = 0;
    enum_member(p, m[GP_PRIORITY], "priority", false, priority_names, 2, &e);
    g->priority = (berth_priority_t)e;
    if (present(p, m[GP_IP], "ipAddress", JSON_OBJECT, false)) {
        if ((g->ip_address = calloc(1, sizeof *g->ip_address)) == NULL)
            p->nomem = true;
        else
            WITH_KEY(p, "ipAddress", parse_ip_address(p, m[GP_IP], g->ip_address));
    }
    ARRAY_MEMBER(p, m[GP_VOLUMES], "volumes", false, g->has_volumes = true, g->volumes,
                 g->nvolumes, parse_volume(p, elem, &g->volumes[idx]));
    if (present(p, m[GP_DNS], "dnsConfig", JSON_OBJECT, false)) {
        if ((g->dns_config = calloc(1, sizeof *g->dns_config)) == NULL)
            p->nomem = true;
        else
            WITH_KEY(p, "dnsConfig", parse_dns(p, m[GP_DNS], g->dns_config));
    }
    json_t *extra = NULL;
    verbatim_member(p, m[GP_PROVISIONING], "provisioningState", JSON_STRING, &extra);
    verbatim_member(p, m[GP_INSTANCE_VIEW], "instanceView", JSON_OBJECT, &extra);
    verbatim_member(p, m[GP_DIAGNOSTICS], "diagnostics", JSON_OBJECT, &extra);
    verbatim_member(p, m[GP_NETWORK_PROFILE], "networkProfile", JSON_OBJECT, &extra);
    verbatim_member(p, m[GP_SUBNETS], "subnetIds", JSON_ARRAY, &extra);
    verbatim_member(p, m[GP_ENCRYPTION], "encryptionProperties", JSON_OBJECT, &extra);
    verbatim_member(p, m[GP_EXTENSIONS], "extensions", JSON_ARRAY, &extra);
    verbatim_member(p, m[GP_CONFIDENTIAL], "confidentialComputeProperties", JSON_OBJECT, &extra);
    g->properties_extra_json = extra_text(p, extra);
}

static void parse_zones(parser_t *p, json_t *v, berth_group_t *g)
{
    strings_member(p, v, "zones", false, &g->zones, &g->nzones, &g->has_zones);
    for (size_t i = 0; i < g->nzones; i++) {
        const char *z = g->zones[i];
        if (z != NULL && (z[0] == '\0' || strlen(z) > BERTH_NAME_MAX))
            WITH_KEY(p, "zones", WITH_INDEX(p, i, violation(
                p, "InvalidZone", "A zone name must have 1 to %d characters.", BERTH_NAME_MAX)));
    }
}

enum { G_ID, G_NAME, G_TYPE, G_LOCATION, G_TAGS, G_ZONES, G_IDENTITY, G_PROPERTIES, G_N };
static const char *const group_names[G_N] = {"id", "name", "type", "location", "tags",
                                             "zones", "identity", "properties"};

static void parse_group(parser_t *p, json_t *root, berth_group_t *g)
{
    json_t *m[G_N];
    members(p, root, "ContainerGroup", group_names, G_N, m);
    string_member(p, m[G_NAME], "name", OPT, &g->name);
    string_member(p, m[G_LOCATION], "location", OPT, &g->location);
    pairs_member(p, m[G_TAGS], "tags", &g->tags, &g->ntags, &g->has_tags);
    parse_zones(p, m[G_ZONES], g);
    if (present(p, m[G_PROPERTIES], "properties", JSON_OBJECT, true))
        WITH_KEY(p, "properties", parse_group_properties(p, m[G_PROPERTIES], g));
    json_t *extra = NULL;
    verbatim_member(p, m[G_ID], "id", JSON_STRING, &extra);
    verbatim_member(p, m[G_TYPE], "type", JSON_STRING, &extra);
    verbatim_member(p, m[G_IDENTITY], "identity", JSON_OBJECT, &extra);
    g->extra_json = extra_text(p, extra);
}

/* Parses one ACI container-group document (see berth.h).  On success *out
 * owns a new group (berth_group_free()); on failure *out is NULL, *err holds
 * every violation, and nothing is left allocated. */
int berth_group_parse(const char *json, size_t len, berth_group_t **out, berth_error_t *err)
{
    if (out == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "",
                                "berth_group_parse needs an output pointer");
    *out = NULL;
    berth_error_clear(err);
    json_t *root;
    int rc = berth__json_load(json, len, BERTH_DOCUMENT_MAX, BERTH_DOCUMENT_DEPTH_MAX, &root, err);
    if (rc != 0)
        return rc;
    if (!json_is_object(root)) {
        json_decref(root);
        return berth__error_set(err, BERTH_EINVAL, "InvalidRequestContent", "",
                                "A container group document must be a JSON object.");
    }
    berth_group_t *g = calloc(1, sizeof *g);
    if (g == NULL) {
        json_decref(root);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    parser_t p = {.err = err};
    berth__path_init(&p.path);
    parse_group(&p, root, g);
    json_decref(root);
    if (p.nomem) {
        berth_group_free(g);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "out of memory while parsing the container group");
    }
    int rc_check = berth__group_check(g, err);
    if (rc_check == BERTH_ENOMEM) {
        berth_group_free(g);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "out of memory while validating the container group");
    }
    if (p.nviolations > 0 || rc_check != 0) {
        berth_group_free(g);
        return BERTH_EINVAL;
    }
    *out = g;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Freeing                                                                  */
/* ------------------------------------------------------------------------ */

static void free_strings(char **a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++)
        free(a[i]);
    free(a);
}

static void free_pairs(berth_pair_t *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++) {
        free(a[i].name);
        free(a[i].value);
    }
    free(a);
}

static void free_probe(berth_probe_t *pr)
{
    if (pr == NULL)
        return;
    free_strings(pr->exec_command, pr->nexec_command);
    free(pr->http_path);
    free(pr->http_scheme);
    free_pairs(pr->http_headers, pr->nhttp_headers);
    free(pr);
}

static void free_containers(berth_container_t *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++) {
        berth_container_t *c = &a[i];
        free(c->name);
        free(c->image);
        free_strings(c->command, c->ncommand);
        free(c->ports);
        for (size_t j = 0; c->env != NULL && j < c->nenv; j++) {
            free(c->env[j].name);
            free(c->env[j].value);
            free(c->env[j].secure_value);
        }
        free(c->env);
        free(c->requests.gpu.sku);
        free(c->limits.gpu.sku);
        for (size_t j = 0; c->mounts != NULL && j < c->nmounts; j++) {
            free(c->mounts[j].name);
            free(c->mounts[j].mount_path);
        }
        free(c->mounts);
        free_probe(c->liveness);
        free_probe(c->readiness);
        free_pairs(c->config_map, c->nconfig_map);
        free(c->extra_json);
    }
    free(a);
}

/* Frees a group from berth_group_parse() and everything it owns.  Accepts
 * NULL. */
void berth_group_free(berth_group_t *g)
{
    if (g == NULL)
        return;
    free(g->name);
    free(g->location);
    free_pairs(g->tags, g->ntags);
    free_strings(g->zones, g->nzones);
    free_containers(g->containers, g->ncontainers);
    free_containers(g->init_containers, g->ninit_containers);
    if (g->ip_address != NULL) {
        free(g->ip_address->ports);
        free(g->ip_address->ip);
        free(g->ip_address->dns_name_label);
        free(g->ip_address->fqdn);
        free(g->ip_address->label_scope);
        free(g->ip_address);
    }
    for (size_t i = 0; g->volumes != NULL && i < g->nvolumes; i++) {
        berth_volume_t *v = &g->volumes[i];
        free(v->name);
        free(v->share_name);
        free(v->storage_account_name);
        free(v->storage_account_key);
        free_pairs(v->secret_items, v->nsecret_items);
        free(v->repository);
        free(v->directory);
        free(v->revision);
    }
    free(g->volumes);
    for (size_t i = 0; g->credentials != NULL && i < g->ncredentials; i++) {
        berth_registry_credential_t *r = &g->credentials[i];
        free(r->server);
        free(r->username);
        free(r->password);
        free(r->identity);
        free(r->identity_url);
    }
    free(g->credentials);
    if (g->dns_config != NULL) {
        free_strings(g->dns_config->name_servers, g->dns_config->nname_servers);
        free(g->dns_config->search_domains);
        free(g->dns_config->options);
        free(g->dns_config);
    }
    free(g->extra_json);
    free(g->properties_extra_json);
    free(g);
}

/* ------------------------------------------------------------------------ */
/* Serialization                                                            */
/* ------------------------------------------------------------------------ */

/* The builder carries one `ok` flag: any failed allocation clears it and
 * the whole result is dropped, so the helpers need no error paths. */
typedef struct builder {
    bool ok;
    bool redact;
    bool no_config_maps;
    bool has_real;  /* a verbatim member holds a real: dump with full precision */
} builder_t;

static void put(builder_t *b, json_t *obj, const char *key, json_t *v)
{
    if (v == NULL || json_object_set_new(obj, key, v) != 0)
        b->ok = false;
}

static void put_string(builder_t *b, json_t *obj, const char *key, const char *s)
{
    if (s != NULL)
        put(b, obj, key, json_string(s));
}

static void put_bool(builder_t *b, json_t *obj, const char *key, berth_tristate_t t)
{
    if (t != BERTH_UNSET)
        put(b, obj, key, json_boolean(t == BERTH_TRUE));
}

static void put_enum(builder_t *b, json_t *obj, const char *key, int value,
                     const char *const *names, size_t n)
{
    if (value > 0 && (size_t)value <= n)
        put(b, obj, key, json_string(names[value - 1]));
}

/* Thousandths back to the document's number: an integer when whole, so
 * that "cpu": 1 stays 1; otherwise the double nearest the decimal, which is
 * what the document's text parsed to. */
static json_t *quantity_json(uint32_t milli)
{
    if (milli % 1000 == 0)
        return json_integer(milli / 1000);
    return json_real(milli / 1000.0);
}

static json_t *strings_json(char *const *a, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (json_array_append_new(arr, json_string(a[i] != NULL ? a[i] : "")) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *pairs_json(builder_t *b, const berth_pair_t *a, size_t n, bool values)
{
    json_t *o = json_object();
    for (size_t i = 0; o != NULL && values && i < n; i++)
        if (a[i].name != NULL)
            put_string(b, o, a[i].name, a[i].value != NULL ? a[i].value : "");
    return o;
}

static json_t *ports_json(builder_t *b, const berth_port_t *ports, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        json_t *o = json_object();
        if (o != NULL) {
            put_enum(b, o, "protocol", ports[i].protocol, protocol_names, 2);
            put(b, o, "port", json_integer(ports[i].port));
        }
        if (json_array_append_new(arr, o) != 0)
            b->ok = false;
    }
    return arr;
}

static void append(builder_t *b, json_t *arr, json_t *v)
{
    if (arr == NULL || json_array_append_new(arr, v) != 0)
        b->ok = false;
}

/* True when v holds a real anywhere (depth is bounded by the parser). */
static bool holds_real(json_t *v)
{
    if (json_is_real(v))
        return true;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (holds_real(json_array_get(v, i)))
                return true;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
            if (holds_real(e))
                return true;
    }
    return false;
}

/* Merges the verbatim members kept in `text` into obj.  With redaction,
 * secrets that sit in verbatim members (the Log Analytics workspace key,
 * extensions' protected settings) are dropped. */
static void merge_extra(builder_t *b, json_t *obj, const char *text)
{
    if (text == NULL)
        return;
    json_t *extra = json_loads(text, 0, NULL);
    if (extra == NULL || !json_is_object(extra)) {
        json_decref(extra);
        b->ok = false;
        return;
    }
    if (b->redact) {
        json_t *la = json_object_get(json_object_get(extra, "diagnostics"), "logAnalytics");
        if (json_is_object(la))
            json_object_del(la, "workspaceKey");
        json_t *ext = json_object_get(extra, "extensions");
        for (size_t i = 0; json_is_array(ext) && i < json_array_size(ext); i++) {
            json_t *props = json_object_get(json_array_get(ext, i), "properties");
            if (json_is_object(props))
                json_object_del(props, "protectedSettings");
        }
    }
    if (holds_real(extra))
        b->has_real = true;
    if (json_object_update(obj, extra) != 0)
        b->ok = false;
    json_decref(extra);
}

static json_t *resources_json(builder_t *b, const berth_resources_t *r)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (r->memory_milli_gb > 0)
        put(b, o, "memoryInGB", quantity_json(r->memory_milli_gb));
    if (r->cpu_millicores > 0)
        put(b, o, "cpu", quantity_json(r->cpu_millicores));
    if (r->gpu.count > 0 || r->gpu.sku != NULL) {
        json_t *gpu = json_object();
        if (gpu != NULL) {
            put(b, gpu, "count", json_integer(r->gpu.count));
            put_string(b, gpu, "sku", r->gpu.sku);
        }
        put(b, o, "gpu", gpu);
    }
    return o;
}

static json_t *probe_json(builder_t *b, const berth_probe_t *pr)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (pr->has_exec) {
        json_t *exec = json_object();
        if (exec != NULL)
            put(b, exec, "command", strings_json(pr->exec_command, pr->nexec_command));
        put(b, o, "exec", exec);
    }
    if (pr->has_http_get) {
        json_t *h = json_object();
        if (h != NULL) {
            put_string(b, h, "path", pr->http_path);
            put(b, h, "port", json_integer(pr->http_port));
            put_string(b, h, "scheme", pr->http_scheme);
            if (pr->has_http_headers) {
                json_t *arr = json_array();
                for (size_t i = 0; arr != NULL && i < pr->nhttp_headers; i++) {
                    json_t *hd = json_object();
                    if (hd != NULL) {
                        put_string(b, hd, "name", pr->http_headers[i].name);
                        put_string(b, hd, "value", pr->http_headers[i].value);
                    }
                    append(b, arr, hd);
                }
                put(b, h, "httpHeaders", arr);
            }
        }
        put(b, o, "httpGet", h);
    }
    static const char *const names[] = {"initialDelaySeconds", "periodSeconds",
                                        "failureThreshold", "successThreshold",
                                        "timeoutSeconds"};
    const int32_t values[] = {pr->initial_delay_seconds, pr->period_seconds,
                              pr->failure_threshold, pr->success_threshold,
                              pr->timeout_seconds};
    for (size_t i = 0; i < BERTH__ARRAY_LEN(names); i++)
        if (values[i] >= 0)
            put(b, o, names[i], json_integer(values[i]));
    return o;
}

static json_t *container_json(builder_t *b, const berth_container_t *c, bool init)
{
    json_t *o = json_object();
    json_t *props = json_object();
    if (o == NULL || props == NULL) {
        json_decref(o);
        json_decref(props);
        return NULL;
    }
    put_string(b, o, "name", c->name);
    put_string(b, props, "image", c->image);
    if (c->has_command)
        put(b, props, "command", strings_json(c->command, c->ncommand));
    if (c->has_ports)
        put(b, props, "ports", ports_json(b, c->ports, c->nports));
    if (c->has_env) {
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < c->nenv; i++) {
            json_t *e = json_object();
            if (e != NULL) {
                put_string(b, e, "name", c->env[i].name);
                put_string(b, e, "value", c->env[i].value);
                if (!b->redact)
                    put_string(b, e, "secureValue", c->env[i].secure_value);
            }
            append(b, arr, e);
        }
        put(b, props, "environmentVariables", arr);
    }
    if (!init) {
        json_t *res = json_object();
        if (res != NULL) {
            put(b, res, "requests", resources_json(b, &c->requests));
            if (c->has_limits)
                put(b, res, "limits", resources_json(b, &c->limits));
        }
        put(b, props, "resources", res);
    }
    if (c->has_mounts) {
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < c->nmounts; i++) {
            json_t *mt = json_object();
            if (mt != NULL) {
                put_string(b, mt, "name", c->mounts[i].name);
                put_string(b, mt, "mountPath", c->mounts[i].mount_path);
                put_bool(b, mt, "readOnly", c->mounts[i].read_only);
            }
            append(b, arr, mt);
        }
        put(b, props, "volumeMounts", arr);
    }
    if (c->liveness != NULL)
        put(b, props, "livenessProbe", probe_json(b, c->liveness));
    if (c->readiness != NULL)
        put(b, props, "readinessProbe", probe_json(b, c->readiness));
    if (c->has_config_map && !b->no_config_maps) {
        json_t *cm = json_object();
        if (cm != NULL)
            put(b, cm, "keyValuePairs", pairs_json(b, c->config_map, c->nconfig_map, true));
        put(b, props, "configMap", cm);
    }
    merge_extra(b, props, c->extra_json);
    put(b, o, "properties", props);
    return o;
}

static json_t *volume_json(builder_t *b, const berth_volume_t *v)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    put_string(b, o, "name", v->name);
    json_t *k = json_object();
    switch (v->kind) {
    case BERTH_VOLUME_AZURE_FILE:
        if (k != NULL) {
            put_string(b, k, "shareName", v->share_name);
            put_bool(b, k, "readOnly", v->read_only);
            put_string(b, k, "storageAccountName", v->storage_account_name);
            if (!b->redact)
                put_string(b, k, "storageAccountKey", v->storage_account_key);
        }
        put(b, o, "azureFile", k);
        break;
    case BERTH_VOLUME_EMPTY_DIR:
        put(b, o, "emptyDir", k);
        break;
    case BERTH_VOLUME_SECRET:
        /* Redacted, a secret volume keeps its kind but loses every file. */
        json_decref(k);
        put(b, o, "secret", pairs_json(b, v->secret_items, v->nsecret_items, !b->redact));
        break;
    case BERTH_VOLUME_GIT_REPO:
        if (k != NULL) {
            put_string(b, k, "directory", v->directory);
            put_string(b, k, "repository", v->repository);
            put_string(b, k, "revision", v->revision);
        }
        put(b, o, "gitRepo", k);
        break;
    default:
        json_decref(k);
        break;
    }
    return o;
}

static json_t *properties_json(builder_t *b, const berth_group_t *g)
{
    json_t *p = json_object();
    if (p == NULL)
        return NULL;
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < g->ncontainers; i++)
        append(b, arr, container_json(b, &g->containers[i], false));
    put(b, p, "containers", arr);
    if (g->has_init_containers) {
        arr = json_array();
        for (size_t i = 0; arr != NULL && i < g->ninit_containers; i++)
            append(b, arr, container_json(b, &g->init_containers[i], true));
        put(b, p, "initContainers", arr);
    }
    if (g->has_credentials) {
        arr = json_array();
        for (size_t i = 0; arr != NULL && i < g->ncredentials; i++) {
            const berth_registry_credential_t *r = &g->credentials[i];
            json_t *o = json_object();
            if (o != NULL) {
                put_string(b, o, "server", r->server);
                put_string(b, o, "username", r->username);
                if (!b->redact)
                    put_string(b, o, "password", r->password);
                put_string(b, o, "identity", r->identity);
                put_string(b, o, "identityUrl", r->identity_url);
            }
            append(b, arr, o);
        }
        put(b, p, "imageRegistryCredentials", arr);
    }
    put_enum(b, p, "restartPolicy", g->restart_policy, restart_names, 3);
    if (g->ip_address != NULL) {
        const berth_ip_address_t *ip = g->ip_address;
        json_t *o = json_object();
        if (o != NULL) {
            put(b, o, "ports", ports_json(b, ip->ports, ip->nports));
            put_enum(b, o, "type", ip->type, ip_type_names, 2);
            put_string(b, o, "ip", ip->ip);
            put_string(b, o, "dnsNameLabel", ip->dns_name_label);
            put_string(b, o, "autoGeneratedDomainNameLabelScope", ip->label_scope);
            put_string(b, o, "fqdn", ip->fqdn);
        }
        put(b, p, "ipAddress", o);
    }
    put_enum(b, p, "osType", g->os_type, os_names, 2);
    if (g->has_volumes) {
        arr = json_array();
        for (size_t i = 0; arr != NULL && i < g->nvolumes; i++)
            append(b, arr, volume_json(b, &g->volumes[i]));
        put(b, p, "volumes", arr);
    }
    if (g->dns_config != NULL) {
        json_t *o = json_object();
        if (o != NULL) {
            put(b, o, "nameServers",
                strings_json(g->dns_config->name_servers, g->dns_config->nname_servers));
            put_string(b, o, "searchDomains", g->dns_config->search_domains);
            put_string(b, o, "options", g->dns_config->options);
        }
        put(b, p, "dnsConfig", o);
    }
    put_enum(b, p, "sku", g->sku, sku_names, 3);
    put_enum(b, p, "priority", g->priority, priority_names, 2);
    merge_extra(b, p, g->properties_extra_json);
    return p;
}

/* Serializes a group to a new buffer in *out (free with berth_free()),
 * canonical member names, verbatim members merged back; with
 * BERTH_JSON_REDACT no secret appears.  Returns 0, BERTH_EINVAL for a NULL
 * argument, or BERTH_ENOMEM (then *out is NULL). */
int berth_group_to_json(const berth_group_t *group, unsigned flags, char **out, size_t *len)
{
    if (out == NULL)
        return BERTH_EINVAL;
    *out = NULL;
    if (len != NULL)
        *len = 0;
    if (group == NULL)
        return BERTH_EINVAL;
    builder_t b = {.ok = true, .redact = (flags & BERTH_JSON_REDACT) != 0,
                   .no_config_maps = (flags & BERTH_JSON_NO_CONFIG_MAPS) != 0};
    json_t *root = json_object();
    if (root == NULL)
        return BERTH_ENOMEM;
    put_string(&b, root, "name", group->name);
    put_string(&b, root, "location", group->location);
    if (group->has_tags)
        put(&b, root, "tags", pairs_json(&b, group->tags, group->ntags, true));
    if (group->has_zones)
        put(&b, root, "zones", strings_json(group->zones, group->nzones));
    merge_extra(&b, root, group->extra_json);
    put(&b, root, "properties", properties_json(&b, group));
    char *s = NULL;
    if (b.ok) {
        /* Quantities print exactly with 15 digits (0.1 stays "0.1"); a real
         * kept verbatim may need all 17 to come back as the same double. */
        size_t dump = JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(b.has_real ? 17 : 15);
        dump |= (flags & BERTH_JSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT;
        s = json_dumps(root, dump);
    }
    json_decref(root);
    if (s == NULL)
        return BERTH_ENOMEM;
    *out = s;
    if (len != NULL)
        *len = strlen(s);
    return 0;
}
