// Parsing of network settings given on the command line or in a config file.
// All of it is hostile input: bad values get an error that says what and why.
#pragma once

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace understudy::cli {

class ArgumentError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct Ipv4Interface {
    std::uint32_t address = 0; // network byte order
    std::uint32_t netmask = 0; // network byte order
    unsigned prefix = 0;
};

// "A.B.C.D/N" (N defaults to 24).
Ipv4Interface parse_ipv4_interface(const std::string &text);
// "aa:bb:cc:dd:ee:ff", unicast.
std::array<std::uint8_t, 6> parse_mac(const std::string &text);
std::string format_mac(const std::array<std::uint8_t, 6> &mac);
std::string format_ipv4(std::uint32_t address);

} // namespace understudy::cli
