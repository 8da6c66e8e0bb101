/*
 * output.c: berth-bench's results as JSON lines and CSV rows (output.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "output.h"

static const char *csv_dir;

void bench_output_csv_dir(const char *dir)
{
    csv_dir = dir;
}

/* Writes one CSV cell: numbers and booleans as they are, strings quoted
 * when they hold a comma, quote or newline, null as nothing. */
static void csv_cell(FILE *f, json_t *v)
{
    if (v == NULL || json_is_null(v))
        return;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strpbrk(s, ",\"\n") == NULL) {
            fputs(s, f);
            return;
        }
        fputc('"', f);
        for (; *s != '\0'; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
        return;
    }
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
    if (text != NULL)
        fputs(text, f);
    free(text);
}

/* Reads the header line of an existing CSV file into a JSON array of
 * names (NULL when the file is new or empty). */
static json_t *header_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char line[8192];
    json_t *names = NULL;
    if (fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        names = json_array();
        for (char *save = NULL, *tok = strtok_r(line, ",", &save); tok != NULL;
             tok = strtok_r(NULL, ",", &save))
            json_array_append_new(names, json_string(tok));
    }
    fclose(f);
    return names;
}

static int csv_append(json_t *row)
{
    const char *bench = json_string_value(json_object_get(row, "bench"));
    if (csv_dir == NULL || bench == NULL)
        return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.csv", csv_dir, bench);
    json_t *names = header_read(path);
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        json_decref(names);
        return -1;
    }
    if (names == NULL) {
        names = json_array();
        const char *k;
        json_t *v;
        size_t i = 0;
        json_object_foreach(row, k, v) {
            fprintf(f, "%s%s", i++ ? "," : "", k);
            json_array_append_new(names, json_string(k));
        }
        fputc('\n', f);
    }
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name) {
        if (i > 0)
            fputc(',', f);
        csv_cell(f, json_object_get(row, json_string_value(name)));
    }
    fputc('\n', f);
    json_decref(names);
    return fclose(f) == 0 ? 0 : -1;
}

int bench_emit(json_t *row)
{
    if (row == NULL)
        return -1;
    char *text = json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (text != NULL) {
        puts(text);
        fflush(stdout);
    }
    free(text);
    int rc = csv_append(row);
    json_decref(row);
    return rc;
}
