/* mqtt.c - Paho MQTTAsync wrapper; see mqtt.h and the Paho part of the
 * library pitfalls: callbacks run on Paho's threads under its mutex, so they
 * only copy data into the queue (or hold it back, under our own lock, during
 * a replay window); nothing here calls back into Paho from them. */
#include "mqtt.h"

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* A message waiting for room in Paho's in-flight window (main thread only). */
struct outmsg {
    char *topic;
    char *payload;
    size_t len;
    int qos;
    bool retain;
    unsigned expiry_s;          /* MQTT v5 message expiry, 0 = none */
    char *correlation;
    size_t correlation_len;
    struct outmsg *next;
};

/* Paho refuses a publish (MQTTASYNC_MAX_MESSAGES_INFLIGHT) once this many are
 * in flight; the outbox holds the rest so a burst (start-up, a republish for
 * Home Assistant) is delivered in full rather than partly dropped. */
#define MQTT_MAX_INFLIGHT 32
#define MQTT_OUTBOX_MAX 200000
/* The marker normally comes back within milliseconds; without it (an ACL
 * that forbids the session topic, say) held messages go out after this. */
#define SYNC_TIMEOUT_S 10.0
#define HELD_MAX 1024
/* A broker that stays away must not flood the log: the same failure is
 * logged at warn once, then every FAIL_LOG_EVERY attempts. */
#define FAIL_LOG_EVERY 20
#define RETRY_MIN_S 1
#define RETRY_MAX_S 30

struct mqtt {
    bool ready;                 /* main thread: saw QUEUE_CONNECTED, not yet QUEUE_LOST */
    MQTTAsync client;
    struct outmsg *out_head, *out_tail;   /* main thread only */
    size_t out_len;
    struct queue *q;
    atomic_bool connected;
    atomic_bool disconnected_done;
    atomic_bool sync_needed;              /* a connection awaits its marker */

    pthread_mutex_t lock;                 /* guards the members up to fail_streak */
    bool lock_ok;
    bool closing;                         /* no more events (see deliver()) */
    bool in_replay;                       /* non-retained messages are held back */
    struct queue_event *held_head, *held_tail;
    size_t held_n;
    long long lost_at;                    /* wall clock: this process lost the connection */
    long long record_at;                  /* newest session record seen */
    unsigned long long nonce;
    bool sync_sent;
    double sync_deadline;                 /* monotonic */
    char tls_error[160];                  /* last OpenSSL error of this attempt */
    char last_fail[320];
    char first_fail[320];                 /* of the current outage, for the reminders */
    int fail_streak;

    MQTTAsync_willOptions will;
    MQTTAsync_SSLOptions ssl;
    MQTTProperties connect_props;
    char *url, *client_id, *username, *password, *ca, *cert, *key, *will_topic, *will_payload;
    char *session_topic;
    double down_since;                    /* monotonic; 0 while connected (main thread) */
    double next_reminder;                 /* seconds of outage for the next reminder */
    bool tls;
    bool verify;
    int keepalive_s;
    int session_expiry_s;
};

