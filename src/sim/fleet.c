/* fleet.c - see fleet.h. Generation tables first, then generation, then time
 * evolution (events and views), then the small public mutators. */
#include "fleet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE 60
#define HOUR   3600
#define DAY    86400

/* ---------------------------------------------------------------- tables */

struct model_def {
    const char *make, *model;
    enum powertrain pt;
    const char *wmi;
    char plant;
    int year_min, year_max;
    double ev_range, fuel_range, charge_rate;
    const char *trims[3];
};

static const struct model_def MODELS[] = {
    {"Toyota", "Camry", PT_PETROL, "4T1", 'U', 2019, 2025, 0, 560, 0, {"LE", "SE", "XSE"}},
    {"Toyota", "Corolla", PT_PETROL, "5YF", 'P', 2019, 2025, 0, 430, 0, {"L", "LE", "SE"}},
    {"Toyota", "Tacoma", PT_PETROL, "3TM", 'M', 2019, 2024, 0, 400, 0, {"SR5", "TRD Sport", "TRD Off-Road"}},
    {"Toyota", "Tundra", PT_PETROL, "5TF", 'X', 2022, 2025, 0, 420, 0, {"SR5", "Limited", "Platinum"}},
    {"Lexus", "IS 300", PT_PETROL, "JTH", '5', 2019, 2025, 0, 450, 0, {"Base", "F SPORT", "F SPORT Design"}},
    {"Toyota", "RAV4 Hybrid", PT_HEV, "2T3", 'W', 2019, 2025, 1.0, 580, 0, {"LE", "XLE", "Limited"}},
    {"Toyota", "Highlander Hybrid", PT_HEV, "5TD", 'S', 2020, 2025, 1.0, 610, 0, {"LE", "XLE", "Platinum"}},
    {"Toyota", "Camry Hybrid", PT_HEV, "4T1", 'U', 2019, 2025, 1.0, 680, 0, {"LE", "SE", "XLE"}},
    {"Lexus", "RX 450h", PT_HEV, "2T2", 'C', 2019, 2025, 1.2, 560, 0, {"Base", "F SPORT", "Luxury"}},
    {"Toyota", "RAV4 Prime", PT_PHEV, "JTM", 'J', 2021, 2025, 42, 560, 0.65, {"SE", "XSE", "XSE Premium"}},
    {"Toyota", "Prius Prime", PT_PHEV, "JTD", 'J', 2023, 2025, 44, 550, 0.75, {"SE", "XSE", "XSE Premium"}},
    {"Lexus", "NX 450h+", PT_PHEV, "JTJ", 'D', 2022, 2025, 37, 530, 0.6, {"Luxury", "F SPORT Handling", "Luxury"}},
    {"Toyota", "bZ4X", PT_BEV, "JTM", 'A', 2023, 2025, 252, 0, 0.3, {"XLE", "Limited", "XLE FWD"}},
    {"Lexus", "RZ 450e", PT_BEV, "JTJ", 'A', 2023, 2025, 220, 0, 0.28, {"Premium", "Luxury", "Premium"}},
};
#define NMODELS (sizeof MODELS / sizeof MODELS[0])

struct city {
    const char *name, *state, *zip;
    double lat, lon;
};

static const struct city CITIES[] = {
    {"Plano", "TX", "75024", 33.0198, -96.6989},
    {"Torrance", "CA", "90501", 33.8358, -118.3406},
    {"Georgetown", "KY", "40324", 38.2098, -84.5588},
    {"Seattle", "WA", "98109", 47.6062, -122.3321},
    {"Denver", "CO", "80202", 39.7392, -104.9903},
    {"Atlanta", "GA", "30303", 33.7490, -84.3880},
    {"Austin", "TX", "78701", 30.2672, -97.7431},
    {"Chicago", "IL", "60601", 41.8781, -87.6298},
    {"Phoenix", "AZ", "85004", 33.4484, -112.0740},
    {"Boston", "MA", "02108", 42.3601, -71.0589},
};
#define NCITIES (sizeof CITIES / sizeof CITIES[0])

static const char *const STREETS[] = {
    "Maple", "Oak", "Legacy", "Park", "Main", "Cedar", "Willow", "Preston",
    "Elm", "Lakeside", "Sunset", "Highland", "Ridge", "Meadow", "Harbor", "Pine",
};
static const char *const SUFFIXES[] = {"St", "Ave", "Blvd", "Dr", "Rd", "Ln", "Way", "Pkwy"};

static const char *const COLORS[] = {
    "Midnight Black Metallic", "Celestial Silver Metallic", "Supersonic Red", "Blueprint",
    "Wind Chill Pearl", "Magnetic Gray Metallic", "Ice Cap", "Eminent White Pearl",
    "Nebula Gray Pearl", "Cavalry Blue",
};
static const char *const ALIASES[] = {
    "Daily Driver", "Family Hauler", "Sparky", "The Commuter", "Weekend Cruiser",
    "Blue Bird", "Work Truck", "Road Runner", "Grandma's Car", "Silver Arrow",
};

