// Which guest pages changed: one bit per page. Used for the hypervisor's
// dirty log, for the VMM's own writes into guest memory, and for their union.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "checkpoint/pfn.h"

namespace understudy {

class DirtyBitmap {
  public:
    explicit DirtyBitmap(std::uint64_t pages);
    DirtyBitmap(const DirtyBitmap &) = delete;
    DirtyBitmap &operator=(const DirtyBitmap &) = delete;

    [[nodiscard]] std::uint64_t pages() const noexcept { return pages_; }

    // set() may run on any thread concurrently with other set() calls.
    void set(Pfn pfn) noexcept;
    // Marks every page touched by the byte range [gpa, gpa + len).
    void set_range(std::uint64_t gpa, std::uint64_t len) noexcept;
    [[nodiscard]] bool test(Pfn pfn) const noexcept;
    [[nodiscard]] std::uint64_t count() const noexcept;
    void clear() noexcept;

    // ORs in a bitmap in the kernel's layout (bit n of word n/64 is page n).
    // Bits past pages() are ignored.
    void or_words(std::span<const std::uint64_t> words) noexcept;
    void or_with(const DirtyBitmap &other) noexcept;
    // ORs this bitmap into `into` and clears it, word by word, so a concurrent
    // set() lands either in `into` or stays here, never lost.
    void drain_into(DirtyBitmap &into) noexcept;

    // Calls f(first, count) for each run of consecutive dirty pages, in order.
    template <class F> void for_each_run(F &&f) const
    {
        std::uint64_t run_start = 0, run_len = 0;
        for (std::uint64_t w = 0; w < words_.size(); ++w) {
            std::uint64_t bits = words_[w].load(std::memory_order_relaxed);
            if (bits == 0 && run_len == 0)
                continue;
            for (unsigned b = 0; b < 64; ++b) {
                std::uint64_t page = w * 64 + b;
                if (page >= pages_)
                    break;
                if (bits & (std::uint64_t{1} << b)) {
                    if (run_len == 0)
                        run_start = page;
                    ++run_len;
                } else if (run_len) {
                    f(Pfn{run_start}, run_len);
                    run_len = 0;
                }
            }
        }
        if (run_len)
            f(Pfn{run_start}, run_len);
    }

    [[nodiscard]] std::vector<Pfn> to_vector() const;

  private:
    std::uint64_t pages_;
    std::vector<std::atomic<std::uint64_t>> words_;
};

} // namespace understudy
