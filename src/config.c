/* config.c - the configuration file (libconfig 1.5 syntax) -> struct config.
 *
 * libconfig only builds a tree; everything else is ours: every group is
 * walked against a table of known keys (libconfig silently ignores unknown
 * ones), numbers are range-checked whatever type libconfig gave them, strings
 * are copied (bounded) before config_destroy(), and every error becomes one
 * line "FILE:LINE: KEY: what is wrong".
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libconfig.h>

#include "log.h"

#define CONFIG_MAX_TEXT (1024 * 1024)   /* larger configuration files are refused */
#define KEY_PATH 128                    /* "api.oauth.refresh_token_file" and then some */

static const char *const command_names[CMD_COUNT] = {
    [CMD_LOCK] = "lock",
    [CMD_UNLOCK] = "unlock",
    [CMD_HORN] = "horn",
    [CMD_LIGHTS] = "lights",
    [CMD_PANIC_ON] = "panic_on",
    [CMD_PANIC_OFF] = "panic_off",
    [CMD_TRUNK_OPEN] = "trunk_open",
    [CMD_CLIMATE_START] = "climate_start",
    [CMD_CLIMATE_STOP] = "climate_stop",
    [CMD_CLIMATE_SETTINGS] = "climate_settings",
    [CMD_REFRESH_STATUS] = "refresh_status",
    [CMD_REFRESH_ELECTRIC] = "refresh_electric",
    [CMD_SET_ALIAS] = "set_alias",
};

/* ---- key table ---------------------------------------------------------- */

enum kind {
    K_GROUP,    /* a group of keys (sub) */
    K_POLL,     /* the poll group: "vehicles" + one key per resource */
    K_STR,      /* char[size] */
    K_FILE,     /* "<pair>_file": first line of a file -> char[size] */
    K_INT,      /* int, lo..hi (zero_ok: 0 too) */
    K_LONG,     /* long, lo..hi */
    K_BOOL,     /* bool */
    K_ALLOW,    /* commands.allow: list/array of command names -> unsigned */
};

/* Validates (and may normalise) a copied string value; returns NULL when it
 * is fine, else what is wrong ("must start with http:// or https://"). */
typedef const char *(*check_fn)(char *value);

struct key {
    const char *name;
    enum kind kind;
    size_t off, size;            /* the field in struct config */
    long long lo, hi;            /* K_INT, K_LONG */
    bool zero_ok;
    check_fn check;              /* K_STR */
    const struct key *sub;       /* K_GROUP */
    const char *pair;            /* K_FILE: the sibling key it stands for */
};

#define FIELD(m) .off = offsetof(struct config, m), .size = sizeof(((struct config *)0)->m)
#define KSTR(n, m, c)       { .name = n, .kind = K_STR, FIELD(m), .check = c }
#define KFILE(n, m, p)      { .name = n, .kind = K_FILE, FIELD(m), .pair = p }
#define KINT(n, m, l, h)    { .name = n, .kind = K_INT, FIELD(m), .lo = l, .hi = h }
#define KLONG(n, m, l, h)   { .name = n, .kind = K_LONG, FIELD(m), .lo = l, .hi = h }
#define KBOOL(n, m)         { .name = n, .kind = K_BOOL, FIELD(m) }
#define KGROUP(n, s)        { .name = n, .kind = K_GROUP, .sub = s }
#define KEND                { .name = NULL }

static const char *check_nonempty(char *v);
static const char *check_log_level(char *v);
static const char *check_base_url(char *v);
static const char *check_token_url(char *v);
static const char *check_mqtt_url(char *v);
static const char *check_topic(char *v);
static const char *check_unlock_code(char *v);

static const struct key oauth_keys[] = {
    KSTR("token_url", api.oauth.token_url, check_token_url),
    KSTR("client_id", api.oauth.client_id, NULL),
    KSTR("client_secret", api.oauth.client_secret, NULL),
    KFILE("client_secret_file", api.oauth.client_secret, "client_secret"),
    KSTR("refresh_token", api.oauth.refresh_token, NULL),
    KFILE("refresh_token_file", api.oauth.refresh_token, "refresh_token"),
    KEND
};

static const struct key api_keys[] = {
    KSTR("base_url", api.base_url, check_base_url),
    KSTR("token", api.token, NULL),
    KFILE("token_file", api.token, "token"),
    KINT("timeout_s", api.timeout_s, 1, 300),
    KINT("max_connections", api.max_connections, 1, 64),
    KSTR("device_id", api.device_id, check_nonempty),
    KSTR("device_type", api.device_type, check_nonempty),
    KLONG("max_body_bytes", api.max_body_bytes, 1024, 64L * 1024 * 1024),
    KINT("daily_limit", api.daily_limit, 0, 1000000),
    KINT("refresh_daily_limit", api.refresh_daily_limit, 0, 10000),
    KGROUP("oauth", oauth_keys),
    KEND
};

static const struct key tls_keys[] = {
    KSTR("ca_file", mqtt.ca_file, NULL),
    KSTR("cert_file", mqtt.cert_file, NULL),
    KSTR("key_file", mqtt.key_file, NULL),
    KBOOL("verify", mqtt.tls_verify),
    KEND
};

