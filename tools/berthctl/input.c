/*
 * input.c: what berthctl reads from the user: whole files (an inventory,
 * a groups file, a container-group document, "-" for stdin), the options
 * on its command line (one step of getopt_long) and the numbers they take.
 *
 * It only reads: it never writes a file, and a document it reads may hold
 * secrets, so it never echoes a file's contents in an error (names, line
 * numbers and the parser's message only).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berthctl.h"

#define FILE_MAX ((size_t)BERTH_DOCUMENT_MAX)

/* ---- files ------------------------------------------------------------------------ */

/* Reads a whole file into a new NUL-terminated buffer (free with free()).
 * Returns 0, or an errno value. */
int berthctl_read_file(const char *path, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf != NULL) {
        if (cap - n < 2) {
            char *grown = realloc(buf, cap * 2);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (buf == NULL)
        rc = ENOMEM;
    else if (ferror(f))
        rc = errno != 0 ? errno : EIO;
    fclose(f);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* Prints an inventory error with every violation, naming the file. */
void berthctl_report_hosts_error(const char *path, const berth_error_t *err)
{
    fprintf(stderr, "berthctl: hosts file '%s' is invalid: %s%s%s%s\n", path, err->message,
            err->target[0] ? " (at " : "", err->target, err->target[0] ? ")" : "");
    size_t n = err->ndetails < BERTH_ERROR_DETAILS_MAX ? err->ndetails : BERTH_ERROR_DETAILS_MAX;
    for (size_t i = 1; i < n; i++) {
        const berth_error_detail_t *d = &err->details[i];
        fprintf(stderr, "berthctl:   also: %s%s%s%s\n", d->message, d->target[0] ? " (at " : "",
                d->target, d->target[0] ? ")" : "");
    }
    if (err->ndetails > n)
        fprintf(stderr, "berthctl:   and %zu more\n", err->ndetails - n);
}

/* Reads a whole file ("-": stdin) of at most FILE_MAX bytes into *out
 * (free() it).  Returns 0, or the exit status with the reason printed. */
int berthctl_read_input(const char *path, char **out)
{
    *out = NULL;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL)
        return berthctl_usage_error("cannot open '%s': %s", path, strerror(errno));
    char *buf = malloc(FILE_MAX + 2);
    if (buf == NULL) {
        if (f != stdin)
            fclose(f);
        return berthctl_out_of_memory();
    }
    size_t n = fread(buf, 1, FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    if (f != stdin)
        fclose(f);
    if (bad || n > FILE_MAX) {
        free(buf);
        return berthctl_usage_error("cannot read '%s': %s", path,
                                    bad ? "read error" : "larger than 1 MiB");
    }
    buf[n] = '\0';
    *out = buf;
    return BERTHCTL_EXIT_OK;
}

/* ---- options ---------------------------------------------------------------------- */

/* Contract (berthctl.h). */
int berthctl_option_next(int argc, char **argv, const char *short_options,
                         const struct option *long_options, const char **arg)
{
    *arg = optind < argc ? argv[optind] : NULL;
    /* berthctl's parsers have always read "--" as an unknown argument, not
     * as the end of the options. */
    if (*arg != NULL && strcmp(*arg, "--") == 0) {
        optind++;
        return '?';
    }
    return getopt_long(argc, argv, short_options, long_options, NULL);
}

/* ---- numbers ---------------------------------------------------------------------- */

/* Contract (berthctl.h). */
bool berthctl_parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Parses a non-negative decimal count (digits only, up to max) into *out.
 * Returns false, *out untouched, when s is not one. */
bool berthctl_parse_count(const char *s, long max, long *out)
{
    return s != NULL && isdigit((unsigned char)*s) && berthctl_parse_long(s, 0, max, out);
}

/* Parses a positive finite decimal quantity into *out.  Returns false,
 * *out untouched, when s is not one. */
bool berthctl_parse_quantity(const char *s, double *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v <= 0)
        return false;
    *out = v;
    return true;
}
