/* test_command.c - the command layer: every command and control topic gives
 * exactly the API calls the spec defines; everything else is rejected with no
 * call; the unlock code never leaks. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "command.h"
#include "testhelp.h"

#define VIN  "JTDKN3DU0A0123456"
#define CODE "s3cr3t-9876"
#define ALL_ALLOWED ((1u << CMD_COUNT) - 1)
/* config.h's default: all but unlock, trunk_open, panic_on. */
#define DEFAULT_ALLOWED (ALL_ALLOWED & ~((1u << CMD_UNLOCK) | (1u << CMD_TRUNK_OPEN) | (1u << CMD_PANIC_ON)))

static const struct command_policy pol_all = { ALL_ALLOWED, "" };
static const struct command_policy pol_default = { DEFAULT_ALLOWED, "" };
static const struct command_policy pol_code = { ALL_ALLOWED, CODE };

static struct api_vehicle vehicle(const char *guid)
{
    struct api_vehicle v;
    memset(&v, 0, sizeof v);
    snprintf(v.vin, sizeof v.vin, "%s", VIN);
    snprintf(v.guid, sizeof v.guid, "%s", guid);
    return v;
}

static bool json_equal(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    bool eq = x && y && cJSON_Compare(x, y, true);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

static int parse(const char *suffix, const char *payload, bool retained,
                 const struct command_policy *pol, struct command_req *req, char *err)
{
    return command_parse(suffix, payload, strlen(payload), retained, pol, req, err, COMMAND_ERR);
}

/* One expected API call. */
struct call { const char *method, *path, *body; };

/* Parses and plans suffix/payload under pol and compares with the n calls. */
static bool plan_is(const char *suffix, const char *payload, const struct command_policy *pol,
                    const char *guid, int n, struct call c0, struct call c1)
{
    struct command_req req;
    char err[COMMAND_ERR];
    if (parse(suffix, payload, false, pol, &req, err) != 0) {
        printf("# %s %s: parse: %s\n", suffix, payload, err);
        return false;
    }
    struct api_vehicle v = vehicle(guid);
    struct command_call calls[COMMAND_MAX_CALLS];
    int got = command_plan(&req, &v, "dev-1", "bridge", calls, err, sizeof err);
    if (got != n) {
        printf("# %s %s: plan gave %d (%s)\n", suffix, payload, got, got < 0 ? err : "");
        if (got > 0) command_calls_free(calls, got);
        return false;
    }
    struct call want[2] = { c0, c1 };
    bool ok = true;
    for (int i = 0; i < n; i++) {
        bool same = strcmp(calls[i].method, want[i].method) == 0 &&
                    strcmp(calls[i].path, want[i].path) == 0 &&
                    json_equal(calls[i].body, want[i].body);
        if (!same)
            printf("# %s %s: call %d is %s %s %s\n", suffix, payload, i, calls[i].method,
                   calls[i].path, calls[i].body ? calls[i].body : "(no body)");
        ok = ok && same;
    }
    command_calls_free(calls, n);
    return ok;
}

#define P(vin_sub) "/vehicles/" VIN vin_sub
static const struct call NONE = { NULL, NULL, NULL };

static void test_generic_commands(void)
{
    struct call rc = { "POST", P("/remote-command"), NULL };
    const char *remote[] = { "lock", "unlock", "horn", "lights", "panic_on", "panic_off", "trunk_open" };
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++) {
        char payload[64], body[64], name[96];
        snprintf(payload, sizeof payload, "{\"command\":\"%s\"}", remote[i]);
        snprintf(body, sizeof body, "{\"command\":\"%s\"}", remote[i]);
        snprintf(name, sizeof name, "generic %s -> remote-command", remote[i]);
        rc.body = body;
        TEST_CHECK(name, plan_is("command", payload, &pol_all, "g-1", 1, rc, NONE));
    }
    TEST_CHECK("horn with beeps", plan_is("command", "{\"command\":\"horn\",\"beeps\":2}", &pol_all, "g", 1,
               (struct call){ "POST", P("/remote-command"), "{\"command\":\"horn\",\"beeps\":2}" }, NONE));
    TEST_CHECK("horn beeps 3.0 is integral", plan_is("command", "{\"command\":\"horn\",\"beeps\":3.0}", &pol_all, "g", 1,
               (struct call){ "POST", P("/remote-command"), "{\"command\":\"horn\",\"beeps\":3}" }, NONE));
    TEST_CHECK("climate_start", plan_is("command", "{\"command\":\"climate_start\"}", &pol_all, "g", 1,
               (struct call){ "POST", P("/climate/command"), "{\"command\":\"start\"}" }, NONE));
    TEST_CHECK("climate_start with temperature", plan_is("command",
               "{\"command\":\"climate_start\",\"temperature\":72.5}", &pol_all, "g", 1,
               (struct call){ "POST", P("/climate/command"), "{\"command\":\"start\",\"temperature\":72.5}" }, NONE));
    TEST_CHECK("climate_stop", plan_is("command", "{\"command\":\"climate_stop\"}", &pol_all, "g", 1,
               (struct call){ "POST", P("/climate/command"), "{\"command\":\"stop\"}" }, NONE));
    TEST_CHECK("climate_settings temperature only", plan_is("command",
               "{\"command\":\"climate_settings\",\"temperature\":70}", &pol_all, "g", 1,
               (struct call){ "PUT", P("/climate"), "{\"temperature\":70}" }, NONE));
    TEST_CHECK("climate_settings fan and mode", plan_is("command",
               "{\"command\":\"climate_settings\",\"fanSpeed\":3,\"mode\":\"cool\"}", &pol_all, "g", 1,
               (struct call){ "PUT", P("/climate"), "{\"fanSpeed\":3,\"mode\":\"cool\"}" }, NONE));
    TEST_CHECK("climate_settings all", plan_is("command",
               " {\"mode\":\"defrost\",\"command\":\"climate_settings\",\"fanSpeed\":5,\"temperature\":85}\n",
               &pol_all, "g", 1,
               (struct call){ "PUT", P("/climate"), "{\"temperature\":85,\"fanSpeed\":5,\"mode\":\"defrost\"}" }, NONE));
    TEST_CHECK("refresh_status", plan_is("command", "{\"command\":\"refresh_status\"}", &pol_all, "guid-7", 1,
               (struct call){ "POST", P("/status/refresh"),
                              "{\"deviceId\":\"dev-1\",\"deviceType\":\"bridge\",\"guid\":\"guid-7\",\"vin\":\"" VIN "\"}" },
               NONE));
    TEST_CHECK("refresh_electric has no body", plan_is("command", "{\"command\":\"refresh_electric\"}", &pol_all, "g", 1,
               (struct call){ "POST", P("/electric/refresh"), NULL }, NONE));
    TEST_CHECK("set_alias with guid", plan_is("command", "{\"command\":\"set_alias\",\"alias\":\"Big Blue\"}",
               &pol_all, "guid-7", 1,
               (struct call){ "PUT", P(""), "{\"alias\":\"Big Blue\",\"guid\":\"guid-7\"}" }, NONE));
    TEST_CHECK("set_alias without guid", plan_is("command", "{\"command\":\"set_alias\",\"alias\":\"Big Blue\"}",
               &pol_all, "", 1, (struct call){ "PUT", P(""), "{\"alias\":\"Big Blue\"}" }, NONE));
    TEST_CHECK("set_alias 64 bytes UTF-8", plan_is("command",
               "{\"command\":\"set_alias\",\"alias\":\"\\u00fc123456789012345678901234567890123456789012345678901234567890a\"}",
               &pol_all, "", 1,
               (struct call){ "PUT", P(""), "{\"alias\":\"\xc3\xbc" "123456789012345678901234567890123456789012345678901234567890a\"}" },
               NONE));

    struct command_req req;
    char err[COMMAND_ERR];
    TEST_CHECK("id is echoed", parse("command", "{\"command\":\"lock\",\"id\":\"req-42\"}", false, &pol_all, &req, err) == 0
               && strcmp(req.id, "req-42") == 0 && req.cmd == CMD_LOCK);
    TEST_CHECK("no id is empty", parse("command", "{\"command\":\"lock\"}", false, &pol_all, &req, err) == 0
               && req.id[0] == '\0');
}

