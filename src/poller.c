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
#define BACKOFF_BASE_S 15.0
#define BACKOFF_MAX_S 3600.0
/* A vehicle whose fetches keep failing is offline for its availability. */
#define VEHICLE_OFFLINE_AFTER 3

enum req_kind { REQ_VEHICLES, REQ_RESOURCE, REQ_TRIPS };

/* What a request's callback needs; the vehicle is found again by VIN since
 * the vehicle table may have changed while the request ran. */
struct preq {
    struct bridge *b;
    enum req_kind kind;
    enum resource r;
    char vin[API_VIN_LEN + 1];
    int offset;
    bool retried_auth;
};

void poller_date(char out[11], time_t t, int days)
{
    t += (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

/* Exponential backoff with +-20% jitter so that many slots failing together
 * (the cloud is down) do not retry in lockstep. */
static double backoff(int failures, long retry_after_s)
{
    if (retry_after_s >= 0) return (double)retry_after_s + 1.0;
    double d = BACKOFF_BASE_S * pow(2.0, failures > 12 ? 12 : failures - 1);
    if (d > BACKOFF_MAX_S) d = BACKOFF_MAX_S;
    return d * (0.8 + 0.4 * ((double)rand() / RAND_MAX));
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
    bridge_count_call(b);
    return http_request(b->http, "GET", url, headers, NULL, on_response, q);
}

/* Finishes a slot: schedules its next poll. */
static void slot_done(struct bridge *b, struct vehicle *v, enum resource r, bool ok,
                      long retry_after_s)
{
    struct slot *s = &v->slot[r];
    int interval = b->cfg->poll.interval[r];
    s->inflight = false;
    if (ok) {
        s->failures = 0;
        s->error_logged = false;
        s->fetched = true;
        v->failures = 0;
    } else {
        s->failures++;
        v->failures++;
        if (b->once) b->once_errors++;
    }
    if (b->once) {
        s->due = INFINITY;
    } else if (ok || s->absent) {
        s->due = bridge_now() + (s->absent ? (double)b->cfg->poll.vehicles : interval);
    } else {
        double d = backoff(s->failures, retry_after_s);
        if (retry_after_s < 0 && d > interval && interval > 0 && s->failures < 3) d = interval;
        s->due = bridge_now() + d;
    }
    sync_vehicle_availability(b, v);
}

/* Logs a failure once per streak (the first, then every tenth). */
static void report_failure(struct bridge *b, struct vehicle *v, enum resource r,
                           const char *what)
{
    struct slot *s = &v->slot[r];
    if (!s->error_logged || s->failures % 10 == 9) {
        log_msg(LOG_WARN, v->info.vin, resource_get(r)->name, "%s%s", what,
                s->error_logged ? " (still failing)" : "");
        s->error_logged = true;
    }
    bridge_note_error(b, v->info.vin, resource_get(r)->name, what);
}

/* Classifies a response; returns true for a 2xx with a body. */
static bool response_ok(struct bridge *b, const struct http_response *resp, char *why, size_t len)
{
    char msg[160];
    if (resp->error) {
        snprintf(why, len, "request failed: %s", resp->error);
        return false;
    }
    if (resp->status >= 200 && resp->status < 300) return true;
    api_error_message(resp->body, resp->len, msg, sizeof msg);
    snprintf(why, len, "HTTP %ld%s%s", resp->status, msg[0] ? ": " : "", msg);
    (void)b;
    return false;
}

static void handle_vehicles(struct bridge *b, const struct http_response *resp)
{
    char why[320], err[256] = "";
    struct api_vehicle *list = NULL;
    size_t n = 0;
    b->vehicles_inflight = false;
    if (!response_ok(b, resp, why, sizeof why) ||
        api_parse_vehicle_list(resp->body, resp->len, &list, &n, err, sizeof err) != 0) {
        if (!why[0] || resp->status / 100 == 2) snprintf(why, sizeof why, "vehicle list: %s", err);
        b->vehicles_failures++;
        if (b->vehicles_failures == 1 || b->vehicles_failures % 10 == 0)
            log_msg(LOG_WARN, NULL, "vehicles", "%s", why);
        bridge_note_error(b, NULL, "vehicles", why);
        if (b->once) {
            b->once_errors++;
            b->vehicles_due = INFINITY;
            b->vehicles_loaded = true;
        } else {
            b->vehicles_due = bridge_now() + backoff(b->vehicles_failures, resp->retry_after_s);
        }
        return;
    }
    if (err[0]) log_warn("vehicle list: %s", err);
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
    char why[256], err[200];
    int total = 0, count = 0;
    if (!response_ok(b, resp, why, sizeof why) ||
        api_trips_page_merge(v->trips_acc, resp->body, resp->len, &total, &count, err, sizeof err) != 0) {
        if (resp->status / 100 == 2) snprintf(why, sizeof why, "malformed response: %s", err);
        cJSON_Delete(v->trips_acc);
        v->trips_acc = NULL;
        report_failure(b, v, RES_TRIPS, why);
        slot_done(b, v, RES_TRIPS, false, resp->retry_after_s);
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
        slot_done(b, v, RES_TRIPS, false, -1);
        return;
    }
    finish_trips(b, v);
    bridge_note_success(b);
    slot_done(b, v, RES_TRIPS, true, -1);
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
        slot_done(b, v, r, true, -1);
        return;
    }
    if (!response_ok(b, resp, why, sizeof why)) {
        report_failure(b, v, r, why);
        slot_done(b, v, r, false, resp->retry_after_s);
        return;
    }
    cJSON *tree = api_parse_resource(r, resp->body, resp->len, err, sizeof err);
    char *compact = tree ? api_minify(resp->body, resp->len) : NULL;
    if (!tree || !compact) {
        snprintf(why, sizeof why, "malformed response: %s", tree ? "out of memory" : err);
        report_failure(b, v, r, why);
        cJSON_Delete(tree);
        slot_done(b, v, r, false, -1);
        return;
    }
    v->slot[r].absent = false;
    sync_resource(b, v, r, tree, compact);
    free(compact);
    cJSON_Delete(tree);
    bridge_note_success(b);
    slot_done(b, v, r, true, -1);
}

static void on_response(void *ud, const struct http_response *resp)
{
    struct preq *q = ud;
    struct bridge *b = q->b;
    if (resp->cancelled) {
        free(q);
        return;
    }
    if (resp->status == 401 && !q->retried_auth && bridge_unauthorized(b)) {
        q->retried_auth = true;       /* the token was renewed: try once more */
        if (start_req(b, q) == 0) return;
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
        slot_done(b, v, r, false, -1);
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
            b->vehicles_inflight = true;
            if (start_req(b, q) != 0) {
                free(q);
                b->vehicles_inflight = false;
                b->vehicles_due = now + BACKOFF_BASE_S;
            }
        }
    }
    for (size_t i = 0; i < b->nvehicles; i++) {
        struct vehicle *v = &b->vehicles[i];
        for (int r = 0; r < RES_COUNT; r++) {
            struct slot *s = &v->slot[r];
            if (b->cfg->poll.interval[r] == 0 || s->inflight || s->due > now) continue;
            if (!bridge_may_call(b, v)) break;
            start_slot(b, v, (enum resource)r);
        }
    }
}

double poller_next_due(const struct bridge *b)
{
    double next = b->vehicles_inflight ? INFINITY : b->vehicles_due;
    for (size_t i = 0; i < b->nvehicles; i++)
        for (int r = 0; r < RES_COUNT; r++) {
            const struct slot *s = &b->vehicles[i].slot[r];
            if (b->cfg->poll.interval[r] && !s->inflight && s->due < next) next = s->due;
        }
    return next;
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

void poller_publish_stats(struct bridge *b)
{
    char topic[BRIDGE_TOPIC];
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
