/* test_config.c - unit tests for src/config.c (run from the repository root). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "testhelp.h"

#define F "conf/x.conf"
/* The smallest valid configuration: lines 1-4. */
#define MIN "api = {\n  base_url = \"http://h/v1\";\n  token = \"t\";\n};\n"

static const char *const env_vars[] = {
    "TOYOTA2MQTT_API_TOKEN", "TOYOTA2MQTT_API_OAUTH_CLIENT_SECRET",
    "TOYOTA2MQTT_API_OAUTH_REFRESH_TOKEN", "TOYOTA2MQTT_MQTT_PASSWORD",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) unsetenv(env_vars[i]);
}

static int parse(struct config *c, const char *text, char *err)
{
    config_defaults(c);
    return config_parse_string(c, text, F, err, CONFIG_ERR);
}

/* Fails to parse, with exactly want as the one-line message. */
static void expect_exact(const char *name, const char *text, const char *want)
{
    static struct config c;
    char err[CONFIG_ERR];
    int rc = parse(&c, text, err);
    TEST_CHECK(name, rc == -1 && strcmp(err, want) == 0);
    if (rc != -1 || strcmp(err, want) != 0) printf("  got rc=%d err='%s'\n  want '%s'\n", rc, err, want);
}

/* Fails to parse with a one-line message starting with prefix ("FILE:LINE: KEY"). */
static void expect_prefix(const char *name, const char *text, const char *prefix)
{
    static struct config c;
    char err[CONFIG_ERR];
    int rc = parse(&c, text, err);
    bool ok = rc == -1 && strncmp(err, prefix, strlen(prefix)) == 0 && !strchr(err, '\n');
    TEST_CHECK(name, ok);
    if (!ok) printf("  got rc=%d err='%s'\n  want prefix '%s'\n", rc, err, prefix);
}

static void test_defaults(void)
{
    struct config c;
    config_defaults(&c);
    TEST_CHECK("defaults: log_level info", strcmp(c.log_level, "info") == 0);
    TEST_CHECK("defaults: no state file", c.state_file[0] == '\0');
    TEST_CHECK("defaults: api numbers", c.api.timeout_s == 20 && c.api.max_connections == 4 &&
               c.api.max_body_bytes == 8L * 1024 * 1024 && c.api.daily_limit == 0 &&
               c.api.refresh_daily_limit == 10);
    TEST_CHECK("defaults: device id/type", strcmp(c.api.device_id, "toyota2mqtt") == 0 &&
               strcmp(c.api.device_type, "bridge") == 0);
    TEST_CHECK("defaults: no oauth", c.api.oauth.token_url[0] == '\0');
    TEST_CHECK("defaults: mqtt", strcmp(c.mqtt.url, "tcp://127.0.0.1:1883") == 0 &&
               strcmp(c.mqtt.client_id, "toyota2mqtt") == 0 &&
               strcmp(c.mqtt.base_topic, "toyota2mqtt") == 0 && c.mqtt.qos == 1 &&
               c.mqtt.keepalive_s == 60 && c.mqtt.field_topics && c.mqtt.tls_verify);
    TEST_CHECK("defaults: poll", c.poll.vehicles == 3600 && c.poll.interval[RES_STATUS] == 300 &&
               c.poll.interval[RES_SERVICE_HISTORY] == 86400 &&
               c.poll.interval[RES_NOTIFICATIONS] == 900);
    TEST_CHECK("defaults: trips", c.trips.days == 7 && !c.trips.include_route);
    TEST_CHECK("defaults: homeassistant", c.homeassistant.enabled &&
               strcmp(c.homeassistant.discovery_prefix, "homeassistant") == 0);
    unsigned want = 0;
    for (int i = 0; i < CMD_COUNT; i++)
        if (i != CMD_UNLOCK && i != CMD_TRUNK_OPEN && i != CMD_PANIC_ON) want |= 1u << i;
    TEST_CHECK("defaults: allow all but unlock, trunk_open, panic_on", c.commands.allow == want);
    TEST_CHECK("defaults: commands", c.commands.unlock_code[0] == '\0' &&
               c.commands.max_age_s == 60 && c.commands.confirm_delay_s == 10 &&
               c.commands.confirm_attempts == 4);
}

