/* handlers.c - see handlers.h. Layout: replies, the API routes and their
 * operations, OAuth, admin, then the MHD glue (body accumulation, faults,
 * logging, sending). */
#include "handlers.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "render.h"
#include "validate.h"

#define API_PREFIX   "/connected/v1"
#define TOKEN_PATH   "/oauth2/token"
#define ADMIN_PREFIX "/_sim/"
#define ERR_LEN      256

struct request {
    char *body;
    size_t len, cap;
    bool too_large;
};

struct reply {
    int status;
    char *body;            /* malloc'd */
    size_t len;
    int retry_after;       /* > 0: send Retry-After */
    char allow[64];        /* non-empty: send Allow */
    bool www_auth;
    bool no_store;
};

/* ---------------------------------------------------------------- replies */

/* Takes ownership of j (may be NULL: then a 500). */
static void reply_json(struct reply *r, int status, cJSON *j)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    free(r->body);
    if (!s) {
        static const char fallback[] = "{\"code\":\"INTERNAL_ERROR\",\"message\":\"out of memory\"}";
        s = strdup(fallback);
        status = 500;
    }
    r->status = status;
    r->body = s;
    r->len = s ? strlen(s) : 0;
}

__attribute__((format(printf, 4, 5)))
static void reply_error(struct reply *r, int status, const char *code, const char *fmt, ...)
{
    char msg[ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    util_utf8_sanitize(msg);   /* messages may quote request bytes */
    reply_json(r, status, render_error(code, msg));
}

static void reply_bad(struct reply *r, const char *err)
{
    reply_error(r, 400, "BAD_REQUEST", "%s", err);
}

/* ---------------------------------------------------------------- clock */

static int64_t sim_now_locked(struct sim_server *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double elapsed = (double)(ts.tv_sec - s->mono_start.tv_sec) +
                     (double)(ts.tv_nsec - s->mono_start.tv_nsec) / 1e9;
    return s->epoch + s->offset + (int64_t)(elapsed * s->speed);
}

int64_t handlers_sim_now(struct sim_server *s)
{
    pthread_mutex_lock(&s->lock);
    int64_t t = sim_now_locked(s);
    pthread_mutex_unlock(&s->lock);
    return t;
}

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- API */

enum op {
    OP_LIST, OP_GET_VEHICLE, OP_ALIAS, OP_STATUS, OP_REFRESH_STATUS, OP_HEALTH, OP_LOCATION,
    OP_ELECTRIC, OP_REFRESH_ELECTRIC, OP_CLIMATE, OP_CLIMATE_SETTINGS, OP_CLIMATE_COMMAND,
    OP_TRIPS, OP_NOTIFICATIONS, OP_REMOTE, OP_SERVICE
};

static const struct route {
    const char *suffix, *method;
    enum op op;
    bool json_body;
} ROUTES[] = {
    {"", "GET", OP_GET_VEHICLE, false},
    {"", "PUT", OP_ALIAS, true},
    {"/status", "GET", OP_STATUS, false},
    {"/status/refresh", "POST", OP_REFRESH_STATUS, true},
    {"/health", "GET", OP_HEALTH, false},
    {"/location", "GET", OP_LOCATION, false},
    {"/electric", "GET", OP_ELECTRIC, false},
    {"/electric/refresh", "POST", OP_REFRESH_ELECTRIC, false},
    {"/climate", "GET", OP_CLIMATE, false},
    {"/climate", "PUT", OP_CLIMATE_SETTINGS, true},
    {"/climate/command", "POST", OP_CLIMATE_COMMAND, true},
    {"/trips", "GET", OP_TRIPS, false},
    {"/notifications", "GET", OP_NOTIFICATIONS, false},
    {"/remote-command", "POST", OP_REMOTE, true},
    {"/service-history", "GET", OP_SERVICE, false},
};
#define NROUTES (sizeof ROUTES / sizeof ROUTES[0])

/* Matches rest (the path after /connected/v1) and method to a route. Returns
 * the route, or NULL with r set to 404 or 405; vin receives the path VIN. */
static const struct route *match_route(const char *rest, const char *method, char *vin, size_t vinlen,
                                       struct reply *r)
{
    static const struct route list = {"", "GET", OP_LIST, false};
    if (strcmp(rest, "/vehicles") == 0) {
        if (strcmp(method, "GET") == 0)
            return &list;
        snprintf(r->allow, sizeof r->allow, "GET");
        reply_error(r, 405, "METHOD_NOT_ALLOWED", "%s not allowed on /vehicles", method);
        return NULL;
    }
    const char *p = strncmp(rest, "/vehicles/", 10) == 0 ? rest + 10 : NULL;
    size_t n = p ? strcspn(p, "/") : 0;
    if (!p || n == 0 || n >= vinlen) {
        reply_error(r, 404, "NOT_FOUND", "no such resource");
        return NULL;
    }
    memcpy(vin, p, n);
    vin[n] = '\0';
    const char *suffix = p + n;
    const struct route *found = NULL;
    r->allow[0] = '\0';
    for (size_t i = 0; i < NROUTES; i++) {
        if (strcmp(ROUTES[i].suffix, suffix) != 0)
            continue;
        if (strcmp(ROUTES[i].method, method) == 0)
            found = &ROUTES[i];
        size_t al = strlen(r->allow);
        snprintf(r->allow + al, sizeof r->allow - al, "%s%s", al ? ", " : "", ROUTES[i].method);
    }
    if (found)
        return found;
    if (r->allow[0])
        reply_error(r, 405, "METHOD_NOT_ALLOWED", "%s not allowed here", method);
    else
        reply_error(r, 404, "NOT_FOUND", "no such resource");
    return NULL;
}

static const char *query(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static void new_request_id(struct sim_server *s, char id[UTIL_UUID_LEN])
{
    util_uuid(&s->rng, id);
}

static void reply_accepted(struct sim_server *s, struct reply *r, int64_t now)
{
    char id[UTIL_UUID_LEN];
    new_request_id(s, id);
    reply_json(r, 200, render_refresh_status(id, now));
}

static void op_trips(struct MHD_Connection *c, const struct vehicle *v, struct reply *r)
{
    struct trips_req q;
    char err[ERR_LEN];
    if (validate_trips(query(c, "fromDate"), query(c, "toDate"), query(c, "limit"), query(c, "offset"),
                       query(c, "includeRoute"), query(c, "includeSummary"), &q, err, sizeof err) != 0) {
        reply_bad(r, err);
        return;
    }
    reply_json(r, 200, render_trips(v, q.from_day, q.to_day, q.limit, q.offset, q.include_route));
}

static void op_notifications(struct MHD_Connection *c, const struct vehicle *v, struct reply *r)
{
    bool unread;
    char err[ERR_LEN];
    if (validate_bool_param("unreadOnly", query(c, "unreadOnly"), false, &unread, err, sizeof err) != 0) {
        reply_bad(r, err);
        return;
    }
    reply_json(r, 200, render_notifications(v, unread));
}

static void op_alias(const struct request *q, struct vehicle *v, struct reply *r)
{
    struct alias_req a;
    char err[ERR_LEN];
    if (validate_alias(q->body, q->len, &a, err, sizeof err) != 0) {
        reply_bad(r, err);
    } else if (a.has_guid && strcmp(a.guid, v->guid) != 0) {
        reply_bad(r, "guid: does not match the vehicle's guid");
    } else {
        fleet_set_alias(v, a.alias);
        reply_json(r, 200, render_vehicle(v));
    }
}

static void op_refresh_status(struct sim_server *s, const struct request *q, struct vehicle *v,
                              int64_t now, struct reply *r)
{
    struct refresh_req f;
    char err[ERR_LEN];
    if (validate_refresh(q->body, q->len, &f, err, sizeof err) != 0) {
        reply_bad(r, err);
    } else if (strcmp(f.vin, v->vin) != 0) {
        reply_bad(r, "vin: does not match the VIN in the path");
    } else if (strcmp(f.guid, v->guid) != 0) {
        reply_bad(r, "guid: does not match the vehicle's guid");
    } else {
        fleet_command(v, CMD_REFRESH_STATUS, 0, false, now + s->command_delay);
        reply_accepted(s, r, now);
    }
}

static void op_refresh_electric(struct sim_server *s, const struct request *q, struct vehicle *v,
                                int64_t now, struct reply *r)
{
    char err[ERR_LEN];
    if (v->pt == PT_PETROL) {
        reply_error(r, 404, "NOT_FOUND", "vehicle %s has no electric data", v->vin);
    } else if (validate_electric_refresh(q->body, q->len, err, sizeof err) != 0) {
        reply_bad(r, err);
    } else {
        fleet_command(v, CMD_REFRESH_ELECTRIC, 0, false, now + s->command_delay);
        reply_accepted(s, r, now);
    }
}

static void op_climate_settings(const struct request *q, struct vehicle *v, int64_t now, struct reply *r)
{
    struct climate_settings_req cs;
    char err[ERR_LEN];
    if (validate_climate_settings(q->body, q->len, &cs, err, sizeof err) != 0) {
        reply_bad(r, err);
        return;
    }
    enum climate_mode mode = (enum climate_mode)cs.mode;
    fleet_set_climate(v, cs.has_temp ? &cs.temp : NULL, cs.has_fan ? &cs.fan : NULL,
                      cs.has_mode ? &mode : NULL, now);
    reply_json(r, 200, render_climate_settings(v));
}

static void op_climate_command(struct sim_server *s, const struct request *q, struct vehicle *v,
                               int64_t now, struct reply *r)
{
    struct climate_cmd_req cc;
    char err[ERR_LEN];
    if (validate_climate_command(q->body, q->len, &cc, err, sizeof err) != 0) {
        reply_bad(r, err);
        return;
    }
    fleet_command(v, cc.start ? CMD_CLIMATE_START : CMD_CLIMATE_STOP, cc.temp, cc.has_temp,
                  now + s->command_delay);
    reply_accepted(s, r, now);
}

static void op_remote(struct sim_server *s, const struct request *q, struct vehicle *v, int64_t now,
                      struct reply *r)
{
    struct remote_req rc;
    char err[ERR_LEN];
    if (validate_remote(q->body, q->len, &rc, err, sizeof err) != 0) {
        reply_bad(r, err);
        return;
    }
    int64_t at = now + s->command_delay;
    if (rc.command == RC_LOCK || rc.command == RC_UNLOCK)
        fleet_command(v, rc.command == RC_LOCK ? CMD_LOCK : CMD_UNLOCK, 0, false, at);
    else if (rc.command == RC_TRUNK_OPEN)
        fleet_command(v, CMD_TRUNK_OPEN, 0, false, at);
    /* horn, lights, panic_on, panic_off: accepted, no visible state */
    reply_accepted(s, r, now);
}

/* Runs one API operation with the fleet lock held and time advanced. */
static void api_op(struct sim_server *s, struct MHD_Connection *c, const struct route *rt,
                   const char *vin, const struct request *q, struct reply *r)
{
    pthread_mutex_lock(&s->lock);
    int64_t now = sim_now_locked(s);
    fleet_advance(s->fleet, now);
    struct vehicle *v = rt->op == OP_LIST ? NULL : fleet_find(s->fleet, vin);
    if (rt->op != OP_LIST && !v) {
        reply_error(r, 404, "NOT_FOUND", "vehicle %.32s not found", vin);
        pthread_mutex_unlock(&s->lock);
        return;
    }
    switch (rt->op) {
    case OP_LIST: reply_json(r, 200, render_vehicle_list(s->fleet)); break;
    case OP_GET_VEHICLE: reply_json(r, 200, render_vehicle(v)); break;
    case OP_ALIAS: op_alias(q, v, r); break;
    case OP_STATUS: reply_json(r, 200, render_status(v)); break;
    case OP_REFRESH_STATUS: op_refresh_status(s, q, v, now, r); break;
    case OP_HEALTH: reply_json(r, 200, render_health(v)); break;
    case OP_LOCATION: reply_json(r, 200, render_location(v)); break;
    case OP_ELECTRIC:
        if (v->pt == PT_PETROL)
            reply_error(r, 404, "NOT_FOUND", "vehicle %s has no electric data", v->vin);
        else
            reply_json(r, 200, render_electric(v));
        break;
    case OP_REFRESH_ELECTRIC: op_refresh_electric(s, q, v, now, r); break;
    case OP_CLIMATE: reply_json(r, 200, render_climate(v)); break;
    case OP_CLIMATE_SETTINGS: op_climate_settings(q, v, now, r); break;
    case OP_CLIMATE_COMMAND: op_climate_command(s, q, v, now, r); break;
    case OP_TRIPS: op_trips(c, v, r); break;
    case OP_NOTIFICATIONS: op_notifications(c, v, r); break;
    case OP_REMOTE: op_remote(s, q, v, now, r); break;
    case OP_SERVICE: reply_json(r, 200, render_service(v)); break;
    }
    /* commands with no delay take effect before the next request */
    fleet_advance(s->fleet, now);
    pthread_mutex_unlock(&s->lock);
}

/* Sleeps ms milliseconds in 20 ms steps, returning early when the server
 * is stopping so shutdown does not wait for injected latency. */
static void sleep_ms(struct sim_server *s, int ms)
{
    while (ms > 0 && !atomic_load(&s->stopping)) {
        int step = ms < 20 ? ms : 20;
        struct timespec ts = {0, (long)step * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        ms -= step;
    }
}

static bool is_json_type(const char *ct)
{
    return ct && strncasecmp(ct, "application/json", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/* A /connected/v1 request: faults, then auth, routing, the operation. */
static void handle_api(struct sim_server *s, struct MHD_Connection *c, const char *url,
                       const char *method, const struct request *q, struct reply *r)
{
    struct fault_decision fd;
    faults_decide(s->faults, mono_seconds(), &fd);
    if (fd.latency_ms > 0)
        sleep_ms(s, fd.latency_ms);
    if (fd.kind == FAULT_RATE_LIMITED) {
        r->retry_after = fd.retry_after;
        reply_error(r, 429, "TOO_MANY_REQUESTS", "rate limit exceeded");
        return;
    }
    if (fd.kind == FAULT_500 || fd.kind == FAULT_503) {
        if (fd.kind == FAULT_503)
            r->retry_after = fd.retry_after;
        reply_error(r, fd.kind == FAULT_500 ? 500 : 503,
                    fd.kind == FAULT_500 ? "INTERNAL_ERROR" : "SERVICE_UNAVAILABLE", "injected fault");
        return;
    }
    const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    enum oauth_auth a = oauth_check(s->oauth, authz, (int64_t)time(NULL));
    if (a != AUTH_OK) {
        r->www_auth = true;
        reply_error(r, 401, "UNAUTHORIZED", "%s",
                    a == AUTH_MISSING ? "missing bearer token" :
                    a == AUTH_EXPIRED ? "access token expired" : "invalid access token");
        return;
    }
    char vin[64];
    const struct route *rt = match_route(url + strlen(API_PREFIX), method, vin, sizeof vin, r);
    if (!rt)
        return;
    if (q->too_large) {
        reply_error(r, 413, "PAYLOAD_TOO_LARGE", "request body exceeds %d bytes", HANDLERS_BODY_MAX);
        return;
    }
    if (rt->json_body && q->len > 0 &&
        !is_json_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))) {
        reply_error(r, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json");
        return;
    }
    api_op(s, c, rt, vin, q, r);
    if (fd.truncate && r->status == 200 && r->len > 1)
        r->len /= 2;
}

/* ---------------------------------------------------------------- OAuth */

static void handle_token(struct sim_server *s, struct MHD_Connection *c, const char *method,
                         const struct request *q, struct reply *r)
{
    if (strcmp(method, "POST") != 0) {
        snprintf(r->allow, sizeof r->allow, "POST");
        reply_error(r, 405, "METHOD_NOT_ALLOWED", "use POST");
        return;
    }
    if (q->too_large) {
        reply_error(r, 413, "PAYLOAD_TOO_LARGE", "request body too large");
        return;
    }
    char *out = NULL;
    int status = oauth_token_request(
        s->oauth, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), q->body, q->len,
        (int64_t)time(NULL), &out);
    if (!out) {
        reply_error(r, 500, "INTERNAL_ERROR", "out of memory");
        return;
    }
    free(r->body);
    r->status = status;
    r->body = out;
    r->len = strlen(out);
    r->no_store = true;
}

/* ---------------------------------------------------------------- admin */

static cJSON *faults_json(const struct fault_config *f)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (!cJSON_AddNumberToObject(o, "error_rate", f->error_rate) ||
        !cJSON_AddNumberToObject(o, "latency_ms", f->latency_ms) ||
        !cJSON_AddNumberToObject(o, "rate_limit", f->rate_limit) ||
        !cJSON_AddNumberToObject(o, "rate_window", f->rate_window) ||
        !cJSON_AddNumberToObject(o, "truncate_rate", f->truncate_rate) ||
        !cJSON_AddNumberToObject(o, "token_ttl", f->token_ttl)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void admin_faults(struct sim_server *s, const char *method, const struct request *q, struct reply *r)
{
    struct fault_config cfg;
    faults_get(s->faults, &cfg);
    if (strcmp(method, "POST") == 0) {
        char err[ERR_LEN];
        bool revoke = false;
        if (faults_parse_update(q->body, q->len, &cfg, &revoke, err, sizeof err) != 0) {
            reply_bad(r, err);
            return;
        }
        faults_set(s->faults, &cfg);
        oauth_set_ttl(s->oauth, cfg.token_ttl);
        if (revoke)
            oauth_revoke_access(s->oauth);
    } else if (strcmp(method, "GET") != 0) {
        snprintf(r->allow, sizeof r->allow, "GET, POST");
        reply_error(r, 405, "METHOD_NOT_ALLOWED", "use GET or POST");
        return;
    }
    reply_json(r, 200, faults_json(&cfg));
}

static void admin_advance(struct sim_server *s, const struct request *q, struct reply *r)
{
    cJSON *o = cJSON_ParseWithLength(q->body, q->len);
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(o, "seconds");
    if (!cJSON_IsNumber(sec) || sec->valuedouble < 0 || sec->valuedouble > 366.0 * 86400 ||
        sec->valuedouble != (double)(int64_t)sec->valuedouble) {
        cJSON_Delete(o);
        reply_bad(r, "seconds: must be an integer from 0 to 31622400");
        return;
    }
    int64_t add = (int64_t)sec->valuedouble;
    cJSON_Delete(o);
    pthread_mutex_lock(&s->lock);
    s->offset += add;
    int64_t now = sim_now_locked(s);
    fleet_advance(s->fleet, now);
    pthread_mutex_unlock(&s->lock);
    cJSON *j = cJSON_CreateObject();
    char t[UTIL_TIME_LEN];
    util_iso_time(now, t);
    if (j && !cJSON_AddStringToObject(j, "simTime", t)) {
        cJSON_Delete(j);
        j = NULL;
    }
    reply_json(r, 200, j);
}

static void admin_notification(struct sim_server *s, const char *vin, const struct request *q,
                               struct reply *r)
{
    struct notification_req n;
    char err[ERR_LEN];
    if (validate_notification(q->body, q->len, &n, err, sizeof err) != 0) {
        reply_bad(r, err);
        return;
    }
    pthread_mutex_lock(&s->lock);
    int64_t now = sim_now_locked(s);
    fleet_advance(s->fleet, now);
    struct vehicle *v = fleet_find(s->fleet, vin);
    struct notification *x = v ? fleet_add_notification(s->fleet, v, n.type, n.severity,
                                                         n.has_title ? n.title : NULL,
                                                         n.has_message ? n.message : NULL, now)
                               : NULL;
    if (!v)
        reply_error(r, 404, "NOT_FOUND", "vehicle %.32s not found", vin);
    else
        reply_json(r, x ? 201 : 500, x ? render_notification(x) : NULL);
    pthread_mutex_unlock(&s->lock);
}

/* /_sim/vehicles[/VIN[/notifications]] */
static void admin_vehicles(struct sim_server *s, const char *rest, const char *method,
                           const struct request *q, struct reply *r)
{
    if (*rest == '\0') {
        if (strcmp(method, "POST") != 0) {
            snprintf(r->allow, sizeof r->allow, "POST");
            reply_error(r, 405, "METHOD_NOT_ALLOWED", "use POST");
            return;
        }
        pthread_mutex_lock(&s->lock);
        int64_t now = sim_now_locked(s);
        fleet_advance(s->fleet, now);
        struct vehicle *v = fleet_add(s->fleet, now);
        if (v)
            reply_json(r, 201, render_vehicle(v));
        else
            reply_error(r, 507, "FLEET_FULL", "cannot add a vehicle");
        pthread_mutex_unlock(&s->lock);
        return;
    }
    char vin[64];
    size_t n = rest[0] == '/' ? strcspn(rest + 1, "/") : 0;
    if (n == 0 || n >= sizeof vin) {
        reply_error(r, 404, "NOT_FOUND", "no such admin resource");
        return;
    }
    memcpy(vin, rest + 1, n);
    vin[n] = '\0';
    const char *tail = rest + 1 + n;
    if (strcmp(tail, "/notifications") == 0 && strcmp(method, "POST") == 0) {
        admin_notification(s, vin, q, r);
    } else if (*tail == '\0' && strcmp(method, "DELETE") == 0) {
        pthread_mutex_lock(&s->lock);
        int rc = fleet_remove(s->fleet, vin);
        pthread_mutex_unlock(&s->lock);
        if (rc != 0) {
            reply_error(r, 404, "NOT_FOUND", "vehicle %.32s not found", vin);
        } else {
            cJSON *j = cJSON_CreateObject();
            if (j && !cJSON_AddStringToObject(j, "removed", vin)) {
                cJSON_Delete(j);
                j = NULL;
            }
            reply_json(r, 200, j);
        }
    } else {
        reply_error(r, 404, "NOT_FOUND", "no such admin resource or method");
    }
}

static void handle_admin(struct sim_server *s, const char *url, const char *method,
                         const struct request *q, struct reply *r)
{
    const char *rest = url + strlen(ADMIN_PREFIX);
    if (strcmp(rest, "state") == 0 && strcmp(method, "GET") == 0) {
        pthread_mutex_lock(&s->lock);
        int64_t now = sim_now_locked(s);
        fleet_advance(s->fleet, now);
        reply_json(r, 200, render_state(s->fleet, now));
        pthread_mutex_unlock(&s->lock);
    } else if (strcmp(rest, "faults") == 0) {
        admin_faults(s, method, q, r);
    } else if (strcmp(rest, "advance") == 0 && strcmp(method, "POST") == 0) {
        admin_advance(s, q, r);
    } else if (strncmp(rest, "vehicles", 8) == 0 && (rest[8] == '\0' || rest[8] == '/')) {
        admin_vehicles(s, rest + 8, method, q, r);
    } else {
        reply_error(r, 404, "NOT_FOUND", "no such admin resource");
    }
}

/* ---------------------------------------------------------------- MHD glue */

static enum MHD_Result add_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    cJSON *q = cls;
    if (key)
        (void)cJSON_AddStringToObject(q, key, value ? value : "");
    return MHD_YES;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct reply *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(r->len, r->body ? r->body : (void *)"",
                                                                MHD_RESPMEM_MUST_COPY);
    free(r->body);
    r->body = NULL;
    if (!resp)
        return MHD_NO;
    enum MHD_Result ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    char buf[32];
    if (r->retry_after > 0) {
        snprintf(buf, sizeof buf, "%d", r->retry_after);
        ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, buf);
    }
    if (r->allow[0] && r->status == 405)
        ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->www_auth)
        ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                      "Bearer realm=\"toyota\", error=\"invalid_token\"");
    if (r->no_store) {
        ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        ok &= MHD_add_response_header(resp, MHD_HTTP_HEADER_PRAGMA, "no-cache");
    }
    enum MHD_Result ret = ok ? MHD_queue_response(c, (unsigned)r->status, resp) : MHD_NO;
    MHD_destroy_response(resp);
    return ret;
}

