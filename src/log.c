/* log.c - levelled logging; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The level is set once at start-up (or on SIGHUP) by the main thread and
 * only read elsewhere; a torn read of an int is not possible on our targets. */
static volatile int log_level_ = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_set_level(enum log_level level) { log_level_ = (int)level; }

int log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (name && strcasecmp(name, level_names[i]) == 0) return (int)i;
    return -1;
}

void log_msg(enum log_level level, const char *vin, const char *res,
             const char *fmt, ...)
{
    if ((int)level > log_level_) return;
    char line[2048];
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(line, sizeof line, "%s %-5s ", ts, level_names[level]);
    if (n < 0) return;
    if (vin || res) {
        n += snprintf(line + n, sizeof line - (size_t)n, "[%s%s%s%s] ",
                      vin ? "vin=" : "", vin ? vin : "",
                      (vin && res) ? " res=" : (res ? "res=" : ""), res ? res : "");
    }
    if ((size_t)n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    /* One event, one line: a message must not smuggle in a newline. */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
}
