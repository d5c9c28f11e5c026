/* queue.h - the one structure shared between threads: Paho's callback threads
 * push events, the main loop pops them. A push calls a wakeup function (the
 * main loop's curl_multi_wakeup) so the loop never sleeps on a pending event.
 */
#ifndef QUEUE_H
#define QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum queue_kind {
    QUEUE_MESSAGE,      /* an MQTT message arrived */
    QUEUE_CONNECTED,    /* (re)connected to the broker */
    QUEUE_LOST,         /* connection to the broker lost */
};

struct queue_event {
    enum queue_kind kind;
    char *topic;             /* NUL-terminated; QUEUE_MESSAGE only */
    char *payload;           /* len bytes plus a NUL the sender did not send */
    size_t len;
    bool retained;
    int qos;
    char *response_topic;    /* MQTT v5 response topic, NUL-terminated, or NULL */
    char *correlation;       /* MQTT v5 correlation data (binary), or NULL */
    size_t correlation_len;
    long expiry_s;           /* MQTT v5 message expiry interval left at arrival, -1 if none */
    time_t received;         /* wall clock from which the message's age counts: its
                                arrival, or for a replayed message the earliest time
                                it can have been sent (0 = unknown: treat as too old) */
    bool replayed;           /* queued by the broker while the bridge was away (mqtt.h) */
    struct queue_event *next;
};

struct queue;

/* Creates a queue; wake(ud) is called after each push (from the pushing
 * thread). Returns NULL on allocation or mutex failure. Free with
 * queue_destroy(). */
struct queue *queue_create(void (*wake)(void *ud), void *ud);
void queue_destroy(struct queue *q);

/* Takes ownership of ev (allocated with queue_event_new). Drops the oldest
 * message when more than max_len events are queued, and says so in the log.
 * Thread-safe. */
void queue_push(struct queue *q, struct queue_event *ev);

/* Calls the wakeup function without an event (thread-safe). */
void queue_wake(struct queue *q);

/* Returns the oldest event (caller frees with queue_event_free) or NULL. */
struct queue_event *queue_pop(struct queue *q);

/* A zeroed event of the given kind (caller owns it), or NULL. */
struct queue_event *queue_event_new(enum queue_kind kind);
void queue_event_free(struct queue_event *ev);

#endif
