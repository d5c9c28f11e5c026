/* cmdexec.c - command execution; see cmdexec.h.
 *
 * Each command becomes one struct pcmd in a FIFO. A command starts only when
 * no earlier command of the same vehicle is still making its API calls (so a
 * vehicle's commands run in the order received), and only before its
 * deadline (commands.max_age_s, or the MQTT v5 message expiry): a command
 * that could not be sent in time fails and is never executed late.
 */
#include "cmdexec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "http.h"
#include "log.h"
#include "mqtt.h"
#include "publish.h"

enum phase { PH_QUEUED, PH_SENDING, PH_CONFIRMING, PH_DONE };

/* °F: a temperature the API echoes back counts as the one sent. */
#define TEMP_EPS 0.05

struct pcmd {
    struct command_req req;
    char vin[API_VIN_LEN + 1];
    double deadline;               /* monotonic */
    char *response_topic;
    char *correlation;
    size_t correlation_len;
    enum phase phase;
    struct command_call calls[COMMAND_MAX_CALLS];
    int ncalls, next_call;
    bool auth_retry;               /* a 401 renewed the token: resend when allowed */
    struct api_result result;
    time_t sent_at;                /* wall clock when the first call went out */
    time_t reference;              /* the state must be at least this new */
    unsigned confirm_mask;         /* resources still to confirm */
    bool confirmed;                /* every resource showed the change: finish at the next tick */
    int confirm_attempts;
    double confirm_due;
    struct pcmd *next;
};

/* The last doorsLocked seen per vehicle, for <base>/<VIN>/lock/state. */
struct lockstate {
    char vin[API_VIN_LEN + 1];
    int locked;                    /* -1 unknown, 0, 1 */
    struct lockstate *next;
};

struct cmdexec {
    struct pcmd *head;
    struct lockstate *locks;
    double next_due;               /* computed by cmdexec_tick() */
};

/* Only the callback's owner knows the command is still alive: a command is
 * never freed while a request for it is in flight. */
struct creq {
    struct bridge *b;
    struct pcmd *c;
};

int cmdexec_init(struct bridge *b)
{
    b->cmds = calloc(1, sizeof *b->cmds);
    return b->cmds ? 0 : -1;
}

static void pcmd_free(struct pcmd *c)
{
    command_calls_free(c->calls, c->ncalls);
    free(c->response_topic);
    free(c->correlation);
    free(c);
}

void cmdexec_free(struct bridge *b)
{
    if (!b->cmds) return;
    struct pcmd *c = b->cmds->head;
    while (c) {
        struct pcmd *n = c->next;
        pcmd_free(c);
        c = n;
    }
    struct lockstate *l = b->cmds->locks;
    while (l) {
        struct lockstate *n = l->next;
        free(l);
        l = n;
    }
    free(b->cmds);
    b->cmds = NULL;
}

int cmdexec_parse_time(const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    const char *p = s + n;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++) {}
    long off = 0;
    if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2) return -1;
        off = (hh * 3600L + mm * 60L) * (*p == '+' ? 1 : -1);
        p += 6;
    } else if (*p == 'Z') {
        p++;
    } else {
        return -1;
    }
    if (*p) return -1;
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || tm.tm_year < 1970 || tm.tm_year > 9999)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = timegm(&tm) - off;
    return 0;
}

/* ---- the lock's state: LOCKED/UNLOCKED from status.doorsLocked, LOCKING/
 * UNLOCKING while a lock or unlock command of the vehicle is under way ---- */

static struct lockstate *lock_find(struct cmdexec *x, const char *vin, bool create)
{
    for (struct lockstate *l = x->locks; l; l = l->next)
        if (strcmp(l->vin, vin) == 0) return l;
    if (!create) return NULL;
    struct lockstate *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    snprintf(l->vin, sizeof l->vin, "%s", vin);
    l->locked = -1;
    l->next = x->locks;
    x->locks = l;
    return l;
}