static const struct key mqtt_keys[] = {
    KSTR("url", mqtt.url, check_mqtt_url),
    KSTR("client_id", mqtt.client_id, check_nonempty),
    KSTR("username", mqtt.username, NULL),
    KSTR("password", mqtt.password, NULL),
    KFILE("password_file", mqtt.password, "password"),
    KSTR("base_topic", mqtt.base_topic, check_topic),
    KINT("qos", mqtt.qos, 0, 1),
    KINT("keepalive_s", mqtt.keepalive_s, 5, 3600),
    KBOOL("field_topics", mqtt.field_topics),
    KGROUP("tls", tls_keys),
    KEND
};

static const struct key trips_keys[] = {
    KINT("days", trips.days, 1, 365),
    KBOOL("include_route", trips.include_route),
    KEND
};

static const struct key ha_keys[] = {
    KBOOL("enabled", homeassistant.enabled),
    KSTR("discovery_prefix", homeassistant.discovery_prefix, check_topic),
    KEND
};

static const struct key commands_keys[] = {
    { .name = "allow", .kind = K_ALLOW, FIELD(commands.allow) },
    KSTR("unlock_code", commands.unlock_code, check_unlock_code),
    KINT("max_age_s", commands.max_age_s, 1, 3600),
    KINT("confirm_delay_s", commands.confirm_delay_s, 1, 600),
    KINT("confirm_attempts", commands.confirm_attempts, 1, 20),
    KEND
};

static const struct key root_keys[] = {
    KSTR("log_level", log_level, check_log_level),
    KSTR("state_file", state_file, NULL),
    KGROUP("api", api_keys),
    KGROUP("mqtt", mqtt_keys),
    { .name = "poll", .kind = K_POLL },
    KGROUP("trips", trips_keys),
    KGROUP("homeassistant", ha_keys),
    KGROUP("commands", commands_keys),
    KEND
};

#define POLL_MIN 10
#define POLL_MAX 604800

/* ---- public: defaults and command names ----------------------------------- */

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->log_level, sizeof(cfg->log_level), "info");
    cfg->api.timeout_s = 20;
    cfg->api.max_connections = 4;
    snprintf(cfg->api.device_id, sizeof(cfg->api.device_id), "toyota2mqtt");
    snprintf(cfg->api.device_type, sizeof(cfg->api.device_type), "bridge");
    cfg->api.max_body_bytes = 8L * 1024 * 1024;
    cfg->api.daily_limit = 0;
    cfg->api.refresh_daily_limit = 10;
    snprintf(cfg->mqtt.url, sizeof(cfg->mqtt.url), "tcp://127.0.0.1:1883");
    snprintf(cfg->mqtt.client_id, sizeof(cfg->mqtt.client_id), "toyota2mqtt");
    snprintf(cfg->mqtt.base_topic, sizeof(cfg->mqtt.base_topic), "toyota2mqtt");
    cfg->mqtt.qos = 1;
    cfg->mqtt.keepalive_s = 60;
    cfg->mqtt.field_topics = true;
    cfg->mqtt.tls_verify = true;
    cfg->poll.vehicles = 3600;
    for (int r = 0; r < RES_COUNT; r++)
        cfg->poll.interval[r] = resource_get((enum resource)r)->default_interval_s;
    cfg->trips.days = 7;
    cfg->trips.include_route = false;
    cfg->homeassistant.enabled = true;
    snprintf(cfg->homeassistant.discovery_prefix, sizeof(cfg->homeassistant.discovery_prefix),
             "homeassistant");
    cfg->commands.allow = ((1u << CMD_COUNT) - 1) &
        ~((1u << CMD_UNLOCK) | (1u << CMD_TRUNK_OPEN) | (1u << CMD_PANIC_ON));
    cfg->commands.max_age_s = 60;
    cfg->commands.confirm_delay_s = 10;
    cfg->commands.confirm_attempts = 4;
}

int config_command_from_name(const char *name)
{
    for (int i = 0; name && i < CMD_COUNT; i++)
        if (strcmp(name, command_names[i]) == 0) return i;
    return -1;
}

const char *config_command_name(enum command_id id)
{
    return ((unsigned)id < CMD_COUNT) ? command_names[id] : NULL;
}

/* ---- string checks ---------------------------------------------------------- */

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

static bool has_space(const char *s)
{
    for (; *s; s++)
        if (isspace((unsigned char)*s)) return true;
    return false;
}

static const char *check_nonempty(char *v)
{
    return *v ? NULL : "must not be empty";
}

static const char *check_log_level(char *v)
{
    return log_level_parse(v) >= 0 ? NULL : "must be one of error, warn, info, debug";
}

/* http(s)://host... with no spaces; trailing slashes are dropped so callers
 * can append "/vehicles". */
static const char *check_http_url(char *v)
{
    const char *why = "must start with http:// or https:// and name a host";
    size_t skip;
    if (strncmp(v, "https://", 8) == 0) skip = 8;
    else if (strncmp(v, "http://", 7) == 0) skip = 7;
    else return why;
    size_t n = strlen(v);
    while (n > skip && v[n - 1] == '/') v[--n] = '\0';
    if (n == skip || v[skip] == '/' || has_space(v)) return why;
    return NULL;
}

static const char *check_base_url(char *v)
{
    return check_http_url(v);
}

/* "" means "no OAuth" and is fine. */
static const char *check_token_url(char *v)
{
    return *v ? check_http_url(v) : NULL;
}

