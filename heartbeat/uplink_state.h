// Whether a host's uplink to the client-facing network is down, as the
// kernel sees it (keepalived's track_interface): an interface set down, or
// one whose carrier is gone, says at once what a silent witness says only
// after the timeout.
#pragma once

#include <string>

namespace understudy {

// True when /sys/class/net/NAME/operstate is "down" or "lowerlayerdown", or
// the interface does not exist (in this network namespace).
[[nodiscard]] bool interface_down(const std::string &name);

} // namespace understudy
