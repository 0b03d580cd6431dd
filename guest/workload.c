#include "workload.h"

static uint8_t *area;
static uint64_t area_pages;
static uint64_t rate;
static uint64_t next_page;
static uint64_t last_tick_ns;
static uint64_t generation;

void workload_init(const struct us_boot_info *boot)
{
    area = (uint8_t *)(uintptr_t)boot->image_end;
    area_pages = boot->mem_size > boot->image_end ? (boot->mem_size - boot->image_end) / US_PAGE_SIZE : 0;
    rate = boot->dirty_pages_per_second;
}

void workload_set_rate(uint64_t pages_per_second)
{
    rate = pages_per_second;
    last_tick_ns = clock_ns();
}

uint64_t workload_rate(void)
{
    return rate;
}
uint64_t workload_pages(void)
{
    return area_pages;
}
uint64_t workload_first_pfn(void)
{
    return (uint64_t)(uintptr_t)area / US_PAGE_SIZE;
}

uint64_t workload_dirty(uint64_t first, uint64_t count)
{
    if (!area_pages)
        return 0;
    first %= area_pages;
    if (count > area_pages)
        count = area_pages;
    generation++;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t page = (first + i) % area_pages;
        *(volatile uint64_t *)(area + page * US_PAGE_SIZE) = generation;
    }
    return workload_first_pfn() + first;
}

void workload_tick(uint64_t now_ns)
{
    if (!rate || !area_pages) {
        last_tick_ns = now_ns;
        return;
    }
    if (now_ns <= last_tick_ns)
        return;
    uint64_t due = (now_ns - last_tick_ns) * rate / 1000000000ull;
    if (!due)
        return;
    if (due > area_pages) {
        due = area_pages;
        last_tick_ns = now_ns;
    } else {
        last_tick_ns += due * 1000000000ull / rate;
    }
    workload_dirty(next_page, due);
    next_page = (next_page + due) % area_pages;
}