/* Appends one chunk of the request body, keeping at most HANDLERS_BODY_MAX. */
static void accumulate(struct request *q, const char *data, size_t n)
{
    if (q->too_large || n == 0)
        return;
    if (q->len + n > HANDLERS_BODY_MAX) {
        q->too_large = true;
        return;
    }
    if (q->len + n + 1 > q->cap) {
        size_t cap = q->cap ? q->cap : 1024;
        while (cap < q->len + n + 1)
            cap *= 2;
        char *b = realloc(q->body, cap);
        if (!b) {
            q->too_large = true;
            return;
        }
        q->body = b;
        q->cap = cap;
    }
    memcpy(q->body + q->len, data, n);
    q->len += n;
    q->body[q->len] = '\0';
}

enum MHD_Result handlers_access(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    (void)version;
    struct sim_server *s = cls;
    struct request *q = *con_cls;
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q)
            return MHD_NO;
        *con_cls = q;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        accumulate(q, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    struct reply r = {.status = 500};
    if (strncmp(url, ADMIN_PREFIX, strlen(ADMIN_PREFIX)) == 0) {
        if (q->too_large)
            reply_error(&r, 413, "PAYLOAD_TOO_LARGE", "request body too large");
        else
            handle_admin(s, url, method, q, &r);
        return send_reply(c, &r);
    }
    if (strcmp(url, TOKEN_PATH) == 0)
        handle_token(s, c, method, q, &r);
    else if (strncmp(url, API_PREFIX "/", strlen(API_PREFIX) + 1) == 0)
        handle_api(s, c, url, method, q, &r);
    else
        reply_error(&r, 404, "NOT_FOUND", "no such resource");
    if (s->log) {
        cJSON *qo = cJSON_CreateObject();
        if (qo)
            MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_query, qo);
        reqlog_write(s->log, method, url, qo, q->body, q->len, r.status);
        cJSON_Delete(qo);
    }
    return send_reply(c, &r);
}

void handlers_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct request *q = *con_cls;
    if (q) {
        free(q->body);
        free(q);
        *con_cls = NULL;
    }
}

int handlers_init(struct sim_server *s, uint64_t seed, double speed, int64_t epoch, int command_delay)
{
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        return -1;
    s->speed = speed;
    s->epoch = epoch;
    s->offset = 0;
    s->command_delay = command_delay;
    atomic_init(&s->stopping, false);
    util_rng_seed(&s->rng, seed, 0xBEEFULL);
    clock_gettime(CLOCK_MONOTONIC, &s->mono_start);
    return 0;
}

void handlers_destroy(struct sim_server *s)
{
    pthread_mutex_destroy(&s->lock);
}
