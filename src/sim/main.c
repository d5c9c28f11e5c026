/* main.c - toyota2mqtt-sim: a simulator of the Toyota Connected Services
 * cloud API. Parses arguments, builds the fleet, starts libmicrohttpd, waits
 * for SIGTERM/SIGINT and stops cleanly. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "faults.h"
#include "fleet.h"
#include "handlers.h"
#include "oauth.h"
#include "reqlog.h"

struct options {
    long port;
    long vehicles;
    unsigned long long seed;
    const char *token;
    const char *request_log;
    const char *bind;
    const char *refresh_token;
    long long epoch;            /* -1: now */
    long command_delay;
    double speed;
    struct fault_config faults;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: toyota2mqtt-sim --token T [options]\n"
            "Simulates the Toyota Connected Services API under http://BIND:PORT/connected/v1\n"
            "  --port N            TCP port, 0 picks a free one (default 0)\n"
            "  --bind ADDR         IPv4 address to listen on (default 127.0.0.1)\n"
            "  --vehicles N        vehicles in the account, 0..1000 (default 4)\n"
            "  --seed N            seed of the deterministic fleet (default 1)\n"
            "  --token T           the bearer token the API accepts (required)\n"
            "  --request-log FILE  append one JSON line per API request\n"
            "  --refresh-token RT  refresh token accepted by POST /oauth2/token\n"
            "  --token-ttl S       lifetime of issued access tokens (default 3600)\n"
            "  --error-rate F      probability 0..1 of a 500/503 answer\n"
            "  --latency-ms N      delay added to every API answer\n"
            "  --rate-limit N      API requests allowed per window (0 = no limit)\n"
            "  --rate-window S     rate-limit window in seconds (default 60)\n"
            "  --truncate-rate F   probability 0..1 of a truncated 200 body\n"
            "  --speed F           simulated seconds per real second (default 1)\n"
            "  --epoch T           simulated start time, Unix seconds (default now)\n"
            "  --command-delay S   simulated seconds before a command takes effect (default 0)\n"
            "  --help              this text\n"
            "Prints 'listening on http://ADDR:PORT/connected/v1' when ready; SIGTERM/SIGINT stop it.\n");
}

static int parse_long(const char *s, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Applies one option; returns 0 or -1 (message printed). */
static int apply_option(struct options *o, int c, const char *arg, const char *name)
{
    long long v = 0;
    double d = 0;
    int rc = 0;
    switch (c) {
    case 'p': rc = parse_long(arg, 0, 65535, &v); o->port = (long)v; break;
    case 'n': rc = parse_long(arg, 0, FLEET_MAX_VEHICLES, &v); o->vehicles = (long)v; break;
    case 's': rc = parse_long(arg, 0, LLONG_MAX, &v); o->seed = (unsigned long long)v; break;
    case 't': o->token = arg; rc = arg[0] && strlen(arg) < 500 ? 0 : -1; break;
    case 'l': o->request_log = arg; break;
    case 'b': o->bind = arg; break;
    case 'r': o->refresh_token = arg; rc = arg[0] && strlen(arg) < 500 ? 0 : -1; break;
    case 'T': rc = parse_long(arg, 1, 31536000, &v); o->faults.token_ttl = (int)v; break;
    case 'e': rc = parse_double(arg, 0, 1, &d); o->faults.error_rate = d; break;
    case 'L': rc = parse_long(arg, 0, 60000, &v); o->faults.latency_ms = (int)v; break;
    case 'R': rc = parse_long(arg, 0, 1000000, &v); o->faults.rate_limit = (int)v; break;
    case 'W': rc = parse_long(arg, 1, 86400, &v); o->faults.rate_window = (int)v; break;
    case 'x': rc = parse_double(arg, 0, 1, &d); o->faults.truncate_rate = d; break;
    case 'S': rc = parse_double(arg, 0.001, 100000, &d); o->speed = d; break;
    case 'E': rc = parse_long(arg, 0, 253402300799LL, &v); o->epoch = v; break;
    case 'D': rc = parse_long(arg, 0, 86400, &v); o->command_delay = (long)v; break;
    default: rc = -1; break;
    }
    if (rc != 0)
        fprintf(stderr, "toyota2mqtt-sim: bad value for --%s: '%s'\n", name, arg);
    return rc;
}

/* Returns 0 to run, 1 after --help, 2 on bad arguments. */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'}, {"vehicles", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'}, {"token", required_argument, NULL, 't'},
        {"request-log", required_argument, NULL, 'l'}, {"bind", required_argument, NULL, 'b'},
        {"refresh-token", required_argument, NULL, 'r'}, {"token-ttl", required_argument, NULL, 'T'},
        {"error-rate", required_argument, NULL, 'e'}, {"latency-ms", required_argument, NULL, 'L'},
        {"rate-limit", required_argument, NULL, 'R'}, {"rate-window", required_argument, NULL, 'W'},
        {"truncate-rate", required_argument, NULL, 'x'}, {"speed", required_argument, NULL, 'S'},
        {"epoch", required_argument, NULL, 'E'}, {"command-delay", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->vehicles = 4;
    o->seed = 1;
    o->bind = "127.0.0.1";
    o->epoch = -1;
    o->speed = 1.0;
    o->faults.rate_window = 60;
    o->faults.token_ttl = 3600;
    int c, idx = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 1;
        }
        if (c == '?' || c == ':') {
            fprintf(stderr, "toyota2mqtt-sim: unknown option or missing value: %s\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
        const char *name = NULL;
        for (const struct option *lo = longopts; lo->name; lo++)
            if (lo->val == c)
                name = lo->name;
        if (apply_option(o, c, optarg, name ? name : "?") != 0)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "toyota2mqtt-sim: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->token) {
        fprintf(stderr, "toyota2mqtt-sim: --token is required\n");
        usage(stderr);
        return 2;
    }
    return 0;
}