static void test_min_parses(void)
{
    struct config c;
    char err[CONFIG_ERR] = "";
    TEST_CHECK("minimal config parses", parse(&c, MIN, err) == 0);
    TEST_CHECK("path recorded", strcmp(c.path, F) == 0);
    TEST_CHECK("minimal keeps defaults", c.api.timeout_s == 20 && c.mqtt.qos == 1);
}

static const char *const full_text =
    "log_level = \"debug\";\n"
    "state_file = \"/var/lib/t2m/state.json\";\n"
    "api = {\n"
    "  base_url = \"https://api.example.com/connected/v1///\";\n"
    "  token = \"tok\";\n"
    "  timeout_s = 30; max_connections = 8;\n"
    "  device_id = \"dev\"; device_type = \"box\";\n"
    "  max_body_bytes = 67108864;\n"
    "  daily_limit = 500; refresh_daily_limit = 3;\n"
    "  oauth = { token_url = \"https://login.example.com/token/\"; client_id = \"cid\";\n"
    "            client_secret = \"cs\"; refresh_token = \"rt\"; };\n"
    "};\n"
    "mqtt = {\n"
    "  url = \"ssl://broker:8883\"; client_id = \"c1\"; username = \"u\"; password = \"p\";\n"
    "  base_topic = \"home/cars\"; qos = 0; keepalive_s = 30; field_topics = false;\n"
    "  tls = { ca_file = \"/ca.pem\"; cert_file = \"/c.pem\"; key_file = \"/k.pem\"; verify = false; };\n"
    "};\n"
    "poll = { vehicles = 7200; vehicle = 0; status = 60; health = 0; location = 120;\n"
    "         electric = 600; climate = 0; trips = 86400; notifications = 10;\n"
    "         service_history = 604800; };\n"
    "trips = { days = 30; include_route = true; };\n"
    "homeassistant = { enabled = false; discovery_prefix = \"ha/disc\"; };\n"
    "commands = { allow = [\"lock\", \"unlock\", \"set_alias\"]; unlock_code = \"Ab12\";\n"
    "             max_age_s = 120; confirm_delay_s = 5; confirm_attempts = 2; };\n";

static void test_full(void)
{
    struct config c;
    char err[CONFIG_ERR] = "";
    int rc = parse(&c, full_text, err);
    TEST_CHECK("full config parses", rc == 0);
    if (rc) printf("  err: %s\n", err);
    TEST_CHECK("full: log_level/state_file", strcmp(c.log_level, "debug") == 0 &&
               strcmp(c.state_file, "/var/lib/t2m/state.json") == 0);
    TEST_CHECK("full: base_url trailing slashes stripped",
               strcmp(c.api.base_url, "https://api.example.com/connected/v1") == 0);
    TEST_CHECK("full: api", strcmp(c.api.token, "tok") == 0 && c.api.timeout_s == 30 &&
               c.api.max_connections == 8 && strcmp(c.api.device_id, "dev") == 0 &&
               strcmp(c.api.device_type, "box") == 0 && c.api.max_body_bytes == 67108864L &&
               c.api.daily_limit == 500 && c.api.refresh_daily_limit == 3);
    TEST_CHECK("full: oauth", strcmp(c.api.oauth.token_url, "https://login.example.com/token") == 0 &&
               strcmp(c.api.oauth.client_id, "cid") == 0 &&
               strcmp(c.api.oauth.client_secret, "cs") == 0 &&
               strcmp(c.api.oauth.refresh_token, "rt") == 0);
    TEST_CHECK("full: mqtt", strcmp(c.mqtt.url, "ssl://broker:8883") == 0 &&
               strcmp(c.mqtt.client_id, "c1") == 0 && strcmp(c.mqtt.username, "u") == 0 &&
               strcmp(c.mqtt.password, "p") == 0 && strcmp(c.mqtt.base_topic, "home/cars") == 0 &&
               c.mqtt.qos == 0 && c.mqtt.keepalive_s == 30 && !c.mqtt.field_topics);
    TEST_CHECK("full: tls", strcmp(c.mqtt.ca_file, "/ca.pem") == 0 &&
               strcmp(c.mqtt.cert_file, "/c.pem") == 0 && strcmp(c.mqtt.key_file, "/k.pem") == 0 &&
               !c.mqtt.tls_verify);
    TEST_CHECK("full: poll", c.poll.vehicles == 7200 && c.poll.interval[RES_VEHICLE] == 0 &&
               c.poll.interval[RES_STATUS] == 60 && c.poll.interval[RES_HEALTH] == 0 &&
               c.poll.interval[RES_LOCATION] == 120 && c.poll.interval[RES_ELECTRIC] == 600 &&
               c.poll.interval[RES_CLIMATE] == 0 && c.poll.interval[RES_TRIPS] == 86400 &&
               c.poll.interval[RES_NOTIFICATIONS] == 10 &&
               c.poll.interval[RES_SERVICE_HISTORY] == 604800);
    TEST_CHECK("full: trips", c.trips.days == 30 && c.trips.include_route);
    TEST_CHECK("full: homeassistant", !c.homeassistant.enabled &&
               strcmp(c.homeassistant.discovery_prefix, "ha/disc") == 0);
    TEST_CHECK("full: commands", c.commands.allow == ((1u << CMD_LOCK) | (1u << CMD_UNLOCK) |
                                                      (1u << CMD_SET_ALIAS)) &&
               strcmp(c.commands.unlock_code, "Ab12") == 0 && c.commands.max_age_s == 120 &&
               c.commands.confirm_delay_s == 5 && c.commands.confirm_attempts == 2);
}

