/* state.c - the state file; see state.h. */
#include "state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "log.h"

#define COUNT_MAX 1000000000L                /* a counter above this is corrupt */
#define EXPIRES_MAX 253402300799LL           /* 9999-12-31T23:59:59Z */

/* ---- validation ---------------------------------------------------------- */

static bool vin_ok(const char *vin)
{
    if (!vin) return false;
    size_t n = 0;
    for (; vin[n]; n++) {
        char c = vin[n];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum || n >= STATE_VIN_MAX) return false;
    }
    return n > 0;
}

static bool id_ok(const char *id)
{
    return id && id[0] && strnlen(id, STATE_ID_MAX) < STATE_ID_MAX;
}

/* "YYYY-MM-DD" with a plausible month and day: dates compare as strings. */
static bool date_ok(const char *d)
{
    if (!d || strnlen(d, 11) != 10) return false;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (d[i] != '-') return false;
        } else if (d[i] < '0' || d[i] > '9') {
            return false;
        }
    }
    int month = (d[5] - '0') * 10 + (d[6] - '0');
    int day = (d[8] - '0') * 10 + (d[9] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

static bool token_fits(const char *t)
{
    return !t || strnlen(t, STATE_TOKEN_MAX) < STATE_TOKEN_MAX;
}

/* ---- vehicles ------------------------------------------------------------ */

static struct state_vehicle *find_vehicle(const struct state *st, const char *vin)
{
    if (!vin) return NULL;
    for (size_t i = 0; i < st->vehicle_count; i++)
        if (strcmp(st->vehicles[i].vin, vin) == 0) return &st->vehicles[i];
    return NULL;
}

/* Finds vin or appends it (growing the array geometrically). NULL when vin is
 * invalid, STATE_VEHICLES_MAX is reached, or memory ran out. */
static struct state_vehicle *get_vehicle(struct state *st, const char *vin)
{
    if (!vin_ok(vin)) return NULL;
    struct state_vehicle *v = find_vehicle(st, vin);
    if (v) return v;
    if (st->vehicle_count >= STATE_VEHICLES_MAX) return NULL;
    if (st->vehicle_count == st->vehicle_cap) {
        size_t cap = st->vehicle_cap ? st->vehicle_cap * 2 : 4;
        if (cap > STATE_VEHICLES_MAX) cap = STATE_VEHICLES_MAX;
        struct state_vehicle *nv = realloc(st->vehicles, cap * sizeof *nv);
        if (!nv) return NULL;
        st->vehicles = nv;
        st->vehicle_cap = cap;
    }
    v = &st->vehicles[st->vehicle_count++];
    memset(v, 0, sizeof *v);
    snprintf(v->vin, sizeof v->vin, "%s", vin);
    return v;
}

static void vehicle_free(struct state_vehicle *v)
{
    if (v->seen) {
        for (size_t i = 0; i < v->seen_count; i++)
            free(v->seen[(v->seen_head + i) % STATE_SEEN_MAX]);
        free(v->seen);
    }
    memset(v, 0, sizeof *v);
}

static bool vehicle_seen_has(const struct state_vehicle *v, const char *id)
{
    for (size_t i = 0; i < v->seen_count; i++)
        if (strcmp(v->seen[(v->seen_head + i) % STATE_SEEN_MAX], id) == 0) return true;
    return false;
}

/* Appends id as the newest; when the ring is full the oldest id goes. */
static int vehicle_seen_push(struct state_vehicle *v, const char *id)
{
    if (!v->seen) {
        v->seen = calloc(STATE_SEEN_MAX, sizeof *v->seen);
        if (!v->seen) return -1;
    }
    char *copy = strdup(id);
    if (!copy) return -1;
    if (v->seen_count < STATE_SEEN_MAX) {
        v->seen[(v->seen_head + v->seen_count) % STATE_SEEN_MAX] = copy;
        v->seen_count++;
    } else {
        free(v->seen[v->seen_head]);
        v->seen[v->seen_head] = copy;
        v->seen_head = (v->seen_head + 1) % STATE_SEEN_MAX;
    }
    return 0;
}

static struct state_day *vehicle_day(struct state_vehicle *v, const char *date)
{
    for (size_t i = 0; i < v->day_count; i++)
        if (strcmp(v->days[i].date, date) == 0) return &v->days[i];
    return NULL;
}

/* The slot for date, made when missing. When all STATE_CALL_DAYS slots are in
 * use the oldest date makes room; NULL when date is older than all of them
 * (counting a day we would drop at once is pointless). */
static struct state_day *vehicle_day_slot(struct state_vehicle *v, const char *date)
{
    struct state_day *d = vehicle_day(v, date);
    if (d) return d;
    if (v->day_count < STATE_CALL_DAYS) {
        d = &v->days[v->day_count++];
    } else {
        d = &v->days[0];
        for (size_t i = 1; i < v->day_count; i++)
            if (strcmp(v->days[i].date, d->date) < 0) d = &v->days[i];
        if (strcmp(date, d->date) < 0) return NULL;
    }
    memset(d, 0, sizeof *d);
    snprintf(d->date, sizeof d->date, "%s", date);
    return d;
}

/* ---- public accessors ---------------------------------------------------- */

void state_init(struct state *st)
{
    memset(st, 0, sizeof *st);
}

void state_free(struct state *st)
{
    for (size_t i = 0; i < st->vehicle_count; i++) vehicle_free(&st->vehicles[i]);
    free(st->vehicles);
    state_init(st);
}

bool state_dirty(const struct state *st) { return st->dirty; }
const char *state_refresh_token(const struct state *st) { return st->refresh_token; }
const char *state_access_token(const struct state *st) { return st->access_token; }
long long state_access_expires_at(const struct state *st) { return st->access_expires_at; }

int state_set_tokens(struct state *st, const char *refresh_token,
                     const char *access_token, long long expires_at)
{
    if (!refresh_token) refresh_token = "";
    if (!access_token) access_token = "";
    if (!token_fits(refresh_token) || !token_fits(access_token) || expires_at < 0)
        return -1;
    if (strcmp(st->refresh_token, refresh_token) != 0 ||
        strcmp(st->access_token, access_token) != 0 || st->access_expires_at != expires_at) {
        snprintf(st->refresh_token, sizeof st->refresh_token, "%s", refresh_token);
        snprintf(st->access_token, sizeof st->access_token, "%s", access_token);
        st->access_expires_at = expires_at;
        st->dirty = true;
    }
    return 0;
}

const char *state_configured_refresh_token(const struct state *st)
{
    return st->configured_refresh_token;
}

int state_set_configured_refresh_token(struct state *st, const char *refresh_token)
{
    if (!refresh_token) refresh_token = "";
    if (!token_fits(refresh_token)) return -1;
    if (strcmp(st->configured_refresh_token, refresh_token) != 0) {
        snprintf(st->configured_refresh_token, sizeof st->configured_refresh_token, "%s",
                 refresh_token);
        st->dirty = true;
    }
    return 0;
}

bool state_seen_has(const struct state *st, const char *vin, const char *id)
{
    const struct state_vehicle *v = find_vehicle(st, vin);
    return v && id && vehicle_seen_has(v, id);
}

int state_seen_add(struct state *st, const char *vin, const char *id)
{
    if (!id_ok(id)) return -1;
    struct state_vehicle *v = get_vehicle(st, vin);
    if (!v) return -1;
    if (vehicle_seen_has(v, id)) return 0;
    if (vehicle_seen_push(v, id) != 0) return -1;
    st->dirty = true;
    return 1;
}

size_t state_seen_count(const struct state *st, const char *vin)
{
    const struct state_vehicle *v = find_vehicle(st, vin);
    return v ? v->seen_count : 0;
}

int state_calls_add(struct state *st, const char *vin, const char *date, bool is_refresh)
{
    if (!date_ok(date)) return -1;
    struct state_vehicle *v = get_vehicle(st, vin);
    if (!v) return -1;
    struct state_day *d = vehicle_day_slot(v, date);
    if (!d) return 0;
    if (d->calls < COUNT_MAX) d->calls++;
    if (is_refresh && d->refresh_calls < COUNT_MAX) d->refresh_calls++;
    st->dirty = true;
    return 0;
}

void state_calls_get(const struct state *st, const char *vin, const char *date,
                     long *calls, long *refresh_calls)
{
    long c = 0, r = 0;
    struct state_vehicle *v = find_vehicle(st, vin);
    struct state_day *d = (v && date) ? vehicle_day(v, date) : NULL;
    if (d) {
        c = d->calls;
        r = d->refresh_calls;
    }
    if (calls) *calls = c;
    if (refresh_calls) *refresh_calls = r;
}

long state_calls_total(const struct state *st, const char *date)
{
    long total = 0;
    for (size_t i = 0; date && i < st->vehicle_count; i++) {
        const struct state_day *d = vehicle_day(&st->vehicles[i], date);
        if (d && total < COUNT_MAX) total += d->calls;
    }
    return total;
}

/* ---- parsing (pure) ------------------------------------------------------ */

/* An integral JSON number in [lo, hi]. */
static bool json_int(const cJSON *item, double lo, double hi, long long *out)
{
    if (!cJSON_IsNumber(item)) return false;
    double d = item->valuedouble;
    if (!isfinite(d) || d < lo || d > hi || floor(d) != d) return false;
    *out = (long long)d;
    return true;
}

/* An optional string member of obj that must fit in size bytes: copied to
 * out ("" when absent). Returns -1 when present with another type or too long. */
static int json_opt_string(const cJSON *obj, const char *name, char *out, size_t size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    out[0] = '\0';
    if (!item) return 0;
    if (!cJSON_IsString(item) || !item->valuestring) return -1;
    if (strnlen(item->valuestring, size) >= size) return -1;
    snprintf(out, size, "%s", item->valuestring);
    return 0;
}

static int parse_oauth(struct state *st, const cJSON *oauth, char *err, size_t errlen)
{
    if (!oauth) return 0;
    if (!cJSON_IsObject(oauth)) {
        snprintf(err, errlen, "\"oauth\" is not an object");
        return -1;
    }
    if (json_opt_string(oauth, "refresh_token", st->refresh_token, sizeof st->refresh_token) ||
        json_opt_string(oauth, "access_token", st->access_token, sizeof st->access_token) ||
        json_opt_string(oauth, "configured_refresh_token", st->configured_refresh_token,
                        sizeof st->configured_refresh_token)) {
        snprintf(err, errlen, "oauth token is not a string of at most %d bytes",
                 STATE_TOKEN_MAX - 1);
        return -1;
    }
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(oauth, "access_expires_at");
    if (exp && !json_int(exp, 0, (double)EXPIRES_MAX, &st->access_expires_at)) {
        snprintf(err, errlen, "oauth.access_expires_at is not an integer epoch time");
        return -1;
    }
    return 0;
}

static int parse_seen(struct state_vehicle *v, const cJSON *seen, char *err, size_t errlen)
{
    if (!seen) return 0;
    if (!cJSON_IsArray(seen)) {
        snprintf(err, errlen, "vehicles.%s.seen is not an array", v->vin);
        return -1;
    }
    size_t i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, seen) {
        if (!cJSON_IsString(item) || !id_ok(item->valuestring)) {
            snprintf(err, errlen, "vehicles.%s.seen[%zu] is not a string of 1..%d bytes",
                     v->vin, i, STATE_ID_MAX - 1);
            return -1;
        }
        if (!vehicle_seen_has(v, item->valuestring) &&
            vehicle_seen_push(v, item->valuestring) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        i++;
    }
    return 0;
}

static int parse_calls(struct state_vehicle *v, const cJSON *calls, char *err, size_t errlen)
{
    if (!calls) return 0;
    if (!cJSON_IsObject(calls)) {
        snprintf(err, errlen, "vehicles.%s.calls is not an object", v->vin);
        return -1;
    }
    const cJSON *day;
    cJSON_ArrayForEach(day, calls) {
        long long c = 0, r = 0;
        const cJSON *jc = cJSON_GetObjectItemCaseSensitive(day, "calls");
        const cJSON *jr = cJSON_GetObjectItemCaseSensitive(day, "refresh_status");
        if (!date_ok(day->string) || !cJSON_IsObject(day) ||
            (jc && !json_int(jc, 0, (double)COUNT_MAX, &c)) ||
            (jr && !json_int(jr, 0, (double)COUNT_MAX, &r))) {
            snprintf(err, errlen, "vehicles.%s.calls has a malformed day entry", v->vin);
            return -1;
        }
        struct state_day *d = vehicle_day_slot(v, day->string);
        if (d) {
            d->calls = (long)c;
            d->refresh_calls = (long)r;
        }
    }
    return 0;
}

static int parse_vehicles(struct state *st, const cJSON *vehicles, char *err, size_t errlen)
{
    if (!vehicles) return 0;
    if (!cJSON_IsObject(vehicles)) {
        snprintf(err, errlen, "\"vehicles\" is not an object");
        return -1;
    }
    const cJSON *entry;
    cJSON_ArrayForEach(entry, vehicles) {
        if (!vin_ok(entry->string) || !cJSON_IsObject(entry)) {
            snprintf(err, errlen, "\"vehicles\" has an entry that is not a VIN with an object");
            return -1;
        }
        struct state_vehicle *v = get_vehicle(st, entry->string);
        if (!v) {
            snprintf(err, errlen, "too many vehicles (limit %d) or out of memory",
                     STATE_VEHICLES_MAX);
            return -1;
        }
        if (parse_seen(v, cJSON_GetObjectItemCaseSensitive(entry, "seen"), err, errlen) ||
            parse_calls(v, cJSON_GetObjectItemCaseSensitive(entry, "calls"), err, errlen))
            return -1;
    }
    return 0;
}

/* Checks the "format" and "version" markers: a foreign JSON file must be
 * refused, not overwritten with an empty state. */
static int check_marker(const cJSON *root, char *err, size_t errlen)
{
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "not a toyota2mqtt state file (not a JSON object)");
        return -1;
    }
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, STATE_FORMAT) != 0) {
        snprintf(err, errlen, "not a toyota2mqtt state file (no \"format\":\"%s\" marker)",
                 STATE_FORMAT);
        return -1;
    }
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    long long ver = 0;
    if (!json_int(version, -1e9, 1e9, &ver)) {
        snprintf(err, errlen, "\"version\" is missing or not an integer");
        return -1;
    }
    if (ver != STATE_VERSION) {
        snprintf(err, errlen, "unsupported state file version %lld (this build reads version %d)",
                 ver, STATE_VERSION);
        return -1;
    }
    return 0;
}

