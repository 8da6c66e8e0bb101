/*
 * common.h: what Berth's runtime plugins share (never part of libberth).
 *
 * Naming.  A plugin names everything it creates for a group after the
 * group's runtime id, 16 lowercase hex digits of FNV-1a 64 over
 * "<host>\0<key>", so that two hosts sharing one engine (tests, one machine
 * posing as several) never collide and names stay within every runtime's
 * character rules whatever the group key holds.
 *
 * Labels (Docker and Podman) / annotations (runc) tie a runtime object to
 * its group:
 *   io.berth.host        the host name the agent serves
 *   io.berth.key         the group's key in the cell
 *   io.berth.generation  the record's generation, decimal
 *   io.berth.digest      berth_runtime_digest() of the document, 16 hex
 *   io.berth.role        "sandbox", "init" or "container"
 *   io.berth.container   the container's name in the document
 *   io.berth.index       the container's position within its role, decimal
 */
#ifndef BERTH_PLUGIN_COMMON_H
#define BERTH_PLUGIN_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth-plugin.h"

#define PLUGIN_LABEL_HOST "io.berth.host"
#define PLUGIN_LABEL_KEY "io.berth.key"
#define PLUGIN_LABEL_GENERATION "io.berth.generation"
#define PLUGIN_LABEL_DIGEST "io.berth.digest"
#define PLUGIN_LABEL_ROLE "io.berth.role"
#define PLUGIN_LABEL_CONTAINER "io.berth.container"
#define PLUGIN_LABEL_INDEX "io.berth.index"

#define PLUGIN_ID_LEN 16

/* Writes the group's runtime id (PLUGIN_ID_LEN hex digits and a NUL) to id. */
void plugin_group_id(const char *host, const char *key, char id[PLUGIN_ID_LEN + 1]);

/* Parses an RFC 3339 time ("2024-01-02T03:04:05.123456789Z", any offset)
 * into milliseconds since the epoch; 0 for "0001-01-01T00:00:00Z" (Docker's
 * "never"), an empty string or anything unparsable. */
int64_t plugin_time_parse(const char *s);

/* Keeps the last `tail` lines of text[0..*len) (0: all), moving them to the
 * front and updating *len. */
void plugin_tail_lines(char *text, size_t *len, uint32_t tail);

/* Creates directory `path` and its missing parents with `mode`.  Returns 0
 * or -errno. */
int plugin_mkdir_p(const char *path, unsigned mode);

/* Removes `path` and everything under it (no symlink is followed).
 * Removing what does not exist succeeds.  Returns 0 or -errno. */
int plugin_remove_tree(const char *path);

#endif /* BERTH_PLUGIN_COMMON_H */