static void lock_publish(struct bridge *b, const char *vin)
{
    char topic[BRIDGE_TOPIC];
    const char *state = NULL;
    for (const struct pcmd *c = b->cmds->head; c && !state; c = c->next)
        if (strcmp(c->vin, vin) == 0 && (c->phase == PH_SENDING || c->phase == PH_CONFIRMING) &&
            (c->req.cmd == CMD_LOCK || c->req.cmd == CMD_UNLOCK))
            state = c->req.cmd == CMD_LOCK ? "LOCKING" : "UNLOCKING";
    const struct lockstate *l = lock_find(b->cmds, vin, false);
    if (!state && l && l->locked >= 0) state = l->locked ? "LOCKED" : "UNLOCKED";
    if (state && bridge_topic(b, topic, sizeof topic, vin, "lock/state") == 0)
        publish_retained(b->pub, topic, state);
}

/* ---- results ---------------------------------------------------------- */

/* Publishes the command's one result: on <base>/<VIN>/command/result (vin
 * NULL: the topic named no valid VIN, so only the response topic gets it)
 * and, for an MQTT v5 request, on its response topic with its correlation
 * data. */
static void publish_result(struct bridge *b, const char *vin, const struct command_req *req,
                           bool ok, const struct api_result *res, const char *error,
                           int confirmed, const char *response_topic,
                           const char *correlation, size_t correlation_len)
{
    char topic[BRIDGE_TOPIC];
    char *json = command_result_json(req, ok, res, error, confirmed);
    if (!json) {
        log_error("command: out of memory; a result was lost");
        return;
    }
    if (vin && bridge_topic(b, topic, sizeof topic, vin, "command/result") == 0)
        mqtt_publish(b->mqtt, topic, json, strlen(json), 1, false);
    if (response_topic && *response_topic)
        mqtt_publish_reply(b->mqtt, response_topic, json, strlen(json), correlation, correlation_len);
    log_msg(ok ? LOG_INFO : LOG_WARN, vin, "command", "%s: %s%s%s%s",
            req && command_name(req->cmd) ? command_name(req->cmd) : "command",
            ok ? "ok" : "failed", error && *error ? ": " : "", error ? error : "",
            confirmed > 0 ? " (confirmed)" : confirmed == 0 ? " (not confirmed in time)" : "");
    free(json);
}

static void finish(struct bridge *b, struct pcmd *c, bool ok, const char *error, int confirmed)
{
    enum phase was = c->phase;
    c->phase = PH_DONE;
    if ((c->req.cmd == CMD_LOCK || c->req.cmd == CMD_UNLOCK) &&
        (was == PH_SENDING || was == PH_CONFIRMING))
        lock_publish(b, c->vin);
    publish_result(b, c->vin, &c->req, ok, &c->result, error, confirmed, c->response_topic,
                   c->correlation, c->correlation_len);
}

/* ---- receiving -------------------------------------------------------- */

/* Splits "<base>/<seg>/<suffix>": seg (at most seglen - 1 bytes) into seg.
 * Returns 0, or -1 when the topic is not below <base>/ or seg is too long. */
static int split_topic(const struct bridge *b, const char *topic, char *seg, size_t seglen,
                       const char **suffix)
{
    size_t bl = strlen(b->cfg->mqtt.base_topic);
    if (strncmp(topic, b->cfg->mqtt.base_topic, bl) != 0 || topic[bl] != '/') return -1;
    const char *v = topic + bl + 1;
    const char *slash = strchr(v, '/');
    if (!slash || (size_t)(slash - v) >= seglen) return -1;
    memcpy(seg, v, (size_t)(slash - v));
    seg[slash - v] = '\0';
    *suffix = slash + 1;
    return 0;
}