static char *dup_opt(const char *s)
{
    return (s && *s) ? strdup(s) : NULL;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Hands an event to the main thread. Once mqtt_stop() has begun closing,
 * events are dropped: the queue's wakeup belongs to the HTTP module, which
 * the bridge tears down first, and Paho still calls back (failures of
 * pending publishes) while it is destroyed. The lock makes "closing" a
 * barrier: no callback is inside queue_push() when mqtt_stop() returns. */
static void deliver(struct mqtt *m, struct queue_event *ev)
{
    pthread_mutex_lock(&m->lock);
    if (m->closing) queue_event_free(ev);
    else queue_push(m->q, ev);
    pthread_mutex_unlock(&m->lock);
}

static void wake(struct mqtt *m)
{
    pthread_mutex_lock(&m->lock);
    if (!m->closing) queue_wake(m->q);
    pthread_mutex_unlock(&m->lock);
}

static void push_simple(struct mqtt *m, enum queue_kind kind)
{
    struct queue_event *ev = queue_event_new(kind);
    if (ev) {
        ev->received = time(NULL);
        deliver(m, ev);
    }
}

/* ---- the replay window (see mqtt.h) ------------------------------------ */

int mqtt_parse_session_record(const char *payload, size_t len, long long *t)
{
    static const char head[] = "{\"offline_since\":";
    size_t hl = sizeof head - 1;
    if (!payload || len <= hl + 1 || len > hl + 12 || memcmp(payload, head, hl) != 0 ||
        payload[len - 1] != '}')
        return -1;
    long long v = 0;
    for (size_t i = hl; i < len - 1; i++) {
        if (payload[i] < '0' || payload[i] > '9') return -1;
        v = v * 10 + (payload[i] - '0');
    }
    if (v <= 0 || payload[hl] == '0') return -1;
    *t = v;
    return 0;
}

/* The earliest time a message queued during the last absence can have been
 * sent: the newest known end of a connection (0 = unknown). Lock held. */
static long long offline_since(const struct mqtt *m)
{
    return m->lost_at > m->record_at ? m->lost_at : m->record_at;
}

/* Detaches the held messages. Lock held. */
static struct queue_event *take_held(struct mqtt *m, size_t *n)
{
    struct queue_event *list = m->held_head;
    *n = m->held_n;
    m->held_head = m->held_tail = NULL;
    m->held_n = 0;
    return list;
}

/* Stamps and hands over messages the broker replayed (lock not held). */
static void release(struct mqtt *m, struct queue_event *list, size_t n, long long since)
{
    if (n) {
        long long now = (long long)time(NULL);
        if (since > 0)
            log_info("mqtt: %zu message(s) delivered from the persistent session; they were sent "
                     "after the bridge went offline %llds ago, and their age counts from then",
                     n, since < now ? now - since : 0);
        else
            log_warn("mqtt: %zu message(s) delivered from the persistent session; when the bridge "
                     "went offline is unknown (no clean stop), so they count as too old", n);
    }
    while (list) {
        struct queue_event *ev = list;
        list = ev->next;
        ev->received = since > 0 ? (time_t)since : 0;
        ev->replayed = true;
        deliver(m, ev);
    }
}

/* Holds a non-retained message back while a replay window is open. */
static void hold_or_push(struct mqtt *m, struct queue_event *ev)
{
    if (m->session_topic && !ev->retained) {
        pthread_mutex_lock(&m->lock);
        if (m->in_replay && m->held_n < HELD_MAX) {
            ev->next = NULL;
            if (m->held_tail) m->held_tail->next = ev;
            else m->held_head = ev;
            m->held_tail = ev;
            m->held_n++;
            pthread_mutex_unlock(&m->lock);
            return;
        }
        bool replay = m->in_replay;
        long long since = offline_since(m);
        pthread_mutex_unlock(&m->lock);
        if (replay) {          /* too many held: stamp with what is known so far */
            ev->next = NULL;
            release(m, ev, 1, since);
            return;
        }
    }
    deliver(m, ev);
}

/* The marker expected back for the current connection. Lock held. */
static void marker_text(const struct mqtt *m, char *buf, size_t len)
{
    snprintf(buf, len, "sync %016llx", m->nonce);
}

/* A message on the session topic: a record, or the marker's echo. */
static void on_session_message(struct mqtt *m, const MQTTAsync_message *msg)
{
    const char *p = msg->payload;
    size_t n = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    long long t;
    if (mqtt_parse_session_record(p, n, &t) == 0) {
        pthread_mutex_lock(&m->lock);
        if (t > m->record_at) m->record_at = t;
        pthread_mutex_unlock(&m->lock);
        return;
    }
    if (msg->retained) return;
    char want[40];
    size_t held = 0;
    struct queue_event *list = NULL;
    long long since = 0;
    bool done = false;
    pthread_mutex_lock(&m->lock);
    marker_text(m, want, sizeof want);
    if (m->in_replay && m->sync_sent && n == strlen(want) && memcmp(p, want, n) == 0) {
        m->in_replay = false;
        list = take_held(m, &held);
        since = offline_since(m);
        done = true;
    }
    pthread_mutex_unlock(&m->lock);
    if (done) {
        log_debug("mqtt: session marker back; replay window closed");
        release(m, list, held, since);
    }
}

/* ---- Paho callbacks --------------------------------------------------- */

static void on_connected(void *ctx, char *cause)
{
    struct mqtt *m = ctx;
    (void)cause;
    pthread_mutex_lock(&m->lock);
    m->fail_streak = 0;
    m->last_fail[0] = '\0';
    m->first_fail[0] = '\0';
    pthread_mutex_unlock(&m->lock);
    atomic_store(&m->connected, true);
    atomic_store(&m->sync_needed, true);
    push_simple(m, QUEUE_CONNECTED);
}

static void on_lost(void *ctx, char *cause)
{
    struct mqtt *m = ctx;
    size_t n = 0;
    (void)cause;
    atomic_store(&m->connected, false);
    atomic_store(&m->sync_needed, false);
    pthread_mutex_lock(&m->lock);
    long long since = offline_since(m);
    struct queue_event *list = take_held(m, &n);
    m->lost_at = (long long)time(NULL);
    m->in_replay = m->session_topic != NULL;
    m->sync_sent = false;
    pthread_mutex_unlock(&m->lock);
    release(m, list, n, since);
    push_simple(m, QUEUE_LOST);
}

/* Copies a binary property value (not NUL-terminated) into a fresh buffer
 * the caller frees. */
static char *prop_copy(MQTTProperties *props, enum MQTTPropertyCodes code, size_t *len)
{
    MQTTProperty *p = MQTTProperties_getProperty(props, code);
    if (!p || p->value.data.len < 0) return NULL;
    size_t n = (size_t)p->value.data.len;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, p->value.data.data, n);
    s[n] = '\0';
    if (len) *len = n;
    return s;
}

