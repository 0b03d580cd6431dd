// Serves GET /metrics (Prometheus text) over HTTP on a local port, with
// Boost.Beast. Anything else gets 404; a slow client is cut after 5 s.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "checkpoint/stream/tcp.h"

namespace understudy::daemon {

class MetricsServer {
  public:
    using Render = std::function<std::string()>;
    MetricsServer(const Endpoint &at, Render render);
    ~MetricsServer();
    void start();
    void stop();
    [[nodiscard]] std::uint16_t port() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::thread thread_;
};

} // namespace understudy::daemon