static char *dup_bytes(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* The monotonic time by which the command must have been sent: the smaller
 * of commands.max_age_s and the MQTT v5 expiry the broker forwarded, counted
 * from the message's arrival. */
static double deadline_of(const struct bridge *b, const struct queue_event *ev)
{
    double age = (double)b->cfg->commands.max_age_s;
    if (ev->expiry_s >= 0 && (double)ev->expiry_s < age) age = (double)ev->expiry_s;
    return bridge_now() + age - (double)(time(NULL) - ev->received);
}

/* Queues a validated command for vin (a well-formed VIN). Returns 0, or -1
 * when out of memory. */
static int enqueue(struct bridge *b, const struct queue_event *ev, const struct command_req *req,
                   const char *vin)
{
    if (!api_vin_valid(vin)) return -1;
    struct pcmd *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->req = *req;
    memcpy(c->vin, vin, API_VIN_LEN + 1);
    c->deadline = deadline_of(b, ev);
    c->response_topic = ev->response_topic ? strdup(ev->response_topic) : NULL;
    c->correlation = ev->correlation ? dup_bytes(ev->correlation, ev->correlation_len) : NULL;
    c->correlation_len = c->correlation ? ev->correlation_len : 0;
    if ((ev->response_topic && !c->response_topic) || (ev->correlation && !c->correlation)) {
        pcmd_free(c);
        return -1;
    }
    struct pcmd **pp = &b->cmds->head;
    while (*pp) pp = &(*pp)->next;
    *pp = c;
    log_msg(LOG_INFO, c->vin, "command", "%s received", command_name(req->cmd));
    return 0;
}

void cmdexec_on_message(struct bridge *b, const struct queue_event *ev)
{
    char seg[API_VIN_LEN + 16], err[COMMAND_ERR];
    const char *suffix;
    if (split_topic(b, ev->topic, seg, sizeof seg, &suffix) != 0) {
        log_warn("command: ignored a message on a topic that names no vehicle");
        return;
    }
    if (strcmp(suffix, "command/result") == 0 || strcmp(suffix, "lock/state") == 0) return;
    bool vin_ok = api_vin_valid(seg);
    struct vehicle *v = vin_ok ? bridge_vehicle(b, seg) : NULL;
    struct command_req req;
    struct command_policy pol = { b->cfg->commands.allow, b->cfg->commands.unlock_code };
    memset(&req, 0, sizeof req);
    req.cmd = CMD_COUNT;
    int rc = command_parse(suffix, ev->payload, ev->len, ev->retained, &pol, &req, err, sizeof err);
    /* Before the account's vehicle list is known, a well-formed VIN waits
     * (within its deadline) for it; after, only the account's VINs pass. */
    if (rc == 0 && !v && (!vin_ok || b->vehicles_loaded)) {
        rc = -1;
        snprintf(err, sizeof err, "unknown vehicle: not a VIN of this account");
    }
    if (rc == 0 && enqueue(b, ev, &req, seg) != 0) {
        rc = -1;
        snprintf(err, sizeof err, "out of memory");
    }
    if (rc != 0) {
        /* A result topic is only built from a well-formed VIN. */
        publish_result(b, vin_ok ? seg : NULL, &req, false, NULL, err, -1, ev->response_topic,
                       ev->correlation, ev->correlation_len);
        if (!v) log_warn("command on %s rejected: %s", vin_ok ? seg : "(invalid VIN)", err);
    }
}

/* ---- sending ---------------------------------------------------------- */

static void start_call(struct bridge *b, struct pcmd *c);

/* Starts the confirmation: the resources the command changes, that the
 * bridge polls and the vehicle has, are polled again until they show the
 * change. The reference time is the API's own timestamp for the command
 * when it gave one, else our clock when the first call went out. */
static void begin_confirmation(struct bridge *b, struct pcmd *c)
{
    struct vehicle *v = bridge_vehicle(b, c->vin);
    unsigned mask = command_affects(c->req.cmd);
    c->confirm_mask = 0;
    for (int r = 0; v && r < RES_COUNT; r++)
        if ((mask & (1u << r)) && !v->slot[r].absent && b->cfg->poll.interval[r])
            c->confirm_mask |= 1u << r;
    if (!c->confirm_mask) {
        finish(b, c, true, NULL, -1);
        return;
    }
    if (cmdexec_parse_time(c->result.timestamp, &c->reference) != 0) c->reference = c->sent_at;
    c->phase = PH_CONFIRMING;
    c->confirm_attempts = 0;
    c->confirm_due = bridge_now() + b->cfg->commands.confirm_delay_s;
}

static void on_call_done(void *ud, const struct http_response *resp)
{
    struct creq *q = ud;
    struct bridge *b = q->b;
    struct pcmd *c = q->c;
    char err[COMMAND_ERR], msg[160];
    free(q);
    if (resp->cancelled) return;
    if (resp->status == 401 && !c->auth_retry && bridge_unauthorized(b)) {
        c->auth_retry = true;    /* the same call once more, with the renewed token (tick) */
        return;
    }
    c->auth_retry = false;
    if (resp->error || resp->status < 200 || resp->status >= 300) {
        api_error_message(resp->body, resp->len, msg, sizeof msg);
        if (resp->error) snprintf(err, sizeof err, "request failed: %s", resp->error);
        else snprintf(err, sizeof err, "HTTP %ld%s%s", resp->status, msg[0] ? ": " : "", msg);
        finish(b, c, false, err, -1);
        return;
    }
    if (api_parse_result(resp->body, resp->len, &c->result, err, sizeof err) != 0) {
        finish(b, c, false, "malformed response from the API", -1);
        return;
    }
    if (c->result.return_code[0] && strcmp(c->result.return_code, "000000") != 0) {
        snprintf(err, sizeof err, "the API answered return code %s", c->result.return_code);
        finish(b, c, false, err, -1);
        return;
    }
    if (++c->next_call < c->ncalls) {
        start_call(b, c);
        return;
    }
    begin_confirmation(b, c);
}

static void start_call(struct bridge *b, struct pcmd *c)
{
    char url[1024], auth[CONFIG_SECRET + 32];
    const struct command_call *call = &c->calls[c->next_call];
    int n = snprintf(url, sizeof url, "%s%s", b->cfg->api.base_url, call->path);
    if (n < 0 || (size_t)n >= sizeof url) {
        finish(b, c, false, "request URL too long", -1);
        return;
    }
    struct creq *q = malloc(sizeof *q);
    if (!q) {
        finish(b, c, false, "out of memory", -1);
        return;
    }
    q->b = b;
    q->c = c;
    bridge_auth_header(b, auth, sizeof auth);
    const char *headers[] = { auth, "Accept: application/json", "Content-Type: application/json", NULL };
    bridge_count_vehicle_call(b, c->vin, c->req.cmd == CMD_REFRESH_STATUS);
    if (http_request(b->http, call->method, url, headers, call->body, on_call_done, q) != 0) {
        free(q);
        finish(b, c, false, "cannot start the request", -1);
    }
    memset(auth, 0, sizeof auth);
}

/* True when an earlier command of the same vehicle is not finished sending. */
static bool vehicle_busy(const struct bridge *b, const struct pcmd *c)
{
    for (const struct pcmd *o = b->cmds->head; o && o != c; o = o->next)
        if (strcmp(o->vin, c->vin) == 0 && (o->phase == PH_SENDING || o->phase == PH_QUEUED))
            return true;
    return false;
}

static void start_command(struct bridge *b, struct pcmd *c)
{
    char err[COMMAND_ERR];
    struct vehicle *v = bridge_vehicle(b, c->vin);
    if (!v) {
        finish(b, c, false, "unknown vehicle: not a VIN of this account", -1);
        return;
    }
    if (c->req.cmd == CMD_REFRESH_STATUS && !bridge_may_refresh(b, v)) {
        /* Each refresh wakes the car's modem and drains its 12 V battery. */
        snprintf(err, sizeof err, "daily limit reached: %d refresh_status commands per vehicle "
                 "(api.refresh_daily_limit); try again tomorrow (UTC)", b->cfg->api.refresh_daily_limit);
        finish(b, c, false, err, -1);
        return;
    }
    c->ncalls = command_plan(&c->req, &v->info, b->cfg->api.device_id, b->cfg->api.device_type,
                             c->calls, err, sizeof err);
    if (c->ncalls < 0) {
        c->ncalls = 0;
        finish(b, c, false, err, -1);
        return;
    }
    c->phase = PH_SENDING;
    c->next_call = 0;
    c->sent_at = time(NULL);
    log_msg(LOG_INFO, c->vin, "command", "%s: sending", command_name(c->req.cmd));
    if (c->req.cmd == CMD_LOCK || c->req.cmd == CMD_UNLOCK) lock_publish(b, c->vin);
    start_call(b, c);
}

/* ---- confirming ------------------------------------------------------- */

static void confirm_step(struct bridge *b, struct pcmd *c)
{
    struct vehicle *v = bridge_vehicle(b, c->vin);
    if (!v || c->confirm_attempts >= b->cfg->commands.confirm_attempts) {
        finish(b, c, true, NULL, 0);
        return;
    }
    c->confirm_attempts++;
    for (int r = 0; r < RES_COUNT; r++)
        if ((c->confirm_mask & (1u << r)) && !v->slot[r].inflight) v->slot[r].due = 0;
    c->confirm_due = bridge_now() + b->cfg->commands.confirm_delay_s;
}

static bool json_bool_is(const cJSON *o, const char *key, bool want)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(it) && (cJSON_IsTrue(it) ? true : false) == want;
}

