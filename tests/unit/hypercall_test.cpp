// Hostile guest input at the hypercall boundary, without KVM: the device
// handlers are driven exactly as the vCPU thread drives them.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "checkpoint/kvm/devices/block_device.h"
#include "checkpoint/kvm/devices/clock_device.h"
#include "checkpoint/kvm/devices/console_device.h"
#include "checkpoint/kvm/devices/net_device.h"
#include "checkpoint/kvm/kvm_error.h"

using namespace understudy;
using namespace understudy::kvm;

namespace {

constexpr std::uint64_t kRam = 4 << 20;
constexpr std::uint64_t kArgs = 0x10000;
constexpr std::uint64_t kData = 0x20000;

struct Machine {
    GuestMemory mem{kRam, "hostile"};
    HypercallTable table;
    std::string console;
    ConsoleDevice console_device{[this](std::string_view t) { console.append(t); }};
    NetDevice net{nullptr, {2, 0, 0, 0, 0, 1}};
    std::filesystem::path image_path =
        std::filesystem::temp_directory_path() / ("understudy-unit-" + std::to_string(getpid()) + ".img");
    std::shared_ptr<BlockImage> image;
    std::unique_ptr<BlockDevice> block;

    Machine()
    {
        std::filesystem::remove(image_path);
        image = std::make_shared<BlockImage>(image_path, 64 * US_SECTOR_SIZE);
        block = std::make_unique<BlockDevice>(image);
        console_device.attach(table, mem);
        net.attach(table, mem, -1);
        block->attach(table, mem);
    }
    ~Machine() { std::filesystem::remove(image_path); }

    template <class T> void call(us_hypercall nr, const T &args)
    {
        mem.write_struct(kArgs, args, "test");
        table.dispatch(static_cast<std::uint16_t>(US_HYPERCALL_PORT(nr)), kArgs);
    }
    template <class T> T result() { return mem.read_struct<T>(kArgs, "test"); }
};

} // namespace

TEST_CASE("a console write reaches the sink", "[hypercall]")
{
    Machine m;
    std::memcpy(m.mem.host_base() + kData, "hello", 5);
    m.call(US_HC_CONSOLE_WRITE, us_hc_console_write{kData, 5});
    CHECK(m.console == "hello");
    CHECK(m.console_device.recent_output() == "hello");
}

TEST_CASE("bad guest addresses and lengths stop the guest with a reason", "[hypercall]")
{
    Machine m;
    SECTION("console text past RAM")
    {
        CHECK_THROWS_WITH(m.call(US_HC_CONSOLE_WRITE, us_hc_console_write{kRam + 4096, 16}),
                          Catch::Contains("console write text") && Catch::Contains("outside guest RAM"));
    }
    SECTION("console length near 2^64")
    {
        CHECK_THROWS_WITH(m.call(US_HC_CONSOLE_WRITE, us_hc_console_write{kData, ~std::uint64_t{0} - 8}),
                          Catch::Contains("console write of"));
    }
    SECTION("argument struct straddling the end of RAM")
    {
        CHECK_THROWS_WITH(m.table.dispatch(US_HYPERCALL_PORT(US_HC_CONSOLE_WRITE), kRam - 8),
                          Catch::Contains("console write arguments") && Catch::Contains("outside guest RAM"));
    }
    SECTION("unknown hypercall numbers and ports")
    {
        CHECK_THROWS_WITH(m.table.dispatch(US_HYPERCALL_PORT(US_HC_COUNT + 3), kArgs),
                          Catch::Contains("no known hypercall"));
        CHECK_THROWS_AS(m.table.dispatch(0x80, kArgs), GuestFault);
        CHECK_THROWS_AS(m.table.dispatch(US_HYPERCALL_PORT(0), kArgs), GuestFault);
    }
    SECTION("net read into a buffer larger than RAM")
    {
        CHECK_THROWS_WITH(m.call(US_HC_NET_READ, us_hc_net_io{kData, 1ull << 40, 0}),
                          Catch::Contains("net read buffer"));
    }
    SECTION("net write of an oversized frame")
    {
        CHECK_THROWS_WITH(m.call(US_HC_NET_WRITE, us_hc_net_io{kData, 9000, 0}), Catch::Contains("net write of"));
    }
    SECTION("block transfer of a partial sector or too much")
    {
        CHECK_THROWS_WITH(m.call(US_HC_BLOCK_READ, us_hc_block_io{0, kData, 100, 0}), Catch::Contains("whole sectors"));
        CHECK_THROWS_AS(m.call(US_HC_BLOCK_WRITE, us_hc_block_io{0, kData, 1 << 20, 0}), GuestFault);
        CHECK_THROWS_WITH(m.call(US_HC_BLOCK_WRITE, us_hc_block_io{0, kRam - 512, 1024, 0}),
                          Catch::Contains("outside guest RAM"));
    }
}

TEST_CASE("a block request past the end of the disk fails for the guest, not the host", "[hypercall]")
{
    Machine m;
    for (std::uint64_t sector :
         {std::uint64_t{64}, std::uint64_t{63} + 1, ~std::uint64_t{0}, ~std::uint64_t{0} / 512}) {
        m.call(US_HC_BLOCK_READ, us_hc_block_io{sector, kData, 2 * US_SECTOR_SIZE, 0});
        CHECK(m.result<us_hc_block_io>().ret == US_EINVAL);
    }
    // The last sector itself is fine.
    m.call(US_HC_BLOCK_READ, us_hc_block_io{63, kData, US_SECTOR_SIZE, 0});
    CHECK(m.result<us_hc_block_io>().ret == US_OK);
}

TEST_CASE("block writes reach the image and reads bring them back into RAM", "[hypercall]")
{
    Machine m;
    std::memset(m.mem.host_base() + kData, 0xab, 1024);
    m.call(US_HC_BLOCK_WRITE, us_hc_block_io{10, kData, 1024, 0});
    CHECK(m.result<us_hc_block_io>().ret == US_OK);
    std::vector<std::uint8_t> disk(1024);
    REQUIRE(pread(m.image->fd(), disk.data(), disk.size(), 10 * 512) == 1024);
    CHECK(std::all_of(disk.begin(), disk.end(), [](auto b) { return b == 0xab; }));

    m.mem.vmm_dirty().clear();
    m.call(US_HC_BLOCK_READ, us_hc_block_io{10, kData + 4096, 1024, 0});
    CHECK(m.mem.host_base()[kData + 4096 + 1023] == 0xab);
    CHECK(m.mem.vmm_dirty().test(Pfn::containing(kData + 4096))); // a device write is a dirty page
}

TEST_CASE("without a TAP, reads find nothing and writes are accepted", "[hypercall]")
{
    Machine m;
    m.call(US_HC_NET_READ, us_hc_net_io{kData, 1514, 0});
    CHECK(m.result<us_hc_net_io>().ret == US_EAGAIN);
    m.call(US_HC_NET_WRITE, us_hc_net_io{kData, 60, 0});
    CHECK(m.result<us_hc_net_io>().ret == US_OK);
}
