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

enum phase { PH_QUEUED, PH_SENDING, PH_CONFIRMING, PH_DONE };

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
    struct api_result result;
    time_t reference;              /* the state must be at least this new */
    unsigned confirm_mask;         /* resources still to confirm */
    int confirm_attempts;
    double confirm_due;
    struct pcmd *next;
};

struct cmdexec {
    struct pcmd *head;
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

/* Publishes the command's one result: on <base>/<VIN>/command/result and, for
 * an MQTT v5 request, on its response topic with its correlation data. */
static void publish_result(struct bridge *b, const char *vin, const struct command_req *req,
                           bool ok, const struct api_result *res, const char *error,
                           int confirmed, const char *response_topic,
                           const char *correlation, size_t correlation_len)
{
    char topic[BRIDGE_TOPIC];
    char *json = command_result_json(req, ok, res, error, confirmed);
    if (!json) return;
    if (vin && bridge_topic(b, topic, sizeof topic, vin, "command/result") == 0)
        mqtt_publish(b->mqtt, topic, json, strlen(json), 1, false);
    if (response_topic && *response_topic)
        mqtt_publish_reply(b->mqtt, response_topic, json, strlen(json), correlation, correlation_len);
    log_msg(ok ? LOG_INFO : LOG_WARN, vin, "command", "%s: %s%s%s",
            req && command_name(req->cmd) ? command_name(req->cmd) : "command",
            ok ? "ok" : "failed", error && *error ? ": " : "", error ? error : "");
    free(json);
}

static void finish(struct bridge *b, struct pcmd *c, bool ok, const char *error, int confirmed)
{
    publish_result(b, c->vin, &c->req, ok, &c->result, error, confirmed, c->response_topic,
                   c->correlation, c->correlation_len);
    c->phase = PH_DONE;
}

/* Splits "<base>/<VIN>/<suffix>"; returns 0 with vin and suffix set. */
static int split_topic(const struct bridge *b, const char *topic, char *vin, size_t vinlen,
                       const char **suffix)
{
    size_t bl = strlen(b->cfg->mqtt.base_topic);
    if (strncmp(topic, b->cfg->mqtt.base_topic, bl) != 0 || topic[bl] != '/') return -1;
    const char *v = topic + bl + 1;
    const char *slash = strchr(v, '/');
    if (!slash || (size_t)(slash - v) >= vinlen) return -1;
    memcpy(vin, v, (size_t)(slash - v));
    vin[slash - v] = '\0';
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

void cmdexec_on_message(struct bridge *b, const struct queue_event *ev)
{
    char vin[32], err[COMMAND_ERR];
    const char *suffix;
    if (split_topic(b, ev->topic, vin, sizeof vin, &suffix) != 0) return;
    if (strcmp(suffix, "command/result") == 0) return;
    struct vehicle *v = api_vin_valid(vin) ? bridge_vehicle(b, vin) : NULL;
    struct command_req req;
    struct command_policy pol = { b->cfg->commands.allow, b->cfg->commands.unlock_code };
    memset(&req, 0, sizeof req);
    req.cmd = CMD_COUNT;
    int rc = command_parse(suffix, ev->payload, ev->len, ev->retained, &pol, &req, err, sizeof err);
    if (rc == 0 && !v) {
        rc = -1;
        snprintf(err, sizeof err, "unknown vehicle: not a VIN of this account");
    }
    if (rc != 0) {
        /* A result topic is only built from a VIN of the account. */
        publish_result(b, v ? v->info.vin : NULL, &req, false, NULL, err, -1, ev->response_topic,
                       ev->correlation, ev->correlation_len);
        if (!v) log_warn("command on %s rejected: %s", api_vin_valid(vin) ? vin : "(invalid VIN)", err);
        return;
    }
    struct pcmd *c = calloc(1, sizeof *c);
    if (!c) return;
    c->req = req;
    memcpy(c->vin, v->info.vin, sizeof c->vin);
    double age = (double)b->cfg->commands.max_age_s;
    if (ev->expiry_s >= 0 && ev->expiry_s < age) age = (double)ev->expiry_s;
    c->deadline = bridge_now() + age - (double)(time(NULL) - ev->received);
    if (ev->response_topic) c->response_topic = strdup(ev->response_topic);
    if (ev->correlation) c->correlation = dup_bytes(ev->correlation, ev->correlation_len);
    c->correlation_len = ev->correlation ? ev->correlation_len : 0;
    struct pcmd **pp = &b->cmds->head;
    while (*pp) pp = &(*pp)->next;
    *pp = c;
    log_msg(LOG_INFO, c->vin, "command", "%s received", command_name(req.cmd));
}

static void start_call(struct bridge *b, struct pcmd *c);

/* The reference time a confirmation must reach: the API's own timestamp for
 * the command when it gave one, else our clock when the call returned. */
static void begin_confirmation(struct bridge *b, struct pcmd *c)
{
    struct vehicle *v = bridge_vehicle(b, c->vin);
    unsigned mask = command_affects(c->req.cmd);
    c->confirm_mask = 0;
    for (int r = 0; v && r < RES_COUNT; r++)
        if ((mask & (1u << r)) && !v->slot[r].absent && b->cfg->poll.interval[r] &&
            resource_get((enum resource)r)->timestamp)
            c->confirm_mask |= 1u << r;
    if (!c->confirm_mask) {
        finish(b, c, true, NULL, -1);
        return;
    }
    if (cmdexec_parse_time(c->result.timestamp, &c->reference) != 0) c->reference = time(NULL);
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
    if (resp->status == 401 && bridge_unauthorized(b)) {
        start_call(b, c);        /* the same call once more with the renewed token */
        return;
    }
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
    struct creq *q = malloc(sizeof *q);
    if (!q) {
        finish(b, c, false, "out of memory", -1);
        return;
    }
    q->b = b;
    q->c = c;
    snprintf(url, sizeof url, "%s%s", b->cfg->api.base_url, call->path);
    bridge_auth_header(b, auth, sizeof auth);
    const char *headers[] = { auth, "Accept: application/json", "Content-Type: application/json", NULL };
    bridge_count_call(b);
    if (http_request(b->http, call->method, url, headers, call->body, on_call_done, q) != 0) {
        free(q);
        finish(b, c, false, "cannot start the request", -1);
    }
}

/* True when an earlier command of the same vehicle is still sending. */
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
        finish(b, c, false, "the vehicle left the account", -1);
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
    log_msg(LOG_INFO, c->vin, "command", "%s: sending", command_name(c->req.cmd));
    start_call(b, c);
}

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

void cmdexec_tick(struct bridge *b)
{
    double now = bridge_now();
    for (struct pcmd *c = b->cmds->head; c; c = c->next) {
        if (c->phase == PH_QUEUED && !vehicle_busy(b, c)) {
            if (now > c->deadline)
                finish(b, c, false, "expired: the command could not be sent within commands.max_age_s", -1);
            else if (bridge_may_call(b, bridge_vehicle(b, c->vin)))
                start_command(b, c);
        } else if (c->phase == PH_CONFIRMING && now >= c->confirm_due) {
            confirm_step(b, c);
        }
    }
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
}

double cmdexec_next_due(const struct bridge *b)
{
    double next = INFINITY;
    for (const struct pcmd *c = b->cmds->head; c; c = c->next) {
        if (c->phase == PH_QUEUED) return 0;
        if (c->phase == PH_DONE) return 0;
        if (c->phase == PH_CONFIRMING && c->confirm_due < next) next = c->confirm_due;
    }
    return next;
}

void cmdexec_on_resource(struct bridge *b, struct vehicle *v, enum resource r, const cJSON *tree)
{
    const char *field = resource_get(r)->timestamp;
    const cJSON *ts = field ? cJSON_GetObjectItemCaseSensitive(tree, field) : NULL;
    time_t t;
    if (!cJSON_IsString(ts) || cmdexec_parse_time(ts->valuestring, &t) != 0) return;
    for (struct pcmd *c = b->cmds->head; c; c = c->next) {
        if (c->phase != PH_CONFIRMING || strcmp(c->vin, v->info.vin) != 0) continue;
        if (!(c->confirm_mask & (1u << r)) || t < c->reference) continue;
        c->confirm_mask &= ~(1u << r);
        if (!c->confirm_mask) finish(b, c, true, NULL, 1);
    }
}