struct ntf_text {
    const char *title, *message;
};
static const struct ntf_text NTF_TEXTS[NTF_TYPE_COUNT][2] = {
    [NTF_ALERT] = {{"Vehicle Alarm Triggered", "The vehicle alarm was triggered. Check your vehicle."},
                   {"Door Left Unlocked", "A door was left unlocked for more than 10 minutes."}},
    [NTF_MESSAGE] = {{"Welcome to Toyota Connected Services", "Your connected services trial is active."},
                     {"Trial Ending Soon", "Your Remote Connect trial ends in 30 days."}},
    [NTF_RECALL] = {{"Safety Recall 24TA07", "A safety recall applies to your vehicle. Contact your dealer."},
                    {"Recall Campaign 23TB12", "Fuel pump replacement campaign. Schedule a visit."}},
    [NTF_MAINTENANCE] = {{"Maintenance Due", "Your vehicle is due for scheduled maintenance at 25,000 miles."},
                         {"Low Tire Pressure", "Check tire pressure in the rear left tire."}},
    [NTF_SERVICE] = {{"Service Appointment Confirmed", "Your service appointment is confirmed."},
                     {"Service Complete", "Your vehicle service is complete and ready for pickup."}},
};

static const struct {
    const char *name, *description;
    enum severity severity;
} WARNINGS[] = {
    {"Tire Pressure", "Low tire pressure detected in the rear left tire", SEV_WARNING},
    {"Maintenance Required", "Scheduled maintenance is due", SEV_INFO},
    {"Washer Fluid", "Washer fluid level is low", SEV_INFO},
    {"Check Engine", "Engine malfunction detected; service the vehicle soon", SEV_CRITICAL},
    {"Brake System", "Brake system malfunction; drive carefully to a dealer", SEV_CRITICAL},
};

/* ---------------------------------------------------------------- VINs */

static const char VIN_ALPHABET[] = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789";

static int vin_value(char c)
{
    static const char *const letters = "ABCDEFGHJKLMNPRSTUVWXYZ";
    static const int values[] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9};
    if (c >= '0' && c <= '9')
        return c - '0';
    const char *p = c ? strchr(letters, c) : NULL;
    return p ? values[p - letters] : -1;
}

char fleet_vin_check_digit(const char *vin)
{
    static const int weights[FLEET_VIN_LEN] = {8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2};
    if (!vin || strlen(vin) != FLEET_VIN_LEN)
        return 0;
    int sum = 0;
    for (int i = 0; i < FLEET_VIN_LEN; i++) {
        int v = vin_value(vin[i]);
        if (v < 0)
            return 0;
        sum += v * weights[i];
    }
    int r = sum % 11;
    return r == 10 ? 'X' : (char)('0' + r);
}

static char year_code(int year)
{
    static const char codes[] = "ABCDEFGHJKLMNPRSTVWXY123456789";  /* 2010.. */
    int i = (year - 2010) % 30;
    return codes[i < 0 ? 0 : i];
}

static void make_vin(struct rng *r, const struct model_def *m, int year, char vin[FLEET_VIN_LEN + 1])
{
    size_t wl = strlen(m->wmi);
    size_t alpha = sizeof VIN_ALPHABET - 1;
    memcpy(vin, m->wmi, wl);
    for (size_t i = wl; i < 8; i++)
        vin[i] = VIN_ALPHABET[util_rng_next(r) % alpha];
    vin[8] = '0';
    vin[9] = year_code(year);
    vin[10] = m->plant;
    snprintf(vin + 11, 7, "%06u", (unsigned)util_rng_range(r, 1000, 999999));
    vin[17] = '\0';
    vin[8] = fleet_vin_check_digit(vin);
}

/* ---------------------------------------------------------------- helpers */

static void set_place(struct rng *r, const struct city *c, struct place *p)
{
    p->lat = util_round(c->lat + (util_rng_unit(r) - 0.5) * 0.24, 6);
    p->lon = util_round(c->lon + (util_rng_unit(r) - 0.5) * 0.30, 6);
    snprintf(p->address, sizeof p->address, "%u %s %s, %s, %s %s",
             (unsigned)util_rng_range(r, 100, 9899), STREETS[util_rng_next(r) % 16],
             SUFFIXES[util_rng_next(r) % 8], c->name, c->state, c->zip);
}

/* Fills the per-drive numbers for a drive from place a to place b. Returns
 * the duration in seconds. */
