#include "heartbeat/uplink_state.h"

#include <fstream>

namespace understudy {

bool interface_down(const std::string &name)
{
    std::ifstream in("/sys/class/net/" + name + "/operstate");
    std::string state;
    if (!(in >> state))
        return true;
    return state == "down" || state == "lowerlayerdown";
}

} // namespace understudy
