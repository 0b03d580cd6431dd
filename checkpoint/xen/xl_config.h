// A domain's xl.cfg as the Xen backend needs it (name, type, memory, vCPUs,
// NICs, disks), read with Xen's own parser (libxlutil: xlu_cfg_* for the
// file, xlu_disk_parse for disk specs, exactly as `xl create` reads them).
// NIC specs are key=value lists that xl itself splits; that split is ours.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace understudy::xen {

class XlConfigError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct XlNic {
    std::string mac;     // "00:16:3e:66:92:9c", "" if xl picks one
    std::string bridge;  // "" when not given (xl's default: xenbr0)
    std::string script;
    std::string model;
    std::string ip;
};

struct XlDisk {
    std::string target;  // pdev_path: a file, a device, or a DRBD resource name
    std::string vdev;    // "xvda", "hda"
    std::string format;  // "raw", "qcow2", ...
    std::string script;  // "block-drbd" for drbd:RESOURCE
    bool readwrite = true;
    bool cdrom = false;
    [[nodiscard]] bool drbd() const { return script == "block-drbd"; }
};

struct XlConfig {
    std::string name;
    std::string type;     // "pv", "hvm" or "pvh" (builder = "hvm" counts as hvm)
    std::uint64_t memory_mib = 0;
    std::uint64_t maxmem_mib = 0; // 0: as memory
    unsigned vcpus = 1;
    std::string kernel;   // PV/PVH direct boot
    std::string ramdisk;
    std::string cmdline;  // cmdline, or root + extra as xl joins them
    std::vector<XlNic> nics;
    std::vector<XlDisk> disks;
};

// `text` is the file's content; `source` names it in errors. Throws
// XlConfigError with libxlutil's own message for what it refuses.
[[nodiscard]] XlConfig parse_xl_config(const std::string &text, const std::string &source);

} // namespace understudy::xen
