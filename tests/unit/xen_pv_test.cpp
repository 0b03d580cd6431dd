// A 64-bit PV domain of the libxenctrl TEST DOUBLE protected by the real Xen
// backend: its page tables hold machine frames, which leave the primary as
// pfns (as Xen's PV save sends them) and come back as the backup's own
// machine frames through Xen's restore (the double's reading of it).
#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <set>

extern "C" {
#include <xenctrl.h>
}

#include "checkpoint/xen/pv_page_table.h"
#include "tests/support/bit_flip_proxy.h"
#include "tests/support/xen_double/pv_layout.h"
#include "tests/unit/xen_test_pair.h"

using namespace understudy;
using namespace understudy::xen;
using namespace understudy::xen::testing;

namespace {

constexpr std::uint64_t kPages = 4096;

xd::DomainSpec pv_spec(const std::string &name)
{
    xd::DomainSpec spec;
    spec.name = name;
    spec.type = "pv";
    spec.pages = kPages;
    return spec;
}

std::uint32_t make_pv_domain(std::vector<std::uint64_t> holes = {2000, 2001}, const std::string &p2m = "list")
{
    auto spec = pv_spec("web01");
    spec.pv_p2m = p2m;
    spec.holes = std::move(holes);
    const auto domid = xd::create_domain(spec);
    xd::start_workload(domid, 50us);
    return domid;
}

vcpu_guest_context_x86_64_t basic_of(const proto::XenPvVcpu &v)
{
    vcpu_guest_context_x86_64_t c{};
    REQUIRE(v.basic().size() == sizeof c);
    std::memcpy(&c, v.basic().data(), sizeof c);
    return c;
}

// The page tables the standby holds (the first checkpoint's list, changed
// by each later one), against the double's.
void check_page_tables(const PageTableMap &tables, std::uint32_t domid)
{
    std::set<std::uint64_t> sent;
    for (const auto &[pfn, type] : tables)
        sent.insert(page_table_entry(pfn, type));
    std::set<std::uint64_t> has;
    for (std::uint64_t pfn = 0; pfn < kPages; ++pfn)
        if (const auto type = xd::page_type(domid, pfn); type & XEN_DOMCTL_PFINFO_LTABTYPE_MASK)
            has.insert(pfn | std::uint64_t{type >> 28} << 60);
    CHECK(sent == has);
    CHECK(has.size() == 5); // two L4s (pinned), an L3, an L2, an L1
}

// At an acked epoch the standby holds the domain's memory as Xen's save
// sends it (page tables in pfns) and its vCPU state with frames as pfns.
void require_standby_equals_pv_domain(StandbyRegistry &registry, std::uint32_t domid)
{
    const auto memory = xd::normalised_memory(domid);
    const bool found = registry.inspect("web01", [&](const StandbyGuest &standby) {
        auto &image = dynamic_cast<const StandbyImage &>(standby);
        REQUIRE(image.memory().size() == memory.size());
        CHECK(std::memcmp(image.memory().data(), memory.data(), memory.size()) == 0);
        REQUIRE(image.cpu());
        const auto &x = image.cpu()->xen();
        CHECK(x.domain_type() == "pv");
        REQUIRE(x.has_pv());
        const auto &pv = x.pv();
        CHECK(pv.guest_width() == 8);
        CHECK(pv.max_pfn() == kPages - 1);
        CHECK(std::vector<std::uint64_t>(pv.p2m_frames().begin(), pv.p2m_frames().end()) == xd::p2m_pages(domid));
        REQUIRE(pv.vcpus_size() == 1);
        const auto c = basic_of(pv.vcpus(0));
        CHECK(c.user_regs.rip == xd::counter(domid));
        CHECK(c.user_regs.rax == 0); // inside its suspend
        // The suspend record is the pfn of its start info page, as the page itself shows.
        REQUIRE(c.user_regs.rdx < kPages);
        CHECK(std::string(reinterpret_cast<const char *>(image.memory().data() + c.user_regs.rdx * kPageSize)) ==
              "xen-3.0-x86_64");
        CHECK((xd::page_type(domid, c.ctrlreg[3] >> 12) & XEN_DOMCTL_PFINFO_LTABTYPE_MASK) == XEN_DOMCTL_PFINFO_L4TAB);
        CHECK((c.ctrlreg[1] & 1) == 1);
        CHECK(xd::mfn_of(domid, c.gdt_frames[0]) != xd::pv::kNone);
        CHECK(pv.vcpus(0).extended().size() == sizeof(xen_domctl_ext_vcpucontext));
        CHECK(pv.vcpus(0).xsave().size() == 832);
        CHECK(pv.vcpus(0).msrs().size() == sizeof(xen_domctl_vcpu_msr_t));
        check_page_tables(dynamic_cast<const XenStandby &>(standby).page_tables(), domid);
        // Past a stream's first checkpoint, only what changed: the workload
        // rewrites entries, not types, and balloons data frames.
        if (image.cpu()->xen().pv().page_tables_complete())
            CHECK(pv.page_tables_size() == 5);
        else
            CHECK(pv.page_tables_size() == 0);
        // Frames that are not RAM (ballooned out) are said so.
        std::set<std::uint64_t> not_ram;
        for (const auto &r : x.not_ram())
            for (auto p = r.first(); p < r.first() + r.count(); ++p)
                not_ram.insert(p);
        for (std::uint64_t pfn = 0; pfn < kPages; ++pfn)
            CHECK(not_ram.count(pfn) == (xd::mfn_of(domid, pfn) == xd::pv::kNone ? 1u : 0u));
    });
    REQUIRE(found);
}

// A PV domain protected (suspended at each checkpoint) up to its first acked epoch.
struct PvProtection {
    XenGuest guest;
    Replicator replicator;
    PvProtection(Pair &pair, std::uint32_t domid)
        : guest(pair.xen, domid, CheckpointWay::suspend),
          replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log))
    {
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
    }
};

