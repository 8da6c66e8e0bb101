/*
 * fuzz.h: what Berth's fuzz targets share -- the libFuzzer entry point's
 * prototype and a check that stops the run on a broken invariant.
 *
 * Each target (fuzz_document.c, fuzz_record.c, fuzz_request.c) defines
 * LLVMFuzzerTestOneInput() and nothing else with external linkage.  It is
 * linked two ways: with clang's libFuzzer by tests/fuzz.sh, and with
 * replay.c by "make check", which feeds it every saved input.
 */
#ifndef BERTH_FUZZ_H
#define BERTH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs one input of `size` bytes at `data` (never NULL, not NUL-terminated).
 * Returns 0; a broken invariant aborts (FUZZ_CHECK), and the sanitizers
 * report memory errors themselves. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with the failed condition when `cond` is false: libFuzzer saves
 * the input as a crash, replay.c names the file. */
#define FUZZ_CHECK(cond)                                                             \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,     \
                    #cond);                                                          \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#endif /* BERTH_FUZZ_H */
