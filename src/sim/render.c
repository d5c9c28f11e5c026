/* render.c - see render.h. Builders record any allocation failure in a flag
 * and each public function drops the whole tree when it is set. */
#include "render.h"

#include <stdio.h>
#include <string.h>

static const char *const SEVERITY[] = {"info", "warning", "critical"};
static const char *const NTF_TYPE[] = {"alert", "message", "recall", "maintenance", "service"};
static const char *const CHARGE[] = {"not_charging", "charging", "fully_charged", "plugged_in"};
static const char *const MODE[] = {"auto", "cool", "heat", "defrost"};
static const char *const HEALTH[] = {"good", "warning", "critical"};
static const char *const OIL[] = {"ok", "low", "critically_low"};
static const char *const WINDOW[] = {"closed", "open", "venting"};

static void add_str(cJSON *o, const char *k, const char *v, bool *ok)
{
    if (!cJSON_AddStringToObject(o, k, v))
        *ok = false;
}

static void add_num(cJSON *o, const char *k, double v, bool *ok)
{
    if (!cJSON_AddNumberToObject(o, k, v))
        *ok = false;
}

static void add_bool(cJSON *o, const char *k, bool v, bool *ok)
{
    if (!cJSON_AddBoolToObject(o, k, v))
        *ok = false;
}

static void add_time(cJSON *o, const char *k, int64_t t, bool *ok)
{
    char buf[UTIL_TIME_LEN];
    util_iso_time(t, buf);
    add_str(o, k, buf, ok);
}

static void add_item(cJSON *parent, const char *k, cJSON *child, bool *ok)
{
    if (!child) {
        *ok = false;
        return;
    }
    if (k ? !cJSON_AddItemToObject(parent, k, child) : !cJSON_AddItemToArray(parent, child)) {
        cJSON_Delete(child);
        *ok = false;
    }
}

static cJSON *finish(cJSON *o, bool ok)
{
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *render_error(const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    if (o) {
        add_str(o, "code", code, &ok);
        add_str(o, "message", message, &ok);
    }
    return finish(o, ok);
}

cJSON *render_vehicle(const struct vehicle *v)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    if (!o)
        return NULL;
    add_str(o, "vin", v->vin, &ok);
    if (v->alias[0])
        add_str(o, "alias", v->alias, &ok);
    add_str(o, "make", v->make, &ok);
    add_str(o, "model", v->model, &ok);
    add_num(o, "year", v->year, &ok);
    add_str(o, "color", v->color, &ok);
    add_str(o, "trim", v->trim, &ok);
    add_str(o, "guid", v->guid, &ok);
    add_bool(o, "isConnected", v->connected, &ok);
    add_time(o, "lastConnectedAt", v->last_connected, &ok);
    return finish(o, ok);
}

cJSON *render_vehicle_list(const struct fleet *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_CreateArray();
    bool ok = o && a;
    if (!ok) {
        cJSON_Delete(o);
        cJSON_Delete(a);
        return NULL;
    }
    add_item(o, "data", a, &ok);
    for (size_t i = 0; ok && i < f->n; i++)
        add_item(a, NULL, render_vehicle(f->v[i]), &ok);
    return finish(o, ok);
}

cJSON *render_status(const struct vehicle *v)
{
    static const char *const doors[DOOR_COUNT] = {"frontLeft", "frontRight", "rearLeft", "rearRight", "trunk"};
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    add_str(o, "vin", v->vin, &ok);
    add_str(o, "ignition", v->st.ignition_on ? "on" : "off", &ok);
    add_bool(o, "doorsLocked", v->st.locked, &ok);
    cJSON *d = cJSON_CreateObject();
    add_item(o, "doorStatus", d, &ok);
    for (int i = 0; ok && i < DOOR_COUNT; i++)
        add_str(d, doors[i], v->st.door_open[i] ? "open" : "closed", &ok);
    cJSON *w = cJSON_CreateObject();
    add_item(o, "windowStatus", w, &ok);
    if (ok) {
        add_str(w, "frontLeft", WINDOW[v->st.window[0]], &ok);
        add_str(w, "frontRight", WINDOW[v->st.window[1]], &ok);
    }
    add_time(o, "lastUpdatedAt", v->st.updated, &ok);
    return finish(o, ok);
}

cJSON *render_location(const struct vehicle *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    add_str(o, "vin", v->vin, &ok);
    add_num(o, "latitude", v->loc.lat, &ok);
    add_num(o, "longitude", v->loc.lon, &ok);
    add_bool(o, "isParked", v->loc.parked, &ok);
    add_time(o, "timestamp", v->loc.ts, &ok);
    return finish(o, ok);
}

