/* poller.c - the polling half of the main loop; see poller.h.
 *
 * Each (vehicle, resource) slot has its own due time. A request is started
 * when its slot is due; its completion callback publishes the result (or
 * schedules a retry with backoff) and sets the next due time. A failing slot
 * never holds up another one.
 */
#include "poller.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "http.h"
#include "log.h"
#include "publish.h"
#include "sync.h"

#define TRIPS_PAGE 50
#define BACKOFF_BASE_S 10.0
#define BACKOFF_MAX_S 3600.0
/* A vehicle whose fetches keep failing is offline for its availability
 * (sync.c uses the same number). */
#define VEHICLE_OFFLINE_AFTER 3
/* After this many consecutive failed fetches of a vehicle its circuit
 * breaker opens: one probe request at a time, at growing intervals of at
 * least BREAKER_MIN_S (or the fastest poll interval), until it answers. */
#define BREAKER_AFTER 8
#define BREAKER_MIN_S 20.0
/* A resource failing this many times in a row is reported on bridge/error. */
#define PROBLEM_AFTER 3

enum req_kind { REQ_VEHICLES, REQ_RESOURCE, REQ_TRIPS };
/* OUT_ABSENT: a 404 on an optional resource. Neither success nor failure
 * for the vehicle: an API that says "not found" to everything (a vehicle
 * gone from the account) must still open the circuit breaker. */
enum outcome { OUT_OK, OUT_ABSENT, OUT_FAIL, OUT_RATE_LIMITED };

/* What a request's callback needs; the vehicle is found again by VIN since
 * the vehicle table may have changed while the request ran. */
struct preq {
    struct bridge *b;
    enum req_kind kind;
    enum resource r;
    char vin[API_VIN_LEN + 1];
    int offset;
    bool retried_auth;
    unsigned auth_gen;        /* b->auth_gen when it was sent */
};

