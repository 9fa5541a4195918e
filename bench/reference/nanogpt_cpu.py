"""
PyTorch reference for ferry's `nanogpt-cpu` preset, written to be the same model and schedule as
ferry's trainer (src/train/trainer.ts, optimizer.ts, schedule.ts, models/transformer.ts):

- char-level tinyshakespeare with ferry's vocabulary (id 0 <|endoftext|>, 65 characters, 256 byte
  tokens: 322 ids, of which 66 occur), first 90% train, last 10% val;
- GPT with biases, pre-LN (eps 1e-5), exact GELU, learned positions, tied token embedding / head,
  4 layers, 4 heads, width 128, context 64, dropout 0; init N(0, 0.02), output projections
  N(0, 0.02 / sqrt(2 * layers)), biases 0;
- AdamW betas (0.9, 0.99), eps 1e-8, weight decay 0.1 on matrices except the embeddings, global
  gradient norm clipped at 1; lr 1e-3, linear warmup 100 steps as lr * (step + 1) / 101, cosine
  to 1e-4 at the last step; batch 12, 2000 steps;
- val loss every 250 steps on 20 batches, the same windows each time.

  /usr/bin/python3 bench/reference/nanogpt_cpu.py --data ../shared/data/tinyshakespeare.txt

Progress goes to stderr; the last line on stdout is one JSON object.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import blas_in_use, ferry_adamw, ferry_char_vocabulary  # noqa: E402


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width, eps=1e-5)
        self.qkv = nn.Linear(width, 3 * width)
        self.attn_proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width, eps=1e-5)
        self.fc = nn.Linear(width, 4 * width)
        self.mlp_proj = nn.Linear(4 * width, width)

    def forward(self, x, mask):
        batch, length, width = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(width, dim=2)
        q, k, v = (t.view(batch, length, self.heads, width // self.heads).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        weights = F.softmax(scores.masked_fill(mask[:length, :length], float('-inf')), dim=-1)
        attended = (weights @ v).transpose(1, 2).contiguous().view(batch, length, width)
        x = x + self.attn_proj(attended)
        return x + self.mlp_proj(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab_size, block_size, layers, heads, width):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, width)  # first, so the tied weight is named (and treated) as an embedding
        self.wpe = nn.Embedding(block_size, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width, eps=1e-5)
        self.register_buffer('mask', torch.triu(torch.ones(block_size, block_size, dtype=torch.bool), diagonal=1))
        for name, parameter in self.named_parameters():
            if name.endswith('bias'):
                nn.init.zeros_(parameter)
            elif name.endswith('proj.weight'):
                nn.init.normal_(parameter, std=0.02 / math.sqrt(2 * layers))
            elif parameter.dim() >= 2:
                nn.init.normal_(parameter, std=0.02)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe.weight[: ids.size(1)]
        for block in self.blocks:
            x = block(x, self.mask)
        return self.ln_f(x) @ self.wte.weight.t()


def learning_rate(step, lr, min_lr, warmup, decay_steps):
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if step >= decay_steps:
        return min_lr
    progress = (step - warmup) / (decay_steps - warmup)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - min_lr)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', default=os.path.join(here, '..', '..', '..', 'shared', 'data', 'tinyshakespeare.txt'))
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--batch-size', type=int, default=12)
    parser.add_argument('--block-size', type=int, default=64)
    parser.add_argument('--vocab-size', type=int, help="default: ferry's char vocabulary size for the corpus (322 for tinyshakespeare)")
    parser.add_argument('--eval-interval', type=int, default=250)
    parser.add_argument('--eval-iters', type=int, default=20)
    parser.add_argument('--threads', type=int, help='torch threads (default: torch.get_num_threads())')
    parser.add_argument('--seed', type=int, default=1337)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    with open(args.data, encoding='utf-8') as file:
        text = file.read()
    ids_by_char, ferry_vocab = ferry_char_vocabulary(text)
    vocab_size = args.vocab_size or ferry_vocab
    data = torch.tensor([ids_by_char[char] for char in text], dtype=torch.long)
    split = int(len(data) * 0.9)
    train_data, val_data = data[:split], data[split:]
    block, batch = args.block_size, args.batch_size

    def get_batch(source, generator=None):
        starts = torch.randint(len(source) - block, (batch,), generator=generator)
        return (torch.stack([source[i : i + block] for i in starts]), torch.stack([source[i + 1 : i + 1 + block] for i in starts]))

    model = GPT(vocab_size, block, layers=4, heads=4, width=128)
    optimizer = ferry_adamw(model, lr=1e-3)
    warmup = min(100, args.steps // 2)

    @torch.no_grad()
    def evaluate():
        model.eval()
        generator = torch.Generator().manual_seed(args.seed + 1)
        total = 0.0
        for _ in range(args.eval_iters):
            inputs, targets = get_batch(val_data, generator)
            total += F.cross_entropy(model(inputs).view(-1, vocab_size), targets.view(-1)).item()
        model.train()
        return total / args.eval_iters

    evals = []
    step_seconds = 0.0
    started = time.perf_counter()
    cpu_started = time.process_time()
    for step in range(args.steps):
        step_started = time.perf_counter()
        for group in optimizer.param_groups:
            group['lr'] = learning_rate(step, 1e-3, 1e-4, warmup, args.steps)
        inputs, targets = get_batch(train_data)
        loss = F.cross_entropy(model(inputs).view(-1, vocab_size), targets.view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        train_loss = loss.item()
        step_seconds += time.perf_counter() - step_started
        done = step + 1
        if done % args.eval_interval == 0 or done == args.steps:
            val = evaluate()
            evals.append({'step': done, 'valLoss': round(val, 4)})
            print(f'step {done}: train loss {train_loss:.4f}, val loss {val:.4f}, {time.perf_counter() - started:.1f} s', file=sys.stderr)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started

    print(json.dumps({
        'bench': 'pytorch-nanogpt-cpu',
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'blas': blas_in_use(),
        'vocabSize': vocab_size,
        'vocabNote': f"ferry's char vocabulary: {ferry_vocab - 257} characters + <|endoftext|> + 256 byte tokens",
        'parameters': sum(p.numel() for p in model.parameters()),
        'steps': args.steps,
        'batchSize': batch,
        'blockSize': block,
        'valLoss': evals[-1]['valLoss'],
        'bestValLoss': min(e['valLoss'] for e in evals),
        'evals': evals,
        'seconds': round(seconds, 1),
        'cpuSeconds': round(cpu_seconds, 1),
        'msPerStep': round(step_seconds / args.steps * 1000, 1),
    }))


if __name__ == '__main__':
    main()
