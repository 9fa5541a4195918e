/** ferry's own layers (docs/FORMATS.md): tied embedding, position embedding, Transformer block. */
import { FerryError } from '../../errors.ts';
import { sinusoidTable } from '../../train/models/layers.ts';
import { BLOCK_WEIGHTS as W, EMBEDDINGS_WEIGHT } from '../../train/models/weight-names.ts';
import { attr } from '../graph.ts';
import { attend } from '../lm/attention.ts';
import { relativePositions } from '../lm/positions.ts';
import { layerNorm } from './core.ts';
import { gatherRows } from './embedding.ts';
import { gelu, weight } from './support.ts';
import type { Converter } from './types.ts';

/** Int ids gather rows; floats [B, T, d] project onto the vocabulary with the same table. */
const tiedEmbedding: Converter = (call, [x], ctx) => {
  const g = ctx.graph;
  const table = weight(call, EMBEDDINGS_WEIGHT);
  const name = g.float(EMBEDDINGS_WEIGHT, table.shape, table.data);
  if (x!.dtype !== 'float32') return [{ name: gatherRows(ctx, name, x!), dtype: 'float32' }];
  return [{ name: g.op('MatMul', [x!.name, g.transpose(name, [1, 0])]), dtype: 'float32' }];
};

/** x + P[position]: from the position ids input of a language-model graph, else positions 0..T-1. */
const positionEmbedding: Converter = (call, [x], ctx) => {
  const g = ctx.graph;
  const maxLength = call.config.maxLength as number;
  const d = call.config.outputDim as number;
  const kind = call.config.kind ?? 'learned';
  const data = kind === 'sinusoidal' ? sinusoidTable(maxLength, d) : weight(call, EMBEDDINGS_WEIGHT).data;
  const table = g.float('positions', [maxLength, d], data);
  const attention = ctx.lm?.attention;
  const positions = attention
    ? g.op('Gather', [table, attention.positionIds])
    : g.op('Slice', [table, g.int64('starts', [0]), g.op('Shape', [x!.name], { start: attr.int(1), end: attr.int(2) }), g.int64('axes', [0])]);
  return [{ name: g.op('Add', [x!.name, positions]), dtype: 'float32' }];
};

/** Pre-LayerNorm block: x + proj(attn(ln1(x))), then x + mlpProj(gelu(fc(ln2(x)))). */
const transformerBlock: Converter = (call, [x], ctx) => {
  const g = ctx.graph;
  const attention = ctx.lm?.attention;
  if (!attention) {
    throw new FerryError('export_block_outside_lm', `layer ${call.name} (FerryTransformerBlock) converts only inside a ferry language model`, {
      hint: 'Export the checkpoint directory (with its ferry.json), not the bare model.json.',
      status: 422,
    });
  }
  const d = call.config.dim as number;
  const heads = call.config.numHeads as number;
  const epsilon = (call.config.epsilon as number | undefined) ?? 1e-5;
  const w = (suffix: string) => weight(call, suffix);
  const linear = (input: string, kernelName: string, biasName: string) => {
    const kernel = w(kernelName);
    const bias = w(biasName);
    return g.op('Add', [g.op('MatMul', [input, g.float(kernelName, kernel.shape, kernel.data)]), g.float(biasName, bias.shape, bias.data)]);
  };

  const positional = call.config.positional as 'rope' | 'alibi' | undefined;
  if (positional !== undefined && attention.form !== 'decomposed') {
    throw new FerryError('export_positional_form', `layer ${call.name} uses ${positional === 'rope' ? 'RoPE' : 'ALiBi'} positions, which only the decomposed attention form carries (got --attention ${attention.form})`, {
      hint: 'Export with --attention decomposed (the default).',
      status: 422,
    });
  }
  const positions = positional === undefined
    ? undefined
    : relativePositions(g, attention, { kind: positional, heads, headDim: d / heads, maxLength: (call.config.maxLength as number | undefined) ?? 0 });
  const block = ctx.counters.block++;
  const h1 = g.inScope('ln1', () => layerNorm(ctx, x!.name, w(W.ln1Gamma).data, w(W.ln1Beta).data, epsilon));
  const [q, k, v] = g.node('Split', [linear(h1, W.qkvKernel, W.qkvBias), g.int64('split', [d, d, d])], { axis: attr.int(-1) }, { outputs: 3 });
  const firstAttentionNode = g.nodes.length;
  const context = g.inScope('attn', () => attend(g, attention, block, q!, k!, v!, { heads, headDim: d / heads }, positions));
  if (ctx.target === 'webgpu' && attention.form === 'attention23') {
    // Both WebGPU builds of onnxruntime-web run opset-23 Attention on CPU (docs/ARCHITECTURE.md, "Runtime facts").
    ctx.cpuOnlyNodes.push(...g.nodes.slice(firstAttentionNode).filter((n) => n.opType === 'Attention').map((n) => n.name));
  }
  const x1 = g.op('Add', [x!.name, linear(context, W.projKernel, W.projBias)]);
  const h2 = g.inScope('ln2', () => layerNorm(ctx, x1, w(W.ln2Gamma).data, w(W.ln2Beta).data, epsilon));
  const mlp = linear(g.inScope('mlp', () => gelu(g, linear(h2, W.fcKernel, W.fcBias))), W.mlpProjKernel, W.mlpProjBias);
  return [{ name: g.op('Add', [x1, mlp]), dtype: 'float32' }];
};

export const ferryConverters: Record<string, Converter> = {
  FerryTiedEmbedding: tiedEmbedding,
  FerryPositionEmbedding: positionEmbedding,
  FerryTransformerBlock: transformerBlock,
};
