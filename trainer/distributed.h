// Communicator: the trainer's view of torch.distributed (c10d). Data-parallel training with the
// torchrun environment: WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. Rank 0 hosts the
// c10d TCPStore for the rendezvous; tensors travel over a ProcessGroupGloo (CPU tensors) or a
// ProcessGroupNCCL (CUDA tensors; needs a LibTorch with CUDA and NCCL's header at build time).
// Launched by torchrun (WORLD_SIZE set), it joins a process group even of one process, as
// torch.distributed does; without WORLD_SIZE it is a single process and every collective is a
// no-op.
//
// Collectives block until every rank has called them (or the timeout passes, an error); all ranks
// must make the same calls in the same order. Used by one thread.
#ifndef FASTDISS_TRAINER_DISTRIBUTED_H_
#define FASTDISS_TRAINER_DISTRIBUTED_H_

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace fastdiss {

struct DistributedEnv {
  bool launched = false;  // WORLD_SIZE was set: join a process group
  int world_size = 1;
  int rank = 0;
  int local_rank = 0;  // this rank's GPU on its machine (LOCAL_RANK; default RANK)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// Reads the torchrun variables. INVALID_ARGUMENT names a variable that is malformed, out of range
// or missing when WORLD_SIZE > 1 needs it.
absl::StatusOr<DistributedEnv> DistributedEnvFromEnvironment();

enum class CommBackend { kGloo, kNccl };
const char* CommBackendName(CommBackend backend);
// Whether this build can make a process group of `backend`.
bool HasCommBackend(CommBackend backend);

class Communicator {
 public:
  // Connects to the other ranks (blocks until all have joined or `timeout` passes).
  // FAILED_PRECONDITION when this build lacks `backend`.
  static absl::StatusOr<std::unique_ptr<Communicator>> Connect(const DistributedEnv& env,
                                                               CommBackend backend,
                                                               std::chrono::milliseconds timeout);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  // Whether this process joined a process group (it was launched with WORLD_SIZE).
  bool launched() const { return env_.launched; }
  CommBackend backend() const { return backend_; }

  // Sums `tensors` (float tensors on one device: CPU for Gloo, this rank's GPU for NCCL) over the
  // ranks, in place, as one flat message.
  absl::Status AllReduceSum(const std::vector<torch::Tensor>& tensors);
  // Copies `tensors` of rank `root` into every rank's tensors of the same shapes.
  absl::Status Broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  // Rank 0's `*bytes` on every rank (through the store; for small things like a tokenizer).
  absl::Status BroadcastBytes(std::string* bytes, const std::string& key);

 private:
  struct Impl;
  Communicator(DistributedEnv env, CommBackend backend);

  DistributedEnv env_;
  CommBackend backend_;
  std::unique_ptr<Impl> impl_;  // null when single-process
};

}  // namespace fastdiss

#endif  // FASTDISS_TRAINER_DISTRIBUTED_H_
