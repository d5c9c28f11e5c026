/* reqlog.h - the --request-log file: one JSON object per request and line,
 * {"method","path","query","body","status"}, flushed at once so tests can
 * read it while the simulator runs. Thread-safe.
 */
#ifndef SIM_REQLOG_H
#define SIM_REQLOG_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct reqlog;

/* Opens path for appending. Returns NULL (errno set) on failure; close with
 * reqlog_close(). */
struct reqlog *reqlog_open(const char *path);
void reqlog_close(struct reqlog *l);

/* Appends one line. query is an object of the query parameters (borrowed,
 * may be NULL); body is logged parsed when it is JSON, else as null. */
void reqlog_write(struct reqlog *l, const char *method, const char *path, const cJSON *query,
                  const char *body, size_t len, int status);

#endif