static void test_control_topics(void)
{
    struct call lock = { "POST", P("/remote-command"), "{\"command\":\"lock\"}" };
    struct call unlock = { "POST", P("/remote-command"), "{\"command\":\"unlock\"}" };
    struct call stop = { "POST", P("/climate/command"), "{\"command\":\"stop\"}" };
    struct call start = { "POST", P("/climate/command"), "{\"command\":\"start\"}" };
    TEST_CHECK("lock/set LOCK", plan_is("lock/set", "LOCK", &pol_all, "g", 1, lock, NONE));
    TEST_CHECK("lock/set UNLOCK", plan_is("lock/set", "UNLOCK", &pol_all, "g", 1, unlock, NONE));
    TEST_CHECK("lock/set JSON LOCK", plan_is("lock/set", "{\"action\":\"LOCK\",\"code\":\"\"}", &pol_all, "g", 1, lock, NONE));
    TEST_CHECK("lock/set JSON UNLOCK with code", plan_is("lock/set", "{\"action\":\"UNLOCK\",\"code\":\"" CODE "\"}",
               &pol_code, "g", 1, unlock, NONE));
    TEST_CHECK("mode off -> stop", plan_is("climate/mode/set", "off", &pol_all, "g", 1, stop, NONE));
    const char *modes[] = { "auto", "cool", "heat" };
    for (int i = 0; i < 3; i++) {
        char body[64], name[64];
        snprintf(body, sizeof body, "{\"mode\":\"%s\"}", modes[i]);
        snprintf(name, sizeof name, "mode %s -> settings then start", modes[i]);
        TEST_CHECK(name, plan_is("climate/mode/set", modes[i], &pol_default, "g", 2,
                                 (struct call){ "PUT", P("/climate"), body }, start));
    }
    TEST_CHECK("preset defrost -> settings then start", plan_is("climate/preset/set", "defrost", &pol_all, "g", 2,
               (struct call){ "PUT", P("/climate"), "{\"mode\":\"defrost\"}" }, start));
    TEST_CHECK("preset none -> stop", plan_is("climate/preset/set", "none", &pol_all, "g", 1, stop, NONE));
    const char *temps[][2] = { { "72", "72" }, { "72.5", "72.5" }, { "60", "60" }, { "85", "85" },
                               { "85.0", "85" }, { "68.25", "68.25" }, { "71.1", "71.1" } };
    for (size_t i = 0; i < sizeof temps / sizeof temps[0]; i++) {
        char body[64], name[64];
        snprintf(body, sizeof body, "{\"temperature\":%s}", temps[i][1]);
        snprintf(name, sizeof name, "temperature/set %s", temps[i][0]);
        TEST_CHECK(name, plan_is("climate/temperature/set", temps[i][0], &pol_default, "g", 1,
                                 (struct call){ "PUT", P("/climate"), body }, NONE));
    }
    for (int f = 1; f <= 5; f++) {
        char payload[4], body[32], name[32];
        snprintf(payload, sizeof payload, "%d", f);
        snprintf(body, sizeof body, "{\"fanSpeed\":%d}", f);
        snprintf(name, sizeof name, "fan/set %d", f);
        TEST_CHECK(name, plan_is("climate/fan/set", payload, &pol_default, "g", 1,
                                 (struct call){ "PUT", P("/climate"), body }, NONE));
    }
    TEST_CHECK("alias/set plain text", plan_is("alias/set", "Wagon \xc3\xbc", &pol_default, "g-9", 1,
               (struct call){ "PUT", P(""), "{\"alias\":\"Wagon \\u00fc\",\"guid\":\"g-9\"}" }, NONE));
}

