/* publish.c - the retained-topic store; see publish.h. A chained hash table
 * keyed by topic; a few thousand topics at most (fleet size x fields). */
#include "publish.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mqtt.h"

#define NBUCKETS 1024

struct entry {
    char *topic;
    char *payload;
    size_t len;
    struct entry *next;
};

struct publish {
    struct mqtt *m;
    int qos;
    struct entry *buckets[NBUCKETS];
    size_t count, bytes;
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

struct publish *publish_create(struct mqtt *m, int qos)
{
    struct publish *p = calloc(1, sizeof *p);
    if (p) {
        p->m = m;
        p->qos = qos;
    }
    return p;
}

static void entry_free(struct entry *e)
{
    free(e->topic);
    free(e->payload);
    free(e);
}

void publish_destroy(struct publish *p)
{
    if (!p) return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct entry *e = p->buckets[i];
        while (e) {
            struct entry *n = e->next;
            entry_free(e);
            e = n;
        }
    }
    free(p);
}

static struct entry *find(const struct publish *p, const char *topic)
{
    for (struct entry *e = p->buckets[hash(topic) % NBUCKETS]; e; e = e->next)
        if (strcmp(e->topic, topic) == 0) return e;
    return NULL;
}

static int send(struct publish *p, const char *topic, const char *payload, size_t len)
{
    if (!p->m) return 0;
    return mqtt_publish(p->m, topic, payload, len, p->qos, true);
}

int publish_retained(struct publish *p, const char *topic, const char *payload)
{
    size_t len = strlen(payload);
    struct entry *e = find(p, topic);
    if (e && e->len == len && memcmp(e->payload, payload, len) == 0) return 0;
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, payload, len + 1);
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e || !(e->topic = strdup(topic))) {
            free(e);
            free(copy);
            return -1;
        }
        uint32_t b = hash(topic) % NBUCKETS;
        e->next = p->buckets[b];
        p->buckets[b] = e;
        p->count++;
    } else {
        p->bytes -= e->len;
        free(e->payload);
    }
    e->payload = copy;
    e->len = len;
    p->bytes += len;
    log_debug("publish %s (%zu bytes)", topic, len);
    return send(p, topic, payload, len) == 0 ? 1 : -1;
}

size_t publish_republish(struct publish *p)
{
    size_t n = 0;
    for (size_t i = 0; i < NBUCKETS; i++)
        for (struct entry *e = p->buckets[i]; e; e = e->next)
            if (send(p, e->topic, e->payload, e->len) == 0) n++;
    return n;
}

size_t publish_clear_prefix(struct publish *p, const char *prefix)
{
    size_t n = 0, pl = strlen(prefix);
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct entry **pp = &p->buckets[i];
        while (*pp) {
            struct entry *e = *pp;
            if (strncmp(e->topic, prefix, pl) == 0) {
                send(p, e->topic, "", 0);
                *pp = e->next;
                p->count--;
                p->bytes -= e->len;
                entry_free(e);
                n++;
            } else {
                pp = &e->next;
            }
        }
    }
    return n;
}

void publish_clear(struct publish *p, const char *topic)
{
    send(p, topic, "", 0);
    struct entry **pp = &p->buckets[hash(topic) % NBUCKETS];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->topic, topic) == 0) {
            struct entry *e = *pp;
            *pp = e->next;
            p->count--;
            p->bytes -= e->len;
            entry_free(e);
            return;
        }
    }
}

bool publish_has(const struct publish *p, const char *topic)
{
    return find(p, topic) != NULL;
}

size_t publish_count(const struct publish *p) { return p->count; }
size_t publish_bytes(const struct publish *p) { return p->bytes; }
