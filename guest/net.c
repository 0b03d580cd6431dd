#include "net.h"

struct eth_hdr {
    uint8_t dst[ETH_ALEN];
    uint8_t src[ETH_ALEN];
    uint16_t type;
} __attribute__((packed));

struct arp_pkt {
    uint16_t htype, ptype;
    uint8_t hlen, plen;
    uint16_t op;
    uint8_t sha[ETH_ALEN];
    uint32_t spa;
    uint8_t tha[ETH_ALEN];
    uint32_t tpa;
} __attribute__((packed));

struct ipv4_hdr {
    uint8_t ver_ihl, tos;
    uint16_t total_len, id, frag;
    uint8_t ttl, proto;
    uint16_t csum;
    uint32_t src, dst;
} __attribute__((packed));

struct icmp_echo {
    uint8_t type, code;
    uint16_t csum;
    uint16_t id, seq;
} __attribute__((packed));

struct udp_hdr {
    uint16_t sport, dport, len, csum;
} __attribute__((packed));

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP 0x0806
#define MAX_UDP_BINDINGS 4

/* The receive buffer has a page of its own that the guest only reads, so a
 * dirty bit on it can only come from the VMM writing a received frame. */
static uint8_t rx_frame[US_PAGE_SIZE] __attribute__((aligned(US_PAGE_SIZE)));
static uint8_t tx_frame[US_MAX_FRAME] __attribute__((aligned(64)));

static uint8_t my_mac[ETH_ALEN];
static uint32_t my_ip;
static ip_handler ip_handlers[256];
static struct {
    uint16_t port;
    udp_handler handler;
} udp_bindings[MAX_UDP_BINDINGS];

