// Anything that must take part in a checkpoint besides memory (the network
// output buffer, a disk barrier, a device model), in the spirit of Xen's
// libxl_checkpoint_device. The epoch loop calls participants in order and does
// not know what they are; each overrides only what it needs.
#pragma once

#include "checkpoint/epoch.h"

namespace understudy {

class CheckpointParticipant {
  public:
    virtual ~CheckpointParticipant() = default;
    // The guest is paused at the end of `epoch` (a barrier: nothing of the
    // epoch may still be in flight after this returns).
    virtual void on_pause(Epoch) {}
    // The guest runs again; what it does now belongs to the next epoch.
    virtual void on_resume(Epoch) {}
    // The backup committed `epoch`: its effects may become visible.
    virtual void on_commit(Epoch) {}
    // No backup any more: nothing is held back until protection resumes.
    virtual void on_unprotected() {}
};

} // namespace understudy
