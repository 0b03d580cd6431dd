// What understudy needs to know about a DRBD resource backing a guest's disk
// (ARCHITECTURE.md §7), read from DRBD's own tools: `drbdsetup status --json`,
// `drbdsetup events2` (followed line by line), and /proc/drbd of DRBD 8.3
// (the Remus-era builds with protocol D). Parsing only; running the tools
// is drbd_probe's job. Every parser takes hostile input: unknown keys and
// lines are skipped, malformed ones are reported, nothing is trusted.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace understudy::drbd {

class DrbdParseError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct PeerDevice {
    int volume = 0;
    std::string replication;    // "Established", "SyncSource", "Off", ...
    std::string peer_disk;      // "UpToDate", "Inconsistent", "DUnknown", ...
    std::optional<double> done; // resync progress in percent, if syncing
    std::uint64_t out_of_sync_kib = 0;
};

struct Connection {
    int peer_node_id = -1;
    std::string name;           // the peer's host name (conn-name)
    std::string state;          // "Connected", "StandAlone", "Connecting", ...
    std::string peer_role;      // "Primary", "Secondary", "Unknown"
    std::map<int, PeerDevice> peer_devices; // by volume
};

struct Device {
    int volume = 0;
    int minor = -1;
    std::string disk;           // "UpToDate", "Diskless", "Outdated", ...
    std::optional<bool> quorum;
};

struct Resource {
    std::string name;
    std::string role;           // "Primary", "Secondary", "Unknown"
    std::optional<bool> suspended;
    std::map<int, Device> devices;             // by volume
    std::map<int, Connection> connections;     // by peer node id
    std::string last_helper;    // the last handler DRBD called (e.g. "split-brain"), with its status
};

// `drbdsetup status --json` (DRBD 9). drbd-utils prints `nan` for unknown
// numbers, which no JSON parser accepts: bare nan/inf tokens outside strings
// are read as null. Throws DrbdParseError on anything that is not the
// expected array of resources.
[[nodiscard]] std::vector<Resource> parse_status_json(const std::string &text);

// Follows `drbdsetup events2 [--now] [--statistics] [--timestamps] [--diff]`.
class Events2Tracker {
  public:
    // One line: "[TIMESTAMP ]exists|create|change|destroy|call|response
    // OBJECT key:value...". Returns false for a line it does not understand
    // (kept in last_error); the state is unchanged then.
    bool apply(const std::string &line);
    // True once "exists -" ended the initial dump.
    [[nodiscard]] bool initial_state_complete() const noexcept { return complete_; }
    [[nodiscard]] const std::map<std::string, Resource> &resources() const noexcept { return resources_; }
    [[nodiscard]] const std::string &last_error() const noexcept { return last_error_; }

  private:
    std::map<std::string, Resource> resources_;
    bool complete_ = false;
    std::string last_error_;
};

// DRBD 8.3's /proc/drbd: version, and per minor the connection state, roles,
// disk states and the replication protocol letter (A, B, C; D is the Remus
// checkpoint protocol).
struct ProcDrbdMinor {
    int minor = -1;
    std::string connection;     // cs:
    std::string role, peer_role;
    std::string disk, peer_disk;
    char protocol = '?';
};
struct ProcDrbd {
    std::string version;        // "8.3.11"
    std::vector<ProcDrbdMinor> minors;
};
[[nodiscard]] ProcDrbd parse_proc_drbd(const std::string &text);

// Whether a resource replicates this host's disk so that a backup can take
// over: connected to at least one peer whose disk is UpToDate. The reason
// says what is wrong otherwise (StandAlone is named as a possible split brain).
struct ReplicationVerdict {
    bool replicated = false;
    bool split_brain_suspected = false;
    std::string reason;
};
[[nodiscard]] ReplicationVerdict judge_replication(const Resource &resource);

} // namespace understudy::drbd
