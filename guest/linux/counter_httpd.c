// The service of the Linux test guest (real Xen, docs/xen.md): an HTTP/1.1
// server on Linux's own TCP stack whose counter lives in guest memory and is
// written to the guest's disk at every increment, so that after a failover a
// client can compare what it saw, what the guest's memory holds and what its
// disk holds. Optional worker threads dirty memory on every vCPU.
//
//   counter_httpd [--port N] [--disk /dev/xvda] [--workers N] [--dirty-mib N]
//
// GET /counter  increments, writes "counter N" to the disk's first sector
//               (O_DIRECT, fdatasync), answers N
// GET /peek     answers N without incrementing
// GET /disk     answers the value on the disk
// GET /work     answers the workers' rounds so far
// Connections are kept alive (HTTP/1.1) until the client closes them.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t counter;
static int disk_fd = -1;
static void *sector; // 4 KiB aligned, for O_DIRECT
static atomic_uint_fast64_t work_rounds;
static size_t dirty_bytes = 8u << 20;

static uint64_t disk_value(void)
{
    if (disk_fd < 0 || pread(disk_fd, sector, 4096, 0) != 4096)
        return 0;
    uint64_t v = 0;
    if (sscanf((const char *)sector, "counter %" SCNu64, &v) != 1)
        return 0;
    return v;
}

// Returns 0, or an errno when the disk write failed (the request fails too).
static int persist(uint64_t v)
{
    if (disk_fd < 0)
        return 0;
    memset(sector, 0, 4096);
    snprintf((char *)sector, 4096, "counter %" PRIu64 "\n", v);
    if (pwrite(disk_fd, sector, 4096, 0) != 4096 || fdatasync(disk_fd) != 0)
        return errno ? errno : EIO;
    return 0;
}

static void *worker(void *arg)
{
    (void)arg;
    volatile uint8_t *mem = malloc(dirty_bytes);
    if (!mem)
        return NULL;
    for (uint64_t round = 1;; ++round) {
        for (size_t i = 0; i < dirty_bytes; i += 4096)
            mem[i] = (uint8_t)(round + i);
        atomic_fetch_add(&work_rounds, 1);
        usleep(20000);
    }
    return NULL;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int respond(int fd, int status, const char *body, int keep_alive)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                     status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Internal Server Error",
                     strlen(body), keep_alive ? "keep-alive" : "close");
    return send_all(fd, head, (size_t)n) || send_all(fd, body, strlen(body)) ? -1 : 0;
}

static void answer(int fd, const char *path, int keep_alive, int *failed)
{
    char body[64];
    int status = 200;
    if (strcmp(path, "/counter") == 0) {
        pthread_mutex_lock(&counter_lock);
        uint64_t v = counter + 1;
        int err = persist(v);
        if (err == 0)
            counter = v;
        pthread_mutex_unlock(&counter_lock);
        if (err) {
            status = 500;
            snprintf(body, sizeof body, "disk write failed: %s\n", strerror(err));
        } else {
            snprintf(body, sizeof body, "%" PRIu64 "\n", v);
        }
    } else if (strcmp(path, "/peek") == 0) {
        pthread_mutex_lock(&counter_lock);
        snprintf(body, sizeof body, "%" PRIu64 "\n", counter);
        pthread_mutex_unlock(&counter_lock);
    } else if (strcmp(path, "/disk") == 0) {
        pthread_mutex_lock(&counter_lock);
        snprintf(body, sizeof body, "%" PRIu64 "\n", disk_value());
        pthread_mutex_unlock(&counter_lock);
    } else if (strcmp(path, "/work") == 0) {
        snprintf(body, sizeof body, "%" PRIu64 "\n", (uint64_t)atomic_load(&work_rounds));
    } else {
        status = 404;
        snprintf(body, sizeof body, "no such path\n");
    }
    *failed = respond(fd, status, body, keep_alive);
}

// Serves one connection's requests until the client closes it.
static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    size_t have = 0;
    for (;;) {
        char *end = memmem(buf, have, "\r\n\r\n", 4);
        if (!end) {
            if (have == sizeof buf)
                break; // a header this large is not ours
            ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                break;
            }
            have += (size_t)r;
            continue;
        }
        *end = '\0';
        char method[8] = "", path[128] = "", version[16] = "";
        sscanf(buf, "%7s %127s %15s", method, path, version);
        const int keep_alive = strcmp(version, "HTTP/1.1") == 0 && !strcasestr(buf, "connection: close");
        int failed = 0;
        answer(fd, path, keep_alive, &failed);
        const size_t used = (size_t)(end + 4 - buf);
        memmove(buf, buf + used, have - used);
        have -= used;
        if (failed || !keep_alive)
            break;
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    int port = 80, workers = 0;
    const char *disk = "/dev/xvda";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--disk") == 0)
            disk = argv[i + 1];
        else if (strcmp(argv[i], "--workers") == 0)
            workers = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--dirty-mib") == 0)
            dirty_bytes = (size_t)atoi(argv[i + 1]) << 20;
        else {
            fprintf(stderr, "counter_httpd: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (posix_memalign(&sector, 4096, 4096) != 0)
        return 1;
    disk_fd = open(disk, O_RDWR | O_DIRECT | O_CLOEXEC);
    if (disk_fd < 0)
        fprintf(stderr, "counter_httpd: %s: %s; the counter lives in memory only\n", disk, strerror(errno));
    counter = disk_value();
    for (int i = 0; i < workers; ++i) {
        pthread_t t;
        pthread_create(&t, NULL, worker, NULL);
        pthread_detach(t);
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 64) != 0) {
        perror("counter_httpd: bind/listen");
        return 1;
    }
    fprintf(stderr, "counter_httpd: port %d, counter %" PRIu64 " from %s, %d workers\n", port, counter, disk, workers);
    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        if (pthread_create(&t, NULL, serve, (void *)(intptr_t)c) != 0) {
            close(c);
            continue;
        }
        pthread_detach(t);
    }
}
