/* http.c - libcurl multi wrapper; see http.h. Modelled on curl's
 * docs/examples/multi-*.c: one multi handle, curl_multi_poll, info_read. */
#include "http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

struct xfer {
    CURL *easy;
    struct curl_slist *headers;
    char *method, *url, *body;
    char *resp;
    size_t len, cap;
    bool too_big;
    long retry_after_s;
    char errbuf[CURL_ERROR_SIZE];
    http_done_fn done;
    void *ud;
    struct http *h;
    struct xfer *next;        /* in the waiting FIFO, or the active list */
};

struct http {
    CURLM *multi;
    int max_running;
    int timeout_s;
    size_t max_body;
    int running;              /* transfers added to the multi handle */
    struct xfer *active;      /* those transfers (curl 7.88 cannot list them) */
    struct xfer *wait_head, *wait_tail;
    size_t waiting;
};

struct http *http_create(int max_connections, int timeout_s, size_t max_body)
{
    struct http *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->multi = curl_multi_init();
    if (!h->multi) {
        free(h);
        return NULL;
    }
    h->max_running = max_connections > 0 ? max_connections : 1;
    h->timeout_s = timeout_s > 0 ? timeout_s : 20;
    h->max_body = max_body;
    if (curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)h->max_running) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->max_running) != CURLM_OK ||
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->max_running) != CURLM_OK)
        log_warn("http: could not set connection limits");
    return h;
}

static void xfer_free(struct xfer *x)
{
    if (!x) return;
    if (x->easy) curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->method);
    free(x->url);
    free(x->body);
    free(x->resp);
    free(x);
}

static void cancel(struct xfer *x)
{
    struct http_response r = { .error = "cancelled", .retry_after_s = -1, .body = "",
                               .cancelled = true };
    x->done(x->ud, &r);
    xfer_free(x);
}

void http_destroy(struct http *h)
{
    if (!h) return;
    while (h->active) {
        struct xfer *x = h->active;
        h->active = x->next;
        curl_multi_remove_handle(h->multi, x->easy);
        cancel(x);
    }
    while (h->wait_head) {
        struct xfer *x = h->wait_head;
        h->wait_head = x->next;
        cancel(x);
    }
    curl_multi_cleanup(h->multi);
    free(h);
}

/* Appends received bytes; returning a short count makes curl abort the
 * transfer, which is how an oversized body is refused. */
static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    if (x->len + n > x->h->max_body) {
        x->too_big = true;
        return 0;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1) cap *= 2;
        char *p = realloc(x->resp, cap);
        if (!p) return 0;
        x->resp = p;
        x->cap = cap;
    }
    memcpy(x->resp + x->len, ptr, n);
    x->len += n;
    x->resp[x->len] = '\0';
    return n;
}

/* Picks Retry-After (delta-seconds form) out of the response headers. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n > sizeof name && strncasecmp(buf, name, sizeof name - 1) == 0) {
        char tmp[32];
        size_t k = n - (sizeof name - 1);
        if (k >= sizeof tmp) k = sizeof tmp - 1;
        memcpy(tmp, buf + sizeof name - 1, k);
        tmp[k] = '\0';
        char *end;
        long v = strtol(tmp, &end, 10);
        if (end != tmp && v >= 0 && v < 86400 * 7) x->retry_after_s = v;
    }
    return n;
}

static int xfer_setup(struct http *h, struct xfer *x)
{
    CURL *e = curl_easy_init();
    if (!e) return -1;
    x->easy = e;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, x->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)(h->timeout_s < 10 ? h->timeout_s : 10)) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)h->timeout_s) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "toyota2mqtt/" T2M_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    if (strcmp(x->method, "GET") != 0) {
        bad |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "") != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(x->body ? strlen(x->body) : 0)) != CURLE_OK;
    }
    return bad ? -1 : 0;
}

/* Moves waiting transfers into the multi handle while there is room. */
static void start_waiting(struct http *h)
{
    while (h->wait_head && h->running < h->max_running) {
        struct xfer *x = h->wait_head;
        h->wait_head = x->next;
        if (!h->wait_head) h->wait_tail = NULL;
        h->waiting--;
        x->next = NULL;
        if (xfer_setup(h, x) != 0 || curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
            struct http_response r = { .status = 0, .error = "could not start the transfer",
                                       .retry_after_s = -1, .body = "" };
            x->done(x->ud, &r);
            xfer_free(x);
            continue;
        }
        x->next = h->active;
        h->active = x;
        h->running++;
    }
}

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

int http_request(struct http *h, const char *method, const char *url,
                 const char *const *headers, const char *body,
                 http_done_fn done, void *ud)
{
    struct xfer *x = calloc(1, sizeof *x);
    if (!x) return -1;
    x->h = h;
    x->done = done;
    x->ud = ud;
    x->retry_after_s = -1;
    x->method = dup_str(method);
    x->url = dup_str(url);
    x->body = dup_str(body);
    if (!x->method || !x->url || (body && !x->body)) goto fail;
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *l = curl_slist_append(x->headers, headers[i]);
        if (!l) goto fail;
        x->headers = l;
    }
    if (h->wait_tail) h->wait_tail->next = x;
    else h->wait_head = x;
    h->wait_tail = x;
    h->waiting++;
    return 0;
fail:
    xfer_free(x);
    return -1;
}

/* Reports each finished transfer to its owner and frees it. Returns how
 * many were reported. */
static int finish_done(struct http *h)
{
    int n = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *e = msg->easy_handle;
        struct xfer *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        struct http_response r = { .retry_after_s = x->retry_after_s };
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &r.elapsed_s);
        if (x->too_big) {
            r.error = "response body too large (api.max_body_bytes)";
            r.status = 0;
        } else if (msg->data.result != CURLE_OK) {
            r.error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(msg->data.result);
            r.status = 0;
        }
        r.body = x->resp ? x->resp : "";
        r.len = x->len;
        curl_multi_remove_handle(h->multi, e);
        for (struct xfer **pp = &h->active; *pp; pp = &(*pp)->next)
            if (*pp == x) {
                *pp = x->next;
                break;
            }
        h->running--;
        x->done(x->ud, &r);
        xfer_free(x);
        n++;
    }
    return n;
}

int http_poll(struct http *h, int timeout_ms, int extra_fd, bool *extra_ready)
{
    struct curl_waitfd wfd = { .fd = extra_fd, .events = CURL_WAIT_POLLIN, .revents = 0 };
    int still, numfds = 0;
    *extra_ready = false;
    start_waiting(h);
    if (curl_multi_perform(h->multi, &still) != CURLM_OK) return -1;
    /* A callback run here may have changed what the caller waits for (a token
     * arrived, a slot became due): its timeout is stale, so do not sleep. */
    if (finish_done(h) > 0) timeout_ms = 0;
    start_waiting(h);
    if (h->waiting && h->running < h->max_running) timeout_ms = 0;
    CURLMcode rc = curl_multi_poll(h->multi, extra_fd >= 0 ? &wfd : NULL,
                                   extra_fd >= 0 ? 1 : 0, timeout_ms, &numfds);
    if (rc != CURLM_OK) return -1;
    *extra_ready = (wfd.revents & CURL_WAIT_POLLIN) != 0;
    if (curl_multi_perform(h->multi, &still) != CURLM_OK) return -1;
    finish_done(h);
    start_waiting(h);
    return 0;
}

void http_wakeup(struct http *h)
{
    curl_multi_wakeup(h->multi);
}

size_t http_pending(const struct http *h)
{
    return h->waiting + (size_t)h->running;
}
