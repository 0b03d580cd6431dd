#include "tcp.h"

#include <stddef.h>

#include "net.h"

struct tcp_hdr {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t off; /* data offset in the high nibble */
    uint8_t flags;
    uint16_t window, csum, urg;
} __attribute__((packed));

#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define PSH 0x08
#define ACK 0x10

#define MAX_CONNS 8
#define MAX_LISTEN 2
#define RX_CAP 2048
#define TX_CAP 8192
#define MSS 1400
#define RTO_MIN_NS 300000000ull      /* 300 ms */
#define RTO_MAX_NS 4000000000ull     /* 4 s */
#define MAX_RETRIES 12
#define TIME_WAIT_NS 2000000000ull   /* 2 s: re-ACK a repeated FIN */
#define IDLE_LIMIT_NS 600000000000ull /* 10 min without a segment: dropped */

enum state { FREE, SYN_RCVD, ESTABLISHED, CLOSE_WAIT, LAST_ACK, FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT };

struct conn {
    enum state state;
    uint8_t peer_mac[ETH_ALEN];
    uint32_t peer_ip;
    uint16_t peer_port, port;
    tcp_app app;
    uint32_t rcv_nxt;
    uint32_t snd_una, snd_nxt, iss;
    uint32_t snd_wnd;
    int fin_queued;   /* we close after what is buffered */
    int fin_sent;
    uint64_t rto, rto_at, last_seen;
    unsigned retries;
    size_t rx_len, tx_len; /* tx: bytes from snd_una (sent and not) */
    uint8_t rx[RX_CAP];
    uint8_t tx[TX_CAP];
};

static struct conn conns[MAX_CONNS];
static struct {
    uint16_t port;
    tcp_app app;
} listeners[MAX_LISTEN];
static uint32_t my_ip_n;

static uint32_t ntohl(uint32_t v)
{
    return ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >> 8) & 0xff00) | (v >> 24);
}
#define htonl ntohl

static int seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}
static int seq_le(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) <= 0;
}

static uint32_t pseudo_sum(uint32_t src, uint32_t dst, size_t len)
{
    const uint8_t *s = (const uint8_t *)&src, *d = (const uint8_t *)&dst;
    return (uint32_t)((s[0] << 8) | s[1]) + (uint32_t)((s[2] << 8) | s[3]) + (uint32_t)((d[0] << 8) | d[1]) +
           (uint32_t)((d[2] << 8) | d[3]) + IPPROTO_TCP + (uint32_t)len;
}

static void send_segment(const uint8_t *mac, uint32_t ip, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
                         uint8_t flags, uint16_t window, const uint8_t *data, size_t len)
{
    uint8_t *out = net_ip_payload();
    struct tcp_hdr *h = (struct tcp_hdr *)out;
    size_t hlen = sizeof(*h) + ((flags & SYN) ? 4 : 0);
    h->sport = htons(sport);
    h->dport = htons(dport);
    h->seq = htonl(seq);
    h->ack = htonl(ack);
    h->off = (uint8_t)((hlen / 4) << 4);
    h->flags = flags;
    h->window = htons(window);
    h->csum = 0;
    h->urg = 0;
    if (flags & SYN) { /* MSS option */
        uint8_t *opt = out + sizeof(*h);
        opt[0] = 2;
        opt[1] = 4;
        opt[2] = (uint8_t)(MSS >> 8);
        opt[3] = (uint8_t)(MSS & 0xff);
    }
    if (len)
        memcpy(out + hlen, data, len);
    h->csum = inet_checksum(out, hlen + len, pseudo_sum(my_ip_n, ip, hlen + len));
    net_send_ipv4(mac, ip, IPPROTO_TCP, hlen + len);
}

static uint16_t window_of(const struct conn *c)
{
    return (uint16_t)(RX_CAP - c->rx_len);
}

static void send_ack(struct conn *c)
{
    send_segment(c->peer_mac, c->peer_ip, c->port, c->peer_port, c->snd_nxt, c->rcv_nxt, ACK, window_of(c), 0, 0);
}

