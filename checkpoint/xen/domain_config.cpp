#include "checkpoint/xen/domain_config.h"

#include <cstdlib>
#include <cstring>

extern "C" {
#include <libxl.h>
}

namespace understudy::xen {

namespace {

char *copy(const std::string &s)
{
    return s.empty() ? nullptr : strdup(s.c_str());
}

void parse_mac(const std::string &text, libxl_mac &mac, const std::string &domain)
{
    unsigned b[6];
    char extra = 0;
    if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &extra) != 6)
        throw XlConfigError(domain + ": vif mac '" + text + "' is not six hex bytes separated by ':'");
    for (int i = 0; i < 6; ++i)
        mac[i] = static_cast<std::uint8_t>(b[i]);
}

} // namespace

void build_domain_config(const XlConfig &config, libxl_domain_config *out)
{
    libxl_domain_type type = LIBXL_DOMAIN_TYPE_HVM;
    if (config.type == "pv")
        type = LIBXL_DOMAIN_TYPE_PV;
    else if (config.type == "pvh")
        type = LIBXL_DOMAIN_TYPE_PVH;

    out->c_info.type = type;
    out->c_info.name = copy(config.name);
    libxl_domain_build_info_init_type(&out->b_info, type);
    const std::uint64_t maxmem = config.maxmem_mib ? config.maxmem_mib : config.memory_mib;
    out->b_info.max_memkb = maxmem * 1024;
    out->b_info.target_memkb = config.memory_mib * 1024;
    out->b_info.max_vcpus = static_cast<int>(config.vcpus);
    out->b_info.avail_vcpus.size = (config.vcpus + 7) / 8;
    out->b_info.avail_vcpus.map = static_cast<std::uint8_t *>(std::calloc(out->b_info.avail_vcpus.size, 1));
    for (unsigned v = 0; v < config.vcpus; ++v)
        out->b_info.avail_vcpus.map[v / 8] |= static_cast<std::uint8_t>(1u << (v % 8));
    out->b_info.kernel = copy(config.kernel);
    out->b_info.ramdisk = copy(config.ramdisk);
    out->b_info.cmdline = copy(config.cmdline);

    out->num_disks = static_cast<int>(config.disks.size());
    out->disks = static_cast<libxl_device_disk *>(std::calloc(config.disks.size() + 1, sizeof(libxl_device_disk)));
    for (std::size_t i = 0; i < config.disks.size(); ++i) {
        const auto &d = config.disks[i];
        auto &disk = out->disks[i];
        libxl_device_disk_init(&disk);
        disk.pdev_path = copy(d.target);
        disk.vdev = copy(d.vdev);
        disk.script = copy(d.script);
        disk.readwrite = d.readwrite ? 1 : 0;
        disk.is_cdrom = d.cdrom ? 1 : 0;
        if (libxl_disk_format_from_string(d.format.c_str(), &disk.format) != 0)
            throw XlConfigError(config.name + ": disk " + d.vdev + ": format '" + d.format + "' unknown to libxl");
    }
    out->num_nics = static_cast<int>(config.nics.size());
    out->nics = static_cast<libxl_device_nic *>(std::calloc(config.nics.size() + 1, sizeof(libxl_device_nic)));
    for (std::size_t i = 0; i < config.nics.size(); ++i) {
        const auto &n = config.nics[i];
        auto &nic = out->nics[i];
        libxl_device_nic_init(&nic);
        nic.devid = static_cast<libxl_devid>(i);
        if (!n.mac.empty())
            parse_mac(n.mac, nic.mac, config.name);
        nic.bridge = copy(n.bridge);
        nic.script = copy(n.script);
        nic.model = copy(n.model);
        nic.ip = copy(n.ip);
    }
}

} // namespace understudy::xen