void poller_date(char out[11], time_t t, int days)
{
    t += (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/* +-20% so that many slots failing together (the cloud is down) do not
 * retry in lockstep. */
static double jitter(double d)
{
    return d * (0.8 + 0.4 * ((double)rand() / RAND_MAX));
}

/* Exponential backoff: BACKOFF_BASE_S doubling per consecutive failure,
 * capped; the first two retries are never later than the normal interval.
 * A Retry-After header is a floor: a 503 saying "1" does not make us hammer. */
static double backoff(int failures, int interval, long retry_after_s)
{
    double d = BACKOFF_BASE_S * pow(2.0, failures > 13 ? 12 : (failures < 1 ? 0 : failures - 1));
    if (d > BACKOFF_MAX_S) d = BACKOFF_MAX_S;
    if (failures < 3 && interval > 0 && d > interval) d = interval;
    d = jitter(d);
    if (retry_after_s >= 0 && d < (double)retry_after_s + 1.0) d = (double)retry_after_s + 1.0;
    return d;
}

static int fastest_interval(const struct bridge *b)
{
    int best = 0;
    for (int r = 0; r < RES_COUNT; r++)
        if (b->cfg->poll.interval[r] > 0 && (best == 0 || b->cfg->poll.interval[r] < best))
            best = b->cfg->poll.interval[r];
    return best;
}

/* The n-th probe delay of an open circuit breaker (n from 0). */
static double probe_delay(const struct bridge *b, int n)
{
    double base = fastest_interval(b);
    if (base < BREAKER_MIN_S) base = BREAKER_MIN_S;
    double d = base * pow(2.0, n > 12 ? 12 : n);
    return jitter(d > BACKOFF_MAX_S ? BACKOFF_MAX_S : d);
}

static void on_response(void *ud, const struct http_response *resp);

static int start_req(struct bridge *b, struct preq *q)
{
    char path[512];
    struct vehicle *v = q->kind == REQ_VEHICLES ? NULL : bridge_vehicle(b, q->vin);
    if (q->kind == REQ_VEHICLES) {
        snprintf(path, sizeof path, "/vehicles");
    } else if (!v) {
        return -1;
    } else if (q->kind == REQ_TRIPS) {
        if (api_trips_path(path, sizeof path, q->vin, v->trips_from, v->trips_to, TRIPS_PAGE,
                           q->offset, b->cfg->trips.include_route) != 0)
            return -1;
    } else if (api_resource_path(path, sizeof path, q->vin, q->r) != 0) {
        return -1;
    }
    char url[1024], auth[CONFIG_SECRET + 32];
    int n = snprintf(url, sizeof url, "%s%s", b->cfg->api.base_url, path);
    if (n < 0 || (size_t)n >= sizeof url) return -1;
    bridge_auth_header(b, auth, sizeof auth);
    const char *headers[] = { auth, "Accept: application/json", NULL };
    q->auth_gen = b->auth_gen;
    int rc = http_request(b->http, "GET", url, headers, NULL, on_response, q);
    memset(auth, 0, sizeof auth);
    if (rc == 0) bridge_count_vehicle_call(b, q->kind == REQ_VEHICLES ? NULL : q->vin, false);
    return rc;
}

/* The resource a vehicle's open circuit breaker probes with: the first one
 * polled that the vehicle has; -1 when none. */
static int probe_resource(const struct bridge *b, const struct vehicle *v)
{
    for (int r = 0; r < RES_COUNT; r++)
        if (b->cfg->poll.interval[r] > 0 && !v->slot[r].absent) return r;
    return -1;
}

static void breaker_open(struct bridge *b, struct vehicle *v)
{
    v->breaker_open = true;
    v->probes = 0;
    v->probe_res = -1;
    v->probe_due = bridge_now() + probe_delay(b, 0);
    log_msg(LOG_WARN, v->info.vin, NULL, "%d fetches in a row failed: polling the vehicle "
            "rarely (one probe, first in %.0f s) until it answers", v->failures,
            v->probe_due - bridge_now());
}

/* The vehicle answered after an outage: every resource that failed (all of
 * them, after the circuit breaker) is polled again at once on a fresh
 * backoff, rather than at the end of a long one; a request still in flight
 * from the outage may yet fail, and then starts from one failure. */
static void vehicle_recovered(struct vehicle *v)
{
    for (int r = 0; r < RES_COUNT; r++) {
        struct slot *s = &v->slot[r];
        if (!v->breaker_open && s->failures == 0) continue;
        s->failures = 0;
        if (!s->inflight && s->due != INFINITY) s->due = 0;
    }
    log_msg(LOG_INFO, v->info.vin, NULL, "the vehicle answers again: polling resumes");
    v->breaker_open = false;
    v->probes = 0;
    v->probe_res = -1;
}

/* Finishes a slot: schedules its next poll. A 429 is the account's problem,
 * not the vehicle's: it counts for the slot's backoff only. */
static void slot_done(struct bridge *b, struct vehicle *v, enum resource r, enum outcome o,
                      long retry_after_s)
{
    struct slot *s = &v->slot[r];
    int interval = b->cfg->poll.interval[r];
    bool probe = v->breaker_open && v->probe_res == (int)r;
    double now = bridge_now();
    s->inflight = false;
    s->auth_retry = false;
    if (probe) v->probe_res = -1;
    if (o == OUT_ABSENT) {
        s->failures = 0;
        s->error_logged = false;
    } else if (o == OUT_OK) {
        bool was_down = v->breaker_open || v->failures >= VEHICLE_OFFLINE_AFTER;
        if (s->error_logged && s->failures > 0)
            log_msg(LOG_INFO, v->info.vin, resource_get(r)->name, "fetched again after %d failed "
                    "attempt%s", s->failures, s->failures == 1 ? "" : "s");
        else if (s->error_logged)
            log_msg(LOG_INFO, v->info.vin, resource_get(r)->name, "fetched again");
        s->failures = 0;
        s->error_logged = false;
        s->fetched = true;
        v->failures = 0;
        v->last_ok = now;
        v->last_error[0] = '\0';
        if (was_down && !b->once) vehicle_recovered(v);
    } else {
        /* A resource that keeps failing while another one of the vehicle
         * works (too large, say) is that resource's problem, not an outage:
         * the vehicle stays online and its breaker closed. */
        if (++s->failures == 1) s->failing_since = now;
        if (o == OUT_FAIL && v->last_ok <= s->failing_since && v->failures < 1000000) v->failures++;
        if (b->once) b->once_errors++;
    }
    if (b->once) {
        s->due = INFINITY;
    } else if (o == OUT_OK || o == OUT_ABSENT || s->absent) {
        s->due = now + (s->absent ? (double)b->cfg->poll.vehicles : interval);
    } else if (o == OUT_RATE_LIMITED) {
        s->due = b->api_pause_until > now ? b->api_pause_until + jitter(1.0)
                                          : now + backoff(s->failures, interval, retry_after_s);
    } else {
        s->due = now + backoff(s->failures, interval, retry_after_s);
        if (!v->breaker_open && v->failures >= BREAKER_AFTER) {
            breaker_open(b, v);
        } else if (v->breaker_open && probe) {
            v->probes++;
            v->probe_due = now + probe_delay(b, v->probes);
            if (retry_after_s >= 0 && v->probe_due < now + (double)retry_after_s)
                v->probe_due = now + (double)retry_after_s;
        }
    }
    sync_vehicle_availability(b, v);
}

/* Logs a failure once per streak (the recovery is logged too); remembers it
 * for the vehicle's entry in bridge/error. */
static void report_failure(struct bridge *b, struct vehicle *v, enum resource r,
                           const char *what)
{
    struct slot *s = &v->slot[r];
    if (!s->error_logged) {
        log_msg(LOG_WARN, v->info.vin, resource_get(r)->name, "%s", what);
        s->error_logged = true;
    } else {
        log_msg(LOG_DEBUG, v->info.vin, resource_get(r)->name, "still failing: %s", what);
    }
    snprintf(v->last_error, sizeof v->last_error, "%s: %.180s", resource_get(r)->name, what);
    snprintf(s->last_error, sizeof s->last_error, "%s", what);
    bridge_note_error(b, v->info.vin, resource_get(r)->name, what);
}

/* Classifies a response; returns true for a 2xx. */
static bool response_ok(const struct http_response *resp, char *why, size_t len)
{
    char msg[160];
    if (resp->error) {
        snprintf(why, len, "request failed: %s", resp->error);
        return false;
    }
    if (resp->status >= 200 && resp->status < 300) return true;
    api_error_message(resp->body, resp->len, msg, sizeof msg);
    snprintf(why, len, "HTTP %ld%s%s", resp->status, msg[0] ? ": " : "", msg);
    return false;
}

static enum outcome failure_kind(struct bridge *b, const struct http_response *resp)
{
    if (resp->status != 429) return OUT_FAIL;
    bridge_rate_limited(b, resp->retry_after_s);
    return OUT_RATE_LIMITED;
}

static void handle_vehicles(struct bridge *b, const struct http_response *resp)
{
    char why[320] = "", err[256] = "";
    struct api_vehicle *list = NULL;
    size_t n = 0;
    b->vehicles_inflight = false;
    b->vehicles_auth_retry = false;
    bool ok = response_ok(resp, why, sizeof why);
    if (!ok || api_parse_vehicle_list(resp->body, resp->len, &list, &n, err, sizeof err) != 0) {
        if (ok) snprintf(why, sizeof why, "malformed response: %s", err);
        enum outcome o = failure_kind(b, resp);
        if (o == OUT_FAIL) b->vehicles_failures++;
        if (!b->vehicles_error[0]) log_msg(LOG_WARN, NULL, "vehicles", "vehicle list: %s", why);
        snprintf(b->vehicles_error, sizeof b->vehicles_error, "%.190s", why);
        bridge_note_error(b, NULL, "vehicles", why);
        if (b->once) {
            b->once_errors++;
            b->vehicles_due = INFINITY;
            b->vehicles_loaded = true;
        } else if (o == OUT_RATE_LIMITED && b->api_pause_until > bridge_now()) {
            b->vehicles_due = b->api_pause_until + jitter(1.0);
        } else {
            b->vehicles_due = bridge_now() + backoff(b->vehicles_failures, b->cfg->poll.vehicles,
                                                     resp->retry_after_s);
        }
        return;
    }
    if (err[0]) log_warn("vehicle list: %s", err);
    if (b->vehicles_error[0]) log_msg(LOG_INFO, NULL, "vehicles", "vehicle list read again");
    b->vehicles_error[0] = '\0';
    b->vehicles_failures = 0;
    bridge_note_success(b);
    sync_vehicle_list(b, list, n);
    free(list);
    b->vehicles_loaded = true;
    b->vehicles_due = b->once ? INFINITY : bridge_now() + b->cfg->poll.vehicles;
}

/* Publishes the trips window once all its pages are in. */
static void finish_trips(struct bridge *b, struct vehicle *v)
{
    cJSON *root = cJSON_CreateObject();
    if (root && cJSON_AddItemToObject(root, "data", v->trips_acc)) {
        v->trips_acc = NULL;
        if (cJSON_AddNumberToObject(root, "total", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "data"))))
            sync_resource(b, v, RES_TRIPS, root, NULL);
    }
    cJSON_Delete(root);
    cJSON_Delete(v->trips_acc);
    v->trips_acc = NULL;
}

