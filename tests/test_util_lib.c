/*
 * test_util_lib.c: lib/ (libberth-util and the redis-server launcher):
 * base64 round trips and bad input, spawning with its bounds, exit status
 * and captured output, the kernel's random bytes, the clocks and ISO 8601.
 *
 * It runs /bin/sh and redis-server as children, never through a shell
 * string of its own, and leaves no process or directory behind.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/base64.h"
#include "lib/clock.h"
#include "lib/random.h"
#include "lib/redis-server.h"
#include "lib/spawn.h"

/* ---- base64 ------------------------------------------------------------------------------ */

static void test_base64_vectors(void **state)
{
    (void)state;
    /* RFC 4648 section 10. */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        char *e = berth__base64_encode(plain[i], strlen(plain[i]), BERTH__BASE64_STANDARD);
        assert_non_null(e);
        assert_string_equal(e, coded[i]);
        assert_true(berth__base64_is_valid(e));
        unsigned char *d = NULL;
        size_t n = 99;
        assert_int_equal(berth__base64_decode(e, &d, &n), 0);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(d, plain[i], n);
        free(d);
        free(e);
    }
}

static void test_base64_round_trip_all_bytes(void **state)
{
    (void)state;
    unsigned char data[256 + 2];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof data; len++) {
        for (int url = 0; url < 2; url++) {
            berth__base64_alphabet_t alphabet = url ? BERTH__BASE64_URL : BERTH__BASE64_STANDARD;
            char *e = berth__base64_encode(data, len, alphabet);
            assert_non_null(e);
            assert_int_equal(strlen(e), (len + 2) / 3 * 4);
            if (url)
                assert_null(strpbrk(e, "+/"));
            else
                assert_null(strpbrk(e, "-_"));
            assert_int_equal(berth__base64_is_valid(e), !url || strpbrk(e, "-_") == NULL);
            unsigned char *d = NULL;
            size_t n = 0;
            assert_int_equal(berth__base64_decode(e, &d, &n), 0);
            assert_int_equal(n, len);
            if (len > 0)
                assert_memory_equal(d, data, len);
            free(d);
            free(e);
        }
    }
}

