// The daemon's status as Prometheus text exposition format (version 0.0.4).
#pragma once

#include <string>

#include "proto/control.pb.h"

namespace understudy::daemon {

[[nodiscard]] std::string prometheus_text(const proto::StatusReply &status);

} // namespace understudy::daemon
