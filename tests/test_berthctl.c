/*
 * test_berthctl.c: runs the built tools/berthctl/berthctl as a user would and checks
 * what it prints and how it exits: JSON lines that parse, one per document
 * and in order, errors in CloudError shape, redeploys that stay, the table,
 * the summary, an inventory's per-group `limits` (a group above ACI's
 * placed, one above the file's refused), and exit status 2 with a message
 * naming the file for every unusable input.
 *
 * Reads fixtures from the source tree; writes only under a private mkdtemp
 * directory in /tmp, removed at the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

extern char **environ;

static char tmpdir[64];
static char berthctl[4096];
static char srcdir[4096];

typedef struct run {
    int status;                 /* exit status, or -1 when killed */
    char *out;
    char *err;
} run_t;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* A path under the temporary directory (a static buffer per slot). */
static const char *tmp_path(int slot, const char *name)
{
    static char paths[4][256];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", tmpdir, name);
    return paths[slot];
}

static const char *fixture(int slot, const char *name)
{
    static char paths[2][4096 + 64];
    snprintf(paths[slot], sizeof paths[slot], "%s/fixtures/%s", srcdir, name);
    return paths[slot];
}

/* Runs berthctl with the NULL-terminated arguments, stdin from /dev/null,
 * stdout and stderr captured. */
static run_t run_berthctl(const char *first, ...)
{
    const char *argv[32];
    int argc = 0;
    argv[argc++] = berthctl;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
        assert_true(argc < 31);
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;

    const char *out_path = tmp_path(2, "stdout.txt");
    const char *err_path = tmp_path(3, "stderr.txt");
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawn(&pid, berthctl, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot run %s: %s", berthctl, strerror(rc));
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    run_t r;
    r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    return r;
}

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

/* Splits stdout into parsed JSON lines; every line must be a JSON object. */
static size_t parse_lines(const char *out, json_t **lines, size_t max)
{
    size_t n = 0;
    const char *p = out;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        json_error_t jerr;
        json_t *o = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &jerr);
        if (o == NULL || !json_is_object(o))
            fail_msg("line %zu is not a JSON object: %.*s (%s)", n + 1, (int)(nl - p), p,
                     jerr.text);
        assert_true(n < max);
        lines[n++] = o;
        p = nl + 1;
    }
    return n;
}

static void free_lines(json_t **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(lines[i]);
}

/* Checks the shape of one result line; returns true when it is a placement. */
static bool check_result(json_t *o)
{
    json_t *name = json_object_get(o, "name");
    assert_true(json_is_string(name) || json_is_null(name));
    json_t *error = json_object_get(o, "error");
    if (error != NULL) {
        assert_true(json_is_object(error));
        assert_true(json_is_string(json_object_get(error, "code")));
        assert_true(json_string_length(json_object_get(error, "code")) > 0);
        assert_true(json_is_string(json_object_get(error, "message")));
        assert_null(json_object_get(o, "host"));
        return false;
    }
    assert_true(json_is_string(name));
    assert_true(json_is_string(json_object_get(o, "host")));
    const char *action = json_string_value(json_object_get(o, "action"));
    assert_non_null(action);
    assert_true(strcmp(action, "created") == 0 || strcmp(action, "stayed") == 0 ||
                strcmp(action, "moved") == 0);
    assert_true(json_integer_value(json_object_get(o, "cores")) > 0);
    assert_true(json_integer_value(json_object_get(o, "memoryMiB")) > 0);
    json_t *gpu = json_object_get(o, "gpu");
    assert_true(json_is_null(gpu) || json_is_object(gpu));
    if (json_is_object(gpu)) {
        assert_true(json_is_string(json_object_get(gpu, "sku")));
        assert_true(json_integer_value(json_object_get(gpu, "count")) > 0);
    }
    json_t *iso = json_object_get(o, "isolation");
    if (iso != NULL)
        assert_true(strcmp(json_string_value(iso), "process") == 0 ||
                    strcmp(json_string_value(iso), "hyperv") == 0);
    return true;
}

/* ---- inputs ------------------------------------------------------------- */