static void handle_trips(struct bridge *b, struct vehicle *v, struct preq *q,
                         const struct http_response *resp)
{
    char why[256] = "", err[200];
    int total = 0, count = 0;
    bool ok = response_ok(resp, why, sizeof why);
    if (!ok ||
        api_trips_page_merge(v->trips_acc, resp->body, resp->len, &total, &count, err, sizeof err) != 0) {
        if (ok) snprintf(why, sizeof why, "malformed response: %s", err);
        cJSON_Delete(v->trips_acc);
        v->trips_acc = NULL;
        report_failure(b, v, RES_TRIPS, why);
        slot_done(b, v, RES_TRIPS, failure_kind(b, resp), resp->retry_after_s);
        return;
    }
    int next = q->offset + count;
    if (count > 0 && next < total && next < 100000) {
        struct preq *nq = malloc(sizeof *nq);
        if (nq) {
            *nq = *q;
            nq->offset = next;
            if (start_req(b, nq) == 0) return;
            free(nq);
        }
        cJSON_Delete(v->trips_acc);
        v->trips_acc = NULL;
        report_failure(b, v, RES_TRIPS, "cannot request the next page of trips");
        slot_done(b, v, RES_TRIPS, OUT_FAIL, -1);
        return;
    }
    finish_trips(b, v);
    bridge_note_success(b);
    slot_done(b, v, RES_TRIPS, OUT_OK, -1);
}

