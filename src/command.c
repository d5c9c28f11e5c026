/* command.c - MQTT commands -> validated, authorised plans of API calls; see
 * command.h. Pure: no I/O, no globals, safe on hostile bytes (fuzzed by
 * tests/fuzz/fuzz_command.c).
 *
 * The rule throughout: anything not explicitly understood is rejected. A
 * request that reaches command_plan() has passed the retained check, strict
 * JSON (no duplicate keys, no trailing bytes, no NUL), the per-command field
 * list, type and range checks, commands.allow and the unlock code.
 */
#include "command.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Command names live in one table, config.c's (commands.allow uses them). */

/* The suffixes the bridge subscribes to below <base>/<VIN>/. */
enum suffix { SUF_COMMAND, SUF_LOCK, SUF_MODE, SUF_PRESET, SUF_TEMP, SUF_FAN, SUF_ALIAS, SUF_COUNT };

static const char *const suffix_names[SUF_COUNT] = {
    [SUF_COMMAND] = "command",
    [SUF_LOCK] = "lock/set",
    [SUF_MODE] = "climate/mode/set",
    [SUF_PRESET] = "climate/preset/set",
    [SUF_TEMP] = "climate/temperature/set",
    [SUF_FAN] = "climate/fan/set",
    [SUF_ALIAS] = "alias/set",
};

static const char *const climate_modes[] = { "auto", "cool", "heat", "defrost" };

/* Fields every generic command may carry besides its own arguments. */
static const char *const common_fields[] = { "command", "id", "code", NULL };

const char *command_name(enum command_id cmd)
{
    return config_command_name(cmd);
}

int command_from_name(const char *name)
{
    return name ? config_command_from_name(name) : -1;
}

/* The arguments a generic command may carry, NULL-terminated. */
static const char *const *command_args(enum command_id cmd)
{
    static const char *const none[] = { NULL };
    static const char *const horn[] = { "beeps", NULL };
    static const char *const start[] = { "temperature", NULL };
    static const char *const settings[] = { "temperature", "fanSpeed", "mode", NULL };
    static const char *const alias[] = { "alias", NULL };
    switch (cmd) {
    case CMD_HORN: return horn;
    case CMD_CLIMATE_START: return start;
    case CMD_CLIMATE_SETTINGS: return settings;
    case CMD_SET_ALIAS: return alias;
    default: return none;
    }
}

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0) return true;
    return false;
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A printable, bounded copy of untrusted text for error messages: anything
 * but printable ASCII (and the quote that delimits it) becomes '?'. */
static const char *shown(const char *s, char *buf, size_t buflen)
{
    size_t i = 0, n = strlen(s);
    for (; i < n && i + 4 < buflen; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
    }
    if (i < n && i + 4 <= buflen) { memcpy(buf + i, "...", 3); i += 3; }
    buf[i] = '\0';
    return buf;
}

/* Length of the UTF-8 sequence at s (n bytes available) when it is a valid,
 * shortest-form encoding of a scalar value that is not a control character
 * (C0, DEL, C1); 0 otherwise. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len;
    if (s[0] < 0x80) return (s[0] >= 0x20 && s[0] != 0x7f) ? 1 : 0;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) { len = 2; cp = s[0] & 0x1fu; }
    else if (s[0] >= 0xe0 && s[0] <= 0xef) { len = 3; cp = s[0] & 0x0fu; }
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) { len = 4; cp = s[0] & 0x07u; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff) return 0;
    if (cp >= 0xd800 && cp <= 0xdfff) return 0;
    if (cp >= 0x80 && cp <= 0x9f) return 0;
    return len;
}

/* True when the n bytes at s are valid UTF-8 without control characters. */
static bool text_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    while (n) {
        size_t k = utf8_char(p, n);
        if (!k) return false;
        p += k;
        n -= k;
    }
    return true;
}

/* Compares the given code with the configured one in time that depends only
 * on the configured code's length, so response timing leaks nothing. */
static bool code_equal(const char *given, const char *expected)
{
    size_t lg = strlen(given), le = strlen(expected);
    volatile unsigned char diff = (unsigned char)(lg != le);
    for (size_t i = 0; i < le; i++) {
        unsigned char g = i < lg ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)expected[i]);
    }
    return diff == 0;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_plain(const char *p, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(p, lit, len) == 0;
}

