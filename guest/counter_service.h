/* The demo guest's counter: the test oracle. It lives in memory and on the
 * guest's disk (sector 0) and is served over UDP; see docs/demo-guest.md. */
#ifndef UNDERSTUDY_GUEST_COUNTER_SERVICE_H
#define UNDERSTUDY_GUEST_COUNTER_SERVICE_H

#include "runtime.h"

void counter_service_init(const struct us_boot_info *boot);
uint64_t counter_value(void);

#endif
