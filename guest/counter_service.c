#include "counter_service.h"

#include "net.h"
#include "tcp.h"
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
        n = put(reply, 0, "tcp ");
        n = put_u64(reply, n, tcp_connections());
        n = put(reply, n, " counter ");
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

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Does data[0, len) contain `word`, ignoring case? */
static int contains_nocase(const char *data, size_t len, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= len; i++) {
        size_t k = 0;
        while (k < n && lower(data[i + k]) == word[k])
            k++;
        if (k == n)
            return 1;
    }
    return 0;
}

static size_t find(const char *data, size_t len, const char *what)
{
    size_t n = strlen(what);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(data + i, what, n) == 0)
            return i;
    return len;
}

/* One HTTP request whose head ends at `head`: GET / or /inc increments and
 * returns the counter, /get reads it; HTTP/1.1 keeps the connection open
 * unless the client says close. */
static size_t http(const char *req, size_t head, uint8_t *out, size_t cap, size_t *out_len, int *close)
{
    char body[96];
    size_t body_len = 0;
    if (cap < 256)
        return 0; /* no room yet: the request waits for acked bytes, untouched */
    const char *status = "200 OK";
    size_t line_end = find(req, head, "\r\n");
    int v10 = contains_nocase(req, line_end, " http/1.0");
    *close = v10 ? !contains_nocase(req, head, "connection: keep-alive") : contains_nocase(req, head, "connection: close");
    if (starts_with(req, head, "GET / ") || starts_with(req, head, "GET /inc ") || starts_with(req, head, "POST /inc ")) {
        counter++;
        counter_store();
        body_len = fmt_u64(body, counter);
    } else if (starts_with(req, head, "GET /get ")) {
        body_len = fmt_u64(body, counter);
    } else {
        status = "404 Not Found";
        body_len = put((uint8_t *)body, 0, "no such page; try / or /get");
    }
    body[body_len++] = '\n';
    size_t n = put(out, 0, "HTTP/1.1 ");
    n = put(out, n, status);
    n = put(out, n, "\r\nContent-Type: text/plain\r\nContent-Length: ");
    n = put_u64(out, n, body_len);
    n = put(out, n, *close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n");
    memcpy(out + n, body, body_len);
    *out_len = n + body_len;
    return 1;
}

/* TCP port 80: HTTP requests, or lines of the UDP protocol (`nc GUEST 80`,
 * then `inc`, `get`, ...: one reply line per line). */
static size_t serve_tcp(const uint8_t *data, size_t len, uint8_t *out, size_t cap, size_t *out_len, int *close)
{
    const char *req = (const char *)data;
    size_t eol = find(req, len, "\n");
    if (eol == len)
        return 0; /* not a whole line yet */
    size_t line = eol > 0 && req[eol - 1] == '\r' ? eol - 1 : eol;
    if (contains_nocase(req, line, " http/1.")) {
        size_t head = find(req, len, "\r\n\r\n");
        if (head == len)
            return 0; /* the rest of the head has not arrived */
        if (!http(req, head + 2, out, cap, out_len, close))
            return 0;
        return head + 4;
    }
    if (cap < 128)
        return 0;
    *out_len = line ? serve(data, line, out, cap) : 0;
    return eol + 1;
}

void counter_service_init(const struct us_boot_info *boot)
{
    have_disk = boot->block_sectors > 0;
    if (have_disk && block_io(US_HC_BLOCK_READ, 0, &record, sizeof(record)) == US_OK && record.magic == COUNTER_MAGIC &&
        record.check == (COUNTER_MAGIC ^ record.value))
        counter = record.value;
    net_bind_udp(boot->udp_port, serve);
    tcp_listen(80, serve_tcp);
    print("counter: starting at ");
    print_u64(counter);
    print(have_disk ? " (kept on disk)\n" : " (no disk: memory only)\n");
}

uint64_t counter_value(void)
{
    return counter;
}