static bool json_num_is(const cJSON *o, const char *key, double want)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(it) && fabs(it->valuedouble - want) < TEMP_EPS;
}

static bool json_str_is(const cJSON *o, const char *key, const char *want)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(it) && it->valuestring && strcmp(it->valuestring, want) == 0;
}

/* Whether resource r (tree) shows what the command asked for, as far as
 * the resource can show it (refreshes have nothing to show but time). */
static bool shows_change(const struct command_req *q, enum resource r, const cJSON *tree)
{
    switch (q->cmd) {
    case CMD_LOCK: return r != RES_STATUS || json_bool_is(tree, "doorsLocked", true);
    case CMD_UNLOCK: return r != RES_STATUS || json_bool_is(tree, "doorsLocked", false);
    case CMD_TRUNK_OPEN:
        return r != RES_STATUS ||
               json_str_is(cJSON_GetObjectItemCaseSensitive(tree, "doorStatus"), "trunk", "open");
    case CMD_CLIMATE_START:
        return r != RES_CLIMATE || (json_bool_is(tree, "isRunning", true) &&
                                    (!q->has_temperature || json_num_is(tree, "temperature", q->temperature)));
    case CMD_CLIMATE_STOP: return r != RES_CLIMATE || json_bool_is(tree, "isRunning", false);
    case CMD_CLIMATE_SETTINGS:
        return r != RES_CLIMATE ||
               ((!q->has_temperature || json_num_is(tree, "temperature", q->temperature)) &&
                (!q->has_fan_speed || json_num_is(tree, "fanSpeed", q->fan_speed)) &&
                (!q->mode[0] || json_str_is(tree, "mode", q->mode)) &&
                (!q->start_after_settings || json_bool_is(tree, "isRunning", true)));
    case CMD_SET_ALIAS: return r != RES_VEHICLE || json_str_is(tree, "alias", q->alias);
    default: return true;
    }
}