/* Rejects "\u0000" escapes: cJSON would cut the string there, so "unlock\u0000x"
 * would read as "unlock". A rare false positive ("\\u0000") only rejects. */
static bool has_escaped_nul(const char *p, size_t len)
{
    for (size_t i = 0; i + 6 <= len; i++)
        if (p[i] == '\\' && (p[i + 1] == 'u' || p[i + 1] == 'U') &&
            memcmp(p + i + 2, "0000", 4) == 0)
            return true;
    return false;
}

/* Parses a payload that must be exactly one JSON object with unique keys.
 * Returns the tree (caller cJSON_Delete()s) or NULL with err set. */
static cJSON *parse_object(const char *payload, size_t len, char *err, size_t errlen)
{
    if (len == 0) { fail(err, errlen, "empty payload"); return NULL; }
    if (memchr(payload, '\0', len) || has_escaped_nul(payload, len)) {
        fail(err, errlen, "payload contains a NUL character");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
    if (!root) { fail(err, errlen, "payload is not valid JSON"); return NULL; }
    for (size_t i = (size_t)(end - payload); i < len; i++) {
        if (!is_ws(payload[i])) {
            cJSON_Delete(root);
            fail(err, errlen, "payload has data after the JSON value");
            return NULL;
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        fail(err, errlen, "payload must be a JSON object");
        return NULL;
    }
    char buf[48];
    for (const cJSON *a = root->child; a; a = a->next) {
        for (const cJSON *b = a->next; b; b = b->next) {
            if (a->string && b->string && strcmp(a->string, b->string) == 0) {
                fail(err, errlen, "duplicate field '%s'", shown(a->string, buf, sizeof buf));
                cJSON_Delete(root);
                return NULL;
            }
        }
    }
    return root;
}

/* Every key of obj must be in one of the two lists. */
static int check_fields(const cJSON *obj, const char *const *a, const char *const *b,
                        const char *what, char *err, size_t errlen)
{
    char buf[48];
    for (const cJSON *it = obj->child; it; it = it->next) {
        if (!it->string) return fail(err, errlen, "field without a name");
        if (!in_list(it->string, a) && !in_list(it->string, b))
            return fail(err, errlen, "unknown field '%s' for %s",
                        shown(it->string, buf, sizeof buf), what);
    }
    return 0;
}

/* "id": optional string of at most 64 bytes of printable UTF-8. */
static int take_id(const cJSON *obj, struct command_req *r, char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "id");
    if (!it) return 0;
    if (!cJSON_IsString(it) || !it->valuestring) return fail(err, errlen, "'id' must be a string");
    size_t n = strlen(it->valuestring);
    if (n > COMMAND_ID_MAX)
        return fail(err, errlen, "'id' is longer than %d bytes", COMMAND_ID_MAX);
    if (!text_ok(it->valuestring, n))
        return fail(err, errlen, "'id' must be UTF-8 text without control characters");
    memcpy(r->id, it->valuestring, n + 1);
    return 0;
}

/* "code": optional string (null counts as absent). *code borrows from obj. */
static int take_code(const cJSON *obj, const char **code, char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "code");
    *code = NULL;
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsString(it) || !it->valuestring) return fail(err, errlen, "'code' must be a string");
    *code = it->valuestring;
    return 0;
}

static int take_temperature(const cJSON *obj, struct command_req *r, char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "temperature");
    if (!it) return 0;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return fail(err, errlen, "'temperature' must be a number");
    if (it->valuedouble < COMMAND_TEMP_MIN || it->valuedouble > COMMAND_TEMP_MAX)
        return fail(err, errlen, "'temperature' must be between %g and %g (Fahrenheit)",
                    COMMAND_TEMP_MIN, COMMAND_TEMP_MAX);
    r->has_temperature = true;
    r->temperature = it->valuedouble;
    return 0;
}

/* An integral JSON number in lo..hi into *v; 1 when absent, 0 when taken. */
static int take_int(const cJSON *obj, const char *key, int lo, int hi, int *v,
                    char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return 1;
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) ||
        it->valuedouble != floor(it->valuedouble))
        return fail(err, errlen, "'%s' must be an integer", key);
    if (it->valuedouble < lo || it->valuedouble > hi)
        return fail(err, errlen, "'%s' must be between %d and %d", key, lo, hi);
    *v = (int)it->valuedouble;
    return 0;
}

