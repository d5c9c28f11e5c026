/* hass.h - Home Assistant MQTT discovery, as pure builders (no I/O).
 *
 * Every vehicle is a device (identifiers ["t2m_<VIN>"], via the bridge
 * device) with one entity per entity row of the field table (fields.h) and
 * the control entities of issue "Commands" (lock, climate, buttons, alias
 * text). The bridge itself is a device ("toyota2mqtt_bridge_<base>") with
 * diagnostic entities. Config topics are
 *   <prefix>/<component>/<node_id>/<key>/config
 * with node_id the VIN or the bridge id; unique_id t2m_<VIN>_<key>;
 * object_id <vin>_<key> and default_entity_id <component>.<vin>_<key>.
 * Payloads are compact JSON with full (unabbreviated) keys.
 */
#ifndef HASS_H
#define HASS_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"
#include "config.h"
#include "resource.h"

#define HASS_TOPIC 512

struct hass_opts {
    const char *prefix;       /* homeassistant.discovery_prefix */
    const char *base;         /* mqtt.base_topic */
    const char *version;      /* origin sw_version, bridge sw_version */
    const char *support_url;  /* origin support_url (http/https), NULL: none */
    bool unlock_code;         /* commands.unlock_code is set: the lock asks
                                 for a code; trunk_open gets no button */
    unsigned allow;           /* commands.allow (1u << enum command_id): controls
                                 only for allowed commands */
};

/* Called once per config topic with compact JSON to publish retained.
 * Entities that do not apply (a resource the vehicle lacks, a command not
 * allowed) are not emitted: the caller clears their topics if it published
 * them before (an empty retained payload removes an entity). */
typedef void (*hass_emit_fn)(void *ud, const char *topic, const char *payload);

/* Emits the config of every entity of vehicle v: the field entities of the
 * resources it has (has[r]) and the allowed controls. has[r] must mean
 * "known to have": an entity left out is one the caller will clear, and
 * clearing removes it (and its customisations) from Home Assistant.
 * Returns how many topics were emitted, or -1 (allocation failure, invalid
 * VIN or options, a topic that does not fit). */
int hass_vehicle(const struct hass_opts *o, const struct api_vehicle *v,
                 const bool has[RES_COUNT], hass_emit_fn emit, void *ud);

/* Emits the bridge device's entities: connection state (bridge/state),
 * version (bridge/info), last successful poll, last error and API calls
 * today (bridge/stats). Returns how many, or -1. */
int hass_bridge(const struct hass_opts *o, hass_emit_fn emit, void *ud);

/* The bridge's node id and device identifier, "toyota2mqtt_bridge_<base>"
 * with every character of base outside [a-zA-Z0-9_-] made '_'. Returns 0,
 * or -1 when it does not fit. */
int hass_bridge_id(const struct hass_opts *o, char *buf, size_t len);

/* Whether a retained message on a discovery topic is one this bridge
 * published (for clearing stale entities at start-up): the topic has the
 * shape <prefix>/<component>/<node_id>/<object_id>/config, and the payload
 * is a JSON object whose device is the bridge device or a device via it
 * (which names this bridge's base). An empty payload is not owned (there is
 * nothing to clear). When owned and node is not NULL, the node_id (a VIN or
 * the bridge id) is copied into node. Pure; safe on hostile bytes. */
bool hass_owns_config(const struct hass_opts *o, const char *topic, const char *payload,
                      size_t len, char *node, size_t nodelen);

#endif