/* Expects a rejection whose message contains want (when not NULL). The name
 * is printed with control characters as '?' to keep one line per check. */
static void reject(const char *raw_name, const char *suffix, const char *payload, size_t len,
                   bool retained, const struct command_policy *pol, const char *want)
{
    struct command_req req;
    char err[COMMAND_ERR] = "unset", name[160];
    snprintf(name, sizeof name, "%s", raw_name);
    for (char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20) *p = '?';
    int rc = command_parse(suffix, payload, len, retained, pol, &req, err, sizeof err);
    bool ok = rc == -1 && err[0] && (!want || strstr(err, want));
    if (!ok) printf("# %s: rc=%d err=%s\n", name, rc, err);
    for (const char *p = err; *p; p++) ok = ok && (unsigned char)*p >= 0x20;
    TEST_CHECK(name, ok);
}

#define REJ(name, suffix, payload, want) reject(name, suffix, payload, strlen(payload), false, &pol_all, want)

static void test_rejections(void)
{
    char big[COMMAND_MAX_PAYLOAD + 2];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"command\":\"lock\"}", 18);
    struct command_req ok_req;
    char ok_err[COMMAND_ERR];
    TEST_CHECK("payload of exactly 4 KiB accepted", command_parse("command", big, COMMAND_MAX_PAYLOAD, false,
               &pol_all, &ok_req, ok_err, sizeof ok_err) == 0 && ok_req.cmd == CMD_LOCK);
    reject("payload over 4 KiB", "command", big, COMMAND_MAX_PAYLOAD + 1, false, &pol_all, "too large");
    reject("alias over 4 KiB", "alias/set", big, COMMAND_MAX_PAYLOAD + 1, false, &pol_all, "too large");

    const char *suffixes[] = { "command", "lock/set", "climate/mode/set", "climate/preset/set",
                               "climate/temperature/set", "climate/fan/set", "alias/set" };
    const char *valid[] = { "{\"command\":\"lock\"}", "UNLOCK", "heat", "defrost", "72", "3", "Car" };
    for (int i = 0; i < 7; i++) {
        char name[80];
        snprintf(name, sizeof name, "retained %s ignored", suffixes[i]);
        reject(name, suffixes[i], valid[i], strlen(valid[i]), true, &pol_all,
               "retained command ignored: commands only fire when sent");
    }
    /* Retained but well-formed: the error result still names it. Retained
     * and malformed: the retained error wins, so the message is the same. */
    struct command_req rreq;
    char rerr[COMMAND_ERR];
    const char *rj = "{\"command\":\"unlock\",\"id\":\"r-7\"}";
    TEST_CHECK("retained: command and id understood for the result",
               command_parse("command", rj, strlen(rj), true, &pol_all, &rreq, rerr, sizeof rerr) == -1 &&
               rreq.cmd == CMD_UNLOCK && strcmp(rreq.id, "r-7") == 0 && strstr(rerr, "retained"));
    reject("retained and malformed", "command", "{\"command\":", 12, true, &pol_all, "retained command ignored");

    REJ("empty payload", "command", "", "empty");
    REJ("not JSON", "command", "lock", "not valid JSON");
    REJ("truncated JSON", "command", "{\"command\":\"lock\"", "not valid JSON");
    REJ("array", "command", "[\"lock\"]", "JSON object");
    REJ("string", "command", "\"lock\"", "JSON object");
    REJ("number", "command", "1", "JSON object");
    REJ("trailing data", "command", "{\"command\":\"lock\"}x", "after the JSON");
    REJ("two objects", "command", "{\"command\":\"lock\"}{\"command\":\"unlock\"}", "after the JSON");
    REJ("duplicate command", "command", "{\"command\":\"lock\",\"command\":\"unlock\"}", "duplicate");
    REJ("escaped NUL", "command", "{\"command\":\"lock\\u0000unlock\"}", "NUL");
    reject("raw NUL", "command", "{\"command\":\"lock\"}\0x", 20, false, &pol_all, "NUL");
    REJ("missing command", "command", "{\"id\":\"x\"}", "missing field 'command'");
    REJ("command not a string", "command", "{\"command\":1}", "must be a string");
    REJ("unknown command", "command", "{\"command\":\"selfdestruct\"}", "unknown command 'selfdestruct'");
    REJ("command case-sensitive", "command", "{\"command\":\"LOCK\"}", "unknown command");
    REJ("unknown command control chars", "command", "{\"command\":\"a\\nb\"}", "unknown command 'a?b'");

    REJ("lock with beeps", "command", "{\"command\":\"lock\",\"beeps\":1}", "unknown field 'beeps'");
    REJ("horn with temperature", "command", "{\"command\":\"horn\",\"temperature\":70}", "unknown field");
    REJ("climate_start with fanSpeed", "command", "{\"command\":\"climate_start\",\"fanSpeed\":2}", "unknown field");
    REJ("key case", "command", "{\"command\":\"lock\",\"Code\":\"1\"}", "unknown field 'Code'");
    REJ("set_alias with mode", "command", "{\"command\":\"set_alias\",\"alias\":\"x\",\"mode\":\"auto\"}", "unknown field");

    REJ("temperature as string", "command", "{\"command\":\"climate_start\",\"temperature\":\"72\"}", "number");
    REJ("temperature bool", "command", "{\"command\":\"climate_settings\",\"temperature\":true}", "number");
    REJ("temperature null", "command", "{\"command\":\"climate_settings\",\"temperature\":null}", "number");
    REJ("temperature infinite", "command", "{\"command\":\"climate_settings\",\"temperature\":1e400}", "number");
    REJ("temperature 59.9", "command", "{\"command\":\"climate_settings\",\"temperature\":59.9}", "between");
    REJ("temperature 85.1", "command", "{\"command\":\"climate_start\",\"temperature\":85.1}", "between");
    REJ("fanSpeed 2.5", "command", "{\"command\":\"climate_settings\",\"fanSpeed\":2.5}", "integer");
    REJ("fanSpeed string", "command", "{\"command\":\"climate_settings\",\"fanSpeed\":\"2\"}", "integer");
    REJ("fanSpeed 0", "command", "{\"command\":\"climate_settings\",\"fanSpeed\":0}", "between 1 and 5");
    REJ("fanSpeed 6", "command", "{\"command\":\"climate_settings\",\"fanSpeed\":6}", "between 1 and 5");
    REJ("fanSpeed huge", "command", "{\"command\":\"climate_settings\",\"fanSpeed\":1e300}", "between 1 and 5");
    REJ("beeps 0", "command", "{\"command\":\"horn\",\"beeps\":0}", "between 1 and 3");
    REJ("beeps 4", "command", "{\"command\":\"horn\",\"beeps\":4}", "between 1 and 3");
    REJ("beeps 1.5", "command", "{\"command\":\"horn\",\"beeps\":1.5}", "integer");
    REJ("beeps string", "command", "{\"command\":\"horn\",\"beeps\":\"2\"}", "integer");
    REJ("mode not enum", "command", "{\"command\":\"climate_settings\",\"mode\":\"dry\"}", "one of");
    REJ("mode off not a setting", "command", "{\"command\":\"climate_settings\",\"mode\":\"off\"}", "one of");
    REJ("mode number", "command", "{\"command\":\"climate_settings\",\"mode\":1}", "string");
    REJ("climate_settings empty", "command", "{\"command\":\"climate_settings\"}", "at least one");
    REJ("alias missing", "command", "{\"command\":\"set_alias\"}", "needs 'alias'");
    REJ("alias number", "command", "{\"command\":\"set_alias\",\"alias\":5}", "string");
    REJ("alias empty", "command", "{\"command\":\"set_alias\",\"alias\":\"\"}", "empty");
    REJ("alias 65 bytes", "command", "{\"command\":\"set_alias\",\"alias\":"
        "\"12345678901234567890123456789012345678901234567890123456789012345\"}", "longer");
    REJ("alias tab", "command", "{\"command\":\"set_alias\",\"alias\":\"a\\tb\"}", "control");
    REJ("alias BEL", "command", "{\"command\":\"set_alias\",\"alias\":\"a\\u0007\"}", "control");
    REJ("alias C1", "command", "{\"command\":\"set_alias\",\"alias\":\"a\\u0085\"}", "control");
    REJ("alias invalid UTF-8", "command", "{\"command\":\"set_alias\",\"alias\":\"a\xff\"}", "UTF-8");
    REJ("alias overlong UTF-8", "command", "{\"command\":\"set_alias\",\"alias\":\"a\xc0\xaf\"}", "UTF-8");
    REJ("alias lone surrogate", "command", "{\"command\":\"set_alias\",\"alias\":\"\xed\xa0\x80\"}", "UTF-8");
    REJ("id number", "command", "{\"command\":\"lock\",\"id\":5}", "'id' must be a string");
    REJ("id 65 chars", "command", "{\"command\":\"lock\",\"id\":"
        "\"12345678901234567890123456789012345678901234567890123456789012345\"}", "longer");
    REJ("id control char", "command", "{\"command\":\"lock\",\"id\":\"a\\nb\"}", "control");
    REJ("code number", "command", "{\"command\":\"lock\",\"code\":1234}", "'code' must be a string");

    const char *bad_lock[] = { "lock", "Lock", "LOCK\n", " LOCK", "UNLOCK ", "", "OPEN", "{\"action\":\"unlock\"}",
                               "{\"action\":\"UNLOCK\",\"beeps\":1}", "{\"code\":\"1\"}", "{\"action\":1}",
                               "{\"action\":\"LOCK\",\"action\":\"UNLOCK\"}", "[\"LOCK\"]" };
    for (size_t i = 0; i < sizeof bad_lock / sizeof bad_lock[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "lock/set rejects '%s'", bad_lock[i]);
        REJ(name, "lock/set", bad_lock[i], NULL);
    }
    struct { const char *suffix, *payload; } bad_plain[] = {
        { "climate/mode/set", "OFF" }, { "climate/mode/set", "dry" }, { "climate/mode/set", "" },
        { "climate/mode/set", "defrost" }, { "climate/mode/set", "auto\n" }, { "climate/mode/set", "{\"mode\":\"auto\"}" },
        { "climate/preset/set", "Defrost" }, { "climate/preset/set", "eco" }, { "climate/preset/set", "" },
        { "climate/temperature/set", "59" }, { "climate/temperature/set", "86" },
        { "climate/temperature/set", "85.01" }, { "climate/temperature/set", "72." },
        { "climate/temperature/set", ".5" }, { "climate/temperature/set", "7e1" },
        { "climate/temperature/set", "+72" }, { "climate/temperature/set", "-72" },
        { "climate/temperature/set", "72 " }, { "climate/temperature/set", "" },
        { "climate/temperature/set", "NaN" }, { "climate/temperature/set", "inf" },
        { "climate/temperature/set", "72,5" }, { "climate/temperature/set", "0000000000000072" },
        { "climate/temperature/set", "1.2.3" },
        { "climate/fan/set", "0" }, { "climate/fan/set", "6" }, { "climate/fan/set", "10" },
        { "climate/fan/set", "3.0" }, { "climate/fan/set", "" }, { "climate/fan/set", "auto" },
        { "alias/set", "" }, { "alias/set", "a\nb" }, { "alias/set", "\x7f" }, { "alias/set", "\xc3" },
        { "alias/set", "12345678901234567890123456789012345678901234567890123456789012345" },
    };
    for (size_t i = 0; i < sizeof bad_plain / sizeof bad_plain[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s rejects '%s'", bad_plain[i].suffix, bad_plain[i].payload);
        REJ(name, bad_plain[i].suffix, bad_plain[i].payload, NULL);
    }
    reject("alias/set NUL", "alias/set", "a\0b", 3, false, &pol_all, "control");
    reject("fan/set NUL", "climate/fan/set", "3\0", 2, false, &pol_all, NULL);

    const char *bad_suffix[] = { "lock", "command/x", "", "set", "climate/set", "alias/set/", "COMMAND" };
    for (size_t i = 0; i < sizeof bad_suffix / sizeof bad_suffix[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "unknown suffix '%s'", bad_suffix[i]);
        REJ(name, bad_suffix[i], "{\"command\":\"lock\"}", "unknown command topic");
    }
    reject("NULL suffix", NULL, "x", 1, false, &pol_all, "unknown command topic");
    reject("NULL policy", "command", "{\"command\":\"lock\"}", 18, false, NULL, NULL);

    struct command_req req;
    char err[COMMAND_ERR];
    TEST_CHECK("error keeps command and id", parse("command",
               "{\"command\":\"horn\",\"id\":\"x1\",\"beeps\":9}", false, &pol_all, &req, err) == -1
               && req.cmd == CMD_HORN && strcmp(req.id, "x1") == 0 && req.beeps == 0);
    TEST_CHECK("unknown command leaves cmd unknown", parse("command",
               "{\"command\":\"nope\",\"id\":\"x2\"}", false, &pol_all, &req, err) == -1
               && req.cmd == CMD_COUNT && strcmp(req.id, "x2") == 0);
}