static int take_mode(const cJSON *obj, struct command_req *r, char *err, size_t errlen)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "mode");
    if (!it) return 0;
    if (!cJSON_IsString(it) || !it->valuestring) return fail(err, errlen, "'mode' must be a string");
    for (size_t i = 0; i < sizeof climate_modes / sizeof climate_modes[0]; i++) {
        if (strcmp(it->valuestring, climate_modes[i]) == 0) {
            snprintf(r->mode, sizeof r->mode, "%s", climate_modes[i]);
            return 0;
        }
    }
    return fail(err, errlen, "'mode' must be one of auto, cool, heat, defrost");
}

/* An alias: 1..64 bytes of UTF-8 without control characters. */
static int set_alias_text(struct command_req *r, const char *s, size_t n, char *err, size_t errlen)
{
    if (n == 0) return fail(err, errlen, "alias must not be empty");
    if (n > COMMAND_ALIAS_MAX)
        return fail(err, errlen, "alias is longer than %d bytes", COMMAND_ALIAS_MAX);
    if (!text_ok(s, n)) return fail(err, errlen, "alias must be UTF-8 text without control characters");
    memcpy(r->alias, s, n);
    r->alias[n] = '\0';
    return 0;
}

/* The arguments of a generic command, already limited to its own fields. */
static int take_args(const cJSON *obj, struct command_req *r, char *err, size_t errlen)
{
    int rc;
    switch (r->cmd) {
    case CMD_HORN:
        rc = take_int(obj, "beeps", COMMAND_BEEPS_MIN, COMMAND_BEEPS_MAX, &r->beeps, err, errlen);
        return rc < 0 ? -1 : 0;
    case CMD_CLIMATE_START:
        return take_temperature(obj, r, err, errlen);
    case CMD_CLIMATE_SETTINGS:
        if (take_temperature(obj, r, err, errlen)) return -1;
        rc = take_int(obj, "fanSpeed", COMMAND_FAN_MIN, COMMAND_FAN_MAX, &r->fan_speed, err, errlen);
        if (rc < 0) return -1;
        r->has_fan_speed = rc == 0;
        if (take_mode(obj, r, err, errlen)) return -1;
        if (!r->has_temperature && !r->has_fan_speed && !r->mode[0])
            return fail(err, errlen, "climate_settings needs at least one of temperature, fanSpeed, mode");
        return 0;
    case CMD_SET_ALIAS: {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "alias");
        if (!it) return fail(err, errlen, "set_alias needs 'alias'");
        if (!cJSON_IsString(it) || !it->valuestring) return fail(err, errlen, "'alias' must be a string");
        return set_alias_text(r, it->valuestring, strlen(it->valuestring), err, errlen);
    }
    default:
        return 0;
    }
}

/* The generic topic: {"command":NAME, ...args, "id"?, "code"?}. */
static int parse_generic(const char *payload, size_t len, struct command_req *r,
                         const char **code_out, cJSON **root_out, char *err, size_t errlen)
{
    char buf[48];
    cJSON *root = parse_object(payload, len, err, errlen);
    if (!root) return -1;
    *root_out = root;
    if (take_id(root, r, err, errlen)) return -1;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "command");
    if (!c) return fail(err, errlen, "missing field 'command'");
    if (!cJSON_IsString(c) || !c->valuestring) return fail(err, errlen, "'command' must be a string");
    int id = command_from_name(c->valuestring);
    if (id < 0) return fail(err, errlen, "unknown command '%s'", shown(c->valuestring, buf, sizeof buf));
    r->cmd = (enum command_id)id;
    char what[64];
    snprintf(what, sizeof what, "command '%s'", command_name(id));
    if (check_fields(root, common_fields, command_args(r->cmd), what, err, errlen)) return -1;
    if (take_args(root, r, err, errlen)) return -1;
    return take_code(root, code_out, err, errlen);
}