static const char *const tls_schemes[] = { "ssl://", "mqtts://", "wss://", NULL };
static const char *const plain_schemes[] = { "tcp://", "mqtt://", "ws://", NULL };

/* Length of the scheme prefix v starts with from list, or 0. */
static size_t scheme_len(const char *v, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strncmp(v, list[i], strlen(list[i])) == 0) return strlen(list[i]);
    return 0;
}

static bool mqtt_url_is_tls(const char *v)
{
    return scheme_len(v, tls_schemes) > 0;
}

static const char *check_mqtt_url(char *v)
{
    size_t skip = scheme_len(v, tls_schemes);
    if (!skip) skip = scheme_len(v, plain_schemes);
    if (!skip || v[skip] == '\0' || v[skip] == '/' || has_space(v))
        return "must be tcp://, ssl://, mqtt://, mqtts://, ws:// or wss:// followed by host[:port]";
    return NULL;
}

/* An MQTT topic prefix we publish below: no wildcards and no empty levels. */
static const char *check_topic(char *v)
{
    if (!*v) return "must not be empty";
    if (strchr(v, '+') || strchr(v, '#')) return "must not contain '+' or '#'";
    size_t n = strlen(v);
    if (v[0] == '/' || v[n - 1] == '/') return "must not start or end with '/'";
    if (strstr(v, "//")) return "must not contain an empty level ('//')";
    return NULL;
}

static const char *check_unlock_code(char *v)
{
    size_t n = strlen(v);
    if (n == 0) return NULL;
    if (n < 4 || n > 32) return "must be 4 to 32 letters or digits";
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i])) return "must be 4 to 32 letters or digits";
    return NULL;
}

/* ---- parse context and errors ---------------------------------------------- */

struct parse {
    struct config *cfg;
    config_t *lc;
    const char *file;
    char *err;
    size_t errlen;
};

/* Replaces control characters so err is always exactly one line. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

/* Writes "FILE:LINE: message" (or "FILE: message" when line is 0) to err. */
static void set_err(char *err, size_t errlen, const char *file, unsigned line,
                    const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void set_err(char *err, size_t errlen, const char *file, unsigned line,
                    const char *fmt, va_list ap)
{
    if (!err || errlen == 0) return;
    int n = line ? snprintf(err, errlen, "%s:%u: ", file, line)
                 : snprintf(err, errlen, "%s: ", file);
    if (n >= 0 && (size_t)n < errlen) vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    one_line(err);
}

static int fail(struct parse *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parse *p, unsigned line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_err(p->err, p->errlen, p->file, line, fmt, ap);
    va_end(ap);
    return -1;
}

static void key_path(char *dst, size_t n, const char *prefix, const char *name)
{
    if (*prefix) snprintf(dst, n, "%s.%.64s", prefix, name);
    else snprintf(dst, n, "%.64s", name);
}

static unsigned line_of(const config_setting_t *s)
{
    return s ? config_setting_source_line(s) : 0;
}

static unsigned lookup_line(struct parse *p, const char *path)
{
    return line_of(config_lookup(p->lc, path));
}

static void *field(struct parse *p, const struct key *k)
{
    return (char *)p->cfg + k->off;
}

/* Copies a string value into dst[size] unless it is too long or holds
 * control characters (a CR/LF in a token would split an HTTP header). */
static int copy_value(struct parse *p, unsigned line, const char *path,
                      char *dst, size_t size, const char *v)
{
    if (strlen(v) >= size)
        return fail(p, line, "%s: too long (at most %zu characters)", path, size - 1);
    if (has_ctl(v))
        return fail(p, line, "%s: must not contain control characters", path);
    snprintf(dst, size, "%s", v);
    return 0;
}

/* ---- secrets from files ------------------------------------------------------ */

/* Reads the first line of the regular file path into dst[size] without its
 * line ending. Returns NULL, or why it failed (errno text or a reason). Only
 * regular files are opened, non-blocking, so a FIFO or device cannot hang us. */
static const char *read_first_line(const char *path, char *dst, size_t size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return strerror(errno);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return strerror(e);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return "not a regular file";
    }
    size_t n = 0;
    const char *why = NULL;
    while (n < size) {
        ssize_t got = read(fd, dst + n, size - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) { why = strerror(errno); break; }
        if (got == 0) break;
        if (memchr(dst + n, '\n', (size_t)got)) { n += (size_t)got; break; }
        n += (size_t)got;
    }
    close(fd);
    if (why) { dst[0] = '\0'; return why; }
    char *nl = memchr(dst, '\n', n);
    size_t len = nl ? (size_t)(nl - dst) : n;
    if (len > 0 && dst[len - 1] == '\r') len--;
    if (len >= size || (!nl && n == size)) { dst[0] = '\0'; return "first line too long"; }
    dst[len] = '\0';
    if (memchr(dst, '\0', len)) { dst[0] = '\0'; return "contains a NUL byte"; }
    if (len == 0) return "first line is empty";
    if (has_ctl(dst)) { dst[0] = '\0'; return "contains control characters"; }
    return NULL;
}

/* ---- values ------------------------------------------------------------------ */

/* The setting as a whole number whatever libconfig made of it: int, 64-bit
 * int, or a float with no fractional part ("20.0"). */
