/* validate.c - see validate.h. */
#include "validate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util.h"

static const char *const REMOTE_NAMES[] = {"lock", "unlock", "horn", "lights", "panic_on", "panic_off", "trunk_open"};
static const char *const MODE_NAMES[] = {"auto", "cool", "heat", "defrost"};
static const char *const NTF_TYPES[] = {"alert", "message", "recall", "maintenance", "service"};
static const char *const SEVERITIES[] = {"info", "warning", "critical"};
#define COUNT(a) (sizeof(a) / sizeof *(a))

/* Parses a body that must be exactly one JSON object (whitespace around it
 * allowed), with no property outside known and none repeated. Returns the
 * tree (caller cJSON_Delete()s) or NULL with err set. */
static cJSON *parse_object(const char *body, size_t len, const char *const *known, size_t nknown,
                           char *err, size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "body: a JSON object is required");
        return NULL;
    }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!o) {
        snprintf(err, errlen, "body: malformed JSON");
        return NULL;
    }
    for (const char *p = end; p && p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            snprintf(err, errlen, "body: trailing data after the JSON value");
            cJSON_Delete(o);
            return NULL;
        }
    }
    if (!cJSON_IsObject(o)) {
        snprintf(err, errlen, "body: must be a JSON object");
        cJSON_Delete(o);
        return NULL;
    }
    for (const cJSON *it = o->child; it; it = it->next) {
        const char *name = it->string ? it->string : "";
        bool ok = false;
        for (size_t i = 0; i < nknown; i++)
            ok |= strcmp(name, known[i]) == 0;
        for (const cJSON *prev = o->child; ok && prev != it; prev = prev->next)
            if (prev->string && strcmp(prev->string, name) == 0) {
                snprintf(err, errlen, "%.64s: property repeated", name);
                cJSON_Delete(o);
                return NULL;
            }
        if (!ok) {
            snprintf(err, errlen, "%.64s: unknown property", name);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

/* Reads member name as one of names[]; *idx stays untouched when absent.
 * Returns 1 when present and valid, 0 when absent, -1 (err set) when bad. */
static int get_enum(const cJSON *o, const char *name, const char *const *names, size_t n, int *idx,
                    char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it)
        return 0;
    if (cJSON_IsString(it) && it->valuestring) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(it->valuestring, names[i]) == 0) {
                *idx = (int)i;
                return 1;
            }
        }
    }
    int w = snprintf(err, errlen, "%s: must be one of", name);
    for (size_t i = 0; i < n && w > 0 && (size_t)w < errlen; i++)
        w += snprintf(err + w, errlen - (size_t)w, "%s %s", i ? "," : "", names[i]);
    return -1;
}

/* Reads member name as a number in [lo, hi] (whole when integral). Returns 1,
 * 0 when absent, or -1 with err set. */
static int get_number(const cJSON *o, const char *name, double lo, double hi, bool integral,
                      double *out, char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it)
        return 0;
    double v = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    if (!isfinite(v) || v < lo || v > hi || (integral && v != floor(v))) {
        snprintf(err, errlen, "%s: must be %s from %g to %g", name, integral ? "an integer" : "a number", lo, hi);
        return -1;
    }
    *out = v;
    return 1;
}

/* Reads member name as a string of 1..maxchars characters (valid UTF-8, no
 * control characters, fitting in maxlen bytes with the NUL). Returns 1, 0
 * when absent, or -1 with err set. */
static int get_string(const cJSON *o, const char *name, char *out, size_t maxlen, size_t maxchars,
                      char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!it)
        return 0;
    if (!cJSON_IsString(it) || !it->valuestring) {
        snprintf(err, errlen, "%s: must be a string", name);
        return -1;
    }
    size_t n = strlen(it->valuestring);
    long chars = util_utf8_length(it->valuestring, n);
    if (chars < 0) {
        snprintf(err, errlen, "%s: must be valid UTF-8", name);
        return -1;
    }
    if (n == 0 || n >= maxlen || (size_t)chars > maxchars) {
        snprintf(err, errlen, "%s: must be 1 to %zu characters long", name, maxchars);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)it->valuestring[i] < 0x20 || it->valuestring[i] == 0x7f) {
            snprintf(err, errlen, "%s: must not contain control characters", name);
            return -1;
        }
    }
    memcpy(out, it->valuestring, n + 1);
    return 1;
}

