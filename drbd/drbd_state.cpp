#include "drbd/drbd_state.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <sstream>

namespace understudy::drbd {

namespace {

namespace pb = google::protobuf;

constexpr std::size_t kMaxInput = 16 << 20; // far more than any real status

bool word_char(char c)
{
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

// Bare nan/inf tokens (what printf("%f") gives drbd-utils) become null.
std::string without_nan(const std::string &text)
{
    std::string out;
    out.reserve(text.size());
    bool in_string = false, escaped = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            out += c;
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
            out += c;
            continue;
        }
        const bool starts_word = i == 0 || !word_char(text[i - 1]);
        std::size_t j = i + (c == '-' ? 1 : 0);
        if (starts_word && j < text.size() && std::isalpha(static_cast<unsigned char>(text[j]))) {
            std::size_t k = j;
            while (k < text.size() && word_char(text[k]))
                ++k;
            std::string word = text.substr(j, k - j);
            for (auto &ch : word)
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            if (word == "nan" || word == "inf" || word == "infinity") {
                out += "null";
                i = k - 1;
                continue;
            }
        }
        out += c;
    }
    return out;
}

const pb::Value *field(const pb::Struct &s, const char *key)
{
    auto it = s.fields().find(key);
    return it == s.fields().end() ? nullptr : &it->second;
}

std::string text_of(const pb::Struct &s, const char *key)
{
    const auto *v = field(s, key);
    return v && v->kind_case() == pb::Value::kStringValue ? v->string_value() : std::string();
}

std::optional<double> number_of(const pb::Struct &s, const char *key)
{
    const auto *v = field(s, key);
    if (v && v->kind_case() == pb::Value::kNumberValue)
        return v->number_value();
    return std::nullopt;
}

std::optional<bool> flag_of(const pb::Struct &s, const char *key)
{
    const auto *v = field(s, key);
    if (v && v->kind_case() == pb::Value::kBoolValue)
        return v->bool_value();
    if (v && v->kind_case() == pb::Value::kStringValue)
        return v->string_value() == "yes" || v->string_value() == "true";
    return std::nullopt;
}

int int_of(const pb::Struct &s, const char *key, int fallback)
{
    const auto n = number_of(s, key);
    return n && *n >= -1 && *n < 1e6 ? static_cast<int>(*n) : fallback;
}

const pb::ListValue *list_of(const pb::Struct &s, const char *key)
{
    const auto *v = field(s, key);
    return v && v->kind_case() == pb::Value::kListValue ? &v->list_value() : nullptr;
}

// "a->b" (events2 --diff) is b; "UNKNOWN" stays as it is.
std::string new_value(const std::string &v)
{
    const auto arrow = v.find("->");
    return arrow == std::string::npos ? v : v.substr(arrow + 2);
}

bool yes(const std::string &v)
{
    return v == "yes" || v == "true";
}

int to_int(const std::string &v, const char *what)
{
    try {
        std::size_t used = 0;
        const int n = std::stoi(v, &used);
        if (used != v.size())
            throw std::invalid_argument(v);
        return n;
    } catch (const std::exception &) {
        throw DrbdParseError(std::string(what) + " '" + v + "' is not a number");
    }
}

} // namespace

