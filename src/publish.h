/* publish.h - retained state with change detection. Every retained topic the
 * bridge owns is remembered with its last payload, so that an unchanged
 * payload is not sent again, everything can be republished at once (broker
 * reconnect, Home Assistant birth), and a vanished vehicle's topics can be
 * cleared.
 */
#ifndef PUBLISH_H
#define PUBLISH_H

#include <stdbool.h>
#include <stddef.h>

struct mqtt;
struct publish;

/* Returns NULL on allocation failure. m may be NULL (unit tests: nothing is
 * sent, the store still works). */
struct publish *publish_create(struct mqtt *m, int qos);
void publish_destroy(struct publish *p);

/* Publishes payload retained on topic unless it equals the last payload
 * published there. Returns 1 when sent, 0 when unchanged, -1 on error (the
 * payload is still remembered, and goes out with the next republish). */
int publish_retained(struct publish *p, const char *topic, const char *payload);

/* Publishes every remembered topic again. Returns how many were sent. */
size_t publish_republish(struct publish *p);

/* Publishes an empty retained payload (which deletes the retained message)
 * on every remembered topic that starts with prefix, and forgets them.
 * Returns how many topics were cleared. */
size_t publish_clear_prefix(struct publish *p, const char *prefix);

/* Publishes an empty retained payload on one topic and forgets it. */
void publish_clear(struct publish *p, const char *topic);

/* True when topic is remembered. */
bool publish_has(const struct publish *p, const char *topic);

/* How many topics are remembered, and the payload bytes they hold. */
size_t publish_count(const struct publish *p);
size_t publish_bytes(const struct publish *p);

#endif