static bool get_whole(const config_setting_t *s, long long *out)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
        *out = config_setting_get_int(s);
        return true;
    case CONFIG_TYPE_INT64:
        *out = config_setting_get_int64(s);
        return true;
    case CONFIG_TYPE_FLOAT: {
        double d = config_setting_get_float(s);
        if (!isfinite(d) || d != floor(d) || d < -9.0e18 || d > 9.0e18) return false;
        *out = (long long)d;
        return true;
    }
    default:
        return false;
    }
}

static int set_number(struct parse *p, const config_setting_t *s, const struct key *k,
                      const char *path, long long lo, long long hi, bool zero_ok, void *dst)
{
    long long v;
    if (!get_whole(s, &v) || ((v < lo || v > hi) && !(zero_ok && v == 0)))
        return fail(p, line_of(s), "%s: must be an integer between %lld and %lld%s",
                    path, lo, hi, zero_ok ? " (or 0 to disable)" : "");
    if (k && k->kind == K_LONG) {
        long l = (long)v;
        memcpy(dst, &l, sizeof(l));
    } else {
        int i = (int)v;
        memcpy(dst, &i, sizeof(i));
    }
    return 0;
}

static int set_string(struct parse *p, const config_setting_t *s, const struct key *k,
                      const char *path)
{
    const char *v = config_setting_get_string(s);
    if (config_setting_type(s) != CONFIG_TYPE_STRING || !v)
        return fail(p, line_of(s), "%s: must be a string", path);
    char *dst = field(p, k);
    if (copy_value(p, line_of(s), path, dst, k->size, v) < 0) return -1;
    const char *why = k->check ? k->check(dst) : NULL;
    if (why) return fail(p, line_of(s), "%s: %s", path, why);
    return 0;
}

static int set_file(struct parse *p, const config_setting_t *s, const struct key *k,
                    const char *prefix, const char *path)
{
    char other[KEY_PATH];
    key_path(other, sizeof(other), prefix, k->pair);
    if (config_setting_get_member(config_setting_parent(s), k->pair))
        return fail(p, line_of(s), "%s: cannot be combined with %s", path, other);
    const char *name = config_setting_get_string(s);
    if (config_setting_type(s) != CONFIG_TYPE_STRING || !name)
        return fail(p, line_of(s), "%s: must be a string", path);
    if (!*name) return fail(p, line_of(s), "%s: must not be empty", path);
    const char *why = read_first_line(name, field(p, k), k->size);
    if (why) return fail(p, line_of(s), "%s: cannot read '%.200s': %s", path, name, why);
    return 0;
}

static int set_bool(struct parse *p, const config_setting_t *s, const struct key *k,
                    const char *path)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return fail(p, line_of(s), "%s: must be true or false", path);
    bool b = config_setting_get_bool(s) != 0;
    memcpy(field(p, k), &b, sizeof(b));
    return 0;
}

/* commands.allow = ["lock", "horn"] (or a list) -> bits. */
static int set_allow(struct parse *p, const config_setting_t *s, const struct key *k,
                     const char *path)
{
    if (!config_setting_is_array(s) && !config_setting_is_list(s))
        return fail(p, line_of(s), "%s: must be a list of command names, e.g. [\"lock\", \"horn\"]",
                    path);
    unsigned bits = 0;
    for (int i = 0; i < config_setting_length(s); i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *name = e ? config_setting_get_string(e) : NULL;
        if (!e || config_setting_type(e) != CONFIG_TYPE_STRING || !name)
            return fail(p, line_of(e ? e : s), "%s: must be a list of command names", path);
        int id = config_command_from_name(name);
        if (id < 0)
            return fail(p, line_of(e), "%s: unknown command '%.40s' (known: lock, unlock, "
                        "horn, lights, panic_on, panic_off, trunk_open, climate_start, "
                        "climate_stop, climate_settings, refresh_status, refresh_electric, "
                        "set_alias)", path, name);
        bits |= 1u << id;
    }
    memcpy(field(p, k), &bits, sizeof(bits));
    return 0;
}

static int walk_group(struct parse *p, const config_setting_t *grp, const struct key *keys,
                      const char *prefix);

/* poll { vehicles = N; <resource name> = N; ... } */
static int walk_poll(struct parse *p, const config_setting_t *grp)
{
    for (int i = 0; i < config_setting_length(grp); i++) {
        const config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
        char path[KEY_PATH];
        key_path(path, sizeof(path), "poll", config_setting_name(s));
        int r = resource_from_name(config_setting_name(s));
        if (strcmp(config_setting_name(s), "vehicles") == 0) {
            if (set_number(p, s, NULL, path, POLL_MIN, POLL_MAX, false,
                           &p->cfg->poll.vehicles) < 0)
                return -1;
        } else if (r >= 0) {
            if (set_number(p, s, NULL, path, POLL_MIN, POLL_MAX, true,
                           &p->cfg->poll.interval[r]) < 0)
                return -1;
        } else {
            return fail(p, line_of(s), "unknown key '%s'", path);
        }
    }
    return 0;
}

static int apply_key(struct parse *p, const config_setting_t *s, const struct key *k,
                     const char *prefix, const char *path)
{
    switch (k->kind) {
    case K_GROUP:
    case K_POLL:
        if (!config_setting_is_group(s))
            return fail(p, line_of(s), "%s: must be a group { ... }", path);
        return k->kind == K_POLL ? walk_poll(p, s) : walk_group(p, s, k->sub, path);
    case K_STR:
        return set_string(p, s, k, path);
    case K_FILE:
        return set_file(p, s, k, prefix, path);
    case K_INT:
    case K_LONG:
        return set_number(p, s, k, path, k->lo, k->hi, k->zero_ok, field(p, k));
    case K_BOOL:
        return set_bool(p, s, k, path);
    case K_ALLOW:
        return set_allow(p, s, k, path);
    }
    return fail(p, line_of(s), "%s: internal error", path);
}