/* lock/set: LOCK, UNLOCK, or {"action":"LOCK"|"UNLOCK","code"?,"id"?}. */
static int parse_lock(const char *payload, size_t len, struct command_req *r,
                      const char **code_out, cJSON **root_out, char *err, size_t errlen)
{
    static const char *const lock_fields[] = { "action", "code", "id", NULL };
    static const char *const none[] = { NULL };
    if (is_plain(payload, len, "LOCK")) { r->cmd = CMD_LOCK; return 0; }
    if (is_plain(payload, len, "UNLOCK")) { r->cmd = CMD_UNLOCK; return 0; }
    size_t i = 0;
    while (i < len && is_ws(payload[i])) i++;
    if (i == len || payload[i] != '{')
        return fail(err, errlen, "lock/set payload must be LOCK, UNLOCK or {\"action\":...,\"code\":...}");
    cJSON *root = parse_object(payload, len, err, errlen);
    if (!root) return -1;
    *root_out = root;
    if (take_id(root, r, err, errlen)) return -1;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "action");
    if (!a) return fail(err, errlen, "missing field 'action'");
    if (!cJSON_IsString(a) || !a->valuestring) return fail(err, errlen, "'action' must be a string");
    if (strcmp(a->valuestring, "LOCK") == 0) r->cmd = CMD_LOCK;
    else if (strcmp(a->valuestring, "UNLOCK") == 0) r->cmd = CMD_UNLOCK;
    else return fail(err, errlen, "'action' must be LOCK or UNLOCK");
    if (check_fields(root, lock_fields, none, "lock/set", err, errlen)) return -1;
    return take_code(root, code_out, err, errlen);
}

/* A plain decimal number ("72", "72.5"; no sign, exponent or spaces) in a
 * locale-independent, correctly rounded way: at most 15 digits, so both the
 * digits and the power of ten are exact doubles and one division rounds. */
static int plain_number(const char *p, size_t len, double *v)
{
    static const double pow10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
                                    1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
    double mant = 0;
    int digits = 0, frac = -1;
    for (size_t i = 0; i < len; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            if (++digits > 15) return -1;
            mant = mant * 10 + (p[i] - '0');
            if (frac >= 0) frac++;
        } else if (p[i] == '.' && frac < 0 && digits > 0) {
            frac = 0;
        } else {
            return -1;
        }
    }
    if (digits == 0 || frac == 0) return -1;
    *v = mant / pow10[frac < 0 ? 0 : frac];
    return 0;
}

/* The Home Assistant climate and alias topics (plain payloads). */
static int parse_plain(enum suffix s, const char *p, size_t len, struct command_req *r,
                       char *err, size_t errlen)
{
    switch (s) {
    case SUF_MODE:
        if (is_plain(p, len, "off")) { r->cmd = CMD_CLIMATE_STOP; return 0; }
        for (size_t i = 0; i < 3; i++) {
            if (is_plain(p, len, climate_modes[i])) {
                r->cmd = CMD_CLIMATE_SETTINGS;
                snprintf(r->mode, sizeof r->mode, "%s", climate_modes[i]);
                r->start_after_settings = true;
                return 0;
            }
        }
        return fail(err, errlen, "climate/mode/set payload must be off, auto, cool or heat");
    case SUF_PRESET:
        if (is_plain(p, len, "none")) { r->cmd = CMD_CLIMATE_STOP; return 0; }
        if (is_plain(p, len, "defrost")) {
            r->cmd = CMD_CLIMATE_SETTINGS;
            snprintf(r->mode, sizeof r->mode, "defrost");
            r->start_after_settings = true;
            return 0;
        }
        return fail(err, errlen, "climate/preset/set payload must be defrost or none");
    case SUF_TEMP:
        r->cmd = CMD_CLIMATE_SETTINGS;
        if (plain_number(p, len, &r->temperature) || r->temperature < COMMAND_TEMP_MIN ||
            r->temperature > COMMAND_TEMP_MAX)
            return fail(err, errlen, "climate/temperature/set payload must be a number between %g and %g",
                        COMMAND_TEMP_MIN, COMMAND_TEMP_MAX);
        r->has_temperature = true;
        return 0;
    case SUF_FAN:
        r->cmd = CMD_CLIMATE_SETTINGS;
        if (len != 1 || p[0] < '0' + COMMAND_FAN_MIN || p[0] > '0' + COMMAND_FAN_MAX)
            return fail(err, errlen, "climate/fan/set payload must be one of 1..5");
        r->has_fan_speed = true;
        r->fan_speed = p[0] - '0';
        return 0;
    case SUF_ALIAS:
        r->cmd = CMD_SET_ALIAS;
        return set_alias_text(r, p, len, err, errlen);
    default:
        return fail(err, errlen, "unknown command topic");
    }
}