/* Whether the resource's own timestamp must also have reached the command:
 * for commands that act on the car. Settings and the alias are stored by
 * the cloud at once and do not move the resource's timestamp when the
 * value was already the same, so their content alone confirms them. */
static bool needs_time(const struct command_req *q)
{
    if (q->cmd == CMD_SET_ALIAS) return false;
    if (q->cmd == CMD_CLIMATE_SETTINGS) return q->start_after_settings;
    return true;
}

void cmdexec_on_resource(struct bridge *b, struct vehicle *v, enum resource r, const cJSON *tree)
{
    const char *field = resource_get(r)->timestamp;
    const cJSON *ts = field ? cJSON_GetObjectItemCaseSensitive(tree, field) : NULL;
    time_t t = 0;
    bool has_time = cJSON_IsString(ts) && cmdexec_parse_time(ts->valuestring, &t) == 0;
    if (r == RES_STATUS) {
        const cJSON *dl = cJSON_GetObjectItemCaseSensitive(tree, "doorsLocked");
        struct lockstate *l = cJSON_IsBool(dl) ? lock_find(b->cmds, v->info.vin, true) : NULL;
        if (l) {
            l->locked = cJSON_IsTrue(dl) ? 1 : 0;
            lock_publish(b, v->info.vin);
        }
    }
    for (struct pcmd *c = b->cmds->head; c; c = c->next) {
        if (c->phase != PH_CONFIRMING || c->confirmed || strcmp(c->vin, v->info.vin) != 0) continue;
        if (!(c->confirm_mask & (1u << r))) continue;
        if (needs_time(&c->req) && (!has_time || t < c->reference)) continue;
        if (!shows_change(&c->req, r, tree)) continue;
        c->confirm_mask &= ~(1u << r);
        /* Finished by the next tick: after this resource's sub-topics are out. */
        if (!c->confirm_mask) c->confirmed = true;
    }
}