static void test_syntax_variants(void)
{
    struct config c;
    char err[CONFIG_ERR] = "";
    TEST_CHECK("allow as a list, colon assignment",
               parse(&c, MIN "commands : { allow = (\"horn\", \"lights\"); };", err) == 0 &&
               c.commands.allow == ((1u << CMD_HORN) | (1u << CMD_LIGHTS)));
    TEST_CHECK("empty allow list allows nothing",
               parse(&c, MIN "commands = { allow = []; };\n", err) == 0 && c.commands.allow == 0);
    TEST_CHECK("int written as float accepted",
               parse(&c, MIN "trips = { days = 14.0; };\n", err) == 0 && c.trips.days == 14);
    TEST_CHECK("a second api group is refused",
               parse(&c, MIN "api = { max_body_bytes = 2048L; };\n", err) == -1);
    TEST_CHECK("64-bit literal (L) accepted",
               parse(&c, "api = { base_url = \"http://h\"; token = \"t\"; max_body_bytes = 2048L; };",
                     err) == 0 && c.api.max_body_bytes == 2048);
    TEST_CHECK("hex literal accepted",
               parse(&c, MIN "poll = { status = 0x3C; };", err) == 0 &&
               c.poll.interval[RES_STATUS] == 60);
    TEST_CHECK("trailing // comment without newline",
               parse(&c, MIN "// the end", err) == 0);
    TEST_CHECK("digits in strings and comments untouched",
               parse(&c, MIN "# 99999999999\nmqtt = { client_id = \"12345678901234\"; }; /* 77777777777 */",
                     err) == 0 && strcmp(c.mqtt.client_id, "12345678901234") == 0);
    TEST_CHECK("escaped quote in string",
               parse(&c, MIN "mqtt = { username = \"a\\\"b 99999999999\"; };", err) == 0 &&
               strcmp(c.mqtt.username, "a\"b 99999999999") == 0);
    TEST_CHECK("oauth only, no static token",
               parse(&c, "api = { base_url = \"https://h\"; oauth = { token_url = \"https://l/t\";"
                         " client_id = \"c\"; refresh_token = \"r\"; }; };", err) == 0 &&
               c.api.token[0] == '\0');
    TEST_CHECK("mqtts and wss urls accepted",
               parse(&c, MIN "mqtt = { url = \"mqtts://b:8883\"; tls = { verify = true; }; };", err) == 0 &&
               parse(&c, MIN "mqtt = { url = \"wss://b/mqtt\"; };", err) == 0 &&
               parse(&c, MIN "mqtt = { url = \"ws://b:9001\"; };", err) == 0 &&
               parse(&c, MIN "mqtt = { url = \"mqtt://b\"; };", err) == 0);
    TEST_CHECK("unlock code of 32 alnum accepted",
               parse(&c, MIN "commands = { unlock_code = \"abcdefghijklmnopqrstuvwxyz012345\"; };",
                     err) == 0);
}

