#include "checkpoint/xen/xl_config.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

extern "C" {
#include <libxl.h>
#include <libxlutil.h>
}

namespace understudy::xen {

namespace {

constexpr std::size_t kMaxConfig = 1 << 20;

// libxlutil reports problems on a FILE*: keep them for the exception.
class Report {
  public:
    Report() : file_(open_memstream(&buf_, &size_)) {}
    ~Report()
    {
        if (file_)
            std::fclose(file_);
        std::free(buf_);
    }
    Report(const Report &) = delete;
    Report &operator=(const Report &) = delete;
    [[nodiscard]] FILE *file() const { return file_; }
    [[nodiscard]] std::string text()
    {
        if (file_)
            std::fflush(file_);
        std::string t = buf_ ? std::string(buf_, size_) : std::string();
        while (!t.empty() && (t.back() == '\n' || t.back() == ' '))
            t.pop_back();
        return t;
    }

  private:
    char *buf_ = nullptr;
    std::size_t size_ = 0;
    FILE *file_;
};

struct ConfigDeleter {
    void operator()(XLU_Config *c) const { xlu_cfg_destroy(c); }
};

std::string optional_string(const XLU_Config *cfg, const char *key)
{
    const char *v = nullptr;
    return xlu_cfg_get_string(cfg, key, &v, 1) == 0 && v ? v : "";
}

XlNic parse_nic(const std::string &spec, const std::string &where)
{
    XlNic nic;
    std::size_t start = 0;
    while (start <= spec.size()) {
        const auto end = std::min(spec.find(',', start), spec.size());
        std::string item = spec.substr(start, end - start);
        start = end + 1;
        const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
        if (b == std::string::npos)
            continue;
        item = item.substr(b, e - b + 1);
        const auto eq = item.find('=');
        if (eq == std::string::npos)
            throw XlConfigError(where + ": vif '" + spec + "': '" + item + "' is not key=value");
        const auto key = item.substr(0, eq), value = item.substr(eq + 1);
        if (key == "mac")
            nic.mac = value;
        else if (key == "bridge")
            nic.bridge = value;
        else if (key == "script")
            nic.script = value;
        else if (key == "model")
            nic.model = value;
        else if (key == "ip")
            nic.ip = value;
        // other keys (rate, vifname, backend, ...) do not matter to understudy
    }
    return nic;
}

} // namespace

XlConfig parse_xl_config(const std::string &text, const std::string &source)
{
    if (text.size() > kMaxConfig)
        throw XlConfigError(source + ": " + std::to_string(text.size()) + " bytes is not an xl config");
    Report report;
    std::unique_ptr<XLU_Config, ConfigDeleter> cfg(xlu_cfg_init(report.file(), source.c_str()));
    if (!cfg)
        throw XlConfigError(source + ": out of memory");
    if (int err = xlu_cfg_readdata(cfg.get(), text.data(), static_cast<int>(text.size())); err != 0)
        throw XlConfigError(source + ": xl cannot parse it: " + report.text());

    XlConfig c;
    c.name = optional_string(cfg.get(), "name");
    if (c.name.empty())
        throw XlConfigError(source + ": no name = \"...\" (every domain has one)");
    c.type = optional_string(cfg.get(), "type");
    if (c.type.empty())
        c.type = optional_string(cfg.get(), "builder") == "hvm" ? "hvm" : "pv";
    if (c.type != "pv" && c.type != "hvm" && c.type != "pvh")
        throw XlConfigError(source + ": type '" + c.type + "' is not pv, hvm or pvh");
    long n = 0;
    if (xlu_cfg_get_bounded_long(cfg.get(), "memory", 1, 1L << 24, &n, 0) == 0)
        c.memory_mib = static_cast<std::uint64_t>(n);
    else
        throw XlConfigError(source + ": memory (MiB) missing or out of range" +
                            (report.text().empty() ? "" : ": " + report.text()));
    if (xlu_cfg_get_bounded_long(cfg.get(), "maxmem", 1, 1L << 24, &n, 1) == 0)
        c.maxmem_mib = static_cast<std::uint64_t>(n);
    if (xlu_cfg_get_bounded_long(cfg.get(), "vcpus", 1, 4096, &n, 1) == 0)
        c.vcpus = static_cast<unsigned>(n);

    c.kernel = optional_string(cfg.get(), "kernel");
    c.ramdisk = optional_string(cfg.get(), "ramdisk");
    c.cmdline = optional_string(cfg.get(), "cmdline");
    if (c.cmdline.empty()) {
        auto root = optional_string(cfg.get(), "root");
        auto extra = optional_string(cfg.get(), "extra");
        c.cmdline = root.empty() ? extra : "root=" + root + (extra.empty() ? "" : " " + extra);
    }

    XLU_ConfigList *list = nullptr;
    int count = 0;
    if (xlu_cfg_get_list(cfg.get(), "vif", &list, &count, 1) == 0)
        for (int i = 0; i < count; ++i) {
            const char *spec = xlu_cfg_get_listitem(list, i);
            if (!spec)
                throw XlConfigError(source + ": vif entry " + std::to_string(i) + " is not a string");
            c.nics.push_back(parse_nic(spec, source));
        }
    if (xlu_cfg_get_list(cfg.get(), "disk", &list, &count, 1) == 0)
        for (int i = 0; i < count; ++i) {
            const char *spec = xlu_cfg_get_listitem(list, i);
            if (!spec)
                throw XlConfigError(source + ": disk entry " + std::to_string(i) + " is not a string");
            libxl_device_disk disk;
            libxl_device_disk_init(&disk);
            const int err = xlu_disk_parse(cfg.get(), 1, &spec, &disk);
            if (err != 0) {
                libxl_device_disk_dispose(&disk);
                throw XlConfigError(source + ": disk '" + spec + "': " + report.text());
            }
            XlDisk d;
            d.target = disk.pdev_path ? disk.pdev_path : "";
            d.vdev = disk.vdev ? disk.vdev : "";
            d.format = libxl_disk_format_to_string(disk.format);
            d.script = disk.script ? disk.script : "";
            d.readwrite = disk.readwrite != 0;
            d.cdrom = disk.is_cdrom != 0;
            libxl_device_disk_dispose(&disk);
            c.disks.push_back(d);
        }
    return c;
}

} // namespace understudy::xen
