/* http.h - the only module that includes curl.h: one multi handle, a bounded
 * number of concurrent transfers with our own FIFO in front of it (curl's
 * CURLOPT_TIMEOUT would otherwise count time spent waiting for a connection),
 * a cap on response bodies, and a poll that also watches one extra fd.
 */
#ifndef HTTP_H
#define HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct http;

struct http_response {
    long status;            /* HTTP status, 0 when no response arrived */
    const char *body;       /* len bytes, NUL-terminated; valid during the callback only */
    size_t len;
    const char *error;      /* transport error text, or NULL when a response arrived */
    long retry_after_s;     /* Retry-After in seconds, -1 when absent */
    double elapsed_s;
    bool cancelled;         /* http_destroy(): only free what ud owns */
};

typedef void (*http_done_fn)(void *ud, const struct http_response *resp);

/* Creates the client (curl_global_init must have run). Returns NULL on
 * failure. Free with http_destroy(), which calls the callback of every
 * unfinished transfer with cancelled set, so that owners can free their
 * context. */
struct http *http_create(int max_connections, int timeout_s, size_t max_body);
void http_destroy(struct http *h);

/* Queues a request. headers: NULL-terminated array of "Name: value" lines
 * (copied). body may be NULL (copied otherwise). done is called exactly once
 * from http_poll() on this thread. Returns 0, or -1 on allocation failure. */
int http_request(struct http *h, const char *method, const char *url,
                 const char *const *headers, const char *body,
                 http_done_fn done, void *ud);

/* Runs transfers and completion callbacks; waits up to timeout_ms for
 * network activity, extra_fd becoming readable (when >= 0), or
 * http_wakeup(). Sets *extra_ready. Returns 0, or -1 on a curl error. */
int http_poll(struct http *h, int timeout_ms, int extra_fd, bool *extra_ready);

/* Interrupts a http_poll() wait; callable from any thread. */
void http_wakeup(struct http *h);

/* Transfers queued or running. */
size_t http_pending(const struct http *h);

#endif