static int64_t plan_drive(struct vehicle *v, int a, int b)
{
    double crow = util_miles(v->places[a].lat, v->places[a].lon, v->places[b].lat, v->places[b].lon);
    v->drive_miles = util_round(fmax(1.0, crow * 1.3), 1);
    v->drive_avg = util_round(18.0 + util_rng_unit(&v->rng) * 27.0, 1);
    v->drive_max = util_round(v->drive_avg * (1.3 + util_rng_unit(&v->rng) * 0.5), 1);
    int64_t dur = (int64_t)(v->drive_miles / v->drive_avg * HOUR);
    if (dur < 4 * MINUTE)
        dur = 4 * MINUTE;
    v->drive_avg = util_round(v->drive_miles / ((double)dur / HOUR), 1);
    if (v->drive_max < v->drive_avg)
        v->drive_max = v->drive_avg;
    return dur;
}

static int other_place(struct rng *r, int from)
{
    return (from + 1 + (int)(util_rng_next(r) % (FLEET_PLACES - 1))) % FLEET_PLACES;
}

static int push_trip(struct vehicle *v, int64_t start, int64_t end, int from, int to)
{
    if (v->ntrips == v->trips_cap) {
        if (v->ntrips >= FLEET_MAX_TRIPS) {   /* drop the oldest quarter at once */
            size_t drop = v->ntrips / 4;
            memmove(v->trips, v->trips + drop, (v->ntrips - drop) * sizeof *v->trips);
            v->ntrips -= drop;
        } else {
            size_t cap = v->trips_cap ? v->trips_cap * 2 : 64;
            struct trip *t = realloc(v->trips, cap * sizeof *t);
            if (!t)
                return -1;
            v->trips = t;
            v->trips_cap = cap;
        }
    }
    struct trip *tr = &v->trips[v->ntrips++];
    memset(tr, 0, sizeof *tr);
    util_uuid(&v->rng, tr->id);
    tr->start = start;
    tr->end = end;
    tr->miles = v->drive_miles;
    tr->avg_mph = v->drive_avg;
    tr->max_mph = v->drive_max;
    tr->from = from;
    tr->to = to;
    tr->route_seed = util_rng_next(&v->rng);
    return 0;
}

static struct notification *push_ntf(struct vehicle *v)
{
    if (v->nntf == v->ntf_cap) {
        if (v->nntf >= FLEET_MAX_NTF) {   /* drop the oldest quarter at once */
            size_t drop = v->nntf / 4;
            memmove(v->ntf, v->ntf + drop, (v->nntf - drop) * sizeof *v->ntf);
            v->nntf -= drop;
        } else {
            size_t cap = v->ntf_cap ? v->ntf_cap * 2 : 16;
            struct notification *n = realloc(v->ntf, cap * sizeof *n);
            if (!n)
                return NULL;
            v->ntf = n;
            v->ntf_cap = cap;
        }
    }
    struct notification *n = &v->ntf[v->nntf++];
    memset(n, 0, sizeof *n);
    return n;
}

/* ---------------------------------------------------------------- views */

/* The electric view the current continuous state implies (without time). */
static struct electric_view electric_now(const struct vehicle *v)
{
    struct electric_view e;
    memset(&e, 0, sizeof e);
    e.battery = (int)floor(v->battery + 1e-9);
    if (e.battery > 100)
        e.battery = 100;
    if (e.battery < 0)
        e.battery = 0;
    e.battery_range = util_round(e.battery * v->ev_range_full / 100.0, 1);
    if (v->pt == PT_BEV) {
        e.fuel = -1;
        e.total_range = e.battery_range;
    } else {
        e.fuel = (int)floor(v->fuel + 1e-9);
        e.fuel_range = util_round(e.fuel * v->fuel_range_full / 100.0, 1);
        e.total_range = util_round(e.battery_range + e.fuel_range, 1);
    }
    e.plugged = v->plugged;
    if (v->charging) {
        e.chg = CHG_CHARGING;
        e.est_complete = v->charge_full_at;
    } else if (v->plugged) {
        e.chg = e.battery >= 100 ? CHG_FULLY_CHARGED : CHG_PLUGGED_IN;
    } else {
        e.chg = CHG_NOT_CHARGING;
    }
    return e;
}

static bool electric_same(const struct electric_view *a, const struct electric_view *b)
{
    return a->battery == b->battery && a->battery_range == b->battery_range && a->fuel == b->fuel &&
           a->fuel_range == b->fuel_range && a->total_range == b->total_range && a->chg == b->chg &&
           a->plugged == b->plugged && a->est_complete == b->est_complete;
}

/* Where the car is at time t: its place, or on the way (sampled every 30 s,
 * as real cars report periodically). */
