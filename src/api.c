/* api.c - pure request building and response parsing; see api.h. */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A response larger than this many nesting levels is hostile, not data. */
#define API_MAX_DEPTH 64

bool api_vin_valid(const char *s)
{
    if (!s) return false;
    size_t i = 0;
    for (; s[i]; i++) {
        char c = s[i];
        if (i >= API_VIN_LEN) return false;
        bool digit = c >= '0' && c <= '9';
        bool upper = c >= 'A' && c <= 'Z' && c != 'I' && c != 'O' && c != 'Q';
        if (!digit && !upper) return false;
    }
    return i == API_VIN_LEN;
}

/* Copies an optional string member into dst. A member of another type is an
 * error; an absent or null one leaves dst "". Over-long values are cut at a
 * character boundary rather than rejected: they are display text only. */
static int copy_str(const cJSON *obj, const char *key, char *dst, size_t dstlen,
                    char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    dst[0] = '\0';
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsString(it) || !it->valuestring) {
        snprintf(err, errlen, "%s: expected a string", key);
        return -1;
    }
    size_t n = strlen(it->valuestring);
    if (n >= dstlen) {
        n = dstlen - 1;
        while (n > 0 && ((unsigned char)it->valuestring[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, it->valuestring, n);
    dst[n] = '\0';
    return 0;
}

int api_vehicle_from_json(const cJSON *obj, struct api_vehicle *v, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    if (!cJSON_IsObject(obj)) {
        snprintf(err, errlen, "vehicle: expected an object");
        return -1;
    }
    const cJSON *vin = cJSON_GetObjectItemCaseSensitive(obj, "vin");
    if (!cJSON_IsString(vin) || !api_vin_valid(vin->valuestring)) {
        snprintf(err, errlen, "vehicle: missing or invalid vin");
        return -1;
    }
    memcpy(v->vin, vin->valuestring, API_VIN_LEN + 1);
    if (copy_str(obj, "alias", v->alias, sizeof v->alias, err, errlen) ||
        copy_str(obj, "make", v->make, sizeof v->make, err, errlen) ||
        copy_str(obj, "model", v->model, sizeof v->model, err, errlen) ||
        copy_str(obj, "trim", v->trim, sizeof v->trim, err, errlen) ||
        copy_str(obj, "color", v->color, sizeof v->color, err, errlen) ||
        copy_str(obj, "guid", v->guid, sizeof v->guid, err, errlen))
        return -1;
    const cJSON *year = cJSON_GetObjectItemCaseSensitive(obj, "year");
    if (year && !cJSON_IsNull(year)) {
        if (!cJSON_IsNumber(year) || !isfinite(year->valuedouble) ||
            year->valuedouble < 1900 || year->valuedouble > 2200 ||
            floor(year->valuedouble) != year->valuedouble) {
            snprintf(err, errlen, "vehicle %s: year: expected an integer year", v->vin);
            return -1;
        }
        v->year = (int)year->valuedouble;
    }
    const cJSON *conn = cJSON_GetObjectItemCaseSensitive(obj, "isConnected");
    if (conn && !cJSON_IsNull(conn)) {
        if (!cJSON_IsBool(conn)) {
            snprintf(err, errlen, "vehicle %s: isConnected: expected a boolean", v->vin);
            return -1;
        }
        v->is_connected = cJSON_IsTrue(conn);
    }
    return 0;
}

/* A strict RFC 8259 grammar check. The bridge republishes the API's bytes
 * as they came, so they must be JSON that every consumer accepts; cJSON
 * alone would let through "4.", "050", raw control characters in strings
 * and invalid escapes. Returns the index after the value, or 0 on error. */
struct jscan {
    const char *s;
    size_t len;
    size_t i;
    int depth;
};

static void js_ws(struct jscan *j)
{
    while (j->i < j->len && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
                             j->s[j->i] == '\r'))
        j->i++;
}

static bool js_lit(struct jscan *j, const char *lit)
{
    size_t n = strlen(lit);
    if (j->len - j->i < n || memcmp(j->s + j->i, lit, n) != 0) return false;
    j->i += n;
    return true;
}

static bool js_digits(struct jscan *j)
{
    size_t start = j->i;
    while (j->i < j->len && j->s[j->i] >= '0' && j->s[j->i] <= '9') j->i++;
    return j->i > start;
}

static bool js_number(struct jscan *j)
{
    if (j->i < j->len && j->s[j->i] == '-') j->i++;
    if (j->i < j->len && j->s[j->i] == '0') j->i++;
    else if (!js_digits(j)) return false;
    if (j->i < j->len && j->s[j->i] == '.') {
        j->i++;
        if (!js_digits(j)) return false;
    }
    if (j->i < j->len && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        if (j->i < j->len && (j->s[j->i] == '+' || j->s[j->i] == '-')) j->i++;
        if (!js_digits(j)) return false;
    }
    return true;
}

static bool js_string(struct jscan *j)
{
    j->i++;                                   /* the opening quote */
    while (j->i < j->len) {
        unsigned char c = (unsigned char)j->s[j->i++];
        if (c == '"') return true;
        if (c < 0x20) return false;
        if (c != '\\') continue;
        if (j->i >= j->len) return false;
        c = (unsigned char)j->s[j->i++];
        if (c == 'u') {
            for (int k = 0; k < 4; k++, j->i++)
                if (j->i >= j->len || !strchr("0123456789abcdefABCDEF", j->s[j->i]) || !j->s[j->i])
                    return false;
        } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
            return false;
        }
    }
    return false;
}