/* Applies every member of grp; a name not in keys is an error. */
static int walk_group(struct parse *p, const config_setting_t *grp, const struct key *keys,
                      const char *prefix)
{
    for (int i = 0; i < config_setting_length(grp); i++) {
        const config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
        const char *name = config_setting_name(s);
        char path[KEY_PATH];
        key_path(path, sizeof(path), prefix, name ? name : "?");
        const struct key *k = keys;
        while (k->name && (!name || strcmp(k->name, name) != 0)) k++;
        if (!k->name) return fail(p, line_of(s), "unknown key '%s'", path);
        if (apply_key(p, s, k, prefix, path) < 0) return -1;
    }
    return 0;
}

/* ---- environment and cross-key rules ---------------------------------------- */

static int apply_env(struct parse *p)
{
    static const struct { const char *var; size_t off, size; } envs[] = {
        { "TOYOTA2MQTT_API_TOKEN", FIELD(api.token) },
        { "TOYOTA2MQTT_API_OAUTH_CLIENT_SECRET", FIELD(api.oauth.client_secret) },
        { "TOYOTA2MQTT_API_OAUTH_REFRESH_TOKEN", FIELD(api.oauth.refresh_token) },
        { "TOYOTA2MQTT_MQTT_PASSWORD", FIELD(mqtt.password) },
    };
    for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
        const char *v = getenv(envs[i].var);
        if (!v || !*v) continue;
        if (copy_value(p, 0, envs[i].var, (char *)p->cfg + envs[i].off, envs[i].size, v) < 0)
            return -1;
    }
    return 0;
}

/* OAuth pieces in the file without a token_url are a mistake, not a mode. */
static int check_oauth_pieces(struct parse *p)
{
    const struct config *c = p->cfg;
    if (c->api.oauth.token_url[0]) return 0;
    if (c->api.oauth.client_id[0] || c->api.oauth.client_secret[0] ||
        c->api.oauth.refresh_token[0])
        return fail(p, lookup_line(p, "api.oauth"),
                    "api.oauth.token_url: is required when api.oauth is used");
    return 0;
}

static int check_api(struct parse *p)
{
    const struct config *c = p->cfg;
    unsigned api_line = lookup_line(p, "api");
    if (!c->api.base_url[0])
        return fail(p, api_line, "api.base_url: is required");
    if (c->api.oauth.token_url[0]) {
        unsigned oline = lookup_line(p, "api.oauth");
        if (!c->api.oauth.client_id[0])
            return fail(p, oline, "api.oauth.client_id: is required with api.oauth.token_url");
        if (!c->api.oauth.refresh_token[0])
            return fail(p, oline, "api.oauth.refresh_token (or api.oauth.refresh_token_file, "
                        "TOYOTA2MQTT_API_OAUTH_REFRESH_TOKEN) is required with "
                        "api.oauth.token_url");
    } else if (!c->api.token[0]) {
        return fail(p, api_line, "api.token (or api.token_file, TOYOTA2MQTT_API_TOKEN, "
                    "or api.oauth) is required");
    }
    return 0;
}

static int check_mqtt(struct parse *p)
{
    const struct config *c = p->cfg;
    if (c->mqtt.password[0] && !c->mqtt.username[0])
        return fail(p, lookup_line(p, "mqtt"), "mqtt.password: requires mqtt.username");
    const config_setting_t *tls = config_lookup(p->lc, "mqtt.tls");
    bool tls_set = (tls && config_setting_length(tls) > 0) || c->mqtt.ca_file[0] ||
                   c->mqtt.cert_file[0] || c->mqtt.key_file[0];
    if (tls_set && !mqtt_url_is_tls(c->mqtt.url))
        return fail(p, line_of(tls), "mqtt.tls: needs an ssl://, mqtts:// or wss:// mqtt.url");
    bool has_cert = c->mqtt.cert_file[0] != '\0', has_key = c->mqtt.key_file[0] != '\0';
    if (has_cert != has_key)
        return fail(p, line_of(tls), "mqtt.tls: cert_file and key_file must be set together");
    return 0;
}

/* ---- libconfig 1.5 input fixes ---------------------------------------------- */

/* The previous token, as far as it decides whether a string may follow. */
enum scan_tok { T_NONE, T_ASSIGN, T_COMMA, T_OPEN, T_STRING, T_OTHER };

struct scan {
    const char *in;
    size_t len, i;
    char *out;            /* the rewritten text */
    size_t o;
    unsigned line;
    char *nest;           /* open brackets '{', '[', '(' (len bytes) */
    size_t depth;
    enum scan_tok prev;
    unsigned bad_line;    /* where the text must not reach libconfig, and why */
    const char *why;
};

static void scan_flag(struct scan *sc, unsigned line, const char *why)
{
    if (!sc->why) {
        sc->why = why;
        sc->bad_line = line;
    }
}

static void scan_copy(struct scan *sc, size_t n)
{
    for (size_t k = 0; k < n && sc->i < sc->len; k++) {
        if (sc->in[sc->i] == '\n') sc->line++;
        sc->out[sc->o++] = sc->in[sc->i++];
    }
}