/* A queue event for a received message (the caller owns it), or NULL. */
static struct queue_event *event_from(const char *topic, size_t tl, MQTTAsync_message *msg)
{
    struct queue_event *ev = queue_event_new(QUEUE_MESSAGE);
    size_t pl = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    if (ev) {
        ev->topic = malloc(tl + 1);
        ev->payload = malloc(pl + 1);
    }
    if (!ev || !ev->topic || !ev->payload) {
        queue_event_free(ev);
        return NULL;
    }
    memcpy(ev->topic, topic, tl);
    ev->topic[tl] = '\0';
    if (pl) memcpy(ev->payload, msg->payload, pl);
    ev->payload[pl] = '\0';
    ev->len = pl;
    ev->retained = msg->retained != 0;
    ev->qos = msg->qos;
    ev->received = time(NULL);
    ev->response_topic = prop_copy(&msg->properties, MQTTPROPERTY_CODE_RESPONSE_TOPIC, NULL);
    ev->correlation = prop_copy(&msg->properties, MQTTPROPERTY_CODE_CORRELATION_DATA,
                                &ev->correlation_len);
    if (MQTTProperties_hasProperty(&msg->properties, MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL))
        ev->expiry_s = MQTTProperties_getNumericValue(&msg->properties,
                                                      MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL);
    return ev;
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct mqtt *m = ctx;
    size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    if (m->session_topic && tl == strlen(m->session_topic) &&
        memcmp(topic, m->session_topic, tl) == 0) {
        on_session_message(m, msg);
    } else {
        struct queue_event *ev = event_from(topic, tl, msg);
        if (ev) hold_or_push(m, ev);
        else log_error("mqtt: out of memory; dropped a message");
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

/* The reason in one of OpenSSL's error lines,
 * "C0A6E3FC927F0000:error:0A000086:SSL routines:FUNC:certificate verify failed:FILE:LINE:"
 * (the sixth field), or the whole line when it has another form. */
static void ssl_reason(const char *str, size_t len, char *out, size_t outlen)
{
    size_t start = 0, field = 0, i;
    for (i = 0; i < len && field < 5; i++)
        if (str[i] == ':') {
            field++;
            start = i + 1;
        }
    size_t end = start;
    while (end < len && str[end] != ':') end++;
    if (field < 5 || end == start) {
        start = 0;
        end = len;
    }
    snprintf(out, outlen, "%.*s", (int)(end - start), str + start);
}

/* OpenSSL's reasons (certificate verify failed, ...): kept for the connect
 * failure's one log line. */
static int on_ssl_error(const char *str, size_t len, void *ctx)
{
    struct mqtt *m = ctx;
    while (len && (str[len - 1] == '\n' || str[len - 1] == '\r')) len--;
    pthread_mutex_lock(&m->lock);
    if (!m->tls_error[0]) ssl_reason(str, len, m->tls_error, sizeof m->tls_error);
    pthread_mutex_unlock(&m->lock);
    return 1;
}

/* Paho reports a failed host name check only in its trace: SSLSocket.c logs
 * "X509_check_host for hostname H failed" (then tries H as an IP address)
 * and fails the connect as a bare "TCP/TLS connect failure". Its trace
 * callback takes no context, so the note travels in a thread-local buffer
 * from the trace line to the connect-failure callback, which Paho calls on
 * the same thread. This is the program's one piece of non-local state; it
 * holds a host name, never a secret. */
static _Thread_local char host_check_note[128];

static void on_trace(enum MQTTASYNC_TRACE_LEVELS level, char *message)
{
    static const char mark[] = "X509_check_host for hostname ";
    (void)level;
    if (!message) return;
    const char *p = strstr(message, mark);
    if (p) {
        p += sizeof mark - 1;
        const char *e = strstr(p, " failed");
        if (e) snprintf(host_check_note, sizeof host_check_note, "%.*s", (int)(e - p), p);
    } else if (strstr(message, "SSL certificate verification:") || strstr(message, "-> CONNECT")) {
        host_check_note[0] = '\0';    /* a new handshake, or the IP check passed */
    }
}

static void on_connect_failure(void *ctx, MQTTAsync_failureData5 *resp)
{
    struct mqtt *m = ctx;
    char what[sizeof m->last_fail];
    int n;
    bool same;
    pthread_mutex_lock(&m->lock);
    int w = snprintf(what, sizeof what, "%s", resp && resp->message ? resp->message : "failed");
    /* A refused CONNACK: Paho puts the v5 reason code in reasonCode, or in code. */
    int reason = resp ? (resp->reasonCode != MQTTREASONCODE_SUCCESS ? (int)resp->reasonCode
                         : resp->code >= 0x80 && resp->code <= 0xA2 ? resp->code : 0) : 0;
    const char *rs = reason ? MQTTReasonCode_toString((enum MQTTReasonCodes)reason) : NULL;
    if (reason && w >= 0 && (size_t)w < sizeof what)
        w += snprintf(what + w, sizeof what - (size_t)w, " %d (%s)", reason, rs ? rs : "?");
    else if (resp && resp->code != MQTTASYNC_FAILURE && w >= 0 && (size_t)w < sizeof what)
        w += snprintf(what + w, sizeof what - (size_t)w, " (%d)", resp->code);
    if (m->tls_error[0] && w >= 0 && (size_t)w < sizeof what)
        w += snprintf(what + w, sizeof what - (size_t)w, "; TLS: %s", m->tls_error);
    else if (host_check_note[0] && w >= 0 && (size_t)w < sizeof what)
        w += snprintf(what + w, sizeof what - (size_t)w,
                      "; TLS: the broker's certificate does not name %s (host name verification, "
                      "mqtt.tls.verify)", host_check_note);
    m->tls_error[0] = '\0';
    host_check_note[0] = '\0';
    if (!m->first_fail[0]) memcpy(m->first_fail, what, sizeof what);
    same = strcmp(what, m->last_fail) == 0;
    memcpy(m->last_fail, what, sizeof what);
    n = ++m->fail_streak;
    pthread_mutex_unlock(&m->lock);
    log_msg(!same || n % FAIL_LOG_EVERY == 0 ? LOG_WARN : LOG_DEBUG, NULL, NULL,
            "mqtt: cannot connect to %s: %s (attempt %d); retrying", m->url, what, n);
}

/* ---- creation --------------------------------------------------------- */

static int copy_opts(struct mqtt *m, const struct mqtt_opts *o)
{
    m->url = dup_opt(o->url);
    m->client_id = dup_opt(o->client_id);
    m->username = dup_opt(o->username);
    m->password = dup_opt(o->password);
    m->ca = dup_opt(o->ca_file);
    m->cert = dup_opt(o->cert_file);
    m->key = dup_opt(o->key_file);
    m->will_topic = dup_opt(o->will_topic);
    m->will_payload = dup_opt(o->will_payload);
    m->session_topic = dup_opt(o->session_topic);
    if ((o->username && *o->username && !m->username) || (o->password && *o->password && !m->password) ||
        (o->ca_file && *o->ca_file && !m->ca) || (o->cert_file && *o->cert_file && !m->cert) ||
        (o->key_file && *o->key_file && !m->key) || (o->will_topic && *o->will_topic && !m->will_topic) ||
        (o->will_payload && *o->will_payload && !m->will_payload) ||
        (o->session_topic && *o->session_topic && !m->session_topic))
        return -1;
    /* Paho knows tcp:// and ssl:// (and ws/wss); accept mqtt(s):// too. */
    if (m->url && (strncmp(m->url, "mqtt://", 7) == 0 || strncmp(m->url, "mqtts://", 8) == 0)) {
        bool s = m->url[4] == 's';
        char buf[512];
        snprintf(buf, sizeof buf, "%s://%s", s ? "ssl" : "tcp", m->url + (s ? 8 : 7));
        free(m->url);
        m->url = strdup(buf);
    }
    return 0;
}

static uint64_t random_nonce(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = (uint64_t)time(NULL) * 6364136223846793005ULL ^ (uint64_t)getpid() ^ (uint64_t)(mono_now() * 1e9);
    return v;
}

struct mqtt *mqtt_create(const struct mqtt_opts *o, struct queue *q, char *err, size_t errlen)
{
    struct mqtt *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->q = q;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        snprintf(err, errlen, "mqtt: cannot create a mutex");
        free(m);
        return NULL;
    }
    m->lock_ok = true;
    if (copy_opts(m, o) != 0) {
        snprintf(err, errlen, "out of memory");
        mqtt_destroy(m);
        return NULL;
    }
    m->verify = o->tls_verify;
    m->keepalive_s = o->keepalive_s > 0 ? o->keepalive_s : 60;
    m->session_expiry_s = o->session_expiry_s > 0 ? o->session_expiry_s : 0;
    m->nonce = random_nonce();
    m->in_replay = m->session_topic != NULL;  /* until the first marker: a possible replay */
    if (!m->url || !m->client_id) {
        snprintf(err, errlen, "mqtt: url and client id are required");
        mqtt_destroy(m);
        return NULL;
    }
    m->tls = strncmp(m->url, "ssl://", 6) == 0 || strncmp(m->url, "wss://", 6) == 0;
    if (m->tls && m->verify) {
        MQTTAsync_setTraceCallback(on_trace);
        MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_PROTOCOL);
    }

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
    co.sendWhileDisconnected = 0;
    int rc = MQTTAsync_createWithOptions(&m->client, m->url, m->client_id,
                                         MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "mqtt: cannot create a client for %s (%d)", m->url, rc);
        m->client = NULL;
        mqtt_destroy(m);
        return NULL;
    }
    if (MQTTAsync_setCallbacks(m->client, m, on_lost, on_message, NULL) != MQTTASYNC_SUCCESS ||
        MQTTAsync_setConnected(m->client, m, on_connected) != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "mqtt: cannot set callbacks");
        mqtt_destroy(m);
        return NULL;
    }
    return m;
}