/* ---- the tick --------------------------------------------------------- */

/* Whether a queued command may start now. Only account-wide conditions
 * (a token being renewed, a 429 pause) hold a command back: api.daily_limit
 * pauses polling, not what a person asked for just now (the calls are still
 * counted); refresh_status has its own cap, checked in start_command(). */
static bool can_start(struct bridge *b, const struct pcmd *c)
{
    return b->vehicles_loaded && !vehicle_busy(b, c) && bridge_may_call(b, NULL);
}

static void tick_one(struct bridge *b, struct pcmd *c, double now)
{
    if (c->phase == PH_QUEUED && now > c->deadline) {
        finish(b, c, false, "expired: the command could not be sent within its time limit "
               "(commands.max_age_s or the message expiry)", -1);
    } else if (c->phase == PH_QUEUED && can_start(b, c)) {
        start_command(b, c);
    } else if (c->phase == PH_SENDING && c->auth_retry && bridge_may_call(b, NULL)) {
        if (now > c->deadline) {
            c->auth_retry = false;
            finish(b, c, false, "expired: the API refused the token and the renewal came too late", -1);
        } else {
            start_call(b, c);
        }
    } else if (c->phase == PH_CONFIRMING && c->confirmed) {
        finish(b, c, true, NULL, 1);
    } else if (c->phase == PH_CONFIRMING && now >= c->confirm_due) {
        confirm_step(b, c);
    }
}

/* When the command next needs the tick (INFINITY: only an event can move it). */
static double due_of(struct bridge *b, const struct pcmd *c)
{
    switch (c->phase) {
    case PH_QUEUED: return can_start(b, c) ? 0 : c->deadline;
    case PH_SENDING: return c->auth_retry ? (bridge_may_call(b, NULL) ? 0 : c->deadline) : INFINITY;
    case PH_CONFIRMING: return c->confirmed ? 0 : c->confirm_due;
    default: return 0;
    }
}

void cmdexec_tick(struct bridge *b)
{
    double now = bridge_now();
    for (struct pcmd *c = b->cmds->head; c; c = c->next) tick_one(b, c, now);
    struct pcmd **pp = &b->cmds->head;
    while (*pp) {
        struct pcmd *c = *pp;
        if (c->phase == PH_DONE) {
            *pp = c->next;
            pcmd_free(c);
        } else {
            pp = &c->next;
        }
    }
    double next = INFINITY;
    for (const struct pcmd *c = b->cmds->head; c; c = c->next) {
        double d = due_of(b, c);
        if (d < next) next = d;
    }
    b->cmds->next_due = next;
}

double cmdexec_next_due(const struct bridge *b)
{
    return b->cmds ? b->cmds->next_due : INFINITY;
}
