#include "checkpoint/backup_server.h"

#include "checkpoint/epoch_receiver.h"
#include "checkpoint/handshake.h"
#include "checkpoint/stream/socket_link.h"

namespace understudy {

BackupServer::BackupServer(BackupSettings settings, StandbyRegistry &registry, StandbyFactory factory, Log log)
    : settings_(std::move(settings)), registry_(registry), factory_(std::move(factory)), log_(std::move(log)),
      listener_(settings_.listen)
{
    if (!log_)
        log_ = [](const std::string &) {};
    if (settings_.tls)
        tls_ = std::make_unique<TlsContext>(*settings_.tls, TlsContext::Role::server);
}

BackupServer::~BackupServer()
{
    stop();
}

void BackupServer::start()
{
    acceptor_ = std::thread([this] { accept_loop(); });
}

void BackupServer::stop()
{
    if (stopping_.exchange(true))
        return;
    if (acceptor_.joinable())
        acceptor_.join();
    registry_.cut_all();
    std::lock_guard lock(sessions_mutex_);
    for (auto &t : sessions_)
        t.join();
    sessions_.clear();
}

void BackupServer::accept_loop()
{
    while (!stopping_) {
        std::string peer;
        UniqueFd fd = listener_.accept(std::chrono::milliseconds(200), &peer);
        if (!fd)
            continue;
        std::lock_guard lock(sessions_mutex_);
        sessions_.emplace_back([this, fd = std::move(fd), peer]() mutable {
            try {
                tune_stream_socket(fd.get(), settings_.idle_timeout);
                std::unique_ptr<Link> link;
                if (tls_)
                    link = tls_->handshake(std::move(fd), peer, settings_.handshake_timeout);
                else
                    link = std::make_unique<SocketLink>(std::move(fd), peer, settings_.idle_timeout);
                serve(*link);
            } catch (const std::exception &e) {
                log_("refused stream from " + peer + ": " + e.what());
            }
        });
    }
}

void BackupServer::serve(Link &link)
{
    RecordReader reader(link, settings_.handshake_timeout);
    RecordWriter writer(link);
    proto::Hello hello;
    try {
        hello = read_hello(reader, settings_.max_memory_bytes, settings_.max_disk_bytes);
    } catch (const StreamError &e) {
        log_(std::string("refused stream: ") + e.what());
        try {
            refuse_hello(writer, e.what());
        } catch (const LinkError &) {
        }
        return;
    }
    const std::string guest = hello.guest_id();
    std::string refusal;
    std::unique_ptr<StandbyGuest> fresh;
    try {
        fresh = factory_(hello, &refusal);
    } catch (const std::exception &e) {
        refusal = e.what();
    }
    if (!fresh) {
        log_("refused stream from " + link.peer() + " for guest " + guest + ": " + refusal);
        refuse_hello(writer, refusal);
        return;
    }
    const auto ticket = registry_.begin_stream(guest, link);
    std::string error;
    bool closed_by_peer = false;
    try {
        const auto codec = accept_hello(writer, hello);
        log_("guest " + guest + ": receiving from " + link.peer() + " (compression " + compression_name(codec) + ")");
        reader.set_idle(settings_.idle_timeout);
        EpochReceiver receiver(*fresh, codec);
        ReceivedEpoch epoch;
        Epoch expected{1};
        bool installed = false;
        std::unique_ptr<EpochReceiver> live_receiver;
        for (;;) {
            std::string goodbye;
            EpochReceiver &r = installed ? *live_receiver : receiver;
            if (r.receive(reader, expected, epoch, &goodbye) == EpochReceiver::Outcome::goodbye) {
                log_("guest " + guest + ": primary " + link.peer() + " ended the stream: " + goodbye);
                break;
            }
            bool owned = true;
            if (!installed) {
                commit_epoch(epoch, *fresh);
                if (epoch.kind == proto::EpochBegin::CHECKPOINT) {
                    StandbyGuest *committed = fresh.get();
                    owned = registry_.install(guest, ticket, std::move(fresh));
                    if (owned) {
                        installed = true;
                        live_receiver = std::make_unique<EpochReceiver>(*committed, codec);
                        log_("guest " + guest + ": standby consistent at epoch " + std::to_string(expected.value));
                    }
                }
                if (owned)
                    registry_.with_standby(guest, ticket, [&](StandbyGuest *, StandbyStatus &s) {
                        s.bytes_received += epoch.wire_bytes;
                        if (installed) {
                            s.epoch = expected.value;
                            ++s.checkpoints;
                        }
                    });
            } else {
                owned = registry_.with_standby(guest, ticket, [&](StandbyGuest *committed, StandbyStatus &s) {
                    commit_epoch(epoch, *committed);
                    s.bytes_received += epoch.wire_bytes;
                    s.epoch = expected.value;
                    if (epoch.kind == proto::EpochBegin::CHECKPOINT)
                        ++s.checkpoints;
                });
            }
            if (!owned) {
                log_("guest " + guest + ": stream from " + link.peer() + " was superseded or the standby activated");
                break;
            }
            proto::Ack ack;
            ack.set_epoch(expected.value);
            writer.write(RecordType::ack, ack);
            writer.flush();
            expected = expected.next();
        }
    } catch (const StreamError &e) {
        error = e.what();
        registry_.record_refusal(guest, error);
        std::uint64_t at = 0;
        for (const auto &s : registry_.status())
            if (s.guest == guest)
                at = s.consistent ? s.epoch : 0;
        log_("guest " + guest + ": refused epoch: " + error + "; standby stays at epoch " + std::to_string(at));
        try {
            proto::Goodbye bye;
            bye.set_reason(error);
            writer.write(RecordType::goodbye, bye);
            writer.flush();
        } catch (const LinkError &) {
        }
    } catch (const LinkClosed &e) {
        error = e.what();
        closed_by_peer = true;
        log_("guest " + guest + ": stream ended without a goodbye: " + error);
    } catch (const LinkError &e) {
        error = e.what();
        log_("guest " + guest + ": stream ended: " + error);
    }
    registry_.end_stream(guest, ticket, error, closed_by_peer);
}

} // namespace understudy
