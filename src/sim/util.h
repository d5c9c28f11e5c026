/* util.h - small pure helpers shared by the simulator's modules: a seeded
 * PRNG (splitmix64), UUID-looking identifiers, ISO 8601 UTC time formatting
 * and YYYY-MM-DD date parsing. No I/O, no global state.
 */
#ifndef SIM_UTIL_H
#define SIM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A splitmix64 generator: the whole state is one 64-bit word. */
struct rng {
    uint64_t s;
};

/* Seeds r from a seed and a stream number, so independent streams (one per
 * vehicle, one for faults, ...) come from one --seed. */
void util_rng_seed(struct rng *r, uint64_t seed, uint64_t stream);
uint64_t util_rng_next(struct rng *r);
/* Uniform integer in [lo, hi] (inclusive); returns lo when hi < lo. */
int64_t util_rng_range(struct rng *r, int64_t lo, int64_t hi);
/* Uniform double in [0, 1). */
double util_rng_unit(struct rng *r);

#define UTIL_UUID_LEN 37   /* 36 characters and the NUL */
/* Writes a version-4-looking UUID drawn from r into out. */
void util_uuid(struct rng *r, char out[UTIL_UUID_LEN]);

#define UTIL_TIME_LEN 32
/* Formats t (seconds since the epoch) as "YYYY-MM-DDTHH:MM:SSZ" into out. */
void util_iso_time(int64_t t, char out[UTIL_TIME_LEN]);
/* Formats the UTC date of t as "YYYY-MM-DD" into out (11 bytes at least). */
void util_iso_date(int64_t t, char *out, size_t outlen);

/* Days since 1970-01-01 of a proleptic Gregorian date. */
int64_t util_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Parses exactly "YYYY-MM-DD" (a real calendar date, year 1970..9999) into
 * days since the epoch. Returns 0, or -1 when s is anything else. */
int util_parse_date(const char *s, int64_t *days);

/* Rounds x to the given number of decimals (0..9), so printed numbers are
 * short and stable. */
double util_round(double x, int decimals);

/* Great-circle distance in miles between two points given in degrees. */
double util_miles(double lat1, double lon1, double lat2, double lon2);

/* Copies src into dst (always NUL-terminated, truncating). */
void util_copy(char *dst, size_t dstlen, const char *src);

/* Number of code points in s[0..n) when it is valid UTF-8 (no overlong
 * forms, no surrogates, nothing past U+10FFFF), else -1. */
long util_utf8_length(const char *s, size_t n);
/* Replaces, in place, every byte of s that does not start a valid UTF-8
 * sequence with '?', so s can go into JSON text. */
void util_utf8_sanitize(char *s);

#endif