static void setup_tls(struct mqtt *m, MQTTAsync_connectOptions *co)
{
    m->ssl = (MQTTAsync_SSLOptions)MQTTAsync_SSLOptions_initializer;
    m->ssl.trustStore = m->ca;               /* NULL: the system's default store */
    m->ssl.keyStore = m->cert;
    m->ssl.privateKey = m->key;
    m->ssl.enableServerCertAuth = m->verify;  /* the chain */
    m->ssl.verify = m->verify;                /* the host name (or IP) in CN/SAN */
    m->ssl.ssl_error_cb = on_ssl_error;
    m->ssl.ssl_error_context = m;
    co->ssl = &m->ssl;
}

int mqtt_start(struct mqtt *m)
{
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
    co.keepAliveInterval = m->keepalive_s;
    /* A persistent session (commands sent while away arrive) unless none is
     * wanted (--once), which must neither resume nor end the daemon's. */
    co.cleanstart = m->session_expiry_s == 0;
    co.automaticReconnect = 1;
    co.minRetryInterval = RETRY_MIN_S;
    co.maxRetryInterval = RETRY_MAX_S;
    co.maxInflight = 16;
    co.connectTimeout = 10;
    co.username = m->username;
    co.password = m->password;
    co.onFailure5 = on_connect_failure;
    co.context = m;
    MQTTProperties_free(&m->connect_props);
    MQTTProperty p = { .identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL,
                       .value.integer4 = (unsigned)m->session_expiry_s };
    if (MQTTProperties_add(&m->connect_props, &p) != 0) return -1;
    co.connectProperties = &m->connect_props;
    if (m->will_topic) {
        m->will = (MQTTAsync_willOptions)MQTTAsync_willOptions_initializer;
        m->will.topicName = m->will_topic;
        m->will.message = m->will_payload ? m->will_payload : "";
        m->will.retained = 1;
        m->will.qos = 1;
        co.will = &m->will;
    }
    if (m->tls) setup_tls(m, &co);
    int rc = MQTTAsync_connect(m->client, &co);
    /* Paho keeps its own copy; ours must not outlive Paho's heap check. */
    MQTTProperties_free(&m->connect_props);
    if (rc != MQTTASYNC_SUCCESS) {
        log_error("mqtt: cannot start connecting to %s (%d)", m->url, rc);
        return -1;
    }
    return 0;
}