static void test_base64_bad_input(void **state)
{
    (void)state;
    /* The strict check (libberth's validator). */
    static const char *const invalid[] = {"Zg=", "Zg", "Z===", "Zm9v!A==", "Zg==Zg==", "=Zg=",
                                          "Zm9v Yg==", "Zm-v", "Zm_v", "Zg=a"};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        assert_false(berth__base64_is_valid(invalid[i]));
    assert_true(berth__base64_is_valid(""));
    assert_true(berth__base64_is_valid("QUJD"));

    /* The lenient decoder: other alphabet, no padding, whitespace are fine. */
    unsigned char *d = NULL;
    size_t n = 0;
    assert_int_equal(berth__base64_decode("Zm9v\nYg", &d, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(d, "foob", 4);
    free(d);
    assert_int_equal(berth__base64_decode("-_8=", &d, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(d[0], 0xfb);
    assert_int_equal(d[1], 0xff);
    free(d);
    /* ...but not a foreign character, data after '=', three '=' or a cut. */
    static const char *const bad[] = {"not*base64", "Zg==Zg", "Zg===", "Z", "Zm9vY", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = (unsigned char *)"untouched";
        assert_int_equal(berth__base64_decode(bad[i], &d, &n), -1);
        assert_string_equal((char *)d, "untouched");
    }
}

/* ---- spawn ------------------------------------------------------------------------------- */

static void test_spawn_exit_status_and_output(void **state)
{
    (void)state;
    char out[64];
    berth__spawn_result_t res;
    char *const argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    berth__spawn_options_t o = {.capture = BERTH__SPAWN_CAPTURE_STDOUT};
    assert_int_equal(berth__spawn_run(argv, &o, 10000, out, sizeof out, &res), 0);
    assert_int_equal(res.exit_status, 3);
    assert_false(res.timed_out);
    assert_string_equal(out, "out\n");
    assert_int_equal(res.output_len, 4);

    o.capture = BERTH__SPAWN_CAPTURE_STDERR;
    assert_int_equal(berth__spawn_run(argv, &o, 10000, out, sizeof out, &res), 0);
    assert_string_equal(out, "err\n");

    o.capture = BERTH__SPAWN_CAPTURE_STDOUT | BERTH__SPAWN_CAPTURE_STDERR;
    assert_int_equal(berth__spawn_run(argv, &o, 10000, out, sizeof out, &res), 0);
    assert_int_equal(res.output_len, 8);

    /* Output beyond the buffer is read and dropped; the child still ends. */
    char small[5];
    char *const many[] = {"/bin/sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo 0123456789; "
                                          "i=$((i+1)); done; exit 0", NULL};
    o.capture = BERTH__SPAWN_CAPTURE_STDOUT;
    assert_int_equal(berth__spawn_run(many, &o, 20000, small, sizeof small, &res), 0);
    assert_int_equal(res.exit_status, 0);
    assert_string_equal(small, "0123");

    /* An environment of the caller's choosing, and no capture at all. */
    char *const env[] = {"BERTH_UTIL_TEST=yes", NULL};
    char *const check[] = {"/bin/sh", "-c", "test \"$BERTH_UTIL_TEST\" = yes", NULL};
    berth__spawn_options_t e = {.env = env};
    assert_int_equal(berth__spawn_run(check, &e, 10000, NULL, 0, &res), 0);
    assert_int_equal(res.exit_status, 0);
}

static void test_spawn_timeout(void **state)
{
    (void)state;
    char out[64];
    berth__spawn_result_t res;
    /* The grandchild (sleep) holds the pipe too: the group is killed. */
    char *const argv[] = {"/bin/sh", "-c", "echo started; sleep 30", NULL};
    berth__spawn_options_t o = {.capture = BERTH__SPAWN_CAPTURE_STDOUT, .own_process_group = true};
    int64_t t0 = berth__clock_monotonic_ms();
    assert_int_equal(berth__spawn_run(argv, &o, 300, out, sizeof out, &res), -1);
    int64_t took = berth__clock_monotonic_ms() - t0;
    assert_true(res.timed_out);
    assert_int_equal(res.signal, SIGKILL);
    assert_int_equal(res.exit_status, -1);
    assert_true(took >= 300 && took < 5000);
    assert_non_null(strstr(res.message, "timed out"));
    assert_string_equal(out, "started\n");
}

static void test_spawn_failures(void **state)
{
    (void)state;
    berth__spawn_result_t res;
    char *const missing[] = {"/nonexistent/berth-no-such-program", NULL};
    assert_int_equal(berth__spawn_run(missing, NULL, 1000, NULL, 0, &res), -1);
    assert_non_null(strstr(res.message, "cannot run /nonexistent/berth-no-such-program"));

    char err[160];
    assert_int_equal(berth__spawn_start(missing, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "No such file"));

    char *const killed[] = {"/bin/sh", "-c", "kill -TERM $$", NULL};
    assert_int_equal(berth__spawn_run(killed, NULL, 10000, NULL, 0, &res), -1);
    assert_false(res.timed_out);
    assert_int_equal(res.signal, SIGTERM);
    assert_non_null(strstr(res.message, "signal 15"));
}

/* berth__spawn_run_alloc: the buffer grows with the output, up to its
 * bound; all of a large output written just before the exit is kept. */
static void test_spawn_run_alloc(void **state)
{
    (void)state;
    berth__spawn_result_t res;
    char *out = NULL;
    /* 220,000 bytes: several times a pipe's buffer. */
    char *const many[] = {"/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo 0123456789; "
                                          "i=$((i+1)); done; echo tail >&2; exit 4", NULL};
    berth__spawn_options_t o = {.capture = BERTH__SPAWN_CAPTURE_STDOUT |
                                           BERTH__SPAWN_CAPTURE_STDERR};
    assert_int_equal(berth__spawn_run_alloc(many, &o, 20000, 1u << 20, &out, &res), 0);
    assert_int_equal(res.exit_status, 4);
    assert_non_null(out);
    assert_int_equal(res.output_len, 220005);
    assert_int_equal(strlen(out), 220005);
    assert_memory_equal(out, "0123456789\n0123456789\n", 22);
    assert_string_equal(out + 220000, "tail\n");
    free(out);

    /* The bound: the first max_output bytes, NUL-terminated. */
    assert_int_equal(berth__spawn_run_alloc(many, &o, 20000, 15, &out, &res), 0);
    assert_int_equal(res.output_len, 15);
    assert_string_equal(out, "0123456789\n0123");
    free(out);

    /* No output, and a program that cannot run: an empty buffer all the same. */
    char *const quiet[] = {"/bin/true", NULL};
    assert_int_equal(berth__spawn_run_alloc(quiet, &o, 10000, 1024, &out, &res), 0);
    assert_string_equal(out, "");
    free(out);
    char *const missing[] = {"/nonexistent/berth-no-such-program", NULL};
    assert_int_equal(berth__spawn_run_alloc(missing, &o, 1000, 1024, &out, &res), -1);
    assert_non_null(out);
    assert_string_equal(out, "");
    assert_non_null(strstr(res.message, "cannot run"));
    free(out);
}

static void test_spawn_start_stop_reap(void **state)
{
    (void)state;
    char err[160];
    char *const sleeper[] = {"sleep", "30", NULL};
    pid_t pid = berth__spawn_start(sleeper, NULL, err, sizeof err);
    assert_true(pid > 0);
    assert_int_equal(berth__spawn_reap(pid, 50, NULL), -1);          /* still running */
    assert_int_equal(berth__spawn_stop(pid, SIGTERM, 5000), 0);
    assert_int_equal(berth__spawn_reap(pid, 50, NULL), 1);           /* gone already */

    /* A child that ignores SIGTERM is killed at the bound. */
    char *const stubborn[] = {"/bin/sh", "-c", "trap '' TERM; sleep 30", NULL};
    pid = berth__spawn_start(stubborn, NULL, err, sizeof err);
    assert_true(pid > 0);
    berth__clock_sleep_ms(100);                                      /* the trap is set */
    assert_int_equal(berth__spawn_stop(pid, SIGTERM, 200), 1);

    /* Output to a log file (appended), and a limit set in the child. */
    char log[] = "/tmp/berth-util-log-XXXXXX";
    int fd = mkstemp(log);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "before\n", 7), 7);
    close(fd);
    char *const logged[] = {"/bin/sh", "-c", "echo out; echo err >&2; ulimit -n >&2", NULL};
    berth__spawn_options_t lo = {.log_path = log, .log_stdout = true, .nofile = 64};
    pid = berth__spawn_start(logged, &lo, err, sizeof err);
    /* Valgrind keeps descriptors of its own high up and refuses the limit
     * in the (still emulated) child. */
    const char *preload = getenv("LD_PRELOAD");
    if (pid < 0 && preload != NULL && strstr(preload, "vgpreload") != NULL) {
        lo.nofile = 0;
        pid = berth__spawn_start(logged, &lo, err, sizeof err);
    }
    assert_true(pid > 0);
    assert_int_equal(berth__spawn_reap(pid, 10000, NULL), 0);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char text[128] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_int_equal(strncmp(text, "before\nout\nerr\n", 15), 0);
    if (lo.nofile != 0)
        assert_string_equal(text + 15, "64\n");
    unlink(log);

    char *const quick[] = {"/bin/sh", "-c", "exit 7", NULL};
    pid = berth__spawn_start(quick, NULL, err, sizeof err);
    assert_true(pid > 0);
    int status = 0;
    assert_int_equal(berth__spawn_reap(pid, 10000, &status), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 7);
}

/* ---- the redis-server launcher ----------------------------------------------------------- */

static void test_redis_server_start_stop(void **state)
{
    (void)state;
    char dir[] = "/tmp/berth-util-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sock[128], err[256];
    snprintf(sock, sizeof sock, "%s/redis.sock", dir);
    berth__redis_server_options_t o = {.dir = dir, .socket_path = sock,
                                       .appendfsync = "everysec", .death_signal = SIGKILL};
    pid_t pid = berth__redis_server_start(&o, 10000, err, sizeof err);
    if (pid < 0) {
        rmdir(dir);
        fail_msg("redis-server: %s", err);
    }
    assert_true(berth__redis_server_ping(sock, 0, 1000));
    assert_int_equal(berth__spawn_stop(pid, SIGTERM, 10000), 0);
    assert_false(berth__redis_server_ping(sock, 0, 200));

    /* A bad option: the server exits at start, and the reason says so. */
    berth__redis_server_options_t bad = o;
    bad.appendfsync = "sometimes";
    assert_int_equal(berth__redis_server_start(&bad, 10000, err, sizeof err), -1);
    assert_non_null(strstr(err, "exited at start"));

    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- random ------------------------------------------------------------------------------ */

static void test_random(void **state)
{
    (void)state;
    unsigned char a[64] = {0}, b[64] = {0};
    assert_int_equal(berth__random_bytes(a, sizeof a), 0);
    assert_int_equal(berth__random_bytes(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    assert_int_equal(berth__random_bytes(a, 0), 0);

    char hex[2 * 100 + 1];
    assert_int_equal(berth__random_hex(hex, 100), 0);               /* more than one chunk */
    assert_int_equal(strlen(hex), 200);
    assert_int_equal(strspn(hex, "0123456789abcdef"), 200);

    char u1[37], u2[37];
    assert_int_equal(berth__random_uuid(u1), 0);
    assert_int_equal(berth__random_uuid(u2), 0);
    assert_int_equal(strlen(u1), 36);
    assert_string_not_equal(u1, u2);
    assert_int_equal(u1[8], '-');
    assert_int_equal(u1[14], '4');
    assert_non_null(strchr("89ab", u1[19]));
}

/* ---- clocks ------------------------------------------------------------------------------ */

static void test_clock(void **state)
{
    (void)state;
    char buf[BERTH__CLOCK_ISO8601_SIZE];
    berth__clock_format_iso8601(1704161045123, buf, sizeof buf);
    assert_string_equal(buf, "2024-01-02T02:04:05.123Z");
    berth__clock_format_iso8601(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    berth__clock_format_iso8601(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    char small[11];
    berth__clock_format_iso8601(1704161045123, small, sizeof small);
    assert_string_equal(small, "2024-01-02");
    berth__clock_format_iso8601(0, NULL, 0);                         /* no crash */

    assert_true(berth__clock_wall_ms() > 1704161045123);
    int64_t t0 = berth__clock_monotonic_ms();
    berth__clock_sleep_ms(30);
    int64_t dt = berth__clock_monotonic_ms() - t0;
    assert_true(dt >= 30 && dt < 5000);
    berth__clock_sleep_ms(-5);                                       /* returns at once */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_round_trip_all_bytes),
        cmocka_unit_test(test_base64_bad_input),
        cmocka_unit_test(test_spawn_exit_status_and_output),
        cmocka_unit_test(test_spawn_timeout),
        cmocka_unit_test(test_spawn_failures),
        cmocka_unit_test(test_spawn_run_alloc),
        cmocka_unit_test(test_spawn_start_stop_reap),
        cmocka_unit_test(test_redis_server_start_stop),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