static void test_allow_list(void)
{
    struct command_req req;
    char err[COMMAND_ERR];
    const char *denied[] = { "unlock", "trunk_open", "panic_on" };
    for (int i = 0; i < 3; i++) {
        char payload[64], want[160], name[64];
        snprintf(payload, sizeof payload, "{\"command\":\"%s\"}", denied[i]);
        snprintf(want, sizeof want, "command '%s' is not allowed; add it to commands.allow in the "
                 "configuration to enable it", denied[i]);
        snprintf(name, sizeof name, "default denies %s", denied[i]);
        TEST_CHECK(name, parse("command", payload, false, &pol_default, &req, err) == -1 &&
                   strcmp(err, want) == 0);
    }
    TEST_CHECK("default denies lock/set UNLOCK", parse("lock/set", "UNLOCK", false, &pol_default, &req, err) == -1
               && strstr(err, "'unlock' is not allowed"));
    const char *allowed[] = { "lock", "horn", "lights", "panic_off", "climate_start", "climate_stop",
                              "refresh_status", "refresh_electric" };
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        char payload[64], name[64];
        snprintf(payload, sizeof payload, "{\"command\":\"%s\"}", allowed[i]);
        snprintf(name, sizeof name, "default allows %s", allowed[i]);
        TEST_CHECK(name, parse("command", payload, false, &pol_default, &req, err) == 0);
    }
    TEST_CHECK("default allows lock/set LOCK", parse("lock/set", "LOCK", false, &pol_default, &req, err) == 0);
    struct command_policy no_start = { ALL_ALLOWED & ~(1u << CMD_CLIMATE_START), "" };
    TEST_CHECK("mode/set needs climate_start too", parse("climate/mode/set", "heat", false, &no_start, &req, err) == -1
               && strstr(err, "'climate_start' is not allowed"));
    struct command_policy no_settings = { ALL_ALLOWED & ~(1u << CMD_CLIMATE_SETTINGS), "" };
    TEST_CHECK("fan/set needs climate_settings", parse("climate/fan/set", "2", false, &no_settings, &req, err) == -1
               && strstr(err, "'climate_settings' is not allowed"));
    struct command_policy none = { 0, "" };
    TEST_CHECK("empty allow-list denies lock", parse("command", "{\"command\":\"lock\"}", false, &none, &req, err) == -1);
}

