/*
 * print.c: berthctl's printing and formatting for the clients of berthd:
 * growable strings, reading nested JSON members, numbers, aligned tables,
 * JSON documents with their secrets redacted, and the summary, events and
 * progress of a container group.
 *
 * It writes to stdout and stderr only; it never sends or reads anything
 * over the network, and it never prints a secret: secure environment
 * values, passwords, storage and workspace keys and secret volume contents
 * show as "<redacted>", and text from a server goes through
 * berthctl_put_clean() so that it cannot carry terminal escapes.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "berthctl.h"

/* ---- small helpers ---------------------------------------------------------------- */

/* Prints at most `max` bytes of s to f, with control characters (terminal
 * escapes from a server) shown as '?'. */
void berthctl_put_clean(FILE *f, const char *s, size_t max)
{
    size_t i = 0;
    for (; s[i] != '\0' && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
    }
    if (s[i] != '\0')
        fputs("...", f);
}

/* Wipes a secret in place. */
void berthctl_wipe(char *s)
{
    if (s == NULL)
        return;
    volatile char *p = s;
    while (*p != '\0')
        *p++ = '\0';
}

/* Appends to a growable string; once memory runs out, b->oom is set and
 * the string is dropped by berthctl_string_take(). */
void berthctl_string_printf(berthctl_string_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 128;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (s == NULL) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

/* Returns the string built (NULL when memory ran out; free() it). */
char *berthctl_string_take(berthctl_string_t *b)
{
    if (b->oom) {
        free(b->s);
        return NULL;
    }
    if (b->s == NULL)
        return strdup("");
    return b->s;
}

/* A member of nested objects (borrowed, or NULL):
 * berthctl_json_get(doc, "properties.instanceView.state"). */
json_t *berthctl_json_get(json_t *v, const char *path)
{
    char key[64];
    while (v != NULL && *path != '\0') {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_is_object(v) ? json_object_get(v, key) : NULL;
        path += n + (dot ? 1 : 0);
    }
    return v;
}

/* The string at `path` (borrowed), or NULL. */
const char *berthctl_json_string(json_t *v, const char *path)
{
    return json_string_value(berthctl_json_get(v, path));
}

/* A JSON number (integer or real) as a double; `dflt` when absent. */
double berthctl_json_number(json_t *v, const char *path, double dflt)
{
    json_t *n = berthctl_json_get(v, path);
    return json_is_number(n) ? json_number_value(n) : dflt;
}

/* Formats a quantity with at most 2 decimals and no trailing zeros. */
void berthctl_format_number(char *buf, size_t cap, double x)
{
    snprintf(buf, cap, "%.2f", x);
    char *dot = strchr(buf, '.');
    if (dot != NULL) {
        char *end = buf + strlen(buf) - 1;
        while (end > dot && *end == '0')
            *end-- = '\0';
        if (end == dot)
            *end = '\0';
    }
}

/* Replaces every secret in a document by BERTHCTL_REDACTED: secureValue,
 * password, storageAccountKey, workspaceKey and the contents of secret
 * volumes. */
static void redact(json_t *v)
{
    static const char *const secret_keys[] = {"secureValue", "password", "storageAccountKey",
                                              "workspaceKey", "sharedKey"};
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) redact(e);
        return;
    }
    if (!json_is_object(v))
        return;
    const char *k;
    json_t *e;
    void *tmp;
    json_object_foreach_safe(v, tmp, k, e)
    {
        bool secret = false;
        for (size_t i = 0; i < sizeof secret_keys / sizeof *secret_keys; i++)
            secret = secret || strcmp(k, secret_keys[i]) == 0;
        if (secret && json_is_string(e) && json_string_length(e) > 0) {
            json_object_set_new(v, k, json_string(BERTHCTL_REDACTED));
        } else if (strcmp(k, "secret") == 0 && json_is_object(e)) {
            const char *fk;
            json_t *fv;
            void *t2;
            json_object_foreach_safe(e, t2, fk, fv)
            {
                (void)fv;
                json_object_set_new(e, fk, json_string(BERTHCTL_REDACTED));
            }
        } else {
            redact(e);
        }
    }
}