static struct location_view location_now(const struct vehicle *v, int64_t t)
{
    struct location_view l;
    memset(&l, 0, sizeof l);
    if (!v->driving) {
        l.lat = v->places[v->at_place].lat;
        l.lon = v->places[v->at_place].lon;
        l.parked = true;
        return l;
    }
    int64_t tq = t - (t % 30);
    if (tq < v->drive_start)
        tq = v->drive_start;
    double span = (double)(v->drive_end - v->drive_start);
    double f = span > 0 ? (double)(tq - v->drive_start) / span : 1.0;
    const struct place *a = &v->places[v->at_place], *b = &v->places[v->drive_to];
    double wiggle = sin(f * M_PI * 3.0) * 0.002;
    l.lat = util_round(a->lat + (b->lat - a->lat) * f + wiggle, 6);
    l.lon = util_round(a->lon + (b->lon - a->lon) * f - wiggle, 6);
    l.parked = false;
    l.ts = tq;
    return l;
}

/* Re-derives the location and electric views at time t, stamping them only
 * when a reported value changed. */
static void refresh_views(struct vehicle *v, int64_t t)
{
    struct location_view l = location_now(v, t);
    if (l.lat != v->loc.lat || l.lon != v->loc.lon || l.parked != v->loc.parked) {
        l.ts = l.parked ? t : l.ts;
        v->loc = l;
    }
    struct electric_view e = electric_now(v);
    if (!electric_same(&e, &v->el)) {
        e.updated = t;
        v->el = e;
    }
}

/* ---------------------------------------------------------------- evolution */

static void start_charging(struct vehicle *v, int64_t t)
{
    v->plugged = true;
    if (v->battery >= 100.0 || v->charge_rate <= 0) {
        v->charging = false;
        return;
    }
    v->charging = true;
    v->charge_full_at = t + (int64_t)ceil((100.0 - v->battery) / v->charge_rate * MINUTE);
}

static void start_drive(struct vehicle *v, int64_t t)
{
    v->plugged = false;
    v->charging = false;
    v->drive_to = other_place(&v->rng, v->at_place);
    v->drive_start = t;
    v->drive_end = t + plan_drive(v, v->at_place, v->drive_to);
    v->driving = true;
    struct status_view s = v->st;
    s.ignition_on = true;
    s.locked = true;
    for (int d = 0; d < DOOR_COUNT; d++)
        s.door_open[d] = false;
    if (memcmp(&s, &v->st, sizeof s) != 0) {
        v->st = s;
        v->st.updated = t;
    }
}

static void end_drive(struct vehicle *v, int64_t t)
{
    (void)push_trip(v, v->drive_start, t, v->at_place, v->drive_to);
    v->at_place = v->drive_to;
    v->driving = false;
    v->st.ignition_on = false;
    v->st.updated = t;
    v->last_connected = t;
    if (v->pt != PT_BEV && v->fuel < 12.0)
        v->fuel = 100.0;   /* a stop at the gas station */
    int64_t gap = v->role == ROLE_RIDESHARE ? util_rng_range(&v->rng, 20, 50)
                                            : util_rng_range(&v->rng, 10 * MINUTE, 60 * MINUTE);
    if ((v->pt == PT_PHEV || v->pt == PT_BEV) && v->battery < 40.0) {
        start_charging(v, t);
        v->next_drive = (v->charging ? v->charge_full_at : t) + gap;
    } else {
        v->next_drive = t + gap;
    }
}

/* Continuous change from v->t to t1: consumption while driving, charge while
 * plugged in, a hybrid's pack state wandering while it drives. */
static void integrate(struct vehicle *v, int64_t t1)
{
    if (t1 <= v->t)
        return;
    double minutes = (double)(t1 - v->t) / MINUTE;
    if (v->driving) {
        double miles = v->drive_avg / 60.0 * minutes;
        double fuel_per_mile = v->fuel_range_full > 0 ? 100.0 / v->fuel_range_full : 0;
        if (v->pt == PT_BEV || (v->pt == PT_PHEV && v->battery > 0.5)) {
            v->battery -= miles * 100.0 / v->ev_range_full;
            if (v->battery < 0)
                v->battery = 0;
        } else {
            v->fuel -= miles * fuel_per_mile;
            if (v->fuel < 1)
                v->fuel = 1;
        }
        if (v->pt == PT_HEV)
            v->battery = 50.0 + 12.0 * sin((double)t1 / 300.0);
    } else if (v->charging) {
        v->battery += v->charge_rate * minutes;
        if (v->battery > 99.99)
            v->battery = 99.99;
    }
    v->t = t1;
}

static void apply_cmd(struct vehicle *v, const struct pending_cmd *c)
{
    int64_t t = v->t;
    switch (c->cmd) {
    case CMD_LOCK:
    case CMD_UNLOCK:
        v->st.locked = c->cmd == CMD_LOCK;
        v->st.updated = t;
        break;
    case CMD_TRUNK_OPEN:
        v->st.door_open[DOOR_TRUNK] = true;
        v->st.updated = t;
        break;
    case CMD_CLIMATE_START:
        v->cl.running = true;
        if (c->has_temp)
            v->cl.temp = c->temp;
        v->cl.updated = t;
        break;
    case CMD_CLIMATE_STOP:
        v->cl.running = false;
        v->cl.updated = t;
        break;
    case CMD_REFRESH_STATUS:
        v->st.updated = t;
        v->last_connected = t;
        break;
    case CMD_REFRESH_ELECTRIC:
        v->el.updated = t;
        v->last_connected = t;
        break;
    }
}

