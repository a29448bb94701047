// LoadRunner: drives one target through load levels with gRPC's callback API, so thousands of
// requests stay in flight from a handful of threads (gRPC's own callback threads complete them;
// the calling thread only paces, reports progress and scrapes metrics).
//
// Closed loop: `concurrency` slots, each sending its next request as soon as the previous one is
// answered; slot i uses channel i % connections. Open loop: an OpenLoopPacer schedules sends at
// the requested rate on its own thread, independently of responses (see schedule.h); latency
// counts from the scheduled time. Both follow the accounting in result.h.
//
// Create() fails fast and clearly when the server cannot be used: UNAVAILABLE "cannot connect ..."
// when a channel does not become ready within connect_timeout_s, or the status of a first probe
// request (e.g. NOT_FOUND for an unknown model). Every request carries a deadline, so a level
// always ends. Thread-safety: one RunLevel() at a time.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "args.h"
#include "cgelu/client/client.h"
#include "cgelu/proto/inference.grpc.pb.h"
#include "clock.h"
#include "payload.h"
#include "result.h"

namespace cgelu::loadtest {

// Receives a one-line progress message about twice a second.
using ProgressFn = std::function<void(const std::string&)>;

class LoadRunner {
 public:
  static absl::StatusOr<std::unique_ptr<LoadRunner>> Create(const LoadTestConfig& config,
                                                            Clock& clock = SteadyClock());

  // Runs one level: a concurrency (closed loop) or a rate in requests/s (open loop).
  LevelResult RunLevel(double level, const ProgressFn& progress);

  // Ends the level in progress early and makes later RunLevel() calls return at once: no new
  // request is sent, those in flight are awaited, and the level's window closes now (the result
  // says `interrupted`). For Ctrl-C; may be called from any thread, also from a signal-handling
  // one.
  void Cancel();

  RunDescription Describe() const;
  int connections() const { return static_cast<int>(stubs_.size()); }

 private:
  struct Level;
  struct Call;

  LoadRunner(const LoadTestConfig& config, Clock& clock) : config_(config), clock_(clock) {}
  void Issue(Level& level, size_t channel, int64_t scheduled_ns, bool measured);
  void OnDone(Level& level, Call* call, const grpc::Status& status);
  // Closed loop: whether the slot that just finished sends again, and whether that send is a
  // window request. Called with level.mu held.
  bool NextClosedLoopSend(Level& level, int64_t now_ns, bool* measured);

  LoadTestConfig config_;
  Clock& clock_;
  ClipSettings clip_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs_;
  std::vector<Payload> payloads_;
  std::vector<inference::ModelInferRequest> requests_;  // one per payload, shared by calls
  std::atomic<int64_t> cancelled_at_ns_{INT64_MAX};     // Clock time of Cancel()
};

// The gRPC name of a status code, e.g. "UNAVAILABLE".
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace cgelu::loadtest
