/* mqtt.h - the only module that includes MQTTAsync.h. One Paho client (MQTT
 * v5) for the whole process with automatic reconnect and a persistent
 * session. Paho's threads only push events into the queue (queue.h): every
 * decision is taken on the main thread.
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
    const char *cert_file;
    const char *key_file;
    bool tls_verify;
    int keepalive_s;
    const char *will_topic;     /* retained last will */
    const char *will_payload;
    int session_expiry_s;       /* persistent session lifetime on the broker */
};

struct mqtt;

/* Creates the client; events go to q. Returns NULL with err set. */
struct mqtt *mqtt_create(const struct mqtt_opts *o, struct queue *q, char *err, size_t errlen);

/* Starts connecting (asynchronous; retries forever with backoff). */
int mqtt_start(struct mqtt *m);

/* True between a QUEUE_CONNECTED and a QUEUE_LOST as seen by Paho's threads. */
bool mqtt_is_connected(struct mqtt *m);

/* Queues len bytes for publishing (sent as Paho's in-flight window allows;
 * see mqtt_flush). Retained messages are refused while disconnected (the
 * caller republishes its state on reconnection); others wait for the
 * connection. Returns 0, or -1 when the message was not queued. */
int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len,
                 int qos, bool retain);

/* Publishes with MQTT v5 correlation data (for request/response). */
int mqtt_publish_reply(struct mqtt *m, const char *topic, const void *payload, size_t len,
                       const void *correlation, size_t correlation_len);

/* Sends queued messages while Paho has room. Call from the main loop; the
 * queue's wakeup fires whenever room frees up. */
void mqtt_flush(struct mqtt *m);

/* Messages queued or in flight. */
size_t mqtt_pending(struct mqtt *m);

/* Subscribes (call after each QUEUE_CONNECTED). Returns 0 or -1. */
int mqtt_subscribe(struct mqtt *m, const char *filter, int qos);
int mqtt_unsubscribe(struct mqtt *m, const char *filter);

/* Disconnects, waiting up to timeout_ms for outstanding publishes. */
void mqtt_stop(struct mqtt *m, int timeout_ms);

void mqtt_destroy(struct mqtt *m);

#endif