void mqtt_set_ready(struct mqtt *m, bool ready)
{
    m->ready = ready;
}

/* ---- publishing -------------------------------------------------------- */

static void on_sent(void *ctx, MQTTAsync_successData5 *d)
{
    struct mqtt *m = ctx;
    (void)d;
    wake(m);
}

static void on_send_failed(void *ctx, MQTTAsync_failureData5 *d)
{
    struct mqtt *m = ctx;
    (void)d;
    wake(m);
}

/* Publishes Paho holds (queued commands plus QoS 1 in flight). Counted by
 * Paho itself: a counter of ours would drift when a connection loss makes
 * Paho drop or resend messages without calling back. */
static int paho_pending(struct mqtt *m)
{
    MQTTAsync_token *t = NULL;
    int n = 0;
    if (MQTTAsync_getPendingTokens(m->client, &t) != MQTTASYNC_SUCCESS) return MQTT_MAX_INFLIGHT;
    if (t) {
        while (t[n] != -1) n++;
        MQTTAsync_free(t);
    }
    return n;
}

static void outmsg_free(struct outmsg *o)
{
    free(o->topic);
    free(o->payload);
    free(o->correlation);
    free(o);
}

/* Hands one message to Paho. Returns 0 when sent, 1 when Paho has no room
 * or no connection (try again later), -1 when it refused the message for
 * good. */