/* Runs a parse under the code policy; checks the code never appears in err or req. */
static int with_code(const char *suffix, const char *payload, const struct command_policy *pol,
                     struct command_req *req, char *err, bool *leaked)
{
    int rc = parse(suffix, payload, false, pol, req, err);
    if (strstr(err, "s3cr3t") || memmem(req, sizeof *req, "s3cr3t", 6)) *leaked = true;
    return rc;
}

static void test_unlock_code(void)
{
    struct command_req req;
    char err[COMMAND_ERR];
    bool leaked = false;
    const char *wrong = "wrong or missing unlock code";
#define CODED(suffix, payload) with_code(suffix, payload, &pol_code, &req, err, &leaked)
    TEST_CHECK("unlock without code", CODED("command", "{\"command\":\"unlock\"}") == -1 && strcmp(err, wrong) == 0);
    TEST_CHECK("unlock wrong code", CODED("command", "{\"command\":\"unlock\",\"code\":\"1234\"}") == -1
               && strcmp(err, wrong) == 0);
    TEST_CHECK("unlock code prefix", CODED("command", "{\"command\":\"unlock\",\"code\":\"s3cr3t-987\"}") == -1);
    TEST_CHECK("unlock code longer", CODED("command", "{\"command\":\"unlock\",\"code\":\"s3cr3t-98765\"}") == -1);
    TEST_CHECK("unlock code empty", CODED("command", "{\"command\":\"unlock\",\"code\":\"\"}") == -1);
    TEST_CHECK("unlock code null", CODED("command", "{\"command\":\"unlock\",\"code\":null}") == -1);
    TEST_CHECK("unlock code then NUL", CODED("command", "{\"command\":\"unlock\",\"code\":\"s3cr3t-9876\\u0000x\"}") == -1);
    TEST_CHECK("unlock code number", CODED("command", "{\"command\":\"unlock\",\"code\":9876}") == -1);
    TEST_CHECK("unlock right code", CODED("command", "{\"command\":\"unlock\",\"code\":\"" CODE "\",\"id\":\"u\"}") == 0
               && req.cmd == CMD_UNLOCK);
    TEST_CHECK("trunk_open without code", CODED("command", "{\"command\":\"trunk_open\"}") == -1 && strcmp(err, wrong) == 0);
    TEST_CHECK("trunk_open right code", CODED("command", "{\"command\":\"trunk_open\",\"code\":\"" CODE "\"}") == 0);
    TEST_CHECK("lock needs no code", CODED("command", "{\"command\":\"lock\"}") == 0);
    TEST_CHECK("horn needs no code", CODED("command", "{\"command\":\"horn\"}") == 0);
    TEST_CHECK("lock/set plain UNLOCK needs code", CODED("lock/set", "UNLOCK") == -1 && strcmp(err, wrong) == 0);
    TEST_CHECK("lock/set plain LOCK", CODED("lock/set", "LOCK") == 0);
    TEST_CHECK("lock/set JSON wrong code", CODED("lock/set", "{\"action\":\"UNLOCK\",\"code\":\"0000\"}") == -1
               && strcmp(err, wrong) == 0);
    TEST_CHECK("lock/set JSON no code", CODED("lock/set", "{\"action\":\"UNLOCK\"}") == -1);
    TEST_CHECK("lock/set JSON right code", CODED("lock/set", "{\"action\":\"UNLOCK\",\"code\":\"" CODE "\"}") == 0
               && req.cmd == CMD_UNLOCK);
    TEST_CHECK("lock/set JSON LOCK any code", CODED("lock/set", "{\"action\":\"LOCK\",\"code\":\"None\"}") == 0);
    TEST_CHECK("right code but unknown field", CODED("command",
               "{\"command\":\"unlock\",\"code\":\"" CODE "\",\"bogus\":1}") == -1 && strstr(err, "bogus"));
    TEST_CHECK("right code but not allowed", with_code("command", "{\"command\":\"unlock\",\"code\":\"" CODE "\"}",
               &(struct command_policy){ DEFAULT_ALLOWED, CODE }, &req, err, &leaked) == -1
               && strstr(err, "not allowed"));
    TEST_CHECK("right code but retained", parse("command", "{\"command\":\"unlock\",\"code\":\"" CODE "\"}",
               true, &pol_code, &req, err) == -1 && strstr(err, "retained") && !strstr(err, "s3cr3t"));
    TEST_CHECK("code never leaks into err or request", !leaked);
#undef CODED
    TEST_CHECK("no code configured: code ignored", parse("command", "{\"command\":\"unlock\",\"code\":\"x\"}",
               false, &pol_all, &req, err) == 0);
    struct command_policy null_code = { ALL_ALLOWED, NULL };
    TEST_CHECK("NULL code means none", parse("lock/set", "UNLOCK", false, &null_code, &req, err) == 0);
}

