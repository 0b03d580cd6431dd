#include "counter_service.h"

#include "net.h"
#include "workload.h"

#define COUNTER_MAGIC 0x52544e434f435355ull /* "USCOCNTR" */

struct counter_record {
    uint64_t magic;
    uint64_t value;
    uint64_t check; /* magic ^ value, catches a half-written sector */
    uint8_t pad[US_SECTOR_SIZE - 24];
};

static struct counter_record record __attribute__((aligned(64)));
static uint64_t counter;
static int have_disk;

static int block_io(unsigned nr, uint64_t sector, void *data, uint64_t len)
{
    struct us_hc_block_io io = {sector, (uint64_t)(uintptr_t)data, len, 0};
    hypercall(nr, &io);
    return (int)io.ret;
}

static void counter_store(void)
{
    if (!have_disk)
        return;
    record.magic = COUNTER_MAGIC;
    record.value = counter;
    record.check = COUNTER_MAGIC ^ counter;
    if (block_io(US_HC_BLOCK_WRITE, 0, &record, sizeof(record)) != US_OK)
        print("counter: disk write failed\n");
}

static size_t put(uint8_t *out, size_t at, const char *s)
{
    size_t n = strlen(s);
    memcpy(out + at, s, n);
    return at + n;
}

static size_t put_u64(uint8_t *out, size_t at, uint64_t v)
{
    return at + fmt_u64((char *)out + at, v);
}

/* Requests are one line of text; see docs/demo-guest.md. */
static size_t serve(const uint8_t *data, size_t len, uint8_t *reply, size_t cap)
{
    const char *req = (const char *)data, *end = req + len;
    size_t n = 0;
    if (cap < 96)
        return 0;
    if (starts_with(req, len, "get")) {
        n = put_u64(reply, 0, counter);
    } else if (starts_with(req, len, "time")) {
        n = put_u64(reply, 0, clock_ns());
    } else if (starts_with(req, len, "dirty ")) {
        const char *p = req + 6;
        uint64_t first = parse_u64(&p, end), count = parse_u64(&p, end);
        uint64_t pfn = workload_dirty(first, count);
        n = put(reply, 0, "dirtied ");
        n = put_u64(reply, n, pfn);
        n = put(reply, n, " ");
        n = put_u64(reply, n, count > workload_pages() ? workload_pages() : count);
        n = put(reply, n, " rx ");
        n = put_u64(reply, n, net_rx_buffer_pfn());
    } else if (starts_with(req, len, "rate ")) {
        const char *p = req + 5;
        workload_set_rate(parse_u64(&p, end));
        n = put(reply, 0, "rate ");
        n = put_u64(reply, n, workload_rate());
    } else if (starts_with(req, len, "info")) {
        n = put(reply, 0, "counter ");
        n = put_u64(reply, n, counter);
        n = put(reply, n, " workload-pfn ");
        n = put_u64(reply, n, workload_first_pfn());
        n = put(reply, n, " workload-pages ");
        n = put_u64(reply, n, workload_pages());
        n = put(reply, n, " rate ");
        n = put_u64(reply, n, workload_rate());
    } else {
        counter++;
        counter_store();
        n = put_u64(reply, 0, counter);
    }
    reply[n++] = '\n';
    return n;
}

void counter_service_init(const struct us_boot_info *boot)
{
    have_disk = boot->block_sectors > 0;
    if (have_disk && block_io(US_HC_BLOCK_READ, 0, &record, sizeof(record)) == US_OK && record.magic == COUNTER_MAGIC &&
        record.check == (COUNTER_MAGIC ^ record.value))
        counter = record.value;
    net_bind_udp(boot->udp_port, serve);
    print("counter: starting at ");
    print_u64(counter);
    print(have_disk ? " (kept on disk)\n" : " (no disk: memory only)\n");
}

uint64_t counter_value(void)
{
    return counter;
}
