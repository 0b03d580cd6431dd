#include "tests/support/kvm_requirements.h"

#include <unistd.h>

#include "checkpoint/kvm/kvm_vm.h"

namespace understudy::testing {

std::string missing_kvm_requirements()
{
    if (geteuid() != 0)
        return "not root (network namespaces and TAP devices need it)";
    std::string why;
    if (!kvm::KvmVm::available(&why))
        return why;
    if (access("/dev/net/tun", R_OK | W_OK) != 0)
        return "/dev/net/tun is missing";
    if (system("ip -V >/dev/null 2>&1") != 0)
        return "the ip command (iproute2) is missing";
    return {};
}

} // namespace understudy::testing