std::vector<Resource> parse_status_json(const std::string &text)
{
    if (text.size() > kMaxInput)
        throw DrbdParseError("drbdsetup status --json: " + std::to_string(text.size()) + " bytes is too much");
    pb::ListValue list;
    const auto st = pb::util::JsonStringToMessage(without_nan(text), &list);
    if (!st.ok())
        throw DrbdParseError("drbdsetup status --json: not a JSON array of resources: " + std::string(st.message()));
    std::vector<Resource> out;
    for (const auto &rv : list.values()) {
        if (rv.kind_case() != pb::Value::kStructValue)
            throw DrbdParseError("drbdsetup status --json: an entry is not an object");
        const auto &r = rv.struct_value();
        Resource res;
        res.name = text_of(r, "name");
        if (res.name.empty())
            throw DrbdParseError("drbdsetup status --json: a resource without a name");
        res.role = text_of(r, "role");
        res.suspended = flag_of(r, "suspended");
        if (const auto *devices = list_of(r, "devices"))
            for (const auto &dv : devices->values()) {
                if (dv.kind_case() != pb::Value::kStructValue)
                    continue;
                Device d;
                d.volume = int_of(dv.struct_value(), "volume", 0);
                d.minor = int_of(dv.struct_value(), "minor", -1);
                d.disk = text_of(dv.struct_value(), "disk-state");
                d.quorum = flag_of(dv.struct_value(), "quorum");
                res.devices[d.volume] = d;
            }
        if (const auto *connections = list_of(r, "connections"))
            for (const auto &cv : connections->values()) {
                if (cv.kind_case() != pb::Value::kStructValue)
                    continue;
                const auto &c = cv.struct_value();
                Connection conn;
                conn.peer_node_id = int_of(c, "peer-node-id", -1);
                conn.name = text_of(c, "name");
                conn.state = text_of(c, "connection-state");
                conn.peer_role = text_of(c, "peer-role");
                if (const auto *pds = list_of(c, "peer_devices"))
                    for (const auto &pv : pds->values()) {
                        if (pv.kind_case() != pb::Value::kStructValue)
                            continue;
                        const auto &p = pv.struct_value();
                        PeerDevice pd;
                        pd.volume = int_of(p, "volume", 0);
                        pd.replication = text_of(p, "replication-state");
                        pd.peer_disk = text_of(p, "peer-disk-state");
                        pd.out_of_sync_kib = static_cast<std::uint64_t>(number_of(p, "out-of-sync").value_or(0));
                        if (flag_of(p, "has-sync-details").value_or(false))
                            pd.done = number_of(p, "percent-resync-done");
                        conn.peer_devices[pd.volume] = pd;
                    }
                res.connections[conn.peer_node_id] = conn;
            }
        out.push_back(std::move(res));
    }
    return out;
}

bool Events2Tracker::apply(const std::string &raw)
{
    if (raw.size() > 64 * 1024) {
        last_error_ = "events2: a line of " + std::to_string(raw.size()) + " bytes";
        return false;
    }
    std::istringstream in(raw);
    std::string verb, object;
    in >> verb;
    // --timestamps: an ISO-8601 time first.
    if (!verb.empty() && std::isdigit(static_cast<unsigned char>(verb[0])))
        in >> verb;
    in >> object;
    if (verb.empty()) {
        last_error_ = "events2: an empty line";
        return false;
    }
    if (verb == "exists" && object == "-") {
        complete_ = true;
        return true;
    }
    if (verb != "exists" && verb != "create" && verb != "change" && verb != "destroy" && verb != "call" &&
        verb != "response") {
        last_error_ = "events2: unknown event '" + verb + "'";
        return false;
    }
    std::map<std::string, std::string> kv;
    for (std::string item; in >> item;) {
        const auto colon = item.find(':');
        if (colon == std::string::npos || colon == 0) {
            last_error_ = "events2: '" + item + "' is not key:value";
            return false;
        }
        kv[item.substr(0, colon)] = new_value(item.substr(colon + 1));
    }
    const auto name = kv.find("name");
    if (name == kv.end() || name->second.empty()) {
        last_error_ = "events2: " + verb + " " + object + " without a resource name";
        return false;
    }
    try {
        auto get = [&](const char *key) {
            auto it = kv.find(key);
            return it == kv.end() ? std::string() : it->second;
        };
        if (object == "resource" && verb == "destroy") {
            resources_.erase(name->second);
            return true;
        }
        Resource &r = resources_[name->second];
        r.name = name->second;
        if (object == "resource") {
            if (kv.count("role"))
                r.role = get("role");
            if (kv.count("suspended"))
                r.suspended = yes(get("suspended"));
        } else if (object == "device") {
            const int volume = to_int(get("volume"), "volume");
            if (verb == "destroy") {
                r.devices.erase(volume);
                return true;
            }
            Device &d = r.devices[volume];
            d.volume = volume;
            if (kv.count("minor"))
                d.minor = to_int(get("minor"), "minor");
            if (kv.count("disk"))
                d.disk = get("disk");
            if (kv.count("quorum"))
                d.quorum = yes(get("quorum"));
        } else if (object == "connection" || object == "peer-device") {
            const int peer = kv.count("peer-node-id") ? to_int(get("peer-node-id"), "peer-node-id") : -1;
            if (object == "connection" && verb == "destroy") {
                r.connections.erase(peer);
                return true;
            }
            Connection &c = r.connections[peer];
            c.peer_node_id = peer;
            if (kv.count("conn-name"))
                c.name = get("conn-name");
            if (object == "connection") {
                if (kv.count("connection"))
                    c.state = get("connection");
                if (kv.count("role"))
                    c.peer_role = get("role");
            } else {
                const int volume = to_int(get("volume"), "volume");
                if (verb == "destroy") {
                    c.peer_devices.erase(volume);
                    return true;
                }
                PeerDevice &p = c.peer_devices[volume];
                p.volume = volume;
                if (kv.count("replication"))
                    p.replication = get("replication");
                if (kv.count("peer-disk"))
                    p.peer_disk = get("peer-disk");
                if (kv.count("done"))
                    p.done = std::stod(get("done"));
                else if (kv.count("replication") && p.replication.rfind("Sync", 0) != 0)
                    p.done.reset();
                if (kv.count("out-of-sync"))
                    p.out_of_sync_kib = std::stoull(get("out-of-sync"));
            }
        } else if (object == "helper") {
            r.last_helper = get("helper") + (verb == "response" ? " exited " + get("status") : " called");
        }
        // "path" and unknown objects: nothing understudy needs.
    } catch (const DrbdParseError &e) {
        last_error_ = std::string("events2: ") + e.what();
        return false;
    } catch (const std::exception &) {
        last_error_ = "events2: a malformed number in '" + raw.substr(0, 200) + "'";
        return false;
    }
    return true;
}

