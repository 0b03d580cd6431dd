// xl.cfg files read with Xen's own parser (libxlutil): real configurations
// from tests/fixtures/xen (sources in SOURCES.md), including Remus's PV guest
// on a DRBD disk, and configurations xl would refuse.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "checkpoint/xen/xl_config.h"

using namespace understudy::xen;

namespace {

XlConfig fixture(const std::string &name)
{
    std::ifstream in(std::string(UNDERSTUDY_SOURCE_DIR) + "/tests/fixtures/xen/" + name);
    REQUIRE(in);
    std::stringstream s;
    s << in.rdbuf();
    return parse_xl_config(s.str(), name);
}

} // namespace

TEST_CASE("Remus's PV guest on a DRBD disk", "[xen][xl]")
{
    const auto c = fixture("remus_pv_guest_drbd_disk.cfg");
    CHECK(c.name == "rt");
    CHECK(c.type == "pv");
    CHECK(c.memory_mib == 256);
    REQUIRE(c.disks.size() == 1);
    CHECK(c.disks[0].drbd());
    CHECK(c.disks[0].target == "drbd-vm");
    CHECK(c.disks[0].vdev == "xvda");
    CHECK(c.disks[0].readwrite);
    REQUIRE(c.nics.size() == 1);
    CHECK(c.nics[0].mac == "18:66:da:03:15:b1");
}

TEST_CASE("xl's example HVM and PV configurations", "[xen][xl]")
{
    const auto hvm = fixture("xlexample.hvm");
    CHECK(hvm.name == "example.hvm");
    CHECK(hvm.type == "hvm");
    CHECK(hvm.vcpus == 2);
    CHECK(hvm.memory_mib == 128);
    REQUIRE(hvm.disks.size() == 1);
    CHECK(hvm.disks[0].target == "/dev/vg/guest-volume");
    CHECK(hvm.disks[0].format == "raw");
    CHECK_FALSE(hvm.disks[0].drbd());
    REQUIRE(hvm.nics.size() == 1); // vif = [ '' ]: one NIC, all defaults
    CHECK(hvm.nics[0].mac.empty());

    const auto pv = fixture("xlexample.pvlinux");
    CHECK(pv.type == "pv");
    CHECK(pv.name == "example.pvlinux");
}

TEST_CASE("a libvirt-written HVM config: legacy builder, three disks, a bridged NIC", "[xen][xl]")
{
    const auto c = fixture("libvirt_hvm_disk-positional-parms-full.cfg");
    CHECK(c.name == "XenGuest2");
    CHECK(c.type == "hvm"); // builder = "hvm"
    CHECK(c.memory_mib == 394);
    CHECK(c.maxmem_mib == 579);
    REQUIRE(c.nics.size() == 1);
    CHECK(c.nics[0].mac == "00:16:3e:66:92:9c");
    CHECK(c.nics[0].bridge == "xenbr1");
    CHECK(c.nics[0].model == "e1000");
    REQUIRE(c.disks.size() == 3);
    CHECK(c.disks[1].format == "qcow2");
    CHECK(c.disks[2].cdrom);
    CHECK_FALSE(c.disks[2].readwrite);
}

TEST_CASE("configurations xl refuses are refused with xl's reason", "[xen][xl]")
{
    CHECK_THROWS_WITH(parse_xl_config("name = \"a\"\nmemory = 64\nnot valid at all ===", "bad.cfg"),
                      Catch::Contains("bad.cfg") && Catch::Contains("xl cannot parse it"));
    CHECK_THROWS_WITH(parse_xl_config("memory = 64\n", "noname.cfg"), Catch::Contains("no name"));
    CHECK_THROWS_WITH(parse_xl_config("name = \"a\"\n", "nomem.cfg"), Catch::Contains("memory"));
    CHECK_THROWS_WITH(parse_xl_config("name = \"a\"\nmemory = 64\ntype = \"vmx\"\n", "t.cfg"),
                      Catch::Contains("not pv, hvm or pvh"));
    CHECK_THROWS_WITH(parse_xl_config("name = \"a\"\nmemory = 64\ndisk = [ 'x,y,z,w,q,r' ]\n", "d.cfg"),
                      Catch::Contains("disk"));
    CHECK_THROWS_WITH(parse_xl_config("name = \"a\"\nmemory = 64\nvif = [ 'mac' ]\n", "v.cfg"),
                      Catch::Contains("not key=value"));
    CHECK_THROWS_WITH(parse_xl_config(std::string(2 << 20, '#'), "big.cfg"), Catch::Contains("is not an xl config"));
}
