/* The demo guest's runtime: hypercall wrappers, memory and string helpers,
 * console output. Freestanding: no libc. */
#ifndef UNDERSTUDY_GUEST_RUNTIME_H
#define UNDERSTUDY_GUEST_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "abi.h"

static inline void hypercall(unsigned nr, void *args)
{
    /* Identity mapping: a pointer is its guest-physical address. */
    uint32_t gpa = (uint32_t)(uintptr_t)args;
    __asm__ volatile("outl %0, %w1" : : "a"(gpa), "Nd"(US_HYPERCALL_PORT(nr)) : "memory");
}

void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int starts_with(const char *s, size_t len, const char *prefix);

uint64_t clock_ns(void);
void console_write(const char *s, size_t len);
void print(const char *s);
void print_u64(uint64_t v);

/* Writes v in decimal at out (no NUL); returns the number of characters. */
size_t fmt_u64(char *out, uint64_t v);
/* Parses a decimal number at *s (skipping spaces), advancing *s; 0 if none. */
uint64_t parse_u64(const char **s, const char *end);

void halt(uint64_t status) __attribute__((noreturn));

static inline uint16_t htons(uint16_t v)
{
    return (uint16_t)((v << 8) | (v >> 8));
}
static inline uint16_t ntohs(uint16_t v)
{
    return htons(v);
}

#endif
