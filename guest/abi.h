/* The whole interface between the demo guest and the built-in kvm VMM.
 *
 * Shared verbatim by the freestanding guest (C) and the VMM (C++), so it uses
 * only fixed-width types. A hypercall is one 32-bit port write:
 *     outl(US_HYPERCALL_PORT(nr), guest-physical address of its argument struct)
 * The VMM validates the address, reads the struct, acts, writes the results back
 * into the same struct, and the guest continues after the `out` instruction.
 * Every address and length in an argument struct is checked by the VMM; a bad
 * one stops the guest with an error (see docs/vmm.md).
 */
#ifndef UNDERSTUDY_GUEST_ABI_H
#define UNDERSTUDY_GUEST_ABI_H

#include <stdint.h>

#define US_ABI_VERSION 1u
#define US_PAGE_SIZE 4096u
#define US_SECTOR_SIZE 512u

/* Guest-physical layout the VMM builds before entry. */
#define US_GDT_GPA 0x1000u
#define US_PML4_GPA 0x2000u
#define US_PDPT_GPA 0x3000u
#define US_PD_GPA 0x4000u /* one page directory per GiB of RAM follows */
#define US_MAX_RAM_GIB 16u
#define US_BOOT_INFO_GPA 0x18000u   /* struct us_boot_info, also passed in %rdi */
#define US_KERNEL_MIN_GPA 0x100000u /* guest images are linked at or above 1 MiB */

#define US_HYPERCALL_PORT_BASE 0x500u
#define US_HYPERCALL_PORT(nr) (US_HYPERCALL_PORT_BASE + (nr))

enum us_hypercall {
    US_HC_CONSOLE_WRITE = 1, /* struct us_hc_console_write */
    US_HC_CLOCK = 2,         /* struct us_hc_clock */
    US_HC_NET_WRITE = 3,     /* struct us_hc_net_io: send one Ethernet frame */
    US_HC_NET_READ = 4,      /* struct us_hc_net_io: receive one frame if any */
    US_HC_POLL = 5,          /* struct us_hc_poll: wait for an event or timeout */
    US_HC_BLOCK_READ = 6,    /* struct us_hc_block_io */
    US_HC_BLOCK_WRITE = 7,   /* struct us_hc_block_io */
    US_HC_HALT = 8,          /* struct us_hc_halt: the guest stops for good */
    US_HC_COUNT = 9
};

/* Results in the `ret` fields. */
#define US_OK 0
#define US_EAGAIN 1 /* nothing to read now */
#define US_EINVAL 2 /* a well-formed request the device refuses (e.g. bad sector) */
#define US_EIO 3    /* the host side failed; the guest may retry */

#define US_MAX_CONSOLE_WRITE 4096u
#define US_MAX_FRAME 1518u /* Ethernet frame without FCS, no jumbo frames */
#define US_MAX_BLOCK_IO 65536u

struct us_hc_console_write {
    uint64_t data; /* gpa */
    uint64_t len;  /* <= US_MAX_CONSOLE_WRITE */
};

struct us_hc_clock {
    uint64_t now_ns; /* out: guest monotonic time; continuous across snapshot/restore */
};

struct us_hc_net_io {
    uint64_t data; /* gpa of the frame buffer */
    uint64_t len;  /* write: frame length; read: in buffer capacity, out frame length */
    int64_t ret;   /* out: US_OK, US_EAGAIN (read only), US_EIO */
};

#define US_POLL_NET 1u
#define US_POLL_RESTORED 2u /* once, after the VM was restored from a checkpoint (a failover) */
struct us_hc_poll {
    uint64_t timeout_ns; /* in */
    uint64_t ready;      /* out: US_POLL_NET when a frame is waiting, US_POLL_RESTORED */
};

struct us_hc_block_io {
    uint64_t sector; /* first sector */
    uint64_t data;   /* gpa */
    uint64_t len;    /* bytes, a multiple of US_SECTOR_SIZE, <= US_MAX_BLOCK_IO */
    int64_t ret;     /* out */
};

struct us_hc_halt {
    uint64_t status; /* 0: clean shutdown */
};

#define US_BOOT_MAGIC 0x5553424f4f543031ull /* "USBOOT01" */
#define US_CMDLINE_MAX 128u

struct us_boot_info {
    uint64_t magic;
    uint32_t abi_version;
    uint32_t reserved0;
    uint64_t mem_size;  /* bytes of guest RAM, identity-mapped from 0 */
    uint64_t image_end; /* first byte after the loaded image, page aligned */
    uint8_t mac[6];     /* the guest NIC's address */
    uint16_t udp_port;  /* the counter service port (host order) */
    uint32_t ipv4;      /* network order */
    uint32_t netmask;   /* network order */
    uint64_t block_sectors;
    uint64_t dirty_pages_per_second; /* initial workload rate */
    char cmdline[US_CMDLINE_MAX];    /* NUL-terminated free text for the guest */
};

#endif
