/* bridge.c - lifecycle and the main loop; see bridge.h.
 *
 * One thread does all the work: curl_multi_poll() sleeps until network
 * activity, a signal (signalfd), a queued MQTT event (curl_multi_wakeup from
 * Paho's threads) or the next due poll, whichever comes first.
 */
#include "bridge.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cmdexec.h"
#include "discovery.h"
#include "http.h"
#include "log.h"
#include "mqtt.h"
#include "poller.h"
#include "publish.h"
#include "queue.h"
#include "sync.h"

#define SHUTDOWN_MS 1500
#define ONCE_CONNECT_WAIT_S 20.0
#define STATE_SAVE_DELAY_S 5.0
/* Call counters change with every request: saving them each time would
 * write (and fsync) the state file every few seconds. A crash loses at most
 * this much counting; reaching a daily limit saves at once (poller.c). */
#define CALLS_SAVE_DELAY_S 60.0
#define RATE_LIMIT_DEFAULT_S 60    /* a 429 without Retry-After */

double bridge_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bridge_topic(const struct bridge *b, char *buf, size_t len, const char *vin,
                 const char *suffix)
{
    int n = snprintf(buf, len, "%s%s%s%s%s", b->cfg->mqtt.base_topic, vin ? "/" : "",
                     vin ? vin : "", suffix ? "/" : "", suffix ? suffix : "");
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

struct vehicle *bridge_vehicle(struct bridge *b, const char *vin)
{
    for (size_t i = 0; i < b->nvehicles; i++)
        if (strcmp(b->vehicles[i].info.vin, vin) == 0) return &b->vehicles[i];
    return NULL;
}

void bridge_note_error(struct bridge *b, const char *vin, const char *res, const char *msg)
{
    snprintf(b->last_error, sizeof b->last_error, "%s%s%.24s%s%.200s", vin ? vin : "",
             vin ? " " : "", res ? res : "", res ? ": " : "", msg);
    b->last_error_at = time(NULL);
    b->stats_dirty = true;
}

void bridge_note_success(struct bridge *b)
{
    b->last_success = time(NULL);
    b->auth_failed = false;      /* the API took our token */
    b->stats_dirty = true;
}

/* A new UTC day starts every count from zero. */
const char *bridge_today(struct bridge *b)
{
    char today[11];
    poller_date(today, time(NULL), 0);
    if (strcmp(today, b->api_calls_day) != 0) {
        memcpy(b->api_calls_day, today, sizeof today);
        b->api_calls_today = state_calls_total(&b->state, today);
        b->stats_dirty = true;
        for (size_t i = 0; i < b->nvehicles; i++) b->vehicles[i].calls_published = false;
    }
    return b->api_calls_day;
}

void bridge_count_call(struct bridge *b)
{
    bridge_today(b);
    b->api_calls_today++;
    b->stats_dirty = true;
}

void bridge_count_vehicle_call(struct bridge *b, const char *vin, bool is_refresh)
{
    bridge_count_call(b);
    if (!vin) return;
    if (state_calls_add(&b->state, vin, b->api_calls_day, is_refresh) != 0)
        log_msg(LOG_WARN, vin, NULL, "cannot count the API call in the state");
    else if (b->state_save_due == 0)
        b->state_save_due = bridge_now() + (is_refresh ? STATE_SAVE_DELAY_S : CALLS_SAVE_DELAY_S);
    struct vehicle *v = bridge_vehicle(b, vin);
    if (v) v->calls_published = false;
}

bool bridge_budget_ok(struct bridge *b, const struct vehicle *v)
{
    long calls = 0;
    if (!v || b->cfg->api.daily_limit <= 0) return true;
    bridge_today(b);
    state_calls_get(&b->state, v->info.vin, b->api_calls_day, &calls, NULL);
    return calls < b->cfg->api.daily_limit;
}

bool bridge_may_refresh(struct bridge *b, const struct vehicle *v)
{
    long refresh = 0;
    if (!v || b->cfg->api.refresh_daily_limit <= 0) return true;
    bridge_today(b);
    state_calls_get(&b->state, v->info.vin, b->api_calls_day, NULL, &refresh);
    return refresh < b->cfg->api.refresh_daily_limit;
}

void bridge_rate_limited(struct bridge *b, long retry_after_s)
{
    double now = bridge_now();
    double until = now + (double)(retry_after_s >= 0 ? retry_after_s : RATE_LIMIT_DEFAULT_S);
    if (until <= b->api_pause_until) return;
    if (b->api_pause_until <= now)
        log_warn("the API is rate limiting (HTTP 429): no API call for %.0f s%s", until - now,
                 retry_after_s >= 0 ? " (its Retry-After)" : "");
    b->api_pause_until = until;
}

bool bridge_auth_renewable(const struct bridge *b)
{
    return b->auth.mode == AUTH_OAUTH && !b->auth.permanent_failure && b->auth.refresh_token[0];
}

double bridge_calls_resume_at(const struct bridge *b)
{
    if (b->auth.mode == AUTH_OAUTH && (b->auth.in_flight || !b->auth.access_token[0] ||
                                       b->auth.expired))
        return INFINITY;
    return b->api_pause_until > bridge_now() ? b->api_pause_until : 0;
}

void bridge_auth_header(struct bridge *b, char *buf, size_t len)
{
    if (auth_header(&b->auth, buf, len) != 0) snprintf(buf, len, "X-No-Token: 1");
}

bool bridge_unauthorized(struct bridge *b)
{
    bool retry = auth_on_unauthorized(&b->auth);
    if (!retry && !bridge_auth_renewable(b)) {
        if (!b->auth_failed)
            log_msg(LOG_ERROR, NULL, "auth", "the API rejected the access token (HTTP 401)%s",
                    b->auth.mode == AUTH_STATIC ? ": check api.token" : "");
        b->auth_failed = true;
        bridge_note_error(b, NULL, "auth", "the API rejected the access token (401)");
    }
    return retry;
}

bool bridge_may_call(struct bridge *b, const struct vehicle *v)
{
    if (bridge_calls_resume_at(b) != 0) return false;
    return bridge_budget_ok(b, v);
}

/* ---- OAuth refresh ---------------------------------------------------- */

static void save_state_now(struct bridge *b)
{
    char err[STATE_ERR];
    if (state_save(&b->state, b->cfg->state_file, err, sizeof err) != 0)
        log_error("state: %s", err);
    b->state_save_due = 0;
}

static void on_token(void *ud, const struct http_response *resp)
{
    struct bridge *b = ud;
    char err[256];
    if (resp->cancelled) return;
    int rc = auth_handle_token_response(&b->auth, resp->error ? 0 : (int)resp->status,
                                        resp->body, resp->len, (long long)time(NULL), err, sizeof err);
    if (rc == AUTH_OK) {
        log_info("auth: access token renewed%s", b->auth_error[0] ? " (the token endpoint answers again)" : "");
        b->auth_error[0] = '\0';
        b->auth_failed = false;
        b->auth_gen++;
        state_set_tokens(&b->state, b->auth.refresh_token, b->auth.access_token, b->auth.expires_at);
        if (auth_take_rotated(&b->auth)) save_state_now(b);    /* a rotated refresh token is precious */
        else b->state_save_due = bridge_now() + STATE_SAVE_DELAY_S;
        return;
    }
    /* Once per streak, and always when it is fatal: the backoff already
     * spaces the attempts, but a dead endpoint should not fill the log. */
    if (!b->auth_error[0] || rc == AUTH_FATAL)
        log_msg(rc == AUTH_FATAL ? LOG_ERROR : LOG_WARN, NULL, "auth", "token refresh failed: %s%s",
                resp->error ? resp->error : err,
                rc == AUTH_FATAL ? "; API calls stop until the configuration is fixed" : " (will retry)");
    snprintf(b->auth_error, sizeof b->auth_error, "%s", resp->error ? resp->error : err);
    bridge_note_error(b, NULL, "auth", rc == AUTH_FATAL ? err : "token refresh failed");
    if (rc == AUTH_FATAL)
        for (size_t i = 0; i < b->nvehicles; i++) sync_vehicle_availability(b, &b->vehicles[i]);
    if (b->once && rc == AUTH_FATAL) b->stop = true;
}

static void auth_tick(struct bridge *b)
{
    if (!auth_needs_refresh(&b->auth, (long long)time(NULL))) return;
    char *body = auth_refresh_body(&b->auth);
    const char *headers[] = { "Content-Type: application/x-www-form-urlencoded",
                              "Accept: application/json", NULL };
    if (!body) return;
    auth_refresh_begin(&b->auth);
    if (http_request(b->http, "POST", b->auth.token_url, headers, body, on_token, b) != 0) {
        char err[128];
        log_error("auth: cannot start the token request");
        /* No response will come: status 0 puts the retry on auth's backoff. */
        auth_handle_token_response(&b->auth, 0, NULL, 0, (long long)time(NULL), err, sizeof err);
    }
    memset(body, 0, strlen(body));
    free(body);
}

static int auth_setup(struct bridge *b, char *err, size_t errlen)
{
    const struct config *c = b->cfg;
    if (!c->api.oauth.token_url[0])
        return auth_init_static(&b->auth, c->api.token) == 0 ? 0
               : (snprintf(err, errlen, "api.token is not usable"), -1);
    const char *cfg_rt = c->api.oauth.refresh_token;
    const char *origin = state_configured_refresh_token(&b->state);
    if (state_refresh_token(&b->state)[0] && origin[0] && strcmp(origin, cfg_rt) != 0) {
        /* The operator put a new refresh token in the configuration (after an
         * invalid_grant, say): the saved ones descend from the old one. */
        log_info("auth: api.oauth.refresh_token changed since the state file was written: using it");
        state_set_tokens(&b->state, NULL, NULL, 0);
    }
    if (state_set_configured_refresh_token(&b->state, cfg_rt) != 0) {
        snprintf(err, errlen, "api.oauth.refresh_token is too long");
        return -1;
    }
    if (!c->state_file[0])
        log_warn("auth: no state_file: a rotated refresh token is lost when the bridge stops");
    const char *rt = state_refresh_token(&b->state)[0] ? state_refresh_token(&b->state) : cfg_rt;
    if (auth_init_oauth(&b->auth, c->api.oauth.token_url, c->api.oauth.client_id,
                        c->api.oauth.client_secret, rt) != 0) {
        snprintf(err, errlen, "api.oauth settings are not usable");
        return -1;
    }
    if (state_access_token(&b->state)[0])
        auth_set_access_token(&b->auth, state_access_token(&b->state),
                              state_access_expires_at(&b->state));
    return 0;
}

/* ---- MQTT events ------------------------------------------------------ */

static void subscribe_all(struct bridge *b)
{
    char topic[BRIDGE_TOPIC];
    static const char *const cmd_filters[] = { "+/command", "+/lock/set", "+/climate/+/set",
                                               "+/alias/set" };
    /* --once publishes and leaves: it takes no commands. */
    for (size_t i = 0; !b->once && i < sizeof cmd_filters / sizeof cmd_filters[0]; i++)
        if (bridge_topic(b, topic, sizeof topic, NULL, NULL) == 0) {
            char f[BRIDGE_TOPIC + 32];
            snprintf(f, sizeof f, "%s/%s", topic, cmd_filters[i]);
            mqtt_subscribe(b->mqtt, f, 1);
        }
    if (b->cfg->homeassistant.enabled) {
        snprintf(topic, sizeof topic, "%s/status", b->cfg->homeassistant.discovery_prefix);
        mqtt_subscribe(b->mqtt, topic, 1);
        discovery_on_connect(b);
    }
}

static void on_connected(struct bridge *b)
{
    char topic[BRIDGE_TOPIC];
    log_info("mqtt: connected to %s", b->cfg->mqtt.url);
    b->mqtt_up = true;
    mqtt_set_ready(b->mqtt, true);
    /* The store first: on a reconnection it already holds bridge/state
     * "online", which publish_retained() then does not send a second time. */
    sync_republish(b);
    if (bridge_topic(b, topic, sizeof topic, NULL, "bridge/state") == 0)
        publish_retained(b->pub, topic, "online");
    subscribe_all(b);
}

static void on_message(struct bridge *b, struct queue_event *ev)
{
    char topic[BRIDGE_TOPIC];
    snprintf(topic, sizeof topic, "%s/status", b->cfg->homeassistant.discovery_prefix);
    if (b->cfg->homeassistant.enabled && strcmp(ev->topic, topic) == 0) {
        if (ev->len == 6 && memcmp(ev->payload, "online", 6) == 0) {
            log_info("home assistant is online: republishing discovery and state");
            sync_discovery(b);
            sync_republish(b);
        }
        return;
    }
    if (discovery_on_message(b, ev)) return;
    cmdexec_on_message(b, ev);
}

static void drain_queue(struct bridge *b)
{
    struct queue_event *ev;
    while ((ev = queue_pop(b->queue))) {
        switch (ev->kind) {
        case QUEUE_CONNECTED: on_connected(b); break;
        case QUEUE_LOST:
            b->mqtt_up = false;
            mqtt_set_ready(b->mqtt, false);
            log_warn("mqtt: connection lost; reconnecting");
            break;
        case QUEUE_MESSAGE: on_message(b, ev); break;
        }
        queue_event_free(ev);
    }
}

/* ---- signals and the loop --------------------------------------------- */

static int signals_setup(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    /* Blocked before Paho's threads exist, so they inherit the mask and
     * every signal reaches the signalfd on this thread. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static void read_signals(struct bridge *b)
{
    struct signalfd_siginfo si;
    while (read(b->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            /* A broken edit must not take a running bridge down: only a file
             * that validates replaces the running configuration. */
            struct config *next = malloc(sizeof *next);
            char err[CONFIG_ERR];
            if (!next) continue;
            if (config_load(next, b->cfg->path, err, sizeof err) != 0) {
                log_error("SIGHUP: %s; keeping the running configuration", err);
                free(next);
                continue;
            }
            memset(next, 0, sizeof *next);
            free(next);
            log_info("SIGHUP: reloading the configuration");
            b->reload = true;
        } else {
            log_info("signal %u: shutting down", si.ssi_signo);
        }
        b->stop = true;
    }
}