static const char hosts_small[] =
    "[{\"name\": \"lx-1\", \"cpu\": 8, \"memoryInGB\": 32, \"osType\": \"Linux\", \"zone\": \"1\"},\n"
    " {\"name\": \"lx-2\", \"cpu\": 8, \"memoryInGB\": 32, \"osType\": \"Linux\", \"zone\": \"2\"},\n"
    " {\"name\": \"win-1\", \"cpu\": 8, \"memoryInGB\": 32, \"osType\": \"Windows\",\n"
    "  \"osBuild\": 20348, \"zone\": \"1\"}]\n";

/* A minimal ACI document. */
static char *doc(const char *name, const char *os, const char *image, const char *cpu,
                 const char *mem)
{
    char *buf = malloc(1024);
    assert_non_null(buf);
    snprintf(buf, 1024,
             "{\"name\": \"%s\", \"location\": \"westeurope\", \"properties\": {"
             "\"osType\": \"%s\", \"containers\": [{\"name\": \"main\", \"properties\": {"
             "\"image\": \"%s\", \"resources\": {\"requests\": {\"cpu\": %s, "
             "\"memoryInGB\": %s}}}}]}}",
             name, os, image, cpu, mem);
    return buf;
}

/* ---- tests -------------------------------------------------------------- */

static void test_help_and_version(void **state)
{
    (void)state;
    run_t r = run_berthctl("--help", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: berthctl place --hosts FILE --groups FILE"));
    assert_non_null(strstr(r.out, "--table"));
    run_free(&r);
    r = run_berthctl("--version", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "berthctl 0.1.0"));
    run_free(&r);
}

static void test_usage_errors(void **state)
{
    (void)state;
    const char *h = fixture(0, "cluster.json"), *g = fixture(1, "workload.jsonl");
    run_t runs[] = {
        run_berthctl(NULL),
        run_berthctl("frobnicate", NULL),
        run_berthctl("place", NULL),
        run_berthctl("place", "--hosts", h, NULL),
        run_berthctl("place", "--groups", g, NULL),
        run_berthctl("place", "--hosts", h, "--groups", g, "--policy", "random", NULL),
        run_berthctl("place", "--hosts", h, "--groups", g, "--seed", "-1", NULL),
        run_berthctl("place", "--hosts", h, "--groups", g, "--seed", "12x", NULL),
        run_berthctl("place", "--hosts", h, "--groups", g, "--verbose", NULL),
        run_berthctl("place", "--hosts", h, "--groups", NULL),
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        if (runs[i].status != 2)
            fail_msg("case %zu: exit %d, stderr: %s", i, runs[i].status, runs[i].err);
        assert_string_equal(runs[i].out, "");
        assert_non_null(strstr(runs[i].err, "berthctl: "));
        assert_non_null(strstr(runs[i].err, "--help"));
        run_free(&runs[i]);
    }
}

static void test_fixtures(void **state)
{
    (void)state;
    const char *g = fixture(1, "workload.jsonl");
    char *workload = slurp(g);
    size_t docs = 0;
    for (const char *p = workload; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0)
            docs++;
        p += len + (nl != NULL);
    }
    free(workload);
    assert_true(docs >= 200);

    run_t r = run_berthctl("place", "--hosts", fixture(0, "cluster.json"), "--groups", g, NULL);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    json_t *lines[1024];
    size_t n = parse_lines(r.out, lines, 1024);
    assert_int_equal(n, docs);
    size_t placed = 0, stayed = 0, windows = 0, gpus = 0;
    for (size_t i = 0; i < n; i++) {
        if (!check_result(lines[i]))
            continue;
        placed++;
        stayed += strcmp(json_string_value(json_object_get(lines[i], "action")), "stayed") == 0;
        windows += json_object_get(lines[i], "isolation") != NULL;
        gpus += json_is_object(json_object_get(lines[i], "gpu"));
    }
    /* Most fit; the deliberately invalid ones and a few others do not. */
    assert_true(placed * 10 >= n * 8);
    assert_true(n - placed >= 10);
    assert_true(stayed >= 1);
    assert_true(windows >= 10);
    assert_true(gpus >= 20);
    free_lines(lines, n);
    /* The summary, in total and per zone. */
    char counts[128];
    snprintf(counts, sizeof counts, "documents: %zu (", docs);
    assert_non_null(strstr(r.err, counts));
    assert_non_null(strstr(r.err, "total: hosts 60"));
    assert_non_null(strstr(r.err, "zone 1: hosts"));
    assert_non_null(strstr(r.err, "zone 3: hosts"));
    assert_non_null(strstr(r.err, "%)"));
    run_free(&r);
}