static int send_one(struct mqtt *m, const struct outmsg *o)
{
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTProperties props = MQTTProperties_initializer;
    msg.payload = o->payload;
    msg.payloadlen = (int)o->len;
    msg.qos = o->qos;
    msg.retained = o->retain;
    if (o->correlation) {
        MQTTProperty p = { .identifier = MQTTPROPERTY_CODE_CORRELATION_DATA };
        p.value.data.data = o->correlation;
        p.value.data.len = (int)o->correlation_len;
        if (MQTTProperties_add(&props, &p) != 0) return -1;
    }
    if (o->expiry_s) {
        MQTTProperty p = { .identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL,
                           .value.integer4 = o->expiry_s };
        if (MQTTProperties_add(&props, &p) != 0) {
            MQTTProperties_free(&props);
            return -1;
        }
    }
    msg.properties = props;
    /* Paho copies message properties only when response options are given. */
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess5 = on_sent;
    ro.onFailure5 = on_send_failed;
    ro.context = m;
    int rc = MQTTAsync_sendMessage(m->client, o->topic, &msg, &ro);
    MQTTProperties_free(&props);
    if (rc == MQTTASYNC_SUCCESS) return 0;
    if (rc == MQTTASYNC_MAX_MESSAGES_INFLIGHT || rc == MQTTASYNC_MAX_BUFFERED_MESSAGES ||
        rc == MQTTASYNC_DISCONNECTED)
        return 1;
    log_debug("mqtt: publish to %s failed (%d)", o->topic, rc);
    return -1;
}

/* After a (re)connection: subscribes to the session topic and publishes the
 * marker whose echo closes the replay window; closes an overdue window. */