static void handle_resource(struct bridge *b, struct vehicle *v, enum resource r,
                            const struct http_response *resp)
{
    char why[256], err[200];
    const struct resource_info *ri = resource_get(r);
    if (resp->status == 404 && ri->optional) {
        if (!v->slot[r].absent)
            log_msg(LOG_INFO, v->info.vin, ri->name, "the vehicle has no %s data (404)", ri->name);
        v->slot[r].absent = true;
        sync_resource_absent(b, v, r);
        slot_done(b, v, r, OUT_ABSENT, -1);
        return;
    }
    if (!response_ok(resp, why, sizeof why)) {
        report_failure(b, v, r, why);
        slot_done(b, v, r, failure_kind(b, resp), resp->retry_after_s);
        return;
    }
    /* Whatever does not parse is an error: the last good state stays. */
    cJSON *tree = api_parse_resource(r, resp->body, resp->len, err, sizeof err);
    char *compact = tree ? api_minify(resp->body, resp->len) : NULL;
    if (!tree || !compact) {
        snprintf(why, sizeof why, "malformed response: %s", tree ? "out of memory" : err);
        report_failure(b, v, r, why);
        cJSON_Delete(tree);
        slot_done(b, v, r, OUT_FAIL, -1);
        return;
    }
    v->slot[r].absent = false;
    sync_resource(b, v, r, tree, compact);
    free(compact);
    cJSON_Delete(tree);
    bridge_note_success(b);
    slot_done(b, v, r, OUT_OK, -1);
}