/* commands.allow and the unlock code. The code is never copied anywhere. */
static int authorise(const struct command_req *r, const char *code,
                     const struct command_policy *pol, char *err, size_t errlen)
{
    if ((unsigned)r->cmd >= CMD_COUNT) return fail(err, errlen, "unknown command");
    enum command_id need[2] = { r->cmd, CMD_CLIMATE_START };
    int nneed = r->start_after_settings ? 2 : 1;
    for (int i = 0; i < nneed; i++)
        if (!(pol->allow & (1u << need[i])))
            return fail(err, errlen, "command '%s' is not allowed; add it to commands.allow "
                        "in the configuration to enable it", command_name(need[i]));
    bool needs_code = r->cmd == CMD_UNLOCK || r->cmd == CMD_TRUNK_OPEN;
    if (needs_code && pol->unlock_code && pol->unlock_code[0] &&
        (!code || !code_equal(code, pol->unlock_code)))
        return fail(err, errlen, "wrong or missing unlock code");
    return 0;
}

static int find_suffix(const char *suffix)
{
    for (int i = 0; suffix && i < SUF_COUNT; i++)
        if (strcmp(suffix, suffix_names[i]) == 0) return i;
    return -1;
}

int command_parse(const char *suffix, const char *payload, size_t len, bool retained,
                  const struct command_policy *pol, struct command_req *out,
                  char *err, size_t errlen)
{
    struct command_req r;
    memset(&r, 0, sizeof r);
    r.cmd = CMD_COUNT;
    if (err && errlen) err[0] = '\0';
    if (!out) return fail(err, errlen, "internal error: no request");
    *out = r;
    if (!pol) return fail(err, errlen, "internal error: no command policy");
    if (len > COMMAND_MAX_PAYLOAD)
        return fail(err, errlen, "payload too large (%zu bytes, at most %d)", len, COMMAND_MAX_PAYLOAD);
    if (!payload && len) return fail(err, errlen, "internal error: no payload");
    if (!payload) payload = "";
    int s = find_suffix(suffix);
    if (s < 0) return fail(err, errlen, "unknown command topic");

    const char *code = NULL;
    cJSON *root = NULL;
    int rc;
    if (s == SUF_COMMAND) rc = parse_generic(payload, len, &r, &code, &root, err, errlen);
    else if (s == SUF_LOCK) rc = parse_lock(payload, len, &r, &code, &root, err, errlen);
    else rc = parse_plain((enum suffix)s, payload, len, &r, err, errlen);
    /* A retained message never runs, whatever it says; it is parsed only so
     * that its error result can name the command and echo its id. */
    if (retained) rc = fail(err, errlen, "retained command ignored: commands only fire when sent");
    if (rc == 0) rc = authorise(&r, code, pol, err, errlen);
    cJSON_Delete(root);          /* code borrowed from root: not used past here */
    if (rc == 0) {
        *out = r;
    } else {
        out->cmd = r.cmd;
        memcpy(out->id, r.id, sizeof out->id);
    }
    return rc;
}

