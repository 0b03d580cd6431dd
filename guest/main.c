/* The demo guest: answers ARP and ping, serves a counter over UDP and over
 * TCP (HTTP or lines on port 80) and runs a page-dirtying workload.
 * Everything it needs to know comes from the VMM in struct us_boot_info. */
#include "counter_service.h"
#include "net.h"
#include "runtime.h"
#include "tcp.h"
#include "workload.h"

static void print_ip(uint32_t ip)
{
    const uint8_t *b = (const uint8_t *)&ip;
    for (int i = 0; i < 4; i++) {
        print_u64(b[i]);
        if (i < 3)
            print(".");
    }
}

void guest_main(const struct us_boot_info *boot)
{
    if (boot->magic != US_BOOT_MAGIC || boot->abi_version != US_ABI_VERSION) {
        print("demo guest: boot info missing or of another ABI version\n");
        halt(1);
    }
    print("demo guest: ip ");
    print_ip(boot->ipv4);
    print(" udp port ");
    print_u64(boot->udp_port);
    print(" memory ");
    print_u64(boot->mem_size >> 20);
    print(" MiB\n");

    net_init(boot);
    tcp_init();
    workload_init(boot);
    counter_service_init(boot);
    print("demo guest: ready\n");

    for (;;) {
        uint64_t now = clock_ns();
        workload_tick(now);
        uint64_t timer = tcp_tick(now);
        if (net_poll_once())
            continue;
        uint64_t wait = workload_rate() ? 2000000ull : 500000000ull;
        struct us_hc_poll poll = {timer < wait ? timer : wait, 0};
        hypercall(US_HC_POLL, &poll);
        if (poll.ready & US_POLL_RESTORED)
            tcp_restored(clock_ns());
    }
}