static void test_errors(void)
{
    /* unknown keys */
    expect_exact("error: unknown key top level", MIN "tokn = 1;\n",
                 F ":5: unknown key 'tokn'");
    expect_exact("error: unknown key nested",
                 "api = {\n  base_url = \"http://h\";\n  tokn = \"x\";\n};\n",
                 F ":3: unknown key 'api.tokn'");
    expect_exact("error: unknown key similar to a group", MIN "api2 = 1;",
                 F ":5: unknown key 'api2'");
    expect_exact("error: unknown key in oauth",
                 "api = {\n base_url = \"http://h\";\n token = \"t\";\n oauth = {\n  scope = \"x\";\n };\n};",
                 F ":5: unknown key 'api.oauth.scope'");
    expect_exact("error: unknown key in tls", MIN "mqtt = {\n tls = { pin = 1; };\n};",
                 F ":6: unknown key 'mqtt.tls.pin'");
    expect_exact("error: unknown poll resource", MIN "poll = {\n odometer = 60;\n};",
                 F ":6: unknown key 'poll.odometer'");
    /* syntax */
    expect_exact("error: syntax", MIN "mqtt = {\n  url = ;\n};\n", F ":6: syntax error");
    expect_exact("error: duplicate key", MIN "log_level = \"info\";\nlog_level = \"warn\";\n",
                 F ":6: duplicate setting name");
    expect_exact("error: @include refused", MIN "@include \"/etc/passwd\"\n",
                 F ":5: @include is not supported");
    expect_exact("error: unterminated string", MIN "mqtt = {\n url = \"tcp://x;\n};\n",
                 F ":6: unterminated string");
    expect_exact("error: string where a name belongs", MIN "\"api\" = 1;", F ":5: syntax error");
    expect_exact("error: string after a comma in a group", MIN "log_level = \"info\",\n\"x\";",
                 F ":6: syntax error");
    expect_exact("error: string after a value", MIN "mqtt = {\n url = 5 \"x\";\n};", F ":6: syntax error");
    /* wrong types */
    expect_exact("error: wrong type string for int", "api = {\n base_url = \"http://h\";\n token = \"t\";\n timeout_s = \"20\";\n};",
                 F ":4: api.timeout_s: must be an integer between 1 and 300");
    expect_exact("error: wrong type int for bool", MIN "mqtt = {\n field_topics = 1;\n};",
                 F ":6: mqtt.field_topics: must be true or false");
    expect_exact("error: wrong type int for string", MIN "state_file = 5;",
                 F ":5: state_file: must be a string");
    expect_exact("error: wrong type scalar for group", MIN "poll = 5;",
                 F ":5: poll: must be a group { ... }");
    expect_exact("error: wrong type fractional float", MIN "trips = { days = 1.5; };",
                 F ":5: trips.days: must be an integer between 1 and 365");
    expect_prefix("error: allow not a list", MIN "commands = { allow = \"lock\"; };",
                  F ":5: commands.allow: must be a list");
    expect_exact("error: allow unknown command", MIN "commands = {\n allow = [\"lock\",\n \"fly\"];\n};",
                 F ":7: commands.allow: unknown command 'fly' (known: lock, unlock, horn, lights, "
                 "panic_on, panic_off, trunk_open, climate_start, climate_stop, climate_settings, "
                 "refresh_status, refresh_electric, set_alias)");
    expect_prefix("error: allow non-string element", MIN "commands = { allow = [1]; };",
                  F ":5: commands.allow: must be a list of command names");
    /* ranges */
    expect_exact("error: poll out of range", MIN "poll = {\n status = 5;\n};",
                 F ":6: poll.status: must be an integer between 10 and 604800 (or 0 to disable)");
    expect_exact("error: poll.vehicles 0 refused", MIN "poll = { vehicles = 0; };",
                 F ":5: poll.vehicles: must be an integer between 10 and 604800");
    expect_exact("error: int overflow is not truncated", MIN "poll = { status = 4294967306; };",
                 F ":5: poll.status: must be an integer between 10 and 604800 (or 0 to disable)");
    expect_prefix("error: negative overflow", MIN "poll = { status = -4294967286; };",
                  F ":5: poll.status: must be");
    expect_prefix("error: hex overflow is not truncated", MIN "poll = { status = 0x100000014; };",
                  F ":5: poll.status: must be");
    expect_prefix("error: 64-bit out of range", "api = { base_url = \"http://h\"; token = \"t\"; max_body_bytes = 99999999999L; };",
                  F ":1: api.max_body_bytes: must be an integer between 1024 and 67108864");
    expect_prefix("error: huge 64-bit saturates and fails", MIN "trips = { days = 99999999999999999999999; };",
                  F ":5: trips.days: must be");
    expect_prefix("error: qos 2", MIN "mqtt = { qos = 2; };", F ":5: mqtt.qos: must be an integer between 0 and 1");
    expect_prefix("error: float infinity-ish", MIN "trips = { days = 1e300; };", F ":5: trips.days: must be");
    /* strings */
    char big[600];
    snprintf(big, sizeof(big), MIN "mqtt = {\n client_id = \"%0300d\";\n};", 0);
    expect_exact("error: string too long", big,
                 F ":6: mqtt.client_id: too long (at most 255 characters)");
    expect_exact("error: control character", MIN "mqtt = { username = \"a\\nb\"; };",
                 F ":5: mqtt.username: must not contain control characters");
    expect_exact("error: log level", MIN "log_level = \"verbose\";",
                 F ":5: log_level: must be one of error, warn, info, debug");
    expect_exact("error: empty client id", MIN "mqtt = { client_id = \"\"; };",
                 F ":5: mqtt.client_id: must not be empty");
    /* required */
    expect_exact("error: base_url missing", "api = {\n  token = \"t\";\n};",
                 F ":1: api.base_url: is required");
    expect_exact("error: base_url missing, no api group", "log_level = \"info\";",
                 F ": api.base_url: is required");
    expect_exact("error: token missing", "\napi = {\n  base_url = \"http://h\";\n};",
                 F ":2: api.token (or api.token_file, TOYOTA2MQTT_API_TOKEN, or api.oauth) is required");
    expect_exact("error: oauth without token_url",
                 "api = {\n base_url = \"http://h\";\n oauth = {\n  client_id = \"c\";\n };\n};",
                 F ":3: api.oauth.token_url: is required when api.oauth is used");
    expect_exact("error: oauth without client_id",
                 "api = {\n base_url = \"http://h\";\n oauth = {\n  token_url = \"http://l\";\n  refresh_token = \"r\";\n };\n};",
                 F ":3: api.oauth.client_id: is required with api.oauth.token_url");
    expect_prefix("error: oauth without refresh token",
                  "api = {\n base_url = \"http://h\";\n oauth = {\n  token_url = \"http://l\";\n  client_id = \"c\";\n };\n};",
                  F ":3: api.oauth.refresh_token (or api.oauth.refresh_token_file, ");
    /* urls */
    expect_exact("error: base_url scheme", "api = {\n base_url = \"ftp://h\";\n token = \"t\";\n};",
                 F ":2: api.base_url: must start with http:// or https:// and name a host");
    expect_prefix("error: base_url without host", "api = { base_url = \"https:///\"; token = \"t\"; };",
                  F ":1: api.base_url: must start with http");
    expect_prefix("error: base_url with a space", "api = { base_url = \"http://a b\"; token = \"t\"; };",
                  F ":1: api.base_url: must start with http");
    expect_prefix("error: token_url scheme", "api = { base_url = \"http://h\"; oauth = { token_url = \"l/t\"; }; };",
                  F ":1: api.oauth.token_url: must start with http");
    expect_exact("error: mqtt url scheme", MIN "mqtt = { url = \"http://broker\"; };",
                 F ":5: mqtt.url: must be tcp://, ssl://, mqtt://, mqtts://, ws:// or wss:// "
                 "followed by host[:port]");
    expect_prefix("error: mqtt url without host", MIN "mqtt = { url = \"tcp://\"; };",
                  F ":5: mqtt.url: must be");
    expect_exact("error: tls with plain url", MIN "mqtt = {\n tls = { ca_file = \"/ca\"; };\n};",
                 F ":6: mqtt.tls: needs an ssl://, mqtts:// or wss:// mqtt.url");
    expect_exact("error: cert without key", MIN "mqtt = {\n url = \"ssl://b:8883\";\n tls = { cert_file = \"/c\"; };\n};",
                 F ":7: mqtt.tls: cert_file and key_file must be set together");
    expect_exact("error: password without username", MIN "mqtt = {\n password = \"p\";\n};",
                 F ":5: mqtt.password: requires mqtt.username");
    /* topics */
    expect_exact("error: topic wildcard", MIN "mqtt = { base_topic = \"a/+/b\"; };",
                 F ":5: mqtt.base_topic: must not contain '+' or '#'");
    expect_exact("error: topic hash", MIN "homeassistant = { discovery_prefix = \"ha/#\"; };",
                 F ":5: homeassistant.discovery_prefix: must not contain '+' or '#'");
    expect_exact("error: topic leading slash", MIN "mqtt = { base_topic = \"/a\"; };",
                 F ":5: mqtt.base_topic: must not start or end with '/'");
    expect_exact("error: topic trailing slash", MIN "mqtt = { base_topic = \"a/\"; };",
                 F ":5: mqtt.base_topic: must not start or end with '/'");
    expect_exact("error: topic empty level", MIN "mqtt = { base_topic = \"a//b\"; };",
                 F ":5: mqtt.base_topic: must not contain an empty level ('//')");
    expect_exact("error: topic empty", MIN "homeassistant = { discovery_prefix = \"\"; };",
                 F ":5: homeassistant.discovery_prefix: must not be empty");
    /* commands */
    expect_exact("error: unlock code short", MIN "commands = { unlock_code = \"12\"; };",
                 F ":5: commands.unlock_code: must be 4 to 32 letters or digits");
    expect_exact("error: unlock code punctuation", MIN "commands = { unlock_code = \"12-34\"; };",
                 F ":5: commands.unlock_code: must be 4 to 32 letters or digits");
    /* secrets */
    expect_exact("error: token and token_file", "api = {\n base_url = \"http://h\";\n token = \"t\";\n"
                 " token_file = \"/nonexistent\";\n};",
                 F ":4: api.token_file: cannot be combined with api.token");
    expect_exact("error: unreadable token_file",
                 "api = {\n base_url = \"http://h\";\n token_file = \"/nonexistent/t2m-token\";\n};",
                 F ":3: api.token_file: cannot read '/nonexistent/t2m-token': No such file or directory");
    expect_exact("error: token_file is a directory",
                 "api = {\n base_url = \"http://h\";\n token_file = \"/\";\n};",
                 F ":3: api.token_file: cannot read '/': not a regular file");
    expect_exact("error: mqtt password_file unreadable",
                 MIN "mqtt = { username = \"u\"; password_file = \"/nonexistent/pw\"; };",
                 F ":5: mqtt.password_file: cannot read '/nonexistent/pw': No such file or directory");
}