/* Prints a document on stdout, indented, with its secrets redacted. */
int berthctl_print_json(json_t *doc)
{
    redact(doc);
    if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(12)) != 0)
        return berthctl_out_of_memory();
    fputc('\n', stdout);
    return BERTHCTL_EXIT_OK;
}

/* ---- tables ----------------------------------------------------------------------- */

/* Adds a copy of s as the next cell (row by row); "-" for NULL or "". */
void berthctl_table_add(berthctl_table_t *t, const char *s)
{
    if (t->oom)
        return;
    if (t->ncells == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **v = realloc(t->cells, cap * sizeof *v);
        if (v == NULL) {
            t->oom = true;
            return;
        }
        t->cells = v;
        t->cap = cap;
    }
    char *copy = strdup(s != NULL && *s != '\0' ? s : "-");
    if (copy == NULL) {
        t->oom = true;
        return;
    }
    t->cells[t->ncells++] = copy;
}

/* Prints the table aligned, two blanks between columns, and frees its
 * cells; returns an exit status. */
int berthctl_table_print(berthctl_table_t *t)
{
    int rc = BERTHCTL_EXIT_OK;
    if (t->oom) {
        rc = berthctl_out_of_memory();
    } else {
        size_t widths[16] = {0};
        for (size_t i = 0; i < t->ncells; i++) {
            size_t len = strlen(t->cells[i]);
            if (len > widths[i % t->ncols])
                widths[i % t->ncols] = len;
        }
        for (size_t i = 0; i < t->ncells; i++) {
            size_t col = i % t->ncols;
            bool last = col + 1 == t->ncols;
            berthctl_put_clean(stdout, t->cells[i], 4096);
            if (last)
                fputc('\n', stdout);
            else
                printf("%*s", (int)(widths[col] - strlen(t->cells[i]) + 2), "");
        }
    }
    for (size_t i = 0; i < t->ncells; i++)
        free(t->cells[i]);
    free(t->cells);
    return rc;
}

/* ---- group summaries ------------------------------------------------------------- */

/* The resource group named in a resource id, copied into buf. */
const char *berthctl_group_resource_group(json_t *g, char *buf, size_t cap)
{
    const char *id = berthctl_json_string(g, "id");
    buf[0] = '\0';
    if (id == NULL)
        return buf;
    static const char key[] = "/resourceGroups/";
    const char *p = id;
    while (*p != '\0' && strncasecmp(p, key, sizeof key - 1) != 0)
        p++;
    if (*p == '\0')
        return buf;
    p += sizeof key - 1;
    size_t n = strcspn(p, "/");
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
    return buf;
}

/* Totals of the containers' CPU and memory requests. */
void berthctl_group_totals(json_t *g, double *cpu, double *mem)
{
    *cpu = *mem = 0;
    size_t i;
    json_t *c;
    json_array_foreach(berthctl_json_get(g, "properties.containers"), i, c)
    {
        *cpu += berthctl_json_number(c, "properties.resources.requests.cpu", 0);
        *mem += berthctl_json_number(c, "properties.resources.requests.memoryInGB", 0);
    }
}

static void print_field(const char *label, const char *value)
{
    if (value == NULL || *value == '\0')
        return;
    printf("%-20s", label);
    berthctl_put_clean(stdout, value, 4096);
    fputc('\n', stdout);
}