/* A 401 while the token can be renewed: the request goes again (once) when
 * bridge_may_call() says the renewed token is there; not a failure. */
static void requeue_after_401(struct bridge *b, const struct preq *q)
{
    if (q->kind == REQ_VEHICLES) {
        b->vehicles_inflight = false;
        b->vehicles_due = 0;
        b->vehicles_auth_retry = true;
        return;
    }
    struct vehicle *v = bridge_vehicle(b, q->vin);
    if (!v) return;
    struct slot *s = &v->slot[q->r];
    s->inflight = false;
    s->due = 0;
    s->auth_retry = true;
    if (v->probe_res == (int)q->r) v->probe_res = -1;
    if (q->kind == REQ_TRIPS) {
        cJSON_Delete(v->trips_acc);
        v->trips_acc = NULL;
    }
}

static void on_response(void *ud, const struct http_response *resp)
{
    struct preq *q = ud;
    struct bridge *b = q->b;
    if (resp->cancelled) {
        free(q);
        return;
    }
    if (resp->status == 401 && q->auth_gen != b->auth_gen && bridge_auth_renewable(b)) {
        requeue_after_401(b, q);      /* sent with a token renewed since: go again */
        free(q);
        return;
    }
    if (resp->status == 401) {
        bridge_unauthorized(b);       /* the token is marked rejected: a renewal starts */
        if (!q->retried_auth && bridge_auth_renewable(b)) {
            requeue_after_401(b, q);
            free(q);
            return;
        }
        if (q->retried_auth && bridge_auth_renewable(b) && !b->auth_failed) {
            log_msg(LOG_ERROR, NULL, "auth", "the API rejected a freshly renewed access token (HTTP 401)");
            b->auth_failed = true;
        }
    }
    if (q->kind == REQ_VEHICLES) {
        handle_vehicles(b, resp);
    } else {
        struct vehicle *v = bridge_vehicle(b, q->vin);
        if (v && q->kind == REQ_TRIPS) handle_trips(b, v, q, resp);
        else if (v) handle_resource(b, v, q->r, resp);
    }
    free(q);
}

static void start_slot(struct bridge *b, struct vehicle *v, enum resource r)
{
    struct preq *q = calloc(1, sizeof *q);
    if (!q) return;
    q->b = b;
    q->kind = r == RES_TRIPS ? REQ_TRIPS : REQ_RESOURCE;
    q->r = r;
    q->retried_auth = v->slot[r].auth_retry;
    memcpy(q->vin, v->info.vin, sizeof q->vin);
    if (r == RES_TRIPS) {
        time_t now = time(NULL);
        poller_date(v->trips_from, now, -b->cfg->trips.days);
        poller_date(v->trips_to, now, 0);
        cJSON_Delete(v->trips_acc);
        v->trips_acc = cJSON_CreateArray();
        if (!v->trips_acc) {
            free(q);
            return;
        }
    }
    v->slot[r].inflight = true;
    if (start_req(b, q) != 0) {
        free(q);
        report_failure(b, v, r, "cannot start the request");
        slot_done(b, v, r, OUT_FAIL, -1);
    }
}

static bool any_inflight(const struct vehicle *v)
{
    for (int r = 0; r < RES_COUNT; r++)
        if (v->slot[r].inflight) return true;
    return false;
}

/* api.daily_limit: the vehicle is not polled again until the next UTC day.
 * Returns true while it is paused. */
