/* api.h - the Toyota Connected Services API as pure functions: request paths
 * and bodies for its operations, parsing and validation of its responses.
 * No I/O; every function here is safe on hostile bytes and is fuzzed.
 */
#ifndef API_H
#define API_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "resource.h"

#define API_VIN_LEN 17
#define API_TEXT    128

/* A vehicle of the account, as listConnectedVehicles / getConnectedVehicle
 * describe it. Strings are "" when the API left them out. */
struct api_vehicle {
    char vin[API_VIN_LEN + 1];
    char alias[API_TEXT];
    char make[API_TEXT];
    char model[API_TEXT];
    char trim[API_TEXT];
    char color[API_TEXT];
    char guid[API_TEXT];
    int year;                 /* 0 when unknown */
    bool is_connected;
};

/* True when s is 17 characters of the VIN alphabet (A-Z, 0-9, no I, O, Q).
 * This is what makes a string safe to put in a URL path or a topic. */
bool api_vin_valid(const char *s);

/* Parses a ConnectedVehicle object into v. Returns 0, or -1 with err set when
 * it is not an object or has no valid vin, or a field has the wrong type. */
int api_vehicle_from_json(const cJSON *obj, struct api_vehicle *v, char *err, size_t errlen);

/* Parses a ConnectedVehicleList body. On success returns 0 and sets *out to a
 * malloc'd array of *n vehicles (caller frees; NULL when n is 0). Entries
 * with an invalid VIN are skipped with a message in err but do not fail the
 * list. Returns -1 with err set when the body is not a ConnectedVehicleList. */
int api_parse_vehicle_list(const char *body, size_t len, struct api_vehicle **out,
                           size_t *n, char *err, size_t errlen);

/* Parses a resource body (any JSON object whose known fields have the types
 * the spec gives them). Returns the parsed tree (caller cJSON_Delete()s) or
 * NULL with err set. */
cJSON *api_parse_resource(enum resource r, const char *body, size_t len,
                          char *err, size_t errlen);

/* True when len bytes are exactly one JSON value by RFC 8259's grammar
 * (strict numbers, escapes and strings; nesting at most 64 deep). */
bool api_json_valid(const char *body, size_t len);

/* The compact form of a valid JSON text: whitespace outside strings removed,
 * everything else byte for byte (no number is re-printed). Returns a malloc'd
 * NUL-terminated string the caller frees, or NULL on allocation failure. */
char *api_minify(const char *body, size_t len);

/* Path (below the base URL) of a GET of resource r for vin, into buf.
 * Returns 0, or -1 when it does not fit. Not for RES_TRIPS. */
int api_resource_path(char *buf, size_t len, const char *vin, enum resource r);

/* Path of one getTrips page: dates are "YYYY-MM-DD". Returns 0 or -1. */
int api_trips_path(char *buf, size_t len, const char *vin, const char *from_date,
                   const char *to_date, int limit, int offset, bool include_route);

/* Adds the trips of one TripHistoryList page to the array acc (taking copies).
 * Sets *total to the list's total and *count to the trips in this page.
 * Returns 0, or -1 with err set when the page is malformed. */
int api_trips_page_merge(cJSON *acc, const char *body, size_t len, int *total,
                         int *count, char *err, size_t errlen);

/* The outcome of a write operation, from a RefreshStatus body (or any 2xx
 * body without one). */
struct api_result {
    char request_id[API_TEXT];
    char status[API_TEXT];
    char return_code[API_TEXT];   /* "" when the API gave none */
    char timestamp[API_TEXT];
};

/* Parses a RefreshStatus body leniently: an empty or non-object body gives an
 * all-empty result. Returns 0, or -1 with err set for a malformed one. */
int api_parse_result(const char *body, size_t len, struct api_result *out,
                     char *err, size_t errlen);

/* The Error schema's message (or code) from an error body, into buf; "" if
 * none. Control characters are replaced. Returns buf. */
char *api_error_message(const char *body, size_t len, char *buf, size_t buflen);

#endif