/* Re-checks a request so that command_plan() is safe on any caller's struct. */
static int check_req(const struct command_req *r, char *err, size_t errlen)
{
    if ((unsigned)r->cmd >= CMD_COUNT) return fail(err, errlen, "unknown command");
    if (r->has_temperature && !(isfinite(r->temperature) && r->temperature >= COMMAND_TEMP_MIN &&
                                r->temperature <= COMMAND_TEMP_MAX))
        return fail(err, errlen, "temperature out of range");
    if (r->has_fan_speed && (r->fan_speed < COMMAND_FAN_MIN || r->fan_speed > COMMAND_FAN_MAX))
        return fail(err, errlen, "fanSpeed out of range");
    if (r->beeps && (r->beeps < COMMAND_BEEPS_MIN || r->beeps > COMMAND_BEEPS_MAX))
        return fail(err, errlen, "beeps out of range");
    if (!memchr(r->mode, '\0', sizeof r->mode)) return fail(err, errlen, "invalid mode");
    bool mode_ok = r->mode[0] == '\0';
    for (size_t i = 0; i < sizeof climate_modes / sizeof climate_modes[0]; i++)
        mode_ok = mode_ok || strcmp(r->mode, climate_modes[i]) == 0;
    if (!mode_ok) return fail(err, errlen, "invalid mode");
    if (r->cmd == CMD_CLIMATE_SETTINGS && !r->has_temperature && !r->has_fan_speed && !r->mode[0])
        return fail(err, errlen, "climate_settings needs at least one setting");
    if (r->cmd == CMD_SET_ALIAS) {
        const char *nul = memchr(r->alias, '\0', sizeof r->alias);
        if (!nul || nul == r->alias || !text_ok(r->alias, (size_t)(nul - r->alias)))
            return fail(err, errlen, "invalid alias");
    }
    return 0;
}

/* Prints and frees o; NULL when o is NULL or printing fails. */
static char *print_body(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* The JSON bodies; each returns a tree (caller deletes) or NULL when out of memory. */
static cJSON *body_remote(const struct command_req *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "command", command_name(r->cmd)) ||
        (r->cmd == CMD_HORN && r->beeps && !cJSON_AddNumberToObject(o, "beeps", r->beeps))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *body_climate_command(const char *what, bool has_temp, double temp)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "command", what) ||
        (has_temp && !cJSON_AddNumberToObject(o, "temperature", temp))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *body_settings(const struct command_req *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || (r->has_temperature && !cJSON_AddNumberToObject(o, "temperature", r->temperature)) ||
        (r->has_fan_speed && !cJSON_AddNumberToObject(o, "fanSpeed", r->fan_speed)) ||
        (r->mode[0] && !cJSON_AddStringToObject(o, "mode", r->mode))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *body_refresh(const struct api_vehicle *v, const char *device_id, const char *device_type)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "deviceId", device_id) ||
        !cJSON_AddStringToObject(o, "deviceType", device_type) ||
        !cJSON_AddStringToObject(o, "guid", v->guid) ||
        !cJSON_AddStringToObject(o, "vin", v->vin)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *body_alias(const struct command_req *r, const struct api_vehicle *v)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "alias", r->alias) ||
        (v->guid[0] && !cJSON_AddStringToObject(o, "guid", v->guid))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Fills one call; body may be NULL only when want_body is false. */
static int set_call(struct command_call *c, const char *method, const char *vin, const char *sub,
                    cJSON *body, bool want_body, char *err, size_t errlen)
{
    c->method = method;
    c->body = NULL;
    int n = snprintf(c->path, sizeof c->path, "/vehicles/%s%s", vin, sub);
    if (n < 0 || (size_t)n >= sizeof c->path) {
        cJSON_Delete(body);
        return fail(err, errlen, "request path too long");
    }
    if (want_body) {
        c->body = print_body(body);
        if (!c->body) return fail(err, errlen, "out of memory");
    }
    return 0;
}