static bool budget_paused(struct bridge *b, struct vehicle *v)
{
    if (bridge_budget_ok(b, v)) {
        if (v->budget_paused) {
            log_msg(LOG_INFO, v->info.vin, NULL, "a new UTC day: polling resumes");
            v->budget_paused = false;
            v->calls_published = false;
        }
        return false;
    }
    if (!v->budget_paused) {
        log_msg(LOG_WARN, v->info.vin, NULL, "api.daily_limit of %d API calls reached today: "
                "polling paused until 00:00 UTC", b->cfg->api.daily_limit);
        v->budget_paused = true;
        v->calls_published = false;
        b->state_save_due = bridge_now();   /* a restart must not spend it again */
        if (b->once) {
            b->once_errors++;
            for (int r = 0; r < RES_COUNT; r++)
                if (!v->slot[r].inflight) v->slot[r].due = INFINITY;
        }
    }
    return true;
}

static void tick_vehicle(struct bridge *b, struct vehicle *v, double now)
{
    if (budget_paused(b, v)) return;
    if (v->breaker_open) {
        int r = probe_resource(b, v);
        if (r >= 0 && now >= v->probe_due && !any_inflight(v)) {
            v->probe_res = r;
            start_slot(b, v, (enum resource)r);
        }
        return;
    }
    for (int r = 0; r < RES_COUNT; r++) {
        struct slot *s = &v->slot[r];
        if (b->cfg->poll.interval[r] == 0 || s->inflight || s->due > now) continue;
        if (!bridge_budget_ok(b, v)) break;
        start_slot(b, v, (enum resource)r);
    }
}

void poller_tick(struct bridge *b)
{
    double now = bridge_now();
    if (!bridge_may_call(b, NULL)) return;
    if (!b->vehicles_inflight && b->vehicles_due <= now) {
        struct preq *q = calloc(1, sizeof *q);
        if (q) {
            q->b = b;
            q->kind = REQ_VEHICLES;
            q->retried_auth = b->vehicles_auth_retry;
            b->vehicles_inflight = true;
            if (start_req(b, q) != 0) {
                free(q);
                b->vehicles_inflight = false;
                b->vehicles_due = now + BACKOFF_BASE_S;
            }
        }
    }
    for (size_t i = 0; i < b->nvehicles; i++) tick_vehicle(b, &b->vehicles[i], now);
}

double poller_next_due(const struct bridge *b)
{
    double resume = bridge_calls_resume_at(b);
    if (resume == INFINITY) return INFINITY;   /* a token is awaited: its answer wakes us */
    double next = b->vehicles_inflight ? INFINITY : b->vehicles_due;
    for (size_t i = 0; i < b->nvehicles; i++) {
        const struct vehicle *v = &b->vehicles[i];
        if (v->budget_paused) continue;        /* the loop wakes every 30 s: a new day is seen */
        if (v->breaker_open) {
            if (!any_inflight(v) && v->probe_due < next) next = v->probe_due;
            continue;
        }
        for (int r = 0; r < RES_COUNT; r++) {
            const struct slot *s = &v->slot[r];
            if (b->cfg->poll.interval[r] && !s->inflight && s->due < next) next = s->due;
        }
    }
    return next < resume ? resume : next;
}

bool poller_done_once(const struct bridge *b)
{
    if (!b->vehicles_loaded || b->vehicles_inflight) return false;
    for (size_t i = 0; i < b->nvehicles; i++)
        for (int r = 0; r < RES_COUNT; r++) {
            const struct slot *s = &b->vehicles[i].slot[r];
            if (b->cfg->poll.interval[r] && (s->inflight || s->due != INFINITY)) return false;
        }
    return true;
}

void poller_publish_info(struct bridge *b)
{
    char topic[BRIDGE_TOPIC];
    char *cfg = config_to_json(b->cfg);
    cJSON *root = cJSON_CreateObject();
    cJSON *vins = cJSON_CreateArray();
    cJSON *c = cfg ? cJSON_Parse(cfg) : NULL;
    free(cfg);
    if (!root || !vins || !c) goto out;
    cJSON_AddStringToObject(root, "version", T2M_VERSION);
    for (size_t i = 0; i < b->nvehicles; i++)
        cJSON_AddItemToArray(vins, cJSON_CreateString(b->vehicles[i].info.vin));
    cJSON_AddItemToObject(root, "vins", vins);
    vins = NULL;
    cJSON_AddItemToObject(root, "config", c);
    c = NULL;
    char *s = cJSON_PrintUnformatted(root);
    if (s && bridge_topic(b, topic, sizeof topic, NULL, "bridge/info") == 0)
        publish_retained(b->pub, topic, s);
    free(s);
out:
    cJSON_Delete(root);
    cJSON_Delete(vins);
    cJSON_Delete(c);
}