static bool moves(const struct vehicle *v)
{
    return v->role == ROLE_COMMUTER || v->role == ROLE_RIDESHARE;
}

static int64_t next_event(const struct vehicle *v)
{
    int64_t ne = INT64_MAX;
    if (v->driving)
        ne = v->drive_end;
    else if (moves(v) && !v->charging)
        ne = v->next_drive;
    if (v->charging && v->charge_full_at < ne)
        ne = v->charge_full_at;
    for (size_t i = 0; i < v->npending; i++)
        if (v->pending[i].at < ne)
            ne = v->pending[i].at;
    return ne;
}

/* Handles every event due at v->t; afterwards each event lies in the future. */
static void handle_due(struct vehicle *v)
{
    int64_t t = v->t;
    if (v->driving && t >= v->drive_end)
        end_drive(v, t);
    if (v->charging && t >= v->charge_full_at) {
        v->battery = 100.0;
        v->charging = false;
    }
    if (moves(v) && !v->driving && !v->charging && t >= v->next_drive)
        start_drive(v, t);
    size_t keep = 0;
    for (size_t i = 0; i < v->npending; i++) {
        if (v->pending[i].at <= t)
            apply_cmd(v, &v->pending[i]);
        else
            v->pending[keep++] = v->pending[i];
    }
    v->npending = keep;
}

static void advance_vehicle(struct vehicle *v, int64_t now)
{
    for (int guard = 0; guard < 1000000; guard++) {
        handle_due(v);
        refresh_views(v, v->t);
        int64_t ne = next_event(v);
        if (ne > now) {
            integrate(v, now);
            break;
        }
        integrate(v, ne);
    }
    refresh_views(v, v->t);
}

void fleet_advance(struct fleet *f, int64_t now)
{
    for (size_t i = 0; i < f->n; i++)
        advance_vehicle(f->v[i], now);
}

/* ---------------------------------------------------------------- generation */

static enum powertrain pick_powertrain(struct rng *r, uint64_t index)
{
    if (index < 4)
        return (enum powertrain)index;
    uint64_t x = util_rng_next(r) % 10;
    return x < 3 ? PT_PETROL : x < 6 ? PT_HEV : x < 8 ? PT_PHEV : PT_BEV;
}

static const struct model_def *pick_model(struct rng *r, enum powertrain pt)
{
    size_t count = 0;
    for (size_t i = 0; i < NMODELS; i++)
        count += MODELS[i].pt == pt;
    size_t k = (size_t)(util_rng_next(r) % count);
    for (size_t i = 0; i < NMODELS; i++)
        if (MODELS[i].pt == pt && k-- == 0)
            return &MODELS[i];
    return &MODELS[0];
}

static enum role pick_role(struct rng *r, uint64_t index, enum powertrain pt)
{
    static const enum role first[4] = {ROLE_PARKED, ROLE_RIDESHARE, ROLE_CHARGING, ROLE_COMMUTER};
    if (index < 4)
        return first[index];
    uint64_t x = util_rng_next(r) % 10;
    if (x < 3)
        return ROLE_COMMUTER;
    if (x < 5 && (pt == PT_PHEV || pt == PT_BEV))
        return ROLE_CHARGING;
    return ROLE_PARKED;
}

static bool vin_taken(const struct fleet *f, const char *vin)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i]->vin, vin) == 0)
            return true;
    return false;
}

static void gen_identity(struct fleet *f, struct vehicle *v, const struct model_def *m, int64_t now)
{
    struct rng *r = &v->rng;
    v->make = m->make;
    v->model = m->model;
    v->year = (int)util_rng_range(r, m->year_min, m->year_max);
    do {
        make_vin(r, m, v->year, v->vin);
    } while (vin_taken(f, v->vin));
    util_copy(v->trim, sizeof v->trim, m->trims[util_rng_next(r) % 3]);
    util_copy(v->color, sizeof v->color, COLORS[util_rng_next(r) % (sizeof COLORS / sizeof *COLORS)]);
    bool has_alias = v->index < 4 ? v->index % 2 == 0 : util_rng_next(r) % 2 == 0;
    if (has_alias)
        util_copy(v->alias, sizeof v->alias, ALIASES[util_rng_next(r) % (sizeof ALIASES / sizeof *ALIASES)]);
    util_copy(v->guid, sizeof v->guid, f->account_guid);
    v->connected = v->index < 4 || util_rng_next(r) % 8 != 0;
    v->last_connected = v->connected ? now - util_rng_range(r, 2 * MINUTE, 50 * MINUTE)
                                     : now - util_rng_range(r, 3 * DAY, 20 * DAY);
    v->ev_range_full = m->ev_range;
    v->fuel_range_full = m->fuel_range;
    v->charge_rate = m->charge_rate;
}