static bool scan_is(const struct scan *sc, size_t at, const char *set)
{
    return at < sc->len && sc->in[at] && strchr(set, sc->in[at]) != NULL;
}

static bool scan_digit(const struct scan *sc, size_t at)
{
    return at < sc->len && isdigit((unsigned char)sc->in[at]);
}

/* Length of [eE][-+]?[0-9]+ at at, or 0. */
static size_t scan_exponent(const struct scan *sc, size_t at)
{
    size_t j = at;
    if (!scan_is(sc, j, "eE")) return 0;
    j++;
    if (scan_is(sc, j, "+-")) j++;
    if (!scan_digit(sc, j)) return 0;
    while (scan_digit(sc, j)) j++;
    return j - at;
}

/* Copies an integer's digits (from, to) and its L suffix; when there is none
 * and more than max significant digits, adds one so that libconfig 1.5 reads
 * a 64-bit value instead of silently truncating to int. */
static void scan_integer(struct scan *sc, size_t from, size_t to, size_t max)
{
    size_t z = from;
    while (z < to && sc->in[z] == '0') z++;
    scan_copy(sc, to - sc->i);
    if (scan_is(sc, sc->i, "L")) {
        scan_copy(sc, scan_is(sc, sc->i + 1, "L") ? 2 : 1);
    } else if (to - z > max) {
        sc->out[sc->o++] = 'L';
    }
}

/* One number-like token at sc->i, tokenised as libconfig's flex rules do
 * (integer, integer64, hex, hex64, float by longest match). */
static void scan_number(struct scan *sc)
{
    size_t j = sc->i;
    if (scan_is(sc, j, "+-")) j++;
    size_t ds = j;
    while (scan_digit(sc, j)) j++;
    if (j == sc->i + 1 && sc->in[sc->i] == '0' && scan_is(sc, j, "xX") &&
        j + 1 < sc->len && isxdigit((unsigned char)sc->in[j + 1])) {
        size_t hs = j + 1, he = hs;
        while (he < sc->len && isxdigit((unsigned char)sc->in[he])) he++;
        scan_integer(sc, hs, he, 8);
        return;
    }
    if (scan_is(sc, j, ".")) {
        j++;
        while (scan_digit(sc, j)) j++;
        j += scan_exponent(sc, j);
        scan_copy(sc, j - sc->i);
        return;
    }
    if (j == ds) {              /* a lone sign */
        scan_copy(sc, 1);
        return;
    }
    size_t e = scan_exponent(sc, j);
    if (e) {
        scan_copy(sc, j + e - sc->i);
        return;
    }
    scan_integer(sc, ds, j, 9);
}

/* Copies a "..." string (sc->i at the opening quote) as libconfig scans it:
 * only \\ and \" are escapes that could hide a quote. Returns false when
 * the text ends inside it. */
static bool scan_string(struct scan *sc)
{
    scan_copy(sc, 1);
    while (sc->i < sc->len && sc->in[sc->i] != '"')
        scan_copy(sc, (sc->in[sc->i] == '\\' && scan_is(sc, sc->i + 1, "\\\"")) ? 2 : 1);
    if (sc->i >= sc->len) return false;
    scan_copy(sc, 1);
    return true;
}

/* Whether a string may come next. libconfig 1.5 leaks a string that is the
 * lookahead token of a syntax error ("x" = 1;  a = 1, "x"), so those syntax
 * errors are reported here instead. */
static bool scan_string_ok(const struct scan *sc)
{
    switch (sc->prev) {
    case T_ASSIGN:
    case T_OPEN:
    case T_STRING:
        return true;
    case T_COMMA:
        return sc->depth > 0 && sc->nest[sc->depth - 1] != '{';
    default:
        return false;
    }
}

static void scan_punct(struct scan *sc, char c)
{
    if (c == '=' || c == ':') {
        sc->prev = T_ASSIGN;
    } else if (c == ',') {
        sc->prev = T_COMMA;
    } else if (c == '[' || c == '(' || c == '{') {
        sc->nest[sc->depth++] = c;
        sc->prev = c == '{' ? T_OTHER : T_OPEN;
    } else if (c == ']' || c == ')' || c == '}') {
        if (sc->depth) sc->depth--;
        sc->prev = T_OTHER;
    } else if (!strchr(" \t\r\n\f", c)) {
        sc->prev = T_OTHER;
    }
    scan_copy(sc, 1);
}

/* One token (or comment) at sc->i. */
static void scan_token(struct scan *sc)
{
    const char *t = sc->in + sc->i;
    size_t left = sc->len - sc->i;
    if (t[0] == '/' && left > 1 && t[1] == '*') {
        scan_copy(sc, 2);
        while (sc->i < sc->len && !(sc->in[sc->i] == '*' && scan_is(sc, sc->i + 1, "/")))
            scan_copy(sc, 1);
        scan_copy(sc, 2);
    } else if (t[0] == '#' || (t[0] == '/' && left > 1 && t[1] == '/')) {
        while (sc->i < sc->len && sc->in[sc->i] != '\n') scan_copy(sc, 1);
    } else if (t[0] == '"') {
        unsigned line = sc->line;
        if (!scan_string_ok(sc)) scan_flag(sc, line, "syntax error");
        else if (!scan_string(sc)) scan_flag(sc, line, "unterminated string");
        sc->prev = T_STRING;
    } else if (left >= 8 && strncmp(t, "@include", 8) == 0) {
        scan_flag(sc, sc->line, "@include is not supported");
    } else if (isalpha((unsigned char)t[0]) || t[0] == '*') {
        do scan_copy(sc, 1);
        while (sc->i < sc->len && (isalnum((unsigned char)sc->in[sc->i]) ||
                                   scan_is(sc, sc->i, "-_*")));
        sc->prev = T_OTHER;
    } else if (isdigit((unsigned char)t[0]) || strchr("+-.", t[0])) {
        scan_number(sc);
        sc->prev = T_OTHER;
    } else {
        scan_punct(sc, t[0]);
    }
}

