#include "server/batching/batch_scheduler.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace cgelu::batching {
namespace {

constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::max();

int64_t SaturatingAdd(int64_t time_us, int64_t delta_us) {
  return time_us > kNoDeadline - delta_us ? kNoDeadline : time_us + delta_us;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BatchScheduler>> BatchScheduler::Create(
    const BatchSchedulerOptions& options, Clock* clock, BatchCallback callback) {
  if (options.max_batch_requests < 1) {
    return absl::InvalidArgumentError("max_batch_requests must be >= 1 (got 0)");
  }
  if (options.max_batch_elements < 1) {
    return absl::InvalidArgumentError("max_batch_elements must be >= 1 (got 0)");
  }
  if (options.max_queue_delay_us < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queue_delay_us must be >= 0 (got ", options.max_queue_delay_us, ")"));
  }
  if (options.max_queue_size < 1) {
    return absl::InvalidArgumentError("max_queue_size must be >= 1 (got 0)");
  }
  if (options.num_workers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_workers must be >= 1 (got ", options.num_workers, ")"));
  }
  if (clock == nullptr) return absl::InvalidArgumentError("clock must not be null");
  if (!callback) return absl::InvalidArgumentError("batch callback must not be empty");
  return std::unique_ptr<BatchScheduler>(new BatchScheduler(options, clock, std::move(callback)));
}

BatchScheduler::BatchScheduler(const BatchSchedulerOptions& options, Clock* clock,
                               BatchCallback callback)
    : options_(options), clock_(clock), callback_(std::move(callback)) {
  std::lock_guard<std::mutex> join_lock(join_mu_);
  workers_.reserve(options_.num_workers);
  for (int i = 0; i < options_.num_workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

BatchScheduler::~BatchScheduler() { Stop(); }

absl::Status BatchScheduler::Schedule(std::unique_ptr<Task>* task) {
  if (task == nullptr || *task == nullptr) {
    return absl::InvalidArgumentError("Schedule() needs a non-null task");
  }
  const size_t elements = (*task)->num_elements();
  bool wake_worker = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("batch scheduler is stopping");
    if (queue_.size() >= options_.max_queue_size) {
      return absl::UnavailableError(absl::StrCat("batch queue is full (max_queue_size ",
                                                 options_.max_queue_size, " tasks waiting)"));
    }
    const bool was_empty = queue_.empty();
    (*task)->enqueue_time_us_ = clock_->NowMicros();
    queued_elements_ += elements;
    queue_.push_back(std::move(*task));
    // A waiting worker decides differently only when the queue stops being empty (an idle worker
    // starts the head's delay) or the head batch becomes full (the batch closes early). Any other
    // task leaves its decision as it was (sleep until the head's delay runs out), so it is not
    // woken just to go back to sleep.
    wake_worker = was_empty || HeadBatchIsFull();
  }
  // Every waiting worker evaluates the same queue state, so waking one is enough.
  if (wake_worker) cv_.notify_one();
  return absl::OkStatus();
}

size_t BatchScheduler::NumEnqueuedTasks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

size_t BatchScheduler::SchedulingCapacity() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return 0;
  return options_.max_queue_size - queue_.size();
}

int BatchScheduler::NumBusyWorkers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_workers_;
}

void BatchScheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  std::lock_guard<std::mutex> join_lock(join_mu_);
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

bool BatchScheduler::HeadBatchIsFull() const {
  // When the queue holds fewer than max_batch_requests tasks, the head batch is the whole queue, so
  // queued_elements_ >= max_batch_elements means either the limit is reached or the next task
  // cannot fit; in both cases waiting adds nothing.
  return queue_.size() >= options_.max_batch_requests ||
         queued_elements_ >= options_.max_batch_elements;
}

std::vector<std::unique_ptr<Task>> BatchScheduler::TakeHeadBatch() {
  std::vector<std::unique_ptr<Task>> batch;
  size_t batch_elements = 0;
  while (!queue_.empty() && batch.size() < options_.max_batch_requests) {
    const size_t elements = queue_.front()->num_elements();
    // The first task always goes in, so one larger than max_batch_elements runs alone (and leaves
    // batch_elements above the limit: compare without subtracting from the limit first).
    if (!batch.empty() && (batch_elements >= options_.max_batch_elements ||
                           elements > options_.max_batch_elements - batch_elements)) {
      break;
    }
    batch_elements += elements;
    queued_elements_ -= elements;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

void BatchScheduler::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) return;
      clock_->WaitUntil(cv_, lock, kNoDeadline);
      continue;
    }
    const int64_t now_us = clock_->NowMicros();
    const int64_t close_us =
        SaturatingAdd(queue_.front()->enqueue_time_us_, options_.max_queue_delay_us);
    if (!stopping_ && now_us < close_us && !HeadBatchIsFull()) {
      clock_->WaitUntil(cv_, lock, close_us);
      continue;
    }

    std::vector<std::unique_ptr<Task>> batch = TakeHeadBatch();
    const bool more_queued = !queue_.empty();
    ++busy_workers_;
    lock.unlock();
    // Another worker may be asleep until the old head's delay runs out although the new head is
    // already full, or may be idle while tasks remain during a drain.
    if (more_queued) cv_.notify_one();

    std::vector<std::unique_ptr<Task>> runnable;
    runnable.reserve(batch.size());
    for (std::unique_ptr<Task>& task : batch) {
      const int64_t queued_us = now_us - task->enqueue_time_us();
      // Deadline first: when a deadline passes, gRPC also cancels the call, and the reason that
      // counts (metrics, logs) is the timeout.
      if (task->deadline_us() <= now_us) {
        task->Abandon(absl::DeadlineExceededError(
            absl::StrCat("deadline passed after ", queued_us, " us in queue")));
      } else if (task->cancelled()) {
        task->Abandon(absl::CancelledError(
            absl::StrCat("cancelled by the client after ", queued_us, " us in queue")));
      } else {
        runnable.push_back(std::move(task));
        continue;
      }
      task.reset();
    }
    if (!runnable.empty()) callback_(std::move(runnable), now_us);

    lock.lock();
    --busy_workers_;
  }
}

}  // namespace cgelu::batching