static void wake(void *ud)
{
    http_wakeup(ud);
}

static int loop_timeout_ms(struct bridge *b)
{
    double next = poller_next_due(b);
    double cmd = cmdexec_next_due(b);
    if (cmd <= bridge_now()) {
        /* A command still queued after cmdexec_tick() waits for something:
         * the token, a 429 pause, its vehicle's daily budget or previous
         * command. Each ends with an event or at a time: no busy loop. */
        double resume = bridge_calls_resume_at(b), soon = bridge_now() + 0.1;
        cmd = resume > soon ? resume : soon;
    }
    if (cmd < next) next = cmd;
    long long auth_at = auth_next_refresh_at(&b->auth);
    if (auth_at != AUTH_NEVER) {
        double a = bridge_now() + (double)(auth_at - (long long)time(NULL));
        if (a < next) next = a;
    }
    double d = next - bridge_now();
    if (b->state_save_due > 0 && b->state_save_due - bridge_now() < d)
        d = b->state_save_due - bridge_now();
    if (d < 0) d = 0;
    if (d > 30) d = 30;          /* also feeds the systemd watchdog */
    uint64_t wd_us;
    if (sd_watchdog_enabled(0, &wd_us) > 0 && d > (double)wd_us / 2e6) d = (double)wd_us / 2e6;
    return (int)ceil(d * 1000);
}