/* Parses a whole JSON text: trailing bytes other than whitespace mean the
 * file is corrupt (a torn or concatenated write), not "valid with junk". */
static cJSON *parse_json(const char *buf, size_t len, char *err, size_t errlen)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = (at && at >= buf && at <= buf + len) ? (size_t)(at - buf) : 0;
        snprintf(err, errlen, "corrupt: not valid JSON (error near byte %zu)", off);
        return NULL;
    }
    size_t off = (end && end >= buf && end <= buf + len) ? (size_t)(end - buf) : len;
    while (off < len && (buf[off] == ' ' || buf[off] == '\n' || buf[off] == '\r' ||
                         buf[off] == '\t' || buf[off] == '\0'))
        off++;
    if (off < len) {
        snprintf(err, errlen, "corrupt: unexpected data after the JSON text at byte %zu", off);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int state_parse(struct state *st, const char *buf, size_t len, char *err, size_t errlen)
{
    if (len > (size_t)STATE_FILE_MAX) {
        snprintf(err, errlen, "too large (%zu bytes, limit %ld)", len, STATE_FILE_MAX);
        return -1;
    }
    if (len == 0 || !buf) {
        snprintf(err, errlen, "corrupt: empty file (not a toyota2mqtt state file)");
        return -1;
    }
    cJSON *root = parse_json(buf, len, err, errlen);
    if (!root) return -1;
    struct state tmp;
    state_init(&tmp);
    int rc = -1;
    if (check_marker(root, err, errlen) == 0 &&
        parse_oauth(&tmp, cJSON_GetObjectItemCaseSensitive(root, "oauth"), err, errlen) == 0 &&
        parse_vehicles(&tmp, cJSON_GetObjectItemCaseSensitive(root, "vehicles"), err, errlen) == 0)
        rc = 0;
    cJSON_Delete(root);
    if (rc != 0) {
        state_free(&tmp);
        return -1;
    }
    tmp.dirty = false;
    state_free(st);
    *st = tmp;
    return 0;
}

/* ---- serialising --------------------------------------------------------- */

static cJSON *serialize_vehicle(const struct state_vehicle *v)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON *seen = cJSON_AddArrayToObject(obj, "seen");
    cJSON *calls = cJSON_AddObjectToObject(obj, "calls");
    if (!obj || !seen || !calls) goto fail;
    for (size_t i = 0; i < v->seen_count; i++) {
        cJSON *s = cJSON_CreateString(v->seen[(v->seen_head + i) % STATE_SEEN_MAX]);
        if (!s) goto fail;
        if (!cJSON_AddItemToArray(seen, s)) {
            cJSON_Delete(s);
            goto fail;
        }
    }
    for (size_t i = 0; i < v->day_count; i++) {
        cJSON *day = cJSON_AddObjectToObject(calls, v->days[i].date);
        if (!day || !cJSON_AddNumberToObject(day, "calls", (double)v->days[i].calls) ||
            !cJSON_AddNumberToObject(day, "refresh_status", (double)v->days[i].refresh_calls))
            goto fail;
    }
    return obj;
fail:
    cJSON_Delete(obj);
    return NULL;
}

