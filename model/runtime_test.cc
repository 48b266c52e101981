#include "model/runtime.h"

#include <gtest/gtest.h>

#include "base/device_name.h"

namespace fastdiss {
namespace {

TEST(DeviceNameTest, AcceptsCpuCudaAndCudaN) {
  for (const char* name : {"cpu", "cuda", "cuda:0", "cuda:15"})
    EXPECT_TRUE(IsDeviceName(name)) << name;
  for (const char* name :
       {"", "gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda:0:1", "cpu:0", "mps"}) {
    EXPECT_FALSE(IsDeviceName(name)) << name;
  }
}

TEST(ResolveDeviceTest, NamesTheProblem) {
  auto cpu = ResolveDevice("cpu");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_TRUE(cpu->is_cpu());
  EXPECT_EQ(ResolveDevice("gpu").status().code(), absl::StatusCode::kInvalidArgument);
  // A GPU far beyond any machine's count is refused whether or not this LibTorch has CUDA.
  auto absent = ResolveDevice("cuda:999");
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kFailedPrecondition) << absent.status();
  EXPECT_NE(absent.status().message().find("cuda:999"), std::string::npos) << absent.status();
}

}  // namespace
}  // namespace fastdiss