static void test_plan_checks(void)
{
    struct command_req req;
    struct command_call calls[COMMAND_MAX_CALLS];
    char err[COMMAND_ERR];
    struct api_vehicle v = vehicle("g");
    parse("command", "{\"command\":\"lock\"}", false, &pol_all, &req, err);
    const char *bad_vins[] = { "JTDKN3DU0A012345I", "jtdkn3du0a0123456", "JTDKN3DU0A012345", "../../../x/y/z/aaa",
                               "JTDKN3DU0A01234O5", "JTDKN3DU0A012345\n", "" };
    for (size_t i = 0; i < sizeof bad_vins / sizeof bad_vins[0]; i++) {
        char name[64];
        snprintf(v.vin, sizeof v.vin, "%s", bad_vins[i]);
        snprintf(name, sizeof name, "plan rejects VIN %zu", i);
        TEST_CHECK(name, command_plan(&req, &v, "d", "t", calls, err, sizeof err) == -1 && strstr(err, "VIN"));
    }
    memset(v.vin, 'A', sizeof v.vin);
    TEST_CHECK("plan rejects unterminated VIN", command_plan(&req, &v, "d", "t", calls, err, sizeof err) == -1);
    v = vehicle("");
    parse("command", "{\"command\":\"refresh_status\"}", false, &pol_all, &req, err);
    TEST_CHECK("refresh_status needs guid", command_plan(&req, &v, "d", "t", calls, err, sizeof err) == -1
               && strstr(err, "guid"));
    v = vehicle("g");
    TEST_CHECK("refresh_status needs device id", command_plan(&req, &v, "", "t", calls, err, sizeof err) == -1);
    TEST_CHECK("refresh_status NULL device type", command_plan(&req, &v, "d", NULL, calls, err, sizeof err) == -1);

    struct command_req bad;
    memset(&bad, 0, sizeof bad);
    bad.cmd = CMD_COUNT;
    TEST_CHECK("plan rejects unknown cmd", command_plan(&bad, &v, "d", "t", calls, err, sizeof err) == -1);
    bad.cmd = CMD_CLIMATE_SETTINGS;
    TEST_CHECK("plan rejects empty settings", command_plan(&bad, &v, "d", "t", calls, err, sizeof err) == -1);
    bad.has_temperature = true;
    bad.temperature = 90;
    TEST_CHECK("plan rejects temperature 90", command_plan(&bad, &v, "d", "t", calls, err, sizeof err) == -1);
    bad.temperature = 70;
    bad.has_fan_speed = true;
    bad.fan_speed = 9;
    TEST_CHECK("plan rejects fan 9", command_plan(&bad, &v, "d", "t", calls, err, sizeof err) == -1);
    bad.fan_speed = 2;
    snprintf(bad.mode, sizeof bad.mode, "dry");
    TEST_CHECK("plan rejects mode dry", command_plan(&bad, &v, "d", "t", calls, err, sizeof err) == -1);
    bad.mode[0] = '\0';
    int n = command_plan(&bad, &v, "d", "t", calls, err, sizeof err);
    TEST_CHECK("plan accepts fixed settings", n == 1 && json_equal(calls[0].body, "{\"temperature\":70,\"fanSpeed\":2}"));
    if (n > 0) command_calls_free(calls, n);
    TEST_CHECK("calls_free clears", calls[0].body == NULL);
    memset(&bad, 0, sizeof bad);
    bad.cmd = CMD_SET_ALIAS;
    TEST_CHECK("plan rejects empty alias", command_plan(&bad, &v, "d", "t", calls, err, sizeof err) == -1);
    bad.cmd = CMD_HORN;
    bad.beeps = 7;
    TEST_CHECK("plan rejects beeps 7", command_plan(&bad, &v, "d", "t", calls, err, sizeof err) == -1);
    TEST_CHECK("plan rejects NULL", command_plan(NULL, &v, "d", "t", calls, err, sizeof err) == -1);
}

