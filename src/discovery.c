/* discovery.c - see discovery.h. */
#include "discovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "hass.h"
#include "log.h"
#include "mqtt.h"
#include "publish.h"

/* How long after the vehicle list is known retained discovery topics are
 * collected before the stale ones are cleared. */
#define SWEEP_WINDOW_S 3.0
#define SWEEP_MAX 4096

struct topics {
    char **v;
    size_t n, cap;
};

struct vdisc {
    char vin[API_VIN_LEN + 1];
    struct topics topics;      /* discovery topics published for this vehicle */
};

struct discovery {
    struct vdisc *veh;
    size_t nveh;
    bool sweep_started, sweep_done;
    double sweep_end;
    struct topics seen;        /* retained config topics of ours found on the broker */
    char filter[BRIDGE_TOPIC];
};

static void topics_free(struct topics *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->v[i]);
    free(t->v);
    memset(t, 0, sizeof *t);
}

static bool topics_has(const struct topics *t, const char *s)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i], s) == 0) return true;
    return false;
}

static int topics_add(struct topics *t, const char *s)
{
    if (topics_has(t, s)) return 0;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **v = realloc(t->v, cap * sizeof *v);
        if (!v) return -1;
        t->v = v;
        t->cap = cap;
    }
    if (!(t->v[t->n] = strdup(s))) return -1;
    t->n++;
    return 0;
}

static struct discovery *ctx(struct bridge *b)
{
    if (!b->disc) b->disc = calloc(1, sizeof *b->disc);
    return b->disc;
}

static struct vdisc *vdisc(struct discovery *d, const char *vin, bool create)
{
    for (size_t i = 0; i < d->nveh; i++)
        if (strcmp(d->veh[i].vin, vin) == 0) return &d->veh[i];
    if (!create) return NULL;
    struct vdisc *nv = realloc(d->veh, (d->nveh + 1) * sizeof *nv);
    if (!nv) return NULL;
    d->veh = nv;
    memset(&nv[d->nveh], 0, sizeof nv[d->nveh]);
    snprintf(nv[d->nveh].vin, sizeof nv[d->nveh].vin, "%s", vin);
    return &nv[d->nveh++];
}

static void opts(const struct bridge *b, struct hass_opts *o)
{
    memset(o, 0, sizeof *o);
    o->prefix = b->cfg->homeassistant.discovery_prefix;
    o->base = b->cfg->mqtt.base_topic;
    o->version = T2M_VERSION;
    o->unlock_code = b->cfg->commands.unlock_code[0] != '\0';
    o->allow = b->cfg->commands.allow;
    o->support_url = "https://github.com/toyota2mqtt/toyota2mqtt";
}

struct emit {
    struct bridge *b;
    struct topics *out;
};

static void emit(void *ud, const char *topic, const char *payload)
{
    struct emit *e = ud;
    publish_retained(e->b->pub, topic, payload);
    if (e->out) topics_add(e->out, topic);
}

void discovery_bridge(struct bridge *b)
{
    struct hass_opts o;
    struct emit e = { b, NULL };
    opts(b, &o);
    hass_bridge(&o, emit, &e);
}

void discovery_vehicle(struct bridge *b, struct vehicle *v)
{
    struct discovery *d = ctx(b);
    struct vdisc *vd = d ? vdisc(d, v->info.vin, true) : NULL;
    if (!vd) return;
    bool has[RES_COUNT];
    for (int r = 0; r < RES_COUNT; r++) has[r] = v->slot[r].fetched && !v->slot[r].absent;
    struct hass_opts o;
    struct topics now = { 0 };
    struct emit e = { b, &now };
    opts(b, &o);
    hass_vehicle(&o, &v->info, has, emit, &e);
    for (size_t i = 0; i < vd->topics.n; i++)
        if (!topics_has(&now, vd->topics.v[i])) publish_clear(b->pub, vd->topics.v[i]);
    topics_free(&vd->topics);
    vd->topics = now;
}

void discovery_forget_vehicle(struct bridge *b, struct vehicle *v)
{
    struct discovery *d = b->disc;
    struct vdisc *vd = d ? vdisc(d, v->info.vin, false) : NULL;
    if (!vd) return;
    for (size_t i = 0; i < vd->topics.n; i++) publish_clear(b->pub, vd->topics.v[i]);
    topics_free(&vd->topics);
    *vd = d->veh[--d->nveh];
}

void discovery_on_connect(struct bridge *b)
{
    struct discovery *d = ctx(b);
    if (!d || d->sweep_started) return;
    d->sweep_started = true;
    snprintf(d->filter, sizeof d->filter, "%s/+/+/+/config", b->cfg->homeassistant.discovery_prefix);
    mqtt_subscribe(b->mqtt, d->filter, 0);
}

bool discovery_on_message(struct bridge *b, const struct queue_event *ev)
{
    struct discovery *d = b->disc;
    size_t pl = strlen(b->cfg->homeassistant.discovery_prefix);
    if (!b->cfg->homeassistant.enabled ||
        strncmp(ev->topic, b->cfg->homeassistant.discovery_prefix, pl) != 0 || ev->topic[pl] != '/')
        return false;
    struct hass_opts o;
    char node[BRIDGE_TOPIC];
    opts(b, &o);
    if (d && !d->sweep_done && ev->retained && ev->len > 0 && d->seen.n < SWEEP_MAX &&
        hass_owns_config(&o, ev->topic, ev->payload, ev->len, node, sizeof node))
        topics_add(&d->seen, ev->topic);
    return true;
}

bool discovery_settled(struct bridge *b)
{
    struct discovery *d = b->disc;
    if (!b->cfg->homeassistant.enabled || !d || d->sweep_done) return true;
    if (!d->sweep_started || !b->vehicles_loaded) return false;
    if (d->sweep_end == 0) d->sweep_end = bridge_now() + SWEEP_WINDOW_S;
    if (bridge_now() < d->sweep_end) return false;
    for (size_t i = 0; i < b->nvehicles; i++)
        if (b->vehicles[i].discovery_dirty) return false;
    size_t cleared = 0;
    for (size_t i = 0; i < d->seen.n; i++)
        if (!publish_has(b->pub, d->seen.v[i])) {
            log_info("clearing stale discovery topic %s", d->seen.v[i]);
            publish_clear(b->pub, d->seen.v[i]);
            cleared++;
        }
    if (cleared) log_info("cleared %zu stale Home Assistant entities", cleared);
    mqtt_unsubscribe(b->mqtt, d->filter);
    topics_free(&d->seen);
    d->sweep_done = true;
    return true;
}

void discovery_free(struct bridge *b)
{
    struct discovery *d = b->disc;
    if (!d) return;
    for (size_t i = 0; i < d->nveh; i++) topics_free(&d->veh[i].topics);
    free(d->veh);
    topics_free(&d->seen);
    free(d);
    b->disc = NULL;
}