static bool js_value(struct jscan *j);

static bool js_container(struct jscan *j, char close, bool object)
{
    if (++j->depth > API_MAX_DEPTH) return false;
    j->i++;
    js_ws(j);
    if (j->i < j->len && j->s[j->i] == close) {
        j->i++;
        j->depth--;
        return true;
    }
    for (;;) {
        js_ws(j);
        if (object) {
            if (j->i >= j->len || j->s[j->i] != '"' || !js_string(j)) return false;
            js_ws(j);
            if (j->i >= j->len || j->s[j->i++] != ':') return false;
        }
        if (!js_value(j)) return false;
        js_ws(j);
        if (j->i >= j->len) return false;
        char c = j->s[j->i++];
        if (c == close) break;
        if (c != ',') return false;
    }
    j->depth--;
    return true;
}

static bool js_value(struct jscan *j)
{
    js_ws(j);
    if (j->i >= j->len) return false;
    switch (j->s[j->i]) {
    case '{': return js_container(j, '}', true);
    case '[': return js_container(j, ']', false);
    case '"': return js_string(j);
    case 't': return js_lit(j, "true");
    case 'f': return js_lit(j, "false");
    case 'n': return js_lit(j, "null");
    default: return js_number(j);
    }
}

bool api_json_valid(const char *body, size_t len)
{
    struct jscan j = { body, len, 0, 0 };
    if (!body || !js_value(&j)) return false;
    js_ws(&j);
    return j.i == len;
}

/* Parses len bytes as one JSON value with nothing but whitespace after it.
 * Returns the tree (caller cJSON_Delete()s) or NULL with err set. */
static cJSON *parse_json(const char *body, size_t len, char *err, size_t errlen)
{
    const char *end = NULL;
    if (!body || len == 0) {
        snprintf(err, errlen, "empty response body");
        return NULL;
    }
    if (!api_json_valid(body, len)) {
        snprintf(err, errlen, "malformed JSON (truncated or invalid)");
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        snprintf(err, errlen, "malformed JSON (truncated or invalid)");
        return NULL;
    }
    const char *stop = body + len;
    while (end && end < stop && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (end && end < stop) {
        cJSON_Delete(root);
        snprintf(err, errlen, "malformed JSON (trailing bytes)");
        return NULL;
    }
    return root;
}

int api_parse_vehicle_list(const char *body, size_t len, struct api_vehicle **out,
                           size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (err && errlen) err[0] = '\0';
    cJSON *root = parse_json(body, len, err, errlen);
    if (!root) return -1;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(data)) {
        snprintf(err, errlen, "vehicle list: expected {\"data\":[...]}");
        cJSON_Delete(root);
        return -1;
    }
    int count = cJSON_GetArraySize(data);
    struct api_vehicle *list = count > 0 ? calloc((size_t)count, sizeof *list) : NULL;
    if (count > 0 && !list) {
        snprintf(err, errlen, "out of memory");
        cJSON_Delete(root);
        return -1;
    }
    size_t k = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, data) {
        char e[160];
        if (api_vehicle_from_json(item, &list[k], e, sizeof e) != 0) {
            snprintf(err, errlen, "skipped a vehicle: %s", e);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < k; j++)
            if (strcmp(list[j].vin, list[k].vin) == 0) dup = true;
        if (!dup) k++;
    }
    cJSON_Delete(root);
    if (k == 0) {
        free(list);
        list = NULL;
    }
    *out = list;
    *n = k;
    return 0;
}

