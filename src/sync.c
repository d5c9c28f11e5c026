/* sync.c - from API results to MQTT state; see sync.h. */
#include "sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "cmdexec.h"
#include "discovery.h"
#include "log.h"
#include "poller.h"
#include "publish.h"
#include "mqtt.h"

struct emit_ctx {
    struct bridge *b;
    const char *vin;
    const char *res;
};

/* Publishes one derived or per-field value below <base>/<VIN>/<res>/. */
static void emit_sub(void *ud, const char *sub, const char *payload)
{
    struct emit_ctx *c = ud;
    char topic[BRIDGE_TOPIC], suffix[BRIDGE_TOPIC];
    snprintf(suffix, sizeof suffix, "%s/%s", c->res, sub);
    if (bridge_topic(c->b, topic, sizeof topic, c->vin, suffix) == 0)
        publish_retained(c->b->pub, topic, payload);
}

/* Announces each notification not seen before as a Home Assistant event.
 * The first time a vehicle is seen (no ids remembered), the existing ones
 * become the baseline silently: old news is not an event. */
static void notification_events(struct bridge *b, struct vehicle *v, const cJSON *tree)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(tree, "data");
    const cJSON *n;
    bool baseline = !v->notifications_baselined &&
                    state_seen_count(&b->state, v->info.vin) == 0;
    v->notifications_baselined = true;
    char topic[BRIDGE_TOPIC];
    if (bridge_topic(b, topic, sizeof topic, v->info.vin, "notifications/event") != 0) return;
    cJSON_ArrayForEach(n, data) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(n, "id");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(n, "type");
        if (!cJSON_IsString(id) || !cJSON_IsString(type)) continue;
        /* Home Assistant warns about event types its entity does not declare. */
        if (!fields_event_type_known(type->valuestring)) continue;
        if (state_seen_add(&b->state, v->info.vin, id->valuestring) != 1 || baseline) continue;
        cJSON *ev = cJSON_Duplicate(n, 1);
        if (!ev) continue;
        cJSON_AddStringToObject(ev, "event_type", type->valuestring);
        char *s = cJSON_PrintUnformatted(ev);
        if (s) {
            log_msg(LOG_INFO, v->info.vin, "notifications", "new %s notification %s",
                    type->valuestring, id->valuestring);
            mqtt_publish(b->mqtt, topic, s, strlen(s), 1, false);
        }
        free(s);
        cJSON_Delete(ev);
    }
}

void sync_resource(struct bridge *b, struct vehicle *v, enum resource r,
                   const cJSON *tree, const char *compact)
{
    const char *name = resource_get(r)->name;
    char topic[BRIDGE_TOPIC];
    char *printed = NULL;
    if (!compact) compact = printed = cJSON_PrintUnformatted(tree);
    if (!compact || bridge_topic(b, topic, sizeof topic, v->info.vin, name) != 0) {
        free(printed);
        return;
    }
    int changed = publish_retained(b->pub, topic, compact);
    free(printed);
    if (!v->slot[r].fetched) v->discovery_dirty = true;
    cmdexec_on_resource(b, v, r, tree);
    if (changed == 0) return;
    struct emit_ctx c = { b, v->info.vin, name };
    fields_derive(r, tree, emit_sub, &c);
    if (b->cfg->mqtt.field_topics) fields_flatten(r, tree, emit_sub, &c);
    if (r == RES_VEHICLE) {
        struct api_vehicle nv;
        char err[128];
        if (api_vehicle_from_json(tree, &nv, err, sizeof err) == 0 &&
            strcmp(nv.vin, v->info.vin) == 0 && memcmp(&nv, &v->info, sizeof nv) != 0) {
            v->info = nv;
            v->discovery_dirty = true;
        }
    }
    if (r == RES_NOTIFICATIONS) notification_events(b, v, tree);
}