/* Sends what the window allows from snd_nxt on, then our FIN if queued. */
static void push(struct conn *c, uint64_t now)
{
    if (c->state == SYN_RCVD)
        return;
    size_t in_flight = c->snd_nxt - c->snd_una - (c->fin_sent ? 1u : 0u);
    while (in_flight < c->tx_len && in_flight < c->snd_wnd) {
        size_t n = c->tx_len - in_flight;
        if (n > MSS)
            n = MSS;
        if (n > c->snd_wnd - in_flight)
            n = c->snd_wnd - in_flight;
        send_segment(c->peer_mac, c->peer_ip, c->port, c->peer_port, c->snd_nxt, c->rcv_nxt, ACK | PSH,
                     window_of(c), c->tx + in_flight, n);
        c->snd_nxt += (uint32_t)n;
        in_flight += n;
        if (!c->rto_at)
            c->rto_at = now + c->rto;
    }
    if (c->fin_queued && !c->fin_sent && in_flight == c->tx_len) {
        send_segment(c->peer_mac, c->peer_ip, c->port, c->peer_port, c->snd_nxt, c->rcv_nxt, ACK | FIN, window_of(c),
                     0, 0);
        c->snd_nxt++;
        c->fin_sent = 1;
        c->state = c->state == CLOSE_WAIT ? LAST_ACK : FIN_WAIT_1;
        if (!c->rto_at)
            c->rto_at = now + c->rto;
    }
}

static void run_app(struct conn *c)
{
    while (c->rx_len && !c->fin_queued) {
        size_t out_len = 0;
        int close = 0;
        size_t used = c->app(c->rx, c->rx_len, c->tx + c->tx_len, TX_CAP - c->tx_len, &out_len, &close);
        c->tx_len += out_len;
        if (used > c->rx_len)
            used = c->rx_len;
        for (size_t i = used; i < c->rx_len; i++)
            c->rx[i - used] = c->rx[i];
        c->rx_len -= used;
        if (close)
            c->fin_queued = 1;
        if (!used)
            break; /* waits for more bytes */
    }
    if (c->rx_len == RX_CAP && !c->fin_queued)
        c->fin_queued = 1; /* a request larger than we take: end it */
}

static void reset(const struct ipv4_packet *pkt, const struct tcp_hdr *h, size_t data_len)
{
    uint32_t seq = 0, ack = ntohl(h->seq) + (uint32_t)data_len + ((h->flags & SYN) ? 1u : 0u) +
                               ((h->flags & FIN) ? 1u : 0u);
    uint8_t flags = RST | ACK;
    if (h->flags & ACK) {
        seq = ntohl(h->ack);
        flags = RST;
        ack = 0;
    }
    send_segment(pkt->src_mac, pkt->src_ip, ntohs(h->dport), ntohs(h->sport), seq, ack, flags, 0, 0, 0);
}

static void release(struct conn *c)
{
    c->state = FREE;
}

