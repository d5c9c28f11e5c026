/* log.c - levelled logging; see log.h. */
#include "log.h"

#include <ctype.h>
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
enum log_level log_get_level(void) { return (enum log_level)log_level_; }

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

/* Masks the value that follows a secret-looking key up to the next quote,
 * comma, space or '&'. Good enough for echoed error bodies and URLs. */
static size_t mask_after_key(const char *src, size_t i, size_t srclen)
{
    while (i < srclen && (src[i] == '"' || src[i] == ':' || src[i] == '=' ||
                          src[i] == ' '))
        i++;
    while (i < srclen && src[i] != '"' && src[i] != ',' && src[i] != '&' &&
           src[i] != ' ' && src[i] != '}')
        i++;
    return i;
}

char *log_redact(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    static const char *const keys[] = { "bearer", "password", "token", "secret" };
    size_t o = 0;
    if (dstlen == 0) return dst;
    for (size_t i = 0; i < srclen && o + 1 < dstlen;) {
        size_t skip = 0;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            size_t kl = strlen(keys[k]);
            if (i + kl <= srclen && strncasecmp(src + i, keys[k], kl) == 0) {
                skip = kl;
                break;
            }
        }
        if (skip) {
            for (size_t j = 0; j < skip && o + 1 < dstlen; j++) dst[o++] = src[i + j];
            size_t end = mask_after_key(src, i + skip, srclen);
            const char *mask = "=***";
            for (const char *m = mask; *m && o + 1 < dstlen; m++) dst[o++] = *m;
            i = end;
            continue;
        }
        unsigned char c = (unsigned char)src[i++];
        dst[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    dst[o] = '\0';
    return dst;
}