char *state_serialize(const struct state *st)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *oauth = cJSON_AddObjectToObject(root, "oauth");
    cJSON *vehicles = cJSON_AddObjectToObject(root, "vehicles");
    char *text = NULL;
    if (!root || !oauth || !vehicles ||
        !cJSON_AddStringToObject(root, "format", STATE_FORMAT) ||
        !cJSON_AddNumberToObject(root, "version", STATE_VERSION) ||
        !cJSON_AddStringToObject(oauth, "refresh_token", st->refresh_token) ||
        !cJSON_AddStringToObject(oauth, "access_token", st->access_token) ||
        !cJSON_AddNumberToObject(oauth, "access_expires_at", (double)st->access_expires_at) ||
        !cJSON_AddStringToObject(oauth, "configured_refresh_token", st->configured_refresh_token))
        goto out;
    for (size_t i = 0; i < st->vehicle_count; i++) {
        cJSON *v = serialize_vehicle(&st->vehicles[i]);
        if (!v) goto out;
        if (!cJSON_AddItemToObject(vehicles, st->vehicles[i].vin, v)) {
            cJSON_Delete(v);
            goto out;
        }
    }
    text = cJSON_Print(root);
out:
    cJSON_Delete(root);
    return text;
}

/* ---- file I/O ------------------------------------------------------------ */

