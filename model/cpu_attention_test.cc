#include "model/cpu_attention.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

namespace fastdiss {
namespace {

// softmax(q k^T + bias) v with LibTorch's own operations, heads merged.
torch::Tensor Reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& bias) {
  auto scores = torch::matmul(q, k.transpose(-2, -1)) + bias.view({q.size(0), 1, 1, -1});
  auto context = torch::matmul(torch::softmax(scores, -1), v);
  return context.transpose(1, 2).reshape({q.size(0), q.size(2), -1});
}

torch::Tensor Bias(const std::vector<int64_t>& lengths, int64_t keys) {
  auto bias = torch::zeros({static_cast<int64_t>(lengths.size()), keys});
  for (size_t b = 0; b < lengths.size(); ++b) {
    bias[b].narrow(0, lengths[b], keys - lengths[b]).fill_(-std::numeric_limits<float>::infinity());
  }
  return bias;
}

TEST(CpuAttentionTest, MatchesLibTorchWithPaddingForVectorAndScalarHeadSizes) {
  torch::manual_seed(1);
  for (int64_t hd : {8, 32, 6}) {  // 6: the plain-loop path
    auto q = torch::randn({3, 2, 5, hd}), k = torch::randn({3, 2, 11, hd}),
         v = torch::randn({3, 2, 11, hd});
    auto bias = Bias({11, 4, 1}, 11);
    auto got = CpuAttention(q, k, v, bias);
    ASSERT_EQ(got.sizes(), (std::vector<int64_t>{3, 5, 2 * hd}));
    EXPECT_TRUE(torch::allclose(got, Reference(q, k, v, bias), 1e-5, 1e-5)) << "hd " << hd;
  }
}

TEST(CpuAttentionTest, ReadsHeadsInPlaceFromAFusedProjection) {
  torch::manual_seed(2);
  auto qkv = torch::randn({2, 7, 3 * 16});  // [B, L, 3H], H = 2 heads x 8
  auto split = [&](int part) {
    return qkv.narrow(2, part * 16, 16).view({2, 7, 2, 8}).transpose(1, 2);
  };
  auto bias = Bias({7, 3}, 7);
  EXPECT_TRUE(torch::allclose(
      CpuAttention(split(0), split(1), split(2), bias),
      Reference(split(0).contiguous(), split(1).contiguous(), split(2).contiguous(), bias), 1e-5,
      1e-5));
}

TEST(CpuAttentionTest, PaddedKeysChangeNoBitOfARow) {
  torch::manual_seed(3);
  auto q = torch::randn({1, 2, 4, 16}), k = torch::randn({1, 2, 5, 16}),
       v = torch::randn({1, 2, 5, 16});
  auto alone = CpuAttention(q, k, v, torch::zeros({1, 5}));
  // The same row with 12 more keys of padding (large values, masked) and another row beside it.
  auto pad = [](const torch::Tensor& x) {
    return torch::cat({x, torch::randn({1, 2, 12, 16}) * 100}, 2);
  };
  auto other = torch::randn({1, 2, 17, 16});
  auto batched =
      CpuAttention(torch::cat({torch::randn({1, 2, 4, 16}), q}), torch::cat({other, pad(k)}),
                   torch::cat({other, pad(v)}), torch::cat({torch::zeros({1, 17}), Bias({5}, 17)}));
  EXPECT_TRUE(torch::equal(batched[1], alone[0]));
}

}  // namespace
}  // namespace fastdiss