/* Trips over the last 30 days, evenly spread with jitter so none overlap;
 * each starts where the previous one ended. */
static int gen_trips(struct vehicle *v, int64_t now, int64_t hist_end)
{
    struct rng *r = &v->rng;
    int n = (int)util_rng_range(r, 40, 150);
    int64_t begin = now - 30 * DAY + HOUR;
    int64_t slot = (hist_end - begin) / n;
    int at = (int)(util_rng_next(r) % FLEET_PLACES);
    for (int i = 0; i < n; i++) {
        int64_t start = begin + i * slot + util_rng_range(r, 0, slot * 3 / 10);
        int to = other_place(r, at);
        int64_t dur = plan_drive(v, at, to);
        if (dur > slot / 2) {
            dur = slot / 2;
            v->drive_avg = util_round(v->drive_miles / ((double)dur / HOUR), 1);
            v->drive_max = fmax(v->drive_max, v->drive_avg);
        }
        if (push_trip(v, start, start + dur, at, to) != 0)
            return -1;
        at = to;
    }
    v->at_place = at;
    return 0;
}

static int gen_notifications(struct vehicle *v, int64_t now)
{
    struct rng *r = &v->rng;
    int n = (int)util_rng_range(r, 6, 12);
    int64_t t = now - 60 * DAY;
    for (int i = 0; i < n; i++) {
        struct notification *x = push_ntf(v);
        if (!x)
            return -1;
        t += util_rng_range(r, HOUR, (now - t) / (n - i + 1));
        util_uuid(r, x->id);
        x->type = i < NTF_TYPE_COUNT ? (enum ntf_type)i : (enum ntf_type)(util_rng_next(r) % NTF_TYPE_COUNT);
        x->severity = (enum severity)(i % SEV_COUNT);
        const struct ntf_text *tx = &NTF_TEXTS[x->type][util_rng_next(r) % 2];
        util_copy(x->title, sizeof x->title, tx->title);
        util_copy(x->message, sizeof x->message, tx->message);
        x->read = i == 0 ? true : i == n - 1 ? false : util_rng_next(r) % 2 == 0;
        x->created = t;
    }
    return 0;
}

static void gen_service(struct vehicle *v, const struct city *c, int64_t now)
{
    static const char *const cats[] = {
        "Oil Change", "Tire Rotation", "Multipoint Inspection", "Brake Service",
        "Cabin Air Filter", "Recall Campaign", "Battery Check",
    };
    static const char *const descs[] = {
        "Replaced engine oil (0W-16) and oil filter", "Rotated tires and checked pressures",
        "Multipoint inspection, no issues found", "Replaced front brake pads",
        "Replaced cabin air filter", "Performed recall campaign repair",
        "Tested 12V battery and hybrid system",
    };
    struct rng *r = &v->rng;
    size_t n = (size_t)util_rng_range(r, 3, 9);
    int64_t t = now - 3 * 365 * DAY;
    int miles = (int)util_rng_range(r, 500, 3000);
    char code[8], name[64];
    snprintf(code, sizeof code, "%05u", (unsigned)util_rng_range(r, 1000, 99999));
    snprintf(name, sizeof name, strcmp(v->make, "Lexus") == 0 ? "Lexus of %s" : "%s Toyota", c->name);
    for (size_t i = 0; i < n && i < FLEET_SERVICE; i++) {
        struct service_record *s = &v->svc[v->nsvc++];
        t += util_rng_range(r, 30 * DAY, (now - 2 * DAY - t) / (int64_t)(n - i));
        miles += (int)util_rng_range(r, 2500, 6000);
        size_t k = (size_t)(util_rng_next(r) % 7);
        if (v->pt == PT_BEV && k == 0)
            k = 6;
        util_uuid(r, s->id);
        util_copy(s->category, sizeof s->category, cats[k]);
        util_copy(s->description, sizeof s->description, descs[k]);
        s->date = t;
        s->mileage = miles;
        util_copy(s->dealer_code, sizeof s->dealer_code, code);
        util_copy(s->dealer_name, sizeof s->dealer_name, name);
    }
}

