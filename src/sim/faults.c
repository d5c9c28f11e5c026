/* faults.c - see faults.h. */
#include "faults.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util.h"

struct faults {
    pthread_mutex_t lock;
    struct fault_config cfg;
    struct rng rng;
    double window_start;
    int window_count;
};

struct faults *faults_new(const struct fault_config *cfg, uint64_t seed)
{
    struct faults *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    if (pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f);
        return NULL;
    }
    f->cfg = *cfg;
    util_rng_seed(&f->rng, seed, 0xFA017ULL);
    f->window_start = -1e18;
    return f;
}

void faults_free(struct faults *f)
{
    if (!f)
        return;
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void faults_get(struct faults *f, struct fault_config *out)
{
    pthread_mutex_lock(&f->lock);
    *out = f->cfg;
    pthread_mutex_unlock(&f->lock);
}

void faults_set(struct faults *f, const struct fault_config *cfg)
{
    pthread_mutex_lock(&f->lock);
    f->cfg = *cfg;
    f->window_start = -1e18;
    f->window_count = 0;
    pthread_mutex_unlock(&f->lock);
}

void faults_decide(struct faults *f, double now, struct fault_decision *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&f->lock);
    out->latency_ms = f->cfg.latency_ms;
    if (f->cfg.rate_limit > 0) {
        if (now >= f->window_start + f->cfg.rate_window) {
            f->window_start = now;
            f->window_count = 0;
        }
        if (f->window_count >= f->cfg.rate_limit) {
            out->kind = FAULT_RATE_LIMITED;
            out->retry_after = (int)ceil(f->window_start + f->cfg.rate_window - now);
            if (out->retry_after < 1)
                out->retry_after = 1;
            pthread_mutex_unlock(&f->lock);
            return;
        }
        f->window_count++;
    }
    if (f->cfg.error_rate > 0 && util_rng_unit(&f->rng) < f->cfg.error_rate) {
        out->kind = util_rng_next(&f->rng) % 2 ? FAULT_503 : FAULT_500;
        out->retry_after = 1;
    }
    if (f->cfg.truncate_rate > 0 && util_rng_unit(&f->rng) < f->cfg.truncate_rate)
        out->truncate = true;
    pthread_mutex_unlock(&f->lock);
}

int faults_check(const struct fault_config *c, char *err, size_t errlen)
{
    if (!(c->error_rate >= 0 && c->error_rate <= 1))
        snprintf(err, errlen, "error_rate: must be a number from 0 to 1");
    else if (!(c->truncate_rate >= 0 && c->truncate_rate <= 1))
        snprintf(err, errlen, "truncate_rate: must be a number from 0 to 1");
    else if (c->latency_ms < 0 || c->latency_ms > 60000)
        snprintf(err, errlen, "latency_ms: must be an integer from 0 to 60000");
    else if (c->rate_limit < 0 || c->rate_limit > 1000000)
        snprintf(err, errlen, "rate_limit: must be an integer from 0 to 1000000");
    else if (c->rate_window < 1 || c->rate_window > 86400)
        snprintf(err, errlen, "rate_window: must be an integer from 1 to 86400");
    else if (c->token_ttl < 1 || c->token_ttl > 31536000)
        snprintf(err, errlen, "token_ttl: must be an integer from 1 to 31536000");
    else
        return 0;
    return -1;
}

/* Reads member name of o as a number into *out when present. integral asks
 * for a whole number. Returns 0, or -1 with err set. */
static int get_num(const cJSON *o, const char *name, bool integral, double *out, char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it)
        return 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
        (integral && (it->valuedouble != floor(it->valuedouble) || fabs(it->valuedouble) > 1e9))) {
        snprintf(err, errlen, "%s: must be %s", name, integral ? "an integer" : "a number");
        return -1;
    }
    *out = it->valuedouble;
    return 0;
}

int faults_parse_update(const char *body, size_t len, struct fault_config *cfg,
                        bool *revoke_tokens, char *err, size_t errlen)
{
    static const char *const known[] = {"error_rate", "latency_ms", "rate_limit", "rate_window",
                                        "truncate_rate", "token_ttl", "revoke_tokens"};
    *revoke_tokens = false;
    cJSON *o = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "body: must be a JSON object");
        cJSON_Delete(o);
        return -1;
    }
    for (const cJSON *it = o->child; it; it = it->next) {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            ok |= it->string && strcmp(it->string, known[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "unknown property \"%.64s\"", it->string ? it->string : "");
            cJSON_Delete(o);
            return -1;
        }
    }
    struct fault_config c = *cfg;
    double lat = c.latency_ms, rl = c.rate_limit, rw = c.rate_window, ttl = c.token_ttl;
    int rc = 0;
    if (get_num(o, "error_rate", false, &c.error_rate, err, errlen) ||
        get_num(o, "truncate_rate", false, &c.truncate_rate, err, errlen) ||
        get_num(o, "latency_ms", true, &lat, err, errlen) ||
        get_num(o, "rate_limit", true, &rl, err, errlen) ||
        get_num(o, "rate_window", true, &rw, err, errlen) ||
        get_num(o, "token_ttl", true, &ttl, err, errlen))
        rc = -1;
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(o, "revoke_tokens");
    if (rc == 0 && rv) {
        if (!cJSON_IsBool(rv)) {
            snprintf(err, errlen, "revoke_tokens: must be a boolean");
            rc = -1;
        } else {
            *revoke_tokens = cJSON_IsTrue(rv);
        }
    }
    cJSON_Delete(o);
    if (rc != 0)
        return -1;
    c.latency_ms = (int)lat;
    c.rate_limit = (int)rl;
    c.rate_window = (int)rw;
    c.token_ttl = (int)ttl;
    if (faults_check(&c, err, errlen) != 0)
        return -1;
    *cfg = c;
    return 0;
}