/* Splits path into its directory ("." when none) and its last component. */
static int split_path(const char *path, char *dir, size_t dirlen, char *base, size_t baselen)
{
    const char *slash = strrchr(path, '/');
    int n1, n2;
    if (!slash) {
        n1 = snprintf(dir, dirlen, ".");
        n2 = snprintf(base, baselen, "%s", path);
    } else {
        n1 = snprintf(dir, dirlen, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        n2 = snprintf(base, baselen, "%s", slash + 1);
    }
    return (n1 < 0 || (size_t)n1 >= dirlen || n2 < 0 || (size_t)n2 >= baselen) ? -1 : 0;
}

/* The pid in "<base>.tmp.<pid>", or 0 when name is not such a file. */
static pid_t tmp_pid(const char *name, const char *base)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp.", 5) != 0) return 0;
    const char *p = name + bl + 5;
    if (!*p || strlen(p) > 9) return 0;
    long pid = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        pid = pid * 10 + (*p - '0');
    }
    return (pid_t)pid;
}

/* Removes "<path>.tmp.<pid>" files left by a save that was killed. A file
 * whose pid belongs to another live process may be a concurrent save (two
 * bridges on one state file is a misconfiguration, but not ours to break). */
static void remove_stale_tmp(const char *path)
{
    char dir[PATH_MAX], base[PATH_MAX];
    if (split_path(path, dir, sizeof dir, base, sizeof base) != 0 || !base[0]) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        pid_t pid = tmp_pid(e->d_name, base);
        if (pid <= 0) continue;
        if (pid != getpid() && (kill(pid, 0) == 0 || errno != ESRCH)) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            log_info("state file %s: removed stale temporary file %s", path, e->d_name);
    }
    closedir(d);
}

