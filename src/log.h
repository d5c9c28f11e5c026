/* log.h - levelled logging, one line per event, to stderr.
 *
 * Lines look like "2026-11-27T04:50:00Z warn  [vin=JT... res=status] text".
 * Callers never pass secrets: text from the network reaches a log line only
 * through parsers that pick out a message field (api_error_message()).
 */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the most verbose level printed (default LOG_INFO). */
void log_set_level(enum log_level level);

/* "error", "warn", "info", "debug" -> level; returns -1 for anything else. */
int log_level_parse(const char *name);

/* Prints one line if level is enabled. vin and res may be NULL. Thread-safe
 * (one fprintf per line). */
void log_msg(enum log_level level, const char *vin, const char *res,
             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_error(...) log_msg(LOG_ERROR, NULL, NULL, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, NULL, NULL, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, NULL, NULL, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, NULL, NULL, __VA_ARGS__)

#endif