/* Returns a malloc'd copy of text (the caller frees it) fixed up for libconfig
 * 1.5: integers too long for an int get an 'L' (1.5 truncates them silently,
 * so "poll.status = 4294967306" would read as 10), and a newline is appended
 * (1.5 rejects a final "# comment" without one). Text libconfig must not see
 * sets *bad_line and *why: an @include (it would read other files), an
 * unterminated string or a misplaced one (1.5 leaks them). NULL when out of
 * memory. */
static char *prescan(const char *text, size_t len, unsigned *bad_line, const char **why)
{
    struct scan sc = { .in = text, .len = len, .line = 1, .prev = T_NONE };
    sc.out = malloc(len + len / 2 + 2);
    sc.nest = malloc(len + 1);
    if (!sc.out || !sc.nest) {
        free(sc.out);
        free(sc.nest);
        return NULL;
    }
    while (sc.i < len && !sc.why) scan_token(&sc);
    free(sc.nest);
    sc.out[sc.o++] = '\n';
    sc.out[sc.o] = '\0';
    *bad_line = sc.bad_line;
    *why = sc.why;
    return sc.out;
}

/* ---- public: parse and load ---------------------------------------------------- */

static int parse_tree(struct parse *p)
{
    if (walk_group(p, config_root_setting(p->lc), root_keys, "") < 0) return -1;
    if (check_oauth_pieces(p) < 0) return -1;
    if (apply_env(p) < 0) return -1;
    if (check_api(p) < 0) return -1;
    return check_mqtt(p);
}

int config_parse_string(struct config *cfg, const char *text, const char *filename,
                        char *err, size_t errlen)
{
    struct parse p = { .cfg = cfg, .file = filename ? filename : "(config)",
                       .err = err, .errlen = errlen };
    if (err && errlen) err[0] = '\0';
    if (!text) return fail(&p, 0, "no configuration text");
    size_t len = strnlen(text, CONFIG_MAX_TEXT + 1);
    if (len > CONFIG_MAX_TEXT)
        return fail(&p, 0, "too large (at most %d bytes)", CONFIG_MAX_TEXT);
    if (strlen(p.file) >= sizeof(cfg->path))
        return fail(&p, 0, "file name too long");
    snprintf(cfg->path, sizeof(cfg->path), "%s", p.file);

    unsigned bad_line;
    const char *why;
    char *fixed = prescan(text, len, &bad_line, &why);
    if (!fixed) return fail(&p, 0, "out of memory");
    if (why) {
        explicit_bzero(fixed, strlen(fixed));
        free(fixed);
        return fail(&p, bad_line, "%s", why);
    }
    config_t lc;
    config_init(&lc);
    p.lc = &lc;
    int rc;
    if (config_read_string(&lc, fixed) != CONFIG_TRUE) {
        const char *text_err = config_error_text(&lc);
        int line = config_error_line(&lc);
        rc = fail(&p, line > 0 ? (unsigned)line : 0, "%s", text_err ? text_err : "syntax error");
    } else {
        rc = parse_tree(&p);
    }
    config_destroy(&lc);
    explicit_bzero(fixed, strlen(fixed));
    free(fixed);
    return rc;
}

/* Reads all of path (at most CONFIG_MAX_TEXT bytes) into a malloc'd,
 * NUL-terminated buffer the caller frees; NULL with errno set on failure
 * (EFBIG when too large, EINVAL when it holds a NUL byte). */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = malloc(CONFIG_MAX_TEXT + 2);
    if (!buf) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    size_t n = fread(buf, 1, CONFIG_MAX_TEXT + 1, f);
    int e = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (!e && n > CONFIG_MAX_TEXT) e = EFBIG;
    if (!e && memchr(buf, '\0', n)) e = EINVAL;
    if (e) {
        explicit_bzero(buf, n);
        free(buf);
        errno = e;
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    config_defaults(cfg);
    char *text = read_text(path);
    if (!text) {
        int e = errno;
        struct parse p = { .file = path, .err = err, .errlen = errlen };
        if (e == EFBIG) return fail(&p, 0, "too large (at most %d bytes)", CONFIG_MAX_TEXT);
        if (e == EINVAL) return fail(&p, 0, "contains a NUL byte");
        return fail(&p, 0, "cannot read: %s", strerror(e));
    }
    int rc = config_parse_string(cfg, text, path, err, errlen);
    explicit_bzero(text, strlen(text));
    free(text);
    return rc;
}

/* ---- public: JSON ------------------------------------------------------------- */