/* Same seed, same input: the same placements, byte for byte, per policy. */
static void test_policies_deterministic(void **state)
{
    (void)state;
    static const char *const policies[] = {"binpack", "spread", "firstfit"};
    for (size_t i = 0; i < 3; i++) {
        run_t a = run_berthctl("place", "--hosts", fixture(0, "cluster.json"), "--groups",
                               fixture(1, "workload.jsonl"), "--policy", policies[i],
                               "--seed", "42", NULL);
        run_t b = run_berthctl("place", "--hosts", fixture(0, "cluster.json"), "--groups",
                               fixture(1, "workload.jsonl"), "--policy", policies[i],
                               "--seed", "42", NULL);
        assert_int_equal(a.status, 0);
        assert_int_equal(b.status, 0);
        assert_string_equal(a.out, b.out);
        char policy[64];
        snprintf(policy, sizeof policy, "policy %s, seed 42", policies[i]);
        assert_non_null(strstr(a.err, policy));
        run_free(&a);
        run_free(&b);
    }
}

static void test_small_array_with_redeploy(void **state)
{
    (void)state;
    write_file("hosts.json", hosts_small);
    char *a = doc("web-a", "Linux", "nginx:1.25", "1.5", "4");
    char *b = doc("web-b", "Linux", "nginx:1.25", "2", "8");
    char *w = doc("iis", "Windows", "mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022",
                  "2", "4");
    char *bad = doc("web-c", "Linux", "nginx:1.25", "\"lots\"", "4");
    char *noname = doc("x", "Linux", "nginx", "1", "1");
    /* Drop the name member: {"name": "x", ... -> {... */
    memmove(noname + 1, strstr(noname, "\"location\""), strlen(strstr(noname, "\"location\"")) + 1);
    char groups[8192];
    snprintf(groups, sizeof groups, "[\n  %s,\n  %s,\n  %s,\n  %s,\n  %s,\n  %s\n]\n", a, b, w,
             bad, a, noname);
    write_file("groups.json", groups);
    run_t r = run_berthctl("place", "--hosts", tmp_path(0, "hosts.json"), "--groups",
                           tmp_path(1, "groups.json"), NULL);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    json_t *lines[16];
    size_t n = parse_lines(r.out, lines, 16);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        check_result(lines[i]);

    assert_string_equal(json_string_value(json_object_get(lines[0], "name")), "web-a");
    assert_string_equal(json_string_value(json_object_get(lines[0], "action")), "created");
    assert_int_equal(json_integer_value(json_object_get(lines[0], "cores")), 2);
    assert_int_equal(json_integer_value(json_object_get(lines[0], "memoryMiB")), 4096);
    assert_true(json_is_null(json_object_get(lines[0], "gpu")));
    assert_null(json_object_get(lines[0], "isolation"));
    assert_string_equal(json_string_value(json_object_get(lines[1], "name")), "web-b");

    assert_string_equal(json_string_value(json_object_get(lines[2], "host")), "win-1");
    assert_string_equal(json_string_value(json_object_get(lines[2], "isolation")), "process");

    json_t *err = json_object_get(lines[3], "error");
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(lines[3], "name")), "web-c");
    assert_string_equal(json_string_value(json_object_get(err, "target")),
                        "properties.containers[0].properties.resources.requests.cpu");

    /* The redeploy of web-a stays where web-a went. */
    assert_string_equal(json_string_value(json_object_get(lines[4], "action")), "stayed");
    assert_string_equal(json_string_value(json_object_get(lines[4], "host")),
                        json_string_value(json_object_get(lines[0], "host")));

    assert_true(json_is_null(json_object_get(lines[5], "name")));
    err = json_object_get(lines[5], "error");
    assert_non_null(err);
    assert_string_equal(json_string_value(json_object_get(err, "target")), "name");
    free_lines(lines, n);
    assert_non_null(strstr(r.err, "documents: 6 (3 created, 1 stayed, 0 moved, 2 rejected)"));
    run_free(&r);

    /* --table: a header and one row per document. */
    r = run_berthctl("place", "--hosts", tmp_path(0, "hosts.json"), "--groups",
                     tmp_path(1, "groups.json"), "--table", NULL);
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "NAME", 4) == 0);
    assert_non_null(strstr(r.out, "HOST"));
    assert_non_null(strstr(r.out, "MEMORY_GB"));
    size_t rows = 0;
    for (const char *p = r.out; (p = strchr(p, '\n')) != NULL; p++)
        rows++;
    assert_int_equal(rows, 7);
    assert_non_null(strstr(r.out, "web-a"));
    assert_non_null(strstr(r.out, "stayed"));
    assert_non_null(strstr(r.out, "error "));
    /* Columns line up: the host column starts at the same offset on every
     * placed row. */
    const char *row0 = strstr(r.out, "\nweb-a") + 1;
    const char *row1 = strstr(r.out, "\nweb-b") + 1;
    const char *h0 = strstr(row0, "lx-"), *h1 = strstr(row1, "lx-");
    assert_int_equal(h0 - row0, h1 - row1);
    run_free(&r);
    free(a);
    free(b);
    free(w);
    free(bad);
    free(noname);
}

