#include "tests/support/xen_double/fake_qmp.h"

#include <google/protobuf/util/json_util.h>

#include <cstring>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace understudy::testing::xen_double {

namespace {

bool send_line(int fd, const std::string &json)
{
    const std::string line = json + "\r\n";
    return ::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size());
}

} // namespace

FakeQmp::FakeQmp(std::string path, Handler handler) : path_(std::move(path)), handler_(std::move(handler))
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof addr.sun_path)
        throw std::runtime_error("fake QMP: socket path too long: " + path_);
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    ::unlink(path_.c_str());
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 1) != 0)
        throw std::runtime_error("fake QMP: cannot listen on " + path_ + ": " + std::strerror(errno));
    thread_ = std::thread([this] { serve(); });
}

FakeQmp::~FakeQmp()
{
    stop_ = true;
    if (thread_.joinable())
        thread_.join();
    ::close(listener_);
    ::unlink(path_.c_str());
}

void FakeQmp::serve()
{
    while (!stop_) {
        pollfd p{listener_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0)
            continue;
        const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0)
            continue;
        talk(client);
        ::close(client);
    }
}

void FakeQmp::talk(int client)
{
    if (!send_line(client, R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}})"))
        return;
    bool negotiated = false;
    std::string buffer;
    while (!stop_) {
        auto nl = buffer.find('\n');
        if (nl == std::string::npos) {
            pollfd p{client, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0)
                continue;
            char chunk[4096];
            const auto n = ::recv(client, chunk, sizeof chunk, 0);
            if (n <= 0)
                return; // the client is done
            buffer.append(chunk, static_cast<std::size_t>(n));
            continue;
        }
        const std::string line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        google::protobuf::Struct request;
        if (!google::protobuf::util::JsonStringToMessage(line, &request).ok()) {
            send_line(client, R"({"error": {"class": "GenericError", "desc": "JSON parse error"}})");
            continue;
        }
        const auto &fields = request.fields();
        const auto execute = fields.count("execute") ? fields.at("execute").string_value() : std::string();
        const google::protobuf::Struct arguments =
            fields.count("arguments") ? fields.at("arguments").struct_value() : google::protobuf::Struct();
        std::string reply;
        if (execute == "qmp_capabilities") {
            negotiated = true;
            reply = R"({"return": {}})";
        } else if (!negotiated) {
            reply = R"({"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}})";
        } else {
            send_line(client, R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"})");
            reply = handler_(execute, arguments);
        }
        if (!send_line(client, reply))
            return;
    }
}

} // namespace understudy::testing::xen_double