static void test_result_and_affects(void)
{
    struct command_req req;
    char err[COMMAND_ERR];
    parse("command", "{\"command\":\"lock\",\"id\":\"r1\"}", false, &pol_all, &req, err);
    struct api_result res;
    memset(&res, 0, sizeof res);
    snprintf(res.request_id, sizeof res.request_id, "abc");
    snprintf(res.return_code, sizeof res.return_code, "000000");
    snprintf(res.status, sizeof res.status, "accepted");
    char *s = command_result_json(&req, true, &res, NULL, -1);
    TEST_CHECK("result ok", json_equal(s, "{\"id\":\"r1\",\"command\":\"lock\",\"ok\":true,\"requestId\":\"abc\","
                                          "\"returnCode\":\"000000\",\"status\":\"accepted\",\"error\":null,\"confirmed\":null}"));
    free(s);
    s = command_result_json(&req, true, &res, "", 1);
    TEST_CHECK("result confirmed", s && strstr(s, "\"confirmed\":true"));
    free(s);
    parse("command", "{\"command\":\"bogus\"}", false, &pol_all, &req, err);
    s = command_result_json(&req, false, NULL, err, -1);
    TEST_CHECK("result error", json_equal(s, "{\"id\":null,\"command\":null,\"ok\":false,\"requestId\":null,"
                                             "\"returnCode\":null,\"status\":null,\"error\":\"unknown command 'bogus'\","
                                             "\"confirmed\":null}"));
    free(s);
    s = command_result_json(NULL, false, NULL, "x\"y", 0);
    TEST_CHECK("result escapes and NULL req", s && strstr(s, "\"error\":\"x\\\"y\"") && strstr(s, "\"confirmed\":false"));
    free(s);

    TEST_CHECK("affects lock", command_affects(CMD_LOCK) == 1u << RES_STATUS);
    TEST_CHECK("affects unlock", command_affects(CMD_UNLOCK) == 1u << RES_STATUS);
    TEST_CHECK("affects trunk_open", command_affects(CMD_TRUNK_OPEN) == 1u << RES_STATUS);
    TEST_CHECK("affects climate", command_affects(CMD_CLIMATE_START) == 1u << RES_CLIMATE &&
               command_affects(CMD_CLIMATE_STOP) == 1u << RES_CLIMATE &&
               command_affects(CMD_CLIMATE_SETTINGS) == 1u << RES_CLIMATE);
    TEST_CHECK("affects refresh_status", command_affects(CMD_REFRESH_STATUS) == 1u << RES_STATUS);
    TEST_CHECK("affects refresh_electric", command_affects(CMD_REFRESH_ELECTRIC) == 1u << RES_ELECTRIC);
    TEST_CHECK("affects set_alias", command_affects(CMD_SET_ALIAS) == 1u << RES_VEHICLE);
    TEST_CHECK("affects nothing", command_affects(CMD_HORN) == 0 && command_affects(CMD_LIGHTS) == 0 &&
               command_affects(CMD_PANIC_ON) == 0 && command_affects(CMD_PANIC_OFF) == 0);

    bool names_ok = command_name(CMD_COUNT) == NULL && command_from_name("nope") == -1 &&
                    command_from_name(NULL) == -1;
    for (int i = 0; i < CMD_COUNT; i++)
        names_ok = names_ok && command_name((enum command_id)i) &&
                   command_from_name(command_name((enum command_id)i)) == i;
    TEST_CHECK("command names round-trip", names_ok);
    bool same_as_config = true;
    for (int i = 0; i < CMD_COUNT; i++)
        same_as_config = same_as_config && config_command_name((enum command_id)i) &&
                         strcmp(config_command_name((enum command_id)i), command_name((enum command_id)i)) == 0;
    TEST_CHECK("command names agree with config.c", same_as_config);
}

/* The allow-list default the tests use is the one config.c applies. */
static void test_config_default(void)
{
    static struct config cfg;
    config_defaults(&cfg);
    TEST_CHECK("default allow-list matches config_defaults()", cfg.commands.allow == DEFAULT_ALLOWED);
    struct command_policy pol = { cfg.commands.allow, cfg.commands.unlock_code };
    struct command_req req;
    char err[COMMAND_ERR];
    TEST_CHECK("config default denies unlock", parse("lock/set", "UNLOCK", false, &pol, &req, err) == -1);
    TEST_CHECK("config default allows lock", parse("lock/set", "LOCK", false, &pol, &req, err) == 0);
}

int main(void)
{
    test_generic_commands();
    test_control_topics();
    test_rejections();
    test_allow_list();
    test_unlock_code();
    test_plan_checks();
    test_result_and_affects();
    test_config_default();
    return TEST_REPORT();
}
