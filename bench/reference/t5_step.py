"""
PyTorch reference for one training step of ferry's T5 (src/train/models/t5.ts, issue #17): the
same T5 v1.1 / mT5 math as t5-config.ts describes and Hugging Face's modeling_t5 computes, at the
same shapes as bench/t5-train.ts (default: the t5-small-char preset, 4+4 layers, width 256, 4 heads
of 64, d_ff 1024, 32 buckets up to distance 128, untied head, dropout 0):

- one shared embedding [vocab, d] feeds encoder and decoder, unscaled;
- pre-norm sub-layers x + f(rmsNorm(x)), rmsNorm without mean or bias (eps 1e-6), a final
  rmsNorm per stack;
- attention without biases or 1/sqrt(d_kv); scores = q k^T + position bias + mask; the relative
  position bias table [buckets, heads] of each stack's first layer (bidirectional buckets in the
  encoder, causal ones in the decoder), added in every layer of the stack; cross-attention has
  none;
- gated-GELU feed-forward with the tanh GELU: wo(gelu(wi_0 x) * wi_1 x);
- untied lm_head (or, with --tied, (y * d^-0.5) E^T); mean cross-entropy over the labels.

One step is what ferry's trainer does per step: forward, loss, backward, global gradient norm
clipped at 1, AdamW (ferry's betas (0.9, 0.99), eps 1e-8, decay 0.1 on every matrix, as ferry's
decaysByDefault does for T5's names), loss read. Batches are random ids from a char vocabulary's
range with full masks: the step's cost does not depend on which ids.

  /usr/bin/python3 bench/reference/t5_step.py [--steps 20] [--batch-size 32] [--source-length 32] [--target-length 32]

Prints one JSON object: the median (and min, mean) ms per step over --steps after --warmup steps.
With --rounds N --steps K it runs N rounds of K steps, reading a line from stdin before each round
and printing one JSON line of that round's step times after it (bench/t5-train.ts interleaves
rounds of ferry and PyTorch this way, so that both see the same load on a shared machine).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import blas_in_use  # noqa: E402

MASKED_SCORE = -1e9


def relative_position_bucket(relative, bidirectional, buckets, max_distance):
    """HF's T5Attention._relative_position_bucket (t5-config.ts's relativePositionBucket)."""
    bucket = torch.zeros_like(relative)
    n = buckets
    if bidirectional:
        n //= 2
        bucket += (relative > 0).long() * n
        distance = relative.abs()
    else:
        distance = -torch.min(relative, torch.zeros_like(relative))
    max_exact = n // 2
    is_small = distance < max_exact
    large = max_exact + (torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact) * (n - max_exact)).long()
    large = torch.min(large, torch.full_like(large, n - 1))
    return bucket + torch.where(is_small, distance, large)


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Attention(nn.Module):
    def __init__(self, d, heads, d_kv):
        super().__init__()
        self.heads, self.d_kv = heads, d_kv
        inner = heads * d_kv
        self.q, self.k, self.v = (nn.Linear(d, inner, bias=False) for _ in range(3))
        self.o = nn.Linear(inner, d, bias=False)
        nn.init.normal_(self.q.weight, std=(d * d_kv) ** -0.5)
        nn.init.normal_(self.k.weight, std=d ** -0.5)
        nn.init.normal_(self.v.weight, std=d ** -0.5)
        nn.init.normal_(self.o.weight, std=inner ** -0.5)

    def forward(self, x, keys_from, bias):
        batch = x.size(0)
        split = lambda t: t.view(batch, -1, self.heads, self.d_kv).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x)), split(self.k(keys_from)), split(self.v(keys_from))
        weights = F.softmax(q @ k.transpose(-1, -2) + bias, dim=-1)
        return self.o((weights @ v).transpose(1, 2).reshape(batch, -1, self.heads * self.d_kv))


class FeedForward(nn.Module):
    def __init__(self, d, d_ff):
        super().__init__()
        self.wi_0, self.wi_1 = nn.Linear(d, d_ff, bias=False), nn.Linear(d, d_ff, bias=False)
        self.wo = nn.Linear(d_ff, d, bias=False)
        nn.init.normal_(self.wi_0.weight, std=d ** -0.5)
        nn.init.normal_(self.wi_1.weight, std=d ** -0.5)
        nn.init.normal_(self.wo.weight, std=d_ff ** -0.5)

    def forward(self, x):
        return self.wo(F.gelu(self.wi_0(x), approximate='tanh') * self.wi_1(x))


class Layer(nn.Module):
    def __init__(self, d, heads, d_kv, d_ff, cross):
        super().__init__()
        self.norm_self, self.self_attention = RMSNorm(d), Attention(d, heads, d_kv)
        self.cross = cross
        if cross:
            self.norm_cross, self.cross_attention = RMSNorm(d), Attention(d, heads, d_kv)
        self.norm_ff, self.ff = RMSNorm(d), FeedForward(d, d_ff)

    def forward(self, h, self_bias, encoded=None, cross_bias=None):
        x = self.norm_self(h)
        h = h + self.self_attention(x, x, self_bias)
        if self.cross:
            h = h + self.cross_attention(self.norm_cross(h), encoded, cross_bias)
        return h + self.ff(self.norm_ff(h))


class T5(nn.Module):
    def __init__(self, vocab, d, heads, d_kv, d_ff, encoder_layers, decoder_layers, buckets, max_distance, tied):
        super().__init__()
        self.d, self.buckets, self.max_distance, self.tied = d, buckets, max_distance, tied
        self.shared = nn.Embedding(vocab, d)
        nn.init.normal_(self.shared.weight, std=1.0)
        self.encoder_bias = nn.Embedding(buckets, heads)
        self.decoder_bias = nn.Embedding(buckets, heads)
        nn.init.normal_(self.encoder_bias.weight, std=d ** -0.5)
        nn.init.normal_(self.decoder_bias.weight, std=d ** -0.5)
        self.encoder = nn.ModuleList(Layer(d, heads, d_kv, d_ff, cross=False) for _ in range(encoder_layers))
        self.decoder = nn.ModuleList(Layer(d, heads, d_kv, d_ff, cross=True) for _ in range(decoder_layers))
        self.encoder_norm, self.decoder_norm = RMSNorm(d), RMSNorm(d)
        if not tied:
            self.lm_head = nn.Linear(d, vocab, bias=False)
            nn.init.normal_(self.lm_head.weight, std=d ** -0.5)

    def position_bias(self, table, queries, keys, bidirectional):
        relative = torch.arange(keys)[None, :] - torch.arange(queries)[:, None]
        buckets = relative_position_bucket(relative, bidirectional, self.buckets, self.max_distance)
        return table(buckets).permute(2, 0, 1).unsqueeze(0)  # [1, H, queries, keys]

    def forward(self, source_ids, source_mask, decoder_input_ids):
        source_length, target_length = source_ids.size(1), decoder_input_ids.size(1)
        key_mask = ((1 - source_mask) * MASKED_SCORE)[:, None, None, :]
        bias = self.position_bias(self.encoder_bias, source_length, source_length, True) + key_mask
        h = self.shared(source_ids)
        for layer in self.encoder:
            h = layer(h, bias)
        encoded = self.encoder_norm(h)
        causal = torch.triu(torch.full((target_length, target_length), MASKED_SCORE), diagonal=1)
        self_bias = self.position_bias(self.decoder_bias, target_length, target_length, False) + causal
        h = self.shared(decoder_input_ids)
        for layer in self.decoder:
            h = layer(h, self_bias, encoded, key_mask)
        y = self.decoder_norm(h)
        return (y * self.d ** -0.5) @ self.shared.weight.t() if self.tied else self.lm_head(y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=0, help='interleaved mode: rounds of --steps steps, each started by a line on stdin')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--source-length', type=int, default=32)
    parser.add_argument('--target-length', type=int, default=32)
    parser.add_argument('--vocab-size', type=int, default=330)
    parser.add_argument('--d-model', type=int, default=256)
    parser.add_argument('--d-kv', type=int, default=64)
    parser.add_argument('--d-ff', type=int, default=1024)
    parser.add_argument('--heads', type=int, default=4)
    parser.add_argument('--encoder-layers', type=int, default=4)
    parser.add_argument('--decoder-layers', type=int, default=4)
    parser.add_argument('--buckets', type=int, default=32)
    parser.add_argument('--max-distance', type=int, default=128)
    parser.add_argument('--tied', action='store_true')
    parser.add_argument('--threads', type=int, help='torch threads (default: torch.get_num_threads())')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1337)

    model = T5(args.vocab_size, args.d_model, args.heads, args.d_kv, args.d_ff, args.encoder_layers, args.decoder_layers,
               args.buckets, args.max_distance, args.tied)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': no_decay, 'weight_decay': 0.0}],
                                  lr=1e-3, betas=(0.9, 0.99), eps=1e-8)
    batch, vocab = args.batch_size, args.vocab_size
    characters = min(70, vocab - 3)  # ids past pad, eos and unk, as a char vocabulary's characters

    def step():
        source_ids = torch.randint(3, 3 + characters, (batch, args.source_length))
        targets = torch.randint(3, 3 + characters, (batch, args.target_length))
        decoder_input_ids = torch.cat([torch.zeros(batch, 1, dtype=torch.long), targets[:, :-1]], dim=1)
        source_mask = torch.ones(batch, args.source_length)
        logits = model(source_ids, source_mask, decoder_input_ids)
        loss = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    def timed(count):
        times, cpu_times = [], []
        for _ in range(count):
            started, cpu_started = time.perf_counter(), time.process_time()
            step()
            times.append((time.perf_counter() - started) * 1000)
            cpu_times.append((time.process_time() - cpu_started) * 1000)
        return times, cpu_times

    for _ in range(args.warmup):
        step()
    header = {
        'bench': 'pytorch-t5-step',
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'blas': blas_in_use(),
        'vocabSize': vocab,
        'batchSize': batch,
        'sourceLength': args.source_length,
        'targetLength': args.target_length,
        'parameters': sum(p.numel() for p in model.parameters()),
    }
    if args.rounds > 0:
        print(json.dumps({**header, 'ready': True}), flush=True)
        for _ in range(args.rounds):
            if not sys.stdin.readline():
                return
            times, cpu_times = timed(args.steps)
            print(json.dumps({'times': [round(t, 2) for t in times], 'cpuTimes': [round(t, 2) for t in cpu_times]}), flush=True)
        return
    times, cpu_times = timed(args.steps)
    print(json.dumps({
        **header,
        'steps': args.steps,
        'medianMs': round(statistics.median(times), 2),
        'minMs': round(min(times), 2),
        'meanMs': round(statistics.fmean(times), 2),
        'cpuMedianMs': round(statistics.median(cpu_times), 2),
    }))


if __name__ == '__main__':
    main()