static void gen_health(struct vehicle *v, int64_t now)
{
    struct rng *r = &v->rng;
    uint64_t x = v->index == 0 ? 0 : v->index == 1 ? 7 : util_rng_next(r) % 10;
    v->health = x < 6 ? HS_GOOD : x < 9 ? HS_WARNING : HS_CRITICAL;
    v->oil = OIL_OK;
    size_t nw = v->health == HS_GOOD ? 0 : (size_t)util_rng_range(r, 1, 2);
    for (size_t i = 0; i < nw; i++) {
        size_t k = (size_t)(util_rng_next(r) % 3);
        if (i == 0)
            k = v->health == HS_CRITICAL ? 3 + (size_t)(util_rng_next(r) % 2) : 0;
        struct warning_light *w = &v->warnings[v->nwarnings++];
        util_copy(w->name, sizeof w->name, WARNINGS[k].name);
        util_copy(w->description, sizeof w->description, WARNINGS[k].description);
        w->severity = WARNINGS[k].severity;
        if (k == 1)
            v->maintenance = true;
    }
    if (v->health != HS_GOOD && v->pt != PT_BEV && util_rng_next(r) % 2 == 0)
        v->oil = v->health == HS_CRITICAL ? OIL_CRITICALLY_LOW : OIL_LOW;
    if (v->oil != OIL_OK)
        v->maintenance = true;
    v->health_reported = now - util_rng_range(r, HOUR, 20 * HOUR);
}

static void gen_dynamics(struct vehicle *v, int64_t now)
{
    struct rng *r = &v->rng;
    v->t = now;
    v->fuel = v->pt == PT_BEV ? 0 : (double)util_rng_range(r, 25, 95);
    if (v->pt == PT_HEV)
        v->battery = (double)util_rng_range(r, 40, 65);
    else if (v->pt == PT_PHEV || v->pt == PT_BEV)
        v->battery = (double)util_rng_range(r, 45, 95);
    v->cl.temp = (double)util_rng_range(r, 68, 74);
    v->cl.fan = (int)util_rng_range(r, 1, 5);
    v->cl.mode = (enum climate_mode)(util_rng_next(r) % 3);
    v->st.locked = util_rng_next(r) % 5 != 0;
    v->st.window[0] = v->st.window[1] = WIN_CLOSED;
    if (v->index >= 4 && util_rng_next(r) % 6 == 0)
        v->st.window[0] = v->st.window[1] = WIN_VENTING;
    int64_t last_trip_end = v->ntrips ? v->trips[v->ntrips - 1].end : now - DAY;
    v->st.updated = last_trip_end;
    v->cl.updated = last_trip_end - util_rng_range(r, HOUR, 3 * DAY);
    v->drive_to = v->at_place;
    if (v->role == ROLE_CHARGING) {
        v->battery = v->index == 2 ? 82.0 : (double)util_rng_range(r, 20, 85);
        start_charging(v, now);
    } else if (moves(v)) {
        bool drive_now = v->index == 1 || (v->index != 3 && util_rng_next(r) % 3 == 0);
        if (drive_now) {
            start_drive(v, now - 5 * MINUTE);
            if (v->drive_end <= now + 5 * MINUTE)
                v->drive_end = now + util_rng_range(r, 10 * MINUTE, 25 * MINUTE);
        } else {
            v->next_drive = now + (v->index == 3 ? 8 * MINUTE : util_rng_range(r, 2 * MINUTE, 40 * MINUTE));
        }
    } else if (v->pt == PT_BEV && util_rng_next(r) % 2 == 0) {
        v->battery = 100.0;
        v->plugged = true;
    }
    v->t = now;
    v->loc = location_now(v, now);
    v->loc.ts = v->driving ? v->loc.ts : last_trip_end;
    v->el = electric_now(v);
    v->el.updated = v->charging ? now - util_rng_range(r, 1, 4) * MINUTE : last_trip_end;
}

static void vehicle_free(struct vehicle *v)
{
    if (!v)
        return;
    free(v->trips);
    free(v->ntf);
    free(v);
}

/* Builds the index-th vehicle of f's sequence; returns it (caller owns it,
 * vehicle_free) or NULL on allocation failure. */
static struct vehicle *gen_vehicle(struct fleet *f, uint64_t index, int64_t now)
{
    struct vehicle *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->index = index;
    util_rng_seed(&v->rng, f->seed, index + 1);
    v->pt = pick_powertrain(&v->rng, index);
    const struct model_def *m = pick_model(&v->rng, v->pt);
    v->role = pick_role(&v->rng, index, v->pt);
    gen_identity(f, v, m, now);
    const struct city *c = &CITIES[util_rng_next(&v->rng) % NCITIES];
    for (int i = 0; i < FLEET_PLACES; i++)
        set_place(&v->rng, c, &v->places[i]);
    int64_t hist_end = now - 2 * HOUR;
    if (gen_trips(v, now, hist_end) != 0 || gen_notifications(v, now) != 0) {
        vehicle_free(v);
        return NULL;
    }
    gen_service(v, c, now);
    gen_health(v, now);
    gen_dynamics(v, now);
    if (v->connected && v->last_connected < v->trips[v->ntrips - 1].end)
        v->last_connected = v->trips[v->ntrips - 1].end;
    return v;
}

/* ---------------------------------------------------------------- public */

