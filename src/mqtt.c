/* mqtt.c - Paho MQTTAsync wrapper; see mqtt.h and the Paho part of the
 * library pitfalls: callbacks run on Paho's threads under its mutex, so they
 * only copy data into the queue; nothing here calls back into Paho from them. */
#include "mqtt.h"

#include <MQTTAsync.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    char *correlation;
    size_t correlation_len;
    struct outmsg *next;
};

/* Paho refuses a publish (MQTTASYNC_MAX_MESSAGES_INFLIGHT) once this many are
 * in flight; the outbox holds the rest so a burst (start-up, a republish for
 * Home Assistant) is delivered in full rather than partly dropped. */
#define MQTT_MAX_INFLIGHT 32
#define MQTT_OUTBOX_MAX 200000

struct mqtt {
    MQTTAsync client;
    atomic_int inflight;
    struct outmsg *out_head, *out_tail;
    size_t out_len;
    struct queue *q;
    atomic_bool connected;
    atomic_bool disconnected_done;
    MQTTAsync_willOptions will;
    MQTTAsync_SSLOptions ssl;
    MQTTProperties connect_props;
    char *url, *client_id, *username, *password, *ca, *cert, *key, *will_topic, *will_payload;
    bool tls;
    bool verify;
    int keepalive_s;
    int session_expiry_s;
};

static char *dup_opt(const char *s)
{
    return (s && *s) ? strdup(s) : NULL;
}

static void push_simple(struct mqtt *m, enum queue_kind kind)
{
    struct queue_event *ev = queue_event_new(kind);
    if (ev) {
        ev->received = time(NULL);
        queue_push(m->q, ev);
    }
}

static void on_connected(void *ctx, char *cause)
{
    struct mqtt *m = ctx;
    (void)cause;
    atomic_store(&m->connected, true);
    push_simple(m, QUEUE_CONNECTED);
}

static void on_lost(void *ctx, char *cause)
{
    struct mqtt *m = ctx;
    (void)cause;
    atomic_store(&m->connected, false);
    push_simple(m, QUEUE_LOST);
}

/* Copies a binary property value (not NUL-terminated) into a fresh buffer. */
static char *prop_copy(MQTTProperties *props, enum MQTTPropertyCodes code, size_t *len)
{
    MQTTProperty *p = MQTTProperties_getProperty(props, code);
    if (!p || p->value.data.len < 0) return NULL;
    size_t n = (size_t)p->value.data.len;
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p->value.data.data, n);
    s[n] = '\0';
    if (len) *len = n;
    return s;
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    struct mqtt *m = ctx;
    struct queue_event *ev = queue_event_new(QUEUE_MESSAGE);
    size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t pl = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    if (ev) {
        ev->topic = malloc(tl + 1);
        ev->payload = malloc(pl + 1);
    }
    if (!ev || !ev->topic || !ev->payload) {
        log_error("mqtt: out of memory; dropped a message");
        queue_event_free(ev);
    } else {
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
        queue_push(m->q, ev);
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void on_connect_failure(void *ctx, MQTTAsync_failureData5 *resp)
{
    (void)ctx;
    log_warn("mqtt: connect failed (%d%s%s); retrying", resp ? resp->code : 0,
             resp && resp->message ? ": " : "", resp && resp->message ? resp->message : "");
}

struct mqtt *mqtt_create(const struct mqtt_opts *o, struct queue *q, char *err, size_t errlen)
{
    struct mqtt *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->q = q;
    m->url = dup_opt(o->url);
    m->client_id = dup_opt(o->client_id);
    m->username = dup_opt(o->username);
    m->password = dup_opt(o->password);
    m->ca = dup_opt(o->ca_file);
    m->cert = dup_opt(o->cert_file);
    m->key = dup_opt(o->key_file);
    m->will_topic = dup_opt(o->will_topic);
    m->will_payload = dup_opt(o->will_payload);
    m->verify = o->tls_verify;
    m->keepalive_s = o->keepalive_s > 0 ? o->keepalive_s : 60;
    m->session_expiry_s = o->session_expiry_s;
    if (!m->url || !m->client_id) {
        snprintf(err, errlen, "mqtt: url and client id are required");
        mqtt_destroy(m);
        return NULL;
    }
    /* Paho knows tcp:// and ssl:// (and ws/wss); accept mqtt(s):// too. */
    if (strncmp(m->url, "mqtt://", 7) == 0 || strncmp(m->url, "mqtts://", 8) == 0) {
        bool s = m->url[4] == 's';
        char buf[512];
        snprintf(buf, sizeof buf, "%s://%s", s ? "ssl" : "tcp", m->url + (s ? 8 : 7));
        free(m->url);
        m->url = strdup(buf);
        if (!m->url) {
            snprintf(err, errlen, "out of memory");
            mqtt_destroy(m);
            return NULL;
        }
    }
    m->tls = strncmp(m->url, "ssl://", 6) == 0 || strncmp(m->url, "wss://", 6) == 0;

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

int mqtt_start(struct mqtt *m)
{
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
    co.keepAliveInterval = m->keepalive_s;
    co.cleanstart = 0;                 /* persistent session: commands sent while away arrive */
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 30;
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
    if (m->tls) {
        m->ssl = (MQTTAsync_SSLOptions)MQTTAsync_SSLOptions_initializer;
        m->ssl.trustStore = m->ca;
        m->ssl.keyStore = m->cert;
        m->ssl.privateKey = m->key;
        m->ssl.enableServerCertAuth = m->verify;
        m->ssl.verify = m->verify;
        co.ssl = &m->ssl;
    }
    int rc = MQTTAsync_connect(m->client, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        log_error("mqtt: cannot start connecting to %s (%d)", m->url, rc);
        return -1;
    }
    return 0;
}

bool mqtt_is_connected(struct mqtt *m)
{
    return atomic_load(&m->connected);
}

static void on_sent(void *ctx, MQTTAsync_successData5 *d)
{
    struct mqtt *m = ctx;
    (void)d;
    atomic_fetch_sub(&m->inflight, 1);
    queue_wake(m->q);
}

static void on_send_failed(void *ctx, MQTTAsync_failureData5 *d)
{
    struct mqtt *m = ctx;
    (void)d;
    atomic_fetch_sub(&m->inflight, 1);
    queue_wake(m->q);
}

static void outmsg_free(struct outmsg *o)
{
    free(o->topic);
    free(o->payload);
    free(o->correlation);
    free(o);
}

/* Hands one message to Paho. Returns 0 when sent, 1 when Paho has no room
 * (try again later), -1 when it refused the message for good. */
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
        msg.properties = props;
    }
    /* Paho copies message properties only when response options are given. */
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess5 = on_sent;
    ro.onFailure5 = on_send_failed;
    ro.context = m;
    atomic_fetch_add(&m->inflight, 1);
    int rc = MQTTAsync_sendMessage(m->client, o->topic, &msg, &ro);
    MQTTProperties_free(&props);
    if (rc == MQTTASYNC_SUCCESS) return 0;
    atomic_fetch_sub(&m->inflight, 1);
    if (rc == MQTTASYNC_MAX_MESSAGES_INFLIGHT || rc == MQTTASYNC_MAX_BUFFERED_MESSAGES) return 1;
    log_debug("mqtt: publish to %s failed (%d)", o->topic, rc);
    return -1;
}

