/* test_state.c - the state file: accessors, bounds, parse errors, atomic
 * save (mode 0600, stale temporary files, kill -9 during saves). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "state.h"
#include "testhelp.h"

#define VIN1 "JTDKB20U793012345"
#define VIN2 "JTMABCDE1FG234567"

static char dir_[64];

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir_, name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void cleanup_dir(void)
{
    DIR *d = opendir(dir_);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[512];
        path_in(p, sizeof p, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(dir_);
}

static void test_accessors(void)
{
    struct state st;
    state_init(&st);
    TEST_CHECK("state: fresh state is clean", !state_dirty(&st));
    TEST_CHECK("state: seen_add new id returns 1", state_seen_add(&st, VIN1, "n-1") == 1);
    TEST_CHECK("state: seen_add marks dirty", state_dirty(&st));
    TEST_CHECK("state: seen_add duplicate returns 0", state_seen_add(&st, VIN1, "n-1") == 0);
    TEST_CHECK("state: seen_has finds id", state_seen_has(&st, VIN1, "n-1"));
    TEST_CHECK("state: seen is per VIN", !state_seen_has(&st, VIN2, "n-1"));
    TEST_CHECK("state: seen_add rejects bad VIN", state_seen_add(&st, "JT-1/#", "x") == -1);
    TEST_CHECK("state: seen_add rejects long VIN", state_seen_add(&st, VIN1 "X", "x") == -1);
    TEST_CHECK("state: seen_add rejects empty id", state_seen_add(&st, VIN1, "") == -1);
    char longid[STATE_ID_MAX + 1];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    TEST_CHECK("state: seen_add rejects oversized id", state_seen_add(&st, VIN1, longid) == -1);
    longid[STATE_ID_MAX - 1] = '\0';
    TEST_CHECK("state: seen_add takes a maximal id", state_seen_add(&st, VIN1, longid) == 1);

    long c = -1, r = -1;
    state_calls_get(&st, VIN1, "2026-11-27", &c, &r);
    TEST_CHECK("state: calls of an unknown day are 0", c == 0 && r == 0);
    TEST_CHECK("state: calls_add", state_calls_add(&st, VIN1, "2026-11-27", false) == 0);
    TEST_CHECK("state: calls_add refresh", state_calls_add(&st, VIN1, "2026-11-27", true) == 0);
    state_calls_get(&st, VIN1, "2026-11-27", &c, &r);
    TEST_CHECK("state: calls counted", c == 2 && r == 1);
    TEST_CHECK("state: calls_add rejects a bad date",
               state_calls_add(&st, VIN1, "2026-13-01", false) == -1 &&
               state_calls_add(&st, VIN1, "26-11-27", false) == -1);
    state_calls_add(&st, VIN2, "2026-11-27", false);
    state_calls_add(&st, VIN2, "2026-11-26", false);
    TEST_CHECK("state: calls_total sums the VINs of one day",
               state_calls_total(&st, "2026-11-27") == 3 && state_calls_total(&st, "2026-11-25") == 0);

    st.dirty = false;
    TEST_CHECK("state: configured refresh token starts empty",
               strcmp(state_configured_refresh_token(&st), "") == 0);
    TEST_CHECK("state: set configured refresh token",
               state_set_configured_refresh_token(&st, "cfg-rt") == 0 && state_dirty(&st) &&
               strcmp(state_configured_refresh_token(&st), "cfg-rt") == 0);

    st.dirty = false;
    TEST_CHECK("state: set_tokens", state_set_tokens(&st, "r1", "a1", 1000) == 0);
    TEST_CHECK("state: set_tokens marks dirty", state_dirty(&st));
    st.dirty = false;
    TEST_CHECK("state: set_tokens same values", state_set_tokens(&st, "r1", "a1", 1000) == 0);
    TEST_CHECK("state: unchanged tokens keep it clean", !state_dirty(&st));
    TEST_CHECK("state: token getters", strcmp(state_refresh_token(&st), "r1") == 0 &&
               strcmp(state_access_token(&st), "a1") == 0 &&
               state_access_expires_at(&st) == 1000);
    char *big = malloc(STATE_TOKEN_MAX + 1);
    if (big) {
        memset(big, 'x', STATE_TOKEN_MAX);
        big[STATE_TOKEN_MAX] = '\0';
        TEST_CHECK("state: set_tokens refuses oversized token",
                   state_set_tokens(&st, big, "a", 0) == -1 &&
                   strcmp(state_refresh_token(&st), "r1") == 0);
        free(big);
    }
    state_free(&st);
}

static void test_seen_bound(void)
{
    struct state st;
    state_init(&st);
    char id[32];
    for (int i = 0; i < STATE_SEEN_MAX + 5; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        state_seen_add(&st, VIN1, id);
    }
    TEST_CHECK("state: seen bounded", state_seen_count(&st, VIN1) == STATE_SEEN_MAX);
    TEST_CHECK("state: oldest ids forgotten",
               !state_seen_has(&st, VIN1, "id-0") && !state_seen_has(&st, VIN1, "id-4"));
    TEST_CHECK("state: recent ids kept",
               state_seen_has(&st, VIN1, "id-5") && state_seen_has(&st, VIN1, "id-1004"));

    /* The order survives a round trip: the next add evicts id-5. */
    char *text = state_serialize(&st);
    struct state st2;
    state_init(&st2);
    char err[STATE_ERR] = "";
    TEST_CHECK("state: serialize/parse", text && state_parse(&st2, text, strlen(text), err, sizeof err) == 0);
    state_seen_add(&st2, VIN1, "new");
    TEST_CHECK("state: order kept across round trip",
               !state_seen_has(&st2, VIN1, "id-5") && state_seen_has(&st2, VIN1, "id-6") &&
               state_seen_count(&st2, VIN1) == STATE_SEEN_MAX);
    free(text);
    state_free(&st2);
    state_free(&st);
}

