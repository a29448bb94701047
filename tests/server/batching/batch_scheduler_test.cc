// Tests of the dynamic batcher. Time is a FakeClock moved by hand and the executor is a callback
// the test can stall, so every case is deterministic: no test sleeps or measures real time.
// Scenarios S2, S3, S8 and S9 of shared/cases/service-scenarios.md are covered here at the batcher
// level.
#include "server/batching/batch_scheduler.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"

namespace cgelu::batching {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::max();

struct BatchRecord {
  std::vector<int> ids;
  std::vector<int64_t> enqueue_times_us;
  int64_t dequeue_time_us = 0;
};

struct AbandonRecord {
  int id;
  absl::Status why;
};

// Stands in for the kernel backend: records every batch and every abandoned task, and can hold
// batches inside the callback until the test resumes it.
class Executor {
 public:
  BatchScheduler::BatchCallback Callback() {
    return [this](std::vector<std::unique_ptr<Task>> batch, int64_t dequeue_time_us) {
      Run(std::move(batch), dequeue_time_us);
    };
  }

  // Batches entering the callback from now on wait there until Resume().
  void Stall() {
    std::lock_guard<std::mutex> lock(mu_);
    stalled_ = true;
  }
  void Resume() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stalled_ = false;
    }
    cv_.notify_all();
  }

  void WaitForBatchesStarted(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return static_cast<int>(batches_.size()) >= n; });
  }
  void WaitForBatchesDone(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return batches_done_ >= n; });
  }
  void WaitForAbandoned(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return static_cast<int>(abandoned_.size()) >= n; });
  }

  void RecordAbandon(int id, const absl::Status& why) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      abandoned_.push_back({id, why});
    }
    cv_.notify_all();
  }

  std::vector<BatchRecord> batches() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }
  std::vector<AbandonRecord> abandoned() const {
    std::lock_guard<std::mutex> lock(mu_);
    return abandoned_;
  }

 private:
  void Run(std::vector<std::unique_ptr<Task>> batch, int64_t dequeue_time_us);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stalled_ = false;
  std::vector<BatchRecord> batches_;
  int batches_done_ = 0;
  std::vector<AbandonRecord> abandoned_;
};

class TestTask final : public Task {
 public:
  TestTask(int id, size_t elements, int64_t deadline_us, Executor* executor)
      : id_(id), elements_(elements), deadline_us_(deadline_us), executor_(executor) {}

  size_t num_elements() const override { return elements_; }
  int64_t deadline_us() const override { return deadline_us_; }
  bool cancelled() const override { return cancelled_.load(); }
  void Abandon(const absl::Status& why) override { executor_->RecordAbandon(id_, why); }

  int id() const { return id_; }
  void Cancel() { cancelled_.store(true); }

 private:
  const int id_;
  const size_t elements_;
  const int64_t deadline_us_;
  Executor* const executor_;
  std::atomic<bool> cancelled_{false};
};

void Executor::Run(std::vector<std::unique_ptr<Task>> batch, int64_t dequeue_time_us) {
  BatchRecord record;
  record.dequeue_time_us = dequeue_time_us;
  for (const std::unique_ptr<Task>& task : batch) {
    record.ids.push_back(static_cast<const TestTask&>(*task).id());
    record.enqueue_times_us.push_back(task->enqueue_time_us());
  }
  std::unique_lock<std::mutex> lock(mu_);
  batches_.push_back(std::move(record));
  cv_.notify_all();
  cv_.wait(lock, [&] { return !stalled_; });
  ++batches_done_;
  cv_.notify_all();
}

std::vector<std::vector<int>> BatchIds(const std::vector<BatchRecord>& batches) {
  std::vector<std::vector<int>> ids;
  for (const BatchRecord& batch : batches) ids.push_back(batch.ids);
  return ids;
}

class BatchSchedulerTest : public ::testing::Test {
 protected:
  // A failed expectation must not leave a worker stalled forever in the callback while the
  // scheduler's destructor joins it.
  void TearDown() override {
    executor_.Resume();
    scheduler_.reset();
  }