static void sync_tick(struct mqtt *m)
{
    if (atomic_load(&m->connected) && atomic_exchange(&m->sync_needed, false)) {
        char text[40];
        mqtt_subscribe(m, m->session_topic, 1);
        pthread_mutex_lock(&m->lock);
        m->nonce++;
        marker_text(m, text, sizeof text);
        m->sync_sent = true;
        m->sync_deadline = mono_now() + SYNC_TIMEOUT_S;
        pthread_mutex_unlock(&m->lock);
        struct outmsg o = { .topic = m->session_topic, .payload = text, .len = strlen(text), .qos = 1 };
        if (send_one(m, &o) != 0) {
            pthread_mutex_lock(&m->lock);
            m->sync_sent = false;
            pthread_mutex_unlock(&m->lock);
            atomic_store(&m->sync_needed, atomic_load(&m->connected));
        }
    }
    size_t n = 0;
    struct queue_event *list = NULL;
    long long since = 0;
    bool overdue = false;
    pthread_mutex_lock(&m->lock);
    if (m->in_replay && m->sync_sent && mono_now() > m->sync_deadline) {
        overdue = true;
        m->in_replay = false;
        list = take_held(m, &n);
        since = offline_since(m);
    }
    pthread_mutex_unlock(&m->lock);
    if (overdue) {
        log_warn("mqtt: the session marker on %s did not come back within %.0f s (may the bridge "
                 "publish and subscribe there?); treating what arrived as replayed",
                 m->session_topic, SYNC_TIMEOUT_S);
        release(m, list, n, since);
    }
}

/* Paho reports only the first failure of a reconnection series: a broker
 * that stays away is mentioned again after 10 s, 20 s, 40 s ... 10 min. */
static void remind(struct mqtt *m)
{
    if (atomic_load(&m->connected)) {
        m->down_since = 0;
        return;
    }
    double now = mono_now();
    if (m->down_since == 0) {
        m->down_since = now;
        m->next_reminder = 10;
        return;
    }
    if (now - m->down_since < m->next_reminder) return;
    char why[sizeof m->first_fail];
    pthread_mutex_lock(&m->lock);
    memcpy(why, m->first_fail, sizeof why);
    pthread_mutex_unlock(&m->lock);
    log_warn("mqtt: still not connected to %s after %.0f s%s%s%s; retrying at least every %d s",
             m->url, now - m->down_since, why[0] ? " (first error: " : "", why, why[0] ? ")" : "",
             RETRY_MAX_S);
    m->next_reminder = m->next_reminder >= 300 ? m->next_reminder + 600 : m->next_reminder * 2;
}

void mqtt_flush(struct mqtt *m)
{
    remind(m);
    if (m->session_topic) sync_tick(m);
    if (!m->out_head || !atomic_load(&m->connected)) return;
    int room = MQTT_MAX_INFLIGHT - paho_pending(m);
    while (m->out_head && room > 0 && atomic_load(&m->connected)) {
        struct outmsg *o = m->out_head;
        int rc = send_one(m, o);
        if (rc == 1) break;
        if (rc == 0) room--;
        m->out_head = o->next;
        if (!m->out_head) m->out_tail = NULL;
        m->out_len--;
        outmsg_free(o);
    }
}

size_t mqtt_pending(struct mqtt *m)
{
    return m->out_len + (size_t)paho_pending(m);
}

/* A copy of n bytes plus a NUL, which the caller frees; NULL when out of
 * memory. */
static char *copy_bytes(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        if (n) memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Queues a message. Retained state is not queued until the main thread has
 * seen the connection (mqtt_set_ready): it republishes all of it then, and a
 * retained message sent in between would go out twice. */
static int enqueue(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                   bool retain, unsigned expiry_s, const void *correlation, size_t correlation_len)
{
    if (retain && !(m->ready && atomic_load(&m->connected))) return -1;
    if (len > 256 * 1024 * 1024) return -1;
    if (m->out_len >= MQTT_OUTBOX_MAX) {
        log_warn("mqtt: outbox full; dropping a message for %s", topic);
        return -1;
    }
    struct outmsg *o = calloc(1, sizeof *o);
    if (!o) return -1;
    o->topic = strdup(topic);
    o->payload = copy_bytes(payload, len);
    o->len = len;
    o->qos = qos;
    o->retain = retain;
    o->expiry_s = expiry_s;
    if (correlation && correlation_len) {
        o->correlation = copy_bytes(correlation, correlation_len);
        o->correlation_len = correlation_len;
    }
    if (!o->topic || !o->payload || (correlation_len && correlation && !o->correlation)) {
        outmsg_free(o);
        return -1;
    }
    if (m->out_tail) m->out_tail->next = o;
    else m->out_head = o;
    m->out_tail = o;
    m->out_len++;
    mqtt_flush(m);
    return 0;
}

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len,
                 int qos, bool retain)
{
    return enqueue(m, topic, payload, len, qos, retain, 0, NULL, 0);
}