static void tcp_input(const struct ipv4_packet *pkt)
{
    if (pkt->len < sizeof(struct tcp_hdr))
        return;
    const struct tcp_hdr *h = (const struct tcp_hdr *)pkt->payload;
    size_t hlen = (size_t)(h->off >> 4) * 4;
    if (hlen < sizeof(*h) || hlen > pkt->len)
        return;
    if (inet_checksum(pkt->payload, pkt->len, pseudo_sum(pkt->src_ip, pkt->dst_ip, pkt->len)) != 0)
        return;
    const uint8_t *data = pkt->payload + hlen;
    size_t len = pkt->len - hlen;
    uint16_t sport = ntohs(h->sport), dport = ntohs(h->dport);
    uint32_t seq = ntohl(h->seq), ack = ntohl(h->ack);
    uint64_t now = clock_ns();

    struct conn *c = 0;
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].state != FREE && conns[i].peer_ip == pkt->src_ip && conns[i].peer_port == sport &&
            conns[i].port == dport)
            c = &conns[i];
    if (!c) {
        if (h->flags & RST)
            return;
        tcp_app app = 0;
        for (int i = 0; i < MAX_LISTEN; i++)
            if (listeners[i].app && listeners[i].port == dport)
                app = listeners[i].app;
        if (!app || (h->flags & (SYN | ACK)) != SYN) {
            reset(pkt, h, len);
            return;
        }
        for (int i = 0; i < MAX_CONNS && !c; i++)
            if (conns[i].state == FREE)
                c = &conns[i];
        if (!c) { /* full: refuse rather than forget an open one */
            reset(pkt, h, len);
            return;
        }
        memset(c, 0, offsetof(struct conn, rx));
        memcpy(c->peer_mac, pkt->src_mac, ETH_ALEN);
        c->peer_ip = pkt->src_ip;
        c->peer_port = sport;
        c->port = dport;
        c->app = app;
        c->iss = (uint32_t)(now >> 10);
        c->snd_una = c->iss;
        c->snd_nxt = c->iss + 1;
        c->rcv_nxt = seq + 1;
        c->snd_wnd = ntohs(h->window);
        c->rto = RTO_MIN_NS;
        c->rto_at = now + c->rto;
        c->last_seen = now;
        c->state = SYN_RCVD;
        send_segment(c->peer_mac, c->peer_ip, dport, sport, c->iss, c->rcv_nxt, SYN | ACK, window_of(c), 0, 0);
        return;
    }
    c->last_seen = now;
    if (h->flags & RST) {
        if (seq == c->rcv_nxt || c->state == SYN_RCVD)
            release(c);
        return;
    }
    if (h->flags & SYN) { /* a repeated SYN: our SYN-ACK was lost */
        if (c->state == SYN_RCVD && seq + 1 == c->rcv_nxt)
            send_segment(c->peer_mac, c->peer_ip, c->port, c->peer_port, c->iss, c->rcv_nxt, SYN | ACK,
                         window_of(c), 0, 0);
        else
            send_ack(c);
        return;
    }
    if (!(h->flags & ACK))
        return;
    if (c->state == SYN_RCVD) {
        if (ack != c->iss + 1) {
            reset(pkt, h, len);
            return;
        }
        c->snd_una = ack;
        c->state = ESTABLISHED;
        c->rto_at = 0;
        c->retries = 0;
    }
    /* What the peer acknowledged of ours. */
    if (seq_lt(c->snd_una, ack) && seq_le(ack, c->snd_nxt)) {
        uint32_t acked = ack - c->snd_una;
        if (c->fin_sent && ack == c->snd_nxt)
            acked--; /* our FIN is not in tx */
        if (acked > c->tx_len)
            acked = (uint32_t)c->tx_len;
        for (size_t i = acked; i < c->tx_len; i++)
            c->tx[i - acked] = c->tx[i];
        c->tx_len -= acked;
        c->snd_una = ack;
        c->retries = 0;
        c->rto = RTO_MIN_NS;
        c->rto_at = c->snd_una == c->snd_nxt ? 0 : now + c->rto;
        if (c->fin_sent && ack == c->snd_nxt) {
            if (c->state == LAST_ACK) {
                release(c);
                return;
            }
            if (c->state == FIN_WAIT_1)
                c->state = FIN_WAIT_2;
        }
    }
    c->snd_wnd = ntohs(h->window);
    /* Their data, in order only. */
    int fin = (h->flags & FIN) != 0;
    if (len || fin) {
        if (seq != c->rcv_nxt || len > RX_CAP - c->rx_len) {
            send_ack(c); /* out of order, repeated or too much: say where we are */
            return;
        }
        if (c->state == ESTABLISHED || c->state == FIN_WAIT_1 || c->state == FIN_WAIT_2) {
            memcpy(c->rx + c->rx_len, data, len);
            c->rx_len += len;
            c->rcv_nxt += (uint32_t)len;
        }
        if (fin) {
            c->rcv_nxt++;
            if (c->state == ESTABLISHED) {
                c->state = CLOSE_WAIT; /* our FIN follows once what they asked is answered */
            } else if (c->state == FIN_WAIT_2 || c->state == FIN_WAIT_1) {
                c->state = TIME_WAIT;
                c->rto_at = now + TIME_WAIT_NS;
            }
        }
        if (c->state == ESTABLISHED || c->state == CLOSE_WAIT)
            run_app(c);
        /* After run_app: requests that came with the FIN (a retransmission
         * often carries both) are answered before we close. */
        if (c->state == CLOSE_WAIT)
            c->fin_queued = 1;
        if (c->state == TIME_WAIT) {
            send_ack(c);
            return;
        }
        uint32_t before = c->snd_nxt;
        push(c, now);
        if (c->snd_nxt == before)
            send_ack(c);
        return;
    }
    if (c->rx_len && (c->state == ESTABLISHED || c->state == CLOSE_WAIT))
        run_app(c); /* acked bytes made room for a reply that did not fit */
    push(c, now);
}