static void add_time(cJSON *o, const char *key, time_t t)
{
    char buf[32];
    struct tm tm;
    if (!t) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(o, key, buf);
}

/* <base>/<VIN>/api_calls: today's (UTC) count, persisted in the state file. */
static void publish_calls(struct bridge *b, struct vehicle *v)
{
    char topic[BRIDGE_TOPIC];
    long calls = 0, refresh = 0;
    state_calls_get(&b->state, v->info.vin, b->api_calls_day, &calls, &refresh);
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    char *s = NULL;
    if (cJSON_AddStringToObject(o, "date", b->api_calls_day) &&
        cJSON_AddNumberToObject(o, "calls", (double)calls) &&
        cJSON_AddNumberToObject(o, "refresh_status", (double)refresh) &&
        cJSON_AddNumberToObject(o, "daily_limit", b->cfg->api.daily_limit) &&
        cJSON_AddNumberToObject(o, "refresh_daily_limit", b->cfg->api.refresh_daily_limit) &&
        cJSON_AddBoolToObject(o, "paused", v->budget_paused))
        s = cJSON_PrintUnformatted(o);
    if (s && bridge_topic(b, topic, sizeof topic, v->info.vin, "api_calls") == 0 &&
        publish_retained(b->pub, topic, s) >= 0)
        v->calls_published = true;
    free(s);
    cJSON_Delete(o);
}

/* A resource that keeps failing while its vehicle otherwise answers (too
 * large, malformed): its topic is going stale, which the user should know. */
static void resource_problem(struct bridge *b, char *key, size_t klen, char *msg, size_t mlen)
{
    for (size_t i = 0; i < b->nvehicles; i++) {
        const struct vehicle *v = &b->vehicles[i];
        for (int r = 0; r < RES_COUNT; r++) {
            const struct slot *s = &v->slot[r];
            if (s->failures < PROBLEM_AFTER || s->absent || !b->cfg->poll.interval[r]) continue;
            snprintf(key, klen, "resource:%s:%d", v->info.vin, r);
            snprintf(msg, mlen, "vehicle %s: %s cannot be fetched (last good data kept): %.200s",
                     v->info.vin, resource_get((enum resource)r)->name, s->last_error);
            return;
        }
    }
}

/* The vehicles' share of bridge/error: the first vehicle with a problem,
 * and how many more have one. */
static void vehicle_problem(struct bridge *b, char *key, size_t klen, char *msg, size_t mlen)
{
    size_t more = 0;
    for (size_t i = 0; i < b->nvehicles; i++) {
        const struct vehicle *v = &b->vehicles[i];
        bool offline = v->failures >= VEHICLE_OFFLINE_AFTER;
        if (!offline && !v->budget_paused) continue;
        if (key[0]) {
            more++;
        } else if (offline) {
            snprintf(key, klen, "offline:%s", v->info.vin);
            snprintf(msg, mlen, "vehicle %s is offline: %s%s", v->info.vin, v->last_error,
                     v->breaker_open ? " (polled rarely until it answers)" : "");
        } else {
            snprintf(key, klen, "budget:%s", v->info.vin);
            snprintf(msg, mlen, "vehicle %s: api.daily_limit of %d API calls reached today; "
                     "polling paused until 00:00 UTC", v->info.vin, b->cfg->api.daily_limit);
        }
    }
    if (more) {
        size_t n = strlen(msg);
        snprintf(msg + n, mlen - n, " (and %zu more vehicle%s)", more, more == 1 ? "" : "s");
    }
    if (!key[0]) resource_problem(b, key, klen, msg, mlen);
}