static void test_days_bound(void)
{
    struct state st;
    state_init(&st);
    char date[32];
    for (int d = 1; d <= STATE_CALL_DAYS + 2; d++) {
        snprintf(date, sizeof date, "2026-11-%02d", d);
        state_calls_add(&st, VIN1, date, false);
    }
    long c = 0;
    state_calls_get(&st, VIN1, "2026-11-01", &c, NULL);
    TEST_CHECK("state: oldest day dropped", c == 0);
    state_calls_get(&st, VIN1, "2026-11-10", &c, NULL);
    TEST_CHECK("state: newest day kept", c == 1);
    state_calls_add(&st, VIN1, "2026-10-01", false);
    state_calls_get(&st, VIN1, "2026-10-01", &c, NULL);
    TEST_CHECK("state: a day older than all kept ones is not stored", c == 0);
    state_calls_get(&st, VIN1, "2026-11-03", &c, NULL);
    TEST_CHECK("state: ...and evicts nothing", c == 1);
    state_free(&st);
}

static void fill(struct state *st, const char *marker, int ids)
{
    state_set_tokens(st, marker, "access.token.x", 1764220000);
    char id[64];
    for (int i = 0; i < ids; i++) {
        snprintf(id, sizeof id, "%s-notification-%06d", marker, i);
        state_seen_add(st, VIN1, id);
        state_seen_add(st, VIN2, id);
    }
    state_calls_add(st, VIN1, "2026-11-27", true);
    state_calls_add(st, VIN2, "2026-11-26", false);
}

static void test_round_trip(void)
{
    char path[256], err[STATE_ERR] = "";
    path_in(path, sizeof path, "rt.json");
    struct state st, st2;
    state_init(&st);
    state_init(&st2);
    fill(&st, "R", 10);
    state_seen_add(&st, VIN1, "quote\" back\\ nl\n utf8 \xc3\xa9");
    state_set_configured_refresh_token(&st, "configured-R");
    TEST_CHECK("state: save", state_save(&st, path, err, sizeof err) == 0);
    TEST_CHECK("state: save clears dirty", !state_dirty(&st));
    TEST_CHECK("state: load", state_load(&st2, path, err, sizeof err) == 0);
    long c = 0, r = 0;
    state_calls_get(&st2, VIN1, "2026-11-27", &c, &r);
    TEST_CHECK("state: tokens round-trip", strcmp(state_refresh_token(&st2), "R") == 0 &&
               strcmp(state_access_token(&st2), "access.token.x") == 0 &&
               state_access_expires_at(&st2) == 1764220000);
    TEST_CHECK("state: seen round-trips", state_seen_has(&st2, VIN2, "R-notification-000009") &&
               state_seen_has(&st2, VIN1, "quote\" back\\ nl\n utf8 \xc3\xa9") &&
               state_seen_count(&st2, VIN1) == 11);
    TEST_CHECK("state: calls round-trip", c == 1 && r == 1);
    TEST_CHECK("state: configured refresh token round-trips",
               strcmp(state_configured_refresh_token(&st2), "configured-R") == 0);
    TEST_CHECK("state: loaded state is clean", !state_dirty(&st2));
    char *a = state_serialize(&st), *b = state_serialize(&st2);
    TEST_CHECK("state: identical serialisation after reload", a && b && strcmp(a, b) == 0);
    free(a);
    free(b);

    struct stat sb;
    TEST_CHECK("state: file mode is 0600", stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0600);
    /* A looser pre-existing file is replaced by a 0600 one, whatever the umask. */
    chmod(path, 0644);
    mode_t old = umask(0);
    TEST_CHECK("state: save over a 0644 file", state_save(&st, path, err, sizeof err) == 0);
    umask(old);
    TEST_CHECK("state: mode is 0600 again", stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0600);
    chmod(path, 0644);
    TEST_CHECK("state: load of a 0644 file", state_load(&st2, path, err, sizeof err) == 0);
    TEST_CHECK("state: load tightens mode to 0600",
               stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0600);
    state_free(&st);
    state_free(&st2);
}

