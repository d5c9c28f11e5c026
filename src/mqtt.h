/* mqtt.h - the only module that includes MQTTAsync.h. One Paho client (MQTT
 * v5) for the whole process with automatic reconnect (1 s doubling to 30 s,
 * forever, also when the broker is down at start-up) and a persistent
 * session (no clean start, session expiry set): QoS 1 commands sent while the
 * bridge is away are queued by the broker and delivered when it returns.
 * Paho's threads only push events into the queue (queue.h): every decision
 * is taken on the main thread.
 *
 * Replayed messages and their age. A message the broker queued while the
 * bridge was away carries no send time (an MQTT v5 message expiry only says
 * how long it may still live). The bridge therefore bounds its age instead:
 *   - After every CONNACK it publishes a marker ("sync <nonce>", QoS 1, not
 *     retained) to session_topic, which it subscribes to. The broker delivers
 *     the messages it queued for the session first and the marker after
 *     them, so every non-retained message that arrives before the marker's
 *     echo is a possible replay. Those are held back until the echo (or 10 s).
 *   - The bridge knows when its previous connection ended: in-process from
 *     the connection loss; across restarts from a retained record
 *     {"offline_since":EPOCH} it publishes to session_topic (QoS 1, message
 *     expiry = the session's) when it stops cleanly, which lives on the broker
 *     exactly as long as the session it describes. Retained records from
 *     earlier runs are older, so the newest time known is a safe bound.
 *   - Each held message is released with received = that time (it cannot
 *     have been sent earlier), or 0 when no time is known (after a crash with
 *     no record: its age is unknown and treated as too old), and replayed set.
 *     Consumers counting commands.max_age_s from received therefore never
 *     execute a replayed command that may be older than the limit.
 */
#ifndef MQTT_H
#define MQTT_H

#include <stdbool.h>
#include <stddef.h>

#include "queue.h"

struct mqtt_opts {
    const char *url;            /* tcp://, ssl://, mqtt://, mqtts://, ws://, wss:// */
    const char *client_id;
    const char *username;       /* NULL or "" for none */
    const char *password;
    const char *ca_file;        /* TLS: NULL/"" for the system store */
    const char *cert_file;      /* TLS client certificate (PEM), optional */
    const char *key_file;       /* its key (PEM); NULL/"" when in cert_file */
    bool tls_verify;            /* chain and host name (CN/SAN) verification */
    int keepalive_s;
    const char *will_topic;     /* retained last will */
    const char *will_payload;
    int session_expiry_s;       /* persistent session lifetime on the broker; 0 = none */
    const char *session_topic;  /* marker/record topic (see above); NULL = no replay guard */
};

struct mqtt;

/* Creates the client; events go to q. Returns NULL with err set. */
struct mqtt *mqtt_create(const struct mqtt_opts *o, struct queue *q, char *err, size_t errlen);

/* Starts connecting (asynchronous; retries forever with backoff). */
int mqtt_start(struct mqtt *m);

/* Called by the main thread when it handles QUEUE_CONNECTED (true, before
 * republishing its retained state) and QUEUE_LOST (false): retained
 * messages are only accepted in between. */
void mqtt_set_ready(struct mqtt *m, bool ready);

/* Queues len bytes for publishing (sent as Paho's in-flight window allows;
 * see mqtt_flush). Retained messages are refused while disconnected (the
 * caller republishes its state on reconnection); others wait for the
 * connection. Returns 0, or -1 when the message was not queued. */
int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len,
                 int qos, bool retain);

/* Publishes with MQTT v5 correlation data (for request/response). */
int mqtt_publish_reply(struct mqtt *m, const char *topic, const void *payload, size_t len,
                       const void *correlation, size_t correlation_len);

/* Sends queued messages while Paho has room, publishes the session marker
 * after a (re)connection and ends an overdue replay window. Call from the
 * main loop; the queue's wakeup fires whenever room frees up. */
void mqtt_flush(struct mqtt *m);

/* Messages queued or in flight. */
size_t mqtt_pending(struct mqtt *m);

/* Subscribes (call after each QUEUE_CONNECTED). Returns 0 or -1. */
int mqtt_subscribe(struct mqtt *m, const char *filter, int qos);
int mqtt_unsubscribe(struct mqtt *m, const char *filter);

/* Records the clean end of the session (see above), lets queued publishes go
 * out and disconnects, all within timeout_ms in total. */
void mqtt_stop(struct mqtt *m, int timeout_ms);

void mqtt_destroy(struct mqtt *m);

/* Parses a session record {"offline_since":EPOCH} (len bytes, not
 * NUL-terminated; exactly that form, EPOCH a positive decimal integer below
 * 10^11). Returns 0 with *t set, or -1. Pure. */
int mqtt_parse_session_record(const char *payload, size_t len, long long *t);

#endif