ProcDrbd parse_proc_drbd(const std::string &text)
{
    if (text.size() > kMaxInput)
        throw DrbdParseError("/proc/drbd: too large");
    ProcDrbd out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string first;
        words >> first;
        if (first == "version:") {
            words >> out.version;
            continue;
        }
        if (first.size() < 2 || first.back() != ':' || !std::isdigit(static_cast<unsigned char>(first[0])))
            continue;
        ProcDrbdMinor m;
        m.minor = to_int(first.substr(0, first.size() - 1), "minor");
        for (std::string item; words >> item;) {
            auto split = [&](const std::string &v, std::string &a, std::string &b) {
                const auto slash = v.find('/');
                a = v.substr(0, slash);
                b = slash == std::string::npos ? "" : v.substr(slash + 1);
            };
            if (item.rfind("cs:", 0) == 0)
                m.connection = item.substr(3);
            else if (item.rfind("ro:", 0) == 0 || item.rfind("st:", 0) == 0)
                split(item.substr(3), m.role, m.peer_role);
            else if (item.rfind("ds:", 0) == 0)
                split(item.substr(3), m.disk, m.peer_disk);
            else if (item.size() == 1 && item[0] >= 'A' && item[0] <= 'D')
                m.protocol = item[0];
        }
        if (m.connection.empty())
            throw DrbdParseError("/proc/drbd: minor " + std::to_string(m.minor) + " has no cs: field");
        out.minors.push_back(m);
    }
    if (out.version.empty())
        throw DrbdParseError("/proc/drbd: no version line (is this DRBD's /proc/drbd?)");
    return out;
}

ReplicationVerdict judge_replication(const Resource &r)
{
    ReplicationVerdict v;
    if (r.devices.empty()) {
        v.reason = "resource " + r.name + " has no volume";
        return v;
    }
    for (const auto &[vol, d] : r.devices)
        if (d.disk != "UpToDate") {
            v.reason = "resource " + r.name + " volume " + std::to_string(vol) + ": the local disk is " +
                       (d.disk.empty() ? "unknown" : d.disk) + ", not UpToDate";
            return v;
        }
    std::string standalone;
    for (const auto &[id, c] : r.connections) {
        if (c.state == "StandAlone")
            standalone = c.name.empty() ? "node " + std::to_string(id) : c.name;
        if (c.state != "Connected")
            continue;
        bool all = !c.peer_devices.empty();
        for (const auto &[vol, p] : c.peer_devices)
            all = all && p.peer_disk == "UpToDate" && p.replication == "Established";
        if (all) {
            v.replicated = true;
            v.reason = "resource " + r.name + " is replicated to " + (c.name.empty() ? "node " + std::to_string(id) : c.name) +
                       " (Connected, peer disk UpToDate)";
            return v;
        }
    }
    if (!standalone.empty()) {
        v.split_brain_suspected = true;
        v.reason = "resource " + r.name + ": the connection to " + standalone +
                   " is StandAlone (DRBD gives up connecting after a split brain; resolve it with drbdadm "
                   "connect --discard-my-data on the victim)";
        return v;
    }
    v.reason = "resource " + r.name + " has no connected peer with an UpToDate disk";
    return v;
}

} // namespace understudy::drbd
