#include "trainer/distributed.h"

#include <cstdlib>
#include <stdexcept>
#include <utility>

#if defined(FASTDISS_WITH_GLOO) || defined(FASTDISS_WITH_NCCL)
#define FASTDISS_HAS_C10D 1
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef FASTDISS_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef FASTDISS_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace fastdiss {
namespace {

// Parses an environment variable as an integer in [lo, hi]; absent leaves *out alone.
absl::Status ReadIntVariable(const char* name, int lo, int hi, int* out, bool* present) {
  const char* value = std::getenv(name);
  *present = value != nullptr && *value != '\0';
  if (!*present) return absl::OkStatus();
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  if (*end != '\0' || parsed < lo || parsed > hi) {
    return absl::InvalidArgumentError(std::string(name) + " must be an integer in [" +
                                      std::to_string(lo) + ", " + std::to_string(hi) + "], got '" +
                                      value + "'");
  }
  *out = static_cast<int>(parsed);
  return absl::OkStatus();
}

torch::Tensor Flatten(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> flat;
  for (const auto& t : tensors) flat.push_back(t.detach().reshape({-1}).to(torch::kFloat32));
  return torch::cat(flat);
}

void Unflatten(const torch::Tensor& flat, const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (const auto& t : tensors) {
    const int64_t n = t.numel();
    t.copy_(flat.narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

}  // namespace

const char* CommBackendName(CommBackend backend) {
  return backend == CommBackend::kNccl ? "NCCL" : "Gloo";
}

bool HasCommBackend(CommBackend backend) {
#ifdef FASTDISS_WITH_GLOO
  if (backend == CommBackend::kGloo) return true;
#endif
#ifdef FASTDISS_WITH_NCCL
  if (backend == CommBackend::kNccl) return true;
#endif
  return false;
}

absl::StatusOr<DistributedEnv> DistributedEnvFromEnvironment() {
  DistributedEnv env;
  bool has_rank = false, has_local_rank = false, has_port = false;
  FASTDISS_RETURN_IF_ERROR(ReadIntVariable("WORLD_SIZE", 1, 65536, &env.world_size, &env.launched));
  FASTDISS_RETURN_IF_ERROR(ReadIntVariable("RANK", 0, env.world_size - 1, &env.rank, &has_rank));
  FASTDISS_RETURN_IF_ERROR(
      ReadIntVariable("LOCAL_RANK", 0, 65535, &env.local_rank, &has_local_rank));
  FASTDISS_RETURN_IF_ERROR(ReadIntVariable("MASTER_PORT", 1, 65535, &env.master_port, &has_port));
  if (!has_local_rank) env.local_rank = env.rank;
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0')
    env.master_addr = addr;
  if (env.launched) {
    if (!has_rank)
      return absl::InvalidArgumentError("WORLD_SIZE is " + std::to_string(env.world_size) +
                                        " but RANK is not set");
    if (std::getenv("MASTER_ADDR") == nullptr || !has_port) {
      return absl::InvalidArgumentError(
          "WORLD_SIZE is set, so MASTER_ADDR and MASTER_PORT (rank 0's address) must be too");
    }
  }
  return env;
}

#ifdef FASTDISS_HAS_C10D
struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
#ifdef FASTDISS_WITH_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#ifdef FASTDISS_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif

  // Calls fn(group) on the one process group there is. (Gloo's and NCCL's groups share no base
  // class across LibTorch versions that has the collectives, so this dispatches on the type.)
  template <typename Fn>
  void WithGroup(Fn&& fn) {
#ifdef FASTDISS_WITH_GLOO
    if (gloo) return fn(*gloo);
#endif
#ifdef FASTDISS_WITH_NCCL
    if (nccl) return fn(*nccl);
#endif
    throw std::logic_error("no process group");
  }
};
#else
struct Communicator::Impl {};
#endif

Communicator::Communicator(DistributedEnv env, CommBackend backend)
    : env_(std::move(env)), backend_(backend) {}
Communicator::~Communicator() = default;

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Connect(
    const DistributedEnv& env, CommBackend backend, std::chrono::milliseconds timeout) {
  std::unique_ptr<Communicator> comm(new Communicator(env, backend));
  if (!env.launched) return comm;
  if (!HasCommBackend(backend)) {
    return absl::FailedPreconditionError(
        std::string("torch.distributed over ") + CommBackendName(backend) +
        " asked for (WORLD_SIZE is set), but this build has no " + CommBackendName(backend) +
        (backend == CommBackend::kNccl
             ? " (it needs a LibTorch with CUDA and NCCL's header)"
             : " (built with FASTDISS_DISTRIBUTED=OFF or without gloo's headers)"));
  }
#ifdef FASTDISS_HAS_C10D
  try {
    auto impl = std::make_unique<Impl>();
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(env.master_port);
    options.isServer = env.rank == 0;
    options.numWorkers = env.world_size;
    options.waitWorkers = true;
    options.timeout = timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
#ifdef FASTDISS_WITH_GLOO
    if (backend == CommBackend::kGloo) {
      auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
      const bool loopback = env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0;
      gloo->devices.push_back(loopback
                                  ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                  : c10d::ProcessGroupGloo::createDefaultDevice());
      impl->gloo =
          c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, gloo);
    }
#endif
#ifdef FASTDISS_WITH_NCCL
    if (backend == CommBackend::kNccl) {
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = timeout;
      impl->nccl =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, nccl);
    }
#endif
    comm->impl_ = std::move(impl);
  } catch (const std::exception& e) {
    return absl::Status(absl::StatusCode::kUnavailable,
                        "torch.distributed rendezvous at " + env.master_addr + ":" +
                            std::to_string(env.master_port) + " failed: " + e.what());
  }
#endif
  return comm;
}

absl::Status Communicator::AllReduceSum(const std::vector<torch::Tensor>& tensors) {
  if (impl_ == nullptr || tensors.empty()) return absl::OkStatus();
#ifdef FASTDISS_HAS_C10D
  try {
    std::vector<torch::Tensor> message = {Flatten(tensors)};
    impl_->WithGroup([&](auto& group) { group.allreduce(message)->wait(); });
    Unflatten(message[0], tensors);
  } catch (const std::exception& e) {
    return absl::Status(absl::StatusCode::kUnavailable,
                        std::string("all-reduce failed: ") + e.what());
  }
#endif
  return absl::OkStatus();
}

absl::Status Communicator::Broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  if (impl_ == nullptr || tensors.empty()) return absl::OkStatus();
#ifdef FASTDISS_HAS_C10D
  try {
    std::vector<torch::Tensor> message = {Flatten(tensors)};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    impl_->WithGroup([&](auto& group) { group.broadcast(message, options)->wait(); });
    Unflatten(message[0], tensors);
  } catch (const std::exception& e) {
    return absl::Status(absl::StatusCode::kUnavailable,
                        std::string("broadcast failed: ") + e.what());
  }
#endif
  return absl::OkStatus();
}

absl::Status Communicator::BroadcastBytes(std::string* bytes, const std::string& key) {
  if (impl_ == nullptr) return absl::OkStatus();
#ifdef FASTDISS_HAS_C10D
  try {
    const std::string store_key = "fastdiss/" + key;
    if (env_.rank == 0) {
      impl_->store->set(store_key, std::vector<uint8_t>(bytes->begin(), bytes->end()));
    } else {
      const std::vector<uint8_t> value = impl_->store->get(store_key);  // waits for rank 0
      bytes->assign(value.begin(), value.end());
    }
  } catch (const std::exception& e) {
    return absl::Status(absl::StatusCode::kUnavailable,
                        "sharing '" + key + "' failed: " + e.what());
  }
#endif
  return absl::OkStatus();
}

}  // namespace fastdiss
