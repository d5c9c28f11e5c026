/* discovery.h - Home Assistant discovery on the wire: publishes what hass.c
 * builds (through the retained store, so unchanged configs are not resent),
 * removes entities a vehicle no longer has, clears a vanished vehicle's
 * entities, and at start-up clears retained discovery topics of this bridge
 * that match no current vehicle or entity (as zigbee2mqtt does). */
#ifndef DISCOVERY_H
#define DISCOVERY_H

#include <stdbool.h>

#include "bridge.h"
#include "queue.h"

/* Publishes the bridge device's discovery. */
void discovery_bridge(struct bridge *b);

/* Publishes v's discovery for the resources it has, clearing entities of
 * resources it no longer has. */
void discovery_vehicle(struct bridge *b, struct vehicle *v);

/* Clears every discovery topic of v. */
void discovery_forget_vehicle(struct bridge *b, struct vehicle *v);

/* On each broker connection: on the first, starts the stale-topic sweep. */
void discovery_on_connect(struct bridge *b);

/* Takes messages of the sweep; returns true when ev was one. */
bool discovery_on_message(struct bridge *b, const struct queue_event *ev);

/* Runs the sweep once its window is over; true when there is nothing left
 * to do (--once waits for it). */
bool discovery_settled(struct bridge *b);

void discovery_free(struct bridge *b);

#endif
