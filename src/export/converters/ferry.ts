/** ferry's own layers (docs/FORMATS.md): tied embedding, position embedding, Transformer block. */
import { FerryError } from '../../errors.ts';
import { sinusoidTable } from '../../train/models/layers.ts';
import { attr } from '../graph.ts';
import { attend } from '../lm/attention.ts';
import { layerNorm } from './core.ts';
import { gatherRows } from './embedding.ts';
import { gelu, weight } from './support.ts';
import type { Converter } from './types.ts';

/** Int ids gather rows; floats [B, T, d] project onto the vocabulary with the same table. */
const tiedEmbedding: Converter = (call, [x], ctx) => {
  const g = ctx.graph;
  const table = weight(call, 'embeddings');
  const name = g.float('embeddings', table.shape, table.data);
  if (x!.dtype !== 'float32') return [{ name: gatherRows(ctx, name, x!), dtype: 'float32' }];
  return [{ name: g.op('MatMul', [x!.name, g.transpose(name, [1, 0])]), dtype: 'float32' }];
};

/** x + P[position]: from `position_ids` in a language-model graph, else positions 0..T-1. */
const positionEmbedding: Converter = (call, [x], ctx) => {
  const g = ctx.graph;
  const maxLength = call.config.maxLength as number;
  const d = call.config.outputDim as number;
  const kind = call.config.kind ?? 'learned';
  const data = kind === 'sinusoidal' ? sinusoidTable(maxLength, d) : weight(call, 'embeddings').data;
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
    throw new FerryError('EXPORT_BLOCK_OUTSIDE_LM', `layer ${call.name} (FerryTransformerBlock) converts only inside a ferry language model`, {
      hint: 'Export the checkpoint directory (with its ferry.json), not the bare model.json.',
      status: 422,
    });
  }
  const d = call.config.dim as number;
  const heads = call.config.numHeads as number;
  const epsilon = (call.config.epsilon as number | undefined) ?? 1e-5;
  const w = (suffix: string) => weight(call, suffix);
  const linear = (input: string, prefix: string) => {
    const kernel = w(`${prefix}/kernel`);
    const bias = w(`${prefix}/bias`);
    return g.op('Add', [g.op('MatMul', [input, g.float(`${prefix}/kernel`, kernel.shape, kernel.data)]), g.float(`${prefix}/bias`, bias.shape, bias.data)]);
  };

  const block = ctx.counters.block++;
  const h1 = g.inScope('ln1', () => layerNorm(ctx, x!.name, w('ln1/gamma').data, w('ln1/beta').data, epsilon));
  const [q, k, v] = g.node('Split', [linear(h1, 'attn/qkv'), g.int64('split', [d, d, d])], { axis: attr.int(-1) }, { outputs: 3 });
  const firstAttentionNode = g.nodes.length;
  const context = g.inScope('attn', () => attend(g, attention, block, q!, k!, v!, { heads, headDim: d / heads }));
  if (ctx.target === 'webgpu' && attention.form === 'attention23') {
    // Both WebGPU builds of onnxruntime-web run opset-23 Attention on CPU (DESIGN.md section 5).
    ctx.cpuOnlyNodes.push(...g.nodes.slice(firstAttentionNode).filter((n) => n.opType === 'Attention').map((n) => n.name));
  }
  const x1 = g.op('Add', [x!.name, linear(context, 'attn/proj')]);
  const h2 = g.inScope('ln2', () => layerNorm(ctx, x1, w('ln2/gamma').data, w('ln2/beta').data, epsilon));
  const mlp = linear(g.inScope('mlp', () => gelu(g, linear(h2, 'mlp/fc'))), 'mlp/proj');
  return [{ name: g.op('Add', [x1, mlp]), dtype: 'float32' }];
};

export const ferryConverters: Record<string, Converter> = {
  FerryTiedEmbedding: tiedEmbedding,
  FerryPositionEmbedding: positionEmbedding,
  FerryTransformerBlock: transformerBlock,
};