/* The JSON type a known field of a resource must have, when present. */
enum jtype { J_STR, J_NUM, J_INT, J_BOOL, J_OBJ, J_ARR };
struct field_type { const char *name; enum jtype type; };

static const struct field_type status_types[] = {
    { "vin", J_STR }, { "ignition", J_STR }, { "doorsLocked", J_BOOL },
    { "doorStatus", J_OBJ }, { "windowStatus", J_OBJ }, { "lastUpdatedAt", J_STR }, { NULL, 0 } };
static const struct field_type health_types[] = {
    { "vin", J_STR }, { "overallStatus", J_STR }, { "oilQuantity", J_STR },
    { "warningLights", J_ARR }, { "maintenanceRequired", J_BOOL }, { "lastReportedAt", J_STR }, { NULL, 0 } };
static const struct field_type location_types[] = {
    { "vin", J_STR }, { "latitude", J_NUM }, { "longitude", J_NUM }, { "isParked", J_BOOL },
    { "timestamp", J_STR }, { NULL, 0 } };
static const struct field_type electric_types[] = {
    { "vin", J_STR }, { "batteryLevel", J_INT }, { "batteryRange", J_NUM }, { "fuelLevel", J_INT },
    { "fuelRange", J_NUM }, { "totalRange", J_NUM }, { "chargingStatus", J_STR },
    { "pluggedIn", J_BOOL }, { "estimatedChargeCompleteTime", J_STR }, { "lastUpdatedAt", J_STR }, { NULL, 0 } };
static const struct field_type climate_types[] = {
    { "vin", J_STR }, { "isRunning", J_BOOL }, { "temperature", J_NUM }, { "fanSpeed", J_INT },
    { "mode", J_STR }, { "lastUpdatedAt", J_STR }, { NULL, 0 } };
static const struct field_type vehicle_types[] = {
    { "vin", J_STR }, { "alias", J_STR }, { "make", J_STR }, { "model", J_STR }, { "year", J_INT },
    { "color", J_STR }, { "trim", J_STR }, { "guid", J_STR }, { "isConnected", J_BOOL },
    { "lastConnectedAt", J_STR }, { NULL, 0 } };
static const struct field_type list_types[] = {
    { "data", J_ARR }, { "total", J_INT }, { "unreadCount", J_INT }, { NULL, 0 } };

static const struct field_type *const resource_types[RES_COUNT] = {
    [RES_VEHICLE] = vehicle_types, [RES_STATUS] = status_types, [RES_HEALTH] = health_types,
    [RES_LOCATION] = location_types, [RES_ELECTRIC] = electric_types,
    [RES_CLIMATE] = climate_types, [RES_TRIPS] = list_types,
    [RES_NOTIFICATIONS] = list_types, [RES_SERVICE_HISTORY] = list_types,
};

static bool type_ok(const cJSON *it, enum jtype t)
{
    switch (t) {
    case J_STR: return cJSON_IsString(it);
    case J_NUM: return cJSON_IsNumber(it) && isfinite(it->valuedouble);
    case J_INT: return cJSON_IsNumber(it) && isfinite(it->valuedouble) &&
                       floor(it->valuedouble) == it->valuedouble &&
                       fabs(it->valuedouble) < 9007199254740992.0;
    case J_BOOL: return cJSON_IsBool(it);
    case J_OBJ: return cJSON_IsObject(it);
    case J_ARR: return cJSON_IsArray(it);
    }
    return false;
}

static int depth_ok(const cJSON *it, int depth)
{
    if (depth > API_MAX_DEPTH) return 0;
    for (const cJSON *c = it->child; c; c = c->next)
        if (!depth_ok(c, depth + 1)) return 0;
    return 1;
}