/* Prints the summary of `container show` (and of a finished create). */
int berthctl_group_print_summary(json_t *g, const char *host)
{
    char buf[512], rg[256];
    print_field("Name:", berthctl_json_string(g, "name"));
    print_field("Resource group:", berthctl_group_resource_group(g, rg, sizeof rg));
    print_field("Location:", berthctl_json_string(g, "location"));
    print_field("Provisioning state:", berthctl_json_string(g, "properties.provisioningState"));
    print_field("State:", berthctl_json_string(g, "properties.instanceView.state"));
    print_field("Host:", host != NULL && host[0] != '\0' ? host : NULL);
    print_field("OS type:", berthctl_json_string(g, "properties.osType"));
    print_field("Restart policy:", berthctl_json_string(g, "properties.restartPolicy"));
    json_t *ip = berthctl_json_get(g, "properties.ipAddress");
    if (json_is_object(ip)) {
        berthctl_string_t b = {0};
        berthctl_string_printf(&b, "%s",
                               berthctl_json_string(ip, "ip") ? berthctl_json_string(ip, "ip")
                                                              : "(pending)");
        if (berthctl_json_string(ip, "type"))
            berthctl_string_printf(&b, " (%s)", berthctl_json_string(ip, "type"));
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(ip, "ports"), i, p)
        {
            berthctl_string_printf(
                &b, "%s%lld/%s", i == 0 ? ", ports " : " ",
                (long long)json_integer_value(json_object_get(p, "port")),
                berthctl_json_string(p, "protocol") ? berthctl_json_string(p, "protocol")
                                                    : "TCP");
            /* Where the host publishes it (Berth's hostIp/hostPort). */
            json_int_t hp = json_integer_value(json_object_get(p, "hostPort"));
            if (hp > 0)
                berthctl_string_printf(&b, " (%s:%lld)",
                                       json_string_value(json_object_get(p, "hostIp"))
                                           ? json_string_value(json_object_get(p, "hostIp"))
                                           : "",
                                       (long long)hp);
        }
        char *s = berthctl_string_take(&b);
        print_field("IP address:", s);
        free(s);
        print_field("FQDN:", berthctl_json_string(ip, "fqdn"));
    }
    berthctl_table_t t = {.ncols = 7};
    static const char *const heads[] = {"CONTAINER", "IMAGE", "CPU", "MEMORY", "STATE",
                                        "RESTARTS", "GPU"};
    for (size_t i = 0; i < 7; i++)
        berthctl_table_add(&t, heads[i]);
    size_t i;
    json_t *c;
    json_t *containers = berthctl_json_get(g, "properties.containers");
    json_array_foreach(containers, i, c)
    {
        berthctl_table_add(&t, berthctl_json_string(c, "name"));
        berthctl_table_add(&t, berthctl_json_string(c, "properties.image"));
        berthctl_format_number(buf, sizeof buf,
                               berthctl_json_number(c, "properties.resources.requests.cpu", 0));
        berthctl_table_add(&t, buf);
        berthctl_format_number(
            buf, sizeof buf,
            berthctl_json_number(c, "properties.resources.requests.memoryInGB", 0));
        strcat(buf, " GB");
        berthctl_table_add(&t, buf);
        const char *state = berthctl_json_string(c, "properties.instanceView.currentState.state");
        const char *detail =
            berthctl_json_string(c, "properties.instanceView.currentState.detailStatus");
        if (state != NULL && detail != NULL && *detail != '\0') {
            snprintf(buf, sizeof buf, "%s (%s)", state, detail);
            berthctl_table_add(&t, buf);
        } else {
            berthctl_table_add(&t, state);
        }
        json_t *rc = berthctl_json_get(c, "properties.instanceView.restartCount");
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(rc));
        berthctl_table_add(&t, json_is_integer(rc) ? buf : NULL);
        json_t *gpu = berthctl_json_get(c, "properties.resources.requests.gpu");
        if (json_is_object(gpu)) {
            snprintf(buf, sizeof buf, "%lld %s",
                     (long long)json_integer_value(json_object_get(gpu, "count")),
                     berthctl_json_string(gpu, "sku") ? berthctl_json_string(gpu, "sku") : "");
            berthctl_table_add(&t, buf);
        } else {
            berthctl_table_add(&t, NULL);
        }
    }
    fputc('\n', stdout);
    int rc = berthctl_table_print(&t);
    /* environment: names, and values only when they are not secrets */
    json_array_foreach(containers, i, c)
    {
        size_t j;
        json_t *e;
        json_t *env = berthctl_json_get(c, "properties.environmentVariables");
        if (json_array_size(env) == 0)
            continue;
        printf("\nEnvironment of %s:\n",
               berthctl_json_string(c, "name") ? berthctl_json_string(c, "name") : "?");
        json_array_foreach(env, j, e)
        {
            fputs("  ", stdout);
            berthctl_put_clean(
                stdout, berthctl_json_string(e, "name") ? berthctl_json_string(e, "name") : "?",
                256);
            fputc('=', stdout);
            if (json_object_get(e, "secureValue") != NULL ||
                berthctl_json_string(e, "value") == NULL)
                fputs(BERTHCTL_REDACTED, stdout);
            else
                berthctl_put_clean(stdout, berthctl_json_string(e, "value"), 4096);
            fputc('\n', stdout);
        }
    }
    return rc;
}

