#include "checkpoint/xen/restore_stream.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "checkpoint/pfn.h"
#include "checkpoint/xen/pv_page_table.h"

namespace understudy::xen {

namespace {

using namespace stream;

constexpr std::size_t kDirectRun = 256 * 1024; // runs of pages at least this long are sent without a copy

// Little-endian fields (x86); the two headers' fields are big-endian.
class Bytes {
  public:
    void le32(std::uint32_t v) { put(v, 4, false); }
    void le64(std::uint64_t v) { put(v, 8, false); }
    void be16(std::uint16_t v) { put(v, 2, true); }
    void be32(std::uint32_t v) { put(v, 4, true); }
    void be64(std::uint64_t v) { put(v, 8, true); }
    void le16(std::uint16_t v) { put(v, 2, false); }
    void raw(const void *p, std::size_t n)
    {
        const auto *b = static_cast<const std::uint8_t *>(p);
        data.insert(data.end(), b, b + n);
    }
    std::vector<std::uint8_t> data;

  private:
    void put(std::uint64_t v, int n, bool big)
    {
        for (int i = 0; i < n; ++i)
            data.push_back(static_cast<std::uint8_t>(v >> (8 * (big ? n - 1 - i : i))));
    }
};

// A record: type, body length, body, zeros to the next multiple of 8.
void record(Bytes &b, std::uint32_t type, std::span<const std::uint8_t> body)
{
    if (body.size() > (128u << 20))
        throw std::length_error("Xen stream record of " + std::to_string(body.size()) + " bytes");
    b.le32(type);
    b.le32(static_cast<std::uint32_t>(body.size()));
    b.raw(body.data(), body.size());
    b.data.resize((b.data.size() + 7) / 8 * 8, 0);
}

void record(Bytes &b, std::uint32_t type, const std::string &body)
{
    record(b, type, {reinterpret_cast<const std::uint8_t *>(body.data()), body.size()});
}

bool all_zero(std::span<const std::uint8_t> page)
{
    static const std::uint8_t zeros[kPageSize] = {};
    return std::memcmp(page.data(), zeros, kPageSize) == 0;
}

void write_hvm_end(Bytes &b, const proto::XenCpuState &state);
void write_pv_end(Bytes &b, const proto::XenPvState &pv);

} // namespace

void write_restore_stream(const RestoreSource &source, const std::function<void(std::span<const std::uint8_t>)> &out)
{
    if (!source.state || !source.page)
        throw std::invalid_argument("write_restore_stream: no state or pages");
    const auto &state = *source.state;
    const bool pv = state.domain_type() == "pv";
    Bytes b;
    auto flush = [&] {
        if (!b.data.empty())
            out(b.data);
        b.data.clear();
    };

    // libxl's header, and the record that hands the stream to libxc.
    b.be64(kLibxlIdent);
    b.be32(kLibxlVersion);
    b.be32(0); // little-endian
    record(b, kLibxlLibxcContext, std::string());

    // libxc's image and domain headers.
    b.be64(kImageMarker);
    b.be32(kImageId);
    b.be32(kImageVersion);
    b.be16(0); // little-endian
    b.be16(0);
    b.be32(0);
    b.le32(pv ? kDomainX86Pv : kDomainX86Hvm);
    b.le16(12); // page shift
    b.le16(0);
    b.le32(source.xen_major);
    b.le32(source.xen_minor);

    // Static data first: for PV its width, then the CPU the domain had.
    if (pv) {
        Bytes info;
        info.raw("\x08\x04", 2); // guest width 8 bytes, 4 page table levels
        info.raw("\0\0\0\0\0\0", 6);
        record(b, kX86PvInfo, info.data);
    }
    if (!state.cpuid_policy().empty())
        record(b, kCpuidPolicy, state.cpuid_policy());
    if (!state.msr_policy().empty())
        record(b, kMsrPolicy, state.msr_policy());
    record(b, kStaticDataEnd, std::string());
    if (pv) { // where the guest's p2m is, which Xen's restore rewrites
        Bytes frames;
        frames.le32(0);
        frames.le32(static_cast<std::uint32_t>(state.pv().max_pfn()));
        for (auto pfn : state.pv().p2m_frames())
            frames.le64(pfn);
        record(b, kX86PvP2mFrames, frames.data);
    }
    flush();

    // Memory: every RAM frame, in batches; frames that are all zeros only
    // allocated (Xen gives new domains zeroed pages).
    std::vector<bool> ram(source.pages, true);
    for (const auto &r : state.not_ram())
        for (std::uint64_t p = r.first(); p < r.first() + r.count() && p < source.pages; ++p)
            ram[p] = false;
    std::vector<std::uint8_t> types(pv ? source.pages : 0, 0); // PV page tables, by pfn
    if (pv && source.page_tables)
        for (const auto &[pfn, type] : *source.page_tables)
            if (pfn < types.size())
                types[pfn] = static_cast<std::uint8_t>(type >> 28);
    std::vector<std::uint64_t> pfns;
    std::vector<std::span<const std::uint8_t>> data;
    auto page_batch = [&] {
        if (pfns.empty())
            return;
        // The record's header and pfns, then the pages straight from the
        // standby, adjacent ones in one piece (whole pages: no padding).
        b.le32(kPageData);
        b.le32(static_cast<std::uint32_t>(8 + pfns.size() * 8 + data.size() * kPageSize));
        b.le32(static_cast<std::uint32_t>(pfns.size()));
        b.le32(0);
        for (auto p : pfns)
            b.le64(p);
        // Short runs are gathered (one send for many), long ones sent as they are.
        auto put = [&](std::span<const std::uint8_t> run) {
            if (run.size() < kDirectRun) {
                b.raw(run.data(), run.size());
                if (b.data.size() >= kDirectRun)
                    flush();
                return;
            }
            flush();
            out(run);
        };
        std::span<const std::uint8_t> run;
        for (auto d : data) {
            if (!run.empty() && run.data() + run.size() == d.data()) {
                run = {run.data(), run.size() + d.size()};
                continue;
            }
            if (!run.empty())
                put(run);
            run = d;
        }
        if (!run.empty())
            put(run);
        flush();
        pfns.clear();
        data.clear();
    };
    for (std::uint64_t pfn = 0; pfn < source.pages; ++pfn) {
        if (!ram[pfn])
            continue;
        const auto page = source.page(pfn);
        if (page.size() != kPageSize)
            throw std::logic_error("write_restore_stream: page " + std::to_string(pfn) + " is not 4 KiB");
        const std::uint64_t type = pv ? types[pfn] : kTypeNotab;
        if (type == kTypeNotab && all_zero(page)) {
            pfns.push_back(pfn | kTypeXalloc << 60);
        } else {
            pfns.push_back(pfn | type << 60);
            data.push_back(page);
        }
        if (pfns.size() == kBatchPages)
            page_batch();
    }
    page_batch();

    // The end of the checkpoint: TSC, parameters before the context.
    if (state.has_tsc()) {
        Bytes tsc;
        tsc.le32(state.tsc().mode());
        tsc.le32(state.tsc().gtsc_khz());
        tsc.le64(state.tsc().elapsed_nsec());
        tsc.le32(state.tsc().incarnation());
        tsc.le32(0);
        record(b, kTscInfo, tsc.data);
    }
    if (pv) {
        write_pv_end(b, state.pv());
    } else {
        write_hvm_end(b, state);
    }
    record(b, kEnd, std::string());
    flush();
    if (!source.device_model.empty()) {
        Bytes emulator;
        emulator.le32(kEmulatorQemuUpstream);
        emulator.le32(0); // the domain's first (only) emulator
        emulator.raw(source.device_model.data(), source.device_model.size());
        record(b, kLibxlEmulatorContext, emulator.data);
    }
    record(b, kLibxlEnd, std::string());
    flush();
}

namespace {

void write_hvm_end(Bytes &b, const proto::XenCpuState &state)
{
    Bytes params;
    params.le32(static_cast<std::uint32_t>(state.params_size()));
    params.le32(0);
    for (const auto &p : state.params()) {
        params.le64(p.index());
        params.le64(p.value());
    }
    record(b, kHvmParams, params.data);
    record(b, kHvmContext, state.hvm_context());
}

// A vCPU record: its id, then the blob.
void vcpu_record(Bytes &b, std::uint32_t type, std::uint32_t id, const std::string &blob)
{
    if (blob.empty())
        return; // Xen's save leaves out what a vCPU does not have
    Bytes r;
    r.le32(id);
    r.le32(0);
    r.raw(blob.data(), blob.size());
    record(b, type, r.data);
}

void write_pv_end(Bytes &b, const proto::XenPvState &pv)
{
    record(b, kSharedInfo, pv.shared_info());
    for (const auto &v : pv.vcpus()) {
        vcpu_record(b, kX86PvVcpuBasic, v.id(), v.basic());
        vcpu_record(b, kX86PvVcpuExtended, v.id(), v.extended());
        vcpu_record(b, kX86PvVcpuXsave, v.id(), v.xsave());
        vcpu_record(b, kX86PvVcpuMsrs, v.id(), v.msrs());
    }
}

} // namespace

} // namespace understudy::xen
