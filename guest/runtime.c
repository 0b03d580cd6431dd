#include "runtime.h"

void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

uint64_t clock_ns(void)
{
    struct us_hc_clock c = {0};
    hypercall(US_HC_CLOCK, &c);
    return c.now_ns;
}

void console_write(const char *s, size_t len)
{
    struct us_hc_console_write w = {(uint64_t)(uintptr_t)s, len};
    hypercall(US_HC_CONSOLE_WRITE, &w);
}

void print(const char *s)
{
    console_write(s, strlen(s));
}

size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

void print_u64(uint64_t v)
{
    char buf[20];
    console_write(buf, fmt_u64(buf, v));
}

uint64_t parse_u64(const char **s, const char *end)
{
    const char *p = *s;
    uint64_t v = 0;
    while (p < end && *p == ' ')
        p++;
    while (p < end && *p >= '0' && *p <= '9' && v < 100000000000000000ull)
        v = v * 10 + (uint64_t)(*p++ - '0');
    *s = p;
    return v;
}

void halt(uint64_t status)
{
    struct us_hc_halt h = {status};
    for (;;)
        hypercall(US_HC_HALT, &h);
}