void sync_resource_absent(struct bridge *b, struct vehicle *v, enum resource r)
{
    char topic[BRIDGE_TOPIC], prefix[BRIDGE_TOPIC + 1];
    if (bridge_topic(b, topic, sizeof topic, v->info.vin, resource_get(r)->name) != 0) return;
    if (publish_has(b->pub, topic)) {
        publish_clear(b->pub, topic);
        snprintf(prefix, sizeof prefix, "%s/", topic);
        publish_clear_prefix(b->pub, prefix);
    }
    if (v->slot[r].fetched) {
        v->slot[r].fetched = false;
    }
    v->discovery_dirty = true;
}

void sync_vehicle_availability(struct bridge *b, struct vehicle *v)
{
    char topic[BRIDGE_TOPIC];
    bool any = false;
    for (int r = 0; r < RES_COUNT; r++) any |= v->slot[r].fetched;
    /* A refresh token the server refused stops every call: nothing is fetched. */
    bool online = any && v->failures < 3 &&
                  !(b->auth.mode == AUTH_OAUTH && b->auth.permanent_failure);
    /* Not asked successfully yet and no real failure (a 429, say): unknown. */
    if (!any && v->failures < 3 && !v->online) return;
    if (bridge_topic(b, topic, sizeof topic, v->info.vin, "availability") == 0)
        publish_retained(b->pub, topic, online ? "online" : "offline");
    if (online != v->online)
        log_msg(online ? LOG_INFO : LOG_WARN, v->info.vin, NULL, "vehicle %s", online ? "online" : "offline");
    v->online = online;
}

/* Clears every retained topic of a vehicle that left the account. */
static void forget_vehicle(struct bridge *b, struct vehicle *v)
{
    char prefix[BRIDGE_TOPIC];
    log_msg(LOG_INFO, v->info.vin, NULL, "vehicle left the account: clearing its topics");
    if (bridge_topic(b, prefix, sizeof prefix, v->info.vin, "") == 0)
        publish_clear_prefix(b->pub, prefix);
    if (b->cfg->homeassistant.enabled) discovery_forget_vehicle(b, v);
    cJSON_Delete(v->trips_acc);
    v->trips_acc = NULL;
}

void sync_vehicle_list(struct bridge *b, const struct api_vehicle *list, size_t n)
{
    struct vehicle *nv = n ? calloc(n, sizeof *nv) : NULL;
    if (n && !nv) {
        log_error("out of memory reading the vehicle list");
        return;
    }
    bool changed = n != b->nvehicles;
    for (size_t i = 0; i < n; i++) {
        struct vehicle *old = bridge_vehicle(b, list[i].vin);
        if (old) {
            nv[i] = *old;
            old->info.vin[0] = '\0';          /* moved: not to be forgotten below */
            old->trips_acc = NULL;
            if (memcmp(&nv[i].info, &list[i], sizeof list[i]) != 0) nv[i].discovery_dirty = true;
            nv[i].info = list[i];
        } else {
            nv[i].info = list[i];
            nv[i].discovery_dirty = true;
            changed = true;
            log_msg(LOG_INFO, list[i].vin, NULL, "vehicle joined: %d %s %s%s%s%s", list[i].year,
                    list[i].make, list[i].model, list[i].alias[0] ? " \"" : "",
                    list[i].alias, list[i].alias[0] ? "\"" : "");
        }
    }
    for (size_t i = 0; i < b->nvehicles; i++)
        if (b->vehicles[i].info.vin[0]) {
            forget_vehicle(b, &b->vehicles[i]);
            changed = true;
        }
    free(b->vehicles);
    b->vehicles = nv;
    b->nvehicles = n;
    if (changed) poller_publish_info(b);
}

void sync_discovery(struct bridge *b)
{
    if (!b->cfg->homeassistant.enabled) return;
    discovery_bridge(b);
    for (size_t i = 0; i < b->nvehicles; i++) {
        struct vehicle *v = &b->vehicles[i];
        if (!v->discovery_dirty) continue;
        discovery_vehicle(b, v);
        v->discovery_dirty = false;
    }
}

void sync_republish(struct bridge *b)
{
    size_t n = publish_republish(b->pub);
    log_info("republished %zu of %zu retained topics (%zu bytes held)", n, publish_count(b->pub),
             publish_bytes(b->pub));
}
