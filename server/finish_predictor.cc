#include "server/finish_predictor.h"

#include <algorithm>
#include <deque>

namespace fastdiss {

void StepTimeModel::Observe(int64_t tokens, absl::Duration duration) {
  ++observations_;
  // The first forwards are averaged evenly, later ones with the fixed weight.
  const double w = std::max(weight_, 1.0 / static_cast<double>(observations_));
  const double x = static_cast<double>(tokens);
  const double y = absl::ToDoubleSeconds(duration);
  mean_x_ += w * (x - mean_x_);
  mean_y_ += w * (y - mean_y_);
  mean_xx_ += w * (x * x - mean_xx_);
  mean_xy_ += w * (x * y - mean_xy_);
}

absl::Duration StepTimeModel::Predict(int64_t tokens) const {
  if (!ready()) return absl::ZeroDuration();
  const double x = static_cast<double>(tokens);
  const double variance = mean_xx_ - mean_x_ * mean_x_;
  double seconds;
  if (mean_x_ > 0 && variance > 0.01 * mean_x_ * mean_x_) {
    // A fitted line: a fixed cost per forward plus a cost per token, neither negative.
    const double slope = std::max(0.0, (mean_xy_ - mean_x_ * mean_y_) / variance);
    const double intercept = std::max(0.0, mean_y_ - slope * mean_x_);
    seconds = intercept + slope * x;
  } else {
    seconds = mean_x_ > 0 ? mean_y_ * std::max(1.0, x / mean_x_) : mean_y_;
  }
  return absl::Seconds(seconds);
}

absl::Duration PredictFinish(const std::vector<PlannedWork>& running,
                             const std::vector<PlannedWork>& waiting, const PlannedWork& candidate,
                             const AdmissionLimits& limits, AdmissionOrder order,
                             const StepTimeModel& model) {
  if (!model.ready()) return absl::ZeroDuration();
  struct Item {
    PlannedWork work;
    bool is_candidate = false;
  };
  std::vector<Item> batch;
  for (const PlannedWork& w : running) {
    if (w.remaining_steps > 0) batch.push_back({w, false});
  }
  std::vector<Item> queue;
  for (const PlannedWork& w : waiting) queue.push_back({w, false});
  queue.push_back({candidate, true});
  if (order == AdmissionOrder::kShortestFirst) {
    std::stable_sort(queue.begin(), queue.end(), [](const Item& a, const Item& b) {
      return a.work.remaining_steps < b.work.remaining_steps;
    });
  }
  std::deque<Item> pending(queue.begin(), queue.end());
  absl::Duration elapsed;
  // Each pass admits what fits, then runs the batch up to its next finish; every pass retires at
  // least one request, so this ends after at most |running| + |waiting| + 1 passes.
  for (;;) {
    int rows = 0;
    int64_t tokens = 0;
    for (const Item& item : batch) {
      rows += item.work.rows;
      tokens += item.work.tokens;
    }
    const bool was_empty = batch.empty();
    while (!pending.empty() && (was_empty || limits.policy == BatchPolicy::kStep)) {
      const PlannedWork& next = pending.front().work;
      if (!batch.empty() && limits.policy == BatchPolicy::kNone) break;
      if (!batch.empty() &&
          (rows + next.rows > limits.max_rows || tokens + next.tokens > limits.max_tokens))
        break;
      rows += next.rows;
      tokens += next.tokens;
      batch.push_back(pending.front());
      pending.pop_front();
    }
    if (batch.empty()) return elapsed;  // only reachable with a candidate of zero steps
    int stretch = batch.front().work.remaining_steps;
    for (const Item& item : batch) stretch = std::min(stretch, item.work.remaining_steps);
    stretch = std::max(stretch, 1);
    elapsed += stretch * model.Predict(tokens);
    for (Item& item : batch) {
      item.work.remaining_steps -= stretch;
      if (item.is_candidate && item.work.remaining_steps <= 0) return elapsed;
    }
    batch.erase(std::remove_if(batch.begin(), batch.end(),
                               [](const Item& i) { return i.work.remaining_steps <= 0; }),
                batch.end());
  }
}

}  // namespace fastdiss
