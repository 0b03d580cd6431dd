// The thread that runs one vCPU: KVM_RUN, exit handling, and pause/resume
// that return only once the vCPU has really left / is about to re-enter
// KVM_RUN. A guest error stops the vCPU for good with a reason; the VMM lives on.
#pragma once

#include <linux/kvm.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint/unique_fd.h"

namespace understudy::kvm {

// Why a VM stopped running.
struct VmStop {
    enum class Kind {
        halted,      // the guest asked to stop (US_HC_HALT), with a status
        guest_error, // the guest did something it may not; message says what
        host_error,  // KVM or the VMM failed; message says what
        stopped,     // the VMM stopped it (shutdown, destroy)
    };
    Kind kind = Kind::stopped;
    std::uint64_t status = 0;
    std::string message;
};

// Thrown by the halt hypercall handler.
struct GuestHalt {
    std::uint64_t status;
};

class VcpuRunner {
  public:
    // Handles one port write of the guest; may block (then it must also
    // watch wake_fd()), and may throw GuestFault, GuestHalt or KvmError.
    using PortWriteHandler = std::function<void(std::uint16_t port, std::uint32_t value)>;

    VcpuRunner(int vcpu_fd, kvm_run *run, std::string name, PortWriteHandler handler);
    ~VcpuRunner();
    VcpuRunner(const VcpuRunner &) = delete;
    VcpuRunner &operator=(const VcpuRunner &) = delete;

    // Starts the thread, running or held paused.
    void start(bool paused);
    // Returns when the vCPU is out of KVM_RUN and its last I/O is complete,
    // so its state can be saved. No-op if already paused or stopped.
    void pause();
    void resume();
    // Stops the vCPU for good and joins the thread.
    void stop();

    [[nodiscard]] bool paused() const;
    [[nodiscard]] std::optional<VmStop> stopped() const;
    // Waits until the VM stops or `timeout` passes.
    std::optional<VmStop> wait_for(std::chrono::milliseconds timeout) const;

    // Readable while the runner wants the vCPU thread back from a blocking
    // hypercall (pause or stop requested).
    [[nodiscard]] int wake_fd() const noexcept { return wake_.get(); }

  private:
    enum class State { created, running, paused, stopped };

    void thread_main();
    void handle_exit();
    void complete_pending_io();
    void finish(VmStop reason);
    void kick();

    int vcpu_fd_;
    kvm_run *run_;
    std::string name_;
    PortWriteHandler handler_;
    UniqueFd wake_;

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    State state_ = State::created;
    bool pause_requested_ = false;
    bool stop_requested_ = false;
    bool io_pending_ = false;
    std::optional<VmStop> stop_;
    std::thread thread_;
};

} // namespace understudy::kvm