static void test_missing_and_none(void)
{
    char path[256], err[STATE_ERR] = "";
    path_in(path, sizeof path, "missing.json");
    struct state st;
    state_init(&st);
    state_seen_add(&st, VIN1, "x");
    TEST_CHECK("state: missing file loads as empty", state_load(&st, path, err, sizeof err) == 0 &&
               state_seen_count(&st, VIN1) == 0 && !state_refresh_token(&st)[0]);
    state_seen_add(&st, VIN1, "x");
    TEST_CHECK("state: \"\" path loads empty", state_load(&st, "", err, sizeof err) == 0 &&
               state_seen_count(&st, VIN1) == 0);
    state_seen_add(&st, VIN1, "x");
    TEST_CHECK("state: \"\" path save is a clean no-op",
               state_save(&st, "", err, sizeof err) == 0 && !state_dirty(&st));
    state_free(&st);
}

/* Loads text from a file and expects an error mentioning the path and want. */
static void expect_load_error(const char *name, const char *text, const char *want)
{
    char path[256], err[STATE_ERR] = "", label[160];
    path_in(path, sizeof path, name);
    write_file(path, text);
    chmod(path, 0644);
    struct state st;
    state_init(&st);
    state_set_tokens(&st, "keep", "", 0);
    int rc = state_load(&st, path, err, sizeof err);
    struct stat sb;
    snprintf(label, sizeof label, "state: %s mode left alone", name);
    TEST_CHECK(label, stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0644);
    snprintf(label, sizeof label, "state: %s refused", name);
    TEST_CHECK(label, rc == -1);
    snprintf(label, sizeof label, "state: %s error names the file and '%s'", name, want);
    TEST_CHECK(label, strstr(err, path) && strstr(err, want) && !strchr(err, '\n'));
    snprintf(label, sizeof label, "state: %s leaves the state unchanged", name);
    TEST_CHECK(label, strcmp(state_refresh_token(&st), "keep") == 0);
    state_free(&st);
}

static void test_bad_files(void)
{
    expect_load_error("corrupt.json", "{\"format\":\"toyota2mqtt-state\",\"vers", "corrupt");
    expect_load_error("empty.json", "", "corrupt");
    expect_load_error("junk.json", "{\"format\":\"toyota2mqtt-state\",\"version\":1}{}", "corrupt");
    expect_load_error("foreign.json", "{\"name\":\"something else\"}", "not a toyota2mqtt state file");
    expect_load_error("array.json", "[1,2]", "not a toyota2mqtt state file");
    expect_load_error("v2.json", "{\"format\":\"toyota2mqtt-state\",\"version\":2}",
                      "unsupported state file version 2");
    expect_load_error("vstr.json", "{\"format\":\"toyota2mqtt-state\",\"version\":\"1\"}", "version");
    expect_load_error("oauth.json",
                      "{\"format\":\"toyota2mqtt-state\",\"version\":1,\"oauth\":{\"refresh_token\":5}}",
                      "oauth");
    expect_load_error("seen.json",
                      "{\"format\":\"toyota2mqtt-state\",\"version\":1,\"vehicles\":{\""
                      VIN1 "\":{\"seen\":[\"a\",7]}}}", "seen[1]");
    expect_load_error("vin.json",
                      "{\"format\":\"toyota2mqtt-state\",\"version\":1,\"vehicles\":{\"a/b\":{}}}",
                      "VIN");
    expect_load_error("calls.json",
                      "{\"format\":\"toyota2mqtt-state\",\"version\":1,\"vehicles\":{\""
                      VIN1 "\":{\"calls\":{\"2026-11-27\":{\"calls\":1.5}}}}}", "calls");
    expect_load_error("exp.json",
                      "{\"format\":\"toyota2mqtt-state\",\"version\":1,"
                      "\"oauth\":{\"access_expires_at\":-1}}", "access_expires_at");

    char path[256], err[STATE_ERR] = "";
    path_in(path, sizeof path, "adir.json");
    mkdir(path, 0700);
    struct state st;
    state_init(&st);
    TEST_CHECK("state: a directory is refused",
               state_load(&st, path, err, sizeof err) == -1 && strstr(err, "not a regular file"));
    TEST_CHECK("state: save over a directory fails with a message",
               state_save(&st, path, err, sizeof err) == -1 && strstr(err, path));
    rmdir(path);

    const char *minimal = "{\"format\":\"toyota2mqtt-state\",\"version\":1}\n";
    TEST_CHECK("state: minimal file parses",
               state_parse(&st, minimal, strlen(minimal), err, sizeof err) == 0);
    state_free(&st);
}

