/* sync.h - keeps MQTT in step with what the API said: resource state, the
 * derived and per-field topics, per-vehicle availability, the vehicle table
 * (vehicles joining and leaving the account) and Home Assistant discovery. */
#ifndef SYNC_H
#define SYNC_H

#include <cjson/cJSON.h>

#include "bridge.h"

/* Publishes resource r of v: the API's JSON (compact, as received; when
 * compact is NULL, tree printed), its derived sub-topics and, with
 * mqtt.field_topics, its per-field topics. */
void sync_resource(struct bridge *b, struct vehicle *v, enum resource r,
                   const cJSON *tree, const char *compact);

/* v has no resource r (404): removes whatever was published for it. */
void sync_resource_absent(struct bridge *b, struct vehicle *v, enum resource r);

/* Replaces the vehicle table by the account's list: new vehicles are polled
 * at once, vanished ones have their state and discovery cleared. */
void sync_vehicle_list(struct bridge *b, const struct api_vehicle *list, size_t n);

/* Publishes <base>/<VIN>/availability when it changes. */
void sync_vehicle_availability(struct bridge *b, struct vehicle *v);

/* Publishes Home Assistant discovery of the bridge and of every vehicle
 * whose discovery changed. */
void sync_discovery(struct bridge *b);

/* Publishes everything again: after a broker reconnect or a Home Assistant
 * birth message. */
void sync_republish(struct bridge *b);

#endif
