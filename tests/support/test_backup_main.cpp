// TEST HELPER: a backup host in a process of its own, so that a test can
// kill it with SIGKILL at any moment: a real BackupServer (insecure, on
// 127.0.0.1:PORT) keeping StandbyImage copies with their replica disks in
// DIR, as understudyd's backup does. It prints "ready PORT" once it listens,
// then answers commands on stdin, one per line:
//   digest GUEST   ->  "EPOCH MEMORY-SHA256 DISK-SHA256" of the committed copy, or "none"
//   quit
#include <unistd.h>

#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

#include "checkpoint/backup_server.h"
#include "checkpoint/standby_image.h"
#include "checkpoint/stream/sha256.h"

using namespace understudy;

namespace {

std::string hex(const Sha256Digest &d)
{
    std::ostringstream out;
    for (auto b : d)
        out << std::hex << std::setw(2) << std::setfill('0') << static_cast<unsigned>(b);
    return out.str();
}

} // namespace

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::cerr << "usage: test_backup PORT DIR\n";
        return 2;
    }
    const auto port = static_cast<std::uint16_t>(std::stoul(argv[1]));
    const std::filesystem::path dir = argv[2];
    StandbyRegistry registry;
    BackupSettings settings;
    settings.listen = {"127.0.0.1", port};
    BackupServer server(
        settings, registry,
        [&](const proto::Hello &hello, std::string *) -> std::unique_ptr<StandbyGuest> {
            return std::make_unique<StandbyImage>(hello.guest_id(), hello.memory_size(), hello.disk_bytes(),
                                                  dir / (hello.guest_id() + ".replica.img"));
        },
        nullptr);
    server.start();
    std::cout << "ready " << server.port() << std::endl;
    for (std::string line; std::getline(std::cin, line);) {
        std::istringstream words(line);
        std::string command, guest;
        words >> command >> guest;
        if (command == "quit")
            break;
        if (command != "digest") {
            std::cout << "unknown command" << std::endl;
            continue;
        }
        const auto status = registry.status(guest);
        bool found = false;
        registry.inspect(guest, [&](const StandbyGuest &standby) {
            const auto &image = dynamic_cast<const StandbyImage &>(standby);
            Sha256 memory;
            memory.update(image.memory());
            Sha256 disk;
            std::vector<std::uint8_t> bytes(image.disk_bytes());
            if (!bytes.empty())
                image.read_disk(0, bytes);
            disk.update(bytes);
            std::cout << (status ? status->epoch : 0) << ' ' << hex(memory.finish()) << ' ' << hex(disk.finish())
                      << std::endl;
            found = true;
        });
        if (!found)
            std::cout << "none" << std::endl;
    }
    server.stop();
    return 0;
}
