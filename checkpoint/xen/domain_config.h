// Turns an xl.cfg (as parsed by parse_xl_config) into the libxl_domain_config
// that libxl_domain_create_new builds a domain from: the part of what `xl
// create` does that a standby needs (name, type, memory, vCPUs, PV/PVH
// kernel, disks, NICs). docs/xen.md lists what is not carried.
#pragma once

#include "checkpoint/xen/xl_config.h"

struct libxl_domain_config;

namespace understudy::xen {

// `out` must be initialised (libxl_domain_config_init); the caller disposes
// it. Throws XlConfigError for values libxl would not take.
void build_domain_config(const XlConfig &config, libxl_domain_config *out);

} // namespace understudy::xen