  void Start(const BatchSchedulerOptions& options) {
    absl::StatusOr<std::unique_ptr<BatchScheduler>> scheduler =
        BatchScheduler::Create(options, &clock_, executor_.Callback());
    ASSERT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = std::move(*scheduler);
  }

  std::unique_ptr<Task> MakeTask(int id, size_t elements = 1, int64_t deadline_us = kNoDeadline) {
    return std::make_unique<TestTask>(id, elements, deadline_us, &executor_);
  }

  absl::Status Send(int id, size_t elements = 1, int64_t deadline_us = kNoDeadline) {
    std::unique_ptr<Task> task = MakeTask(id, elements, deadline_us);
    return scheduler_->Schedule(&task);
  }

  cgelu::testing::FakeClock clock_;
  Executor executor_;
  std::unique_ptr<BatchScheduler> scheduler_;
};

TEST_F(BatchSchedulerTest, S2RequestsArrivingWhileBusyFormFullBatches) {
  Start({.max_batch_requests = 8, .max_queue_delay_us = 1000, .num_workers = 1});
  executor_.Stall();
  ASSERT_TRUE(Send(0).ok());
  clock_.BlockUntilWaitersWithDeadline(1, 1000);
  clock_.AdvanceMicros(1000);
  executor_.WaitForBatchesStarted(1);

  for (int id = 1; id <= 9; ++id) ASSERT_TRUE(Send(id).ok());
  EXPECT_EQ(scheduler_->NumEnqueuedTasks(), 9u);
  executor_.Resume();

  // The full batch closes without the clock moving; the ninth request waits for its delay.
  executor_.WaitForBatchesDone(2);
  clock_.BlockUntilWaitersWithDeadline(1, 2000);
  EXPECT_EQ(executor_.batches().size(), 2u);
  clock_.AdvanceMicros(1000);
  executor_.WaitForBatchesDone(3);

  const std::vector<BatchRecord> batches = executor_.batches();
  EXPECT_THAT(BatchIds(batches),
              ElementsAre(ElementsAre(0), ElementsAre(1, 2, 3, 4, 5, 6, 7, 8), ElementsAre(9)));
  EXPECT_EQ(batches[1].dequeue_time_us, 1000);
  EXPECT_EQ(batches[2].dequeue_time_us, 2000);
}

TEST_F(BatchSchedulerTest, S3LoneRequestWaitsExactlyTheQueueDelay) {
  Start({.max_queue_delay_us = 2000, .num_workers = 1});
  for (int id = 0; id < 3; ++id) {
    const int64_t sent_us = clock_.NowMicros();
    ASSERT_TRUE(Send(id).ok());
    clock_.BlockUntilWaitersWithDeadline(1, sent_us + 2000);
    clock_.AdvanceMicros(1999);
    // Not due yet: the worker stays asleep and the task stays queued.
    clock_.BlockUntilWaitersWithDeadline(1, sent_us + 2000);
    EXPECT_EQ(executor_.batches().size(), static_cast<size_t>(id));
    EXPECT_EQ(scheduler_->NumEnqueuedTasks(), 1u);

    clock_.AdvanceMicros(1);
    executor_.WaitForBatchesDone(id + 1);
    const BatchRecord batch = executor_.batches().back();
    ASSERT_THAT(batch.ids, ElementsAre(id));
    EXPECT_EQ(batch.dequeue_time_us - batch.enqueue_times_us[0], 2000);
  }
}

