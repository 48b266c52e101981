#!/usr/bin/env python3
"""A plain PyTorch server for the same model, to compare fastdiss-server against.

What a PyTorch user would write first: the network in eager mode (bench/fastdiss_torch.py, loading
the checkpoint's own weights.pt), SentencePiece for the tokenizer, and a grpcio server for the
fastdiss.v1.Generator API (Generate only) with request-level batching: a worker thread takes up to
--max-batch waiting requests (waiting at most --max-wait-ms for more), encodes them together and
runs the few-step sampler of docs/method.md section 6 over the batch, each row at its own K, until
the last one is done. Rows that have finished drop out of later steps. Every request draws its noise
from its own seeded torch.Generator.

  bench/pytorch_server.py --checkpoint models/de-en --port 50061 [--threads 1] [--max-batch 32]
                          [--autocast-bf16]

--autocast-bf16 runs each batch under torch.autocast("cpu", dtype=torch.bfloat16), the way a
PyTorch user asks for bfloat16: linear layers and matrix products in bfloat16, layer norms and
softmax in float32.

Needs python3-torch, python3-grpcio, python3-sentencepiece and protoc (Debian packages).
"""
import argparse
import concurrent.futures
import math
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

import grpc
import sentencepiece
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fastdiss_torch import FastDiss  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_proto():
    """Compiles proto/fastdiss/v1/generator.proto with protoc into a temporary module."""
    out = tempfile.mkdtemp(prefix="fastdiss-proto-")
    subprocess.run(["protoc", f"-I{ROOT}/proto", f"--python_out={out}", "fastdiss/v1/generator.proto"], check=True)
    sys.path.insert(0, out)
    from fastdiss.v1 import generator_pb2  # noqa: E402
    return generator_pb2