std::uint64_t start_info_field(const std::uint8_t *page, std::size_t offset)
{
    std::uint64_t v;
    std::memcpy(&v, page + offset, 8);
    return v;
}

} // namespace

TEST_CASE("Xen PV: a 64-bit PV domain is protected by suspending it; the standby holds its page tables in pfns at "
          "every acked epoch, and Xen's restore builds it on the backup with its own machine frames",
          "[xen][pv]")
{
    // Its p2m published as Linux does on Xen 4.17 (a virtual list), or as a
    // frame list list.
    const std::string form = GENERATE("list", "tree");
    INFO("p2m published as a " << form);
    Pair pair(16, "pv");
    const auto domid = make_pv_domain({2000, 2001}, form);
    std::vector<std::uint8_t> committed;
    std::uint64_t old_l4_mfn = 0, counter = 0, cr3_pfn = 0;
    {
        XenGuest guest(pair.xen, domid, CheckpointWay::suspend);
        Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
        replicator.start();
        REQUIRE(replicator.wait_protected(20s));
        for (int round = 0; round < 4; ++round) {
            std::this_thread::sleep_for(30ms);
            replicator.freeze(10s);
            INFO("round " << round << "\n" << pair.log.all());
            CHECK(xd::suspended(domid));
            require_standby_equals_pv_domain(pair.registry, domid);
            replicator.thaw();
            if (round == 1) // its balloon driver gives two frames back and takes one
                xd::balloon(domid, {300, 301}, {2000});
        }
        CHECK(pair.log.contains("frames changed machine frames in its p2m (ballooning)"));
        replicator.freeze(10s);
        xd::stop_workload(domid);
        require_standby_equals_pv_domain(pair.registry, domid);
        committed = xd::normalised_memory(domid);
        counter = xd::counter(domid);
        pair.registry.inspect("web01", [&](const StandbyGuest &standby) {
            cr3_pfn = basic_of(dynamic_cast<const StandbyImage &>(standby).cpu()->xen().pv().vcpus(0)).ctrlreg[3] >> 12;
        });
        old_l4_mfn = xd::mfn_of(domid, cr3_pfn);
        replicator.stop("test: unprotect");
        CHECK_FALSE(xd::log_dirty_enabled(domid));
        CHECK_FALSE(xd::suspended(domid));
        CHECK(xd::suspend_result(domid) == 1); // cancelled: it goes on here
    }
    xd::destroy_domain(domid);
    auto [guest, new_domid] = activate_standby(pair);
    INFO(pair.log.all() << "\nrestore: " << xd::last_restore_error());
    CHECK(xd::restored(new_domid));
    // Its vCPU is where it was, inside the suspend, which returns 0 there: a new domain.
    const auto v = xd::restored_vcpu0(new_domid);
    CHECK(v.rip == counter);
    CHECK(v.rax == 0);
    CHECK(v.cr3_pfn == cr3_pfn);
    CHECK(xd::mfn_of(new_domid, cr3_pfn) != old_l4_mfn); // other machine frames, same guest frames
    CHECK(xd::pinned_tables(new_domid) == 2);            // both L4s, pinned as they were
    // Its memory is the committed memory: page tables the same once
    // normalised again; the p2m rewritten for its new machine frames; the
    // start info page naming the xenstore and console pages by their new
    // machine frames.
    const auto start_info = v.start_info_pfn;
    REQUIRE(start_info < kPages);
    CHECK(v.cr1_pfn < kPages);
    CHECK(v.gdt_pfn < kPages);
    const auto now = xd::normalised_memory(new_domid);
    REQUIRE(now.size() == committed.size());
    const auto p2m_pages = xd::p2m_pages(new_domid);
    std::set<std::uint64_t> rewritten(p2m_pages.begin(), p2m_pages.end());
    rewritten.insert(start_info);
    std::uint64_t differing = 0;
    for (std::uint64_t pfn = 0; pfn < kPages; ++pfn)
        if (!rewritten.count(pfn) && xd::mfn_of(new_domid, pfn) != xd::pv::kNone &&
            std::memcmp(now.data() + pfn * kPageSize, committed.data() + pfn * kPageSize, kPageSize) != 0)
            ++differing;
    CHECK(differing == 0);
    const auto p2m = xd::p2m(new_domid);
    for (std::uint64_t pfn = 0; pfn < kPages; ++pfn)
        CHECK(p2m[pfn] == xd::mfn_of(new_domid, pfn));
    CHECK(xd::mfn_of(new_domid, 300) == xd::pv::kNone); // given back before the committed epoch
    CHECK(xd::mfn_of(new_domid, 301) == xd::pv::kNone);
    CHECK(xd::mfn_of(new_domid, 2000) != xd::pv::kNone); // taken
    const auto *old_info = committed.data() + start_info * kPageSize;
    const auto *new_info = now.data() + start_info * kPageSize;
    const auto store = offsetof(start_info_t, store_mfn), console = offsetof(start_info_t, console);
    CHECK(start_info_field(new_info, store) == xd::mfn_of(new_domid, start_info_field(old_info, store)));
    CHECK(start_info_field(new_info, console) == xd::mfn_of(new_domid, start_info_field(old_info, console)));
    check_with_xen_verifier(xd::last_restore_stream(), "64bit guest, 4 levels of pagetables");
    // And it runs on from there.
    const auto resumed_at = xd::counter(new_domid);
    xd::start_workload(new_domid, 50us);
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (xd::counter(new_domid) == resumed_at && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(1ms);
    CHECK(xd::counter(new_domid) > resumed_at);
}

TEST_CASE("Xen PV: a PV domain that cannot be protected is refused with the reason", "[xen][pv]")
{
    Pair pair(16, "pv");
    const auto domid = make_pv_domain();
    SECTION("checkpoint = pause: Xen's restore needs the guest's suspend record")
    {
        CHECK_THROWS_WITH(XenGuest(pair.xen, domid, CheckpointWay::pause),
                          Catch::Contains("needs checkpoint = suspend") && Catch::Contains("start info"));
    }
    SECTION("a 32-bit PV guest")
    {
        auto spec = pv_spec("old32");
        spec.pv_width = 4;
        const auto old = xd::create_domain(spec);
        CHECK_THROWS_WITH(XenGuest(pair.xen, old, CheckpointWay::suspend),
                          Catch::Contains("32-bit PV guest") && Catch::Contains("64-bit PV guests"));
    }
    SECTION("a guest that publishes no p2m, or one its page tables do not map: refused when protection starts")
    {
        const std::string form = GENERATE("none", "unmapped");
        auto spec = pv_spec("big");
        spec.pv_p2m = form;
        const auto big = xd::create_domain(spec);
        XenGuest guest(pair.xen, big, CheckpointWay::suspend);
        Replicator replicator(guest, pair.connect(), pair.settings(), std::ref(pair.log));
        replicator.start();
        CHECK_THAT(wait_for_error(replicator),
                   Catch::Contains(form == "none" ? "publishes no p2m in its shared info page" : "is not mapped"));
        replicator.stop("test over");
        CHECK_FALSE(xd::log_dirty_enabled(big));
    }
}

TEST_CASE("Xen PV: a page table that maps a frame not the guest's stops protection at the checkpoint, naming it; "
          "log-dirty is off and the guest runs on",
          "[xen][pv]")
{
    Pair pair(16, "pv");
    const auto domid = make_pv_domain();
    PvProtection protection(pair, domid);
    auto &replicator = protection.replicator;
    xd::map_foreign_frame(domid);
    const auto error = wait_for_error(replicator);
    INFO(pair.log.all());
    CHECK_THAT(error, Catch::Contains("page table at frame") && Catch::Contains("L1[100] maps machine frame 30583") &&
                          Catch::Contains("not one of the domain's frames"));
    CHECK_FALSE(xd::log_dirty_enabled(domid));
    CHECK_FALSE(xd::suspended(domid));
    const auto at = xd::counter(domid);
    std::this_thread::sleep_for(20ms);
    CHECK(xd::counter(domid) > at);
    replicator.stop("test over");
}

TEST_CASE("Xen PV: errors from the PV calls (EPERM, ESRCH, ENOMEM) stop protection with the call named, and leave "
          "log-dirty off",
          "[xen][pv]")
{
    const std::pair<int, const char *> errors[] = {
        {EPERM, "Operation not permitted"}, {ESRCH, "No such process"}, {ENOMEM, "Cannot allocate memory"}};
    for (const std::string call : {"XEN_DOMCTL_getpageframeinfo3", "xc_vcpu_getcontext", "XEN_DOMCTL_getvcpuextstate",
                                   "XEN_DOMCTL_get_vcpu_msrs", "XEN_DOMCTL_get_ext_vcpucontext", "xc_vcpu_getinfo"}) {
        for (const auto &[error, text] : errors) {
            INFO(call << " failing with " << text);
            Pair pair(16, "pv");
            const auto domid = make_pv_domain();
            PvProtection protection(pair, domid);
            auto &replicator = protection.replicator;
            xd::fail_call(call, error);
            const auto said = wait_for_error(replicator);
            CHECK_THAT(said, Catch::Contains(call) && Catch::Contains("on domain " + std::to_string(domid)) &&
                                 Catch::Contains(text));
            CHECK_FALSE(xd::log_dirty_enabled(domid));
            CHECK_FALSE(xd::suspended(domid));
            replicator.stop("test over");
        }
    }
}

TEST_CASE("Xen PV: a shared info page the guest fills with nonsense stops protection with the reason, before "
          "anything is mapped for it",
          "[xen][pv]")
{
    struct Edit {
        const char *what;
        std::function<void(shared_info_x86_64 &)> edit;
        const char *said;
    };
    const Edit edits[] = {
        {"max_pfn far past its memory", [](shared_info_x86_64 &s) { s.arch.max_pfn = 1ULL << 62; },
         "past the 4096 it had when protection started"},
        {"a p2m list in Xen's own addresses", [](shared_info_x86_64 &s) { s.arch.p2m_vaddr = 0xffff800000001000ULL; },
         "are not a range a guest can map"},
        {"p2m_cr3 naming a frame not its own", [](shared_info_x86_64 &s) { s.arch.p2m_cr3 = 0x7777ULL << 12; },
         "cannot be mapped"},
    };
    for (const auto &e : edits) {
        INFO(e.what);
        Pair pair(16, "pv");
        const auto domid = make_pv_domain();
        PvProtection protection(pair, domid);
        xd::edit_shared_info(domid, e.edit);
        CHECK_THAT(wait_for_error(protection.replicator), Catch::Contains(e.said));
        CHECK_FALSE(xd::log_dirty_enabled(domid));
        CHECK_FALSE(xd::suspended(domid));
        protection.replicator.stop("test over");
    }
}

TEST_CASE("Xen PV: after a stream to the backup is lost, the next one starts again from every page table",
          "[xen][pv]")
{
    Pair pair(16, "pv");
    const auto domid = make_pv_domain();
    understudy::testing::BitFlipProxy proxy(pair.server->port());
    auto connect = [&proxy]() -> std::unique_ptr<Link> {
        Endpoint to{"127.0.0.1", proxy.port()};
        auto fd = connect_tcp(to, 2s);
        tune_stream_socket(fd.get(), 2s);
        return std::make_unique<SocketLink>(std::move(fd), to.to_string(), 2s);
    };
    XenGuest guest(pair.xen, domid, CheckpointWay::suspend);
    Replicator replicator(guest, connect, pair.settings(), std::ref(pair.log));
    replicator.start();
    REQUIRE(replicator.wait_protected(20s));
    // A flipped bit: the backup refuses that epoch and the stream ends; the
    // primary starts a new one with a full copy, to a new standby.
    proxy.arm(4096);
    const auto until = std::chrono::steady_clock::now() + 30s;
    while ((replicator.status().resyncs == 0 || !replicator.wait_protected(10ms)) &&
           std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(10ms);
    INFO(pair.log.all());
    REQUIRE(proxy.flipped());
    REQUIRE(replicator.status().resyncs >= 1);
    replicator.freeze(10s);
    require_standby_equals_pv_domain(pair.registry, domid);
    replicator.stop("test over");
}

TEST_CASE("Xen PV: a PV domain that vanishes while its vCPUs are saved ends protection cleanly", "[xen][pv]")
{
    Pair pair(16, "pv");
    const auto domid = make_pv_domain();
    PvProtection protection(pair, domid);
    xd::vanish_on_call("xc_vcpu_getcontext", domid, 1);
    const auto said = wait_for_error(protection.replicator);
    INFO(pair.log.all());
    CHECK_THAT(said, Catch::Contains("on domain " + std::to_string(domid)) &&
                         (Catch::Contains("No such process") || Catch::Contains("no longer exists")));
    CHECK_FALSE(xd::exists(domid));
    protection.replicator.stop("test over");
}

TEST_CASE("Xen PV: a standby refuses PV state that Xen's restore would refuse, before it is committed", "[xen][pv]")
{
    XenStandby standby(
        web_config(16, "pv"), kPages * kPageSize, [] { return std::shared_ptr<XenSession>(); }, nullptr);
    proto::CpuState cpu;
    auto *x = cpu.mutable_xen();
    x->set_domain_type("pv");
    x->set_vcpus(1);
    auto *pv = x->mutable_pv();
    pv->set_guest_width(8);
    pv->set_max_pfn(kPages - 1);
    for (std::uint64_t i = 0; i < kPages / 512; ++i)
        pv->add_p2m_frames(4000 + i);
    pv->set_shared_info(std::string(4096, '\0'));
    vcpu_guest_context_x86_64_t c{};
    c.user_regs.rdx = 50; // the start info page
    c.ctrlreg[3] = 100 << 12;
    c.gdt_ents = 16;
    c.gdt_frames[0] = 51;
    auto basic = [](const vcpu_guest_context_x86_64_t &context) {
        return std::string(reinterpret_cast<const char *>(&context), sizeof context);
    };
    auto *v = pv->add_vcpus();
    v->set_basic(basic(c));
    pv->add_page_tables(100 | std::uint64_t{0xc} << 60); // a pinned L4
    pv->add_page_tables(101 | std::uint64_t{0x1} << 60); // an L1
    pv->set_page_tables_complete(true);
    CHECK(standby.cpu_problem(cpu) == "");

    auto refused = [&](auto change, const std::string &why) {
        proto::CpuState bad = cpu;
        change(*bad.mutable_xen()->mutable_pv());
        CHECK_THAT(standby.cpu_problem(bad), Catch::Contains(why));
    };
    refused([](proto::XenPvState &p) { p.set_guest_width(4); }, "32 bits wide");
    refused([](proto::XenPvState &p) { p.set_max_pfn(kPages); }, "past the guest's");
    refused([](proto::XenPvState &p) { p.add_p2m_frames(1); }, "p2m frames for a p2m up to frame");
    refused([](proto::XenPvState &p) { p.set_p2m_frames(0, kPages + 5); }, "outside the guest");
    refused([](proto::XenPvState &p) { p.set_shared_info("short"); }, "shared info page of 5 bytes");
    refused([](proto::XenPvState &p) { p.clear_vcpus(); }, "no state for vCPU 0");
    refused([](proto::XenPvState &p) { p.mutable_vcpus(0)->set_basic("x"); }, "basic context of 1 bytes");
    refused([](proto::XenPvState &p) { p.add_vcpus()->set_id(3); }, "while its xl.cfg here gives it 1");
    refused([](proto::XenPvState &p) { p.mutable_vcpus(0)->set_msrs("123"); }, "MSR list of 3 bytes");
    refused([](proto::XenPvState &p) { p.set_page_tables(0, 100 | std::uint64_t{0xe} << 60); }, "not a page table's");
    refused([](proto::XenPvState &p) { p.set_page_tables(0, kPages + 7); }, "outside the guest");
    auto context = [&](auto change, const std::string &why) {
        auto bad = c;
        change(bad);
        refused([&](proto::XenPvState &p) { p.mutable_vcpus(0)->set_basic(basic(bad)); }, why);
    };
    context([](vcpu_guest_context_x86_64_t &b) { b.user_regs.rdx = kPages; },
            "start info page (frame 4096) is outside");
    context([](vcpu_guest_context_x86_64_t &b) { b.user_regs.rdx = 101; },
            "start info page (frame 101) is a page table");
    context([](vcpu_guest_context_x86_64_t &b) { b.gdt_frames[0] = 100; }, "GDT frame 0 (frame 100) is a page table");
    context([](vcpu_guest_context_x86_64_t &b) { b.gdt_ents = 9000; }, "GDT has 9000 entries");
    context([](vcpu_guest_context_x86_64_t &b) { b.ctrlreg[3] = 101 << 12; }, "cr3 (frame 101) is not an L4");
    context([](vcpu_guest_context_x86_64_t &b) { b.ctrlreg[1] = 101 << 12 | 1; }, "user cr3 (frame 101) is not an L4");
    refused([](proto::XenPvState &p) { p.set_p2m_frames(0, 101); }, "p2m frame at 101 that is a page table");
    refused([](proto::XenPvState &p) { p.set_page_tables(1, 101); }, "page type 0 for frame 101");
    proto::CpuState no_pv = cpu;
    no_pv.mutable_xen()->clear_pv();
    CHECK_THAT(standby.cpu_problem(no_pv), Catch::Contains("without its PV part"));

    // Later checkpoints carry only the page tables that changed, checked
    // against those committed.
    proto::CpuState changes = cpu;
    auto *delta = changes.mutable_xen()->mutable_pv();
    delta->set_page_tables_complete(false);
    delta->clear_page_tables();
    delta->add_page_tables(101);                          // no longer a page table
    delta->add_page_tables(102 | std::uint64_t{0x1} << 60); // a new L1
    CHECK_THAT(standby.cpu_problem(changes), Catch::Contains("no complete list was committed"));
    standby.load_cpu(cpu);
    CHECK(standby.page_tables() == PageTableMap{{100, 0xcu << 28}, {101, 0x1u << 28}});
    CHECK(standby.cpu_problem(changes) == "");
    standby.load_cpu(changes);
    CHECK(standby.page_tables() == PageTableMap{{100, 0xcu << 28}, {102, 0x1u << 28}});
    // cr3 must still be an L4 once the changes are applied.
    proto::CpuState no_l4 = changes;
    no_l4.mutable_xen()->mutable_pv()->add_page_tables(100);
    CHECK_THAT(standby.cpu_problem(no_l4), Catch::Contains("cr3 (frame 100) is not an L4"));
    // And the start info page may be one that stopped being a page table.
    auto start_info = c;
    start_info.user_regs.rdx = 101;
    proto::CpuState moved = changes;
    moved.mutable_xen()->mutable_pv()->clear_page_tables();
    moved.mutable_xen()->mutable_pv()->mutable_vcpus(0)->set_basic(basic(start_info));
    CHECK(standby.cpu_problem(moved) == "");
}

TEST_CASE("Xen PV: a page table is normalised as Xen's save does it: machine frames to pfns, Xen's L4 slots "
          "cleared, superpages and frames not the guest's refused",
          "[xen][pv]")
{
    PvP2m p2m;
    p2m.max_pfn = 3;
    p2m.mfns = {0x900, 0x901, kNoFrame, 0x7ff};
    for (std::uint64_t pfn = 0; pfn < p2m.mfns.size(); ++pfn)
        if (p2m.mfns[pfn] != kNoFrame)
            p2m.pfn_of_mfn[p2m.mfns[pfn]] = pfn;
    std::vector<std::uint64_t> table(512, 0);
    auto bytes = [&] { return std::span<std::uint8_t>(reinterpret_cast<std::uint8_t *>(table.data()), 4096); };
    table[0] = 0x7ffULL << 12 | 0x8000000000000067ULL; // NX and flags kept
    table[1] = 0x901ULL << 12 | 0x63;
    table[2] = 0x123456ULL << 12;       // not present: left as it is
    table[256] = 0x42ULL << 12 | 0x63;  // one of Xen's slots
    table[272] = 0x900ULL << 12 | 0x67; // the guest's direct map, right after them
    REQUIRE(normalise_page_table(bytes(), 4, p2m) == "");
    CHECK(table[0] == (3ULL << 12 | 0x8000000000000067ULL));
    CHECK(table[1] == (1ULL << 12 | 0x63));
    CHECK(table[2] == 0x123456ULL << 12);
    CHECK(table[256] == 0);
    CHECK(table[272] == (0ULL << 12 | 0x67));
    CHECK(page_table_level(XEN_DOMCTL_PFINFO_L4TAB | XEN_DOMCTL_PFINFO_LPINTAB) == 4);
    CHECK(page_table_level(XEN_DOMCTL_PFINFO_NOTAB) == 0);
    CHECK(page_table_level(XEN_DOMCTL_PFINFO_XALLOC) == 0);

    table.assign(512, 0);
    table[256] = 0x42ULL << 12 | 0x63; // in an L1 that is an ordinary entry: a frame not the guest's
    CHECK_THAT(normalise_page_table(bytes(), 1, p2m),
               Catch::Contains("L1[256] maps machine frame 66") && Catch::Contains("not one of the domain's frames"));
    table.assign(512, 0);
    table[5] = 0x900ULL << 12 | 0x80 | 0x63; // a 2 MiB page
    CHECK_THAT(normalise_page_table(bytes(), 2, p2m), Catch::Contains("L2[5] maps a superpage"));
}