// A worker waiting for company is woken only by what changes its decision: the head batch filling
// up. Tasks that merely join the queue leave it asleep (under load a wake-up per request was a
// futex call and a context switch each, for nothing).
TEST_F(BatchSchedulerTest, TasksThatDoNotFillTheBatchLeaveTheWaitingWorkerAsleep) {
  Start({.max_batch_requests = 8, .max_queue_delay_us = 1000, .num_workers = 1});
  ASSERT_TRUE(Send(0).ok());
  clock_.BlockUntilWaitersWithDeadline(1, 1000);
  const int64_t sleeps = clock_.Sleeps();
  for (int id = 1; id <= 6; ++id) ASSERT_TRUE(Send(id).ok());
  // The worker's only wait so far is the one it started for task 0; the eighth task fills the
  // batch and wakes it without the clock moving.
  EXPECT_EQ(clock_.Sleeps(), sleeps);
  ASSERT_TRUE(Send(7).ok());
  executor_.WaitForBatchesDone(1);
  EXPECT_THAT(BatchIds(executor_.batches()), ElementsAre(ElementsAre(0, 1, 2, 3, 4, 5, 6, 7)));
  EXPECT_EQ(executor_.batches()[0].dequeue_time_us, 0);
  // Back to an empty queue, the worker sleeps once more, and that is its only other sleep.
  clock_.BlockUntilWaitersWithDeadline(1, kNoDeadline);
  EXPECT_EQ(clock_.Sleeps(), sleeps + 1);
}

TEST_F(BatchSchedulerTest, ZeroDelayRunsAnIdleWorkersTaskAtOnce) {
  Start({.max_queue_delay_us = 0, .num_workers = 1});
  ASSERT_TRUE(Send(0).ok());
  executor_.WaitForBatchesDone(1);
  const BatchRecord batch = executor_.batches()[0];
  EXPECT_THAT(batch.ids, ElementsAre(0));
  EXPECT_EQ(batch.dequeue_time_us, batch.enqueue_times_us[0]);
}

TEST_F(BatchSchedulerTest, S8FullQueueRejectsAtOnceAndCallerKeepsTheTask) {
  Start({.max_queue_delay_us = 0, .max_queue_size = 4, .num_workers = 1});
  EXPECT_EQ(scheduler_->NumEnqueuedTasks(), 0u);
  EXPECT_EQ(scheduler_->SchedulingCapacity(), 4u);
  EXPECT_EQ(scheduler_->NumBusyWorkers(), 0);

  executor_.Stall();
  ASSERT_TRUE(Send(0).ok());
  executor_.WaitForBatchesStarted(1);
  EXPECT_EQ(scheduler_->NumBusyWorkers(), 1);
  EXPECT_EQ(scheduler_->SchedulingCapacity(), 4u);

  std::vector<int> accepted;
  std::vector<std::unique_ptr<Task>> rejected;
  for (int id = 1; id <= 10; ++id) {
    std::unique_ptr<Task> task = MakeTask(id);
    const absl::Status status = scheduler_->Schedule(&task);
    if (status.ok()) {
      EXPECT_EQ(task, nullptr);
      accepted.push_back(id);
      continue;
    }
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_THAT(status.message(), HasSubstr("max_queue_size 4"));
    ASSERT_NE(task, nullptr);
    rejected.push_back(std::move(task));
  }
  EXPECT_THAT(accepted, ElementsAre(1, 2, 3, 4));
  ASSERT_EQ(rejected.size(), 6u);
  for (size_t i = 0; i < rejected.size(); ++i) {
    EXPECT_EQ(static_cast<const TestTask&>(*rejected[i]).id(), static_cast<int>(i) + 5);
  }
  EXPECT_EQ(scheduler_->NumEnqueuedTasks(), 4u);
  EXPECT_EQ(scheduler_->SchedulingCapacity(), 0u);

  executor_.Resume();
  executor_.WaitForBatchesDone(2);
  EXPECT_THAT(BatchIds(executor_.batches()), ElementsAre(ElementsAre(0), ElementsAre(1, 2, 3, 4)));
  EXPECT_THAT(executor_.abandoned(), IsEmpty());
  EXPECT_EQ(scheduler_->NumEnqueuedTasks(), 0u);
  EXPECT_EQ(scheduler_->SchedulingCapacity(), 4u);
}