static pid_t dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid(pid, NULL, 0);
    return pid;
}

static void test_stale_tmp(void)
{
    char path[256], tmp[320], live[320], own[320], err[STATE_ERR] = "";
    path_in(path, sizeof path, "stale.json");
    struct state st;
    state_init(&st);
    fill(&st, "S", 3);
    state_save(&st, path, err, sizeof err);
    state_free(&st);

    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)dead_pid());
    snprintf(live, sizeof live, "%s.tmp.%ld", path, (long)getppid());
    snprintf(own, sizeof own, "%s.tmp.%ld", path, (long)getpid());
    write_file(tmp, "{\"format\":\"toyota2mqtt-sta");
    write_file(live, "x");
    write_file(own, "y");
    TEST_CHECK("state: load with a leftover tmp file", state_load(&st, path, err, sizeof err) == 0 &&
               strcmp(state_refresh_token(&st), "S") == 0);
    TEST_CHECK("state: dead process's tmp file removed", access(tmp, F_OK) != 0);
    TEST_CHECK("state: own pid's tmp file removed", access(own, F_OK) != 0);
    TEST_CHECK("state: live process's tmp file left alone", access(live, F_OK) == 0);
    unlink(live);

    /* Next to a corrupt file, leftovers are kept: they may help recovery. */
    write_file(path, "{corrupt");
    write_file(tmp, "{\"format\":\"toyota2mqtt-sta");
    TEST_CHECK("state: corrupt file with leftover refused", state_load(&st, path, err, sizeof err) == -1);
    TEST_CHECK("state: leftover kept next to a corrupt file", access(tmp, F_OK) == 0);
    unlink(tmp);
    TEST_CHECK("state: save repairs", state_save(&st, path, err, sizeof err) == 0 &&
               state_load(&st, path, err, sizeof err) == 0 && strcmp(state_refresh_token(&st), "S") == 0);

    /* A leftover with our own pid must not block a save (O_EXCL). */
    write_file(own, "y");
    TEST_CHECK("state: save despite own-pid leftover", state_save(&st, path, err, sizeof err) == 0 &&
               access(own, F_OK) != 0);
    state_free(&st);
}

/* A child saves two different states in turn as fast as it can; it is killed
 * with SIGKILL at random moments. Every load afterwards must succeed and give
 * one of the two states (or the initial one). */
static void test_kill9(void)
{
    char path[256], err[STATE_ERR] = "";
    path_in(path, sizeof path, "kill.json");
    struct state a, b, init;
    state_init(&a);
    state_init(&b);
    state_init(&init);
    fill(&a, "A", 600);
    fill(&b, "B", 900);
    fill(&init, "I", 1);
    TEST_CHECK("state: kill9 initial save", state_save(&init, path, err, sizeof err) == 0);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int ok = 1, seen_a = 0, seen_b = 0;
    const int rounds = 40;
    for (int i = 0; i < rounds && ok; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            char e[STATE_ERR];
            for (int n = 0;; n++) state_save(n % 2 ? &b : &a, path, e, sizeof e);
        }
        if (pid < 0) break;
        usleep((useconds_t)(rand() % 25000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        struct state st;
        state_init(&st);
        if (state_load(&st, path, err, sizeof err) != 0) {
            printf("# round %d: %s\n", i, err);
            ok = 0;
        } else {
            const char *m = state_refresh_token(&st);
            size_t n = state_seen_count(&st, VIN1);
            if (strcmp(m, "A") == 0 && n == 600) seen_a++;
            else if (strcmp(m, "B") == 0 && n == 900) seen_b++;
            else if (!(strcmp(m, "I") == 0 && n == 1)) ok = 0;
        }
        state_free(&st);
    }
    printf("# kill9: %d rounds, old/new A=%d B=%d\n", rounds, seen_a, seen_b);
    TEST_CHECK("state: kill -9 during saves always leaves a loadable old or new file", ok);
    int leftovers = 0;
    DIR *d = opendir(dir_);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strstr(e->d_name, "kill.json.tmp.")) leftovers++;
    if (d) closedir(d);
    TEST_CHECK("state: no tmp files left after the last load", leftovers == 0);
    state_free(&a);
    state_free(&b);
    state_free(&init);
}

int main(void)
{
    snprintf(dir_, sizeof dir_, "/tmp/t2m-state-XXXXXX");
    if (!mkdtemp(dir_)) {
        perror("mkdtemp");
        return 1;
    }
    test_accessors();
    test_seen_bound();
    test_days_bound();
    test_round_trip();
    test_missing_and_none();
    test_bad_files();
    test_stale_tmp();
    test_kill9();
    cleanup_dir();
    return TEST_REPORT();
}