/* Reads the whole regular file behind fd (at most STATE_FILE_MAX bytes).
 * Returns a malloc'd buffer the caller frees, with its size in *len, or NULL
 * with err set. */
static char *read_fd(int fd, size_t *len, char *err, size_t errlen)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "cannot stat: %s", strerror(errno));
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        return NULL;
    }
    if (sb.st_size > STATE_FILE_MAX) {
        snprintf(err, errlen, "too large (%lld bytes, limit %ld)", (long long)sb.st_size,
                 STATE_FILE_MAX);
        return NULL;
    }
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read: %s", strerror(errno));
            free(buf);
            return NULL;
        }
        if (r == 0) break;
        n += (size_t)r;
        if (n == cap) {  /* it grew while we read: refuse rather than chase it */
            snprintf(err, errlen, "changed size while being read");
            free(buf);
            return NULL;
        }
    }
    *len = n;
    return buf;
}

/* Tightens a pre-existing file that is readable by others: it holds tokens. */
static void tighten_mode(int fd, const char *path)
{
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) != 0) {
        if (fchmod(fd, 0600) == 0)
            log_warn("state file %s: mode was %04o, set to 0600", path,
                     (unsigned)(sb.st_mode & 07777));
        else
            log_warn("state file %s: mode %04o is readable by others and cannot be changed: %s",
                     path, (unsigned)(sb.st_mode & 07777), strerror(errno));
    }
}

