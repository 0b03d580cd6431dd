#include "checkpoint/dirty_bitmap.h"

#include <bit>

namespace understudy {

DirtyBitmap::DirtyBitmap(std::uint64_t pages) : pages_(pages), words_((pages + 63) / 64) {}

void DirtyBitmap::set(Pfn pfn) noexcept
{
    if (pfn.value >= pages_)
        return;
    words_[pfn.value / 64].fetch_or(std::uint64_t{1} << (pfn.value % 64), std::memory_order_relaxed);
}

void DirtyBitmap::set_range(std::uint64_t gpa, std::uint64_t len) noexcept
{
    if (len == 0)
        return;
    std::uint64_t first = gpa >> kPageShift;
    std::uint64_t last = (gpa + len - 1) >> kPageShift;
    for (std::uint64_t p = first; p <= last && p < pages_; ++p)
        set(Pfn{p});
}

bool DirtyBitmap::test(Pfn pfn) const noexcept
{
    if (pfn.value >= pages_)
        return false;
    return (words_[pfn.value / 64].load(std::memory_order_relaxed) >> (pfn.value % 64)) & 1;
}

std::uint64_t DirtyBitmap::count() const noexcept
{
    std::uint64_t n = 0;
    for (const auto &w : words_)
        n += static_cast<std::uint64_t>(std::popcount(w.load(std::memory_order_relaxed)));
    return n;
}

void DirtyBitmap::clear() noexcept
{
    for (auto &w : words_)
        w.store(0, std::memory_order_relaxed);
}

void DirtyBitmap::or_words(std::span<const std::uint64_t> words) noexcept
{
    std::size_t n = std::min(words.size(), words_.size());
    for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t bits = words[i];
        if (i == words_.size() - 1 && pages_ % 64)
            bits &= (std::uint64_t{1} << (pages_ % 64)) - 1;
        if (bits)
            words_[i].fetch_or(bits, std::memory_order_relaxed);
    }
}

void DirtyBitmap::or_with(const DirtyBitmap &other) noexcept
{
    std::size_t n = std::min(other.words_.size(), words_.size());
    for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t bits = other.words_[i].load(std::memory_order_relaxed);
        if (bits)
            words_[i].fetch_or(bits, std::memory_order_relaxed);
    }
}

void DirtyBitmap::drain_into(DirtyBitmap &into) noexcept
{
    std::size_t n = std::min(into.words_.size(), words_.size());
    for (std::size_t i = 0; i < n; ++i) {
        if (words_[i].load(std::memory_order_relaxed) == 0)
            continue;
        std::uint64_t bits = words_[i].exchange(0, std::memory_order_acq_rel);
        into.words_[i].fetch_or(bits, std::memory_order_relaxed);
    }
}

std::vector<Pfn> DirtyBitmap::to_vector() const
{
    std::vector<Pfn> out;
    for_each_run([&](Pfn first, std::uint64_t count) {
        for (std::uint64_t i = 0; i < count; ++i)
            out.push_back(Pfn{first.value + i});
    });
    return out;
}

} // namespace understudy
