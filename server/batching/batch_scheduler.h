// BatchScheduler: the dynamic batcher between the RPC front end and the kernel backend.
//
// Behaviour
// - Schedule() queues a task (one request). Worker threads form batches from the head of the
//   queue: a batch closes as soon as it holds max_batch_requests tasks or max_batch_elements
//   elements, or when its oldest task has waited max_queue_delay_us, whichever comes first. A task
//   larger than max_batch_elements runs in a batch of its own. Tasks of any shape and parameters
//   share a batch: the scheduler knows only Task::num_elements().
// - Before a batch runs, tasks whose deadline has passed or whose client cancelled are removed and
//   told why through Task::Abandon (DEADLINE_EXCEEDED or CANCELLED); they are never computed.
// - Running a batch is the callback's job (the scheduler includes no tensor, proto or CUDA header);
//   the callback owns the tasks it is given and must finish every one of them.
// Latency bound: a task waits at most max_queue_delay_us for its batch to close, plus the time for
//   a worker to become free.
// Ownership: Schedule() takes the task only when it returns OK. A full queue (max_queue_size tasks
//   waiting) is UNAVAILABLE at once and never blocks; so is a stopped scheduler.
// Shutdown: Stop() (also run by the destructor) refuses new tasks, lets the workers run every task
//   already accepted, then joins them.
// Thread-safety: Schedule, NumEnqueuedTasks, SchedulingCapacity and Stop may be called from any
//   thread concurrently. The callback runs on a worker thread, never under the scheduler's lock.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/batching/clock.h"

namespace cgelu::batching {

// One unit of work. Implemented by the front end (a request and its reactor).
class Task {
 public:
  virtual ~Task() = default;
  // Elements this task contributes to a batch.
  virtual size_t num_elements() const = 0;
  // Clock time (Clock::NowMicros) after which computing the task is pointless; INT64_MAX for none.
  virtual int64_t deadline_us() const { return std::numeric_limits<int64_t>::max(); }
  // True once the client has gone away.
  virtual bool cancelled() const { return false; }
  // Called exactly once, on a worker thread, for a task removed without running: the status says
  // why (DEADLINE_EXCEEDED or CANCELLED). The task is destroyed right after.
  virtual void Abandon(const absl::Status& why) = 0;

  // Set by the scheduler when the task is accepted.
  int64_t enqueue_time_us() const { return enqueue_time_us_; }

 private:
  friend class BatchScheduler;
  int64_t enqueue_time_us_ = 0;
};

struct BatchSchedulerOptions {
  size_t max_batch_requests = 64;       // tasks in one batch, >= 1
  size_t max_batch_elements = 1 << 22;  // elements in one batch, >= 1 (a larger task runs alone)
  int64_t max_queue_delay_us = 100;     // how long the oldest task may wait for company, >= 0
  size_t max_queue_size = 1024;         // tasks waiting (not yet in a batch), >= 1
  int num_workers = 1;                  // batches run in parallel, >= 1
};

class BatchScheduler {
 public:
  // Runs one batch. `dequeue_time_us` is the clock time the batch closed.
  using BatchCallback =
      std::function<void(std::vector<std::unique_ptr<Task>> batch, int64_t dequeue_time_us)>;

  // INVALID_ARGUMENT for options out of range. `clock` must outlive the scheduler.
  static absl::StatusOr<std::unique_ptr<BatchScheduler>> Create(
      const BatchSchedulerOptions& options, Clock* clock, BatchCallback callback);

  ~BatchScheduler();
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // Queues `*task`. On OK the scheduler owns it and `*task` is null; otherwise the caller keeps it:
  // UNAVAILABLE when the queue is full or the scheduler is stopping.
  absl::Status Schedule(std::unique_ptr<Task>* task);
  // Tasks accepted but not yet taken into a batch.
  size_t NumEnqueuedTasks() const;
  // How many more tasks Schedule() would accept right now.
  size_t SchedulingCapacity() const;
  // Workers currently holding a batch: from the moment it closes until its abandoned tasks are
  // told why and the callback has returned.
  int NumBusyWorkers() const;
  // Refuses new tasks, runs every task already accepted, joins the workers. Idempotent. Must not
  // be called from the callback (a worker cannot join itself).
  void Stop();

 private:
  BatchScheduler(const BatchSchedulerOptions& options, Clock* clock, BatchCallback callback);
  void WorkerLoop();
  // True when waiting longer cannot make the batch at the head of the queue any larger.
  bool HeadBatchIsFull() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the tasks of the head batch out of the queue.
  std::vector<std::unique_ptr<Task>> TakeHeadBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const BatchSchedulerOptions options_;
  Clock* const clock_;
  const BatchCallback callback_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Task>> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_elements_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int busy_workers_ ABSL_GUARDED_BY(mu_) = 0;
  // Serializes concurrent Stop() calls so each worker is joined exactly once.
  std::mutex join_mu_;
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace cgelu::batching