cJSON *api_parse_resource(enum resource r, const char *body, size_t len,
                          char *err, size_t errlen)
{
    cJSON *root = parse_json(body, len, err, errlen);
    if (!root) return NULL;
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "expected a JSON object");
        cJSON_Delete(root);
        return NULL;
    }
    if (!depth_ok(root, 0)) {
        snprintf(err, errlen, "JSON nested too deeply");
        cJSON_Delete(root);
        return NULL;
    }
    for (const struct field_type *f = resource_types[r]; f && f->name; f++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, f->name);
        if (it && !cJSON_IsNull(it) && !type_ok(it, f->type)) {
            snprintf(err, errlen, "field %s has the wrong type", f->name);
            cJSON_Delete(root);
            return NULL;
        }
    }
    if (r == RES_NOTIFICATIONS || r == RES_SERVICE_HISTORY || r == RES_TRIPS) {
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
        const cJSON *item;
        if (!cJSON_IsArray(data)) {
            snprintf(err, errlen, "expected {\"data\":[...]}");
            cJSON_Delete(root);
            return NULL;
        }
        cJSON_ArrayForEach(item, data) {
            if (!cJSON_IsObject(item)) {
                snprintf(err, errlen, "data: expected an array of objects");
                cJSON_Delete(root);
                return NULL;
            }
        }
    }
    return root;
}

char *api_minify(const char *body, size_t len)
{
    char *out = malloc(len + 1);
    if (!out) return NULL;
    size_t o = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_str) {
            out[o++] = c;
            if (esc) esc = false;
            else if (c == '\\') esc = true;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
            out[o++] = c;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            out[o++] = c;
        }
    }
    out[o] = '\0';
    return out;
}

int api_resource_path(char *buf, size_t len, const char *vin, enum resource r)
{
    if (!api_vin_valid(vin) || r >= RES_COUNT || r == RES_TRIPS) return -1;
    int n = snprintf(buf, len, "/vehicles/%s%s", vin, resource_get(r)->path);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

static bool date_valid(const char *d)
{
    if (!d || strlen(d) != 10) return false;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (d[i] != '-') return false;
        } else if (d[i] < '0' || d[i] > '9') {
            return false;
        }
    }
    return true;
}

int api_trips_path(char *buf, size_t len, const char *vin, const char *from_date,
                   const char *to_date, int limit, int offset, bool include_route)
{
    if (!api_vin_valid(vin) || !date_valid(from_date) || !date_valid(to_date) ||
        limit < 1 || limit > 50 || offset < 0)
        return -1;
    int n = snprintf(buf, len,
                     "/vehicles/%s/trips?fromDate=%s&toDate=%s&limit=%d&offset=%d"
                     "&includeRoute=%s&includeSummary=true",
                     vin, from_date, to_date, limit, offset, include_route ? "true" : "false");
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int api_trips_page_merge(cJSON *acc, const char *body, size_t len, int *total,
                         int *count, char *err, size_t errlen)
{
    *total = 0;
    *count = 0;
    cJSON *root = api_parse_resource(RES_TRIPS, body, len, err, errlen);
    if (!root) return -1;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "total");
    if (cJSON_IsNumber(t) && t->valuedouble >= 0 && t->valuedouble < 1e7)
        *total = (int)t->valuedouble;
    cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(root, "data");
    cJSON *item = data ? data->child : NULL;
    while (item) {
        cJSON *next = item->next;
        cJSON_DetachItemViaPointer(data, item);
        cJSON_AddItemToArray(acc, item);
        (*count)++;
        item = next;
    }
    cJSON_Delete(data);
    cJSON_Delete(root);
    if (*total < *count) *total = *count;
    return 0;
}

int api_parse_result(const char *body, size_t len, struct api_result *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t')) i++;
    if (i == len) return 0;
    cJSON *root = parse_json(body, len, err, errlen);
    if (!root) return -1;
    if (cJSON_IsObject(root) &&
        (copy_str(root, "requestId", out->request_id, sizeof out->request_id, err, errlen) ||
         copy_str(root, "status", out->status, sizeof out->status, err, errlen) ||
         copy_str(root, "returnCode", out->return_code, sizeof out->return_code, err, errlen) ||
         copy_str(root, "timestamp", out->timestamp, sizeof out->timestamp, err, errlen))) {
        cJSON_Delete(root);
        return -1;
    }
    cJSON_Delete(root);
    return 0;
}

char *api_error_message(const char *body, size_t len, char *buf, size_t buflen)
{
    char e[64];
    if (buflen == 0) return buf;
    buf[0] = '\0';
    cJSON *root = body && len ? parse_json(body, len, e, sizeof e) : NULL;
    if (cJSON_IsObject(root)) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "message");
        if (!cJSON_IsString(m)) m = cJSON_GetObjectItemCaseSensitive(root, "code");
        if (!cJSON_IsString(m)) m = cJSON_GetObjectItemCaseSensitive(root, "error");
        if (cJSON_IsString(m)) snprintf(buf, buflen, "%s", m->valuestring);
    }
    cJSON_Delete(root);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
    return buf;
}