uint16_t inet_checksum(const void *data, size_t len, uint32_t sum)
{
    const uint8_t *p = data;
    for (; len > 1; len -= 2, p += 2)
        sum += (uint32_t)((p[0] << 8) | p[1]);
    if (len)
        sum += (uint32_t)(p[0] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return htons((uint16_t)~sum);
}

static void send_frame(size_t len)
{
    struct us_hc_net_io io = {(uint64_t)(uintptr_t)tx_frame, len, 0};
    hypercall(US_HC_NET_WRITE, &io);
}

static void eth_header(const uint8_t *dst_mac, uint16_t type)
{
    struct eth_hdr *eth = (struct eth_hdr *)tx_frame;
    memcpy(eth->dst, dst_mac, ETH_ALEN);
    memcpy(eth->src, my_mac, ETH_ALEN);
    eth->type = htons(type);
}

uint8_t *net_ip_payload(void)
{
    return tx_frame + sizeof(struct eth_hdr) + sizeof(struct ipv4_hdr);
}

void net_send_ipv4(const uint8_t *dst_mac, uint32_t dst_ip, uint8_t proto, size_t payload_len)
{
    static uint16_t next_id;
    size_t max = US_MAX_FRAME - sizeof(struct eth_hdr) - sizeof(struct ipv4_hdr);
    if (payload_len > max)
        return;
    eth_header(dst_mac, ETHERTYPE_IPV4);
    struct ipv4_hdr *ip = (struct ipv4_hdr *)(tx_frame + sizeof(struct eth_hdr));
    ip->ver_ihl = 0x45;
    ip->tos = 0;
    ip->total_len = htons((uint16_t)(sizeof(*ip) + payload_len));
    ip->id = htons(next_id++);
    ip->frag = htons(0x4000); /* don't fragment */
    ip->ttl = 64;
    ip->proto = proto;
    ip->csum = 0;
    ip->src = my_ip;
    ip->dst = dst_ip;
    ip->csum = inet_checksum(ip, sizeof(*ip), 0);
    send_frame(sizeof(struct eth_hdr) + sizeof(*ip) + payload_len);
}

static void handle_arp(const uint8_t *frame, size_t len)
{
    if (len < sizeof(struct eth_hdr) + sizeof(struct arp_pkt))
        return;
    const struct arp_pkt *req = (const struct arp_pkt *)(frame + sizeof(struct eth_hdr));
    if (ntohs(req->htype) != 1 || ntohs(req->ptype) != ETHERTYPE_IPV4 || req->hlen != 6 || req->plen != 4 ||
        ntohs(req->op) != 1 || req->tpa != my_ip)
        return;
    eth_header(req->sha, ETHERTYPE_ARP);
    struct arp_pkt *rep = (struct arp_pkt *)(tx_frame + sizeof(struct eth_hdr));
    rep->htype = htons(1);
    rep->ptype = htons(ETHERTYPE_IPV4);
    rep->hlen = 6;
    rep->plen = 4;
    rep->op = htons(2);
    memcpy(rep->sha, my_mac, ETH_ALEN);
    rep->spa = my_ip;
    memcpy(rep->tha, req->sha, ETH_ALEN);
    rep->tpa = req->spa;
    send_frame(sizeof(struct eth_hdr) + sizeof(struct arp_pkt));
}

static void handle_icmp(const struct ipv4_packet *pkt)
{
    if (pkt->len < sizeof(struct icmp_echo) || pkt->payload[0] != 8 /* echo request */)
        return;
    if (inet_checksum(pkt->payload, pkt->len, 0) != 0)
        return;
    uint8_t *out = net_ip_payload();
    memcpy(out, pkt->payload, pkt->len);
    struct icmp_echo *rep = (struct icmp_echo *)out;
    rep->type = 0;
    rep->csum = 0;
    rep->csum = inet_checksum(out, pkt->len, 0);
    net_send_ipv4(pkt->src_mac, pkt->src_ip, IPPROTO_ICMP, pkt->len);
}

static uint32_t pseudo_header_sum(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
    const uint8_t *s = (const uint8_t *)&src, *d = (const uint8_t *)&dst;
    return (uint32_t)((s[0] << 8) | s[1]) + (uint32_t)((s[2] << 8) | s[3]) + (uint32_t)((d[0] << 8) | d[1]) +
           (uint32_t)((d[2] << 8) | d[3]) + proto + (uint32_t)len;
}

static void handle_udp(const struct ipv4_packet *pkt)
{
    if (pkt->len < sizeof(struct udp_hdr))
        return;
    const struct udp_hdr *udp = (const struct udp_hdr *)pkt->payload;
    size_t udp_len = ntohs(udp->len);
    if (udp_len < sizeof(*udp) || udp_len > pkt->len)
        return;
    if (udp->csum &&
        inet_checksum(pkt->payload, udp_len, pseudo_header_sum(pkt->src_ip, pkt->dst_ip, IPPROTO_UDP, udp_len)) != 0)
        return;
    for (int i = 0; i < MAX_UDP_BINDINGS; i++) {
        if (!udp_bindings[i].handler || udp_bindings[i].port != ntohs(udp->dport))
            continue;
        uint8_t *out = net_ip_payload();
        size_t cap = US_MAX_FRAME - sizeof(struct eth_hdr) - sizeof(struct ipv4_hdr) - sizeof(struct udp_hdr);
        size_t n = udp_bindings[i].handler(pkt->payload + sizeof(*udp), udp_len - sizeof(*udp),
                                           out + sizeof(struct udp_hdr), cap);
        if (!n)
            return;
        struct udp_hdr *rep = (struct udp_hdr *)out;
        rep->sport = udp->dport;
        rep->dport = udp->sport;
        rep->len = htons((uint16_t)(sizeof(*rep) + n));
        rep->csum = 0;
        uint16_t c =
            inet_checksum(out, sizeof(*rep) + n, pseudo_header_sum(my_ip, pkt->src_ip, IPPROTO_UDP, sizeof(*rep) + n));
        rep->csum = c ? c : 0xffff;
        net_send_ipv4(pkt->src_mac, pkt->src_ip, IPPROTO_UDP, sizeof(*rep) + n);
        return;
    }
}

static void handle_ipv4(const uint8_t *frame, size_t len)
{
    if (len < sizeof(struct eth_hdr) + sizeof(struct ipv4_hdr))
        return;
    const struct eth_hdr *eth = (const struct eth_hdr *)frame;
    const struct ipv4_hdr *ip = (const struct ipv4_hdr *)(frame + sizeof(*eth));
    size_t ihl = (size_t)(ip->ver_ihl & 0xf) * 4;
    size_t total = ntohs(ip->total_len);
    if ((ip->ver_ihl >> 4) != 4 || ihl < sizeof(*ip) || total < ihl || total > len - sizeof(*eth))
        return;
    if (ip->dst != my_ip || (ntohs(ip->frag) & 0x3fff) != 0) /* no fragments */
        return;
    if (inet_checksum(ip, ihl, 0) != 0)
        return;
    ip_handler handler = ip_handlers[ip->proto];
    if (!handler)
        return;
    struct ipv4_packet pkt = {eth->src, ip->src, ip->dst, ip->proto, (const uint8_t *)ip + ihl, total - ihl};
    handler(&pkt);
}

void net_init(const struct us_boot_info *boot)
{
    memcpy(my_mac, boot->mac, ETH_ALEN);
    my_ip = boot->ipv4;
    net_register_ip(IPPROTO_ICMP, handle_icmp);
    net_register_ip(IPPROTO_UDP, handle_udp);
}

void net_register_ip(uint8_t proto, ip_handler handler)
{
    ip_handlers[proto] = handler;
}

void net_bind_udp(uint16_t port, udp_handler handler)
{
    for (int i = 0; i < MAX_UDP_BINDINGS; i++) {
        if (!udp_bindings[i].handler) {
            udp_bindings[i].port = port;
            udp_bindings[i].handler = handler;
            return;
        }
    }
}

int net_poll_once(void)
{
    struct us_hc_net_io io = {(uint64_t)(uintptr_t)rx_frame, sizeof(rx_frame), 0};
    hypercall(US_HC_NET_READ, &io);
    if (io.ret != US_OK)
        return 0;
    size_t len = io.len;
    if (len < sizeof(struct eth_hdr) || len > sizeof(rx_frame))
        return 1;
    const struct eth_hdr *eth = (const struct eth_hdr *)rx_frame;
    uint16_t type = ntohs(eth->type);
    if (type == ETHERTYPE_ARP)
        handle_arp(rx_frame, len);
    else if (type == ETHERTYPE_IPV4)
        handle_ipv4(rx_frame, len);
    return 1;
}

uint32_t net_my_ip(void)
{
    return my_ip;
}

uint64_t net_rx_buffer_pfn(void)
{
    return (uint64_t)(uintptr_t)rx_frame / US_PAGE_SIZE;
}
