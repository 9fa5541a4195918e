import { attr } from '../graph.ts';
import { unsupportedOption, weight } from './support.ts';
import type { ConvertContext, Converter, TensorRef } from './types.ts';

/** Gather rows of `table`; ids of any int type work, floats (tfjs feeds float ids) are cast first. */
export function gatherRows(ctx: ConvertContext, table: string, ids: TensorRef): string {
  const g = ctx.graph;
  const index = ids.dtype === 'int64' || ids.dtype === 'int32' ? ids.name : g.op('Cast', [ids.name], { to: attr.dtype('int64') });
  return g.op('Gather', [table, index]);
}

const embedding: Converter = (call, [ids], ctx) => {
  if (call.config.maskZero === true) {
    throw unsupportedOption(call, 'maskZero: true', 'Masks change how later layers run; export a model without maskZero (pad with a real token).');
  }
  const table = weight(call, 'embeddings');
  return [{ name: gatherRows(ctx, ctx.graph.float('embeddings', table.shape, table.data), ids!), dtype: 'float32' }];
};

export const embeddingConverters: Record<string, Converter> = { Embedding: embedding };
