/* The demo guest's memory workload: dirties guest pages, either at a steady
 * rate (pages per second) or on request, for benchmarks and dirty-log tests. */
#ifndef UNDERSTUDY_GUEST_WORKLOAD_H
#define UNDERSTUDY_GUEST_WORKLOAD_H

#include "runtime.h"

void workload_init(const struct us_boot_info *boot);
void workload_set_rate(uint64_t pages_per_second);
uint64_t workload_rate(void);
/* Writes to `count` pages starting at workload page `first` (wrapping);
 * returns the guest-physical page number of the first page written. */
uint64_t workload_dirty(uint64_t first, uint64_t count);
uint64_t workload_pages(void);
uint64_t workload_first_pfn(void);
/* Dirties the pages due since the last tick. */
void workload_tick(uint64_t now_ns);

#endif