static int required(int rc, const char *name, char *err, size_t errlen)
{
    if (rc == 0)
        snprintf(err, errlen, "%s: required", name);
    return rc == 1 ? 0 : -1;
}

int validate_remote(const char *body, size_t len, struct remote_req *out, char *err, size_t errlen)
{
    static const char *const known[] = {"command", "beeps"};
    memset(out, 0, sizeof *out);
    cJSON *o = parse_object(body, len, known, COUNT(known), err, errlen);
    if (!o)
        return -1;
    int cmd = 0;
    double beeps = 0;
    int rc = required(get_enum(o, "command", REMOTE_NAMES, COUNT(REMOTE_NAMES), &cmd, err, errlen),
                      "command", err, errlen);
    if (rc == 0 && get_number(o, "beeps", 1, 3, true, &beeps, err, errlen) < 0)
        rc = -1;
    cJSON_Delete(o);
    out->command = (enum remote_command)cmd;
    out->beeps = (int)beeps;
    return rc;
}

int validate_climate_command(const char *body, size_t len, struct climate_cmd_req *out, char *err,
                             size_t errlen)
{
    static const char *const known[] = {"command", "temperature"};
    static const char *const cmds[] = {"start", "stop"};
    memset(out, 0, sizeof *out);
    cJSON *o = parse_object(body, len, known, COUNT(known), err, errlen);
    if (!o)
        return -1;
    int cmd = 0;
    int rc = required(get_enum(o, "command", cmds, 2, &cmd, err, errlen), "command", err, errlen);
    if (rc == 0) {
        int t = get_number(o, "temperature", 60, 85, false, &out->temp, err, errlen);
        if (t < 0)
            rc = -1;
        out->has_temp = t == 1;
    }
    out->start = cmd == 0;
    cJSON_Delete(o);
    return rc;
}

int validate_climate_settings(const char *body, size_t len, struct climate_settings_req *out,
                              char *err, size_t errlen)
{
    static const char *const known[] = {"temperature", "fanSpeed", "mode"};
    memset(out, 0, sizeof *out);
    cJSON *o = parse_object(body, len, known, COUNT(known), err, errlen);
    if (!o)
        return -1;
    double fan = 0;
    int t = get_number(o, "temperature", 60, 85, false, &out->temp, err, errlen);
    int f = t < 0 ? -1 : get_number(o, "fanSpeed", 1, 5, true, &fan, err, errlen);
    int m = f < 0 ? -1 : get_enum(o, "mode", MODE_NAMES, COUNT(MODE_NAMES), &out->mode, err, errlen);
    cJSON_Delete(o);
    if (t < 0 || f < 0 || m < 0)
        return -1;
    if (t + f + m == 0) {
        snprintf(err, errlen, "body: at least one of temperature, fanSpeed, mode is required");
        return -1;
    }
    out->has_temp = t == 1;
    out->has_fan = f == 1;
    out->has_mode = m == 1;
    out->fan = (int)fan;
    return 0;
}

int validate_refresh(const char *body, size_t len, struct refresh_req *out, char *err, size_t errlen)
{
    static const char *const known[] = {"deviceId", "deviceType", "guid", "vin"};
    memset(out, 0, sizeof *out);
    cJSON *o = parse_object(body, len, known, COUNT(known), err, errlen);
    if (!o)
        return -1;
    char *dst[] = {out->device_id, out->device_type, out->guid, out->vin};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < COUNT(known); i++)
        rc = required(get_string(o, known[i], dst[i], VALIDATE_STR, VALIDATE_STR - 1, err, errlen),
                      known[i], err, errlen);
    cJSON_Delete(o);
    return rc;
}

