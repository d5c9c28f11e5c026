/* resource.c - the resource table; see resource.h. */
#include "resource.h"

#include <string.h>

static const struct resource_info resources[RES_COUNT] = {
    [RES_VEHICLE]         = { "vehicle",         "",                 "lastConnectedAt", 3600,  false },
    [RES_STATUS]          = { "status",          "/status",          "lastUpdatedAt",   300,   false },
    [RES_HEALTH]          = { "health",          "/health",          "lastReportedAt",  3600,  true  },
    [RES_LOCATION]        = { "location",        "/location",        "timestamp",       300,   true  },
    [RES_ELECTRIC]        = { "electric",        "/electric",        "lastUpdatedAt",   300,   true  },
    [RES_CLIMATE]         = { "climate",         "/climate",         "lastUpdatedAt",   300,   true  },
    [RES_TRIPS]           = { "trips",           "/trips",           NULL,              3600,  false },
    [RES_NOTIFICATIONS]   = { "notifications",   "/notifications",   NULL,              900,   false },
    [RES_SERVICE_HISTORY] = { "service_history", "/service-history", NULL,              86400, true  },
};

const struct resource_info *resource_get(enum resource r)
{
    return &resources[r];
}

int resource_from_name(const char *name)
{
    for (int i = 0; i < RES_COUNT; i++)
        if (name && strcmp(name, resources[i].name) == 0) return i;
    return -1;
}