def read_model_yaml(path):
    """The model: section of a checkpoint's model.yaml (flat key: value lines)."""
    config, section = {}, None
    for line in open(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            section = line.split(":")[0]
            continue
        if section == "model":
            key, value = line.strip().split(":", 1)
            config[key] = value.strip().strip('"')
    return config


class Schedule:
    """The sqrt schedule, respacing and DDPM step of model/schedule.cc."""

    def __init__(self, T, noise_factor):
        def abar(s):
            return 1.0 - math.sqrt(s + 1e-4)
        self.T, self.F = T, noise_factor
        self.alpha_bar, product = [], 1.0
        for i in range(T):
            beta = min(1.0 - abar((i + 1.0) / T) / abar(i / T), 0.999)
            product *= 1.0 - beta
            self.alpha_bar.append(product)

    def respace(self, steps):
        if steps == 1:
            return [self.T - 1]
        return [round(i * (self.T - 1) / (steps - 1)) for i in range(steps)][::-1]

    def step(self, t, s):
        at, as_ = self.alpha_bar[t], self.alpha_bar[s]
        beta = 1.0 - at / as_
        return (math.sqrt(as_) * beta / (1.0 - at), math.sqrt(1.0 - beta) * (1.0 - as_) / (1.0 - at),
                self.F * math.sqrt(beta * (1.0 - as_) / (1.0 - at)))


class Request:
    def __init__(self, pb, ids):
        self.pb, self.ids = pb, ids
        self.done = threading.Event()
        self.response, self.error = None, None
        self.start = time.monotonic()


class Server:
    def __init__(self, args, pb2):
        self.pb2, self.args = pb2, args
        c = read_model_yaml(os.path.join(args.checkpoint, "model.yaml"))
        self.config = c
        self.model = FastDiss(vocab=int(c["vocab_size"]), d_latent=int(c["d_latent"]), d_model=int(c["d_model"]),
                              heads=int(c["num_heads"]), ffn=int(c["ffn_dim"]), layers=int(c["decoder_layers"]),
                              max_len=max(int(c["max_source_tokens"]), int(c["max_target_tokens"])),
                              timesteps=int(c["num_timesteps"]))
        stored = dict(torch.jit.load(os.path.join(args.checkpoint, "weights.pt")).named_parameters())
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                p.copy_(stored[name].float())
        self.model.eval()
        self.schedule = Schedule(int(c["num_timesteps"]), float(c["noise_factor"]))
        self.sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(args.checkpoint, "tokenizer.model"))
        self.characters = c.get("source_units", "text") == "characters"
        self.lowercase = c.get("source_lowercase", "false") == "true"
        self.max_source, self.max_target = int(c["max_source_tokens"]), int(c["max_target_tokens"])
        self.offset = int(c["length_offset"])
        self.queue = queue.Queue()
        threading.Thread(target=self.worker, daemon=True).start()

    def tokenize(self, text):
        if self.lowercase:
            text = text.lower()
        if self.characters:
            text = " ".join(ch for ch in text if not ch.isspace())
        return self.sp.encode(text)

    # The gRPC handler: validates, queues, waits for the worker.
    def generate(self, request, context):
        ids = self.tokenize(request.text)
        steps = request.steps or 5
        if not ids or len(ids) > self.max_source or not 1 <= steps <= self.schedule.T:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad text or steps")
        item = Request(request, ids)
        self.queue.put(item)
        item.done.wait()
        if item.error:
            context.abort(grpc.StatusCode.INTERNAL, item.error)
        return item.response

    def worker(self):
        torch.set_num_threads(self.args.threads)
        while True:
            batch = [self.queue.get()]
            deadline = time.monotonic() + self.args.max_wait_ms / 1000.0
            while len(batch) < self.args.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self.queue.get(timeout=left))
                except queue.Empty:
                    break
            try:
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                            enabled=self.args.autocast_bf16):
                    self.run(batch)
            except Exception as e:  # noqa: BLE001 - reported to every caller
                for item in batch:
                    item.error = str(e)
            for item in batch:
                item.done.set()

    def run(self, batch):
        m, B = self.model, len(batch)
        S = max(len(item.ids) for item in batch)
        source = torch.zeros(B, S, dtype=torch.long)
        for b, item in enumerate(batch):
            source[b, :len(item.ids)] = torch.tensor(item.ids)
        source_mask = torch.arange(S).unsqueeze(0) < torch.tensor([len(i.ids) for i in batch]).unsqueeze(1)
        encoded = m.encode(source, source_mask)
        length_class = m.predict_length(encoded, source_mask).argmax(-1)
        lengths = [min(max(len(item.ids) + int(length_class[b]) - self.offset, 1), self.max_target)
                   for b, item in enumerate(batch)]
        L = max(lengths)
        target_mask = torch.arange(L).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
        generators = [torch.Generator().manual_seed(item.pb.seed) for item in batch]
        schedules = [self.schedule.respace(item.pb.steps or 5) for item in batch]
        z = torch.stack([torch.randn(L, m.latent_out.out_features, generator=g) for g in generators]) * self.schedule.F
        z0_hat = torch.zeros_like(z)
        step = [0] * B
        while True:
            live = [b for b in range(B) if step[b] < len(schedules[b])]
            if not live:
                break
            idx = torch.tensor(live)
            t = torch.tensor([schedules[b][step[b]] for b in live]).unsqueeze(1).expand(-1, L)
            # float(): under autocast the estimate is bfloat16, and the sampler's state stays float32.
            estimate = m.denoise(z[idx], t, z0_hat[idx], target_mask[idx], encoded[idx], source_mask[idx]).float()
            z0_hat[idx] = estimate
            for j, b in enumerate(live):
                step[b] += 1
                if step[b] == len(schedules[b]):
                    continue
                a0, at, sd = self.schedule.step(schedules[b][step[b] - 1], schedules[b][step[b]])
                z[b] = estimate[j] * a0 + z[b] * at + torch.randn(z[b].shape, generator=generators[b]) * sd
        log_probs = torch.log_softmax(m.logits(z0_hat), -1).max(-1)
        for b, item in enumerate(batch):
            tokens = log_probs.indices[b, :lengths[b]].tolist()
            item.response = self.pb2.GenerateResponse(
                text=self.sp.decode(tokens), token_ids=tokens,
                score=float(log_probs.values[b, :lengths[b]].mean()), steps=len(schedules[b]),
                planned_steps=len(schedules[b]), seed=item.pb.seed, model=item.pb.model)
            item.response.timing.total_seconds = time.monotonic() - item.start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=os.path.join(ROOT, "models/de-en"))
    parser.add_argument("--port", type=int, default=50061)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--autocast-bf16", action="store_true",
                        help="run each batch under torch.autocast('cpu', dtype=torch.bfloat16)")
    args = parser.parse_args()
    pb2 = load_proto()
    server = Server(args, pb2)
    handler = grpc.method_handlers_generic_handler("fastdiss.v1.Generator", {
        "Generate": grpc.unary_unary_rpc_method_handler(
            server.generate, request_deserializer=pb2.GenerateRequest.FromString,
            response_serializer=pb2.GenerateResponse.SerializeToString),
    })
    grpc_server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=256), handlers=[handler],
                              maximum_concurrent_rpcs=4096)
    grpc_server.add_insecure_port(f"127.0.0.1:{args.port}")
    grpc_server.start()
    print(f"pytorch_server: serving {args.checkpoint} on 127.0.0.1:{args.port}", flush=True)
    grpc_server.wait_for_termination()


if __name__ == "__main__":
    main()
