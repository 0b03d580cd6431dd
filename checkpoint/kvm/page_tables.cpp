#include "checkpoint/kvm/page_tables.h"

#include <array>

#include "checkpoint/kvm/kvm_error.h"
#include "guest/abi.h"

namespace understudy::kvm {

LongModeTables build_long_mode_tables(GuestMemory &memory)
{
    constexpr std::uint64_t gib = 1ull << 30;
    const std::uint64_t size = memory.size();
    if (size < 2 * US_KERNEL_MIN_GPA)
        throw KvmError("page tables: guest RAM of " + std::to_string(size) + " bytes is below the 2 MiB minimum");
    if (size > std::uint64_t{US_MAX_RAM_GIB} * gib)
        throw KvmError("page tables: guest RAM of " + std::to_string(size >> 20) + " MiB is above the " +
                       std::to_string(US_MAX_RAM_GIB) + " GiB the layout supports");

    // Null, 64-bit code, data.
    const std::array<std::uint64_t, 3> gdt{0, 0x00af9a000000ffffull, 0x00cf92000000ffffull};
    memory.write_struct(US_GDT_GPA, gdt, "GDT");

    const std::uint64_t large_pages = (size + kLargePageSize - 1) / kLargePageSize;
    const std::uint64_t directories = (large_pages + 511) / 512;
    auto pml4 = memory.write_view(US_PML4_GPA, kPageSize, "PML4");
    auto pdpt = memory.write_view(US_PDPT_GPA, kPageSize, "PDPT");
    std::fill(pml4.begin(), pml4.end(), 0);
    std::fill(pdpt.begin(), pdpt.end(), 0);
    memory.write_struct<std::uint64_t>(US_PML4_GPA, US_PDPT_GPA | kPtePresent | kPteWritable, "PML4");
    for (std::uint64_t d = 0; d < directories; ++d) {
        const std::uint64_t pd = US_PD_GPA + d * kPageSize;
        auto table = memory.write_view(pd, kPageSize, "page directory");
        std::fill(table.begin(), table.end(), 0);
        memory.write_struct<std::uint64_t>(US_PDPT_GPA + d * 8, pd | kPtePresent | kPteWritable, "PDPT");
        for (std::uint64_t e = 0; e < 512 && d * 512 + e < large_pages; ++e) {
            const std::uint64_t frame = (d * 512 + e) * kLargePageSize;
            memory.write_struct<std::uint64_t>(pd + e * 8, frame | kPtePresent | kPteWritable | kPteLargePage,
                                               "page directory");
        }
    }
    return {US_PML4_GPA, US_GDT_GPA, static_cast<std::uint16_t>(sizeof(gdt) - 1)};
}

} // namespace understudy::kvm
