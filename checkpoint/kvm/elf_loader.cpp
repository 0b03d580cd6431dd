#include "checkpoint/kvm/elf_loader.h"

#include <elf.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "guest/abi.h"

namespace understudy::kvm {

namespace {
constexpr std::uint64_t kMaxSegments = 64;

bool add_overflows(std::uint64_t a, std::uint64_t b)
{
    return a + b < a;
}
} // namespace

ElfImage parse_elf(std::span<const std::uint8_t> file)
{
    Elf64_Ehdr eh;
    if (file.size() < sizeof(eh))
        throw ElfError("ELF image: " + std::to_string(file.size()) + " bytes, too short for an ELF header");
    std::memcpy(&eh, file.data(), sizeof(eh));
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        throw ElfError("ELF image: no ELF magic number (not an ELF file)");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
        throw ElfError("ELF image: not a 64-bit little-endian ELF file");
    if (eh.e_machine != EM_X86_64)
        throw ElfError("ELF image: machine " + std::to_string(eh.e_machine) + " is not x86-64");
    if (eh.e_type != ET_EXEC)
        throw ElfError("ELF image: not a static executable (type " + std::to_string(eh.e_type) + ")");
    if (eh.e_phentsize != sizeof(Elf64_Phdr))
        throw ElfError("ELF image: program header size " + std::to_string(eh.e_phentsize) + " is not " +
                       std::to_string(sizeof(Elf64_Phdr)));
    if (eh.e_phnum == 0 || eh.e_phnum > kMaxSegments)
        throw ElfError("ELF image: " + std::to_string(eh.e_phnum) + " program headers (expected 1 to " +
                       std::to_string(kMaxSegments) + ")");
    const std::uint64_t table_size = std::uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
    if (eh.e_phoff > file.size() || table_size > file.size() - eh.e_phoff)
        throw ElfError("ELF image: program header table lies past the end of the file");

    ElfImage image;
    image.entry = eh.e_entry;
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        std::memcpy(&ph, file.data() + eh.e_phoff + i * sizeof(Elf64_Phdr), sizeof(ph));
        if (ph.p_type != PT_LOAD)
            continue;
        const std::string which = "ELF image: segment " + std::to_string(i);
        if (ph.p_filesz > ph.p_memsz)
            throw ElfError(which + ": file size exceeds memory size");
        if (ph.p_offset > file.size() || ph.p_filesz > file.size() - ph.p_offset)
            throw ElfError(which + ": contents lie past the end of the file");
        if (ph.p_paddr < US_KERNEL_MIN_GPA)
            throw ElfError(which + ": loads below 1 MiB, where the VMM keeps its tables");
        if (add_overflows(ph.p_paddr, ph.p_memsz))
            throw ElfError(which + ": address + size overflows");
        image.segments.push_back({ph.p_offset, ph.p_filesz, ph.p_paddr, ph.p_memsz});
        image.end = std::max(image.end, ph.p_paddr + ph.p_memsz);
    }
    if (image.segments.empty())
        throw ElfError("ELF image: no loadable segment");
    bool entry_inside = false;
    for (const auto &s : image.segments)
        entry_inside |= image.entry >= s.guest_address && image.entry < s.guest_address + s.memory_size;
    if (!entry_inside)
        throw ElfError("ELF image: entry point is outside every loadable segment");
    if (add_overflows(image.end, US_PAGE_SIZE))
        throw ElfError("ELF image: image end overflows");
    image.end = (image.end + US_PAGE_SIZE - 1) & ~std::uint64_t{US_PAGE_SIZE - 1};
    return image;
}

void load_elf(const ElfImage &image, std::span<const std::uint8_t> file, GuestMemory &memory)
{
    if (image.end > memory.size())
        throw ElfError("ELF image: needs " + std::to_string(image.end >> 10) + " KiB of RAM, the guest has " +
                       std::to_string(memory.size() >> 10) + " KiB");
    for (const auto &s : image.segments) {
        auto dst = memory.write_view(s.guest_address, s.memory_size, "ELF segment");
        std::memcpy(dst.data(), file.data() + s.file_offset, s.file_size);
        std::memset(dst.data() + s.file_size, 0, s.memory_size - s.file_size);
    }
}

std::vector<std::uint8_t> read_file(const std::filesystem::path &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw ElfError("read " + path.string() + ": " + std::strerror(errno));
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace understudy::kvm
