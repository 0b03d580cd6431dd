/* A test guest that misbehaves on purpose: it makes the hypercall named in its
 * command line with arguments no well-behaved guest would pass. The VMM must
 * stop it with a clear error and survive. Used by tests only. */
#include "runtime.h"

static int is(const char *cmd, const char *name)
{
    return strlen(cmd) == strlen(name) && memcmp(cmd, name, strlen(name)) == 0;
}

void guest_main(const struct us_boot_info *boot)
{
    const char *cmd = boot->cmdline;
    uint64_t past_ram = boot->mem_size + US_PAGE_SIZE;
    static char text[16] = "hello";
    print("hostile guest: ");
    print(cmd);
    print("\n");
    if (is(cmd, "console-past-ram")) {
        struct us_hc_console_write w = {past_ram, 16};
        hypercall(US_HC_CONSOLE_WRITE, &w);
    } else if (is(cmd, "console-huge-length")) {
        struct us_hc_console_write w = {(uint64_t)(uintptr_t)text, ~0ull - 8};
        hypercall(US_HC_CONSOLE_WRITE, &w);
    } else if (is(cmd, "args-past-ram")) {
        __asm__ volatile("outl %0, %w1" : : "a"((uint32_t)(boot->mem_size - 4)), "Nd"(US_HYPERCALL_PORT(US_HC_CLOCK)));
    } else if (is(cmd, "unknown-hypercall")) {
        __asm__ volatile("outl %0, %w1" : : "a"((uint32_t)US_BOOT_INFO_GPA), "Nd"(US_HYPERCALL_PORT(US_HC_COUNT + 7)));
    } else if (is(cmd, "net-read-huge")) {
        static uint8_t frame[64];
        struct us_hc_net_io io = {(uint64_t)(uintptr_t)frame, 1ull << 40, 0};
        hypercall(US_HC_NET_READ, &io);
    } else if (is(cmd, "block-wrap")) {
        static uint8_t sector[US_SECTOR_SIZE];
        struct us_hc_block_io io = {~0ull, (uint64_t)(uintptr_t)sector, US_SECTOR_SIZE, 0};
        hypercall(US_HC_BLOCK_READ, &io);
        if (io.ret == US_EINVAL)
            print("hostile guest: block read past the disk refused\n");
        halt(io.ret == US_EINVAL ? 0 : 1);
    } else if (is(cmd, "triple-fault")) {
        *(volatile uint64_t *)(uintptr_t)(boot->mem_size + (1ull << 30) * 64) = 1; /* unmapped */
    }
    print("hostile guest: the VMM let me continue\n");
    halt(2);
}
