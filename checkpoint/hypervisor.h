// A hypervisor on this host that can run protected guests: the engine asks
// it whether it is usable and which backend it is (ARCHITECTURE.md §1).
// How a guest is obtained differs by backend (the kvm backend boots one from
// an image, Xen opens an existing domain), so that lives in each backend.
#pragma once

#include <string>
#include <string_view>

namespace understudy {

class Hypervisor {
  public:
    virtual ~Hypervisor() = default;
    [[nodiscard]] virtual std::string_view backend() const = 0;
    // True if guests can be run here; otherwise `why` says what is missing.
    [[nodiscard]] virtual bool available(std::string *why) const = 0;
};

} // namespace understudy