/* Adds the non-secret members; returns false when any allocation failed. */
static bool json_api(cJSON *root, const struct config *c)
{
    cJSON *api = cJSON_AddObjectToObject(root, "api");
    if (!api) return false;
    cJSON *oauth = cJSON_AddObjectToObject(api, "oauth");
    return oauth &&
        cJSON_AddStringToObject(api, "base_url", c->api.base_url) &&
        cJSON_AddBoolToObject(api, "token_set", c->api.token[0] != '\0') &&
        cJSON_AddNumberToObject(api, "timeout_s", c->api.timeout_s) &&
        cJSON_AddNumberToObject(api, "max_connections", c->api.max_connections) &&
        cJSON_AddStringToObject(api, "device_id", c->api.device_id) &&
        cJSON_AddStringToObject(api, "device_type", c->api.device_type) &&
        cJSON_AddNumberToObject(api, "max_body_bytes", (double)c->api.max_body_bytes) &&
        cJSON_AddNumberToObject(api, "daily_limit", c->api.daily_limit) &&
        cJSON_AddNumberToObject(api, "refresh_daily_limit", c->api.refresh_daily_limit) &&
        cJSON_AddStringToObject(oauth, "token_url", c->api.oauth.token_url) &&
        cJSON_AddStringToObject(oauth, "client_id", c->api.oauth.client_id) &&
        cJSON_AddBoolToObject(oauth, "client_secret_set", c->api.oauth.client_secret[0] != '\0') &&
        cJSON_AddBoolToObject(oauth, "refresh_token_set", c->api.oauth.refresh_token[0] != '\0');
}

static bool json_mqtt(cJSON *root, const struct config *c)
{
    cJSON *m = cJSON_AddObjectToObject(root, "mqtt");
    if (!m) return false;
    cJSON *tls = cJSON_AddObjectToObject(m, "tls");
    return tls &&
        cJSON_AddStringToObject(m, "url", c->mqtt.url) &&
        cJSON_AddStringToObject(m, "client_id", c->mqtt.client_id) &&
        cJSON_AddStringToObject(m, "username", c->mqtt.username) &&
        cJSON_AddBoolToObject(m, "password_set", c->mqtt.password[0] != '\0') &&
        cJSON_AddStringToObject(m, "base_topic", c->mqtt.base_topic) &&
        cJSON_AddNumberToObject(m, "qos", c->mqtt.qos) &&
        cJSON_AddNumberToObject(m, "keepalive_s", c->mqtt.keepalive_s) &&
        cJSON_AddBoolToObject(m, "field_topics", c->mqtt.field_topics) &&
        cJSON_AddStringToObject(tls, "ca_file", c->mqtt.ca_file) &&
        cJSON_AddStringToObject(tls, "cert_file", c->mqtt.cert_file) &&
        cJSON_AddStringToObject(tls, "key_file", c->mqtt.key_file) &&
        cJSON_AddBoolToObject(tls, "verify", c->mqtt.tls_verify);
}

static bool json_rest(cJSON *root, const struct config *c)
{
    cJSON *poll = cJSON_AddObjectToObject(root, "poll");
    if (!poll || !cJSON_AddNumberToObject(poll, "vehicles", c->poll.vehicles)) return false;
    for (int r = 0; r < RES_COUNT; r++)
        if (!cJSON_AddNumberToObject(poll, resource_get((enum resource)r)->name,
                                     c->poll.interval[r]))
            return false;
    cJSON *trips = cJSON_AddObjectToObject(root, "trips");
    cJSON *ha = cJSON_AddObjectToObject(root, "homeassistant");
    cJSON *cmd = cJSON_AddObjectToObject(root, "commands");
    cJSON *allow = cmd ? cJSON_AddArrayToObject(cmd, "allow") : NULL;
    if (!trips || !ha || !allow) return false;
    for (int i = 0; i < CMD_COUNT; i++) {
        if (!(c->commands.allow & (1u << i))) continue;
        cJSON *s = cJSON_CreateString(command_names[i]);
        if (!s) return false;
        if (!cJSON_AddItemToArray(allow, s)) {
            cJSON_Delete(s);
            return false;
        }
    }
    return cJSON_AddNumberToObject(trips, "days", c->trips.days) &&
        cJSON_AddBoolToObject(trips, "include_route", c->trips.include_route) &&
        cJSON_AddBoolToObject(ha, "enabled", c->homeassistant.enabled) &&
        cJSON_AddStringToObject(ha, "discovery_prefix", c->homeassistant.discovery_prefix) &&
        cJSON_AddBoolToObject(cmd, "unlock_code_set", c->commands.unlock_code[0] != '\0') &&
        cJSON_AddNumberToObject(cmd, "max_age_s", c->commands.max_age_s) &&
        cJSON_AddNumberToObject(cmd, "confirm_delay_s", c->commands.confirm_delay_s) &&
        cJSON_AddNumberToObject(cmd, "confirm_attempts", c->commands.confirm_attempts);
}

/* Returns a malloc'd JSON string the caller frees, or NULL when out of memory. */
char *config_to_json(const struct config *cfg)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    char *out = NULL;
    if (cJSON_AddStringToObject(root, "path", cfg->path) &&
        cJSON_AddStringToObject(root, "log_level", cfg->log_level) &&
        cJSON_AddStringToObject(root, "state_file", cfg->state_file) &&
        json_api(root, cfg) && json_mqtt(root, cfg) && json_rest(root, cfg))
        out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}
