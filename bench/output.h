/*
 * output.h: berth-bench's results, one per line: a JSON object on stdout
 * and, when a CSV directory is set, a row of <dir>/<bench>.csv.
 *
 * Every result is a flat JSON object whose "bench" member names the
 * scenario ("incore", "redis", "api", "quality", "redeploy" ...); members
 * hold numbers, strings, booleans or null.  The CSV file of a scenario
 * gets a header line (the members of its first result, in order) when the
 * file is created; later rows follow that header (a member a row lacks is
 * an empty cell; a member the header lacks is left out of the CSV, never
 * out of the JSON).
 */
#ifndef BERTH_BENCH_OUTPUT_H
#define BERTH_BENCH_OUTPUT_H

#include <jansson.h>

/* Sets the directory for CSV files (NULL: JSON lines only).  The
 * directory must exist.  Call before the first bench_emit(). */
void bench_output_csv_dir(const char *dir);

/* Prints `row` (a flat object with a string "bench") as one JSON line on
 * stdout, appends it to its CSV file, and frees it.  Returns 0, or -1 when
 * a file could not be written (the JSON line is still printed). */
int bench_emit(json_t *row);

#endif /* BERTH_BENCH_OUTPUT_H */