TEST_F(BatchSchedulerTest, S9DeadlinePassedInQueueIsAbandonedNotComputed) {
  Start({.max_queue_delay_us = 0, .num_workers = 1});
  executor_.Stall();
  ASSERT_TRUE(Send(0).ok());
  executor_.WaitForBatchesStarted(1);
  ASSERT_TRUE(Send(1, 1, /*deadline_us=*/10).ok());
  ASSERT_TRUE(Send(2, 1, /*deadline_us=*/100).ok());  // a deadline equal to the dequeue time
  ASSERT_TRUE(Send(3).ok());
  clock_.AdvanceMicros(100);
  executor_.Resume();
  executor_.WaitForBatchesDone(2);

  EXPECT_THAT(BatchIds(executor_.batches()), ElementsAre(ElementsAre(0), ElementsAre(3)));
  const std::vector<AbandonRecord> abandoned = executor_.abandoned();
  ASSERT_EQ(abandoned.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(abandoned[i].id, i + 1);
    EXPECT_EQ(abandoned[i].why.code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(abandoned[i].why.message(), "deadline passed after 100 us in queue");
  }
}

TEST_F(BatchSchedulerTest, BatchWithOnlyAbandonedTasksSkipsTheCallback) {
  Start({.max_queue_delay_us = 0, .num_workers = 1});
  executor_.Stall();
  ASSERT_TRUE(Send(0).ok());
  executor_.WaitForBatchesStarted(1);
  ASSERT_TRUE(Send(1, 1, /*deadline_us=*/10).ok());
  clock_.AdvanceMicros(50);
  executor_.Resume();
  executor_.WaitForAbandoned(1);
  scheduler_->Stop();
  EXPECT_THAT(BatchIds(executor_.batches()), ElementsAre(ElementsAre(0)));
  EXPECT_EQ(executor_.abandoned()[0].why.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(BatchSchedulerTest, S9CancelledTaskIsAbandonedNotComputed) {
  Start({.max_queue_delay_us = 0, .num_workers = 1});
  executor_.Stall();
  ASSERT_TRUE(Send(0).ok());
  executor_.WaitForBatchesStarted(1);
  auto owned = std::make_unique<TestTask>(1, 1, kNoDeadline, &executor_);
  TestTask* cancelled = owned.get();
  std::unique_ptr<Task> task = std::move(owned);
  ASSERT_TRUE(scheduler_->Schedule(&task).ok());
  ASSERT_TRUE(Send(2).ok());
  // Safe: the scheduler destroys a task only after a worker has taken it, and the worker is
  // stalled.
  cancelled->Cancel();
  clock_.AdvanceMicros(7);
  executor_.Resume();
  executor_.WaitForBatchesDone(2);

  EXPECT_THAT(BatchIds(executor_.batches()), ElementsAre(ElementsAre(0), ElementsAre(2)));
  const std::vector<AbandonRecord> abandoned = executor_.abandoned();
  ASSERT_EQ(abandoned.size(), 1u);
  EXPECT_EQ(abandoned[0].id, 1);
  EXPECT_EQ(abandoned[0].why.code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(abandoned[0].why.message(), HasSubstr("after 7 us in queue"));
}

TEST_F(BatchSchedulerTest, ElementLimitClosesTheBatch) {
  Start({.max_batch_elements = 100, .max_queue_delay_us = 1000, .num_workers = 1});
  ASSERT_TRUE(Send(0, 40).ok());
  clock_.BlockUntilWaitersWithDeadline(1, 1000);
  ASSERT_TRUE(Send(1, 60).ok());  // reaches the limit exactly
  executor_.WaitForBatchesDone(1);

  ASSERT_TRUE(Send(2, 60).ok());
  clock_.BlockUntilWaitersWithDeadline(1, 1000);
  ASSERT_TRUE(Send(3, 50).ok());  // cannot join: the batch holding task 2 can grow no further
  executor_.WaitForBatchesDone(2);
  clock_.BlockUntilWaitersWithDeadline(1, 1000);
  EXPECT_EQ(executor_.batches().size(), 2u);
  clock_.AdvanceMicros(1000);
  executor_.WaitForBatchesDone(3);

  const std::vector<BatchRecord> batches = executor_.batches();
  EXPECT_THAT(BatchIds(batches), ElementsAre(ElementsAre(0, 1), ElementsAre(2), ElementsAre(3)));
  EXPECT_EQ(batches[0].dequeue_time_us, 0);
  EXPECT_EQ(batches[1].dequeue_time_us, 0);
  EXPECT_EQ(batches[2].dequeue_time_us, 1000);
}

TEST_F(BatchSchedulerTest, TaskLargerThanTheElementLimitRunsAlone) {
  Start({.max_batch_requests = 8,
         .max_batch_elements = 100,
         .max_queue_delay_us = 1000,
         .num_workers = 1});
  executor_.Stall();
  ASSERT_TRUE(Send(0, 250).ok());
  executor_.WaitForBatchesStarted(1);
  ASSERT_TRUE(Send(1, 10).ok());
  ASSERT_TRUE(Send(2, 250).ok());
  ASSERT_TRUE(Send(3, 10).ok());
  executor_.Resume();
  executor_.WaitForBatchesDone(3);
  clock_.BlockUntilWaitersWithDeadline(1, 1000);
  clock_.AdvanceMicros(1000);
  executor_.WaitForBatchesDone(4);

  const std::vector<BatchRecord> batches = executor_.batches();
  EXPECT_THAT(BatchIds(batches),
              ElementsAre(ElementsAre(0), ElementsAre(1), ElementsAre(2), ElementsAre(3)));
  EXPECT_EQ(batches[2].dequeue_time_us, 0);
  EXPECT_EQ(batches[3].dequeue_time_us, 1000);
}

TEST_F(BatchSchedulerTest, WorkersRunBatchesInParallel) {
  Start({.max_queue_delay_us = 0, .num_workers = 3});
  executor_.Stall();
  // Each task is sent only once the previous batch is held in the callback, so a second batch can
  // start only on another worker.
  for (int id = 0; id < 3; ++id) {
    ASSERT_TRUE(Send(id).ok());
    executor_.WaitForBatchesStarted(id + 1);
  }
  EXPECT_EQ(scheduler_->NumBusyWorkers(), 3);
  executor_.Resume();
  executor_.WaitForBatchesDone(3);
  scheduler_->Stop();
  EXPECT_EQ(scheduler_->NumBusyWorkers(), 0);
  EXPECT_THAT(BatchIds(executor_.batches()),
              ElementsAre(ElementsAre(0), ElementsAre(1), ElementsAre(2)));
}

TEST_F(BatchSchedulerTest, IdleWorkersShareTheQueueDelayWait) {
  Start({.max_queue_delay_us = 500, .num_workers = 2});
  ASSERT_TRUE(Send(0).ok());
  ASSERT_TRUE(Send(1).ok());
  clock_.BlockUntilWaitersWithDeadline(1, 500);
  clock_.AdvanceMicros(500);
  executor_.WaitForBatchesDone(1);
  scheduler_->Stop();
  EXPECT_THAT(BatchIds(executor_.batches()), ElementsAre(ElementsAre(0, 1)));
}

TEST_F(BatchSchedulerTest, StopRunsEveryAcceptedTaskWithoutWaitingForTheDelay) {
  Start({.max_batch_requests = 2, .max_queue_delay_us = 1'000'000, .num_workers = 1});
  for (int id = 0; id < 5; ++id) ASSERT_TRUE(Send(id).ok());
  scheduler_->Stop();

  const std::vector<BatchRecord> batches = executor_.batches();
  EXPECT_THAT(BatchIds(batches), ElementsAre(ElementsAre(0, 1), ElementsAre(2, 3), ElementsAre(4)));
  for (const BatchRecord& batch : batches) EXPECT_EQ(batch.dequeue_time_us, 0);
  EXPECT_THAT(executor_.abandoned(), IsEmpty());
  EXPECT_EQ(scheduler_->NumEnqueuedTasks(), 0u);
  EXPECT_EQ(scheduler_->NumBusyWorkers(), 0);
  scheduler_->Stop();  // idempotent
}

TEST_F(BatchSchedulerTest, StopWaitsForTheBatchInProgress) {
  Start({.max_queue_delay_us = 0, .num_workers = 1});
  executor_.Stall();
  ASSERT_TRUE(Send(0).ok());
  executor_.WaitForBatchesStarted(1);
  ASSERT_TRUE(Send(1).ok());
  std::thread stopper([&] { scheduler_->Stop(); });
  // Stop refuses new work before it joins, while the worker is still held in the callback. There is
  // no hook for "Stop has started", so poll the capacity, which drops to zero at that moment.
  while (scheduler_->SchedulingCapacity() != 0) std::this_thread::yield();
  std::unique_ptr<Task> late = MakeTask(2);
  EXPECT_EQ(scheduler_->Schedule(&late).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(executor_.batches().size(), 1u);
  executor_.Resume();
  stopper.join();
  EXPECT_THAT(BatchIds(executor_.batches()), ElementsAre(ElementsAre(0), ElementsAre(1)));
}

TEST_F(BatchSchedulerTest, ScheduleAfterStopIsUnavailableAndCallerKeepsTheTask) {
  Start({.num_workers = 2});
  scheduler_->Stop();
  std::unique_ptr<Task> task = MakeTask(0);
  const absl::Status status = scheduler_->Schedule(&task);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(task, nullptr);
  EXPECT_EQ(scheduler_->SchedulingCapacity(), 0u);
  EXPECT_THAT(executor_.batches(), IsEmpty());
}

TEST_F(BatchSchedulerTest, NullTaskIsInvalidArgument) {
  Start({});
  std::unique_ptr<Task> task;
  EXPECT_EQ(scheduler_->Schedule(&task).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scheduler_->Schedule(nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scheduler_->NumEnqueuedTasks(), 0u);
}

struct InvalidOptionsCase {
  std::string option;
  std::function<void(BatchSchedulerOptions&)> spoil;
};

TEST(BatchSchedulerOptionsTest, CreateNamesTheOptionOutOfRange) {
  const std::vector<InvalidOptionsCase> cases = {
      {"max_batch_requests", [](BatchSchedulerOptions& o) { o.max_batch_requests = 0; }},
      {"max_batch_elements", [](BatchSchedulerOptions& o) { o.max_batch_elements = 0; }},
      {"max_queue_delay_us", [](BatchSchedulerOptions& o) { o.max_queue_delay_us = -1; }},
      {"max_queue_size", [](BatchSchedulerOptions& o) { o.max_queue_size = 0; }},
      {"num_workers", [](BatchSchedulerOptions& o) { o.num_workers = 0; }},
      {"num_workers", [](BatchSchedulerOptions& o) { o.num_workers = -3; }},
  };
  cgelu::testing::FakeClock clock;
  auto callback = [](std::vector<std::unique_ptr<Task>>, int64_t) {};
  for (const InvalidOptionsCase& c : cases) {
    BatchSchedulerOptions options;
    c.spoil(options);
    absl::StatusOr<std::unique_ptr<BatchScheduler>> scheduler =
        BatchScheduler::Create(options, &clock, callback);
    EXPECT_EQ(scheduler.status().code(), absl::StatusCode::kInvalidArgument) << c.option;
    EXPECT_THAT(scheduler.status().message(), HasSubstr(c.option));
  }
  EXPECT_EQ(BatchScheduler::Create({}, nullptr, callback).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BatchScheduler::Create({}, &clock, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  // The smallest valid values are accepted, including a huge delay that must not overflow.
  BatchSchedulerOptions smallest{.max_batch_requests = 1,
                                 .max_batch_elements = 1,
                                 .max_queue_delay_us = 0,
                                 .max_queue_size = 1,
                                 .num_workers = 1};
  EXPECT_TRUE(BatchScheduler::Create(smallest, &clock, callback).ok());
  smallest.max_queue_delay_us = kNoDeadline;
  EXPECT_TRUE(BatchScheduler::Create(smallest, &clock, callback).ok());
}

TEST(BatchSchedulerOptionsTest, HugeDelayWaitsForANotificationOnly) {
  cgelu::testing::FakeClock clock(/*start_us=*/1'000);
  std::mutex mu;
  std::vector<int> sizes;
  auto scheduler = BatchScheduler::Create(
      {.max_batch_requests = 2, .max_queue_delay_us = kNoDeadline, .num_workers = 1}, &clock,
      [&](std::vector<std::unique_ptr<Task>> batch, int64_t) {
        std::lock_guard<std::mutex> lock(mu);
        sizes.push_back(static_cast<int>(batch.size()));
      });
  ASSERT_TRUE(scheduler.ok());
  Executor abandon_log;
  std::unique_ptr<Task> a = std::make_unique<TestTask>(0, 1, kNoDeadline, &abandon_log);
  ASSERT_TRUE((*scheduler)->Schedule(&a).ok());
  // enqueue time + delay saturates to "no deadline" instead of wrapping into the past.
  clock.BlockUntilWaitersWithDeadline(1, kNoDeadline);
  clock.AdvanceMicros(1'000'000'000);
  clock.BlockUntilWaitersWithDeadline(1, kNoDeadline);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_THAT(sizes, IsEmpty());
  }
  std::unique_ptr<Task> b = std::make_unique<TestTask>(1, 1, kNoDeadline, &abandon_log);
  ASSERT_TRUE((*scheduler)->Schedule(&b).ok());
  (*scheduler)->Stop();
  EXPECT_THAT(sizes, ElementsAre(2));
}

// Real threads and the real clock, for ThreadSanitizer: producers race the workers, Stop and the
// counters. Every accepted task is either computed once or abandoned once; nothing is lost.
TEST(BatchSchedulerConcurrencyTest, EveryAcceptedTaskIsFinishedExactlyOnce) {
  constexpr int kProducers = 4;
  constexpr int kTasksPerProducer = 500;
  constexpr size_t kMaxBatchRequests = 8;
  constexpr size_t kMaxBatchElements = 64;
  std::atomic<int> computed{0};
  std::atomic<int> batch_limit_violations{0};
  Executor abandon_log;
  auto run_batch = [&](std::vector<std::unique_ptr<Task>> batch, int64_t) {
    size_t elements = 0;
    for (const std::unique_ptr<Task>& task : batch) elements += task->num_elements();
    if (batch.size() > kMaxBatchRequests || (batch.size() > 1 && elements > kMaxBatchElements)) {
      ++batch_limit_violations;
    }
    computed += static_cast<int>(batch.size());
  };
  auto scheduler = BatchScheduler::Create({.max_batch_requests = kMaxBatchRequests,
                                           .max_batch_elements = kMaxBatchElements,
                                           .max_queue_delay_us = 50,
                                           .max_queue_size = 32,
                                           .num_workers = 3},
                                          &RealClock(), run_batch);
  ASSERT_TRUE(scheduler.ok());

  std::atomic<int> rejections{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kTasksPerProducer; ++i) {
        const int id = p * kTasksPerProducer + i;
        // Every tenth task has a deadline already past, every tenth (offset) is cancelled.
        const int64_t deadline_us = id % 10 == 3 ? 0 : kNoDeadline;
        auto owned = std::make_unique<TestTask>(id, 1 + id % 100, deadline_us, &abandon_log);
        if (id % 10 == 7) owned->Cancel();
        std::unique_ptr<Task> task = std::move(owned);
        // A full queue is retried, so producers keep racing the workers until every task is in.
        while (!(*scheduler)->Schedule(&task).ok()) {
          ASSERT_NE(task, nullptr);
          ++rejections;
          std::this_thread::yield();
        }
        // The counters are read while workers change them, for the race detector's sake.
        (*scheduler)->NumEnqueuedTasks();
        (*scheduler)->SchedulingCapacity();
        (*scheduler)->NumBusyWorkers();
      }
    });
  }
  for (std::thread& producer : producers) producer.join();
  (*scheduler)->Stop();

  constexpr int kTasks = kProducers * kTasksPerProducer;
  EXPECT_EQ(static_cast<int>(abandon_log.abandoned().size()), kTasks / 5);
  EXPECT_EQ(computed.load(), kTasks - kTasks / 5);
  EXPECT_EQ(batch_limit_violations.load(), 0);
  EXPECT_EQ((*scheduler)->NumEnqueuedTasks(), 0u);
  EXPECT_EQ((*scheduler)->NumBusyWorkers(), 0);
  // How often the queue was full, in the XML report: evidence that producers raced the workers.
  ::testing::Test::RecordProperty("rejections", rejections.load());
}

}  // namespace
}  // namespace cgelu::batching
