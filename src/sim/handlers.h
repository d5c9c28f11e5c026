/* handlers.h - the simulator's HTTP side: libmicrohttpd access handler that
 * routes /connected/v1 (the 16 API operations), /oauth2/token and the /_sim/
 * admin endpoints, validates requests, applies fault injection and writes
 * the request log.
 *
 * One mutex (server.lock) guards the fleet, the clock offset and the request
 * id generator; faults, oauth and reqlog have their own locks.
 */
#ifndef SIM_HANDLERS_H
#define SIM_HANDLERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "faults.h"
#include "fleet.h"
#include "oauth.h"
#include "reqlog.h"
#include "util.h"

#define HANDLERS_BODY_MAX (64 * 1024)

struct sim_server {
    pthread_mutex_t lock;
    struct fleet *fleet;
    struct faults *faults;
    struct oauth *oauth;
    struct reqlog *log;            /* NULL without --request-log */
    double speed;                  /* sim seconds per real second */
    int64_t epoch;                 /* sim time at start */
    struct timespec mono_start;
    int64_t offset;                /* seconds added by POST /_sim/advance */
    int command_delay;             /* sim seconds before a command takes effect */
    struct rng rng;                /* request ids */
    atomic_bool stopping;          /* set before MHD_stop_daemon: cuts injected latency short */
};

/* Fills s (fleet, faults, oauth and log already created by the caller) and
 * initialises the lock and clock. Returns 0 or -1. */
int handlers_init(struct sim_server *s, uint64_t seed, double speed, int64_t epoch, int command_delay);
void handlers_destroy(struct sim_server *s);

/* The current simulated time. */
int64_t handlers_sim_now(struct sim_server *s);

/* MHD_AccessHandlerCallback; cls is the struct sim_server. */
enum MHD_Result handlers_access(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls);
/* MHD_RequestCompletedCallback: frees the per-request state. */
void handlers_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                        enum MHD_RequestTerminationCode toe);

#endif
