#include <elf.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "checkpoint/kvm/elf_loader.h"
#include "guest/abi.h"

using namespace understudy::kvm;

namespace {

std::vector<std::uint8_t> demo_guest()
{
    return read_file(UNDERSTUDY_DEMO_GUEST);
}

Elf64_Ehdr &header(std::vector<std::uint8_t> &f)
{
    return *reinterpret_cast<Elf64_Ehdr *>(f.data());
}

Elf64_Phdr &first_load(std::vector<std::uint8_t> &f)
{
    auto &eh = header(f);
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        auto *ph = reinterpret_cast<Elf64_Phdr *>(f.data() + eh.e_phoff + i * sizeof(Elf64_Phdr));
        if (ph->p_type == PT_LOAD)
            return *ph;
    }
    throw std::runtime_error("demo guest has no PT_LOAD");
}

} // namespace

TEST_CASE("the demo guest image parses and loads at 1 MiB", "[elf]")
{
    auto file = demo_guest();
    auto image = parse_elf(file);
    CHECK(image.entry == US_KERNEL_MIN_GPA);
    REQUIRE_FALSE(image.segments.empty());
    CHECK(image.end % 4096 == 0);
    CHECK(image.end > image.entry);

    GuestMemory mem(8 << 20, "elf");
    load_elf(image, file, mem);
    const auto &text = image.segments.front();
    CHECK(std::memcmp(mem.host_base() + text.guest_address, file.data() + text.file_offset, text.file_size) == 0);
}

TEST_CASE("malformed ELF images are refused with a reason", "[elf]")
{
    auto good = demo_guest();
    auto refused = [&](auto mutate, const char *reason) {
        auto f = good;
        mutate(f);
        INFO("expecting: " << reason);
        CHECK_THROWS_WITH(parse_elf(f), Catch::Contains(reason));
    };
    refused([](auto &f) { f.resize(10); }, "too short");
    refused([](auto &f) { f[0] = 'X'; }, "no ELF magic");
    refused([](auto &f) { header(f).e_ident[EI_CLASS] = ELFCLASS32; }, "not a 64-bit");
    refused([](auto &f) { header(f).e_machine = EM_AARCH64; }, "not x86-64");
    refused([](auto &f) { header(f).e_type = ET_DYN; }, "not a static executable");
    refused([](auto &f) { header(f).e_phnum = 0; }, "program headers");
    refused([](auto &f) { header(f).e_phnum = 5000; }, "program headers");
    refused([](auto &f) { header(f).e_phoff = f.size() - 8; }, "past the end of the file");
    refused([](auto &f) { header(f).e_phentsize = 12; }, "program header size");
    refused([](auto &f) { first_load(f).p_filesz = first_load(f).p_memsz + 1; }, "file size exceeds memory size");
    refused([](auto &f) { first_load(f).p_offset = f.size(); }, "past the end of the file");
    refused([](auto &f) { first_load(f).p_paddr = 0x1000; }, "below 1 MiB");
    refused([](auto &f) { first_load(f).p_memsz = ~std::uint64_t{0} - 16; }, "overflows");
    refused([](auto &f) { header(f).e_entry = 0x50000000; }, "entry point is outside");
}

TEST_CASE("an image larger than guest RAM is refused at load", "[elf]")
{
    auto file = demo_guest();
    auto image = parse_elf(file);
    GuestMemory mem(1 << 20, "tiny");
    CHECK_THROWS_WITH(load_elf(image, file, mem), Catch::Contains("needs") && Catch::Contains("KiB of RAM"));
}

TEST_CASE("a missing kernel file is reported by name", "[elf]")
{
    CHECK_THROWS_WITH(read_file("/nonexistent/guest.elf"), Catch::Contains("/nonexistent/guest.elf"));
}
