"""
PyTorch reference for one training step of a char LSTM LM (issue #6): embedding 64 -> nn.LSTM
of 256 -> linear head, batch 32, sequence 64, ferry's char vocabulary (322 ids for
tinyshakespeare). One step is what ferry's trainer does per step: forward, mean cross-entropy,
backward, global gradient norm clipped at 1, AdamW (ferry's betas, eps and decay rule), loss read.

  /usr/bin/python3 bench/reference/lstm_step.py [--steps 30] [--layers 1]

Prints one JSON object: the median (and min, mean) ms per step over --steps after --warmup steps.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import blas_in_use, ferry_adamw  # noqa: E402

TINYSHAKESPEARE_CHARS = 65
TINYSHAKESPEARE_VOCAB = 1 + TINYSHAKESPEARE_CHARS + 256


class LstmLM(nn.Module):
    def __init__(self, vocab_size, embedding, hidden, layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding)
        self.lstm = nn.LSTM(embedding, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, ids):
        return self.head(self.lstm(self.embedding(ids))[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--steps', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--seq', type=int, default=64)
    parser.add_argument('--embedding', type=int, default=64)
    parser.add_argument('--hidden', type=int, default=256)
    parser.add_argument('--layers', type=int, default=1)
    parser.add_argument('--vocab-size', type=int, default=TINYSHAKESPEARE_VOCAB)
    parser.add_argument('--threads', type=int, help='torch threads (default: torch.get_num_threads())')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1337)

    model = LstmLM(args.vocab_size, args.embedding, args.hidden, args.layers)
    optimizer = ferry_adamw(model, lr=1e-3)
    # Ids from the characters' range, as a char corpus gives; the step's cost does not depend on which.
    characters = min(TINYSHAKESPEARE_CHARS, args.vocab_size - 1)

    def step():
        window = torch.randint(1, 1 + characters, (args.batch_size, args.seq + 1))
        inputs, targets = window[:, :-1], window[:, 1:]
        loss = F.cross_entropy(model(inputs).reshape(-1, args.vocab_size), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, cpu_times = [], []
    for _ in range(args.steps):
        started, cpu_started = time.perf_counter(), time.process_time()
        step()
        times.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.process_time() - cpu_started) * 1000)

    print(json.dumps({
        'bench': 'pytorch-lstm-step',
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'blas': blas_in_use(),
        'vocabSize': args.vocab_size,
        'embedding': args.embedding,
        'hidden': args.hidden,
        'layers': args.layers,
        'batchSize': args.batch_size,
        'seq': args.seq,
        'parameters': sum(p.numel() for p in model.parameters()),
        'steps': args.steps,
        'medianMs': round(statistics.median(times), 2),
        'minMs': round(min(times), 2),
        'meanMs': round(statistics.fmean(times), 2),
        'cpuMedianMs': round(statistics.median(cpu_times), 2),
    }))


if __name__ == '__main__':
    main()