static void test_small_json_lines(void **state)
{
    (void)state;
    write_file("hosts.json", hosts_small);
    char *a = doc("job-1", "Linux", "alpine", "1", "1");
    char *b = doc("job-2", "Linux", "alpine", "4", "16");
    char groups[4096];
    /* Blank lines and CRLF endings are fine; a broken document is its own
     * error line. */
    snprintf(groups, sizeof groups, "%s\r\n\n   \n%s\n{\"name\": \"broken\", \"properties\": \n",
             a, b);
    write_file("groups.jsonl", groups);
    run_t r = run_berthctl("place", "--hosts", tmp_path(0, "hosts.json"), "--groups",
                           tmp_path(1, "groups.jsonl"), "--policy", "spread", NULL);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    json_t *lines[8];
    size_t n = parse_lines(r.out, lines, 8);
    assert_int_equal(n, 3);
    assert_true(check_result(lines[0]));
    assert_true(check_result(lines[1]));
    assert_false(check_result(lines[2]));
    /* Spread: the second job goes to the emptier host. */
    assert_string_not_equal(json_string_value(json_object_get(lines[0], "host")),
                            json_string_value(json_object_get(lines[1], "host")));
    free_lines(lines, n);
    run_free(&r);

    /* A groups file with no documents is a run with nothing to place. */
    write_file("empty.jsonl", "\n\n");
    r = run_berthctl("place", "--hosts", tmp_path(0, "hosts.json"), "--groups",
                     tmp_path(1, "empty.jsonl"), NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "");
    run_free(&r);
    free(a);
    free(b);
}

/* An inventory's `limits` are the run's: a 12-core, 48 GB group (above
 * ACI's 4 cores and 16 GB) is placed, a 20-core one is refused with the
 * file's limit in its message. */
static void test_inventory_limits(void **state)
{
    (void)state;
    write_file("big.json",
               "{\"limits\": {\"cpu\": 16, \"memoryInGB\": 64},\n"
               " \"hosts\": [{\"name\": \"big-1\", \"cpu\": 32, \"memoryInGB\": 128, "
               "\"osType\": \"Linux\"}]}\n");
    char *a = doc("train", "Linux", "alpine", "12", "48");
    char *b = doc("huge", "Linux", "alpine", "20", "8");
    char groups[4096];
    snprintf(groups, sizeof groups, "%s\n%s\n", a, b);
    write_file("big.jsonl", groups);
    run_t r = run_berthctl("place", "--hosts", tmp_path(0, "big.json"), "--groups",
                           tmp_path(1, "big.jsonl"), NULL);
    if (r.status != 0)
        fail_msg("exit %d: %s", r.status, r.err);
    json_t *lines[4];
    size_t n = parse_lines(r.out, lines, 4);
    assert_int_equal(n, 2);
    assert_true(check_result(lines[0]));
    assert_string_equal(json_string_value(json_object_get(lines[0], "host")), "big-1");
    assert_int_equal(json_integer_value(json_object_get(lines[0], "cores")), 12);
    assert_false(check_result(lines[1]));
    const char *msg = json_string_value(
        json_object_get(json_object_get(lines[1], "error"), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "is 16 cores"));
    free_lines(lines, n);
    run_free(&r);

    /* A bad limit is an unusable file, named with its path. */
    write_file("bad.json", "{\"limits\": {\"memoryInGB\": 0}, \"hosts\": []}");
    r = run_berthctl("place", "--hosts", tmp_path(0, "bad.json"), "--groups",
                     tmp_path(1, "big.jsonl"), NULL);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "limits.memoryInGB"));
    run_free(&r);
    free(a);
    free(b);
}

