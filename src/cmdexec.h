/* cmdexec.h - runs MQTT commands: topic -> vehicle, command.c's validation
 * and plan, the API calls in order per vehicle, the one result per command,
 * and confirmation re-polls until the vehicle's own timestamp moves. */
#ifndef CMDEXEC_H
#define CMDEXEC_H

#include <cjson/cJSON.h>

#include "bridge.h"
#include "queue.h"

/* Allocates b->cmds. Returns 0 or -1. */
int cmdexec_init(struct bridge *b);
void cmdexec_free(struct bridge *b);

/* Handles a message on a command topic (anything under <base>/). */
void cmdexec_on_message(struct bridge *b, const struct queue_event *ev);

/* Starts due work: queued commands, expiry, confirmation re-polls. */
void cmdexec_tick(struct bridge *b);

/* Monotonic time of the next thing cmdexec_tick() must do. */
double cmdexec_next_due(const struct bridge *b);

/* A fresh copy of resource r of v arrived: confirms pending commands whose
 * change it shows. */
void cmdexec_on_resource(struct bridge *b, struct vehicle *v, enum resource r,
                         const cJSON *tree);

/* Parses an ISO 8601 date-time ("2026-11-27T04:50:00Z", fractions and
 * +hh:mm offsets allowed) into epoch seconds. Returns 0 or -1. Pure. */
int cmdexec_parse_time(const char *s, time_t *out);

#endif
