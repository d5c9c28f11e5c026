/* resource.h - the per-vehicle API resources the bridge polls, described once.
 *
 * One row per resource: its MQTT topic name, its API path below
 * /vehicles/{vin}, the field that carries the API's own timestamp for it, the
 * default poll interval, and whether a 404 means "this vehicle has none".
 */
#ifndef RESOURCE_H
#define RESOURCE_H

#include <stdbool.h>

enum resource {
    RES_VEHICLE = 0,      /* getConnectedVehicle     GET /vehicles/{vin} */
    RES_STATUS,           /* getVehicleStatus        GET /vehicles/{vin}/status */
    RES_HEALTH,           /* getVehicleHealthStatus  GET /vehicles/{vin}/health */
    RES_LOCATION,         /* getVehiclePosition      GET /vehicles/{vin}/location */
    RES_ELECTRIC,         /* getElectricStatus       GET /vehicles/{vin}/electric */
    RES_CLIMATE,          /* getClimateStatus        GET /vehicles/{vin}/climate */
    RES_TRIPS,            /* getTrips                GET /vehicles/{vin}/trips (paged) */
    RES_NOTIFICATIONS,    /* getVehicleNotifications GET /vehicles/{vin}/notifications */
    RES_SERVICE_HISTORY,  /* getServiceHistory       GET /vehicles/{vin}/service-history */
    RES_COUNT
};

struct resource_info {
    const char *name;          /* topic segment and config key: "service_history" */
    const char *path;          /* below /vehicles/{vin}: "/service-history" ("" for vehicle) */
    const char *timestamp;     /* the API's own freshness field, or NULL */
    int default_interval_s;    /* poll.<name> default */
    bool optional;             /* a 404 means the vehicle lacks it (no topic, no error) */
};

/* The row for r; r must be < RES_COUNT. */
const struct resource_info *resource_get(enum resource r);

/* Name -> resource; returns -1 when name is not a resource. */
int resource_from_name(const char *name);

#endif
