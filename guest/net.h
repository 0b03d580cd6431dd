/* The demo guest's network stack: Ethernet, ARP, IPv4, ICMP echo and UDP.
 * Upper protocols register a handler per IP protocol number (UDP here, TCP
 * in tcp.c) and UDP services register per port. */
#ifndef UNDERSTUDY_GUEST_NET_H
#define UNDERSTUDY_GUEST_NET_H

#include "runtime.h"

#define ETH_ALEN 6
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

struct ipv4_packet {
    const uint8_t *src_mac;
    uint32_t src_ip; /* network order */
    uint32_t dst_ip; /* network order */
    uint8_t proto;
    const uint8_t *payload;
    size_t len;
};

typedef void (*ip_handler)(const struct ipv4_packet *pkt);
/* Handles a UDP datagram; writes the reply payload to reply (capacity cap) and
 * returns its length, 0 for no reply. */
typedef size_t (*udp_handler)(const uint8_t *data, size_t len, uint8_t *reply, size_t cap);

void net_init(const struct us_boot_info *boot);
void net_register_ip(uint8_t proto, ip_handler handler);
void net_bind_udp(uint16_t port, udp_handler handler);
/* Reads and handles at most one received frame; returns 1 if there was one. */
int net_poll_once(void);
/* Sends an IPv4 packet whose payload the caller has written at net_ip_payload(). */
void net_send_ipv4(const uint8_t *dst_mac, uint32_t dst_ip, uint8_t proto, size_t payload_len);
uint8_t *net_ip_payload(void);
/* This guest's IPv4 address, network order. */
uint32_t net_my_ip(void);
uint16_t inet_checksum(const void *data, size_t len, uint32_t initial);
/* Guest-physical page of the receive buffer: written only by the VMM. */
uint64_t net_rx_buffer_pfn(void);

#endif