/* Prints every event of the group and of its containers (stderr). */
void berthctl_group_print_events(json_t *g)
{
    size_t i, j;
    json_t *e, *c;
    fputs("berthctl: events:\n", stderr);
    json_array_foreach(berthctl_json_get(g, "properties.instanceView.events"), i, e)
    {
        fprintf(stderr, "  [%s] %s: ",
                berthctl_json_string(e, "type") ? berthctl_json_string(e, "type") : "?",
                berthctl_json_string(e, "name") ? berthctl_json_string(e, "name") : "?");
        berthctl_put_clean(
            stderr, berthctl_json_string(e, "message") ? berthctl_json_string(e, "message") : "",
            1000);
        fputc('\n', stderr);
    }
    json_array_foreach(berthctl_json_get(g, "properties.containers"), i, c)
    {
        json_array_foreach(berthctl_json_get(c, "properties.instanceView.events"), j, e)
        {
            fprintf(stderr, "  [%s] container ",
                    berthctl_json_string(e, "type") ? berthctl_json_string(e, "type") : "?");
            berthctl_put_clean(
                stderr, berthctl_json_string(c, "name") ? berthctl_json_string(c, "name") : "?",
                100);
            fprintf(stderr, " %s: ",
                    berthctl_json_string(e, "name") ? berthctl_json_string(e, "name") : "?");
            berthctl_put_clean(
                stderr,
                berthctl_json_string(e, "message") ? berthctl_json_string(e, "message") : "", 1000);
            fputc('\n', stderr);
        }
    }
}

/* Prints what changed since the last look (provisioningState, the group's
 * state, each container's state) on stderr; `seen` remembers. */
void berthctl_group_show_progress(const char *name, json_t *g, json_t *seen)
{
    const char *prov = berthctl_json_string(g, "properties.provisioningState");
    const char *state = berthctl_json_string(g, "properties.instanceView.state");
    const char *old = berthctl_json_string(seen, "provisioningState");
    if (prov != NULL && (old == NULL || strcmp(old, prov) != 0)) {
        fprintf(stderr, "%s: provisioningState ", name);
        berthctl_put_clean(stderr, prov, 64);
        fputc('\n', stderr);
        json_object_set_new(seen, "provisioningState", json_string(prov));
    }
    old = berthctl_json_string(seen, "state");
    if (state != NULL && (old == NULL || strcmp(old, state) != 0)) {
        fprintf(stderr, "%s: state ", name);
        berthctl_put_clean(stderr, state, 64);
        fputc('\n', stderr);
        json_object_set_new(seen, "state", json_string(state));
    }
    size_t i;
    json_t *c;
    json_array_foreach(berthctl_json_get(g, "properties.containers"), i, c)
    {
        const char *cn = berthctl_json_string(c, "name");
        const char *cs = berthctl_json_string(c, "properties.instanceView.currentState.state");
        if (cn == NULL || cs == NULL)
            continue;
        char key[128];
        snprintf(key, sizeof key, "c:%s", cn);
        old = berthctl_json_string(seen, key);
        if (old != NULL && strcmp(old, cs) == 0)
            continue;
        json_object_set_new(seen, key, json_string(cs));
        fprintf(stderr, "%s: container ", name);
        berthctl_put_clean(stderr, cn, 64);
        fputs(" ", stderr);
        berthctl_put_clean(stderr, cs, 64);
        const char *detail =
            berthctl_json_string(c, "properties.instanceView.currentState.detailStatus");
        if (detail != NULL && *detail != '\0') {
            fputs(" (", stderr);
            berthctl_put_clean(stderr, detail, 200);
            fputc(')', stderr);
        }
        fputc('\n', stderr);
    }
}
