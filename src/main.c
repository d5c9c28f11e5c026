/* main.c - command line, start-up order and reload; see README.md. */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "config.h"
#include "fields.h"
#include "log.h"

#define DEFAULT_CONFIG "/etc/toyota2mqtt/toyota2mqtt.conf"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: toyota2mqtt [-c FILE] [options]\n"
            "Bridges the Toyota Connected Services API to MQTT and Home Assistant.\n\n"
            "  -c, --config FILE    configuration file (default " DEFAULT_CONFIG ")\n"
            "      --check-config   validate the configuration and exit (0 valid, 2 not)\n"
            "      --once           poll every resource of every vehicle once, publish, exit\n"
            "                       (0 only if everything succeeded)\n"
            "  -l, --log-level LVL  error, warn, info or debug (overrides log_level)\n"
            "      --entities       print the table of fields and entities (Markdown) and exit\n"
            "  -V, --version        print the version and exit\n"
            "  -h, --help           print this help and exit\n\n"
            "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the configuration.\n");
}

/* Runs the bridge until it stops; on SIGHUP re-reads path into next and
 * runs again with it. The bridge validated the file before asking for the
 * reload, but it may have changed since: a file that no longer loads keeps
 * the running configuration instead of ending the daemon. */
static int run(struct config *cfg, struct config *next, const char *path, const char *level,
               bool once, char *err, size_t errlen)
{
    for (;;) {
        if (level) snprintf(cfg->log_level, sizeof cfg->log_level, "%s", level);
        int status = bridge_run(cfg, once);
        if (status != BRIDGE_RELOAD) return status;
        if (config_load(next, path, err, errlen) != 0) {
            log_error("reload: %s; keeping the running configuration", err);
            continue;
        }
        struct config *t = cfg;
        cfg = next;
        next = t;
        memset(next, 0, sizeof *next);
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "check-config", no_argument, NULL, 'k' },
        { "once", no_argument, NULL, 'o' },         { "log-level", required_argument, NULL, 'l' },
        { "version", no_argument, NULL, 'V' },      { "help", no_argument, NULL, 'h' },
        { "entities", no_argument, NULL, 'E' },
        { NULL, 0, NULL, 0 } };
    const char *path = DEFAULT_CONFIG, *level = NULL;
    bool check = false, once = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'k': check = true; break;
        case 'o': once = true; break;
        case 'l':
            if (log_level_parse(optarg) < 0) {
                fprintf(stderr, "toyota2mqtt: --log-level: expected error, warn, info or debug\n");
                return 2;
            }
            level = optarg;
            break;
        case 'V': printf("toyota2mqtt %s\n", T2M_VERSION); return 0;
        case 'E': {
            char *md = fields_markdown();
            if (!md) return 1;
            fputs(md, stdout);
            free(md);
            return 0;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "toyota2mqtt: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "toyota2mqtt: cannot initialise libcurl\n");
        return 1;
    }
    struct config *cfg = malloc(sizeof *cfg), *next = malloc(sizeof *next);
    int status = cfg && next ? 0 : 1;
    char err[CONFIG_ERR];
    if (status == 0 && config_load(cfg, path, err, sizeof err) != 0) {
        fprintf(stderr, "toyota2mqtt: %s\n", err);
        status = 2;
    } else if (status == 0 && check) {
        printf("%s: configuration is valid\n", path);
    } else if (status == 0) {
        status = run(cfg, next, path, level, once, err, sizeof err);
    }
    if (next) memset(next, 0, sizeof *next);
    free(next);
    if (cfg) memset(cfg, 0, sizeof *cfg);    /* secrets do not outlive their use */
    free(cfg);
    curl_global_cleanup();
    return status;
}
