// Loads a guest kernel image (static ELF64 x86-64 executable) into guest RAM.
// The file is untrusted input: every offset, size and address is checked.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <vector>

#include "checkpoint/kvm/guest_memory.h"

namespace understudy::kvm {

class ElfError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct ElfSegment {
    std::uint64_t file_offset;
    std::uint64_t file_size;
    std::uint64_t guest_address;
    std::uint64_t memory_size;
};

struct ElfImage {
    std::uint64_t entry = 0;
    std::vector<ElfSegment> segments;
    // First byte after the highest segment, rounded up to a page.
    std::uint64_t end = 0;
};

// Validates the headers of `file`; throws ElfError saying what is wrong.
ElfImage parse_elf(std::span<const std::uint8_t> file);
// Copies the segments into RAM and zeroes their .bss; throws ElfError if a
// segment does not fit in RAM.
void load_elf(const ElfImage &image, std::span<const std::uint8_t> file, GuestMemory &memory);
std::vector<std::uint8_t> read_file(const std::filesystem::path &path);

} // namespace understudy::kvm