int mqtt_publish_reply(struct mqtt *m, const char *topic, const void *payload, size_t len,
                       const void *correlation, size_t correlation_len)
{
    return enqueue(m, topic, payload, len, 1, false, 0, correlation, correlation_len);
}

int mqtt_subscribe(struct mqtt *m, const char *filter, int qos)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    /* Retain As Published: a command published retained keeps its retain
     * flag on live delivery too, so the bridge can refuse it at once rather
     * than run it now and find it stale on the next subscribe. */
    ro.subscribeOptions.retainAsPublished = 1;
    int rc = MQTTAsync_subscribe(m->client, filter, qos, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        log_warn("mqtt: subscribe to %s failed (%d)", filter, rc);
        return -1;
    }
    return 0;
}

int mqtt_unsubscribe(struct mqtt *m, const char *filter)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    return MQTTAsync_unsubscribe(m->client, filter, &ro) == MQTTASYNC_SUCCESS ? 0 : -1;
}

/* ---- stopping ------------------------------------------------------------ */

static void on_disconnected(void *ctx, MQTTAsync_successData5 *d)
{
    struct mqtt *m = ctx;
    (void)d;
    atomic_store(&m->disconnected_done, true);
}

static void on_disconnect_failed(void *ctx, MQTTAsync_failureData5 *d)
{
    struct mqtt *m = ctx;
    (void)d;
    atomic_store(&m->disconnected_done, true);
}

/* The retained record of a clean end (see mqtt.h); it expires with the
 * session it describes. */
static void publish_record(struct mqtt *m)
{
    char rec[64];
    snprintf(rec, sizeof rec, "{\"offline_since\":%lld}", (long long)time(NULL));
    if (enqueue(m, m->session_topic, rec, strlen(rec), 1, true, (unsigned)m->session_expiry_s,
                NULL, 0) != 0)
        log_warn("mqtt: could not record the end of the session");
}

void mqtt_stop(struct mqtt *m, int timeout_ms)
{
    if (!m || !m->client) return;
    double end = mono_now() + timeout_ms / 1000.0;
    if (m->session_topic && m->session_expiry_s > 0 && atomic_load(&m->connected))
        publish_record(m);
    /* Let what is queued go out first: a shutdown must not eat the last
     * results or the offline state. Keep a fifth of the time to disconnect. */
    while (mqtt_pending(m) && atomic_load(&m->connected) && mono_now() < end - timeout_ms / 5000.0) {
        mqtt_flush(m);
        usleep(5 * 1000);
    }
    int left = (int)((end - mono_now()) * 1000);
    if (left < 50) left = 50;
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    d.timeout = left;
    d.onSuccess5 = on_disconnected;
    d.onFailure5 = on_disconnect_failed;
    d.context = m;
    atomic_store(&m->disconnected_done, false);
    /* Also ends automatic reconnection when the broker is away. */
    int rc = MQTTAsync_disconnect(m->client, &d);
    atomic_store(&m->connected, false);
    if (rc == MQTTASYNC_SUCCESS)
        while (!atomic_load(&m->disconnected_done) && mono_now() < end + 0.05) usleep(5 * 1000);
    pthread_mutex_lock(&m->lock);
    m->closing = true;
    pthread_mutex_unlock(&m->lock);
}

void mqtt_destroy(struct mqtt *m)
{
    if (!m) return;
    if (m->lock_ok) {
        pthread_mutex_lock(&m->lock);
        m->closing = true;
        pthread_mutex_unlock(&m->lock);
    }
    if (m->client) MQTTAsync_destroy(&m->client);
    while (m->out_head) {
        struct outmsg *o = m->out_head;
        m->out_head = o->next;
        outmsg_free(o);
    }
    size_t n;
    struct queue_event *ev = take_held(m, &n);
    while (ev) {
        struct queue_event *next = ev->next;
        queue_event_free(ev);
        ev = next;
    }
    MQTTProperties_free(&m->connect_props);
    if (m->password) memset(m->password, 0, strlen(m->password));
    free(m->url);
    free(m->client_id);
    free(m->username);
    free(m->password);
    free(m->ca);
    free(m->cert);
    free(m->key);
    free(m->will_topic);
    free(m->will_payload);
    free(m->session_topic);
    if (m->lock_ok) pthread_mutex_destroy(&m->lock);
    free(m);
}