static void housekeeping(struct bridge *b)
{
    if (b->state_save_due > 0 && bridge_now() >= b->state_save_due) save_state_now(b);
    if (state_dirty(&b->state) && b->state_save_due == 0)
        b->state_save_due = bridge_now() + STATE_SAVE_DELAY_S;
    poller_publish_stats(b);
    sync_discovery(b);
    discovery_settled(b);
    mqtt_flush(b->mqtt);
    /* Fed from the loop itself, so a stuck loop starves the watchdog; once a
     * second is plenty (each call opens a socket). */
    if (bridge_now() - b->watchdog_fed >= b->watchdog_every) {
        sd_notify(0, "WATCHDOG=1");
        b->watchdog_fed = bridge_now();
    }
}

static void run_loop(struct bridge *b)
{
    double once_deadline = 0;
    sd_notify(0, "READY=1");
    while (!b->stop) {
        drain_queue(b);
        if (b->stop) break;
        auth_tick(b);
        poller_tick(b);
        cmdexec_tick(b);
        housekeeping(b);
        if (b->once && poller_done_once(b) && http_pending(b->http) == 0) {
            if (b->mqtt_up && discovery_settled(b) && mqtt_pending(b->mqtt) == 0) break;
            if (once_deadline == 0) once_deadline = bridge_now() + ONCE_CONNECT_WAIT_S;
            if (bridge_now() > once_deadline) {
                log_error("--once: the MQTT broker did not become available");
                b->once_errors++;
                break;
            }
        }
        bool sig = false;
        int timeout = loop_timeout_ms(b);
        if (b->once && poller_done_once(b)) timeout = timeout > 100 ? 100 : timeout;
        if (http_poll(b->http, timeout, b->sigfd, &sig) != 0) {
            log_error("http: poll failed");
            usleep(100 * 1000);
        }
        if (sig) read_signals(b);
    }
}

