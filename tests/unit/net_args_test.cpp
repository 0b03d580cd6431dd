#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "dom0d/cli/net_args.h"

using namespace understudy::cli;

TEST_CASE("IPv4 interface addresses parse with a default /24", "[cli]")
{
    auto a = parse_ipv4_interface("10.99.0.2");
    CHECK(format_ipv4(a.address) == "10.99.0.2");
    CHECK(a.prefix == 24);
    CHECK(ntohl(a.netmask) == 0xffffff00u);
    auto b = parse_ipv4_interface("192.168.7.9/30");
    CHECK(ntohl(b.netmask) == 0xfffffffcu);
    CHECK(ntohl(parse_ipv4_interface("10.0.0.1/32").netmask) == 0xffffffffu);
}

TEST_CASE("bad IPv4 addresses are refused with the reason", "[cli]")
{
    CHECK_THROWS_WITH(parse_ipv4_interface("10.0.0"), Catch::Contains("not a dotted-quad"));
    CHECK_THROWS_WITH(parse_ipv4_interface("10.0.0.1/33"), Catch::Contains("prefix length"));
    CHECK_THROWS_WITH(parse_ipv4_interface("10.0.0.1/"), Catch::Contains("prefix length"));
    CHECK_THROWS_WITH(parse_ipv4_interface("10.0.0.1/2x"), Catch::Contains("prefix length"));
    CHECK_THROWS_WITH(parse_ipv4_interface("127.0.0.1"), Catch::Contains("not a unicast host"));
    CHECK_THROWS_WITH(parse_ipv4_interface("224.0.0.1"), Catch::Contains("not a unicast host"));
    CHECK_THROWS_AS(parse_ipv4_interface("0.0.0.0"), ArgumentError);
}

TEST_CASE("MAC addresses parse and multicast ones are refused", "[cli]")
{
    CHECK(format_mac(parse_mac("52:54:00:AB:cd:0f")) == "52:54:00:ab:cd:0f");
    CHECK_THROWS_WITH(parse_mac("52:54:00:ab:cd"), Catch::Contains("six hex bytes"));
    CHECK_THROWS_WITH(parse_mac("52:54:00:ab:cd:0g"), Catch::Contains("six hex bytes"));
    CHECK_THROWS_WITH(parse_mac("01:00:5e:00:00:01"), Catch::Contains("multicast"));
}
