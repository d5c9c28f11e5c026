/* poller.h - polling: the account's vehicle list and each resource of each
 * vehicle on its own interval, over the http module, into retained state. */
#ifndef POLLER_H
#define POLLER_H

#include <stdbool.h>

#include "bridge.h"

/* Starts every request that is due. */
void poller_tick(struct bridge *b);

/* Monotonic time at which the next request falls due (may be in the past). */
double poller_next_due(const struct bridge *b);

/* --once: true when the vehicle list and every resource of every vehicle
 * has been fetched (or has failed) once and nothing is in flight. */
bool poller_done_once(const struct bridge *b);

/* Publishes bridge/info (version, VINs, configuration without secrets). */
void poller_publish_info(struct bridge *b);

/* Publishes what changed of bridge/stats, bridge/error (what is wrong, or
 * cleared) and each vehicle's api_calls. */
void poller_publish_stats(struct bridge *b);

/* Frees the vehicle table. */
void poller_free(struct bridge *b);

/* UTC date (YYYY-MM-DD) of t shifted by days. */
void poller_date(char out[11], time_t t, int days);

#endif
