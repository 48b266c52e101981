"""The FastDiSS network of model/network.h in plain PyTorch eager mode, for comparison only.

The same sizes, layers and operations as the C++ model (pre-LayerNorm blocks, self-conditioning
merge, timestep MLP, tied rounding), written the way a PyTorch user would: nn.Linear q/k/v
projections recomputed every call, a new mask per call, torch.randn per request. Weights are
random: this file measures speed, not quality.
"""
import math

import torch
from torch import nn
import torch.nn.functional as F


def sinusoidal(values, dim):
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(10000.0) / max(half - 1, 1)))
    angles = values.float().unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], -1)


class Attention(nn.Module):
    def __init__(self, d_model, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, query, memory, key_mask):
        B, Lq, H = query.shape
        Lk = memory.shape[1]
        hd = H // self.heads
        q = self.q(query).view(B, Lq, self.heads, hd).transpose(1, 2) / math.sqrt(hd)
        k = self.k(memory).view(B, Lk, self.heads, hd).transpose(1, 2)
        v = self.v(memory).view(B, Lk, self.heads, hd).transpose(1, 2)
        scores = q @ k.transpose(-2, -1)
        scores = scores.masked_fill(~key_mask.view(B, 1, 1, Lk), float("-inf"))
        context = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(B, Lq, H)
        return self.out(context)


class Block(nn.Module):
    def __init__(self, d_model, heads, ffn, cross):
        super().__init__()
        self.self_norm = nn.LayerNorm(d_model)
        self.self_attention = Attention(d_model, heads)
        self.cross = cross
        if cross:
            self.cross_norm = nn.LayerNorm(d_model)
            self.cross_attention = Attention(d_model, heads)
        self.ffn_norm = nn.LayerNorm(d_model)
        self.ffn_in = nn.Linear(d_model, ffn)
        self.ffn_out = nn.Linear(ffn, d_model)

    def forward(self, x, mask, memory=None, memory_mask=None):
        h = self.self_norm(x)
        x = x + self.self_attention(h, h, mask)
        if self.cross:
            x = x + self.cross_attention(self.cross_norm(x), memory, memory_mask)
        return x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))


class FastDiss(nn.Module):
    def __init__(self, vocab=4000, d_latent=64, d_model=128, heads=4, ffn=512, layers=3,
                 max_len=64, timesteps=2000):
        super().__init__()
        self.timesteps = timesteps
        self.d_model = d_model
        self.embedding = nn.Embedding(vocab, d_latent)
        self.source_in = nn.Linear(d_latent, d_model)
        self.encoder = nn.ModuleList(Block(d_model, heads, ffn, False) for _ in range(layers))
        self.encoder_norm = nn.LayerNorm(d_model)
        self.length_head = nn.Linear(d_model, 257)
        self.latent_in = nn.Linear(d_latent, d_model)
        self.merge_hidden = nn.Linear(2 * d_model, d_model)
        self.merge_out = nn.Linear(d_model, d_model)
        self.time_hidden = nn.Linear(d_model, 4 * d_model)
        self.time_out = nn.Linear(4 * d_model, d_model)
        self.input_norm = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(Block(d_model, heads, ffn, True) for _ in range(layers))
        self.decoder_norm = nn.LayerNorm(d_model)
        self.latent_out = nn.Linear(d_model, d_latent)
        self.register_buffer("positions", sinusoidal(torch.arange(max_len), d_model))

    def normalized_embedding(self):
        return F.normalize(self.embedding.weight, dim=-1, eps=1e-6)

    def embed(self, tokens):
        return F.embedding(tokens, self.normalized_embedding()) * math.sqrt(self.embedding.weight.shape[1])

    def encode(self, source, mask):
        x = self.source_in(self.embed(source)) + self.positions[: source.shape[1]]
        for block in self.encoder:
            x = block(x, mask)
        return self.encoder_norm(x)

    def predict_length(self, encoded, mask):
        m = mask.unsqueeze(-1).float()
        return self.length_head((encoded * m).sum(1) / m.sum(1).clamp_min(1.0))

    def denoise(self, z_t, t, self_cond, mask, encoded, source_mask):
        merged = torch.cat([self.latent_in(z_t), self.latent_in(self_cond)], -1)
        h = self.merge_out(F.silu(self.merge_hidden(merged)))
        time = self.time_out(F.silu(self.time_hidden(sinusoidal(t.float() * (1000.0 / self.timesteps), self.d_model))))
        x = self.input_norm(h + time + self.positions[: z_t.shape[1]])
        for block in self.decoder:
            x = block(x, mask, encoded, source_mask)
        return self.latent_out(self.decoder_norm(x))

    def logits(self, z0_hat):
        return z0_hat @ self.normalized_embedding().t()
