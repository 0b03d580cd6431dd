// The long-mode environment the VMM builds in guest RAM before the first
// instruction: a flat GDT and page tables that identity-map all of RAM.
#pragma once

#include <cstdint>

#include "checkpoint/kvm/guest_memory.h"

namespace understudy::kvm {

inline constexpr std::uint64_t kPtePresent = 1u << 0;
inline constexpr std::uint64_t kPteWritable = 1u << 1;
inline constexpr std::uint64_t kPteLargePage = 1u << 7;
inline constexpr std::uint64_t kLargePageSize = 2u << 20;

// Selectors of the flat GDT.
inline constexpr std::uint16_t kCodeSelector = 0x08;
inline constexpr std::uint16_t kDataSelector = 0x10;

struct LongModeTables {
    std::uint64_t cr3;
    std::uint64_t gdt_base;
    std::uint16_t gdt_limit;
};

// Writes the GDT and an identity map of [0, size rounded up to 2 MiB) with
// 2 MiB pages. Throws KvmError if RAM is too small or too large for the layout.
LongModeTables build_long_mode_tables(GuestMemory &memory);

} // namespace understudy::kvm
