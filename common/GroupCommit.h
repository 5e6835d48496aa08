#pragma once
// Group commit: callers on many threads submit one item each and block until it is durable; one
// of them (the leader) processes everything queued so far in one batch (one transaction, one
// fsync) while the others wait. With N associations in flight, N items share one expensive
// flush instead of paying one each. A batch that throws fails every item in it.
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace segnode {

template <typename Item, typename Result>
class GroupCommit {
 public:
  using BatchFn = std::function<std::vector<Result>(std::vector<Item>& items)>;
  explicit GroupCommit(BatchFn fn) : fn_(std::move(fn)) {}

  Result submit(Item item) {
    auto slot = std::make_shared<Slot>();
    slot->item = std::move(item);
    std::unique_lock<std::mutex> lock(mutex_);
    queue_.push_back(slot);
    while (!slot->done) {
      if (running_) {
        cv_.wait(lock);
        continue;
      }
      running_ = true;
      std::vector<std::shared_ptr<Slot>> batch;
      batch.swap(queue_);
      lock.unlock();
      std::vector<Item> items;
      items.reserve(batch.size());
      for (auto& s : batch) items.push_back(std::move(s->item));
      std::exception_ptr error;
      std::vector<Result> results;
      try {
        results = fn_(items);
        if (results.size() != batch.size()) throw std::logic_error("GroupCommit: one result per item expected");
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      for (size_t i = 0; i < batch.size(); ++i) {
        batch[i]->error = error;
        if (!error) batch[i]->result = std::move(results[i]);
        batch[i]->done = true;
      }
      running_ = false;
      cv_.notify_all();
    }
    if (slot->error) std::rethrow_exception(slot->error);
    return std::move(slot->result);
  }

 private:
  struct Slot {
    Item item;
    Result result{};
    std::exception_ptr error;
    bool done = false;
  };
  BatchFn fn_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool running_ = false;
  std::vector<std::shared_ptr<Slot>> queue_;
};

}  // namespace segnode
