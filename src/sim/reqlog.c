/* reqlog.c - see reqlog.h. */
#include "reqlog.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

struct reqlog {
    pthread_mutex_t lock;
    FILE *fp;
};

struct reqlog *reqlog_open(const char *path)
{
    struct reqlog *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->fp = fopen(path, "a");
    if (!l->fp || pthread_mutex_init(&l->lock, NULL) != 0) {
        if (l->fp)
            fclose(l->fp);
        free(l);
        return NULL;
    }
    return l;
}

void reqlog_close(struct reqlog *l)
{
    if (!l)
        return;
    fclose(l->fp);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void reqlog_write(struct reqlog *l, const char *method, const char *path, const cJSON *query,
                  const char *body, size_t len, int status)
{
    if (!l)
        return;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    cJSON *q = query ? cJSON_Duplicate(query, 1) : cJSON_CreateObject();
    for (cJSON *it = q ? q->child : NULL; it; it = it->next) {
        if (it->string)
            util_utf8_sanitize(it->string);
        if (cJSON_IsString(it) && it->valuestring)
            util_utf8_sanitize(it->valuestring);
    }
    char safe_path[2048];
    snprintf(safe_path, sizeof safe_path, "%s", path);
    util_utf8_sanitize(safe_path);
    path = safe_path;
    const char *end = NULL;
    /* a body that is not valid UTF-8 would make the log line invalid JSON */
    cJSON *b = len && util_utf8_length(body, len) >= 0 ? cJSON_ParseWithLengthOpts(body, len, &end, 0) : NULL;
    if (b && end) {   /* only a whole-body JSON text counts */
        for (const char *p = end; p < body + len; p++) {
            if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
                cJSON_Delete(b);
                b = NULL;
                break;
            }
        }
    }
    if (!b)
        b = cJSON_CreateNull();
    char *line = NULL;
    if (q && b && cJSON_AddStringToObject(o, "method", method) &&
        cJSON_AddStringToObject(o, "path", path) && cJSON_AddItemToObject(o, "query", q)) {
        q = NULL;
        if (cJSON_AddItemToObject(o, "body", b)) {
            b = NULL;
            if (cJSON_AddNumberToObject(o, "status", status))
                line = cJSON_PrintUnformatted(o);
        }
    }
    cJSON_Delete(q);
    cJSON_Delete(b);
    cJSON_Delete(o);
    if (!line)
        return;
    pthread_mutex_lock(&l->lock);
    fprintf(l->fp, "%s\n", line);
    fflush(l->fp);
    pthread_mutex_unlock(&l->lock);
    free(line);
}