static void test_load_errors(void)
{
    struct config c;
    char err[CONFIG_ERR];
    TEST_CHECK("load: missing file", config_load(&c, "missing.conf", err, sizeof(err)) == -1 &&
               strcmp(err, "missing.conf: cannot read: No such file or directory") == 0);
    char path[] = "/tmp/t2m-conf-XXXXXX";
    int fd = mkstemp(path);
    TEST_CHECK("load: temp file", fd >= 0);
    if (fd < 0) return;
    const char *text = MIN "poll = {\n  status = 1;\n};\n";
    TEST_CHECK("load: write", write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    char want[CONFIG_ERR];
    snprintf(want, sizeof(want),
             "%s:6: poll.status: must be an integer between 10 and 604800 (or 0 to disable)", path);
    TEST_CHECK("load: error names the file and line",
               config_load(&c, path, err, sizeof(err)) == -1 && strcmp(err, want) == 0);
    unlink(path);
    char small[24];
    TEST_CHECK("load: short err buffer is still terminated",
               config_load(&c, "missing.conf", small, sizeof(small)) == -1 &&
               strlen(small) == sizeof(small) - 1);
}

/* Writes content to a new temporary file whose name goes to path[32]. */
static bool temp_file(char *path, const char *content)
{
    snprintf(path, 32, "/tmp/t2m-secret-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return false;
    bool ok = write(fd, content, strlen(content)) == (ssize_t)strlen(content);
    close(fd);
    return ok;
}

static void test_secrets(void)
{
    struct config c;
    char err[CONFIG_ERR] = "", text[1024];
    char tok[32], pw[32], rt[32], cs[32], empty[32], crlf[32];
    TEST_CHECK("secrets: temp files", temp_file(tok, "token-from-file\nsecond line\n") &&
               temp_file(pw, "pw-from-file") && temp_file(rt, "rt-from-file\n") &&
               temp_file(cs, "cs-from-file\n") && temp_file(empty, "\n") &&
               temp_file(crlf, "crlf-token\r\n"));

    snprintf(text, sizeof(text),
             "api = { base_url = \"http://h\"; token_file = \"%s\";\n"
             "  oauth = { token_url = \"http://l\"; client_id = \"c\"; client_secret_file = \"%s\";"
             " refresh_token_file = \"%s\"; }; };\n"
             "mqtt = { username = \"u\"; password_file = \"%s\"; };\n", tok, cs, rt, pw);
    int rc = parse(&c, text, err);
    TEST_CHECK("secrets: _file keys parse", rc == 0);
    if (rc) printf("  err: %s\n", err);
    TEST_CHECK("secrets: token_file first line", strcmp(c.api.token, "token-from-file") == 0);
    TEST_CHECK("secrets: password_file without newline", strcmp(c.mqtt.password, "pw-from-file") == 0);
    TEST_CHECK("secrets: oauth files", strcmp(c.api.oauth.refresh_token, "rt-from-file") == 0 &&
               strcmp(c.api.oauth.client_secret, "cs-from-file") == 0);

    snprintf(text, sizeof(text), "api = { base_url = \"http://h\"; token_file = \"%s\"; };", crlf);
    TEST_CHECK("secrets: CRLF stripped", parse(&c, text, err) == 0 &&
               strcmp(c.api.token, "crlf-token") == 0);
    snprintf(text, sizeof(text), "api = { base_url = \"http://h\";\n token_file = \"%s\"; };", empty);
    char want[CONFIG_ERR];
    snprintf(want, sizeof(want), F ":2: api.token_file: cannot read '%s': first line is empty", empty);
    expect_exact("secrets: empty file is an error", text, want);

    setenv("TOYOTA2MQTT_API_TOKEN", "env-token", 1);
    setenv("TOYOTA2MQTT_MQTT_PASSWORD", "env-pw", 1);
    setenv("TOYOTA2MQTT_API_OAUTH_REFRESH_TOKEN", "env-rt", 1);
    setenv("TOYOTA2MQTT_API_OAUTH_CLIENT_SECRET", "env-cs", 1);
    snprintf(text, sizeof(text),
             "api = { base_url = \"http://h\"; token_file = \"%s\"; oauth = { token_url = \"http://l\";"
             " client_id = \"c\"; client_secret = \"x\"; }; };\n"
             "mqtt = { username = \"u\"; password = \"file-pw\"; };\n", tok);
    rc = parse(&c, text, err);
    TEST_CHECK("secrets: env parse", rc == 0);
    if (rc) printf("  err: %s\n", err);
    TEST_CHECK("secrets: env overrides token_file", strcmp(c.api.token, "env-token") == 0);
    TEST_CHECK("secrets: env overrides password", strcmp(c.mqtt.password, "env-pw") == 0);
    TEST_CHECK("secrets: env supplies refresh token", strcmp(c.api.oauth.refresh_token, "env-rt") == 0);
    TEST_CHECK("secrets: env overrides client secret", strcmp(c.api.oauth.client_secret, "env-cs") == 0);
    clear_env();

    setenv("TOYOTA2MQTT_API_TOKEN", "env-token-only", 1);
    TEST_CHECK("secrets: env alone satisfies api.token",
               parse(&c, "api = { base_url = \"http://h\"; };", err) == 0 &&
               strcmp(c.api.token, "env-token-only") == 0);
    setenv("TOYOTA2MQTT_API_TOKEN", "bad\ntoken", 1);
    expect_exact("secrets: env with control characters", "api = { base_url = \"http://h\"; };",
                 F ": TOYOTA2MQTT_API_TOKEN: must not contain control characters");
    setenv("TOYOTA2MQTT_API_TOKEN", "", 1);
    expect_prefix("secrets: empty env is unset", "api = { base_url = \"http://h\"; };",
                  F ":1: api.token (or");
    clear_env();

    unlink(tok); unlink(pw); unlink(rt); unlink(cs); unlink(empty); unlink(crlf);
}

static void test_json(void)
{
    struct config c;
    char err[CONFIG_ERR] = "";
    const char *text =
        "api = { base_url = \"http://h\"; token = \"SECRET-TOKEN-1\";\n"
        "  oauth = { token_url = \"http://l\"; client_id = \"cid\"; client_secret = \"SECRET-CS-3\";"
        " refresh_token = \"SECRET-RT-4\"; }; };\n"
        "mqtt = { username = \"user\"; password = \"SECRET-PW-2\"; };\n"
        "commands = { allow = [\"lock\", \"unlock\"]; unlock_code = \"SECRETUC5\"; };\n";
    TEST_CHECK("json: parse", parse(&c, text, err) == 0);
    char *js = config_to_json(&c);
    TEST_CHECK("json: produced", js != NULL);
    if (!js) return;
    const char *secrets[] = { "SECRET-TOKEN-1", "SECRET-PW-2", "SECRET-CS-3", "SECRET-RT-4", "SECRETUC5",
                              "SECRET" };
    bool clean = true;
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (strstr(js, secrets[i])) clean = false;
    TEST_CHECK("json: no secret values", clean);
    cJSON *root = cJSON_Parse(js);
    TEST_CHECK("json: valid JSON", root != NULL);
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(root, "api");
    const cJSON *oauth = cJSON_GetObjectItemCaseSensitive(api, "oauth");
    const cJSON *mqtt = cJSON_GetObjectItemCaseSensitive(root, "mqtt");
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(root, "commands");
    const cJSON *poll = cJSON_GetObjectItemCaseSensitive(root, "poll");
    TEST_CHECK("json: *_set booleans",
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(api, "token_set")) &&
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(oauth, "client_secret_set")) &&
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(oauth, "refresh_token_set")) &&
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(mqtt, "password_set")) &&
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cmd, "unlock_code_set")));
    TEST_CHECK("json: secret keys absent",
               !cJSON_GetObjectItemCaseSensitive(api, "token") &&
               !cJSON_GetObjectItemCaseSensitive(mqtt, "password") &&
               !cJSON_GetObjectItemCaseSensitive(oauth, "client_secret") &&
               !cJSON_GetObjectItemCaseSensitive(oauth, "refresh_token") &&
               !cJSON_GetObjectItemCaseSensitive(cmd, "unlock_code"));
    const cJSON *allow = cJSON_GetObjectItemCaseSensitive(cmd, "allow");
    TEST_CHECK("json: allow names", cJSON_GetArraySize(allow) == 2 &&
               strcmp(cJSON_GetArrayItem(allow, 0)->valuestring, "lock") == 0 &&
               strcmp(cJSON_GetArrayItem(allow, 1)->valuestring, "unlock") == 0);
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(poll, "status");
    TEST_CHECK("json: poll by resource name", cJSON_IsNumber(status) && status->valuedouble == 300 &&
               cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(poll, "vehicles")));
    TEST_CHECK("json: non-secret strings kept",
               strcmp(cJSON_GetObjectItemCaseSensitive(mqtt, "username")->valuestring, "user") == 0 &&
               strcmp(cJSON_GetObjectItemCaseSensitive(oauth, "client_id")->valuestring, "cid") == 0);
    cJSON_Delete(root);
    free(js);

    config_defaults(&c);
    js = config_to_json(&c);
    TEST_CHECK("json: defaults report secrets unset", js && strstr(js, "\"token_set\":false") &&
               strstr(js, "\"password_set\":false"));
    free(js);
}

