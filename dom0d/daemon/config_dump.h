// What understudyd read from its configuration, one `section.key = value`
// line per setting, defaults included: `understudyd --check` prints it, so
// an operator (and the docs' test) sees what each line really means.
#pragma once

#include <string>

#include "dom0d/daemon/daemon_config.h"

namespace understudy::daemon {

[[nodiscard]] std::string describe_config(const DaemonConfig &config);

} // namespace understudy::daemon