/* Stale temporary files are removed and the mode tightened only once the
 * file proved to be ours: a corrupt file's leftovers may help a human recover
 * it, and a foreign file the option points at by mistake is not ours to touch. */
int state_load(struct state *st, const char *path, char *err, size_t errlen)
{
    if (!path || !path[0]) {
        state_free(st);
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            snprintf(err, errlen, "state file %s: cannot open: %s", path, strerror(errno));
            return -1;
        }
        remove_stale_tmp(path);
        state_free(st);
        return 0;
    }
    char why[STATE_ERR];
    size_t len = 0;
    char *buf = read_fd(fd, &len, why, sizeof why);
    int rc = (buf && state_parse(st, buf, len, why, sizeof why) == 0) ? 0 : -1;
    free(buf);
    if (rc == 0) tighten_mode(fd, path);
    close(fd);
    if (rc != 0) {
        snprintf(err, errlen, "state file %s: %s", path, why);
        return -1;
    }
    remove_stale_tmp(path);
    return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Creates tmp exclusively with mode 0600. A file of that name can only be a
 * leftover of this very pid (an earlier save in a process that reused it), so
 * it is removed and the create retried once. */
static int create_tmp(const char *tmp)
{
    int fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
        fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0 && fchmod(fd, 0600) != 0) {  /* a strange umask must not matter */
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    return fd;
}

/* The last component of a path (for messages that already name the file). */
static const char *tmp_name(const char *tmp)
{
    const char *slash = strrchr(tmp, '/');
    return slash ? slash + 1 : tmp;
}

/* Writes text into a fresh temporary file and fsyncs it. Returns 0, or -1
 * with why set (the temporary file is then removed). */
static int write_tmp(const char *tmp, const char *text, char *why, size_t whylen)
{
    int fd = create_tmp(tmp);
    if (fd < 0) {
        snprintf(why, whylen, "cannot create the temporary file %.200s: %s", tmp_name(tmp), strerror(errno));
        return -1;
    }
    const char *what = NULL;
    if (write_all(fd, text, strlen(text)) != 0) what = "write";
    else if (fsync(fd) != 0) what = "fsync";
    int e = errno;
    if (close(fd) != 0 && !what) {
        what = "close";
        e = errno;
    }
    if (what) {
        snprintf(why, whylen, "cannot %s the temporary file: %s", what, strerror(e));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Makes the rename durable: fsync of the directory that holds path. */
static int sync_dir(const char *path, char *why, size_t whylen)
{
    char dir[PATH_MAX], base[PATH_MAX];
    if (split_path(path, dir, sizeof dir, base, sizeof base) != 0) {
        snprintf(why, whylen, "path too long");
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "saved, but cannot open its directory: %s", strerror(errno));
        return -1;
    }
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL) {  /* EINVAL: the file system cannot sync directories */
        snprintf(why, whylen, "saved, but cannot fsync its directory: %s", strerror(e));
        return -1;
    }
    return 0;
}

int state_save(struct state *st, const char *path, char *err, size_t errlen)
{
    if (!path || !path[0]) {
        st->dirty = false;
        return 0;
    }
    char tmp[PATH_MAX], why[STATE_ERR];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        snprintf(err, errlen, "state file %s: path too long", path);
        return -1;
    }
    char *text = state_serialize(st);
    if (!text) {
        snprintf(err, errlen, "state file %s: out of memory", path);
        return -1;
    }
    int rc = write_tmp(tmp, text, why, sizeof why);
    free(text);
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(why, sizeof why, "cannot rename the temporary file over it: %s", strerror(errno));
        unlink(tmp);
        rc = -1;
    }
    if (rc == 0) rc = sync_dir(path, why, sizeof why);
    if (rc != 0) {
        snprintf(err, errlen, "state file %s: %s", path, why);
        return -1;
    }
    st->dirty = false;
    return 0;
}