/* What is wrong right now, most fundamental first; "" when nothing is. */
static void current_problem(struct bridge *b, char *key, size_t klen, char *msg, size_t mlen)
{
    key[0] = msg[0] = '\0';
    if (b->auth.mode == AUTH_OAUTH && b->auth.permanent_failure) {
        snprintf(key, klen, "auth");
        snprintf(msg, mlen, "authentication failed: %s", b->auth_error);
    } else if (b->auth_failed) {
        snprintf(key, klen, "auth");
        snprintf(msg, mlen, "authentication failed: the API rejected the access token (HTTP 401)%s",
                 b->auth.mode == AUTH_STATIC ? "; check api.token" : "");
    } else if (b->auth_error[0] && b->auth.failures >= 2) {
        snprintf(key, klen, "auth-retry");
        snprintf(msg, mlen, "cannot renew the access token: %s (retrying)", b->auth_error);
    } else if (b->vehicles_error[0] && (!b->vehicles_loaded || b->vehicles_failures >= 3)) {
        snprintf(key, klen, "vehicles");
        snprintf(msg, mlen, "cannot read the vehicle list: %s", b->vehicles_error);
    } else if (b->api_pause_until > bridge_now()) {
        snprintf(key, klen, "rate");
        snprintf(msg, mlen, "the API is rate limiting (HTTP 429): API calls wait as it asks");
    } else {
        vehicle_problem(b, key, klen, msg, mlen);
    }
}

/* <base>/bridge/error: retained {"message","at"} while something is wrong,
 * an empty retained payload (which deletes it) once nothing is. "at" is when
 * the condition began, not when its wording last changed. */
static void publish_problem(struct bridge *b)
{
    char key[sizeof b->problem_key], msg[sizeof b->problem], topic[BRIDGE_TOPIC];
    current_problem(b, key, sizeof key, msg, sizeof msg);
    if (b->problem_published && strcmp(msg, b->problem) == 0) return;
    if (strcmp(key, b->problem_key) != 0) {
        b->problem_at = time(NULL);
        if (msg[0]) log_warn("bridge/error: %s", msg);
        else if (b->problem[0]) log_info("bridge/error cleared (was: %s)", b->problem);
    }
    snprintf(b->problem_key, sizeof b->problem_key, "%s", key);
    snprintf(b->problem, sizeof b->problem, "%s", msg);
    if (bridge_topic(b, topic, sizeof topic, NULL, "bridge/error") != 0) return;
    if (!msg[0]) {
        b->problem_published = publish_retained(b->pub, topic, "") >= 0;
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddStringToObject(o, "message", msg);
    add_time(o, "at", b->problem_at);
    char *s = cJSON_PrintUnformatted(o);
    b->problem_published = s && publish_retained(b->pub, topic, s) >= 0;
    free(s);
    cJSON_Delete(o);
}

void poller_publish_stats(struct bridge *b)
{
    char topic[BRIDGE_TOPIC];
    bridge_today(b);
    for (size_t i = 0; i < b->nvehicles; i++)
        if (!b->vehicles[i].calls_published) publish_calls(b, &b->vehicles[i]);
    publish_problem(b);
    if (!b->stats_dirty) return;
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    add_time(o, "last_success", b->last_success);
    cJSON_AddStringToObject(o, "last_error", b->last_error);
    add_time(o, "last_error_at", b->last_error_at);
    cJSON_AddNumberToObject(o, "api_calls_today", (double)b->api_calls_today);
    char *s = cJSON_PrintUnformatted(o);
    if (s && bridge_topic(b, topic, sizeof topic, NULL, "bridge/stats") == 0)
        publish_retained(b->pub, topic, s);
    free(s);
    cJSON_Delete(o);
    b->stats_dirty = false;
}

void poller_free(struct bridge *b)
{
    for (size_t i = 0; i < b->nvehicles; i++) cJSON_Delete(b->vehicles[i].trips_acc);
    free(b->vehicles);
    b->vehicles = NULL;
    b->nvehicles = 0;
}