/* Every unusable input: exit 2, nothing on stdout, and a message naming the
 * file and what is wrong with it. */
static void test_unusable_inputs(void **state)
{
    (void)state;
    write_file("hosts.json", hosts_small);
    write_file("bad-hosts.json",
               "[{\"name\": \"a\", \"cpu\": 4, \"memoryInGB\": 8, \"osType\": \"Linux\"},\n"
               " {\"name\": \"b\", \"cpu\": 4, \"memoryInGB\": 8.0001, \"osType\": \"Linux\"}]\n");
    write_file("syntax-hosts.json", "[{\"name\": \"a\",\n \"cpu\": }]\n");
    write_file("garbage.txt", "this is not JSON\nat all\n");
    write_file("pretty.json", "{\n  \"name\": \"x\"\n}\n");
    write_file("bad-array.json", "[{\"name\": \"a\"},\n {\"name\": ]\n");
    char *good = doc("ok", "Linux", "nginx", "1", "1");
    write_file("good.jsonl", good);
    free(good);

    static const struct {
        const char *hosts, *groups;
        const char *names;      /* the file the message must name */
        const char *says;       /* and what it must say */
    } cases[] = {
        {"missing.json", "good.jsonl", "missing.json", "No such file"},
        {"hosts.json", "missing.jsonl", "missing.jsonl", "No such file"},
        {".", "good.jsonl", "/.'", "cannot read hosts file"},
        {"bad-hosts.json", "good.jsonl", "bad-hosts.json", "hosts[1].memoryInGB"},
        {"syntax-hosts.json", "good.jsonl", "syntax-hosts.json", "line 2"},
        {"garbage.txt", "good.jsonl", "garbage.txt", "not valid JSON"},
        {"hosts.json", "garbage.txt", "garbage.txt", "line 1"},
        {"hosts.json", "pretty.json", "pretty.json", "line 2"},
        {"hosts.json", "bad-array.json", "bad-array.json", "line 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char hosts[256];
        snprintf(hosts, sizeof hosts, "%s", tmp_path(0, cases[i].hosts));
        run_t r = run_berthctl("place", "--hosts", hosts, "--groups",
                               tmp_path(1, cases[i].groups), NULL);
        if (r.status != 2 || strstr(r.err, cases[i].names) == NULL ||
            strstr(r.err, cases[i].says) == NULL)
            fail_msg("case %zu (%s, %s): exit %d, stderr: %s", i, cases[i].hosts,
                     cases[i].groups, r.status, r.err);
        assert_string_equal(r.out, "");
        run_free(&r);
    }
}

static int setup(void **state)
{
    (void)state;
    const char *b = getenv("top_builddir");
    const char *s = getenv("top_srcdir");
    snprintf(berthctl, sizeof berthctl, "%s/tools/berthctl/berthctl", b != NULL ? b : ".");
    snprintf(srcdir, sizeof srcdir, "%s", s != NULL ? s : BERTH_SRCDIR);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/berthctl-test.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return access(berthctl, X_OK) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    static const char *const files[] = {
        "stdout.txt", "stderr.txt", "hosts.json", "groups.json", "groups.jsonl",
        "empty.jsonl", "bad-hosts.json", "syntax-hosts.json", "garbage.txt", "pretty.json",
        "bad-array.json", "good.jsonl", "big.json", "big.jsonl", "bad.json",
    };
    char path[256];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_policies_deterministic),
        cmocka_unit_test(test_small_array_with_redeploy),
        cmocka_unit_test(test_small_json_lines),
        cmocka_unit_test(test_inventory_limits),
        cmocka_unit_test(test_unusable_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