cJSON *render_electric(const struct vehicle *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    const struct electric_view *e = &v->el;
    add_str(o, "vin", v->vin, &ok);
    add_num(o, "batteryLevel", e->battery, &ok);
    add_num(o, "batteryRange", e->battery_range, &ok);
    if (v->pt != PT_BEV) {
        add_num(o, "fuelLevel", e->fuel, &ok);
        add_num(o, "fuelRange", e->fuel_range, &ok);
    }
    add_num(o, "totalRange", e->total_range, &ok);
    add_str(o, "chargingStatus", CHARGE[e->chg], &ok);
    add_bool(o, "pluggedIn", e->plugged, &ok);
    if (e->chg == CHG_CHARGING)
        add_time(o, "estimatedChargeCompleteTime", e->est_complete, &ok);
    add_time(o, "lastUpdatedAt", e->updated, &ok);
    return finish(o, ok);
}

cJSON *render_climate(const struct vehicle *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    add_str(o, "vin", v->vin, &ok);
    add_bool(o, "isRunning", v->cl.running, &ok);
    add_num(o, "temperature", v->cl.temp, &ok);
    add_num(o, "fanSpeed", v->cl.fan, &ok);
    add_str(o, "mode", MODE[v->cl.mode], &ok);
    add_time(o, "lastUpdatedAt", v->cl.updated, &ok);
    return finish(o, ok);
}

cJSON *render_climate_settings(const struct vehicle *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    add_num(o, "temperature", v->cl.temp, &ok);
    add_num(o, "fanSpeed", v->cl.fan, &ok);
    add_str(o, "mode", MODE[v->cl.mode], &ok);
    return finish(o, ok);
}

cJSON *render_health(const struct vehicle *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    add_str(o, "vin", v->vin, &ok);
    add_str(o, "overallStatus", HEALTH[v->health], &ok);
    add_str(o, "oilQuantity", OIL[v->oil], &ok);
    cJSON *a = cJSON_CreateArray();
    add_item(o, "warningLights", a, &ok);
    for (size_t i = 0; ok && i < v->nwarnings; i++) {
        cJSON *w = cJSON_CreateObject();
        add_item(a, NULL, w, &ok);
        if (!ok)
            break;
        add_str(w, "name", v->warnings[i].name, &ok);
        add_str(w, "severity", SEVERITY[v->warnings[i].severity], &ok);
        add_str(w, "description", v->warnings[i].description, &ok);
    }
    add_bool(o, "maintenanceRequired", v->maintenance, &ok);
    add_time(o, "lastReportedAt", v->health_reported, &ok);
    return finish(o, ok);
}

cJSON *render_service(const struct vehicle *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    cJSON *a = cJSON_CreateArray();
    add_item(o, "data", a, &ok);
    for (size_t i = v->nsvc; ok && i-- > 0;) {
        const struct service_record *s = &v->svc[i];
        cJSON *r = cJSON_CreateObject();
        add_item(a, NULL, r, &ok);
        if (!ok)
            break;
        char date[16];
        util_iso_date(s->date, date, sizeof date);
        add_str(r, "id", s->id, &ok);
        add_str(r, "vin", v->vin, &ok);
        add_str(r, "category", s->category, &ok);
        add_str(r, "description", s->description, &ok);
        add_str(r, "serviceDate", date, &ok);
        add_num(r, "mileage", s->mileage, &ok);
        add_str(r, "dealerCode", s->dealer_code, &ok);
        add_str(r, "dealerName", s->dealer_name, &ok);
    }
    return finish(o, ok);
}

cJSON *render_notification(const struct notification *n)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    add_str(o, "id", n->id, &ok);
    add_str(o, "type", NTF_TYPE[n->type], &ok);
    add_str(o, "title", n->title, &ok);
    add_str(o, "message", n->message, &ok);
    add_bool(o, "isRead", n->read, &ok);
    add_str(o, "severity", SEVERITY[n->severity], &ok);
    add_time(o, "createdAt", n->created, &ok);
    return finish(o, ok);
}

cJSON *render_notifications(const struct vehicle *v, bool unread_only)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    cJSON *a = cJSON_CreateArray();
    add_item(o, "data", a, &ok);
    int total = 0, unread = 0;
    for (size_t i = v->nntf; ok && i-- > 0;) {
        const struct notification *n = &v->ntf[i];
        unread += !n->read;
        if (unread_only && n->read)
            continue;
        add_item(a, NULL, render_notification(n), &ok);
        total++;
    }
    add_num(o, "total", total, &ok);
    add_num(o, "unreadCount", unread, &ok);
    return finish(o, ok);
}