int command_plan(const struct command_req *req, const struct api_vehicle *v,
                 const char *device_id, const char *device_type,
                 struct command_call calls[COMMAND_MAX_CALLS], char *err, size_t errlen)
{
    if (!calls) return fail(err, errlen, "internal error: no calls");
    memset(calls, 0, sizeof *calls * COMMAND_MAX_CALLS);
    if (!req || !v) return fail(err, errlen, "internal error: no request or vehicle");
    if (!memchr(v->vin, '\0', sizeof v->vin) || !api_vin_valid(v->vin))
        return fail(err, errlen, "invalid VIN");
    if (!memchr(v->guid, '\0', sizeof v->guid)) return fail(err, errlen, "invalid vehicle guid");
    if (check_req(req, err, errlen)) return -1;
    const char *vin = v->vin;
    int rc = 0, n = 1;
    switch (req->cmd) {
    case CMD_LOCK: case CMD_UNLOCK: case CMD_HORN: case CMD_LIGHTS:
    case CMD_PANIC_ON: case CMD_PANIC_OFF: case CMD_TRUNK_OPEN:
        rc = set_call(&calls[0], "POST", vin, "/remote-command", body_remote(req), true, err, errlen);
        break;
    case CMD_CLIMATE_START:
        rc = set_call(&calls[0], "POST", vin, "/climate/command",
                      body_climate_command("start", req->has_temperature, req->temperature),
                      true, err, errlen);
        break;
    case CMD_CLIMATE_STOP:
        rc = set_call(&calls[0], "POST", vin, "/climate/command",
                      body_climate_command("stop", false, 0), true, err, errlen);
        break;
    case CMD_CLIMATE_SETTINGS:
        rc = set_call(&calls[0], "PUT", vin, "/climate", body_settings(req), true, err, errlen);
        if (rc == 0 && req->start_after_settings) {
            n = 2;
            rc = set_call(&calls[1], "POST", vin, "/climate/command",
                          body_climate_command("start", false, 0), true, err, errlen);
        }
        break;
    case CMD_REFRESH_STATUS:
        if (!v->guid[0]) return fail(err, errlen, "refresh_status needs the vehicle's guid, which the API did not give");
        if (!device_id || !device_id[0] || !device_type || !device_type[0])
            return fail(err, errlen, "refresh_status needs api.device_id and api.device_type");
        rc = set_call(&calls[0], "POST", vin, "/status/refresh",
                      body_refresh(v, device_id, device_type), true, err, errlen);
        break;
    case CMD_REFRESH_ELECTRIC:
        rc = set_call(&calls[0], "POST", vin, "/electric/refresh", NULL, false, err, errlen);
        break;
    case CMD_SET_ALIAS:
        rc = set_call(&calls[0], "PUT", vin, "", body_alias(req, v), true, err, errlen);
        break;
    default:
        return fail(err, errlen, "unknown command");
    }
    if (rc) {
        command_calls_free(calls, COMMAND_MAX_CALLS);
        return -1;
    }
    return n;
}

void command_calls_free(struct command_call *calls, int n)
{
    for (int i = 0; calls && i < n; i++) {
        free(calls[i].body);
        calls[i].body = NULL;
    }
}

/* Adds s as a string, or null when s is NULL or "". */
static bool add_str_or_null(cJSON *o, const char *key, const char *s)
{
    return (s && s[0]) ? cJSON_AddStringToObject(o, key, s) != NULL
                       : cJSON_AddNullToObject(o, key) != NULL;
}

char *command_result_json(const struct command_req *req, bool ok,
                          const struct api_result *res, const char *error,
                          int confirmed)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const char *id = NULL;
    if (req && memchr(req->id, '\0', sizeof req->id)) id = req->id;
    bool good = add_str_or_null(o, "id", id) &&
                add_str_or_null(o, "command", req ? command_name(req->cmd) : NULL) &&
                cJSON_AddBoolToObject(o, "ok", ok) != NULL &&
                add_str_or_null(o, "requestId", res ? res->request_id : NULL) &&
                add_str_or_null(o, "returnCode", res ? res->return_code : NULL) &&
                add_str_or_null(o, "status", res ? res->status : NULL) &&
                add_str_or_null(o, "error", error) &&
                (confirmed < 0 ? cJSON_AddNullToObject(o, "confirmed") != NULL
                               : cJSON_AddBoolToObject(o, "confirmed", confirmed > 0) != NULL);
    if (!good) {
        cJSON_Delete(o);
        return NULL;
    }
    return print_body(o);
}

unsigned command_affects(enum command_id cmd)
{
    switch (cmd) {
    case CMD_LOCK: case CMD_UNLOCK: case CMD_TRUNK_OPEN:
    case CMD_REFRESH_STATUS:
        return 1u << RES_STATUS;
    case CMD_CLIMATE_START: case CMD_CLIMATE_STOP: case CMD_CLIMATE_SETTINGS:
        return 1u << RES_CLIMATE;
    case CMD_REFRESH_ELECTRIC:
        return 1u << RES_ELECTRIC;
    case CMD_SET_ALIAS:
        return 1u << RES_VEHICLE;
    default:
        return 0;
    }
}
