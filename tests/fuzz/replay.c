/*
 * replay.c: a plain driver for Berth's fuzz targets, without libFuzzer.
 *
 *   replay-<target> PATH...
 *
 * Feeds LLVMFuzzerTestOneInput() every regular file of each PATH (a file,
 * or a directory read in name order, not recursively), each in a buffer of
 * exactly its size so that AddressSanitizer sees a read past its end.
 * Prints the name of each file before running it (on stderr, so that the
 * last name before a crash is the culprit) only with -v; always prints a
 * count per PATH.  Exits 0 when every input ran, 1 when a PATH cannot be
 * read; a broken invariant or a sanitizer report aborts.
 *
 * Limits, as the fuzzers have them (tests/fuzz.sh): one input may take 10
 * seconds (SIGALRM, then abort naming the file), and outside
 * AddressSanitizer (which reserves terabytes of address space) the process
 * 4 GiB of address space, so that an input making the code under test
 * allocate gigabytes fails here too instead of passing on overcommit.
 *
 * Built and run by "make check" (tests/test_fuzz_replay.sh) with the
 * project's compiler and flags, so the corpora and regressions are replayed
 * in the normal and the sanitizer builds alike.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#if defined(__SANITIZE_ADDRESS__)
#define REPLAY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REPLAY_ASAN 1
#endif
#endif

#define REPLAY_SECONDS 10           /* per input, as fuzz.sh's -timeout=10  */
#define REPLAY_ADDRESS_SPACE (4ull << 30)

static bool verbose;
static const char *volatile current;  /* the input running, for on_alarm() */

static void on_alarm(int sig)
{
    static const char msg[] = "replay: an input ran longer than the limit: ";
    const char *name = current ? current : "?";
    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0 || write(2, name, strlen(name)) < 0 ||
        write(2, "\n", 1) < 0)
        abort();
    abort();
}

/* Reads `path` into a new buffer of exactly its size (1 byte allocated for
 * an empty file, size 0 reported).  Returns NULL with errno set on failure. */
static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL || fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        errno = EIO;
        return NULL;
    }
    fclose(f);
    *size = n;
    return buf;
}

/* Runs one file; returns 0 or -1 (message printed). */
static int run_file(const char *path)
{
    size_t size = 0;
    uint8_t *data = read_file(path, &size);
    if (data == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (verbose)
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
    current = path;
    alarm(REPLAY_SECONDS);
    LLVMFuzzerTestOneInput(data, size);
    alarm(0);
    current = NULL;
    free(data);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Runs every regular file of directory `dir`; returns the count or -1. */
static long run_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    long count = 0;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        if (rc == 0 && names[i]->d_name[0] != '.' &&
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name) < (int)sizeof path &&
            stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) < 0)
                rc = -1;
            else
                count++;
        }
        free(names[i]);
    }
    free(names);
    return rc < 0 ? -1 : count;
}

int main(int argc, char **argv)
{
    int status = 0, first = 1;
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        verbose = true;
        first = 2;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: %s [-v] FILE-OR-DIRECTORY...\n", argv[0]);
        return 2;
    }
    signal(SIGALRM, on_alarm);
#ifndef REPLAY_ASAN
    struct rlimit as = {REPLAY_ADDRESS_SPACE, REPLAY_ADDRESS_SPACE};
    if (setrlimit(RLIMIT_AS, &as) != 0)
        perror("replay: setrlimit(RLIMIT_AS)");
#endif
    for (int i = first; i < argc; i++) {
        struct stat st;
        long count;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            status = 1;
            continue;
        }
        if (S_ISDIR(st.st_mode))
            count = run_dir(argv[i]);
        else
            count = run_file(argv[i]) < 0 ? -1 : 1;
        if (count < 0)
            status = 1;
        else
            printf("replayed %ld input%s from %s\n", count, count == 1 ? "" : "s", argv[i]);
    }
    return status;
}