struct fleet *fleet_new(uint64_t seed, int64_t now, size_t n)
{
    struct fleet *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->seed = seed;
    util_rng_seed(&f->rng, seed, 0);
    util_uuid(&f->rng, f->account_guid);
    for (size_t i = 0; i < n; i++) {
        if (!fleet_add(f, now)) {
            fleet_free(f);
            return NULL;
        }
    }
    return f;
}

void fleet_free(struct fleet *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        vehicle_free(f->v[i]);
    free(f->v);
    free(f);
}

struct vehicle *fleet_add(struct fleet *f, int64_t now)
{
    if (f->n >= FLEET_MAX_VEHICLES)
        return NULL;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct vehicle **nv = realloc(f->v, cap * sizeof *nv);
        if (!nv)
            return NULL;
        f->v = nv;
        f->cap = cap;
    }
    struct vehicle *v = gen_vehicle(f, f->next_index, now);
    if (!v)
        return NULL;
    f->next_index++;
    f->v[f->n++] = v;
    return v;
}

int fleet_remove(struct fleet *f, const char *vin)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->v[i]->vin, vin) == 0) {
            vehicle_free(f->v[i]);
            memmove(f->v + i, f->v + i + 1, (f->n - i - 1) * sizeof *f->v);
            f->n--;
            return 0;
        }
    }
    return -1;
}

struct vehicle *fleet_find(struct fleet *f, const char *vin)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i]->vin, vin) == 0)
            return f->v[i];
    return NULL;
}

void fleet_command(struct vehicle *v, enum fleet_cmd cmd, double temp, bool has_temp, int64_t at)
{
    if (v->npending == FLEET_PENDING) {
        apply_cmd(v, &v->pending[0]);
        memmove(v->pending, v->pending + 1, (FLEET_PENDING - 1) * sizeof *v->pending);
        v->npending--;
    }
    struct pending_cmd *c = &v->pending[v->npending++];
    c->cmd = cmd;
    c->temp = temp;
    c->has_temp = has_temp;
    c->at = at < v->t ? v->t : at;
}

void fleet_set_alias(struct vehicle *v, const char *alias)
{
    util_copy(v->alias, sizeof v->alias, alias);
}

void fleet_set_climate(struct vehicle *v, const double *temp, const int *fan,
                       const enum climate_mode *mode, int64_t now)
{
    struct climate_view c = v->cl;
    if (temp)
        c.temp = *temp;
    if (fan)
        c.fan = *fan;
    if (mode)
        c.mode = *mode;
    if (c.temp != v->cl.temp || c.fan != v->cl.fan || c.mode != v->cl.mode) {
        c.updated = now;
        v->cl = c;
    }
}

struct notification *fleet_add_notification(struct fleet *f, struct vehicle *v, int type,
                                             int severity, const char *title,
                                             const char *message, int64_t now)
{
    struct notification *n = push_ntf(v);
    if (!n)
        return NULL;
    util_uuid(&f->rng, n->id);
    n->type = type >= 0 && type < NTF_TYPE_COUNT ? (enum ntf_type)type
                                                 : (enum ntf_type)(util_rng_next(&f->rng) % NTF_TYPE_COUNT);
    n->severity = severity >= 0 && severity < SEV_COUNT ? (enum severity)severity : SEV_INFO;
    const struct ntf_text *tx = &NTF_TEXTS[n->type][0];
    util_copy(n->title, sizeof n->title, title ? title : tx->title);
    util_copy(n->message, sizeof n->message, message ? message : tx->message);
    n->read = false;
    n->created = now;
    return n;
}

size_t fleet_trip_route(const struct vehicle *v, const struct trip *tr, double *lat,
                        double *lon, int64_t *ts, size_t max)
{
    if (max < 2)
        return 0;
    int64_t dur = tr->end - tr->start;
    size_t n = (size_t)(dur / 120) + 1;
    if (n < 2)
        n = 2;
    if (n > 30)
        n = 30;
    if (n > max)
        n = max;
    struct rng r = {tr->route_seed};
    const struct place *a = &v->places[tr->from], *b = &v->places[tr->to];
    for (size_t i = 0; i < n; i++) {
        double f = (double)i / (double)(n - 1);
        double jl = (i == 0 || i == n - 1) ? 0 : (util_rng_unit(&r) - 0.5) * 0.004;
        double jo = (i == 0 || i == n - 1) ? 0 : (util_rng_unit(&r) - 0.5) * 0.004;
        lat[i] = util_round(a->lat + (b->lat - a->lat) * f + jl, 6);
        lon[i] = util_round(a->lon + (b->lon - a->lon) * f + jo, 6);
        ts[i] = tr->start + (int64_t)(f * (double)dur);
    }
    return n;
}

const char *fleet_powertrain_name(enum powertrain pt)
{
    static const char *const names[] = {"petrol", "hev", "phev", "bev"};
    return names[pt];
}

const char *fleet_role_name(enum role r)
{
    static const char *const names[] = {"parked", "commuter", "charging", "rideshare"};
    return names[r];
}
