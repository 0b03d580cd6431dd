#include "checkpoint/kvm/vcpu_runner.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include <cstring>
#include <sstream>

#include "checkpoint/kvm/kvm_error.h"

namespace understudy::kvm {

namespace {

constexpr int kKickSignal = SIGUSR1;
thread_local kvm_run *current_run = nullptr;

// Makes the next (or current) KVM_RUN of this thread return at once.
void on_kick(int)
{
    if (current_run)
        current_run->immediate_exit = 1;
}

void install_kick_handler()
{
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_handler = on_kick;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; // no SA_RESTART: blocking calls return EINTR
        sigaction(kKickSignal, &sa, nullptr);
    });
}

std::string hex(std::uint64_t v)
{
    std::ostringstream s;
    s << "0x" << std::hex << v;
    return s.str();
}

} // namespace

VcpuRunner::VcpuRunner(int vcpu_fd, kvm_run *run, std::string name, PortWriteHandler handler)
    : vcpu_fd_(vcpu_fd), run_(run), name_(std::move(name)), handler_(std::move(handler)),
      wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
    if (!wake_)
        throw system_error("vCPU of " + name_ + ": eventfd");
    install_kick_handler();
}

VcpuRunner::~VcpuRunner()
{
    stop();
}

void VcpuRunner::start(bool paused)
{
    std::lock_guard lock(mutex_);
    if (state_ != State::created)
        return;
    pause_requested_ = paused;
    state_ = paused ? State::paused : State::running;
    thread_ = std::thread([this] { thread_main(); });
}

void VcpuRunner::kick()
{
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(wake_.get(), &one, sizeof(one));
    if (thread_.joinable())
        pthread_kill(thread_.native_handle(), kKickSignal);
}

void VcpuRunner::pause()
{
    std::unique_lock lock(mutex_);
    if (state_ != State::running)
        return;
    pause_requested_ = true;
    // The kick can land just before KVM_RUN and be consumed by an exit that
    // was already under way, so repeat it until the thread answers.
    while (state_ == State::running) {
        kick();
        changed_.wait_for(lock, std::chrono::milliseconds(5));
    }
}

void VcpuRunner::resume()
{
    std::unique_lock lock(mutex_);
    if (state_ != State::paused)
        return;
    pause_requested_ = false;
    changed_.notify_all();
    changed_.wait(lock, [&] { return state_ != State::paused; });
}

void VcpuRunner::stop()
{
    {
        std::unique_lock lock(mutex_);
        if (state_ == State::created) {
            state_ = State::stopped;
            stop_ = VmStop{VmStop::Kind::stopped, 0, "stopped before it ran"};
            return;
        }
        stop_requested_ = true;
        changed_.notify_all();
        while (state_ != State::stopped) {
            kick();
            changed_.wait_for(lock, std::chrono::milliseconds(5));
        }
    }
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
        thread_.join();
}

bool VcpuRunner::paused() const
{
    std::lock_guard lock(mutex_);
    return state_ == State::paused;
}

std::optional<VmStop> VcpuRunner::stopped() const
{
    std::lock_guard lock(mutex_);
    return stop_;
}

std::optional<VmStop> VcpuRunner::wait_for(std::chrono::milliseconds timeout) const
{
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return state_ == State::stopped; });
    return stop_;
}

void VcpuRunner::finish(VmStop reason)
{
    std::lock_guard lock(mutex_);
    state_ = State::stopped;
    stop_ = std::move(reason);
    changed_.notify_all();
}

void VcpuRunner::complete_pending_io()
{
    // KVM finishes an I/O exit only on the next KVM_RUN; with immediate_exit
    // set it does that and returns without running guest code.
    if (!io_pending_)
        return;
    run_->immediate_exit = 1;
    if (ioctl(vcpu_fd_, KVM_RUN, 0) < 0 && errno != EINTR)
        throw system_error("vCPU of " + name_ + ": KVM_RUN to complete I/O before pause");
    run_->immediate_exit = 0;
    io_pending_ = false;
}

void VcpuRunner::thread_main()
{
    current_run = run_;
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, kKickSignal);
    pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
    try {
        for (;;) {
            // Cleared before the flags are read: a kick after this point
            // either is seen below or makes KVM_RUN return at once.
            run_->immediate_exit = 0;
            {
                std::unique_lock lock(mutex_);
                if (stop_requested_)
                    break;
                if (pause_requested_) {
                    lock.unlock();
                    complete_pending_io();
                    lock.lock();
                    state_ = State::paused;
                    changed_.notify_all();
                    changed_.wait(lock, [&] { return !pause_requested_ || stop_requested_; });
                    if (stop_requested_)
                        break;
                    state_ = State::running;
                    changed_.notify_all();
                    continue;
                }
                // Started paused and resumed before this thread first looked:
                // it runs now, and resume() waits to hear so.
                if (state_ == State::paused) {
                    state_ = State::running;
                    changed_.notify_all();
                }
            }
            int rc = ioctl(vcpu_fd_, KVM_RUN, 0);
            io_pending_ = false;
            if (rc < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                throw system_error("vCPU of " + name_ + ": KVM_RUN");
            }
            handle_exit();
        }
        complete_pending_io();
        finish({VmStop::Kind::stopped, 0, "stopped by the VMM"});
    } catch (const GuestHalt &h) {
        finish({VmStop::Kind::halted, h.status, "guest halted with status " + std::to_string(h.status)});
    } catch (const GuestFault &e) {
        finish({VmStop::Kind::guest_error, 0, "guest " + name_ + " stopped: " + e.what()});
    } catch (const std::exception &e) {
        finish({VmStop::Kind::host_error, 0, "guest " + name_ + " stopped by a host error: " + e.what()});
    }
    current_run = nullptr;
}

void VcpuRunner::handle_exit()
{
    switch (run_->exit_reason) {
    case KVM_EXIT_IO: {
        io_pending_ = true;
        const auto &io = run_->io;
        if (io.direction != KVM_EXIT_IO_OUT || io.size != 4 || io.count != 1)
            throw GuestFault("port I/O " + hex(io.port) + " (" + (io.direction == KVM_EXIT_IO_OUT ? "out" : "in") +
                             ", " + std::to_string(io.size) + " bytes x " + std::to_string(io.count) +
                             ") is not a hypercall");
        std::uint32_t value;
        std::memcpy(&value, reinterpret_cast<const std::uint8_t *>(run_) + io.data_offset, sizeof(value));
        handler_(io.port, value);
        return;
    }
    case KVM_EXIT_INTR:
        return;
    case KVM_EXIT_HLT:
        throw GuestFault("the guest executed HLT with no interrupt that could wake it");
    case KVM_EXIT_SHUTDOWN: {
        kvm_regs regs{};
        ioctl(vcpu_fd_, KVM_GET_REGS, &regs);
        throw GuestFault("the guest CPU shut down (triple fault) near rip " + hex(regs.rip));
    }
    case KVM_EXIT_MMIO:
        throw GuestFault("access to guest-physical " + hex(run_->mmio.phys_addr) + ", which is not RAM");
    case KVM_EXIT_FAIL_ENTRY:
        throw KvmError("KVM could not enter the guest (hardware reason " +
                       hex(run_->fail_entry.hardware_entry_failure_reason) + ")");
    case KVM_EXIT_INTERNAL_ERROR:
        throw GuestFault("KVM internal error, suberror " + std::to_string(run_->internal.suberror) +
                         " (an instruction the host cannot emulate?)");
    default:
        throw GuestFault("unexpected KVM exit reason " + std::to_string(run_->exit_reason));
    }
}

} // namespace understudy::kvm