void mqtt_flush(struct mqtt *m)
{
    while (m->out_head && atomic_load(&m->connected) &&
           atomic_load(&m->inflight) < MQTT_MAX_INFLIGHT) {
        struct outmsg *o = m->out_head;
        if (send_one(m, o) == 1) break;
        m->out_head = o->next;
        if (!m->out_head) m->out_tail = NULL;
        m->out_len--;
        outmsg_free(o);
    }
}

size_t mqtt_pending(struct mqtt *m)
{
    int n = atomic_load(&m->inflight);
    return m->out_len + (n > 0 ? (size_t)n : 0);
}

static char *copy_bytes(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        if (n) memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Queues a message. Retained state is not queued while disconnected: it is
 * all republished on reconnection anyway. */
static int enqueue(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                   bool retain, const void *correlation, size_t correlation_len)
{
    if (retain && !atomic_load(&m->connected)) return -1;
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
    return enqueue(m, topic, payload, len, qos, retain, NULL, 0);
}

int mqtt_publish_reply(struct mqtt *m, const char *topic, const void *payload, size_t len,
                       const void *correlation, size_t correlation_len)
{
    return enqueue(m, topic, payload, len, 1, false, correlation, correlation_len);
}

int mqtt_subscribe(struct mqtt *m, const char *filter, int qos)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
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

void mqtt_stop(struct mqtt *m, int timeout_ms)
{
    if (!m || !m->client) return;
    /* Let what is queued go out first: a shutdown must not eat the last
     * results or the offline state. */
    for (int waited = 0; waited < timeout_ms && mqtt_pending(m) && atomic_load(&m->connected);
         waited += 5) {
        mqtt_flush(m);
        usleep(5 * 1000);
    }
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    d.timeout = timeout_ms;
    d.onSuccess5 = on_disconnected;
    d.onFailure5 = on_disconnect_failed;
    d.context = m;
    atomic_store(&m->disconnected_done, false);
    if (MQTTAsync_disconnect(m->client, &d) != MQTTASYNC_SUCCESS) return;
    for (int waited = 0; waited < timeout_ms + 200 && !atomic_load(&m->disconnected_done); waited += 10)
        usleep(10 * 1000);
    atomic_store(&m->connected, false);
}

void mqtt_destroy(struct mqtt *m)
{
    if (!m) return;
    if (m->client) MQTTAsync_destroy(&m->client);
    while (m->out_head) {
        struct outmsg *o = m->out_head;
        m->out_head = o->next;
        outmsg_free(o);
    }
    MQTTProperties_free(&m->connect_props);
    free(m->url);
    free(m->client_id);
    free(m->username);
    free(m->password);
    free(m->ca);
    free(m->cert);
    free(m->key);
    free(m->will_topic);
    free(m->will_payload);
    free(m);
}
