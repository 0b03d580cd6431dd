#include "checkpoint/stream/record.h"

namespace understudy {

bool known_record_type(std::uint8_t type) noexcept
{
    return type >= static_cast<std::uint8_t>(RecordType::hello) && type <= static_cast<std::uint8_t>(RecordType::goodbye);
}

std::string record_name(RecordType type)
{
    switch (type) {
    case RecordType::hello: return "Hello";
    case RecordType::hello_reply: return "HelloReply";
    case RecordType::epoch_begin: return "EpochBegin";
    case RecordType::page_batch: return "PageBatch";
    case RecordType::cpu: return "CpuState";
    case RecordType::devices: return "DeviceState";
    case RecordType::disk_writes: return "DiskWrites";
    case RecordType::epoch_end: return "EpochEnd";
    case RecordType::ack: return "Ack";
    case RecordType::heartbeat: return "Heartbeat";
    case RecordType::goodbye: return "Goodbye";
    }
    return "record type " + std::to_string(static_cast<unsigned>(type));
}

} // namespace understudy
