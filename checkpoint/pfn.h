// Guest page frame numbers and page geometry, shared by every backend.
#pragma once

#include <compare>
#include <cstdint>

namespace understudy {

inline constexpr std::uint64_t kPageSize = 4096;
inline constexpr unsigned kPageShift = 12;

// A guest-physical page number. A distinct type, so a byte address or a count
// cannot be passed where a page is meant.
struct Pfn {
    std::uint64_t value = 0;

    [[nodiscard]] constexpr std::uint64_t address() const noexcept { return value << kPageShift; }
    [[nodiscard]] static constexpr Pfn containing(std::uint64_t gpa) noexcept { return Pfn{gpa >> kPageShift}; }
    constexpr auto operator<=>(const Pfn &) const = default;
};

} // namespace understudy