static cJSON *coordinates(double lat, double lon, int64_t ts)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    add_num(o, "latitude", lat, &ok);
    add_num(o, "longitude", lon, &ok);
    add_time(o, "timestamp", ts, &ok);
    return finish(o, ok);
}

static cJSON *render_trip(const struct vehicle *v, const struct trip *t, bool include_route)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    const struct place *a = &v->places[t->from], *b = &v->places[t->to];
    add_str(o, "id", t->id, &ok);
    add_str(o, "vin", v->vin, &ok);
    add_time(o, "startTime", t->start, &ok);
    add_time(o, "endTime", t->end, &ok);
    add_num(o, "distanceMiles", t->miles, &ok);
    add_num(o, "durationMinutes", (double)((t->end - t->start + 30) / 60), &ok);
    add_num(o, "averageSpeedMph", t->avg_mph, &ok);
    add_num(o, "maxSpeedMph", t->max_mph, &ok);
    add_str(o, "startAddress", a->address, &ok);
    add_str(o, "endAddress", b->address, &ok);
    add_item(o, "startCoordinates", coordinates(a->lat, a->lon, t->start), &ok);
    add_item(o, "endCoordinates", coordinates(b->lat, b->lon, t->end), &ok);
    if (include_route && ok) {
        double lat[30], lon[30];
        int64_t ts[30];
        size_t n = fleet_trip_route(v, t, lat, lon, ts, 30);
        cJSON *r = cJSON_CreateArray();
        add_item(o, "route", r, &ok);
        for (size_t i = 0; ok && i < n; i++)
            add_item(r, NULL, coordinates(lat[i], lon[i], ts[i]), &ok);
    }
    return finish(o, ok);
}

cJSON *render_trips(const struct vehicle *v, int64_t from_day, int64_t to_day, int limit,
                    long offset, bool include_route)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    cJSON *a = cJSON_CreateArray();
    add_item(o, "data", a, &ok);
    long total = 0;
    for (size_t i = v->ntrips; ok && i-- > 0;) {
        const struct trip *t = &v->trips[i];
        int64_t day = t->start / 86400;
        if (day < from_day || day > to_day)
            continue;
        if (total >= offset && total < offset + limit)
            add_item(a, NULL, render_trip(v, t, include_route), &ok);
        total++;
    }
    add_num(o, "total", (double)total, &ok);
    add_num(o, "limit", limit, &ok);
    add_num(o, "offset", (double)offset, &ok);
    return finish(o, ok);
}

cJSON *render_refresh_status(const char *request_id, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    add_str(o, "requestId", request_id, &ok);
    add_str(o, "status", "accepted", &ok);
    add_str(o, "returnCode", "000000", &ok);
    add_time(o, "timestamp", now, &ok);
    return finish(o, ok);
}

static cJSON *render_vehicle_state(const struct vehicle *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    add_str(o, "powertrain", fleet_powertrain_name(v->pt), &ok);
    add_str(o, "role", fleet_role_name(v->role), &ok);
    add_bool(o, "driving", v->driving, &ok);
    add_bool(o, "charging", v->charging, &ok);
    add_num(o, "pendingCommands", (double)v->npending, &ok);
    add_item(o, "vehicle", render_vehicle(v), &ok);
    add_item(o, "status", render_status(v), &ok);
    add_item(o, "location", render_location(v), &ok);
    if (v->pt != PT_PETROL)
        add_item(o, "electric", render_electric(v), &ok);
    add_item(o, "climate", render_climate(v), &ok);
    add_item(o, "health", render_health(v), &ok);
    add_item(o, "notifications", render_notifications(v, false), &ok);
    add_item(o, "serviceHistory", render_service(v), &ok);
    add_item(o, "trips", render_trips(v, 0, INT64_MAX / 86400, 1 << 30, 0, false), &ok);
    return finish(o, ok);
}

cJSON *render_state(const struct fleet *f, int64_t now)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool ok = true;
    add_time(o, "simTime", now, &ok);
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)f->seed);
    add_str(o, "seed", seed, &ok);
    cJSON *a = cJSON_CreateArray();
    add_item(o, "vehicles", a, &ok);
    for (size_t i = 0; ok && i < f->n; i++)
        add_item(a, NULL, render_vehicle_state(f->v[i]), &ok);
    return finish(o, ok);
}
