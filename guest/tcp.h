/* A minimal TCP for the demo guest: passive open only, a handful of
 * connections, in-order data (out-of-order segments are dropped and re-ACKed),
 * retransmission with an exponential timeout, FIN and RST. Its whole state is
 * in guest memory, so a checkpoint carries every connection with it. */
#ifndef UNDERSTUDY_GUEST_TCP_H
#define UNDERSTUDY_GUEST_TCP_H

#include "runtime.h"

/* An application on a listening port. It sees the bytes received so far on a
 * connection and returns how many it consumed; what it writes to out (at most
 * cap bytes) is sent. Setting *close ends the connection after that. */
typedef size_t (*tcp_app)(const uint8_t *data, size_t len, uint8_t *out, size_t cap, size_t *out_len, int *close);

void tcp_init(void);
void tcp_listen(uint16_t port, tcp_app app);
/* Retransmissions and timeouts; call often. Returns the ns until the next
 * timer is due (or a large value when none is). */
uint64_t tcp_tick(uint64_t now);
/* Open connections (for `info`). */
unsigned tcp_connections(void);
/* After the VM was restored on another host (failover): every connection
 * resends what its peer has not acknowledged and repeats its ACK, so the peer
 * resends what the restored state lacks now instead of at its next timeout. */
void tcp_restored(uint64_t now);

#endif
