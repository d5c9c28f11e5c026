/* faults.h - fault injection for /connected/v1 requests: random 500/503
 * errors, added latency, a fixed-window rate limit answered with 429 and
 * Retry-After, and truncated 200 bodies. Thread-safe (own mutex).
 */
#ifndef SIM_FAULTS_H
#define SIM_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fault_config {
    double error_rate;      /* 0..1: probability of a 500 or 503 */
    int latency_ms;         /* 0..60000 added before every response */
    int rate_limit;         /* requests per window; 0 = unlimited */
    int rate_window;        /* seconds, >= 1 */
    double truncate_rate;   /* 0..1: probability a 200 body is cut in half */
    int token_ttl;          /* seconds, for access tokens the token endpoint issues */
};

enum fault_kind { FAULT_NONE, FAULT_RATE_LIMITED, FAULT_500, FAULT_503 };

struct fault_decision {
    int latency_ms;
    enum fault_kind kind;
    int retry_after;        /* seconds, for FAULT_RATE_LIMITED and FAULT_503 */
    bool truncate;
};

struct faults;

/* Returns a new fault injector (free with faults_free) or NULL. */
struct faults *faults_new(const struct fault_config *cfg, uint64_t seed);
void faults_free(struct faults *f);
void faults_get(struct faults *f, struct fault_config *out);
void faults_set(struct faults *f, const struct fault_config *cfg);

/* Decides what happens to one request arriving at monotonic time now
 * (seconds). Counts it against the rate limit unless it is rejected. */
void faults_decide(struct faults *f, double now, struct fault_decision *out);

/* Applies a JSON object {error_rate, latency_ms, rate_limit, rate_window,
 * truncate_rate, token_ttl, revoke_tokens} (every member optional) onto cfg.
 * Pure. Returns 0, or -1 with err naming the bad field (cfg untouched). */
int faults_parse_update(const char *body, size_t len, struct fault_config *cfg,
                        bool *revoke_tokens, char *err, size_t errlen);

/* Checks ranges; returns 0 or -1 with err set. */
int faults_check(const struct fault_config *cfg, char *err, size_t errlen);

#endif