int validate_alias(const char *body, size_t len, struct alias_req *out, char *err, size_t errlen)
{
    static const char *const known[] = {"alias", "guid"};
    memset(out, 0, sizeof *out);
    cJSON *o = parse_object(body, len, known, COUNT(known), err, errlen);
    if (!o)
        return -1;
    int rc = required(get_string(o, "alias", out->alias, sizeof out->alias, VALIDATE_ALIAS_CHARS, err, errlen),
                      "alias", err, errlen);
    if (rc == 0) {
        int g = get_string(o, "guid", out->guid, sizeof out->guid, VALIDATE_STR - 1, err, errlen);
        if (g < 0)
            rc = -1;
        out->has_guid = g == 1;
    }
    cJSON_Delete(o);
    return rc;
}

int validate_electric_refresh(const char *body, size_t len, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i == len)
        return 0;
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    bool ok = cJSON_IsObject(o);
    for (const char *p = end; ok && p && p < body + len; p++)
        ok = *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n';
    cJSON_Delete(o);
    if (!ok)
        snprintf(err, errlen, "body: must be empty or a JSON object");
    return ok ? 0 : -1;
}

int validate_notification(const char *body, size_t len, struct notification_req *out, char *err,
                          size_t errlen)
{
    static const char *const known[] = {"type", "severity", "title", "message"};
    memset(out, 0, sizeof *out);
    out->type = out->severity = -1;
    if (len == 0)
        return 0;
    cJSON *o = parse_object(body, len, known, COUNT(known), err, errlen);
    if (!o)
        return -1;
    int rc = 0;
    int ti = get_string(o, "title", out->title, sizeof out->title, sizeof out->title - 1, err, errlen);
    int mi = ti < 0 ? -1 : get_string(o, "message", out->message, sizeof out->message,
                                      sizeof out->message - 1, err, errlen);
    if (ti < 0 || mi < 0 ||
        get_enum(o, "type", NTF_TYPES, COUNT(NTF_TYPES), &out->type, err, errlen) < 0 ||
        get_enum(o, "severity", SEVERITIES, COUNT(SEVERITIES), &out->severity, err, errlen) < 0)
        rc = -1;
    out->has_title = ti == 1;
    out->has_message = mi == 1;
    cJSON_Delete(o);
    return rc;
}

int validate_bool_param(const char *name, const char *value, bool def, bool *out, char *err,
                        size_t errlen)
{
    if (!value) {
        *out = def;
        return 0;
    }
    if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
        *out = value[0] == 't';
        return 0;
    }
    snprintf(err, errlen, "%s: must be true or false", name);
    return -1;
}

/* Parses a decimal integer of at most 9 digits. Returns 0 or -1. */
static int parse_uint(const char *s, long *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int validate_trips(const char *from, const char *to, const char *limit, const char *offset,
                   const char *route, const char *summary, struct trips_req *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!from) {
        snprintf(err, errlen, "fromDate: required");
        return -1;
    }
    if (!to) {
        snprintf(err, errlen, "toDate: required");
        return -1;
    }
    if (util_parse_date(from, &out->from_day) != 0) {
        snprintf(err, errlen, "fromDate: must be a date YYYY-MM-DD");
        return -1;
    }
    if (util_parse_date(to, &out->to_day) != 0) {
        snprintf(err, errlen, "toDate: must be a date YYYY-MM-DD");
        return -1;
    }
    if (out->from_day > out->to_day) {
        snprintf(err, errlen, "fromDate: must not be after toDate");
        return -1;
    }
    long v = 50;
    if (limit && (parse_uint(limit, &v) != 0 || v < 1 || v > 50)) {
        snprintf(err, errlen, "limit: must be an integer from 1 to 50");
        return -1;
    }
    out->limit = (int)v;
    v = 0;
    if (offset && parse_uint(offset, &v) != 0) {
        snprintf(err, errlen, "offset: must be an integer from 0 to 999999999");
        return -1;
    }
    out->offset = v;
    if (validate_bool_param("includeRoute", route, false, &out->include_route, err, errlen) != 0 ||
        validate_bool_param("includeSummary", summary, true, &out->include_summary, err, errlen) != 0)
        return -1;
    return 0;
}