static struct MHD_Daemon *start_daemon(struct sim_server *s, const struct sockaddr_in *addr)
{
    return MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_ERROR_LOG,
                            0, NULL, NULL, handlers_access, s,
                            MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)addr,
                            MHD_OPTION_NOTIFY_COMPLETED, handlers_completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                            MHD_OPTION_END);
}

/* Frees everything in s that main created. */
static void teardown(struct sim_server *s)
{
    fleet_free(s->fleet);
    faults_free(s->faults);
    oauth_free(s->oauth);
    reqlog_close(s->log);
}

static int run(const struct options *o, struct sim_server *s, const sigset_t *sigs)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->bind, &addr.sin_addr) != 1) {
        fprintf(stderr, "toyota2mqtt-sim: bad --bind address '%s'\n", o->bind);
        return 2;
    }
    struct MHD_Daemon *d = start_daemon(s, &addr);
    if (!d) {
        fprintf(stderr, "toyota2mqtt-sim: cannot listen on %s:%ld\n", o->bind, o->port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info ? info->port : (unsigned)o->port;
    const char *host = strcmp(o->bind, "0.0.0.0") == 0 ? "127.0.0.1" : o->bind;
    printf("listening on http://%s:%u/connected/v1\n", host, port);
    fflush(stdout);
    int sig = 0;
    while (sigwait(sigs, &sig) != 0)
        ;
    fprintf(stderr, "toyota2mqtt-sim: signal %d, stopping\n", sig);
    atomic_store(&s->stopping, true);
    MHD_stop_daemon(d);
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    char err[256];
    if (faults_check(&o.faults, err, sizeof err) != 0) {
        fprintf(stderr, "toyota2mqtt-sim: %s\n", err);
        return 2;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 || signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("toyota2mqtt-sim: signals");
        return 1;
    }
    int64_t epoch = o.epoch >= 0 ? (int64_t)o.epoch : (int64_t)time(NULL);
    struct sim_server s;
    memset(&s, 0, sizeof s);
    s.fleet = fleet_new(o.seed, epoch, (size_t)o.vehicles);
    s.faults = faults_new(&o.faults, o.seed);
    s.oauth = oauth_new(o.token, o.refresh_token, o.faults.token_ttl);
    s.log = o.request_log ? reqlog_open(o.request_log) : NULL;
    if (!s.fleet || !s.faults || !s.oauth || (o.request_log && !s.log) ||
        handlers_init(&s, o.seed, o.speed, epoch, (int)o.command_delay) != 0) {
        if (o.request_log && !s.log)
            perror(o.request_log);
        else
            fprintf(stderr, "toyota2mqtt-sim: out of memory\n");
        teardown(&s);
        return 1;
    }
    rc = run(&o, &s, &sigs);
    handlers_destroy(&s);
    teardown(&s);
    return rc;
}
