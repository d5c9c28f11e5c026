/* queue.c - a mutex-protected FIFO plus a wakeup; see queue.h. */
#include "queue.h"

#include <pthread.h>
#include <stdlib.h>

#include "log.h"

/* Commands arrive at human speed; a deep backlog means the main loop is
 * stuck, and keeping it unbounded would only turn that into an OOM. */
#define QUEUE_MAX_LEN 1024

struct queue {
    pthread_mutex_t lock;
    struct queue_event *head, *tail;
    size_t len;
    void (*wake)(void *ud);
    void *ud;
};

struct queue *queue_create(void (*wake)(void *ud), void *ud)
{
    struct queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    if (pthread_mutex_init(&q->lock, NULL) != 0) {
        free(q);
        return NULL;
    }
    q->wake = wake;
    q->ud = ud;
    return q;
}

void queue_destroy(struct queue *q)
{
    if (!q) return;
    struct queue_event *ev;
    while ((ev = queue_pop(q))) queue_event_free(ev);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

void queue_push(struct queue *q, struct queue_event *ev)
{
    struct queue_event *dropped = NULL;
    ev->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail) q->tail->next = ev;
    else q->head = ev;
    q->tail = ev;
    if (++q->len > QUEUE_MAX_LEN) {
        dropped = q->head;
        q->head = dropped->next;
        q->len--;
    }
    pthread_mutex_unlock(&q->lock);
    if (dropped) {
        log_warn("event queue full: dropped a message on %s", dropped->topic ? dropped->topic : "-");
        queue_event_free(dropped);
    }
    if (q->wake) q->wake(q->ud);
}

void queue_wake(struct queue *q)
{
    if (q->wake) q->wake(q->ud);
}

struct queue_event *queue_pop(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    struct queue_event *ev = q->head;
    if (ev) {
        q->head = ev->next;
        if (!q->head) q->tail = NULL;
        q->len--;
        ev->next = NULL;
    }
    pthread_mutex_unlock(&q->lock);
    return ev;
}

struct queue_event *queue_event_new(enum queue_kind kind)
{
    struct queue_event *ev = calloc(1, sizeof *ev);
    if (ev) {
        ev->kind = kind;
        ev->expiry_s = -1;
    }
    return ev;
}

void queue_event_free(struct queue_event *ev)
{
    if (!ev) return;
    free(ev->topic);
    free(ev->payload);
    free(ev->response_topic);
    free(ev->correlation);
    free(ev);
}