uint64_t tcp_tick(uint64_t now)
{
    uint64_t next = ~0ull;
    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &conns[i];
        if (c->state == FREE)
            continue;
        if (now - c->last_seen > IDLE_LIMIT_NS) {
            release(c);
            continue;
        }
        if (!c->rto_at)
            continue;
        if (now >= c->rto_at) {
            if (c->state == TIME_WAIT) {
                release(c);
                continue;
            }
            if (++c->retries > MAX_RETRIES) {
                send_segment(c->peer_mac, c->peer_ip, c->port, c->peer_port, c->snd_nxt, 0, RST, 0, 0, 0);
                release(c);
                continue;
            }
            /* Go back to the oldest unacknowledged byte and send again. */
            c->rto = c->rto * 2 > RTO_MAX_NS ? RTO_MAX_NS : c->rto * 2;
            c->rto_at = now + c->rto;
            if (c->state == SYN_RCVD) {
                send_segment(c->peer_mac, c->peer_ip, c->port, c->peer_port, c->iss, c->rcv_nxt, SYN | ACK,
                             window_of(c), 0, 0);
            } else {
                c->snd_nxt = c->snd_una;
                if (c->fin_sent) {
                    c->fin_sent = 0;
                    c->state = c->state == LAST_ACK ? CLOSE_WAIT : ESTABLISHED;
                }
                if (c->snd_wnd == 0)
                    c->snd_wnd = 1; /* probe a closed window */
                push(c, now);
            }
        }
        if (c->rto_at && c->rto_at - now < next)
            next = c->rto_at > now ? c->rto_at - now : 0;
    }
    return next;
}

void tcp_restored(uint64_t now)
{
    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &conns[i];
        if (c->state == FREE || c->state == TIME_WAIT)
            continue;
        c->last_seen = now;
        c->retries = 0;
        c->rto = RTO_MIN_NS;
        if (c->state == SYN_RCVD) {
            send_segment(c->peer_mac, c->peer_ip, c->port, c->peer_port, c->iss, c->rcv_nxt, SYN | ACK,
                         window_of(c), 0, 0);
            c->rto_at = now + c->rto;
            continue;
        }
        /* Ours go again from the oldest unacknowledged byte. */
        c->snd_nxt = c->snd_una;
        if (c->fin_sent) {
            c->fin_sent = 0;
            c->state = c->state == LAST_ACK ? CLOSE_WAIT : ESTABLISHED;
        }
        c->rto_at = 0;
        /* Four identical ACKs: the first may be new to the peer, three more
         * are duplicates, which make it fast-retransmit its oldest segment. */
        for (int k = 0; k < 4; k++)
            send_ack(c);
        push(c, now);
    }
}

void tcp_listen(uint16_t port, tcp_app app)
{
    for (int i = 0; i < MAX_LISTEN; i++) {
        if (!listeners[i].app) {
            listeners[i].port = port;
            listeners[i].app = app;
            return;
        }
    }
}

unsigned tcp_connections(void)
{
    unsigned n = 0;
    for (int i = 0; i < MAX_CONNS; i++)
        n += conns[i].state != FREE;
    return n;
}

void tcp_init(void)
{
    my_ip_n = net_my_ip();
    net_register_ip(IPPROTO_TCP, tcp_input);
}
