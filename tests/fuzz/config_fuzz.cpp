// libFuzzer target for understudyd's configuration parser: whatever the
// text, parse_daemon_config either returns a configuration or throws
// ConfigError naming what is wrong; anything else (another exception, a
// crash) is a finding. The parsed configuration is also printed as
// `understudyd --check` prints it.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "dom0d/daemon/config_dump.h"
#include "dom0d/daemon/daemon_config.h"

using namespace understudy::daemon;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    try {
        const auto config = parse_daemon_config(text, "fuzz.conf");
        (void)describe_config(config);
    } catch (const ConfigError &) {
    }
    return 0;
}