static void test_example_conf(void)
{
    struct config c;
    char err[CONFIG_ERR] = "";
    int rc = config_load(&c, "conf/toyota2mqtt.conf", err, sizeof(err));
    TEST_CHECK("example conf loads", rc == 0);
    if (rc) printf("  err: %s\n", err);
    TEST_CHECK("example conf points at the simulator",
               strcmp(c.api.base_url, "http://127.0.0.1:8765/connected/v1") == 0 &&
               strcmp(c.api.token, "demo-token") == 0 &&
               strcmp(c.mqtt.url, "tcp://127.0.0.1:1883") == 0);
    struct config d;
    config_defaults(&d);
    TEST_CHECK("example conf keeps defaults", c.poll.interval[RES_STATUS] == d.poll.interval[RES_STATUS] &&
               c.commands.allow == d.commands.allow && c.api.timeout_s == d.api.timeout_s);
}

static void test_command_names(void)
{
    bool ok = true;
    for (int i = 0; i < CMD_COUNT; i++)
        if (config_command_from_name(config_command_name((enum command_id)i)) != i) ok = false;
    TEST_CHECK("command names round-trip", ok);
    TEST_CHECK("command name lock", strcmp(config_command_name(CMD_LOCK), "lock") == 0 &&
               strcmp(config_command_name(CMD_REFRESH_ELECTRIC), "refresh_electric") == 0);
    TEST_CHECK("command unknown", config_command_from_name("fly") == -1 &&
               config_command_from_name(NULL) == -1 && config_command_from_name("Lock") == -1);
    TEST_CHECK("command id out of range", config_command_name(CMD_COUNT) == NULL);
}

int main(void)
{
    clear_env();
    test_defaults();
    test_min_parses();
    test_full();
    test_syntax_variants();
    test_errors();
    test_load_errors();
    test_secrets();
    test_json();
    test_example_conf();
    test_command_names();
    return TEST_REPORT();
}
