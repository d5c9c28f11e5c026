/* render.h - JSON views (cJSON trees) of the fleet model, shaped exactly as
 * the OpenAPI schemas of the Toyota Connected Services API say. Pure: no I/O.
 * Every function returns a new tree the caller cJSON_Delete()s, or NULL on
 * allocation failure.
 */
#ifndef SIM_RENDER_H
#define SIM_RENDER_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "fleet.h"

/* Error schema {"code","message"}. */
cJSON *render_error(const char *code, const char *message);

cJSON *render_vehicle(const struct vehicle *v);              /* ConnectedVehicle */
cJSON *render_vehicle_list(const struct fleet *f);           /* ConnectedVehicleList */
cJSON *render_status(const struct vehicle *v);               /* VehicleStatus */
cJSON *render_location(const struct vehicle *v);             /* VehiclePosition */
cJSON *render_electric(const struct vehicle *v);             /* ElectricStatus (not petrol) */
cJSON *render_climate(const struct vehicle *v);              /* ClimateStatus */
cJSON *render_climate_settings(const struct vehicle *v);     /* ClimateSettings */
cJSON *render_health(const struct vehicle *v);               /* VehicleHealth */
cJSON *render_service(const struct vehicle *v);              /* ServiceHistoryList */
cJSON *render_notification(const struct notification *n);    /* Notification */
cJSON *render_notifications(const struct vehicle *v, bool unread_only);  /* NotificationList */

/* TripHistoryList: trips whose start date (UTC day number) lies in
 * [from_day, to_day], newest first, the page [offset, offset+limit). */
cJSON *render_trips(const struct vehicle *v, int64_t from_day, int64_t to_day, int limit,
                    long offset, bool include_route);

/* RefreshStatus. */
cJSON *render_refresh_status(const char *request_id, int64_t now);

/* The whole fleet for GET /_sim/state: every vehicle with all its resources,
 * its powertrain and role, and its trips (without routes). */
cJSON *render_state(const struct fleet *f, int64_t now);

#endif