/* Publishes offline, lets queued publishes drain, disconnects. */
static void shutdown_mqtt(struct bridge *b)
{
    char topic[BRIDGE_TOPIC];
    if (b->mqtt_up && bridge_topic(b, topic, sizeof topic, NULL, "bridge/state") == 0)
        mqtt_publish(b->mqtt, topic, "offline", 7, 1, true);
    mqtt_stop(b->mqtt, SHUTDOWN_MS);
}

static int setup(struct bridge *b, struct config *cfg, bool once, char *err, size_t errlen)
{
    char will[BRIDGE_TOPIC], session[BRIDGE_TOPIC];
    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    b->once = once;
    b->sigfd = -1;
    state_init(&b->state);
    srand((unsigned)time(NULL) ^ ((unsigned)getpid() << 16));   /* backoff jitter differs per process */
    log_set_level((enum log_level)log_level_parse(cfg->log_level));
    if (state_load(&b->state, cfg->state_file, err, errlen) != 0) return -1;
    poller_date(b->api_calls_day, time(NULL), 0);
    b->api_calls_today = state_calls_total(&b->state, b->api_calls_day);
    if (auth_setup(b, err, errlen) != 0) return -1;
    b->sigfd = signals_setup();
    if (b->sigfd < 0) {
        snprintf(err, errlen, "cannot set up signal handling: %s", strerror(errno));
        return -1;
    }
    b->http = http_create(cfg->api.max_connections, cfg->api.timeout_s, (size_t)cfg->api.max_body_bytes);
    b->queue = b->http ? queue_create(wake, b->http) : NULL;
    if (!b->queue) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    bridge_topic(b, will, sizeof will, NULL, "bridge/state");
    bridge_topic(b, session, sizeof session, NULL, "bridge/session");
    /* --once must not take over the daemon's session (and its queued
     * commands): it connects under its own client id, with a clean start. */
    char client_id[CONFIG_STR + 8];
    snprintf(client_id, sizeof client_id, "%s%s", cfg->mqtt.client_id, once ? "-once" : "");
    struct mqtt_opts mo = {
        .url = cfg->mqtt.url, .client_id = client_id, .username = cfg->mqtt.username,
        .password = cfg->mqtt.password, .ca_file = cfg->mqtt.ca_file, .cert_file = cfg->mqtt.cert_file,
        .key_file = cfg->mqtt.key_file, .tls_verify = cfg->mqtt.tls_verify,
        .keepalive_s = cfg->mqtt.keepalive_s, .will_topic = will, .will_payload = "offline",
        .session_expiry_s = once ? 0 : 7 * 86400, .session_topic = session,
    };
    b->mqtt = mqtt_create(&mo, b->queue, err, errlen);
    if (!b->mqtt) return -1;
    b->pub = publish_create(b->mqtt, cfg->mqtt.qos);
    uint64_t wd_us = 0;
    b->watchdog_every = 1.0;
    if (sd_watchdog_enabled(0, &wd_us) > 0 && (double)wd_us / 4e6 < b->watchdog_every)
        b->watchdog_every = (double)wd_us / 4e6;
    if (!b->pub || cmdexec_init(b) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    poller_publish_info(b);
    return mqtt_start(b->mqtt) == 0 ? 0 : (snprintf(err, errlen, "cannot start MQTT"), -1);
}

static void teardown(struct bridge *b)
{
    if (b->mqtt) shutdown_mqtt(b);
    if (state_dirty(&b->state)) save_state_now(b);
    http_destroy(b->http);      /* cancels in-flight requests: their contexts are freed */
    cmdexec_free(b);
    discovery_free(b);
    poller_free(b);
    mqtt_destroy(b->mqtt);
    queue_destroy(b->queue);
    publish_destroy(b->pub);
    state_free(&b->state);
    memset(&b->auth, 0, sizeof b->auth);
    if (b->sigfd >= 0) close(b->sigfd);
}

int bridge_run(struct config *cfg, bool once)
{
    struct bridge *b = calloc(1, sizeof *b);
    char err[CONFIG_ERR];
    if (!b) return 1;
    int status = 0;
    if (setup(b, cfg, once, err, sizeof err) != 0) {
        log_error("%s", err);
        status = 1;
    } else {
        log_info("toyota2mqtt %s: API %s, broker %s, base topic %s", T2M_VERSION,
                 cfg->api.base_url, cfg->mqtt.url, cfg->mqtt.base_topic);
        run_loop(b);
        /* STOPPING=1 on a reload would make systemd wait for the exit. */
        sd_notify(0, b->reload ? "RELOADING=1" : "STOPPING=1");
        if (once) status = b->once_errors ? 1 : 0;
        else if (b->reload) status = BRIDGE_RELOAD;
    }
    teardown(b);
    free(b);
    return status;
}
