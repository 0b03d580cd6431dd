// An epoch: one interval of guest execution between two checkpoints. Epochs
// of a replication stream are numbered from 1, each one more than the last.
#pragma once

#include <compare>
#include <cstdint>

namespace understudy {

struct Epoch {
    std::uint64_t value = 0;

    [[nodiscard]] constexpr Epoch next() const noexcept { return Epoch{value + 1}; }
    constexpr auto operator<=>(const Epoch &) const = default;
};

} // namespace understudy
